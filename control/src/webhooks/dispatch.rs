//! The dispatcher: a coordinating thread and a pool of delivery workers.
//!
//! Every 200 ms the coordinator (1) reads the event log after the fan-out
//! cursor and writes a delivery for each (event, endpoint wanting it) with
//! the cursor's move in one batch, (2) hands deliveries that are due to the
//! workers: each endpoint's earliest, up to its share of the workers, so a
//! backlog at one endpoint never stands in front of another's (and each
//! delivery to one worker at a time); endpoints whose last attempt failed
//! or was slow together hold at most half the workers, so several slow or
//! hanging receivers cannot hold them all; and every minute (3) prunes events
//! and finished deliveries past their retention. A worker that finishes an
//! attempt wakes the coordinator to hand out (2) again at once. A worker
//! signs and POSTs one delivery, then writes what happened: delivered, a
//! retry scheduled, or dead; and the endpoint's health (failing since when,
//! disabled after a day of failures).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::signing::{SIGNATURE_HEADER, sign};
use super::{Webhooks, delivery_id};
use crate::events::{EventKind, EventRecord};
use crate::fetch::{FetchError, FetchRequest};
use crate::store::{
    Attempt, ControlStore, DeliveryRecord, DeliveryState, EndpointRecord, MAX_ATTEMPTS_KEPT,
    StoreError,
};

/// Events fanned out per pass.
const FAN_OUT_BATCH: usize = 500;
const TICK: Duration = Duration::from_millis(200);
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// An endpoint's health (last success or failure) is written at most this
/// often while it stays healthy or failing.
const HEALTH_WRITE_EVERY_MS: i64 = 1_000;
/// An attempt that took longer marks its endpoint as struggling.
const SLOW_ATTEMPT: Duration = Duration::from_secs(1);

/// What the dispatcher did, for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead: AtomicU64,
    pub endpoints_disabled: AtomicU64,
    /// Deliveries written by the fan-out.
    pub fanned_out: AtomicU64,
    /// Sum and count of milliseconds from an event's logging to its
    /// successful delivery (first attempts and retries alike).
    pub lag_ms_sum: AtomicU64,
    pub lag_count: AtomicU64,
}

/// A delivery of `event` to `endpoint`, due at `now`.
pub fn new_delivery(
    id: u64,
    endpoint: &EndpointRecord,
    event: &EventRecord,
    now: i64,
) -> DeliveryRecord {
    DeliveryRecord {
        id,
        endpoint_id: endpoint.id.clone(),
        workspace: endpoint.workspace.clone(),
        event_seq: event.seq,
        event_type: event.kind,
        state: DeliveryState::Pending,
        attempts: 0,
        retries_from: 0,
        log: Vec::new(),
        next_attempt_at: Some(now),
        created_at: now,
        delivered_at: None,
    }
}

/// Starts the coordinator and `settings.workers` workers; they stop when
/// `stop` is set (a worker finishes the attempt it is making).
pub fn spawn(
    webhooks: Webhooks,
    stats: Arc<WebhookStats>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let workers = webhooks.settings.workers.max(1);
    let (jobs, queue) = std::sync::mpsc::sync_channel::<DeliveryRecord>(workers * 4);
    let queue = Arc::new(Mutex::new(queue));
    let in_flight: Arc<Mutex<InFlight>> = Arc::default();
    let bodies: Arc<Bodies> = Arc::default();
    // Wakes coalesce: one pending wake is as good as many.
    let (wake, woken) = std::sync::mpsc::sync_channel::<()>(1);
    let mut threads = Vec::with_capacity(workers + 1);
    for index in 0..workers {
        let worker = Worker {
            webhooks: webhooks.clone(),
            stats: stats.clone(),
            in_flight: in_flight.clone(),
            bodies: bodies.clone(),
            wake: wake.clone(),
        };
        let queue = queue.clone();
        threads.push(
            std::thread::Builder::new()
                .name(format!("ricochet-control-webhook-{index}"))
                .spawn(move || worker.run(&queue))?,
        );
    }
    let coordinator = Coordinator {
        per_endpoint: (workers / 4).max(1),
        struggling_share: (workers / 2).max(1),
        webhooks,
        stats,
        in_flight,
        jobs,
        woken,
        next_endpoint: std::cell::Cell::new(0),
        endpoints: std::cell::RefCell::new((u64::MAX, Arc::default())),
    };
    threads.push(
        std::thread::Builder::new()
            .name("ricochet-control-webhooks".into())
            .spawn(move || coordinator.run(&stop))?,
    );
    Ok(threads)
}

/// Deliveries handed to the workers (queued or being attempted).
#[derive(Default)]
struct InFlight {
    deliveries: HashSet<u64>,
    per_endpoint: HashMap<String, usize>,
    /// Endpoints whose last attempt failed or took longer than
    /// [`SLOW_ATTEMPT`].
    struggling: HashSet<String>,
}

impl InFlight {
    /// Takes `delivery` unless it is held already, its endpoint holds
    /// `cap` deliveries, or its endpoint is struggling and struggling
    /// endpoints hold `struggling_cap` together.
    fn take(&mut self, delivery: &DeliveryRecord, cap: usize, struggling_cap: usize) -> bool {
        let endpoint = &delivery.endpoint_id;
        if self.held(endpoint) >= cap
            || (self.struggling.contains(endpoint) && self.struggling_held() >= struggling_cap)
            || !self.deliveries.insert(delivery.id)
        {
            return false;
        }
        *self.per_endpoint.entry(endpoint.clone()).or_default() += 1;
        true
    }

    /// Deliveries `endpoint` holds.
    fn held(&self, endpoint: &str) -> usize {
        self.per_endpoint.get(endpoint).copied().unwrap_or(0)
    }

    /// Deliveries the struggling endpoints hold together.
    fn struggling_held(&self) -> usize {
        self.struggling
            .iter()
            .map(|endpoint| self.held(endpoint))
            .sum()
    }

    /// What `endpoint`'s latest attempt showed.
    fn note(&mut self, endpoint: &str, struggling: bool) {
        if struggling {
            self.struggling.insert(endpoint.to_owned());
        } else {
            self.struggling.remove(endpoint);
        }
    }

    fn release(&mut self, id: u64, endpoint: &str) {
        if !self.deliveries.remove(&id) {
            return;
        }
        if let Some(held) = self.per_endpoint.get_mut(endpoint) {
            *held -= 1;
            if *held == 0 {
                self.per_endpoint.remove(endpoint);
            }
        }
    }
}

struct Coordinator {
    webhooks: Webhooks,
    stats: Arc<WebhookStats>,
    in_flight: Arc<Mutex<InFlight>>,
    /// Deliveries one endpoint may hold at once (a quarter of the workers),
    /// so one endpoint that answers slowly or not at all cannot hold them all.
    per_endpoint: usize,
    /// Deliveries the struggling endpoints may hold together (half the
    /// workers): the others always have the rest.
    struggling_share: usize,
    jobs: SyncSender<DeliveryRecord>,
    /// A worker finished an attempt: a slot is free.
    woken: Receiver<()>,
    /// Where the next pass starts among the endpoints, so none is always
    /// served first when the workers' queue fills.
    next_endpoint: std::cell::Cell<usize>,
    /// The endpoints as of a store version (health aside).
    endpoints: std::cell::RefCell<(u64, Arc<Vec<EndpointRecord>>)>,
}

impl Coordinator {
    fn run(self, stop: &AtomicBool) {
        let mut pruned = Instant::now();
        let mut ticked = Instant::now() - TICK;
        while !stop.load(Ordering::Acquire) {
            let now = ricochet_model::now_millis();
            let tick = ticked.elapsed() >= TICK;
            if tick {
                ticked = Instant::now();
                if let Err(error) = self.fan_out(now) {
                    tracing::warn!(%error, "could not make webhook deliveries");
                }
            }
            if let Err(error) = self.schedule(now) {
                tracing::warn!(%error, "could not read due webhook deliveries");
            }
            if pruned.elapsed() >= PRUNE_EVERY {
                pruned = Instant::now();
                if let Err(error) = self.prune(now) {
                    tracing::warn!(%error, "could not prune events and deliveries");
                }
            }
            let _ = self
                .woken
                .recv_timeout(TICK.saturating_sub(ticked.elapsed()));
        }
        // Dropping `jobs` ends the workers once the queue is empty.
    }

    /// The endpoints, read again from the store when one was added,
    /// changed or removed.
    fn endpoints(&self) -> Result<Arc<Vec<EndpointRecord>>, StoreError> {
        let store = self.webhooks.store();
        let version = store.endpoints_version();
        let mut cached = self.endpoints.borrow_mut();
        if cached.0 != version {
            *cached = (version, Arc::new(store.endpoints()?));
        }
        Ok(cached.1.clone())
    }

    /// Writes the deliveries of the events after the cursor; how many.
    fn fan_out(&self, now: i64) -> Result<usize, StoreError> {
        let store = self.webhooks.store();
        let mut made = 0;
        loop {
            let cursor = store.webhook_cursor()?;
            let events = store.events_after(cursor, FAN_OUT_BATCH)?;
            let Some(last) = events.last().map(|e| e.seq) else {
                return Ok(made);
            };
            let endpoints = self.endpoints()?;
            let pairs: Vec<(&EndpointRecord, &EventRecord)> = events
                .iter()
                .filter(|event| event.kind != EventKind::WebhookTest)
                .flat_map(|event| {
                    endpoints
                        .iter()
                        .filter(move |e| e.workspace == event.workspace && e.wants(event.kind))
                        .map(move |endpoint| (endpoint, event))
                })
                .collect();
            let ids = store.next_delivery_ids(pairs.len() as u64)?;
            let deliveries: Vec<DeliveryRecord> = pairs
                .into_iter()
                .zip(ids)
                .map(|((endpoint, event), id)| new_delivery(id, endpoint, event, now))
                .collect();
            store.fan_out(&deliveries, last)?;
            made += deliveries.len();
            self.stats
                .fanned_out
                .fetch_add(deliveries.len() as u64, Ordering::Relaxed);
        }
    }

    /// Hands due deliveries that no worker holds to the workers: each
    /// endpoint's earliest, as many as its free slots.
    fn schedule(&self, now: i64) -> Result<(), StoreError> {
        let store = self.webhooks.store();
        let endpoints = self.endpoints()?;
        if endpoints.is_empty() {
            return Ok(());
        }
        let start = self.next_endpoint.get() % endpoints.len();
        self.next_endpoint.set(start + 1);
        for endpoint in endpoints[start..].iter().chain(&endpoints[..start]) {
            let held = self
                .in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .held(&endpoint.id);
            let free = self.per_endpoint.saturating_sub(held);
            if free == 0 {
                continue;
            }
            let held = |id: u64| {
                self.in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .deliveries
                    .contains(&id)
            };
            for delivery in store.endpoint_due_deliveries(&endpoint.id, now, free, &held)? {
                let id = delivery.id;
                if !self
                    .in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(&delivery, self.per_endpoint, self.struggling_share)
                {
                    continue;
                }
                // Read again now that it is held: a worker may have finished
                // it (and let go of it) since the due list was read.
                let still_due = store.delivery(id)?.filter(|current| {
                    current.state == DeliveryState::Pending
                        && current.next_attempt_at.is_some_and(|at| at <= now)
                });
                let Some(delivery) = still_due else {
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .release(id, &endpoint.id);
                    continue;
                };
                if self.jobs.try_send(delivery).is_err() {
                    // The queue is full: the next pass goes on from here.
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .release(id, &endpoint.id);
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Drops events past their retention or beyond the most kept (never
    /// one not yet fanned out), and finished deliveries past retention.
    fn prune(&self, now: i64) -> Result<(), StoreError> {
        let store = self.webhooks.store();
        let settings = self.webhooks.settings();
        let retention = i64::try_from(settings.retention.as_millis()).unwrap_or(i64::MAX);
        let by_age = store.last_event_before(now.saturating_sub(retention))?;
        let by_count = store.latest_event().saturating_sub(settings.max_events);
        let mut through = by_age.max(by_count).min(store.webhook_cursor()?);
        if let Some(earliest) = store.earliest_pending_event()? {
            through = through.min(earliest.saturating_sub(1));
        }
        if through > 0 {
            store.prune_events(through)?;
        }
        store.prune_deliveries(now.saturating_sub(retention))?;
        Ok(())
    }
}

struct Worker {
    webhooks: Webhooks,
    stats: Arc<WebhookStats>,
    in_flight: Arc<Mutex<InFlight>>,
    bodies: Arc<Bodies>,
    wake: SyncSender<()>,
}

/// An event's JSON, as every delivery of it sends it.
pub struct Body {
    pub json: String,
    /// When the event was logged (for the delivery lag).
    pub created_at: i64,
}

/// Rendered bodies of recent events, shared by the workers: an event sent
/// to many endpoints is rendered once. Deliveries keep only the event's
/// number; the body is rendered from the event log at each attempt (the
/// same bytes every time).
#[derive(Default)]
pub struct Bodies {
    cache: Mutex<HashMap<u64, Arc<Body>>>,
}

impl Bodies {
    const KEPT: usize = 256;

    /// Event `seq`'s body; `None` when the event is no longer kept.
    pub fn body(&self, store: &ControlStore, seq: u64) -> Result<Option<Arc<Body>>, StoreError> {
        if let Some(body) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seq)
        {
            return Ok(Some(body.clone()));
        }
        let Some(event) = store.event(seq)? else {
            return Ok(None);
        };
        let body = Arc::new(Body {
            json: crate::api::events::render_json(&event),
            created_at: event.created_at,
        });
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= Self::KEPT {
            cache.clear();
        }
        cache.insert(seq, body.clone());
        Ok(Some(body))
    }
}

impl Worker {
    fn run(self, queue: &Mutex<Receiver<DeliveryRecord>>) {
        loop {
            let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
            let Ok(delivery) = next else {
                return;
            };
            let (id, endpoint) = (delivery.id, delivery.endpoint_id.clone());
            let started = Instant::now();
            let sent = match self.attempt(delivery) {
                Ok(sent) => sent,
                Err(error) => {
                    tracing::warn!(%error, delivery = %delivery_id(id), "could not record a webhook attempt");
                    None
                }
            };
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(ok) = sent {
                in_flight.note(&endpoint, !ok || started.elapsed() > SLOW_ATTEMPT);
            }
            in_flight.release(id, &endpoint);
            drop(in_flight);
            let _ = self.wake.try_send(());
        }
    }

    /// Puts `delivery` on the dead-letter list without sending it, saying
    /// why in its log.
    fn give_up(
        &self,
        mut delivery: DeliveryRecord,
        now: i64,
        reason: &str,
    ) -> Result<(), StoreError> {
        let was_due = delivery.next_attempt_at;
        delivery.state = DeliveryState::Dead;
        delivery.next_attempt_at = None;
        push_attempt(
            &mut delivery,
            Attempt {
                at: now,
                status: None,
                latency_ms: 0,
                error: Some(reason.to_owned()),
            },
        );
        self.stats.dead.fetch_add(1, Ordering::Relaxed);
        self.webhooks.store().put_delivery(&delivery, was_due)
    }

    /// Sends `delivery` and records what happened; whether the endpoint
    /// took it (`None`: not sent).
    fn attempt(&self, mut delivery: DeliveryRecord) -> Result<Option<bool>, StoreError> {
        let store = self.webhooks.store();
        let Some(endpoint) = store.endpoint(&delivery.endpoint_id)? else {
            // Removed with its deliveries.
            return Ok(None);
        };
        let was_due = delivery.next_attempt_at;
        let now = ricochet_model::now_millis();
        if !endpoint.enabled && delivery.event_type != EventKind::WebhookTest {
            return self
                .give_up(delivery, now, "the endpoint is disabled")
                .map(|()| None);
        }
        let Some(body) = self.bodies.body(store, delivery.event_seq)? else {
            return self
                .give_up(
                    delivery,
                    now,
                    "the event is no longer kept (webhooks.retention)",
                )
                .map(|()| None);
        };
        let (attempt, ok) = self.send(&endpoint, &delivery, &body, now);
        delivery.attempts += 1;
        push_attempt(&mut delivery, attempt);
        if ok {
            delivery.state = DeliveryState::Delivered;
            delivery.delivered_at = Some(now);
            delivery.next_attempt_at = None;
            self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            self.stats.lag_ms_sum.fetch_add(
                now.saturating_sub(body.created_at).max(0) as u64,
                Ordering::Relaxed,
            );
            self.stats.lag_count.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            let retry = (delivery.attempts - delivery.retries_from - 1) as usize;
            match self.webhooks.settings().retry_delays.get(retry) {
                Some(delay) => {
                    delivery.next_attempt_at = Some(now + jittered(*delay));
                }
                None => {
                    delivery.state = DeliveryState::Dead;
                    delivery.next_attempt_at = None;
                    self.stats.dead.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        delivery = %delivery_id(delivery.id),
                        endpoint = %endpoint.id,
                        "webhook delivery failed every retry: on the dead-letter list"
                    );
                }
            }
        }
        // An endpoint removed during the attempt took its deliveries along.
        if store.endpoint(&delivery.endpoint_id)?.is_none() {
            return Ok(Some(ok));
        }
        store.put_delivery(&delivery, was_due)?;
        self.record_health(&endpoint.id, ok, now)?;
        Ok(Some(ok))
    }

    /// POSTs the delivery; the attempt's record and whether it succeeded.
    fn send(
        &self,
        endpoint: &EndpointRecord,
        delivery: &DeliveryRecord,
        body: &Body,
        now: i64,
    ) -> (Attempt, bool) {
        let body = body.json.as_bytes();
        let request = FetchRequest::post(&endpoint.url, body.to_vec())
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, &sign(&endpoint.secret, now / 1000, body))
            .header(
                "Ricochet-Event-Id",
                &crate::events::event_id(delivery.event_seq),
            )
            .header("Ricochet-Event-Type", delivery.event_type.as_str())
            .header("Ricochet-Delivery-Id", &delivery_id(delivery.id));
        let started = Instant::now();
        let result = self.webhooks.fetcher().fetch(&request);
        let latency_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(answer) if answer.is_success() => (
                Attempt {
                    at: now,
                    status: Some(answer.status),
                    latency_ms,
                    error: None,
                },
                true,
            ),
            Ok(answer) => (
                Attempt {
                    at: now,
                    status: Some(answer.status),
                    latency_ms,
                    error: Some(format!("answered {}, not 2xx", answer.status)),
                },
                false,
            ),
            Err(error) => (
                Attempt {
                    at: now,
                    status: None,
                    latency_ms,
                    error: Some(match error {
                        FetchError::TooManyRedirects { .. } => {
                            "answered a redirect; webhooks do not follow redirects".to_owned()
                        }
                        other => other.to_string(),
                    }),
                },
                false,
            ),
        }
    }

    /// Keeps the endpoint's health: a success clears its failures; a
    /// failure starts or continues them, and disables the endpoint once
    /// they have lasted `disable_after`.
    fn record_health(&self, id: &str, ok: bool, now: i64) -> Result<(), StoreError> {
        let _lock = self
            .webhooks
            .endpoint_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let store = self.webhooks.store();
        let Some(mut endpoint) = store.endpoint(id)? else {
            return Ok(());
        };
        // Health is written at most once a second while it stays the same.
        let recent =
            |at: Option<i64>| at.is_some_and(|at| now.saturating_sub(at) < HEALTH_WRITE_EVERY_MS);
        let mut disabled = false;
        if ok {
            if endpoint.failing_since.is_none() && recent(endpoint.last_success_at) {
                return Ok(());
            }
            endpoint.failing_since = None;
            endpoint.last_success_at = Some(now);
        } else {
            let unchanged = endpoint.failing_since.is_some() && recent(endpoint.last_failure_at);
            let since = *endpoint.failing_since.get_or_insert(now);
            endpoint.last_failure_at = Some(now);
            let limit = i64::try_from(self.webhooks.settings().disable_after.as_millis())
                .unwrap_or(i64::MAX);
            if endpoint.enabled && now.saturating_sub(since) >= limit {
                endpoint.enabled = false;
                endpoint.disabled_at = Some(now);
                endpoint.disabled_reason = Some(format!(
                    "every delivery failed for {}",
                    humantime::format_duration(self.webhooks.settings().disable_after)
                ));
                disabled = true;
            }
            if unchanged && !disabled {
                return Ok(());
            }
        }
        match disabled {
            true => store.put_endpoint(&endpoint)?,
            false => store.put_endpoint_health(&endpoint)?,
        }
        if disabled {
            self.stats
                .endpoints_disabled
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                endpoint = %endpoint.id,
                workspace = %endpoint.workspace,
                "webhook endpoint disabled: every delivery failed for too long"
            );
            self.webhooks.refresh_subscribers()?;
        }
        Ok(())
    }
}

fn push_attempt(delivery: &mut DeliveryRecord, attempt: Attempt) {
    delivery.log.push(attempt);
    if delivery.log.len() > MAX_ATTEMPTS_KEPT {
        delivery.log.remove(0);
    }
}

/// `delay` ±10 %, in milliseconds.
fn jittered(delay: Duration) -> i64 {
    let millis = delay.as_millis() as f64;
    (millis * rand::random_range(0.9..=1.1)).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(id: u64, endpoint: &str) -> DeliveryRecord {
        DeliveryRecord {
            id,
            endpoint_id: endpoint.into(),
            workspace: "default".into(),
            event_seq: 1,
            event_type: EventKind::LinkCreated,
            state: DeliveryState::Pending,
            attempts: 0,
            retries_from: 0,
            log: Vec::new(),
            next_attempt_at: Some(0),
            created_at: 0,
            delivered_at: None,
        }
    }

    #[test]
    fn one_endpoint_holds_at_most_its_share_of_the_workers() {
        let mut held = InFlight::default();
        assert!(held.take(&delivery(1, "wh_slow"), 2, 8));
        assert!(!held.take(&delivery(1, "wh_slow"), 2, 8), "once");
        assert!(held.take(&delivery(2, "wh_slow"), 2, 8));
        assert!(!held.take(&delivery(3, "wh_slow"), 2, 8), "over its share");
        assert!(held.take(&delivery(4, "wh_fast"), 2, 8), "others go on");
        held.release(1, "wh_slow");
        assert!(held.take(&delivery(3, "wh_slow"), 2, 8));
        held.release(9, "wh_slow");
        assert!(
            !held.take(&delivery(5, "wh_slow"), 2, 8),
            "an unknown release frees nothing"
        );
    }

    #[test]
    fn struggling_endpoints_together_hold_at_most_their_share() {
        let mut held = InFlight::default();
        for endpoint in ["wh_a", "wh_b", "wh_c"] {
            held.note(endpoint, true);
        }
        // Two slots each, three slots for all the struggling ones together.
        assert!(held.take(&delivery(1, "wh_a"), 2, 3));
        assert!(held.take(&delivery(2, "wh_a"), 2, 3));
        assert!(held.take(&delivery(3, "wh_b"), 2, 3));
        assert!(
            !held.take(&delivery(4, "wh_b"), 2, 3),
            "the share is used up"
        );
        assert!(!held.take(&delivery(5, "wh_c"), 2, 3));
        assert!(held.take(&delivery(6, "wh_ok"), 2, 3), "healthy ones go on");
        assert!(held.take(&delivery(7, "wh_ok"), 2, 3));
        assert_eq!(held.struggling_held(), 3);
        // An endpoint that answers well again leaves the shared slots.
        held.note("wh_a", false);
        assert_eq!(held.struggling_held(), 1);
        assert!(held.take(&delivery(4, "wh_b"), 2, 3));
        assert!(held.take(&delivery(5, "wh_c"), 2, 3));
        assert!(!held.take(&delivery(8, "wh_c"), 2, 3));
        held.release(3, "wh_b");
        assert!(held.take(&delivery(8, "wh_c"), 2, 3));
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let wait = jittered(Duration::from_secs(60));
            assert!((54_000..=66_000).contains(&wait), "{wait}");
        }
    }
}
