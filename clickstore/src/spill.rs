//! `SpillingSink`: wraps a click sink so nothing is lost when it is down or
//! slow. A window the sink refuses goes to a bounded on-disk queue (fjall, in
//! the engine's data directory, so it survives `kill -9`); queued windows are
//! retried with exponential backoff and jitter and drained in order. While
//! anything is queued, new windows queue behind it to keep the order. A window
//! the sink refuses for good ([`SinkError::Failed`]) goes to a dead-letter
//! file beside the queue (`dead-letter.jsonl`) instead of blocking it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use ricochet_model::clicks::WindowBatch;

use crate::contract::{ClickSink, SinkError};

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Counts of what the spill queue did.
#[derive(Debug, Default)]
pub struct SpillStats {
    pub written: AtomicU64,
    pub spilled: AtomicU64,
    pub retried: AtomicU64,
    pub dropped: AtomicU64,
    pub queued: AtomicU64,
    /// Windows the sink refused for good, written to the dead-letter file.
    pub dead_lettered: AtomicU64,
}

/// The dead-letter file's name inside the queue's directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.jsonl";

struct Retry {
    next_attempt: Instant,
    backoff: Duration,
}

/// A click sink with an on-disk queue in front of it.
pub struct SpillingSink {
    inner: Arc<dyn ClickSink>,
    db: Database,
    queue: Keyspace,
    capacity: u64,
    next_sequence: AtomicU64,
    retry: Mutex<Retry>,
    stats: Arc<SpillStats>,
    dead_letter: PathBuf,
}

impl std::fmt::Debug for SpillingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillingSink").finish_non_exhaustive()
    }
}

fn store_error(error: fjall::Error) -> SinkError {
    SinkError::Failed(format!("spill queue: {error}"))
}

impl SpillingSink {
    /// Wraps `inner`, keeping at most `capacity` windows queued in `dir`.
    pub fn open(inner: Arc<dyn ClickSink>, dir: &Path, capacity: u64) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::Failed(e.to_string()))?;
        let db = Database::builder(dir)
            .cache_size(2 * 1024 * 1024)
            .open()
            .map_err(store_error)?;
        let queue = db
            .keyspace("spilled_windows", KeyspaceCreateOptions::default)
            .map_err(store_error)?;
        let last = queue
            .last_key_value()
            .and_then(|guard| guard.key().ok())
            .and_then(|key| <[u8; 8]>::try_from(key.as_ref()).ok())
            .map_or(0, u64::from_be_bytes);
        let stats = Arc::new(SpillStats::default());
        stats
            .queued
            .store(queue.len().map_err(store_error)? as u64, Ordering::Relaxed);
        Ok(Self {
            inner,
            db,
            queue,
            capacity: capacity.max(1),
            next_sequence: AtomicU64::new(last + 1),
            retry: Mutex::new(Retry {
                next_attempt: Instant::now(),
                backoff: MIN_BACKOFF,
            }),
            stats,
            dead_letter: dir.join(DEAD_LETTER_FILE),
        })
    }

    /// Where refused windows are kept, one JSON object a line:
    /// `{"error": …, "batch": {…}}`.
    pub fn dead_letter_path(&self) -> &Path {
        &self.dead_letter
    }

    /// Appends a window the sink will never take to the dead-letter file, so
    /// the queue moves on and the window can still be inspected or replayed.
    fn dead_letter(&self, batch: &WindowBatch, error: &SinkError) -> Result<(), SinkError> {
        let line = serde_json::json!({ "error": error.to_string(), "batch": batch });
        let mut text = serde_json::to_vec(&line).expect("batches serialize");
        text.push(b'\n');
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.dead_letter)
            .and_then(|mut file| file.write_all(&text).and_then(|()| file.sync_data()))
            .map_err(|e| SinkError::Failed(format!("dead-letter file: {e}")))?;
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            %error,
            node = %batch.node,
            shard = batch.shard,
            window_start = batch.window_start,
            file = %self.dead_letter.display(),
            "click sink refused a window for good; kept it in the dead-letter file"
        );
        Ok(())
    }

    pub fn stats(&self) -> &Arc<SpillStats> {
        &self.stats
    }

    /// Windows waiting in the queue.
    pub fn queued(&self) -> u64 {
        self.stats.queued.load(Ordering::Relaxed)
    }

    fn enqueue(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        if self.queued() >= self.capacity {
            // Full: the oldest window makes room (counted, never silent).
            if let Some(oldest) = self.queue.first_key_value() {
                let key = oldest.key().map_err(store_error)?;
                self.queue.remove(key).map_err(store_error)?;
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("click spill queue full: dropped the oldest window");
            }
        }
        let sequence = self.next_sequence.fetch_add(1, Ordering::Relaxed);
        let bytes = serde_json::to_vec(batch).expect("batches serialize");
        self.queue
            .insert(sequence.to_be_bytes(), bytes)
            .map_err(store_error)?;
        self.db.persist(PersistMode::Buffer).map_err(store_error)?;
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.stats.spilled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes queued windows in order until the queue is empty or the sink
    /// fails again; waits out the backoff first. Returns how many were written.
    pub fn drain(&self) -> usize {
        let mut retry = self.retry.lock().unwrap_or_else(|e| e.into_inner());
        if self.queued() == 0 || Instant::now() < retry.next_attempt {
            return 0;
        }
        let mut written = 0;
        while let Some(item) = self.queue.first_key_value() {
            let Ok((key, value)) = item.into_inner() else {
                break;
            };
            let batch: WindowBatch = match serde_json::from_slice(&value) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "unreadable spilled window dropped");
                    let _ = self.queue.remove(key);
                    self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            match self.inner.write(&batch) {
                Err(error @ SinkError::Failed(_)) => {
                    if self.dead_letter(&batch, &error).is_err() {
                        break;
                    }
                    let _ = self.queue.remove(key);
                    self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(()) => {
                    let _ = self.queue.remove(key);
                    self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                    written += 1;
                    retry.backoff = MIN_BACKOFF;
                }
                Err(error) => {
                    let jitter = Duration::from_millis(jitter_millis(retry.backoff));
                    retry.next_attempt = Instant::now() + retry.backoff + jitter;
                    tracing::warn!(%error, queued = self.queued(), retry_in_ms = (retry.backoff + jitter).as_millis() as u64, "click sink still failing");
                    retry.backoff = (retry.backoff * 2).min(MAX_BACKOFF);
                    break;
                }
            }
        }
        written
    }

    /// Syncs the queue to disk.
    pub fn persist(&self) -> Result<(), SinkError> {
        self.db.persist(PersistMode::SyncAll).map_err(store_error)
    }
}

/// Up to half of `backoff`, from the clock's low bits (no RNG needed).
fn jitter_millis(backoff: Duration) -> u64 {
    let half = (backoff.as_millis() as u64 / 2).max(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    nanos % half
}

impl ClickSink for SpillingSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        if self.queued() > 0 {
            self.enqueue(batch)?;
            self.drain();
            return Ok(());
        }
        match self.inner.write(batch) {
            Ok(()) => {
                self.stats.written.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(error @ SinkError::Failed(_)) => self.dead_letter(batch, &error),
            Err(error) => {
                tracing::warn!(%error, "click sink failed; spilling the window to disk");
                self.enqueue(batch)?;
                let mut retry = self.retry.lock().unwrap_or_else(|e| e.into_inner());
                retry.next_attempt = Instant::now() + retry.backoff;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    use ricochet_model::clicks::{Dimension, WindowRow};

    /// A sink that fails while `down` is set and records what it stored.
    #[derive(Default)]
    struct FlakySink {
        down: AtomicBool,
        stored: Mutex<Vec<i64>>,
        /// A window refused for good.
        poison: Option<i64>,
    }

    impl ClickSink for FlakySink {
        fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
            if self.poison == Some(batch.window_start) {
                return Err(SinkError::Failed("schema mismatch".into()));
            }
            if self.down.load(Ordering::Relaxed) {
                return Err(SinkError::Unavailable("down".into()));
            }
            self.stored.lock().unwrap().push(batch.window_start);
            Ok(())
        }
    }

    fn batch(window: i64) -> WindowBatch {
        WindowBatch {
            node: "n".into(),
            shard: 0,
            window_start: window,
            rows: vec![WindowRow {
                link_id: 1,
                window_start: window,
                dimension: Dimension::Total,
                value: String::new(),
                bot: false,
                count: 1,
            }],
        }
    }

    fn wait_drained(sink: &SpillingSink) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.queued() > 0 {
            assert!(Instant::now() < deadline, "the queue drained");
            sink.drain();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn failing_windows_spill_and_drain_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(FlakySink::default());
        let sink = SpillingSink::open(inner.clone(), dir.path(), 100).unwrap();
        sink.write(&batch(0)).unwrap();
        inner.down.store(true, Ordering::Relaxed);
        for window in [10, 20, 30] {
            sink.write(&batch(window)).unwrap();
        }
        assert_eq!(sink.queued(), 3);
        assert_eq!(sink.drain(), 0, "still down (or backing off)");
        inner.down.store(false, Ordering::Relaxed);
        sink.write(&batch(40)).unwrap();
        wait_drained(&sink);
        assert_eq!(
            *inner.stored.lock().unwrap(),
            vec![0, 10, 20, 30, 40],
            "in order, none lost"
        );
        assert_eq!(sink.stats().spilled.load(Ordering::Relaxed), 4);
        assert_eq!(sink.stats().dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_queue_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(FlakySink::default());
        inner.down.store(true, Ordering::Relaxed);
        {
            let sink = SpillingSink::open(inner.clone(), dir.path(), 100).unwrap();
            sink.write(&batch(10)).unwrap();
            sink.write(&batch(20)).unwrap();
        }
        inner.down.store(false, Ordering::Relaxed);
        let sink = SpillingSink::open(inner.clone(), dir.path(), 100).unwrap();
        assert_eq!(sink.queued(), 2);
        sink.write(&batch(30)).unwrap();
        wait_drained(&sink);
        assert_eq!(*inner.stored.lock().unwrap(), vec![10, 20, 30]);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(FlakySink::default());
        inner.down.store(true, Ordering::Relaxed);
        let sink = SpillingSink::open(inner.clone(), dir.path(), 2).unwrap();
        for window in [10, 20, 30] {
            sink.write(&batch(window)).unwrap();
        }
        assert_eq!(sink.queued(), 2);
        assert_eq!(sink.stats().dropped.load(Ordering::Relaxed), 1);
        inner.down.store(false, Ordering::Relaxed);
        wait_drained(&sink);
        assert_eq!(*inner.stored.lock().unwrap(), vec![20, 30]);
    }

    #[test]
    fn a_refused_window_goes_to_the_dead_letter_file_and_the_queue_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(FlakySink {
            poison: Some(20),
            ..FlakySink::default()
        });
        let sink = SpillingSink::open(inner.clone(), dir.path(), 100).unwrap();
        // Refused straight away: nothing queues.
        sink.write(&batch(20)).unwrap();
        assert_eq!(sink.queued(), 0);
        // Refused while draining: the windows behind it still go through.
        inner.down.store(true, Ordering::Relaxed);
        sink.write(&batch(10)).unwrap();
        sink.write(&batch(20)).unwrap();
        sink.write(&batch(30)).unwrap();
        inner.down.store(false, Ordering::Relaxed);
        wait_drained(&sink);
        assert_eq!(*inner.stored.lock().unwrap(), vec![10, 30]);
        assert_eq!(sink.stats().dead_lettered.load(Ordering::Relaxed), 2);
        let text = std::fs::read_to_string(sink.dead_letter_path()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        for line in &lines {
            assert_eq!(line["batch"]["window_start"], 20);
            assert!(line["error"].as_str().unwrap().contains("schema mismatch"));
            let kept: WindowBatch = serde_json::from_value(line["batch"].clone()).unwrap();
            assert_eq!(kept, batch(20));
        }
    }
}
