//! `link.expired` (reason `time`) when an active link's `expires_at` passes.
//!
//! Engines stop redirecting at that instant on their own; this tells the
//! workspace. [`Expiries`] keeps the active links' expiry instants in memory
//! (read from the links at start, then kept current from the event log) and,
//! each second, logs an event for every instant that passed, with the mark of
//! how far it got in the same batch: after a restart, links that expired
//! while the control plane was down get their event, and none gets two.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ricochet_model::{LinkRecord, LinkState};

use super::{EventKind, ExpiryReason, NewEvent, Subject};
use crate::store::{ControlStore, StoreError};

const MARKER: &str = "expiry_through";
/// Events read from the log per step while following it.
const FOLLOW_BATCH: usize = 1000;

/// Active links' expiry instants ([`Self::run_once`]).
pub struct Expiries {
    store: Arc<ControlStore>,
    /// (instant, link id), earliest first.
    due: BTreeSet<(i64, u64)>,
    /// Link id → its instant in `due`.
    by_link: HashMap<u64, i64>,
    /// The last event read from the log.
    cursor: u64,
    /// Expiries up to this instant were logged.
    through: i64,
    loaded: bool,
}

impl Expiries {
    pub fn new(store: Arc<ControlStore>) -> Self {
        Self {
            store,
            due: BTreeSet::new(),
            by_link: HashMap::new(),
            cursor: 0,
            through: i64::MIN,
            loaded: false,
        }
    }

    /// Links waiting for their instant.
    pub fn watched(&self) -> usize {
        self.due.len()
    }

    fn track(&mut self, link: &LinkRecord) {
        if let Some(at) = self.by_link.remove(&link.id) {
            self.due.remove(&(at, link.id));
        }
        if link.state == LinkState::Active
            && let Some(at) = link.expires_at
            && at > self.through
        {
            self.due.insert((at, link.id));
            self.by_link.insert(link.id, at);
        }
    }

    fn load(&mut self) -> Result<(), StoreError> {
        // The log's position first: a change made during the scan is read
        // from the log afterwards.
        self.cursor = self.store.latest_event();
        self.through = self.store.marker(MARKER)?.unwrap_or(i64::MIN);
        let mut links = Vec::new();
        self.store.for_each_link(|link| {
            if link.expires_at.is_some() && link.state == LinkState::Active {
                links.push(link);
            }
            true
        })?;
        for link in &links {
            self.track(link);
        }
        self.loaded = true;
        Ok(())
    }

    /// Follows the log, then logs the expiries due at `now`; how many.
    pub fn run_once(&mut self, now: i64) -> Result<usize, StoreError> {
        if !self.loaded {
            self.load()?;
        }
        loop {
            let events = self.store.events_after(self.cursor, FOLLOW_BATCH)?;
            let Some(last) = events.last() else {
                break;
            };
            self.cursor = last.seq;
            for event in &events {
                if let Subject::Link { link } = &event.subject {
                    self.track(link);
                }
            }
        }
        let passed: Vec<(i64, u64)> = self.due.range(..=(now, u64::MAX)).copied().collect();
        if passed.is_empty() {
            return Ok(0);
        }
        let mut events = Vec::new();
        for (at, id) in &passed {
            self.due.remove(&(*at, *id));
            self.by_link.remove(id);
            let Some(link) = self.store.link(*id)? else {
                continue;
            };
            if link.state != LinkState::Active || link.expires_at != Some(*at) {
                continue;
            }
            let Some(workspace) = self.store.link_workspace(*id)? else {
                continue;
            };
            events.push(NewEvent {
                kind: EventKind::LinkExpired,
                workspace,
                subject: Subject::Expired {
                    link: Box::new(link),
                    reason: ExpiryReason::Time,
                },
            });
        }
        let count = events.len();
        self.store.write(|txn| {
            for event in events {
                txn.stage_event(event);
            }
            txn.set_marker(MARKER, now);
            Ok::<_, StoreError>(())
        })?;
        self.through = now;
        Ok(count)
    }
}
