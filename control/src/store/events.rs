//! The event log and the webhooks' records.
//!
//! Keyspaces: `events` (sequence number → [`EventRecord`] as JSON), written
//! by [`ControlStore::write`] in the batch of the change an event describes;
//! `webhooks` (endpoint id → [`EndpointRecord`]); `deliveries` (delivery id →
//! [`DeliveryRecord`]), with `delivery_due` (due instant, id) of pending
//! ones, `endpoint_due` (endpoint, due instant, id) for the dispatcher and
//! `endpoint_deliveries` (endpoint, id) for the delivery log;
//! `click_pending` (window, node, shard → a closed window's rows) for the
//! windows not yet turned into `link.clicked` events. `meta.event_seq` is the
//! last event's number, `meta.webhook_cursor` the last event fanned out to
//! endpoints, `meta.delivery_seq` the last delivery id.

use std::collections::HashMap;
use std::sync::Mutex;

use fjall::Keyspace;
use ricochet_model::clicks::WindowBatch;
use serde::{Deserialize, Serialize};

use super::{ControlStore, StoreError, WriteTxn, read_u64};
use crate::events::{EventKind, EventRecord};

pub(super) const META_EVENT_SEQ: &[u8] = b"event_seq";
const META_WEBHOOK_CURSOR: &[u8] = b"webhook_cursor";
const META_DELIVERY_SEQ: &[u8] = b"delivery_seq";
/// Attempts a delivery keeps in its log (the latest ones).
pub const MAX_ATTEMPTS_KEPT: usize = 10;

/// The keyspaces of this module.
pub(crate) struct EventSpaces {
    pub(super) events: Keyspace,
    webhooks: Keyspace,
    deliveries: Keyspace,
    due: Keyspace,
    /// (endpoint, due instant, id) of pending deliveries: the dispatcher
    /// fills each endpoint's free slots from its own earliest, so a backlog
    /// at one endpoint never stands in front of the others'.
    endpoint_due: Keyspace,
    endpoint_deliveries: Keyspace,
    click_pending: Keyspace,
    /// Allocates delivery ids (the dispatcher and the API's test sends).
    delivery_seq: Mutex<u64>,
    /// Per endpoint, where its due entries start: each scan of
    /// `endpoint_due` begins there instead of at the endpoint's first key,
    /// so it does not walk over the removed entries of every delivery made
    /// since the last compaction (a queue's tombstones).
    due_from: Mutex<HashMap<String, DueFrom>>,
    /// Bumped by every change of an endpoint but its health, so the
    /// dispatcher reads the list again only then (health is written at
    /// most once a second an endpoint, but a scan of the keyspace walks
    /// every version in its memtable).
    endpoints_version: std::sync::atomic::AtomicU64,
}

/// A key at or below every due entry of one endpoint, and a count of the
/// entries added since, so a scan raises it only when none was added while
/// it ran.
struct DueFrom {
    key: Vec<u8>,
    added: u64,
}

impl EventSpaces {
    pub(super) fn open(
        keyspace: impl Fn(&str) -> Result<Keyspace, fjall::Error>,
        meta: &Keyspace,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            events: keyspace("events")?,
            webhooks: keyspace("webhooks")?,
            deliveries: keyspace("deliveries")?,
            due: keyspace("delivery_due")?,
            endpoint_due: keyspace("endpoint_due")?,
            endpoint_deliveries: keyspace("endpoint_deliveries")?,
            click_pending: keyspace("click_pending")?,
            delivery_seq: Mutex::new(read_u64(meta, META_DELIVERY_SEQ)?),
            due_from: Mutex::default(),
            endpoints_version: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// A workspace's webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    /// `wh_` and 16 random characters.
    pub id: String,
    pub workspace: String,
    pub url: String,
    /// The types it receives.
    pub events: Vec<EventKind>,
    /// The HMAC key deliveries are signed with.
    pub secret: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Since when every attempt failed (cleared by a success).
    pub failing_since: Option<i64>,
    /// Set when the endpoint was disabled for failing too long.
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
}

impl EndpointRecord {
    pub fn wants(&self, kind: EventKind) -> bool {
        self.enabled && self.events.contains(&kind)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// Every retry failed: on the dead-letter list until redelivered.
    Dead,
}

impl DeliveryState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: i64,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// Why it failed (a refused address, a timeout, a non-2xx status).
    pub error: Option<String>,
}

/// One event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: u64,
    pub endpoint_id: String,
    pub workspace: String,
    pub event_seq: u64,
    pub event_type: EventKind,
    pub state: DeliveryState,
    /// Attempts made, counting those no longer in `log`.
    pub attempts: u32,
    /// `attempts` when the current round began (0, or at a redelivery):
    /// the retries of a round are counted from here.
    #[serde(default)]
    pub retries_from: u32,
    /// The latest attempts, oldest first.
    pub log: Vec<Attempt>,
    pub next_attempt_at: Option<i64>,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

fn corrupt(what: &str, error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("{what}: {error}"))
}

fn due_key(at: i64, id: u64) -> [u8; 16] {
    let mut key = [0; 16];
    // Offset so negative instants still sort before positive ones.
    key[..8].copy_from_slice(&((at as u64) ^ (1 << 63)).to_be_bytes());
    key[8..].copy_from_slice(&id.to_be_bytes());
    key
}

/// The delivery id a due, endpoint-due or endpoint-deliveries key ends with.
fn trailing_id(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// `endpoint`, a 0 byte, then the [`due_key`] of (`at`, `id`).
fn endpoint_due_key(endpoint: &str, at: i64, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(endpoint.len() + 17);
    key.extend_from_slice(endpoint.as_bytes());
    key.push(0);
    key.extend_from_slice(&due_key(at, id));
    key
}

fn endpoint_key(endpoint: &str, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(endpoint.len() + 9);
    key.extend_from_slice(endpoint.as_bytes());
    key.push(0);
    key.extend_from_slice(&id.to_be_bytes());
    key
}

fn pending_key(batch: &WindowBatch) -> Vec<u8> {
    let mut key = Vec::with_capacity(batch.node.len() + 11);
    key.extend_from_slice(&((batch.window_start as u64) ^ (1 << 63)).to_be_bytes());
    key.extend_from_slice(batch.node.as_bytes());
    key.push(0);
    key.extend_from_slice(&batch.shard.to_be_bytes());
    key
}

fn pending_window(key: &[u8]) -> Option<i64> {
    let start: [u8; 8] = key.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(start) ^ (1 << 63)) as i64)
}

impl ControlStore {
    /// Sequence number of the last logged event.
    pub fn latest_event(&self) -> u64 {
        self.latest_event.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A receiver told of every event logged from now on (its value is the
    /// latest sequence number), for the live stream.
    pub fn watch_events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.event_watch.subscribe()
    }

    /// Up to `limit` events after `after`, in order.
    pub fn events_after(&self, after: u64, limit: usize) -> Result<Vec<EventRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .event_spaces
            .events
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
        {
            let (_, value) = item.into_inner()?;
            out.push(serde_json::from_slice(&value).map_err(|e| corrupt("event", e))?);
        }
        Ok(out)
    }

    /// The newest `limit` events of `workspace` that `wanted` keeps, newest
    /// first (read from the end of the log).
    pub fn recent_events(
        &self,
        workspace: &str,
        limit: usize,
        wanted: impl Fn(&EventRecord) -> bool,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.event_spaces.events.iter().rev() {
            let (_, value) = item.into_inner()?;
            let event: EventRecord =
                serde_json::from_slice(&value).map_err(|e| corrupt("event", e))?;
            if event.workspace == workspace && wanted(&event) {
                out.push(event);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Sequence number of the oldest event still logged (0 when none).
    pub fn oldest_event(&self) -> Result<u64, StoreError> {
        match self.event_spaces.events.first_key_value() {
            Some(item) => {
                let key = item.key()?;
                Ok(<[u8; 8]>::try_from(key.as_ref())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0))
            }
            None => Ok(0),
        }
    }

    /// Removes events with numbers up to `through`; how many went.
    pub fn prune_events(&self, through: u64) -> Result<usize, StoreError> {
        let mut batch = self.db.batch();
        let mut removed = 0;
        for item in self.event_spaces.events.range(..=through.to_be_bytes()) {
            let key = item.key()?;
            batch.remove(&self.event_spaces.events, key);
            removed += 1;
        }
        batch.commit()?;
        Ok(removed)
    }

    /// Events logged at or before `before` (milliseconds), the newest first
    /// examined: the number of the last of them, to prune through.
    pub fn last_event_before(&self, before: i64) -> Result<u64, StoreError> {
        let mut last = 0;
        for item in self.event_spaces.events.iter() {
            let (key, value) = item.into_inner()?;
            let event: EventRecord =
                serde_json::from_slice(&value).map_err(|e| corrupt("event", e))?;
            if event.created_at > before {
                break;
            }
            last = <[u8; 8]>::try_from(key.as_ref())
                .map(u64::from_be_bytes)
                .unwrap_or(last);
        }
        Ok(last)
    }

    /// The last event fanned out to endpoints.
    pub fn webhook_cursor(&self) -> Result<u64, StoreError> {
        read_u64(&self.meta, META_WEBHOOK_CURSOR)
    }

    // Endpoints.

    pub fn put_endpoint(&self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        self.put_endpoint_health(endpoint)?;
        self.event_spaces
            .endpoints_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }

    /// Writes `endpoint` when only its health (last success or failure,
    /// failing since) changed.
    pub fn put_endpoint_health(&self, endpoint: &EndpointRecord) -> Result<(), StoreError> {
        self.event_spaces.webhooks.insert(
            endpoint.id.as_bytes(),
            serde_json::to_vec(endpoint).expect("serializes"),
        )?;
        Ok(())
    }

    /// Changes to endpoints other than their health so far.
    pub fn endpoints_version(&self) -> u64 {
        self.event_spaces
            .endpoints_version
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn endpoint(&self, id: &str) -> Result<Option<EndpointRecord>, StoreError> {
        super::read_json(
            &self.event_spaces.webhooks,
            id.as_bytes(),
            "webhook endpoint",
        )
    }

    /// Every endpoint of every workspace, by id.
    pub fn endpoints(&self) -> Result<Vec<EndpointRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.event_spaces.webhooks.iter() {
            let (_, value) = item.into_inner()?;
            out.push(serde_json::from_slice(&value).map_err(|e| corrupt("webhook endpoint", e))?);
        }
        Ok(out)
    }

    /// Removes an endpoint and its deliveries.
    pub fn delete_endpoint(&self, id: &str) -> Result<bool, StoreError> {
        let spaces = &self.event_spaces;
        if !spaces.webhooks.contains_key(id.as_bytes())? {
            return Ok(false);
        }
        let mut batch = self.db.batch();
        batch.remove(&spaces.webhooks, id.as_bytes());
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        for item in spaces.endpoint_deliveries.prefix(&prefix) {
            let key = item.key()?;
            let Some(delivery_id) = trailing_id(&key) else {
                continue;
            };
            if let Some(delivery) = self.delivery(delivery_id)?
                && let Some(at) = delivery.next_attempt_at
            {
                batch.remove(&spaces.due, due_key(at, delivery_id));
                batch.remove(&spaces.endpoint_due, endpoint_due_key(id, at, delivery_id));
            }
            batch.remove(&spaces.deliveries, delivery_id.to_be_bytes());
            batch.remove(&spaces.endpoint_deliveries, key);
        }
        batch.commit()?;
        spaces
            .endpoints_version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        spaces
            .due_from
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(true)
    }

    // Deliveries.

    /// `count` new delivery ids.
    pub fn next_delivery_ids(&self, count: u64) -> Result<std::ops::Range<u64>, StoreError> {
        let mut seq = self
            .event_spaces
            .delivery_seq
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let first = *seq + 1;
        if count == 0 {
            return Ok(first..first);
        }
        *seq += count;
        self.meta.insert(META_DELIVERY_SEQ, seq.to_be_bytes())?;
        Ok(first..*seq + 1)
    }

    /// Writes new deliveries and moves the fan-out cursor to `cursor`, in
    /// one batch (a crash either made them all and moved, or neither).
    pub fn fan_out(&self, deliveries: &[DeliveryRecord], cursor: u64) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for delivery in deliveries {
            self.stage_delivery(&mut batch, delivery, None);
        }
        batch.insert(&self.meta, META_WEBHOOK_CURSOR, cursor.to_be_bytes());
        batch.commit()?;
        for delivery in deliveries {
            self.note_due(delivery);
        }
        Ok(())
    }

    /// Writes `delivery`, replacing its due entry at `was_due` (if any).
    pub fn put_delivery(
        &self,
        delivery: &DeliveryRecord,
        was_due: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        self.stage_delivery(&mut batch, delivery, was_due);
        batch.commit()?;
        self.note_due(delivery);
        Ok(())
    }

    /// After `delivery` was written: its due entry, if it has one, is where
    /// its endpoint's next scan starts at the latest.
    fn note_due(&self, delivery: &DeliveryRecord) {
        let (Some(at), DeliveryState::Pending) = (delivery.next_attempt_at, delivery.state) else {
            return;
        };
        let key = endpoint_due_key(&delivery.endpoint_id, at, delivery.id);
        self.with_due_from(&delivery.endpoint_id, |from| {
            if key < from.key {
                from.key = key;
            }
            from.added += 1;
        });
    }

    /// `f` on where `endpoint`'s scans start (its first key when it has
    /// not been scanned yet).
    fn with_due_from<R>(&self, endpoint: &str, f: impl FnOnce(&mut DueFrom) -> R) -> R {
        let mut due_from = self
            .event_spaces
            .due_from
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        f(due_from
            .entry(endpoint.to_owned())
            .or_insert_with(|| DueFrom {
                key: endpoint_due_key(endpoint, i64::MIN, 0),
                added: 0,
            }))
    }

    fn stage_delivery(
        &self,
        batch: &mut fjall::OwnedWriteBatch,
        delivery: &DeliveryRecord,
        was_due: Option<i64>,
    ) {
        let spaces = &self.event_spaces;
        let endpoint = delivery.endpoint_id.as_str();
        if let Some(at) = was_due {
            batch.remove(&spaces.due, due_key(at, delivery.id));
            batch.remove(
                &spaces.endpoint_due,
                endpoint_due_key(endpoint, at, delivery.id),
            );
        }
        if let Some(at) = delivery.next_attempt_at
            && delivery.state == DeliveryState::Pending
        {
            batch.insert(&spaces.due, due_key(at, delivery.id), b"");
            batch.insert(
                &spaces.endpoint_due,
                endpoint_due_key(endpoint, at, delivery.id),
                b"",
            );
        }
        batch.insert(
            &spaces.deliveries,
            delivery.id.to_be_bytes(),
            serde_json::to_vec(delivery).expect("serializes"),
        );
        batch.insert(
            &spaces.endpoint_deliveries,
            endpoint_key(&delivery.endpoint_id, delivery.id),
            b"",
        );
    }

    pub fn delivery(&self, id: u64) -> Result<Option<DeliveryRecord>, StoreError> {
        super::read_json(&self.event_spaces.deliveries, id.to_be_bytes(), "delivery")
    }

    /// Up to `limit` pending deliveries to `endpoint` due at or before
    /// `now`, earliest first, leaving out those `held` names (they are not
    /// read).
    pub fn endpoint_due_deliveries(
        &self,
        endpoint: &str,
        now: i64,
        limit: usize,
        held: &dyn Fn(u64) -> bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let (start, added) = {
            let due_from = self
                .event_spaces
                .due_from
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match due_from.get(endpoint) {
                Some(from) => (from.key.clone(), from.added),
                None => (endpoint_due_key(endpoint, i64::MIN, 0), 0),
            }
        };
        let end = endpoint_due_key(endpoint, now, u64::MAX);
        let mut out = Vec::new();
        let mut first: Option<Vec<u8>> = None;
        if start <= end {
            for item in self
                .event_spaces
                .endpoint_due
                .range(start.clone()..=end.clone())
            {
                let key = item.key()?;
                if first.is_none() {
                    first = Some(key.to_vec());
                }
                let Some(id) = trailing_id(&key) else {
                    continue;
                };
                if held(id) {
                    continue;
                }
                if let Some(delivery) = self.delivery(id)? {
                    out.push(delivery);
                    if out.len() == limit {
                        break;
                    }
                }
            }
        }
        // Nothing due lies before the first entry seen, or, when none was,
        // up to `now`; unless an entry was added meanwhile.
        let raised = first.unwrap_or(end);
        self.with_due_from(endpoint, |from| {
            if from.added == added && raised > from.key {
                from.key = raised;
            }
        });
        Ok(out)
    }

    /// Fills the per-endpoint due index of a store from before it (once:
    /// while it is empty and deliveries are pending); how many entries.
    pub(super) fn backfill_endpoint_due(&self) -> Result<usize, StoreError> {
        let spaces = &self.event_spaces;
        if !spaces.endpoint_due.is_empty()? || spaces.due.is_empty()? {
            return Ok(0);
        }
        let mut batch = self.db.batch();
        let mut filled = 0;
        for item in spaces.due.iter() {
            let key = item.key()?;
            let Some(id) = trailing_id(&key) else {
                continue;
            };
            if let Some(delivery) = self.delivery(id)?
                && let Some(at) = delivery.next_attempt_at
            {
                batch.insert(
                    &spaces.endpoint_due,
                    endpoint_due_key(&delivery.endpoint_id, at, id),
                    b"",
                );
                filled += 1;
            }
        }
        batch.commit()?;
        Ok(filled)
    }

    /// Pending deliveries (due now or later).
    pub fn pending_deliveries(&self) -> Result<usize, StoreError> {
        Ok(self.event_spaces.due.len()?)
    }

    /// The earliest event a pending delivery sends (`None` when none is
    /// pending): events from it on must be kept.
    pub fn earliest_pending_event(&self) -> Result<Option<u64>, StoreError> {
        let mut earliest: Option<u64> = None;
        for item in self.event_spaces.due.iter() {
            let key = item.key()?;
            let Some(id) = trailing_id(&key) else {
                continue;
            };
            if let Some(delivery) = self.delivery(id)? {
                earliest = Some(earliest.map_or(delivery.event_seq, |e| e.min(delivery.event_seq)));
            }
        }
        Ok(earliest)
    }

    /// Event `seq`, if it is still kept.
    pub fn event(&self, seq: u64) -> Result<Option<EventRecord>, StoreError> {
        super::read_json(&self.event_spaces.events, seq.to_be_bytes(), "event")
    }

    /// An endpoint's deliveries, newest first, with ids below `before`,
    /// in `state` if given; at most `limit`.
    pub fn endpoint_deliveries(
        &self,
        endpoint: &str,
        state: Option<DeliveryState>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let start = endpoint_key(endpoint, 0);
        let end = endpoint_key(endpoint, before.unwrap_or(u64::MAX));
        let mut out = Vec::new();
        for item in self
            .event_spaces
            .endpoint_deliveries
            .range(start..end)
            .rev()
        {
            let key = item.key()?;
            let Some(id) = trailing_id(&key) else {
                continue;
            };
            let Some(delivery) = self.delivery(id)? else {
                continue;
            };
            if state.is_none_or(|state| delivery.state == state) {
                out.push(delivery);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Removes delivered and dead deliveries created before `before`; how
    /// many went.
    pub fn prune_deliveries(&self, before: i64) -> Result<usize, StoreError> {
        let spaces = &self.event_spaces;
        let mut batch = self.db.batch();
        let mut removed = 0;
        for item in spaces.deliveries.iter() {
            let (key, value) = item.into_inner()?;
            let delivery: DeliveryRecord =
                serde_json::from_slice(&value).map_err(|e| corrupt("delivery", e))?;
            if delivery.created_at >= before {
                // Ids grow with time: the rest are newer.
                break;
            }
            if delivery.state == DeliveryState::Pending {
                continue;
            }
            batch.remove(&spaces.deliveries, key);
            batch.remove(
                &spaces.endpoint_deliveries,
                endpoint_key(&delivery.endpoint_id, delivery.id),
            );
            removed += 1;
        }
        batch.commit()?;
        Ok(removed)
    }

    // Closed windows waiting to become `link.clicked` events. Once made into
    // events a window's entry is kept empty for an hour, so an engine's
    // retry of it is not counted twice.

    /// Keeps a closed window's rows until its event is made; a retry of
    /// the same (window, node, shard) replaces the earlier copy, and one of
    /// a window already made into events is ignored.
    pub fn put_pending_window(&self, batch: &WindowBatch) -> Result<(), StoreError> {
        let key = pending_key(batch);
        let spaces = &self.event_spaces;
        if spaces
            .click_pending
            .get(&key)?
            .is_some_and(|value| value.is_empty())
        {
            return Ok(());
        }
        spaces
            .click_pending
            .insert(key, postcard::to_allocvec(batch).expect("serializes"))?;
        Ok(())
    }

    /// The kept windows that started at or before `through`, in window
    /// order (those already made into events left out).
    pub fn pending_windows(&self, through: i64) -> Result<Vec<WindowBatch>, StoreError> {
        let mut out = Vec::new();
        for item in self.event_spaces.click_pending.iter() {
            let (key, value) = item.into_inner()?;
            if pending_window(&key).is_none_or(|start| start > through) {
                break;
            }
            if value.is_empty() {
                continue;
            }
            out.push(
                postcard::from_bytes(&value)
                    .map_err(|e| StoreError::Corrupt(format!("pending window: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Forgets windows made into events that started before `before`.
    pub fn prune_emitted_windows(&self, before: i64) -> Result<usize, StoreError> {
        let spaces = &self.event_spaces;
        let mut batch = self.db.batch();
        let mut removed = 0;
        for item in spaces.click_pending.iter() {
            let (key, value) = item.into_inner()?;
            if pending_window(&key).is_none_or(|start| start >= before) {
                break;
            }
            if value.is_empty() {
                batch.remove(&spaces.click_pending, key);
                removed += 1;
            }
        }
        batch.commit()?;
        Ok(removed)
    }

    /// A marker set with [`WriteTxn::set_marker`].
    pub fn marker(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(self
            .meta
            .get(format!("marker:{name}"))?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(i64::from_be_bytes))
    }
}

impl WriteTxn<'_> {
    /// Stages the mark of windows made into events (see
    /// [`ControlStore::put_pending_window`]).
    pub fn mark_windows_emitted(&mut self, batches: &[WindowBatch]) {
        for batch in batches {
            self.batch.insert(
                &self.store.event_spaces.click_pending,
                pending_key(batch),
                b"",
            );
        }
    }

    /// Stages a named number kept with the events it describes (how far
    /// expiries were logged, which click limits were).
    pub fn set_marker(&mut self, name: &str, value: i64) {
        self.batch.insert(
            &self.store.meta,
            format!("marker:{name}"),
            value.to_be_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: u64, at: i64) -> DeliveryRecord {
        DeliveryRecord {
            id,
            endpoint_id: "wh_a".into(),
            workspace: "ws".into(),
            event_seq: id,
            event_type: crate::events::EventKind::LinkCreated,
            state: DeliveryState::Pending,
            attempts: 0,
            retries_from: 0,
            log: Vec::new(),
            next_attempt_at: Some(at),
            created_at: at,
            delivered_at: None,
        }
    }

    #[test]
    fn due_scans_start_past_finished_deliveries_and_see_every_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::ControlStore::open(dir.path()).unwrap();
        let due = |now: i64, held: &dyn Fn(u64) -> bool| -> Vec<u64> {
            store
                .endpoint_due_deliveries("wh_a", now, 10, held)
                .unwrap()
                .iter()
                .map(|d| d.id)
                .collect()
        };
        let none = |_: u64| false;
        let finish = |id: u64, at: i64| {
            let mut done = pending(id, at);
            done.state = DeliveryState::Delivered;
            done.next_attempt_at = None;
            store.put_delivery(&done, Some(at)).unwrap();
        };
        for (id, at) in [(1, 10), (2, 20), (3, 30)] {
            store.put_delivery(&pending(id, at), None).unwrap();
        }
        assert_eq!(due(100, &none), [1, 2, 3]);
        finish(1, 10);
        finish(2, 20);
        assert_eq!(due(100, &none), [3]);
        let from = |store: &super::super::ControlStore| {
            store.event_spaces.due_from.lock().unwrap()["wh_a"]
                .key
                .clone()
        };
        assert_eq!(
            from(&store),
            endpoint_due_key("wh_a", 30, 3),
            "past the finished ones"
        );
        // One due before the scans' start is seen.
        store.put_delivery(&pending(4, 5), None).unwrap();
        assert_eq!(due(100, &none), [4, 3]);
        finish(3, 30);
        finish(4, 5);
        assert_eq!(due(100, &none), Vec::<u64>::new());
        assert_eq!(from(&store), endpoint_due_key("wh_a", 100, u64::MAX));
        // New ones after an empty scan, due before and after its instant.
        store.put_delivery(&pending(5, 50), None).unwrap();
        store.put_delivery(&pending(6, 200), None).unwrap();
        assert_eq!(due(100, &none), [5]);
        assert_eq!(due(300, &none), [5, 6]);
        // Held ones are left out without using up the limit.
        assert_eq!(due(300, &|id| id == 5), [6]);
        // A retry moves a delivery later: it is due again at its new instant.
        let mut retry = pending(5, 400);
        retry.attempts = 1;
        store.put_delivery(&retry, Some(50)).unwrap();
        assert_eq!(due(300, &none), [6]);
        assert_eq!(due(500, &none), [6, 5]);
    }

    #[test]
    fn due_keys_sort_by_instant_then_id() {
        let mut keys = vec![
            due_key(5, 2),
            due_key(-1, 9),
            due_key(5, 1),
            due_key(0, 3),
            due_key(i64::MAX, 0),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                due_key(-1, 9),
                due_key(0, 3),
                due_key(5, 1),
                due_key(5, 2),
                due_key(i64::MAX, 0)
            ]
        );
    }

    #[test]
    fn pending_keys_start_with_their_window() {
        let batch = WindowBatch {
            node: "engine-a".into(),
            shard: 3,
            window_start: 1_700_000_010_000,
            rows: Vec::new(),
        };
        assert_eq!(
            pending_window(&pending_key(&batch)),
            Some(1_700_000_010_000)
        );
        let earlier = WindowBatch {
            window_start: 1_700_000_000_000,
            ..batch.clone()
        };
        assert!(pending_key(&earlier) < pending_key(&batch));
    }
}
