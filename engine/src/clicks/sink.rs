//! Where closed click windows go, and how they are read back. A `ClickSink`
//! writes a shard's `WindowBatch` with absolute counts (a retry rewrites the
//! same values, never adds); a `ClickReader` answers the analytics queries by
//! summing rows over nodes and shards. `FjallSink` is the embedded default,
//! `ScyllaSink` the clustered one; `conformance` holds the suite both pass.

use ricochet_model::clicks::{Dimension, WindowBatch};
use ricochet_model::{LinkId, UnixMillis};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SinkError {
    /// Worth retrying later (the store is down, slow or overloaded).
    #[error("click sink unavailable: {0}")]
    Unavailable(String),
    /// Retrying will not help (a bug or corrupt data).
    #[error("click sink failed: {0}")]
    Failed(String),
}

/// Writes closed windows.
pub trait ClickSink: Send + Sync {
    /// Stores every row of `batch`, replacing any earlier value of the same key.
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError>;
}

/// Counts of humans and bots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub humans: u64,
    pub bots: u64,
}

impl Counts {
    pub fn add(&mut self, bot: bool, count: u64) {
        if bot {
            self.bots += count;
        } else {
            self.humans += count;
        }
    }
}

/// Bucket size of a time series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    TenSeconds,
    Minute,
    Hour,
    Day,
}

impl Interval {
    pub fn millis(self) -> i64 {
        match self {
            Self::TenSeconds => 10_000,
            Self::Minute => 60_000,
            Self::Hour => 3_600_000,
            Self::Day => 86_400_000,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "10s" => Some(Self::TenSeconds),
            "1m" | "minute" => Some(Self::Minute),
            "1h" | "hour" => Some(Self::Hour),
            "1d" | "day" => Some(Self::Day),
            _ => None,
        }
    }
}

/// Reads click analytics. Ranges are `[from, to)` in milliseconds.
pub trait ClickReader: Send + Sync {
    /// Clicks per bucket of `interval` (bucket start, counts), empty buckets included.
    fn series(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        interval: Interval,
    ) -> Result<Vec<(UnixMillis, Counts)>, SinkError>;

    /// Clicks per value of `dimension`, most human clicks first.
    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError>;

    /// The links with the most human clicks in the range.
    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError>;
}

/// Buckets `[from, to)` by `interval` and fills them from (window, counts) pairs.
pub fn bucket_series(
    from: UnixMillis,
    to: UnixMillis,
    interval: Interval,
    windows: impl IntoIterator<Item = (UnixMillis, Counts)>,
) -> Vec<(UnixMillis, Counts)> {
    let step = interval.millis();
    let first = from.div_euclid(step) * step;
    let mut buckets: Vec<(UnixMillis, Counts)> = (0..)
        .map(|i| first + i * step)
        .take_while(|start| *start < to)
        .map(|start| (start, Counts::default()))
        .collect();
    for (window, counts) in windows {
        if window < from || window >= to {
            continue;
        }
        let index = ((window - first) / step) as usize;
        if let Some((_, bucket)) = buckets.get_mut(index) {
            bucket.humans += counts.humans;
            bucket.bots += counts.bots;
        }
    }
    buckets
}

/// Sorts breakdown or top-list entries: most human clicks, then most bots, then key.
pub fn rank<K: Ord>(entries: &mut [(K, Counts)]) {
    entries.sort_by(|(ka, a), (kb, b)| {
        b.humans
            .cmp(&a.humans)
            .then(b.bots.cmp(&a.bots))
            .then(ka.cmp(kb))
    });
}
