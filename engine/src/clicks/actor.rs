//! Click actors: one thread per shard receives that shard's click events over
//! a bounded crossbeam channel (the request path only ever `try_send`s),
//! enriches them, counts them into 10-second windows and writes each closed
//! window to the sink. When the channel closes (shutdown), every open window
//! is flushed before the actor exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::enrich::{EnrichSettings, Enricher, GeoDatabase};
use super::event::ClickEvent;
use super::sink::ClickSink;
use super::spill::SpillingSink;
use super::window::WindowAggregator;

/// Events taken from the channel per wake-up before checking the clock.
const BATCH: usize = 4096;

/// Counters of the click pipeline.
#[derive(Debug, Default)]
pub struct ClickStats {
    pub captured: AtomicU64,
    /// Clicks the request path could not hand over (channel full).
    pub dropped: AtomicU64,
    pub windows_flushed: AtomicU64,
    pub bot_clicks: AtomicU64,
}

/// The request path's handle on its shard's actor.
#[derive(Debug, Clone)]
pub struct ClickSender {
    sender: Sender<ClickEvent>,
    stats: Arc<ClickStats>,
}

impl ClickSender {
    /// Hands an event over without blocking; counts it as dropped when the
    /// actor is behind.
    #[inline]
    pub fn send(&self, event: ClickEvent) {
        match self.sender.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Settings of the click pipeline.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// This engine's stable name in click rows.
    pub node: String,
    pub channel_capacity: usize,
    /// Time after a window's end before it is closed.
    pub grace: Duration,
    pub enrich: EnrichSettings,
}

/// The actors of one engine.
pub struct ClickPipeline {
    senders: Vec<ClickSender>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<ClickStats>,
    sink: Arc<SpillingSink>,
}

impl std::fmt::Debug for ClickPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickPipeline")
            .field("shards", &self.senders.len())
            .finish_non_exhaustive()
    }
}

impl ClickPipeline {
    /// Starts one actor per shard writing to `sink`.
    pub fn start(
        settings: &PipelineSettings,
        shards: usize,
        geo: Option<Arc<GeoDatabase>>,
        sink: Arc<SpillingSink>,
    ) -> std::io::Result<Self> {
        let stats = Arc::new(ClickStats::default());
        let mut senders = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        for shard in 0..shards {
            let (sender, receiver) = crossbeam_channel::bounded(settings.channel_capacity.max(1));
            senders.push(ClickSender {
                sender,
                stats: stats.clone(),
            });
            let actor = ClickActor {
                receiver,
                enricher: Enricher::new(settings.enrich.clone(), geo.clone()),
                windows: WindowAggregator::new(&settings.node, shard as u16),
                sink: sink.clone(),
                stats: stats.clone(),
                grace: settings.grace.as_millis() as i64,
            };
            threads.push(
                std::thread::Builder::new()
                    .name(format!("ricochet-clicks-{shard}"))
                    .spawn(move || actor.run())?,
            );
        }
        Ok(Self {
            senders,
            threads,
            stats,
            sink,
        })
    }

    /// The sender of shard `shard`.
    pub fn sender(&self, shard: usize) -> ClickSender {
        self.senders[shard % self.senders.len()].clone()
    }

    pub fn stats(&self) -> &Arc<ClickStats> {
        &self.stats
    }

    pub fn sink(&self) -> &Arc<SpillingSink> {
        &self.sink
    }

    /// Flushes every open window and stops the actors. Call after the
    /// request path has dropped its senders.
    pub fn shutdown(mut self) {
        self.senders.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = self.sink.persist();
    }
}

/// An actor's work for one event: enrich it, count it, add it to its window.
/// Public so the `click_window` benchmark measures exactly this.
#[doc(hidden)]
#[inline]
pub fn count_event(
    enricher: &mut Enricher,
    windows: &mut WindowAggregator,
    stats: &ClickStats,
    event: &ClickEvent,
) {
    let enriched = enricher.enrich(event);
    if enriched.bot {
        stats.bot_clicks.fetch_add(1, Ordering::Relaxed);
    }
    windows.add(event.at, event.link_id, &enriched);
    stats.captured.fetch_add(1, Ordering::Relaxed);
}

struct ClickActor {
    receiver: Receiver<ClickEvent>,
    enricher: Enricher,
    windows: WindowAggregator,
    sink: Arc<SpillingSink>,
    stats: Arc<ClickStats>,
    grace: i64,
}

impl ClickActor {
    fn run(mut self) {
        loop {
            match self.receiver.recv_timeout(Duration::from_millis(250)) {
                Ok(event) => {
                    self.count(&event);
                    for _ in 0..BATCH {
                        let Ok(event) = self.receiver.try_recv() else {
                            break;
                        };
                        self.count(&event);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = ricochet_model::now_millis();
            for batch in self.windows.close_due(now, self.grace) {
                self.flush(&batch);
            }
            self.sink.drain();
        }
        for batch in self.windows.close_all() {
            self.flush(&batch);
        }
    }

    #[inline]
    fn count(&mut self, event: &ClickEvent) {
        count_event(&mut self.enricher, &mut self.windows, &self.stats, event);
    }

    fn flush(&self, batch: &ricochet_model::clicks::WindowBatch) {
        match self.sink.write(batch) {
            Ok(()) => {
                self.stats.windows_flushed.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => tracing::error!(%error, "a click window could not be written or spilled"),
        }
    }
}
