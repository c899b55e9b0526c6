//! `FjallSink`: click windows in an embedded fjall store, for single-node and
//! all-in-one installs. Each closed 10-second window also rolls up into minute,
//! hour and day rows, so long ranges read few rows. Rows are keyed
//! link → dimension → time, so a series or breakdown is a range scan per
//! level; a second keyspace per level keyed by time serves the top-links query.
//! Every write (window plus its rollups) is one atomic batch of absolute counts.
//!
//! A window row holds the absolute count its (node, shard) last wrote for it.
//! A write compares each row with the stored one and moves the rollups by the
//! difference, so a retried window changes nothing and a re-flushed one
//! replaces its earlier values. The rollup values of recent buckets are kept
//! in memory (as last committed), so most writes read only the window rows,
//! which are usually absent.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use ricochet_model::clicks::{Dimension, WindowBatch};
use ricochet_model::{LinkId, UnixMillis};

use super::sink::{ClickReader, ClickSink, Counts, Interval, SinkError, bucket_series, rank};

/// Granularities, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Window,
    Minute,
    Hour,
    Day,
}

impl Level {
    pub const ALL: [Level; 4] = [Level::Window, Level::Minute, Level::Hour, Level::Day];

    pub fn millis(self) -> i64 {
        match self {
            Self::Window => 10_000,
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Window => "10s",
            Self::Minute => "1m",
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }

    fn of(interval: Interval) -> Self {
        match interval {
            Interval::TenSeconds => Self::Window,
            Interval::Minute => Self::Minute,
            Interval::Hour => Self::Hour,
            Interval::Day => Self::Day,
        }
    }

    fn floor(self, at: UnixMillis) -> UnixMillis {
        at.div_euclid(self.millis()) * self.millis()
    }
}

/// How long rows of each level are kept (`None`: forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub window: Option<Duration>,
    pub minute: Option<Duration>,
    pub hour: Option<Duration>,
    pub day: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            window: Some(Duration::from_secs(7 * DAY)),
            minute: Some(Duration::from_secs(31 * DAY)),
            hour: Some(Duration::from_secs(400 * DAY)),
            day: None,
        }
    }
}

impl Retention {
    fn of(&self, level: Level) -> Option<Duration> {
        match level {
            Level::Window => self.window,
            Level::Minute => self.minute,
            Level::Hour => self.hour,
            Level::Day => self.day,
        }
    }
}

struct LevelStore {
    rows: Keyspace,
    windows: Keyspace,
}

/// Which keyspace a value belongs to: level and rows (false) or windows (true).
type Place = (Level, bool);

/// A key prefixed with one byte naming its [`Place`], so one map holds all.
fn tagged((level, windows): Place, key: &[u8]) -> Vec<u8> {
    let mut tagged = Vec::with_capacity(key.len() + 1);
    tagged.push(level as u8 * 2 + windows as u8);
    tagged.extend_from_slice(key);
    tagged
}

fn level_of_tagged(tagged: &[u8]) -> Level {
    Level::ALL[usize::from(tagged[0] / 2) % Level::ALL.len()]
}

/// Rollup values as last committed, for the buckets windows are being
/// written to, by tagged key. Only the writer (under the lock) uses it.
#[derive(Default)]
struct RecentValues {
    values: HashMap<Vec<u8>, (UnixMillis, u64)>,
}

/// Rollup values remembered at most; beyond it, values of buckets older than
/// the one being written are forgotten first (they are read again if needed).
const RECENT_VALUES: usize = 200_000;

impl RecentValues {
    /// Remembers a committed value, making room first when full.
    fn remember(&mut self, key: Vec<u8>, value: (UnixMillis, u64), window_start: UnixMillis) {
        if self.values.len() >= RECENT_VALUES && !self.values.contains_key(&key) {
            self.values
                .retain(|key, (bucket, _)| *bucket >= level_of_tagged(key).floor(window_start));
            if self.values.len() >= RECENT_VALUES * 3 / 4 {
                self.values.clear();
            }
        }
        self.values.insert(key, value);
    }
}

/// The embedded click store.
pub struct FjallSink {
    db: Database,
    levels: [LevelStore; 4],
    /// Serializes writes (each reads what the previous one committed).
    recent: Mutex<RecentValues>,
}

impl std::fmt::Debug for FjallSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallSink").finish_non_exhaustive()
    }
}

fn failed(error: fjall::Error) -> SinkError {
    SinkError::Unavailable(error.to_string())
}

/// An i64 as 8 bytes that sort like the numbers.
fn sortable(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn unsortable(bytes: &[u8]) -> i64 {
    (u64::from_be_bytes(bytes[..8].try_into().unwrap()) ^ (1 << 63)) as i64
}

fn count_of(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// `link | dimension | time` — the prefix of a row key.
fn row_prefix(link: LinkId, dimension: Dimension, at: UnixMillis) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&link.to_be_bytes());
    key.push(dimension.code());
    key.extend_from_slice(&sortable(at));
    key
}

/// What follows the time: bot flag, node, shard.
fn source_suffix(key: &mut Vec<u8>, bot: bool, node: &str, shard: u16) {
    key.push(bot as u8);
    let node = &node.as_bytes()[..node.len().min(255)];
    key.push(node.len() as u8);
    key.extend_from_slice(node);
    key.extend_from_slice(&shard.to_be_bytes());
}

/// A parsed row key.
struct RowKey<'k> {
    at: UnixMillis,
    bot: bool,
    value: &'k [u8],
}

fn parse_row_key(key: &[u8]) -> Option<RowKey<'_>> {
    let at = unsortable(key.get(9..17)?);
    let bot = *key.get(17)? == 1;
    // Then node (length-prefixed) and shard (2 bytes), which reads sum over.
    let node_len = *key.get(18)? as usize;
    let value = key.get(21 + node_len..)?;
    Some(RowKey { at, bot, value })
}

/// Splits `[from, to)` into pieces each read from the coarsest level whose
/// buckets fit whole inside it.
fn pieces(from: UnixMillis, to: UnixMillis) -> Vec<(Level, UnixMillis, UnixMillis)> {
    let mut out = Vec::new();
    split(from, to, Level::ALL.len() - 1, &mut out);
    out
}

fn split(
    from: UnixMillis,
    to: UnixMillis,
    level: usize,
    out: &mut Vec<(Level, UnixMillis, UnixMillis)>,
) {
    if from >= to {
        return;
    }
    let current = Level::ALL[level];
    if level == 0 {
        out.push((current, from, to));
        return;
    }
    let step = current.millis();
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    let last = to.div_euclid(step) * step;
    if first >= last {
        split(from, to, level - 1, out);
        return;
    }
    split(from, first, level - 1, out);
    out.push((current, first, last));
    split(last, to, level - 1, out);
}

impl FjallSink {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::Failed(e.to_string()))?;
        let db = Database::builder(dir)
            .cache_size(16 * 1024 * 1024)
            .open()
            .map_err(failed)?;
        let level = |level: Level| -> Result<LevelStore, SinkError> {
            Ok(LevelStore {
                rows: db
                    .keyspace(
                        &format!("rows_{}", level.name()),
                        KeyspaceCreateOptions::default,
                    )
                    .map_err(failed)?,
                windows: db
                    .keyspace(
                        &format!("windows_{}", level.name()),
                        KeyspaceCreateOptions::default,
                    )
                    .map_err(failed)?,
            })
        };
        let levels = [
            level(Level::Window)?,
            level(Level::Minute)?,
            level(Level::Hour)?,
            level(Level::Day)?,
        ];
        Ok(Self {
            db,
            levels,
            recent: Mutex::new(RecentValues::default()),
        })
    }

    fn keyspace(&self, (level, windows): Place) -> &Keyspace {
        let store = self.level(level);
        if windows { &store.windows } else { &store.rows }
    }

    fn stored_count(&self, place: Place, key: &[u8]) -> Result<u64, SinkError> {
        Ok(self
            .keyspace(place)
            .get(key)
            .map_err(failed)?
            .map_or(0, |value| count_of(&value)))
    }

    fn level(&self, level: Level) -> &LevelStore {
        &self.levels[level as usize]
    }

    /// Syncs written batches to disk.
    pub fn persist(&self) -> Result<(), SinkError> {
        self.db.persist(PersistMode::SyncAll).map_err(failed)
    }

    fn scan_rows(
        &self,
        level: Level,
        link: LinkId,
        dimension: Dimension,
        from: UnixMillis,
        to: UnixMillis,
        mut visit: impl FnMut(&RowKey<'_>, u64),
    ) -> Result<(), SinkError> {
        let start = row_prefix(link, dimension, from);
        let end = row_prefix(link, dimension, to);
        for item in self.level(level).rows.range(start..end) {
            let (key, value) = item.into_inner().map_err(failed)?;
            if let Some(row) = parse_row_key(&key) {
                visit(&row, count_of(&value));
            }
        }
        Ok(())
    }

    /// Deletes rows older than each level's retention; returns how many.
    pub fn prune(&self, retention: &Retention, now: UnixMillis) -> Result<u64, SinkError> {
        let mut removed = 0;
        for level in Level::ALL {
            let Some(keep) = retention.of(level) else {
                continue;
            };
            let cutoff = now - keep.as_millis() as i64;
            let store = self.level(level);
            // Windows keyspace: keyed by time first.
            let mut batch = self.db.batch();
            for item in store.windows.range(..sortable(cutoff)) {
                let (key, _) = item.into_inner().map_err(failed)?;
                batch.remove(&store.windows, key);
                removed += 1;
            }
            // Rows: keyed by link first, so every row is looked at.
            for item in store.rows.iter() {
                let (key, _) = item.into_inner().map_err(failed)?;
                if parse_row_key(&key).is_some_and(|row| row.at < cutoff) {
                    batch.remove(&store.rows, key);
                    removed += 1;
                }
            }
            batch.commit().map_err(failed)?;
        }
        Ok(removed)
    }
}

/// `link | dimension | time | bot | node | shard | value`.
fn row_key(
    link: LinkId,
    dimension: Dimension,
    at: UnixMillis,
    bot: bool,
    batch: &WindowBatch,
    value: &str,
) -> Vec<u8> {
    let mut key = row_prefix(link, dimension, at);
    source_suffix(&mut key, bot, &batch.node, batch.shard);
    key.extend_from_slice(value.as_bytes());
    key
}

/// `time | link | bot | node | shard` — the top-links keyspace.
fn window_key(link: LinkId, at: UnixMillis, bot: bool, batch: &WindowBatch) -> Vec<u8> {
    let mut key = sortable(at).to_vec();
    key.extend_from_slice(&link.to_be_bytes());
    source_suffix(&mut key, bot, &batch.node, batch.shard);
    key
}

/// Rows committed together. A window's rows go in chunks so a big window
/// never builds one huge batch; each row moves with its rollups, so a write
/// cut off between chunks is completed exactly by its retry.
const ROWS_PER_COMMIT: usize = 4096;

impl FjallSink {
    /// Writes some rows of `batch` and their rollups in one atomic batch.
    fn write_rows(
        &self,
        batch: &WindowBatch,
        rows: &[ricochet_model::clicks::WindowRow],
        recent: &mut RecentValues,
    ) -> Result<(), SinkError> {
        let mut write = self.db.batch();
        // Values this commit writes, by tagged key (so a key written twice
        // moves from its first new value, not the stored one).
        let mut pending: HashMap<Vec<u8>, (UnixMillis, u64)> = HashMap::new();
        let current = |pending: &HashMap<Vec<u8>, (UnixMillis, u64)>,
                       tagged: &[u8],
                       place: Place,
                       key: &[u8]|
         -> Result<u64, SinkError> {
            match pending.get(tagged).or_else(|| recent.values.get(tagged)) {
                Some(&(_, value)) => Ok(value),
                None => self.stored_count(place, key),
            }
        };
        let at = batch.window_start;
        let mut places = Vec::with_capacity(8);
        for row in rows {
            let total = row.dimension == Dimension::Total;
            let key = row_key(row.link_id, row.dimension, at, row.bot, batch, &row.value);
            let place = (Level::Window, false);
            let tagged_key = tagged(place, &key);
            let old = current(&pending, &tagged_key, place, &key)?;
            if old == row.count {
                continue; // a retry, or nothing new
            }
            let delta = i128::from(row.count) - i128::from(old);
            write.insert(self.keyspace(place), key, row.count.to_be_bytes());
            pending.insert(tagged_key, (at, row.count));
            for level in Level::ALL {
                let bucket = level.floor(at);
                if level != Level::Window {
                    let key = row_key(
                        row.link_id,
                        row.dimension,
                        bucket,
                        row.bot,
                        batch,
                        &row.value,
                    );
                    places.push(((level, false), bucket, key));
                }
                if total {
                    let key = window_key(row.link_id, bucket, row.bot, batch);
                    places.push(((level, true), bucket, key));
                }
            }
            for (place, bucket, key) in places.drain(..) {
                let tagged_key = tagged(place, &key);
                let value = u64::try_from(
                    (i128::from(current(&pending, &tagged_key, place, &key)?) + delta).max(0),
                )
                .unwrap_or(u64::MAX);
                write.insert(self.keyspace(place), key, value.to_be_bytes());
                pending.insert(tagged_key, (bucket, value));
            }
        }
        write.commit().map_err(failed)?;
        // Only committed values are remembered, and only rollups: a failed
        // write changes nothing, and window rows are rarely written twice.
        for (key, value) in pending {
            if level_of_tagged(&key) != Level::Window {
                recent.remember(key, value, at);
            }
        }
        Ok(())
    }
}

impl ClickSink for FjallSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        for rows in batch.rows.chunks(ROWS_PER_COMMIT) {
            self.write_rows(batch, rows, &mut recent)?;
        }
        Ok(())
    }
}

impl ClickReader for FjallSink {
    fn series(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        interval: Interval,
    ) -> Result<Vec<(UnixMillis, Counts)>, SinkError> {
        let level = Level::of(interval);
        let first = level.floor(from);
        let mut buckets: Vec<(UnixMillis, Counts)> = Vec::new();
        self.scan_rows(level, link, Dimension::Total, first, to, |row, count| {
            let mut counts = Counts::default();
            counts.add(row.bot, count);
            buckets.push((row.at, counts));
        })?;
        Ok(bucket_series(first, to, interval, buckets))
    }

    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        let mut values: HashMap<String, Counts> = HashMap::new();
        for (level, start, end) in pieces(from, to) {
            self.scan_rows(level, link, dimension, start, end, |row, count| {
                values
                    .entry(String::from_utf8_lossy(row.value).into_owned())
                    .or_default()
                    .add(row.bot, count);
            })?;
        }
        let mut entries: Vec<(String, Counts)> = values.into_iter().collect();
        rank(&mut entries);
        Ok(entries)
    }

    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError> {
        let mut links: HashMap<LinkId, Counts> = HashMap::new();
        for (level, start, end) in pieces(from, to) {
            for item in self
                .level(level)
                .windows
                .range(sortable(start)..sortable(end))
            {
                let (key, value) = item.into_inner().map_err(failed)?;
                let (Some(link), Some(&bot)) = (key.get(8..16), key.get(16)) else {
                    continue;
                };
                let link = u64::from_be_bytes(link.try_into().unwrap());
                links
                    .entry(link)
                    .or_default()
                    .add(bot == 1, count_of(&value));
            }
        }
        let mut entries: Vec<(LinkId, Counts)> = links.into_iter().collect();
        rank(&mut entries);
        entries.truncate(limit);
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::clicks::WindowRow;

    #[test]
    fn passes_the_sink_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        crate::clicks::conformance::run(&sink, &sink);
    }

    fn total(link: u64, window: i64, count: u64) -> WindowBatch {
        WindowBatch {
            node: "n".into(),
            shard: 0,
            window_start: window,
            rows: vec![WindowRow {
                link_id: link,
                window_start: window,
                dimension: Dimension::Total,
                value: String::new(),
                bot: false,
                count,
            }],
        }
    }

    #[test]
    fn keeps_rows_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let sink = FjallSink::open(dir.path()).unwrap();
            sink.write(&total(7, 0, 3)).unwrap();
            sink.persist().unwrap();
        }
        let sink = FjallSink::open(dir.path()).unwrap();
        let series = sink.series(7, 0, 10_000, Interval::TenSeconds).unwrap();
        assert_eq!(series, vec![(0, Counts { humans: 3, bots: 0 })]);
    }

    #[test]
    fn windows_roll_up_into_minutes_hours_and_days() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        let day = 86_400_000;
        // Windows across two minutes, two hours and two days; one rewritten.
        for (window, count) in [(0, 1), (10_000, 2), (60_000, 4), (3_600_000, 8), (day, 16)] {
            sink.write(&total(1, window, count)).unwrap();
        }
        sink.write(&total(1, 10_000, 3)).unwrap();
        let humans = |interval, from, to| -> Vec<u64> {
            sink.series(1, from, to, interval)
                .unwrap()
                .into_iter()
                .map(|(_, c)| c.humans)
                .collect()
        };
        assert_eq!(humans(Interval::Minute, 0, 120_000), [4, 4]);
        assert_eq!(humans(Interval::Hour, 0, 2 * 3_600_000), [8, 8]);
        assert_eq!(humans(Interval::Day, 0, 2 * day), [16, 16]);
        // A breakdown over a long unaligned range reads every level once.
        let all = sink.breakdown(1, 5_000, 2 * day, Dimension::Total).unwrap();
        assert_eq!(
            all,
            vec![(
                String::new(),
                Counts {
                    humans: 31,
                    bots: 0
                }
            )]
        );
        let top = sink.top_links(0, 2 * day, 5).unwrap();
        assert_eq!(
            top,
            vec![(
                1,
                Counts {
                    humans: 32,
                    bots: 0
                }
            )]
        );
    }

    #[test]
    fn rollups_stay_exact_across_reopen_retries_and_rewrites() {
        let dir = tempfile::tempdir().unwrap();
        let hour = 3_600_000;
        let humans = |sink: &FjallSink, interval, from, to| -> Vec<u64> {
            sink.series(7, from, to, interval)
                .unwrap()
                .into_iter()
                .map(|(_, c)| c.humans)
                .collect()
        };
        {
            let sink = FjallSink::open(dir.path()).unwrap();
            for window in 0..6 {
                sink.write(&total(7, window * 10_000, 1)).unwrap();
            }
            assert_eq!(humans(&sink, Interval::Minute, 0, 60_000), [6]);
        }
        // Reopened: nothing remembered, the rollups are read back.
        let sink = FjallSink::open(dir.path()).unwrap();
        sink.write(&total(7, 60_000, 5)).unwrap();
        sink.write(&total(7, 20_000, 1)).unwrap(); // a retry
        sink.write(&total(7, 30_000, 4)).unwrap(); // a re-flush, 1 → 4
        assert_eq!(humans(&sink, Interval::Minute, 0, 120_000), [9, 5]);
        assert_eq!(humans(&sink, Interval::Hour, 0, hour), [14]);
        assert_eq!(humans(&sink, Interval::Day, 0, 86_400_000), [14]);
        // A batch naming one row twice: the last value stands, counted once.
        let mut twice = total(7, 70_000, 2);
        twice.rows.push(twice.rows[0].clone());
        twice.rows[1].count = 3;
        sink.write(&twice).unwrap();
        assert_eq!(humans(&sink, Interval::TenSeconds, 70_000, 80_000), [3]);
        assert_eq!(humans(&sink, Interval::Hour, 0, hour), [17]);
        let top = sink.top_links(0, hour, 1).unwrap();
        assert_eq!(top[0].1.humans, 17);
    }

    #[test]
    fn ranges_split_into_whole_buckets() {
        let day = 86_400_000;
        let parts = pieces(5_000, day + 70_000);
        assert_eq!(
            parts,
            vec![
                (Level::Window, 5_000, 60_000),
                (Level::Minute, 60_000, 3_600_000),
                (Level::Hour, 3_600_000, day),
                (Level::Minute, day, day + 60_000),
                (Level::Window, day + 60_000, day + 70_000),
            ]
        );
        assert_eq!(pieces(0, 3 * day), vec![(Level::Day, 0, 3 * day)]);
        let covered: i64 = parts.iter().map(|(_, a, b)| b - a).sum();
        assert_eq!(covered, day + 65_000, "every millisecond once: {parts:?}");
        for window in parts.windows(2) {
            assert_eq!(window[0].2, window[1].1, "contiguous: {parts:?}");
        }
    }

    #[test]
    fn retention_prunes_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        sink.write(&total(1, 0, 1)).unwrap();
        sink.write(&total(1, 100 * 86_400_000, 1)).unwrap();
        let now = 100 * 86_400_000 + 1;
        let removed = sink.prune(&Retention::default(), now).unwrap();
        assert!(removed > 0);
        assert!(
            sink.series(1, 0, 10_000, Interval::TenSeconds).unwrap()[0]
                .1
                .humans
                == 0
        );
        // Day rows are kept forever by default.
        assert_eq!(
            sink.series(1, 0, 86_400_000, Interval::Day).unwrap()[0]
                .1
                .humans,
            1
        );
    }
}
