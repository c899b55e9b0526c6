//! Click actors: one thread per shard drains that shard's click events from
//! a bounded crossbeam channel every few milliseconds (the request path only
//! ever `try_send`s, and never has to wake the actor),
//! enriches them and counts them into 10-second windows; one writer thread
//! writes each closed window to the sink. When the channel closes (shutdown),
//! every open window is flushed and written before the pipeline stops.

use ricochet_clickstore::priority::lower_current_thread;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use super::enrich::{EnrichSettings, Enricher, GeoDatabase};
use super::event::ClickEvent;
use super::window::{ClosedWindow, RowBuilder, WindowAggregator, WindowSpare};
use ricochet_clickstore::ClickSink;
use ricochet_clickstore::SpillingSink;

/// Events taken from the channel before checking the clock.
const BATCH: usize = 4096;
/// Pause once the channel is empty. The channel holds the clicks of the
/// pause (65,536 by default: 10 ms at 6.5M clicks/s).
const POLL: Duration = Duration::from_millis(10);

/// Counters of the click pipeline.
#[derive(Debug, Default)]
pub struct ClickStats {
    pub captured: AtomicU64,
    /// Clicks the request path could not hand over (channel full).
    pub dropped: AtomicU64,
    pub windows_flushed: AtomicU64,
    pub bot_clicks: AtomicU64,
    /// Distinct (link, profile) entries in the actors' open windows.
    pub window_entries: AtomicU64,
    /// Rows the open windows would become.
    pub window_rows: AtomicU64,
    /// Estimated bytes of every window's tables (open, spare, queued for
    /// the writer) and of the writer's row buffers.
    pub window_memory_bytes: AtomicU64,
    /// `clicks.max_window_rows` (0: no cap).
    pub window_rows_max: AtomicU64,
    /// Window parts split off because a window reached the cap.
    pub window_splits: AtomicU64,
}

/// One thread's share of a gauge the threads of the pipeline add up.
#[derive(Debug, Default)]
struct GaugeShare {
    published: u64,
}

impl GaugeShare {
    fn set(&mut self, gauge: &AtomicU64, value: u64) {
        gauge.fetch_add(value.wrapping_sub(self.published), Ordering::Relaxed);
        self.published = value;
    }
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
    /// Niceness of the actor and writer threads (`clicks.thread_nice`).
    pub thread_nice: u8,
    /// Rows a window part becomes at most before the window is split
    /// (`clicks.max_window_rows`; 0: no cap).
    pub max_window_rows: usize,
}

/// Closed windows (or parts) waiting for the writer, per shard. When the
/// writer is this far behind, an actor waits to hand over the next one and
/// its channel fills (clicks over it are dropped and counted): memory stays
/// bounded by the cap times this.
const CLOSED_WINDOWS_PER_SHARD: usize = 4;
/// Written windows' row buffers on their way back to each actor, which
/// fills them again instead of faulting in fresh memory for every window.
const RECYCLED: usize = 2;

/// The actors of one engine, and the thread writing their closed windows.
pub struct ClickPipeline {
    senders: Vec<ClickSender>,
    threads: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
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
        (stats.window_rows_max).store(settings.max_window_rows as u64, Ordering::Relaxed);
        // Writing a big window takes a while; the actors keep counting
        // meanwhile instead of letting their channels fill up.
        let (closed, to_write) =
            crossbeam_channel::bounded(CLOSED_WINDOWS_PER_SHARD * shards.max(1));
        let (returns, recycled): (Vec<_>, Vec<_>) = (0..shards)
            .map(|_| crossbeam_channel::bounded(RECYCLED))
            .unzip();
        let writer = WindowWriter {
            to_write,
            sink: sink.clone(),
            stats: stats.clone(),
            returns,
            builder: RowBuilder::default(),
            memory: GaugeShare::default(),
        };
        let nice = settings.thread_nice;
        let writer = std::thread::Builder::new()
            .name("ricochet-clicks-writer".to_owned())
            .spawn(move || {
                lower_current_thread(nice);
                writer.run()
            })?;
        let mut senders = Vec::with_capacity(shards);
        let mut threads = Vec::with_capacity(shards);
        for (shard, recycled) in recycled.into_iter().enumerate() {
            let (sender, receiver) = crossbeam_channel::bounded(settings.channel_capacity.max(1));
            senders.push(ClickSender {
                sender,
                stats: stats.clone(),
            });
            let actor = ClickActor {
                receiver,
                enricher: Enricher::new(settings.enrich.clone(), geo.clone()),
                windows: WindowAggregator::new(&settings.node, shard as u16)
                    .with_max_rows(settings.max_window_rows),
                closed: closed.clone(),
                recycled,
                stats: stats.clone(),
                grace: settings.grace.as_millis() as i64,
                gauges: ActorGauges::default(),
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
            writer: Some(writer),
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
        // The actors are gone, so are their handles on the writer: it writes
        // what they flushed, then ends.
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let _ = self.sink.persist();
    }
}

/// An actor's work for one event: enrich it and add it to its window.
/// Returns whether it was a bot's. Public so the `click_window` benchmark
/// measures exactly this.
#[doc(hidden)]
#[inline]
pub fn count_event(
    enricher: &mut Enricher,
    windows: &mut WindowAggregator,
    event: &ClickEvent,
) -> bool {
    let enriched = enricher.enrich(event);
    windows.add(event.at, event.link_id, &enriched);
    enriched.bot
}

struct ClickActor {
    receiver: Receiver<ClickEvent>,
    enricher: Enricher,
    windows: WindowAggregator,
    closed: Sender<ClosedWindow>,
    recycled: Receiver<WindowSpare>,
    stats: Arc<ClickStats>,
    grace: i64,
    gauges: ActorGauges,
}

/// An actor's shares of the pipeline's window gauges, and the splits it
/// has counted so far.
#[derive(Debug, Default)]
struct ActorGauges {
    entries: GaugeShare,
    rows: GaugeShare,
    memory: GaugeShare,
    splits: u64,
}

impl ClickActor {
    fn run(mut self) {
        loop {
            // Drain what is queued, then sleep: the actor never waits inside
            // the channel, so a send never has to wake it (a futex call on
            // the request path for every click that finds it idle).
            let mut taken = 0;
            let mut bots = 0;
            let closed = loop {
                match self.receiver.try_recv() {
                    Ok(event) => {
                        bots +=
                            u64::from(count_event(&mut self.enricher, &mut self.windows, &event));
                        taken += 1;
                        if taken == BATCH {
                            break false;
                        }
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if taken > 0 {
                self.stats
                    .captured
                    .fetch_add(taken as u64, Ordering::Relaxed);
                self.stats.bot_clicks.fetch_add(bots, Ordering::Relaxed);
            }
            while let Ok(spare) = self.recycled.try_recv() {
                self.windows.reuse(spare);
            }
            let now = ricochet_model::now_millis();
            for window in self.windows.take_due(now, self.grace) {
                self.flush(window);
            }
            self.publish();
            if closed {
                break;
            }
            if taken < BATCH {
                std::thread::sleep(POLL);
            }
        }
        for window in self.windows.take_all() {
            self.flush(window);
        }
        self.publish();
    }

    /// Updates the window gauges with this actor's windows (once per batch
    /// of events, not per click).
    fn publish(&mut self) {
        let (gauges, stats) = (&mut self.gauges, &self.stats);
        let windows = &self.windows;
        (gauges.entries).set(&stats.window_entries, windows.open_entries() as u64);
        (gauges.rows).set(&stats.window_rows, windows.open_rows() as u64);
        (gauges.memory).set(&stats.window_memory_bytes, windows.memory_bytes() as u64);
        let splits = windows.splits();
        (stats.window_splits).fetch_add(splits - gauges.splits, Ordering::Relaxed);
        gauges.splits = splits;
    }

    /// Hands a closed window to the writer (waiting while it is far behind).
    /// Its bytes count as queued until the writer takes it.
    fn flush(&self, window: ClosedWindow) {
        let bytes = window.memory_bytes() as u64;
        (self.stats.window_memory_bytes).fetch_add(bytes, Ordering::Relaxed);
        if self.closed.send(window).is_err() {
            tracing::error!("the click window writer is gone: a window was not written");
        }
    }
}

/// Builds closed windows into rows, writes them to the sink (which spills
/// what it cannot write) and retries spilled ones, on its own thread: the
/// bursty work of closing a window (ranking, sorting, clearing tables of up
/// to a window's every link) never holds up an actor's channel, and at
/// `clicks.thread_nice` it yields the CPU to the request workers.
struct WindowWriter {
    to_write: Receiver<ClosedWindow>,
    sink: Arc<SpillingSink>,
    stats: Arc<ClickStats>,
    /// Per shard: where its built windows' emptied tables go back.
    returns: Vec<Sender<WindowSpare>>,
    builder: RowBuilder,
    /// Its share of `ClickStats::window_memory_bytes`: the row buffers.
    memory: GaugeShare,
}

impl WindowWriter {
    fn run(mut self) {
        loop {
            match self.to_write.recv_timeout(Duration::from_millis(100)) {
                Ok(window) => {
                    let queued = window.memory_bytes() as u64;
                    (self.stats.window_memory_bytes).fetch_sub(queued, Ordering::Relaxed);
                    let shard = usize::from(window.shard());
                    let (batch, spare) = self.builder.build(window);
                    match self.sink.write(&batch) {
                        Ok(()) => {
                            self.stats.windows_flushed.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            tracing::error!(%error, "a click window could not be written or spilled")
                        }
                    }
                    if let Some(back) = self.returns.get(shard) {
                        // A full channel: the actor has spares enough.
                        let _ = back.try_send(spare);
                    }
                    let mut rows = batch.rows;
                    rows.clear();
                    self.builder.recycle(rows);
                    let bytes = self.builder.memory_bytes() as u64;
                    self.memory.set(&self.stats.window_memory_bytes, bytes);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.sink.drain();
        }
    }
}
