//! `FjallCounter`: click limits of one engine, kept in its own store. A use
//! is reserved on an atomic per link (so no more than `limit` reservations
//! ever succeed), then the counter's thread writes the link's count to the
//! store and syncs it (fsync), then the redirect is answered: reserve,
//! persist, answer. A crash in between loses a use; it never adds one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use foldhash::fast::RandomState;
use ricochet_model::LinkId;
use tokio::sync::oneshot;

use super::{CountError, LimitCounter, SYNC_TIMEOUT, Taken, Taking};
use crate::store::{LinkStore, StoreError};

/// Takes waiting for the counter's thread before new ones are refused.
const QUEUE: usize = 4096;
/// Most takes written in one batch (one fsync).
const MAX_BATCH: usize = 1024;

type Counts = papaya::HashMap<LinkId, AtomicU64, RandomState>;

enum Message {
    Take {
        link: LinkId,
        reply: oneshot::Sender<Result<Taken, CountError>>,
    },
    Stop,
}

/// Click limits of a single engine, persisted in its fjall store.
pub struct FjallCounter {
    /// Uses reserved per link: at least what the store holds, never less
    /// than the redirects answered.
    counts: Arc<Counts>,
    jobs: Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    store: LinkStore,
}

impl std::fmt::Debug for FjallCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallCounter")
            .field("links", &self.counts.len())
            .finish_non_exhaustive()
    }
}

impl FjallCounter {
    /// Loads the counts from `store` and starts the counter's thread.
    pub fn open(store: LinkStore) -> Result<Arc<Self>, StoreError> {
        let counts = Counts::with_hasher(RandomState::default());
        {
            let counts = counts.pin();
            store.for_each_clicks_used(|link, used| {
                // A count that cannot be read might be anything: the link
                // is treated as used up rather than risk one redirect too many.
                let used = used.unwrap_or_else(|| {
                    tracing::warn!(
                        link,
                        "unreadable click-limit count: the link answers as used up"
                    );
                    u64::MAX
                });
                counts.insert(link, AtomicU64::new(used));
            })?;
        }
        let counts = Arc::new(counts);
        let (jobs, queue) = crossbeam_channel::bounded(QUEUE);
        let writer = Writer {
            store: store.clone(),
            counts: counts.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ricochet-limits".into())
            .spawn(move || writer.run(queue))
            .map_err(|error| StoreError::Fjall(error.into()))?;
        Ok(Arc::new(Self {
            counts,
            jobs,
            thread: Mutex::new(Some(thread)),
            store,
        }))
    }
}

impl LimitCounter for FjallCounter {
    fn take(&self, link: LinkId, limit: u64) -> Taking {
        let counts = self.counts.pin();
        let used = counts.get_or_insert_with(link, || AtomicU64::new(0));
        let reserved = used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
            (taken < limit).then_some(taken + 1)
        });
        if reserved.is_err() {
            return Taking::Ready(Ok(Taken::Reached));
        }
        let (reply, outcome) = oneshot::channel();
        match self.jobs.try_send(Message::Take { link, reply }) {
            Ok(()) => Taking::Pending {
                reply: outcome,
                within: SYNC_TIMEOUT,
            },
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                // Never queued, so never written: the reservation is given back.
                used.fetch_sub(1, Ordering::AcqRel);
                Taking::Ready(Err(CountError::Busy))
            }
        }
    }

    fn used(&self, link: LinkId) -> Result<u64, CountError> {
        Ok(self
            .counts
            .pin()
            .get(&link)
            .map_or(0, |used| used.load(Ordering::Acquire)))
    }

    fn stop(&self) {
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            let _ = self.jobs.send(Message::Stop);
            let _ = thread.join();
            if let Err(error) = self.store.persist() {
                tracing::warn!(%error, "could not sync the click-limit counts at shutdown");
            }
        }
    }
}

impl Drop for FjallCounter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The counter's thread: writes batches of counts, then answers their takes.
struct Writer {
    store: LinkStore,
    counts: Arc<Counts>,
}

impl Writer {
    fn run(self, queue: Receiver<Message>) {
        let mut replies = Vec::new();
        let mut written: Vec<(LinkId, u64)> = Vec::new();
        while let Ok(first) = queue.recv() {
            let mut stop = false;
            for message in std::iter::once(first).chain(queue.try_iter().take(MAX_BATCH - 1)) {
                match message {
                    Message::Take { link, reply } => replies.push((link, reply)),
                    Message::Stop => {
                        stop = true;
                        break;
                    }
                }
            }
            // Every take in the batch reserved before it was queued, so the
            // count read now covers it; counts only grow, so a later batch
            // never writes a smaller one.
            written.clear();
            written.extend(replies.iter().map(|(link, _)| (*link, 0)));
            written.sort_unstable_by_key(|(link, _)| *link);
            written.dedup_by_key(|(link, _)| *link);
            {
                let counts = self.counts.pin();
                for (link, used) in &mut written {
                    *used = counts.get(link).map_or(0, |n| n.load(Ordering::Acquire));
                }
            }
            let outcome = match self.store.write_clicks_used(&written) {
                Ok(()) => Ok(Taken::Granted),
                Err(error) => {
                    // The reservations stay taken: the links under-serve.
                    tracing::warn!(%error, links = written.len(), "cannot write click-limit counts");
                    Err(CountError::Unavailable)
                }
            };
            for (_, reply) in replies.drain(..) {
                let _ = reply.send(outcome);
            }
            if stop {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_the_counter_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let counter = FjallCounter::open(LinkStore::open(dir.path()).unwrap()).unwrap();
        crate::limits::conformance::run(counter.as_ref());
    }

    #[test]
    fn counts_survive_a_reopen_and_stop_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let counter = FjallCounter::open(LinkStore::open(dir.path()).unwrap()).unwrap();
        crate::limits::conformance::take_all(counter.as_ref(), 7, 3, 2);
        counter.stop();
        assert_eq!(
            crate::limits::conformance::take_one(counter.as_ref(), 7, 3),
            Err(CountError::Busy)
        );
        drop(counter);
        let counter = FjallCounter::open(LinkStore::open(dir.path()).unwrap()).unwrap();
        assert_eq!(counter.used(7), Ok(2));
        crate::limits::conformance::take_all(counter.as_ref(), 7, 3, 1);
    }
}
