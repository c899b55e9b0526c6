//! Per-client limits (`[server.clients]`): open connections and requests per
//! second per client address, shared by every worker, since a client's
//! connections land on any of them. Off by default; docs/ARCHITECTURE.md,
//! "Per-client limits".

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use tokio::sync::watch;

use crate::config::ClientsConfig;

/// Keys are peer addresses: foldhash with a per-process seed, so a client
/// cannot pick addresses that collide.
type Hasher = foldhash::fast::RandomState;

/// How often addresses whose request bucket is full again are forgotten.
pub const FORGET_INTERVAL: Duration = Duration::from_secs(5);

/// The limits a configuration turns on; `None` for each one that is off.
#[derive(Debug, Clone, Default)]
pub struct ClientLimits {
    pub connections: Option<Arc<ConnectionCounts>>,
    pub requests: Option<Arc<RequestRate>>,
}

impl ClientLimits {
    pub fn from_config(config: &ClientsConfig) -> Self {
        let keys = ClientKeys::new(config.ipv6_prefix);
        let connections = (config.max_connections > 0).then(|| {
            Arc::new(ConnectionCounts {
                max: config.max_connections,
                open: DashMap::with_hasher(Hasher::default()),
                keys,
            })
        });
        let requests = NonZeroU32::new(config.requests_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.burst).unwrap_or(NonZeroU32::MIN);
            let quota = Quota::per_second(rate).allow_burst(burst);
            Arc::new(RequestRate {
                limiter: RateLimiter::dashmap_with_hasher(quota, Hasher::default()),
                keys,
            })
        });
        Self {
            connections,
            requests,
        }
    }

    /// Addresses tracked now: (with open connections, with a request bucket).
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.connections.as_ref().map_or(0, |c| c.open.len()),
            self.requests.as_ref().map_or(0, |r| r.limiter.len()),
        )
    }
}

/// Turns a peer address into the client it counts for: an IPv4 address (an
/// IPv4-mapped IPv6 one included) as it is, an IPv6 address cut to its prefix.
#[derive(Debug, Clone, Copy)]
struct ClientKeys {
    ipv6_mask: u128,
}

impl ClientKeys {
    fn new(ipv6_prefix: u8) -> Self {
        let prefix = u32::from(ipv6_prefix.clamp(1, 128));
        Self {
            ipv6_mask: u128::MAX << (128 - prefix),
        }
    }

    #[inline]
    fn key(self, peer: IpAddr) -> IpAddr {
        match peer.to_canonical() {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & self.ipv6_mask)),
        }
    }
}

/// Open connections per client, across workers. An address is in the map
/// only while it has a connection open, so the map holds at most
/// `server.max_connections` entries.
pub struct ConnectionCounts {
    max: u32,
    open: DashMap<IpAddr, u32, Hasher>,
    keys: ClientKeys,
}

impl std::fmt::Debug for ConnectionCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionCounts")
            .field("max", &self.max)
            .field("tracked", &self.open.len())
            .finish()
    }
}

impl ConnectionCounts {
    /// Counts a new connection from `peer`; `None` when its client already
    /// has the most it may. The count drops when the guard does.
    pub fn open(self: &Arc<Self>, peer: IpAddr) -> Option<OpenConnection> {
        let key = self.keys.key(peer);
        let mut count = self.open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        drop(count);
        Some(OpenConnection {
            counts: self.clone(),
            key,
        })
    }
}

/// One counted connection; dropping it uncounts it.
#[derive(Debug)]
pub struct OpenConnection {
    counts: Arc<ConnectionCounts>,
    key: IpAddr,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Entry::Occupied(mut entry) = self.counts.open.entry(self.key) {
            let count = entry.get_mut();
            *count = count.saturating_sub(1);
            if *count == 0 {
                entry.remove();
            }
        }
    }
}

/// Seconds a refused client should wait (`Retry-After`), at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u32);

/// A token bucket per client (governor's GCRA over a dashmap): refilled at
/// `requests_per_second`, holding `burst`. Buckets that are full again are
/// forgotten every [`FORGET_INTERVAL`] ([`RequestRate::forget_idle`]).
pub struct RequestRate {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr, Hasher>, DefaultClock>,
    keys: ClientKeys,
}

impl std::fmt::Debug for RequestRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestRate")
            .field("tracked", &self.limiter.len())
            .finish()
    }
}

impl RequestRate {
    /// Takes one request from `peer`'s bucket, or says how long to wait.
    #[inline]
    pub fn admit(&self, peer: IpAddr) -> Result<(), RetryAfter> {
        let Err(refused) = self.limiter.check_key(&self.keys.key(peer)) else {
            return Ok(());
        };
        let wait = refused.wait_time_from(self.limiter.clock().now());
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Err(RetryAfter(seconds.clamp(1, u64::from(u32::MAX)) as u32))
    }

    /// Forgets clients whose bucket is full again (they would start afresh
    /// anyway), and gives the memory back when some were forgotten.
    pub fn forget_idle(&self) {
        let before = self.limiter.len();
        self.limiter.retain_recent();
        if self.limiter.len() < before {
            self.limiter.shrink_to_fit();
        }
    }
}

/// The `ricochet-clients` thread's loop: forgets idle clients every
/// [`FORGET_INTERVAL`] until shutdown.
pub(super) fn forget_idle_clients(requests: Arc<RequestRate>, mut shutdown: watch::Receiver<bool>) {
    let runtime = super::current_thread_runtime();
    runtime.block_on(async move {
        let mut interval = tokio::time::interval(FORGET_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = interval.tick() => requests.forget_idle(),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_connections: u32, requests_per_second: u32, burst: u32) -> ClientLimits {
        ClientLimits::from_config(&ClientsConfig {
            max_connections,
            requests_per_second,
            burst,
            ..ClientsConfig::default()
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn both_limits_are_off_by_default() {
        let limits = ClientLimits::from_config(&ClientsConfig::default());
        assert!(limits.connections.is_none());
        assert!(limits.requests.is_none());
    }

    #[test]
    fn ipv6_clients_are_grouped_by_prefix_and_ipv4_by_address() {
        let keys = ClientKeys::new(64);
        assert_eq!(
            keys.key(ip("2001:db8:1:2:aaaa::1")),
            keys.key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            keys.key(ip("2001:db8:1:2::1")),
            keys.key(ip("2001:db8:1:3::1"))
        );
        assert_ne!(keys.key(ip("192.0.2.1")), keys.key(ip("192.0.2.2")));
        // A dual-stack listener sees IPv4 clients as mapped addresses.
        assert_eq!(keys.key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let whole = ClientKeys::new(128);
        assert_ne!(whole.key(ip("2001:db8::1")), whole.key(ip("2001:db8::2")));
        let widest = ClientKeys::new(1);
        assert_eq!(widest.key(ip("2001:db8::1")), widest.key(ip("7fff::1")));
    }

    #[test]
    fn connections_are_counted_per_client_and_uncounted_when_dropped() {
        let counts = limits(2, 0, 1).connections.unwrap();
        let first = counts.open(ip("192.0.2.1")).unwrap();
        let _second = counts.open(ip("192.0.2.1")).unwrap();
        assert!(counts.open(ip("192.0.2.1")).is_none(), "over the cap");
        let _other = counts.open(ip("192.0.2.2")).expect("another client");
        drop(first);
        let _again = counts.open(ip("192.0.2.1")).expect("a slot was freed");
    }

    #[test]
    fn clients_without_open_connections_are_not_kept() {
        let limits = limits(1, 0, 1);
        let counts = limits.connections.clone().unwrap();
        let open: Vec<_> = (0..100u8)
            .filter_map(|i| counts.open(IpAddr::from([10, 0, 0, i])))
            .collect();
        assert_eq!(limits.tracked(), (100, 0));
        drop(open);
        assert_eq!(limits.tracked(), (0, 0));
    }

    #[test]
    fn requests_over_the_burst_wait_at_least_a_second() {
        let limits = limits(0, 1, 3);
        let requests = limits.requests.clone().unwrap();
        for _ in 0..3 {
            requests.admit(ip("192.0.2.1")).unwrap();
        }
        assert_eq!(requests.admit(ip("192.0.2.1")), Err(RetryAfter(1)));
        requests
            .admit(ip("192.0.2.2"))
            .expect("another client's bucket");
        assert_eq!(limits.tracked(), (0, 2));
    }

    #[test]
    fn clients_whose_bucket_is_full_again_are_forgotten() {
        let requests = limits(0, 1_000_000, 1).requests.unwrap();
        for i in 0..=255u8 {
            requests.admit(IpAddr::from([10, 0, 1, i])).unwrap();
        }
        // A million a second: every bucket is full again within a microsecond.
        std::thread::sleep(Duration::from_millis(2));
        requests.forget_idle();
        assert!(requests.limiter.is_empty());
    }
}
