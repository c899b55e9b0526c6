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

mod batches;
mod keys;
mod level;
mod maintenance;
mod pieces;
mod prune;
mod read;
mod rollup;
mod segment;
#[cfg(test)]
mod tests;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, RwLock};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow};
use ricochet_model::{LinkId, UnixMillis};

use crate::contract::{
    ClickReader, ClickSink, Counts, Interval, SinkError, add_implied, bucket_series, rank,
};

use self::batches::*;
use self::keys::*;
pub use self::level::{Level, ROLL_UP_DELAY, Retention};
pub use self::maintenance::spawn_maintenance;
use self::pieces::*;
use self::segment::{ChunkReader, ChunkWriter, PartStream};

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

/// Largest memtable of each keyspace before it is flushed to disk.
const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;

fn failed(error: fjall::Error) -> SinkError {
    SinkError::Unavailable(error.to_string())
}

impl FjallSink {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::Failed(e.to_string()))?;
        let db = Database::builder(dir)
            .cache_size(16 * 1024 * 1024)
            .open()
            .map_err(failed)?;
        // Writes arrive a window (10 s) at a time and are read back soon by
        // rollups: small memtables keep the store's memory near its cache,
        // where fjall's default (64 MiB per keyspace, eight keyspaces) lets
        // it grow by hundreds of megabytes under many distinct links. Kept
        // in each keyspace's configuration when it is created: stores
        // created before keep the default.
        let keyspace = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
            })
        };
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
}
