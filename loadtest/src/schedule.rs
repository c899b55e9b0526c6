//! When requests go out. Closed loop: as soon as a connection has room.
//! Open loop: at a constant rate from a fixed timetable, so latency is
//! measured from when each request should have been sent (no coordinated
//! omission: a stalled server cannot slow the clock that judges it).

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Closed or open loop.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum Mode {
    /// Every connection keeps `depth` requests in flight, as fast as the
    /// server answers (what wrk does). Latency runs from the actual send.
    Closed,
    /// `rate` requests per second in total, on a timetable.
    Open { rate: f64 },
}

/// One generator thread's timetable: request k is due at
/// `start + offset + k / rate`.
#[derive(Debug, Clone, Copy)]
pub struct Timetable {
    start: Instant,
    interval_ns: f64,
    offset_ns: f64,
    /// Requests due before the run's deadline.
    limit: u64,
}

impl Timetable {
    /// `rate` is this thread's share; `phase` in [0, 1) staggers threads so
    /// their requests interleave instead of leaving in bursts.
    pub fn new(
        start: Instant,
        rate: f64,
        phase: f64,
        duration: Duration,
        cap: Option<u64>,
    ) -> Self {
        let interval_ns = 1e9 / rate;
        let offset_ns = phase * interval_ns;
        let span = duration.as_nanos() as f64 - offset_ns;
        let in_window = if span <= 0.0 {
            0
        } else {
            (span / interval_ns).ceil() as u64
        };
        Self {
            start,
            interval_ns,
            offset_ns,
            limit: cap.map_or(in_window, |c| c.min(in_window)),
        }
    }

    /// When request `k` should be sent.
    pub fn intended(&self, k: u64) -> Instant {
        self.start + Duration::from_nanos((self.offset_ns + k as f64 * self.interval_ns) as u64)
    }

    /// How many requests are due at `now` (capped at the limit).
    pub fn due(&self, now: Instant) -> u64 {
        let Some(since_start) = now.checked_duration_since(self.start) else {
            return 0;
        };
        let elapsed = since_start.as_nanos() as f64 - self.offset_ns;
        if elapsed < 0.0 {
            return 0;
        }
        ((elapsed / self.interval_ns).floor() as u64 + 1).min(self.limit)
    }

    /// Requests this thread sends in the whole run.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_counts_follow_the_rate() {
        let start = Instant::now();
        let table = Timetable::new(start, 1000.0, 0.0, Duration::from_secs(2), None);
        assert_eq!(table.limit(), 2000);
        assert_eq!(table.due(start), 1);
        assert_eq!(table.due(start - Duration::from_millis(1)), 0);
        assert_eq!(table.due(start + Duration::from_micros(999_500)), 1000);
        assert_eq!(table.due(start + Duration::from_secs(5)), 2000);
        assert_eq!(table.intended(10), start + Duration::from_millis(10));
    }
}
