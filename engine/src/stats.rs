//! Counters. Each shard owns a [`WorkerStats`] it alone writes (relaxed
//! atomics on its own cache lines, so shards never contend); the admin port
//! sums them when scraped. [`EngineStats`] holds engine-wide gauges written by
//! the change intake and the loader.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::http::ConnectionObserver;

/// Counters of one shard.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerStats {
    /// Responses by status class: index 0 for 1xx … 4 for 5xx.
    pub responses: [AtomicU64; 5],
    pub redirects: AtomicU64,
    pub not_found: AtomicU64,
    pub gone: AtomicU64,
    pub blocked: AtomicU64,
    pub bad_requests: AtomicU64,
    pub connections_accepted: AtomicU64,
    pub connections_closed: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub header_timeouts: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub tls_handshakes: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub tls_handshake_timeouts: AtomicU64,
    /// Connections refused over `server.clients.max_connections`.
    pub client_connections_refused: AtomicU64,
    /// Requests answered 429 over `server.clients.requests_per_second`.
    pub client_requests_limited: AtomicU64,
}

#[inline]
fn bump(counter: &AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl WorkerStats {
    #[inline]
    pub fn bump(counter: &AtomicU64) {
        bump(counter)
    }
}

impl ConnectionObserver for WorkerStats {
    #[inline]
    fn response(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        bump(&self.responses[class]);
        match status {
            301 | 302 | 307 | 308 => bump(&self.redirects),
            404 => bump(&self.not_found),
            410 => bump(&self.gone),
            451 => bump(&self.blocked),
            _ => {}
        }
    }

    fn header_timeout(&self) {
        bump(&self.header_timeouts);
    }

    fn idle_timeout(&self) {
        bump(&self.idle_timeouts);
    }

    fn bad_request(&self) {
        bump(&self.bad_requests);
    }

    fn request_limited(&self) {
        bump(&self.client_requests_limited);
    }
}

/// Engine-wide gauges.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub ready: AtomicBool,
    pub last_applied_version: AtomicU64,
    pub load_millis: AtomicU64,
    pub loaded_links: AtomicU64,
    pub load_errors: AtomicU64,
    pub changes_applied: AtomicU64,
    pub changes_skipped: AtomicU64,
    /// Highest version the subscriber has heard of (heartbeats, change log).
    pub latest_known_version: AtomicU64,
    pub catch_ups: AtomicU64,
    pub catch_up_failures: AtomicU64,
    pub gaps_detected: AtomicU64,
    pub bus_reconnects: AtomicU64,
}

impl EngineStats {
    /// Records that every change up to `version` is applied. The latest
    /// known version is raised first, so a reader that loads
    /// `last_applied_version` and then `latest_known_version` never sees the
    /// second below the first.
    pub fn applied_up_to(&self, version: u64) {
        self.latest_known_version
            .fetch_max(version, Ordering::AcqRel);
        self.last_applied_version.store(version, Ordering::Release);
    }

    /// `(last applied, latest known)`, read in that order: the pair
    /// `/metrics` shows, latest never below applied.
    pub fn versions(&self) -> (u64, u64) {
        let applied = self.last_applied_version.load(Ordering::Acquire);
        let latest = self.latest_known_version.load(Ordering::Acquire);
        (applied, latest.max(applied))
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn the_latest_known_version_is_never_shown_below_the_last_applied() {
        let stats = EngineStats::default();
        // Changes applied from bus messages, with no heartbeat heard yet.
        stats.applied_up_to(42);
        assert_eq!(stats.versions(), (42, 42));
        stats.latest_known_version.fetch_max(50, Ordering::Relaxed);
        assert_eq!(stats.versions(), (42, 50));
        stats.applied_up_to(50);
        assert_eq!(stats.versions(), (50, 50));
    }
}
