//! `FjallSink`: click windows in an embedded fjall store, for single-node and
//! all-in-one installs.
//!
//! A closed window is written as one segment per (node, shard): its rows in
//! link order, a few KiB per stored value (see [`segment`]), replacing any
//! earlier segment of the same window atomically, so a retried window changes
//! nothing and a re-flushed one replaces its values. A background pass
//! ([`FjallSink::roll_up`]) merges finished windows into minute, hour and day
//! segments, and also writes hour and day rows keyed by link, so long ranges
//! of one link read a few adjacent rows.
//!
//! Every write marks the minute, hour and day it falls in as dirty (in the
//! same atomic batch); a rollup clears the mark unless another write came in
//! meanwhile. Reads use a coarse bucket only when it is clean and otherwise
//! read its finer parts, so a click counts as soon as its window is written
//! and never twice.

mod segment;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow};
use ricochet_model::{LinkId, UnixMillis};

use self::segment::{ChunkReader, ChunkWriter, PartStream};
use super::sink::{
    ClickReader, ClickSink, Counts, Interval, SinkError, add_implied, bucket_series, rank,
};

/// Granularities, finest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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

    /// The level this one is rolled up from (`Window` for itself).
    fn finer(self) -> Self {
        Self::ALL[(self as usize).saturating_sub(1)]
    }

    fn floor(self, at: UnixMillis) -> UnixMillis {
        at.div_euclid(self.millis()) * self.millis()
    }

    /// Start of the first bucket at or after `at`.
    fn ceil(self, at: UnixMillis) -> UnixMillis {
        let floor = self.floor(at);
        if floor == at {
            at
        } else {
            floor.saturating_add(self.millis())
        }
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

/// How long after a bucket ends it is rolled up: windows close a moment after
/// they end (the actors' grace), and rolling earlier would redo the work.
pub const ROLL_UP_DELAY: Duration = Duration::from_secs(20);

/// Inserts per committed batch while rolling up or pruning.
const KEYS_PER_COMMIT: usize = 8192;

/// The embedded click store.
pub struct FjallSink {
    db: Database,
    /// Per level: `time | source | dimension | last link` → a chunk of rows.
    segments: [Keyspace; 4],
    /// Per level: `level | time | source` → rows in that segment.
    manifest: Keyspace,
    /// Hour and day rows keyed by link:
    /// `link | dimension | time | bot | source | value` → count.
    by_link_hour: Keyspace,
    by_link_day: Keyspace,
    /// `level | time` → mark: buckets whose finer rows changed since their
    /// last rollup (mirrored in `dirty`).
    dirty_marks: Keyspace,
    dirty: RwLock<BTreeMap<(Level, UnixMillis), u64>>,
    next_mark: AtomicU64,
    /// Held while committing what sets or clears dirty marks.
    commit: Mutex<()>,
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

/// Who wrote a segment: `node length | node | shard`.
fn source_bytes(node: &str, shard: u16) -> Vec<u8> {
    let node = &node.as_bytes()[..node.len().min(255)];
    let mut source = Vec::with_capacity(node.len() + 3);
    source.push(node.len() as u8);
    source.extend_from_slice(node);
    source.extend_from_slice(&shard.to_be_bytes());
    source
}

/// The source at the start of `bytes` and its length.
fn source_len(bytes: &[u8]) -> Option<usize> {
    let len = usize::from(*bytes.first()?) + 3;
    (bytes.len() >= len).then_some(len)
}

/// `time | source` — the prefix of every part of one segment.
fn segment_prefix(at: UnixMillis, source: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 17);
    key.extend_from_slice(&sortable(at));
    key.extend_from_slice(source);
    key
}

/// `time | source | dimension` — the prefix of one segment part's chunks.
fn part_prefix(at: UnixMillis, source: &[u8], dimension: Dimension) -> Vec<u8> {
    let mut key = segment_prefix(at, source);
    key.push(dimension.code());
    key
}

fn chunk_key(at: UnixMillis, source: &[u8], dimension: Dimension, last: LinkId) -> Vec<u8> {
    let mut key = part_prefix(at, source, dimension);
    key.extend_from_slice(&last.to_be_bytes());
    key
}

fn manifest_key(level: Level, at: UnixMillis, source: &[u8]) -> Vec<u8> {
    let mut key = bucket_key(level, at).to_vec();
    key.extend_from_slice(source);
    key
}

/// `level | time`: a dirty mark's key, and the prefix of a level's manifest.
fn bucket_key(level: Level, at: UnixMillis) -> [u8; 9] {
    let mut key = [0; 9];
    key[0] = level as u8;
    key[1..].copy_from_slice(&sortable(at));
    key
}

/// `link | dimension | time` — the prefix of a by-link row key.
fn row_prefix(link: LinkId, dimension: Dimension, at: UnixMillis) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&link.to_be_bytes());
    key.push(dimension.code());
    key.extend_from_slice(&sortable(at));
    key
}

/// `link | dimension | time | bot | source | value`.
fn row_key(
    link: LinkId,
    dimension: Dimension,
    at: UnixMillis,
    bot: bool,
    source: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let mut key = row_prefix(link, dimension, at);
    key.push(bot as u8);
    key.extend_from_slice(source);
    key.extend_from_slice(value);
    key
}

/// A parsed by-link row key.
struct RowKey<'k> {
    at: UnixMillis,
    bot: bool,
    value: &'k [u8],
}

fn parse_row_key(key: &[u8]) -> Option<RowKey<'_>> {
    let at = unsortable(key.get(9..17)?);
    let bot = *key.get(17)? == 1;
    // Then the source, which reads sum over.
    let source = source_len(key.get(18..)?)?;
    let value = key.get(18 + source..)?;
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
    let first = current.ceil(from);
    let last = current.floor(to);
    if first >= last {
        split(from, to, level - 1, out);
        return;
    }
    split(from, first, level - 1, out);
    out.push((current, first, last));
    split(last, to, level - 1, out);
}

/// Replaces each dirty bucket of a piece by its finer parts, so every piece
/// left is clean (windows are never dirty). `from` and `to` are aligned to
/// `level`'s buckets unless `level` is `Window`.
fn clean_pieces(
    dirty: &BTreeMap<(Level, UnixMillis), u64>,
    level: Level,
    from: UnixMillis,
    to: UnixMillis,
    out: &mut Vec<(Level, UnixMillis, UnixMillis)>,
) {
    if from >= to {
        return;
    }
    if level == Level::Window {
        out.push((level, from, to));
        return;
    }
    let mut start = from;
    for &(_, bucket) in dirty.range((level, from)..(level, to)).map(|(key, _)| key) {
        if bucket > start {
            out.push((level, start, bucket));
        }
        let end = bucket + level.millis();
        clean_pieces(dirty, level.finer(), bucket, end, out);
        start = end;
    }
    if start < to {
        out.push((level, start, to));
    }
}

/// Collects the rows of one write or rollup into batches of bounded size.
struct Batches<'s> {
    db: &'s Database,
    batch: OwnedWriteBatch,
    keys: usize,
}

impl<'s> Batches<'s> {
    fn new(db: &'s Database) -> Self {
        Self {
            db,
            batch: db.batch(),
            keys: 0,
        }
    }

    fn insert(
        &mut self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(), SinkError> {
        self.batch.insert(keyspace, key, value);
        self.step()
    }

    fn remove(&mut self, keyspace: &Keyspace, key: fjall::UserKey) -> Result<(), SinkError> {
        self.batch.remove(keyspace, key);
        self.step()
    }

    fn step(&mut self) -> Result<(), SinkError> {
        self.keys += 1;
        if self.keys >= KEYS_PER_COMMIT {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SinkError> {
        let batch = std::mem::replace(&mut self.batch, self.db.batch());
        self.keys = 0;
        batch.commit().map_err(failed)
    }
}

impl FjallSink {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::Failed(e.to_string()))?;
        let db = Database::builder(dir)
            .cache_size(16 * 1024 * 1024)
            .open()
            .map_err(failed)?;
        let keyspace = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        let segments = [Level::Window, Level::Minute, Level::Hour, Level::Day]
            .map(|level| keyspace(&format!("segments_{}", level.name())));
        let [window, minute, hour, day] = segments;
        let segments = [
            window.map_err(failed)?,
            minute.map_err(failed)?,
            hour.map_err(failed)?,
            day.map_err(failed)?,
        ];
        let dirty_marks = keyspace("dirty").map_err(failed)?;
        let mut dirty = BTreeMap::new();
        let mut last_mark = 0;
        for item in dirty_marks.iter() {
            let (key, value) = item.into_inner().map_err(failed)?;
            let Some(&level) = Level::ALL.get(usize::from(key[0])) else {
                continue;
            };
            let mark = count_of(&value);
            last_mark = last_mark.max(mark);
            dirty.insert((level, unsortable(&key[1..])), mark);
        }
        Ok(Self {
            manifest: keyspace("manifest").map_err(failed)?,
            by_link_hour: keyspace("by_link_1h").map_err(failed)?,
            by_link_day: keyspace("by_link_1d").map_err(failed)?,
            segments,
            dirty_marks,
            dirty: RwLock::new(dirty),
            next_mark: AtomicU64::new(last_mark + 1),
            commit: Mutex::new(()),
            db,
        })
    }

    /// Syncs written batches to disk.
    pub fn persist(&self) -> Result<(), SinkError> {
        self.db.persist(PersistMode::SyncAll).map_err(failed)
    }

    fn segments(&self, level: Level) -> &Keyspace {
        &self.segments[level as usize]
    }

    /// The by-link rows of a level, kept for hours and days.
    fn by_link(&self, level: Level) -> Option<&Keyspace> {
        match level {
            Level::Hour => Some(&self.by_link_hour),
            Level::Day => Some(&self.by_link_day),
            Level::Window | Level::Minute => None,
        }
    }

    fn dirty(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<(Level, UnixMillis), u64>> {
        self.dirty.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Buckets waiting for a rollup.
    pub fn dirty_buckets(&self) -> usize {
        self.dirty().len()
    }

    /// The clean pieces covering `[from, to)`, read from `level` down.
    fn clean(&self, level: Level, from: UnixMillis, to: UnixMillis) -> Vec<(Level, i64, i64)> {
        let dirty = self.dirty();
        let mut out = Vec::new();
        clean_pieces(&dirty, level, from, to, &mut out);
        out
    }

    /// The clean pieces of `[from, to)`, each read from the coarsest level
    /// whose buckets fit whole inside it.
    fn clean_range(&self, from: UnixMillis, to: UnixMillis) -> Vec<(Level, i64, i64)> {
        let dirty = self.dirty();
        let mut out = Vec::new();
        for (level, start, end) in pieces(from, to) {
            clean_pieces(&dirty, level, start, end, &mut out);
        }
        out
    }

    /// The segments of `level` starting in `[from, to)`: (start, source).
    fn segments_in(
        &self,
        level: Level,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<(UnixMillis, Vec<u8>)>, SinkError> {
        let mut found = Vec::new();
        let start = bucket_key(level, from);
        let end = bucket_key(level, to);
        for item in self.manifest.range(start..end) {
            let key = item.key().map_err(failed)?;
            let Some(source) = key.get(9..).filter(|s| source_len(s).is_some()) else {
                continue;
            };
            found.push((unsortable(&key[1..9]), source.to_vec()));
        }
        Ok(found)
    }

    /// Visits the rows of `link` and `dimension` in the clean piece
    /// `(level, from, to)`: (bucket start, bot, value, count).
    fn read_piece(
        &self,
        (level, from, to): (Level, UnixMillis, UnixMillis),
        link: LinkId,
        dimension: Dimension,
        visit: &mut impl FnMut(UnixMillis, bool, &[u8], u64),
    ) -> Result<(), SinkError> {
        if let Some(rows) = self.by_link(level) {
            let start = row_prefix(link, dimension, from);
            let end = row_prefix(link, dimension, to);
            for item in rows.range(start..end) {
                let (key, value) = item.into_inner().map_err(failed)?;
                if let Some(row) = parse_row_key(&key) {
                    visit(row.at, row.bot, row.value, count_of(&value));
                }
            }
            return Ok(());
        }
        // Seek the one chunk of each segment that can hold the link.
        for (at, source) in self.segments_in(level, from, to)? {
            let start = chunk_key(at, &source, dimension, link);
            let end = chunk_key(at, &source, dimension, LinkId::MAX);
            let Some(item) = self.segments(level).range(start..=end).next() else {
                continue;
            };
            let chunk = item.value().map_err(failed)?;
            for row in ChunkReader::new(&chunk) {
                if row.link > link {
                    break;
                }
                if row.link == link {
                    visit(at, row.bot, row.value, row.count);
                }
            }
        }
        Ok(())
    }

    /// Removes every segment of `level` at `at`.
    fn remove_segments(
        &self,
        batches: &mut Batches<'_>,
        level: Level,
        at: UnixMillis,
    ) -> Result<(), SinkError> {
        for item in self.segments(level).prefix(sortable(at)) {
            batches.remove(self.segments(level), item.key().map_err(failed)?)?;
        }
        for item in self.manifest.prefix(bucket_key(level, at)) {
            batches.remove(&self.manifest, item.key().map_err(failed)?)?;
        }
        Ok(())
    }

    /// Deletes rows older than each level's retention; returns how many.
    pub fn prune(&self, retention: &Retention, now: UnixMillis) -> Result<u64, SinkError> {
        let mut removed = 0;
        let mut batches = Batches::new(&self.db);
        for level in Level::ALL {
            let Some(keep) = retention.of(level) else {
                continue;
            };
            let cutoff = now.saturating_sub(keep.as_millis() as i64);
            // Segments and their manifest are keyed by time first.
            for item in self.segments(level).range(..sortable(cutoff)) {
                batches.remove(self.segments(level), item.key().map_err(failed)?)?;
                removed += 1;
            }
            for item in self
                .manifest
                .range(bucket_key(level, i64::MIN)..bucket_key(level, cutoff))
            {
                batches.remove(&self.manifest, item.key().map_err(failed)?)?;
            }
            // By-link rows: keyed by link first, so every row is looked at.
            if let Some(rows) = self.by_link(level) {
                for item in rows.iter() {
                    let key = item.key().map_err(failed)?;
                    if parse_row_key(&key).is_some_and(|row| row.at < cutoff) {
                        batches.remove(rows, key)?;
                        removed += 1;
                    }
                }
            }
        }
        batches.commit()?;
        Ok(removed)
    }
}

/// The rows of one dimension of a batch, in (link, bot, value) order, the
/// last of equal rows standing for them.
fn sorted_rows(rows: Vec<&WindowRow>) -> Vec<&WindowRow> {
    fn key(row: &WindowRow) -> (LinkId, bool, &[u8]) {
        (row.link_id, row.bot, row.value.as_bytes())
    }
    let mut rows = rows;
    if !rows.is_sorted_by(|a, b| key(a) <= key(b)) {
        rows.sort_by(|a, b| key(a).cmp(&key(b)));
    }
    let mut unique: Vec<&WindowRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match unique.last_mut() {
            Some(last) if key(last) == key(row) => *last = row,
            _ => unique.push(row),
        }
    }
    unique
}

impl ClickSink for FjallSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        let at = batch.window_start;
        let source = source_bytes(&batch.node, batch.shard);
        // Encoded before taking the lock: the slow part of a big window.
        let mut by_dimension: Vec<Vec<&WindowRow>> = vec![Vec::new(); Dimension::ALL.len()];
        for row in &batch.rows {
            by_dimension[row.dimension as usize].push(row);
        }
        let mut chunks = Vec::new();
        let mut rows = 0u64;
        for (dimension, dimension_rows) in Dimension::ALL.into_iter().zip(by_dimension) {
            let mut writer = ChunkWriter::default();
            for row in sorted_rows(dimension_rows) {
                rows += 1;
                chunks.extend(
                    writer
                        .push(row.link_id, row.bot, row.value.as_bytes(), row.count)
                        .map(|chunk| (dimension, chunk)),
                );
            }
            chunks.extend(writer.finish().map(|chunk| (dimension, chunk)));
        }

        let _commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        // One atomic batch: the window replaces its earlier segment, and the
        // buckets it rolls up into are marked.
        let mut write = self.db.batch();
        for item in self
            .segments(Level::Window)
            .prefix(segment_prefix(at, &source))
        {
            write.remove(self.segments(Level::Window), item.key().map_err(failed)?);
        }
        for (dimension, (last, bytes)) in chunks {
            write.insert(
                self.segments(Level::Window),
                chunk_key(at, &source, dimension, last),
                bytes,
            );
        }
        write.insert(
            &self.manifest,
            manifest_key(Level::Window, at, &source),
            rows.to_be_bytes(),
        );
        let mut marks = Vec::with_capacity(3);
        for level in [Level::Minute, Level::Hour, Level::Day] {
            let mark = self.next_mark.fetch_add(1, Ordering::Relaxed);
            let bucket = level.floor(at);
            write.insert(
                &self.dirty_marks,
                bucket_key(level, bucket),
                mark.to_be_bytes(),
            );
            marks.push(((level, bucket), mark));
        }
        write.commit().map_err(failed)?;
        let mut dirty = self.dirty.write().unwrap_or_else(PoisonError::into_inner);
        dirty.extend(marks);
        Ok(())
    }
}

impl FjallSink {
    /// Rolls up every dirty bucket that ended at least [`ROLL_UP_DELAY`]
    /// before `now`, finest first; returns how many it rolled up.
    pub fn roll_up(&self, now: UnixMillis) -> Result<usize, SinkError> {
        let delay = ROLL_UP_DELAY.as_millis() as i64;
        let mut rolled = 0;
        for level in [Level::Minute, Level::Hour, Level::Day] {
            let due: Vec<(UnixMillis, u64)> = self
                .dirty()
                .range((level, i64::MIN)..=(level, i64::MAX))
                .map(|(&(_, bucket), &mark)| (bucket, mark))
                .filter(|&(bucket, _)| bucket.saturating_add(level.millis() + delay) <= now)
                .collect();
            for (bucket, mark) in due {
                let end = bucket + level.millis();
                let finer = level.finer();
                // Windows are never dirty.
                if self
                    .dirty()
                    .range((finer, bucket)..(finer, end))
                    .next()
                    .is_some()
                {
                    continue; // rolled once its parts are
                }
                self.roll_up_bucket(level, bucket)?;
                self.clear_mark(level, bucket, mark)?;
                rolled += 1;
            }
        }
        Ok(rolled)
    }

    /// Rebuilds the segments (and by-link rows) of one bucket from the
    /// segments of the finer level. The bucket is dirty meanwhile, so reads
    /// do not look at what is half rewritten.
    fn roll_up_bucket(&self, level: Level, bucket: UnixMillis) -> Result<(), SinkError> {
        let finer = level.finer();
        let mut sources: BTreeMap<Vec<u8>, Vec<UnixMillis>> = BTreeMap::new();
        for (at, source) in self.segments_in(finer, bucket, bucket + level.millis())? {
            sources.entry(source).or_default().push(at);
        }
        let mut batches = Batches::new(&self.db);
        self.remove_segments(&mut batches, level, bucket)?;
        for (source, parts) in sources {
            let mut rows = 0u64;
            for dimension in Dimension::ALL {
                let streams = parts
                    .iter()
                    .map(|&at| {
                        PartStream::new(
                            self.segments(finer)
                                .prefix(part_prefix(at, &source, dimension)),
                        )
                    })
                    .collect();
                let mut writer = ChunkWriter::default();
                segment::merge(streams, |row| {
                    rows += 1;
                    if let Some((last, bytes)) =
                        writer.push(row.link, row.bot, &row.value, row.count)
                    {
                        let key = chunk_key(bucket, &source, dimension, last);
                        batches.insert(self.segments(level), key, bytes)?;
                    }
                    if let Some(by_link) = self.by_link(level) {
                        let key =
                            row_key(row.link, dimension, bucket, row.bot, &source, &row.value);
                        batches.insert(by_link, key, row.count.to_be_bytes().to_vec())?;
                    }
                    Ok(())
                })?;
                if let Some((last, bytes)) = writer.finish() {
                    let key = chunk_key(bucket, &source, dimension, last);
                    batches.insert(self.segments(level), key, bytes)?;
                }
            }
            let key = manifest_key(level, bucket, &source);
            batches.insert(&self.manifest, key, rows.to_be_bytes().to_vec())?;
        }
        batches.commit()
    }

    /// Clears a bucket's dirty mark unless a write marked it again.
    fn clear_mark(&self, level: Level, bucket: UnixMillis, mark: u64) -> Result<(), SinkError> {
        let _commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        if self.dirty().get(&(level, bucket)) != Some(&mark) {
            return Ok(());
        }
        self.dirty_marks
            .remove(bucket_key(level, bucket))
            .map_err(failed)?;
        let mut dirty = self.dirty.write().unwrap_or_else(PoisonError::into_inner);
        dirty.remove(&(level, bucket));
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
        for piece in self.clean(level, first, level.ceil(to)) {
            self.read_piece(piece, link, Dimension::Total, &mut |at, bot, _, count| {
                let mut counts = Counts::default();
                counts.add(bot, count);
                buckets.push((level.floor(at), counts));
            })?;
        }
        Ok(bucket_series(first, to, interval, buckets))
    }

    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        let pieces = self.clean_range(from, to);
        let mut values: HashMap<Vec<u8>, Counts> = HashMap::new();
        for &piece in &pieces {
            self.read_piece(
                piece,
                link,
                dimension,
                &mut |_, bot, value, count| match values.get_mut(value) {
                    Some(counts) => counts.add(bot, count),
                    None => values.entry(value.to_vec()).or_default().add(bot, count),
                },
            )?;
        }
        let mut total = Counts::default();
        if dimension.has_implied() {
            for &piece in &pieces {
                self.read_piece(piece, link, Dimension::Total, &mut |_, bot, _, count| {
                    total.add(bot, count)
                })?;
            }
        }
        let mut entries: Vec<(String, Counts)> = values
            .into_iter()
            .map(|(value, counts)| (String::from_utf8_lossy(&value).into_owned(), counts))
            .collect();
        add_implied(dimension, &mut entries, total);
        Ok(entries)
    }

    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError> {
        let mut links: HashMap<LinkId, Counts> = HashMap::new();
        for (level, start, end) in self.clean_range(from, to) {
            for (at, source) in self.segments_in(level, start, end)? {
                let prefix = part_prefix(at, &source, Dimension::Total);
                for item in self.segments(level).prefix(prefix) {
                    let chunk = item.value().map_err(failed)?;
                    for row in ChunkReader::new(&chunk) {
                        links.entry(row.link).or_default().add(row.bot, row.count);
                    }
                }
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
    use crate::clicks::conformance::{batch, row};

    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 86_400_000;
    /// Late enough that every bucket written is due for its rollup.
    const LATER: UnixMillis = i64::MAX;

    #[test]
    fn passes_the_sink_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        crate::clicks::conformance::run(&sink, &sink);
    }

    fn total(link: u64, window: i64, count: u64) -> WindowBatch {
        batch(
            "n",
            0,
            window,
            vec![row(link, window, Dimension::Total, "", false, count)],
        )
    }

    fn humans(sink: &FjallSink, link: u64, interval: Interval, from: i64, to: i64) -> Vec<u64> {
        sink.series(link, from, to, interval)
            .unwrap()
            .into_iter()
            .map(|(_, c)| c.humans)
            .collect()
    }

    #[test]
    fn keeps_rows_and_dirty_marks_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let sink = FjallSink::open(dir.path()).unwrap();
            sink.write(&total(7, 0, 3)).unwrap();
            sink.write(&total(7, HOUR, 4)).unwrap();
            sink.persist().unwrap();
        }
        let sink = FjallSink::open(dir.path()).unwrap();
        assert_eq!(humans(&sink, 7, Interval::TenSeconds, 0, 10_000), [3]);
        assert_eq!(sink.dirty_buckets(), 5, "two minutes, two hours, one day");
        assert_eq!(sink.roll_up(LATER).unwrap(), 5);
        assert_eq!(sink.dirty_buckets(), 0);
        assert_eq!(humans(&sink, 7, Interval::Hour, 0, 2 * HOUR), [3, 4]);
        assert_eq!(humans(&sink, 7, Interval::Day, 0, DAY), [7]);
    }

    #[test]
    fn windows_roll_up_into_minutes_hours_and_days() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        // Windows across two minutes, two hours and two days; one rewritten.
        for (window, count) in [(0, 1), (10_000, 2), (MINUTE, 4), (HOUR, 8), (DAY, 16)] {
            sink.write(&total(1, window, count)).unwrap();
        }
        sink.write(&total(1, 10_000, 3)).unwrap();
        let check = |sink: &FjallSink| {
            assert_eq!(humans(sink, 1, Interval::Minute, 0, 2 * MINUTE), [4, 4]);
            assert_eq!(humans(sink, 1, Interval::Hour, 0, 2 * HOUR), [8, 8]);
            assert_eq!(humans(sink, 1, Interval::Day, 0, 2 * DAY), [16, 16]);
            // A breakdown over a long unaligned range reads every level once.
            let all = sink.breakdown(1, 5_000, 2 * DAY, Dimension::Total).unwrap();
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
            let top = sink.top_links(0, 2 * DAY, 5).unwrap();
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
        };
        check(&sink);
        // Only buckets that ended a while ago roll up.
        assert_eq!(sink.roll_up(MINUTE).unwrap(), 0);
        assert_eq!(sink.roll_up(2 * MINUTE + 20_000).unwrap(), 2, "two minutes");
        check(&sink);
        sink.roll_up(LATER).unwrap();
        assert_eq!(sink.dirty_buckets(), 0);
        check(&sink);
        // With the windows and minutes gone, hours and days still answer.
        let retention = Retention {
            window: Some(Duration::ZERO),
            minute: Some(Duration::ZERO),
            hour: None,
            day: None,
        };
        sink.prune(&retention, 3 * DAY).unwrap();
        assert_eq!(humans(&sink, 1, Interval::Minute, 0, 2 * MINUTE), [0, 0]);
        assert_eq!(humans(&sink, 1, Interval::Hour, 0, 2 * HOUR), [8, 8]);
        assert_eq!(humans(&sink, 1, Interval::Day, 0, 2 * DAY), [16, 16]);
        assert_eq!(sink.top_links(0, 2 * DAY, 5).unwrap()[0].1.humans, 32);
    }

    #[test]
    fn a_write_after_a_rollup_counts_once_and_is_rolled_again() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        for window in 0..6 {
            sink.write(&total(7, window * 10_000, 1)).unwrap();
        }
        sink.roll_up(LATER).unwrap();
        assert_eq!(humans(&sink, 7, Interval::Hour, 0, HOUR), [6]);
        sink.write(&total(7, 20_000, 1)).unwrap(); // a retry
        sink.write(&total(7, 30_000, 4)).unwrap(); // a re-flush, 1 → 4
        sink.write(&total(7, MINUTE, 5)).unwrap(); // a late window
        let check = |sink: &FjallSink| {
            assert_eq!(humans(sink, 7, Interval::Minute, 0, 2 * MINUTE), [9, 5]);
            assert_eq!(humans(sink, 7, Interval::Hour, 0, HOUR), [14]);
            assert_eq!(humans(sink, 7, Interval::Day, 0, DAY), [14]);
            assert_eq!(sink.top_links(0, HOUR, 1).unwrap()[0].1.humans, 14);
        };
        check(&sink);
        assert_eq!(sink.dirty_buckets(), 4, "two minutes, an hour, a day");
        sink.roll_up(LATER).unwrap();
        check(&sink);
        // A batch naming one row twice: the last value stands, counted once.
        let mut twice = total(7, 70_000, 2);
        twice.rows.push(twice.rows[0].clone());
        twice.rows[1].count = 3;
        sink.write(&twice).unwrap();
        assert_eq!(humans(&sink, 7, Interval::TenSeconds, 70_000, 80_000), [3]);
        sink.roll_up(LATER).unwrap();
        assert_eq!(humans(&sink, 7, Interval::Hour, 0, HOUR), [17]);
    }

    #[test]
    fn a_write_during_a_rollup_keeps_the_bucket_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        sink.write(&total(7, 0, 1)).unwrap();
        let mark = sink.dirty()[&(Level::Minute, 0)];
        sink.roll_up_bucket(Level::Minute, 0).unwrap();
        sink.write(&total(7, 10_000, 2)).unwrap();
        sink.clear_mark(Level::Minute, 0, mark).unwrap();
        assert!(
            sink.dirty().contains_key(&(Level::Minute, 0)),
            "marked again"
        );
        assert_eq!(humans(&sink, 7, Interval::Minute, 0, MINUTE), [3]);
        sink.roll_up(LATER).unwrap();
        assert_eq!(humans(&sink, 7, Interval::Minute, 0, MINUTE), [3]);
    }

    /// A deterministic pseudo-random source for the randomized test.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    /// Every answer the reader gives for a fixed set of queries.
    fn answers(sink: &FjallSink, start: i64) -> Vec<String> {
        let mut out = Vec::new();
        let ranges = [
            (start, start + 2 * DAY),
            (start + 5_000, start + DAY + 70_000),
            (start + HOUR - 30_000, start + 3 * HOUR + 10_000),
            (start + 37 * MINUTE, start + 38 * MINUTE),
        ];
        for (from, to) in ranges {
            for link in 1..=6 {
                for interval in [Interval::Minute, Interval::Hour, Interval::Day] {
                    out.push(format!(
                        "{:?}",
                        sink.series(link, from, to, interval).unwrap()
                    ));
                }
                for dimension in [Dimension::Total, Dimension::Country, Dimension::Referrer] {
                    out.push(format!(
                        "{:?}",
                        sink.breakdown(link, from, to, dimension).unwrap()
                    ));
                }
            }
            out.push(format!("{:?}", sink.top_links(from, to, 4).unwrap()));
        }
        out
    }

    #[test]
    fn rolled_up_answers_equal_the_windows_answers() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        let start = crate::clicks::conformance::BASE;
        let mut rng = Rng(7);
        let write_some = |sink: &FjallSink, rng: &mut Rng| {
            for _ in 0..150 {
                let window = start + rng.below(2 * DAY as u64 / 10_000) as i64 * 10_000;
                let (node, shard) = (["a", "b"][rng.below(2) as usize], rng.below(2) as u16);
                let mut rows = Vec::new();
                for link in 1..=6 {
                    if rng.below(3) == 0 {
                        continue;
                    }
                    let bot = rng.below(4) == 0;
                    let count = 1 + rng.below(9);
                    rows.push(row(link, window, Dimension::Total, "", bot, count));
                    let country = ["DE", "FR", "US"][rng.below(3) as usize];
                    rows.push(row(link, window, Dimension::Country, country, bot, count));
                    if rng.below(2) == 0 {
                        let referrer = ["a.example", "b.example"][rng.below(2) as usize];
                        rows.push(row(link, window, Dimension::Referrer, referrer, bot, 1));
                    }
                }
                sink.write(&batch(node, shard, window, rows)).unwrap();
            }
        };
        write_some(&sink, &mut rng);
        let before = answers(&sink, start);
        assert!(
            before.iter().any(|a| a.contains("humans: ")),
            "data to compare"
        );
        sink.roll_up(start + DAY + 2 * HOUR).unwrap();
        assert_eq!(answers(&sink, start), before, "partly rolled up");
        sink.roll_up(LATER).unwrap();
        assert_eq!(sink.dirty_buckets(), 0);
        assert_eq!(answers(&sink, start), before, "all rolled up");
        // More windows (some replacing earlier ones) after the rollup.
        write_some(&sink, &mut rng);
        let again = answers(&sink, start);
        assert_ne!(again, before);
        sink.roll_up(LATER).unwrap();
        assert_eq!(answers(&sink, start), again);
    }

    #[test]
    fn ranges_split_into_whole_buckets() {
        let parts = pieces(5_000, DAY + 70_000);
        assert_eq!(
            parts,
            vec![
                (Level::Window, 5_000, 60_000),
                (Level::Minute, 60_000, 3_600_000),
                (Level::Hour, 3_600_000, DAY),
                (Level::Minute, DAY, DAY + 60_000),
                (Level::Window, DAY + 60_000, DAY + 70_000),
            ]
        );
        assert_eq!(pieces(0, 3 * DAY), vec![(Level::Day, 0, 3 * DAY)]);
        let covered: i64 = parts.iter().map(|(_, a, b)| b - a).sum();
        assert_eq!(covered, DAY + 65_000, "every millisecond once: {parts:?}");
        for window in parts.windows(2) {
            assert_eq!(window[0].2, window[1].1, "contiguous: {parts:?}");
        }
    }

    #[test]
    fn dirty_buckets_are_read_from_their_parts() {
        let mut dirty = BTreeMap::new();
        dirty.insert((Level::Day, 0), 1);
        dirty.insert((Level::Hour, HOUR), 2);
        let mut out = Vec::new();
        clean_pieces(&dirty, Level::Day, 0, 2 * DAY, &mut out);
        assert_eq!(
            out,
            vec![
                (Level::Hour, 0, HOUR),
                (Level::Minute, HOUR, 2 * HOUR),
                (Level::Hour, 2 * HOUR, DAY),
                (Level::Day, DAY, 2 * DAY),
            ]
        );
    }

    #[test]
    fn retention_prunes_old_rows() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        sink.write(&total(1, 0, 1)).unwrap();
        sink.write(&total(1, 100 * DAY, 1)).unwrap();
        sink.roll_up(LATER).unwrap();
        let now = 100 * DAY + 1;
        let removed = sink.prune(&Retention::default(), now).unwrap();
        assert!(removed > 0);
        assert_eq!(humans(&sink, 1, Interval::TenSeconds, 0, 10_000), [0]);
        assert_eq!(
            humans(&sink, 1, Interval::Hour, 0, HOUR),
            [1],
            "hours: 400 days"
        );
        assert_eq!(
            humans(&sink, 1, Interval::Day, 0, DAY),
            [1],
            "days: forever"
        );
        assert_eq!(
            humans(
                &sink,
                1,
                Interval::TenSeconds,
                100 * DAY,
                100 * DAY + 10_000
            ),
            [1]
        );
    }
}
