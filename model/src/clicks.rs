//! Click analytics records shared by engines (which write them) and the click
//! store (`ricochet-clickstore`): the dimensions a click is counted by, and
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
    /// Which of a link's destinations answered: `url`, `rules[2]`,
    /// `variants[1]`, `ios`, … (links with rules, variants or app links only).
    Destination,
}

impl Dimension {
    pub const ALL: [Dimension; 11] = [
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
        Dimension::Destination,
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
            Self::Destination => "destination",
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
}
