//! The click store contracts: a `ClickSink` writes a shard's closed window
//! with absolute counts (a retry rewrites the same values, never adds); a
//! `ClickReader` answers the analytics queries by summing rows over nodes and
//! shards. Every backend implements both; engines write, the control plane reads.

use ricochet_model::clicks::{Dimension, WindowBatch};
use ricochet_model::{LinkId, UnixMillis};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Completes a breakdown read from stored rows: the clicks of `total` that no
/// stored value accounts for go to the dimension's implied value (merged with
/// a stored row of the same value, as older stores hold), humans and bots
/// apart; then ranks the entries. Dimensions without an implied value are
/// only ranked.
pub fn add_implied(dimension: Dimension, entries: &mut Vec<(String, Counts)>, total: Counts) {
    let mut stored = Counts::default();
    for (_, counts) in entries.iter() {
        stored.humans += counts.humans;
        stored.bots += counts.bots;
    }
    for (bot, rest) in [
        (false, total.humans.saturating_sub(stored.humans)),
        (true, total.bots.saturating_sub(stored.bots)),
    ] {
        let Some(value) = dimension.implied(bot) else {
            continue;
        };
        if rest == 0 {
            continue;
        }
        match entries.iter_mut().find(|(name, _)| name == value) {
            Some((_, counts)) => counts.add(bot, rest),
            None => {
                let mut counts = Counts::default();
                counts.add(bot, rest);
                entries.push((value.to_owned(), counts));
            }
        }
    }
    rank(entries);
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

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::clicks::OTHER;

    #[test]
    fn breakdowns_give_the_remainder_to_the_implied_value() {
        let counts = |humans, bots| Counts { humans, bots };
        // 10 human clicks and 6 bot clicks; 7 humans have a named browser,
        // 1 human and 2 bots are stored as "Other" (an older store).
        let mut browsers = vec![
            ("Firefox".to_owned(), counts(4, 0)),
            ("Chrome".to_owned(), counts(3, 0)),
            (OTHER.to_owned(), counts(1, 2)),
        ];
        add_implied(Dimension::Browser, &mut browsers, counts(10, 6));
        assert_eq!(
            browsers,
            vec![
                ("Firefox".to_owned(), counts(4, 0)),
                (OTHER.to_owned(), counts(3, 6)),
                ("Chrome".to_owned(), counts(3, 0)),
            ]
        );

        // Devices: the bots' remainder is "bot", the humans' "Other".
        let mut devices = vec![("desktop".to_owned(), counts(5, 0))];
        add_implied(Dimension::Device, &mut devices, counts(8, 4));
        assert_eq!(
            devices,
            vec![
                ("desktop".to_owned(), counts(5, 0)),
                (OTHER.to_owned(), counts(3, 0)),
                ("bot".to_owned(), counts(0, 4)),
            ]
        );

        // Nothing implied for countries, and nothing added when all is stored.
        let mut countries = vec![("DE".to_owned(), counts(1, 0))];
        add_implied(Dimension::Country, &mut countries, counts(9, 9));
        assert_eq!(countries, vec![("DE".to_owned(), counts(1, 0))]);
        let mut complete = vec![("mobile".to_owned(), counts(2, 0))];
        add_implied(Dimension::Device, &mut complete, counts(2, 0));
        assert_eq!(complete, vec![("mobile".to_owned(), counts(2, 0))]);
    }
}
