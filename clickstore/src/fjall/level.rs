//! The store's granularities (10-second windows, minutes, hours, days) and
//! how long each is kept.

use std::time::Duration;

use ricochet_model::UnixMillis;

use crate::contract::Interval;

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

    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Window => "10s",
            Self::Minute => "1m",
            Self::Hour => "1h",
            Self::Day => "1d",
        }
    }

    pub(super) fn of(interval: Interval) -> Self {
        match interval {
            Interval::TenSeconds => Self::Window,
            Interval::Minute => Self::Minute,
            Interval::Hour => Self::Hour,
            Interval::Day => Self::Day,
        }
    }

    /// The level this one is rolled up from (`Window` for itself).
    pub(super) fn finer(self) -> Self {
        Self::ALL[(self as usize).saturating_sub(1)]
    }

    pub(super) fn floor(self, at: UnixMillis) -> UnixMillis {
        at.div_euclid(self.millis()) * self.millis()
    }

    /// Start of the first bucket at or after `at`.
    pub(super) fn ceil(self, at: UnixMillis) -> UnixMillis {
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
    pub(super) fn of(&self, level: Level) -> Option<Duration> {
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
