//! Planning a write: a batch split into single-partition chunks of absolute
//! inserts, and the partition buckets and CQL value conversions.

use super::*;

/// Rows of one link and dimension are partitioned by UTC day.
pub const DAY_MILLIS: i64 = 86_400_000;
/// The top-links table is partitioned by UTC hour.
pub const HOUR_MILLIS: i64 = 3_600_000;
/// At most this many inserts go into one unlogged batch (all of one partition).
pub const MAX_STATEMENTS_PER_BATCH: usize = 100;

/// Bound values of `insert_row`, in bind-marker order.
pub type RowInsert = (
    i64,
    &'static str,
    i32,
    CqlTimestamp,
    bool,
    String,
    i32,
    String,
    i64,
);
/// Bound values of `insert_link_window`, in bind-marker order.
pub type LinkWindowInsert = (i32, CqlTimestamp, i64, bool, String, i32, i64);

/// One unlogged batch: inserts into a single partition of a single table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteChunk {
    Rows(Vec<RowInsert>),
    LinkWindows(Vec<LinkWindowInsert>),
}

impl WriteChunk {
    pub fn len(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.len(),
            Self::LinkWindows(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The UTC day number of an instant (the `click_rows` partition bucket).
pub fn day_of(at: UnixMillis) -> i32 {
    at.div_euclid(DAY_MILLIS) as i32
}

/// The UTC hour number of an instant (the `click_links_by_time` partition).
pub fn hour_of(at: UnixMillis) -> i32 {
    at.div_euclid(HOUR_MILLIS) as i32
}

/// Link ids are u64; CQL `bigint` is signed, so they are stored bit for bit.
pub(super) fn link_to_cql(link: LinkId) -> i64 {
    link as i64
}

pub(super) fn link_from_cql(link: i64) -> LinkId {
    link as u64
}

pub(super) fn count_to_cql(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub(super) fn count_from_cql(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// Splits a batch into single-partition chunks of at most
/// [`MAX_STATEMENTS_PER_BATCH`] absolute-value inserts. `Total` rows also go
/// to the top-links table.
pub fn plan_write(batch: &WindowBatch) -> Vec<WriteChunk> {
    let shard = i32::from(batch.shard);
    let mut rows: BTreeMap<(i64, &'static str, i32), Vec<RowInsert>> = BTreeMap::new();
    let mut link_windows: BTreeMap<i32, Vec<LinkWindowInsert>> = BTreeMap::new();
    for row in &batch.rows {
        let link = link_to_cql(row.link_id);
        let dimension = row.dimension.as_str();
        let day = day_of(row.window_start);
        let window = CqlTimestamp(row.window_start);
        let count = count_to_cql(row.count);
        rows.entry((link, dimension, day)).or_default().push((
            link,
            dimension,
            day,
            window,
            row.bot,
            batch.node.clone(),
            shard,
            row.value.clone(),
            count,
        ));
        if row.dimension == Dimension::Total {
            link_windows
                .entry(hour_of(row.window_start))
                .or_default()
                .push((
                    hour_of(row.window_start),
                    window,
                    link,
                    row.bot,
                    batch.node.clone(),
                    shard,
                    count,
                ));
        }
    }
    let mut chunks = Vec::new();
    for partition in rows.into_values() {
        for chunk in partition.chunks(MAX_STATEMENTS_PER_BATCH) {
            chunks.push(WriteChunk::Rows(chunk.to_vec()));
        }
    }
    for partition in link_windows.into_values() {
        for chunk in partition.chunks(MAX_STATEMENTS_PER_BATCH) {
            chunks.push(WriteChunk::LinkWindows(chunk.to_vec()));
        }
    }
    chunks
}

// ---- Error classification ------------------------------------------------
// Retryable (`Unavailable`): the cluster is down, slow or overloaded, or a
// connection broke. Everything else (bad CQL, auth, schema, protocol or
// decoding errors) is `Failed`: retrying would send the same bad request.
