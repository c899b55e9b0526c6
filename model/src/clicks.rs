//! Click analytics records shared by engines (which write them) and the
//! control plane (which reads them): the dimensions a click is counted by, and
//! one row of a closed 10-second window.
//!
//! Rows hold absolute counts keyed by (link, window, node, shard, dimension,
//! value, bot), so writing the same row twice never double-counts; a query
//! sums the rows of every node and shard.

use serde::{Deserialize, Serialize};

use crate::{LinkId, UnixMillis};

/// Length of a click window.
pub const WINDOW_MILLIS: i64 = 10_000;

/// Start of the window holding instant `at`.
pub fn window_start(at: UnixMillis) -> UnixMillis {
    at.div_euclid(WINDOW_MILLIS) * WINDOW_MILLIS
}

/// What a click is counted by. `Total` has the empty value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Total,
    Country,
    City,
    Device,
    Browser,
    Os,
    Referrer,
    UtmSource,
    UtmMedium,
    UtmCampaign,
}

impl Dimension {
    pub const ALL: [Dimension; 10] = [
        Dimension::Total,
        Dimension::Country,
        Dimension::City,
        Dimension::Device,
        Dimension::Browser,
        Dimension::Os,
        Dimension::Referrer,
        Dimension::UtmSource,
        Dimension::UtmMedium,
        Dimension::UtmCampaign,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Total => "total",
            Self::Country => "country",
            Self::City => "city",
            Self::Device => "device",
            Self::Browser => "browser",
            Self::Os => "os",
            Self::Referrer => "referrer",
            Self::UtmSource => "utm_source",
            Self::UtmMedium => "utm_medium",
            Self::UtmCampaign => "utm_campaign",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// The value windows leave out for this dimension because it follows
    /// from a click's total: every bot's device is `bot`, and a device,
    /// browser or OS the user-agent parser cannot name (or a click whose user
    /// agent was not collected) is `Other`. Breakdowns give this value the
    /// clicks no stored value accounts for (see [`add_implied`]), so the
    /// answer is the same as if it were stored, and uniform traffic from
    /// clients without a user agent costs one row per link and window
    /// instead of four.
    pub fn implied(self, bot: bool) -> Option<&'static str> {
        match self {
            Self::Device if bot => Some("bot"),
            Self::Device | Self::Browser | Self::Os => Some(OTHER),
            _ => None,
        }
    }

    /// Whether breakdowns of this dimension need the total (for an implied value).
    pub fn has_implied(self) -> bool {
        self.implied(false).is_some() || self.implied(true).is_some()
    }

    /// A small stable number for storage keys.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }
}

/// The name of a device, browser or OS the user-agent parser cannot name.
pub const OTHER: &str = "Other";

/// One counted value of one closed window.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowRow {
    pub link_id: LinkId,
    /// Start of the 10-second window (a multiple of [`WINDOW_MILLIS`]).
    pub window_start: UnixMillis,
    pub dimension: Dimension,
    /// The dimension's value ("" for `Total`), at most 256 bytes.
    pub value: String,
    /// Counted for bots and crawlers, apart from humans.
    pub bot: bool,
    /// Absolute number of clicks in the window for this key.
    pub count: u64,
}

/// The rows one shard of one engine closed for one window, written together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowBatch {
    /// The engine node's stable name.
    pub node: String,
    /// The shard (worker) within the node.
    pub shard: u16,
    pub window_start: UnixMillis,
    pub rows: Vec<WindowRow>,
}

// ---- The sink contracts -------------------------------------------------
// Where closed windows go and how they are read back. A `ClickSink` writes a
// shard's `WindowBatch` with absolute counts (a retry rewrites the same values,
// never adds); a `ClickReader` answers the analytics queries by summing rows
// over nodes and shards. Engines implement them (`FjallSink`, `ScyllaSink`);
// the control plane reads through `ClickReader`.

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

    #[test]
    fn windows_are_aligned() {
        assert_eq!(window_start(0), 0);
        assert_eq!(window_start(9_999), 0);
        assert_eq!(window_start(10_000), 10_000);
        assert_eq!(window_start(-1), -10_000);
    }

    #[test]
    fn dimensions_round_trip() {
        for dimension in Dimension::ALL {
            assert_eq!(Dimension::parse(dimension.as_str()), Some(dimension));
            assert_eq!(Dimension::from_code(dimension.code()), Some(dimension));
        }
        assert_eq!(Dimension::parse("nope"), None);
    }

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
