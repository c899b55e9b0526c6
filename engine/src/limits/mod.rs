//! Click limits (`max_clicks`): a link with a limit redirects at most that
//! many times, counted across shards, engines and restarts. Before a limited
//! link's redirect is written, a [`LimitCounter`] takes one use; the
//! redirect goes out only once the use is recorded, so a crash or a lost
//! reply can only under-serve. When the counter cannot answer in time
//! ([`REDIS_TIMEOUT`], [`SYNC_TIMEOUT`]), the visitor gets 503: a limit is a
//! promise.
//!
//! - [`FjallCounter`] (`embedded`): one engine without Redis; an atomic per
//!   link reserves the use, its thread writes and syncs the count to the
//!   engine's store before the answer.
//! - [`RedisCounter`] (`redis`): engines sharing the Redis of `sync.bus`; a
//!   Lua script takes the use atomically on the server, one pipeline per batch.
//! - `conformance` (feature `test-util`): the suite both counters pass.

mod embedded;
mod redis;

#[cfg(any(test, feature = "test-util"))]
pub mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ricochet_model::LinkId;
use thiserror::Error;
use tokio::sync::oneshot;

pub use self::embedded::FjallCounter;
pub use self::redis::RedisCounter;

/// Longest wait for Redis before the visitor gets 503.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for the engine's own disk to sync a count before the visitor
/// gets 503: an fsync behind other writers on a busy host can take over a
/// second without anything being down.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(5);

/// What taking a use found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The use is recorded: redirect.
    Granted,
    /// The link used its limit: fallback or 410.
    Reached,
}

/// Why a counter could not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CountError {
    #[error("the click-limit counter's queue is full")]
    Busy,
    #[error("the click-limit store is unreachable or failed")]
    Unavailable,
    #[error("the click-limit store did not answer in time")]
    TimedOut,
}

/// The outcome of [`LimitCounter::take`]: known now, or on its way from the
/// counter's thread within a deadline the counter sets.
#[derive(Debug)]
pub enum Taking {
    Ready(Result<Taken, CountError>),
    Pending {
        reply: oneshot::Receiver<Result<Taken, CountError>>,
        within: Duration,
    },
}

impl Taking {
    /// The outcome, waiting at most the counter's deadline.
    pub async fn outcome(self) -> Result<Taken, CountError> {
        match self {
            Self::Ready(outcome) => outcome,
            Self::Pending { reply, within } => match tokio::time::timeout(within, reply).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(_dropped)) => Err(CountError::Unavailable),
                Err(_elapsed) => Err(CountError::TimedOut),
            },
        }
    }
}

/// Counts the uses of limited links. Counts are per link id: they survive
/// edits of the link (raising the limit grants the difference, lowering it
/// below the count ends the link) and are never reset by the engine.
pub trait LimitCounter: Send + Sync + std::fmt::Debug {
    /// Takes one use of `link` if fewer than `limit` were taken. `Granted`
    /// arrives only once the use is recorded where every engine (and this
    /// one after a restart) sees it; a refused take leaves the count as is.
    fn take(&self, link: LinkId, limit: u64) -> Taking;

    /// Uses taken so far. Blocks: outside the request path (tests, tools).
    fn used(&self, link: LinkId) -> Result<u64, CountError>;

    /// Answers what is queued, then stops the counter's thread; later takes
    /// are refused as [`CountError::Busy`].
    fn stop(&self);
}

/// The counter an engine uses: Redis when `sync.bus` names one (engines
/// share it), else its own store (exact for this engine alone).
pub fn start_counter(
    sync: &crate::config::SyncConfig,
    store: &crate::store::LinkStore,
) -> Result<Arc<dyn LimitCounter>, String> {
    if !sync.bus.is_empty() {
        return RedisCounter::start(&sync.bus)
            .map(|counter| counter as Arc<dyn LimitCounter>)
            .map_err(|error| format!("sync.bus: {error}"));
    }
    if !sync.control_url.is_empty() {
        tracing::warn!(
            "click limits are counted by this engine alone (no sync.bus): \
             with several engines, set sync.bus so they share one count"
        );
    }
    FjallCounter::open(store.clone())
        .map(|counter| counter as Arc<dyn LimitCounter>)
        .map_err(|error| format!("cannot start the click-limit counter: {error}"))
}

/// A link's limit as its plan holds it.
#[derive(Debug)]
pub struct ClickLimit {
    /// The most redirects the link may answer.
    pub max: u64,
    /// Set once a counter said the limit is reached: counts only grow, so
    /// later requests answer without asking. An edit compiles a new plan
    /// with a clear flag (a raised limit is asked again).
    reached: Arc<AtomicBool>,
}

impl ClickLimit {
    pub fn new(max: u64) -> Self {
        Self {
            max,
            reached: Arc::new(AtomicBool::new(false)),
        }
    }

    #[inline]
    pub fn is_reached(&self) -> bool {
        self.reached.load(Ordering::Relaxed)
    }

    pub fn mark_reached(&self) {
        self.reached.store(true, Ordering::Relaxed);
    }

    /// A handle that marks the limit reached after the plan is out of reach
    /// (when a deferred answer arrives).
    pub fn marker(&self) -> ReachedMarker {
        ReachedMarker(self.reached.clone())
    }
}

/// Marks one plan's limit reached.
#[derive(Debug, Clone)]
pub struct ReachedMarker(Arc<AtomicBool>);

impl ReachedMarker {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
