//! Webhooks: a workspace's endpoints receive its events as signed POSTs.
//!
//! Delivery is at least once. The dispatcher ([`dispatch`]) reads the event
//! log after its cursor and writes one delivery per (event, endpoint
//! wanting it) together with the cursor's move, before any attempt; a
//! restart picks up every pending delivery from the store. A delivery that
//! gets no 2xx within the timeout is retried after each of
//! `webhooks.retry_delays` (1 min, 5 min, 30 min by default, with ±10 %
//! jitter); when the last retry fails it goes to the dead-letter list
//! (state `dead`), from which it can be redelivered. An endpoint whose every
//! attempt failed for `webhooks.disable_after` (a day) is disabled, with the
//! reason on the API, a warning in the log and a metric. Receivers
//! de-duplicate by event id: a retry after a lost answer sends the same
//! event (same body, same id) again.
//!
//! Endpoints must be public http(s) addresses: checked when an endpoint is
//! saved, and again at every delivery after resolving its name (the
//! connection pinned to the checked address, redirects not followed), with
//! the fetcher's policy ([`crate::fetch`]). `webhooks.allow_private` and
//! `webhooks.allowed_networks` open private ranges for installations whose
//! receivers are inside.
//!
//! - [`signing`]: the `Ricochet-Signature` header.
//! - [`dispatch`]: fan-out, attempts, retries, pruning.

pub mod dispatch;
pub mod signing;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;

use crate::events::clicks::ClickSubscribers;
use crate::events::{EventKind, NewEvent, Subject};
use crate::fetch::{FetchError, FetchPolicy, Fetcher};
use crate::store::{ControlStore, DeliveryRecord, DeliveryState, EndpointRecord, StoreError};

/// Longest endpoint URL.
pub const MAX_URL_LENGTH: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 200;

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Which addresses endpoints may have, the timeout, the response cap.
    pub policy: FetchPolicy,
    /// Waits before each retry; a delivery gets `1 + len` attempts.
    pub retry_delays: Vec<Duration>,
    /// An endpoint failing every attempt this long is disabled.
    pub disable_after: Duration,
    /// Endpoints a workspace may have.
    pub max_endpoints: usize,
    /// Deliveries attempted at once.
    pub workers: usize,
    /// How long events (the live stream's history) and finished deliveries
    /// (the delivery log) are kept.
    pub retention: Duration,
    /// Events kept at most, whatever their age.
    pub max_events: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            policy: delivery_policy(FetchPolicy::default()),
            retry_delays: vec![
                Duration::from_secs(60),
                Duration::from_secs(300),
                Duration::from_secs(1800),
            ],
            disable_after: Duration::from_secs(86_400),
            max_endpoints: 20,
            workers: 16,
            retention: Duration::from_secs(7 * 86_400),
            max_events: 100_000,
        }
    }
}

/// `policy` as deliveries use it: 10 s, redirects not followed, 4 KiB of
/// the answer read (for the delivery log).
pub fn delivery_policy(policy: FetchPolicy) -> FetchPolicy {
    FetchPolicy {
        timeout: Duration::from_secs(10),
        max_redirects: 0,
        max_body_bytes: 4096,
        user_agent: concat!("Ricochet-Webhooks/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..policy
    }
}

#[derive(Debug, Error)]
pub enum WebhookError {
    #[error("url: {0}")]
    InvalidUrl(String),
    /// The URL's host is, or resolves to, an address not allowed.
    #[error("url: {0}")]
    NotPublic(String),
    #[error("events: {0}")]
    InvalidEvents(String),
    #[error("description: at most {MAX_DESCRIPTION} bytes and no control characters")]
    InvalidDescription,
    #[error("a workspace has at most {max} webhook endpoints")]
    TooManyEndpoints { max: usize },
    #[error("no webhook endpoint {0}")]
    EndpointNotFound(String),
    #[error("no delivery {0}")]
    DeliveryNotFound(String),
    #[error("delivery {0} is pending: it is attempted on its own")]
    DeliveryPending(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a new endpoint is.
#[derive(Debug, Clone, Default)]
pub struct EndpointInput {
    pub url: String,
    /// Type names; `*` is every type.
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// What an edit changes (absent fields stay).
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// Enabling an endpoint clears why it was disabled and its failures.
    pub enabled: Option<bool>,
}

/// The public id of delivery `id`.
pub fn delivery_id(id: u64) -> String {
    format!("dlv_{id}")
}

/// The delivery number of a public id.
pub fn parse_delivery_id(text: &str) -> Option<u64> {
    text.strip_prefix("dlv_")?.parse().ok()
}

fn new_secret() -> String {
    format!("whsec_{}", crate::keys::random_secret())
}

/// The workspace's webhooks.
#[derive(Clone)]
pub struct Webhooks {
    store: Arc<ControlStore>,
    settings: Arc<WebhookSettings>,
    fetcher: Fetcher,
    subscribers: Arc<ClickSubscribers>,
    /// Serializes read-modify-writes of endpoint records (the API's edits
    /// and the dispatcher's health updates).
    endpoint_lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

impl Webhooks {
    pub fn new(
        store: Arc<ControlStore>,
        settings: WebhookSettings,
        fetcher: Fetcher,
        subscribers: Arc<ClickSubscribers>,
    ) -> Result<Self, StoreError> {
        let webhooks = Self {
            store,
            settings: Arc::new(settings),
            fetcher,
            subscribers,
            endpoint_lock: Arc::default(),
        };
        webhooks.refresh_subscribers()?;
        Ok(webhooks)
    }

    pub fn settings(&self) -> &WebhookSettings {
        &self.settings
    }

    pub fn store(&self) -> &Arc<ControlStore> {
        &self.store
    }

    pub(crate) fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// Tells the click events which workspaces' endpoints want clicks.
    fn refresh_subscribers(&self) -> Result<(), StoreError> {
        let workspaces: HashSet<String> = self
            .store
            .endpoints()?
            .into_iter()
            .filter(|endpoint| endpoint.wants(EventKind::LinkClicked))
            .map(|endpoint| endpoint.workspace)
            .collect();
        self.subscribers.set_endpoints(workspaces);
        Ok(())
    }

    fn check_url(&self, url: &str) -> Result<String, WebhookError> {
        let url = url.trim();
        if url.is_empty() || url.len() > MAX_URL_LENGTH {
            return Err(WebhookError::InvalidUrl(format!(
                "an absolute http(s) URL of at most {MAX_URL_LENGTH} bytes"
            )));
        }
        let parsed = url::Url::parse(url)
            .map_err(|e| WebhookError::InvalidUrl(format!("not an absolute URL ({e})")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(WebhookError::InvalidUrl(format!(
                "the scheme {:?} is not http or https",
                parsed.scheme()
            )));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(WebhookError::InvalidUrl("the URL has no host".into()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(WebhookError::InvalidUrl(
                "credentials in the URL are not kept; deliveries are signed instead".into(),
            ));
        }
        if parsed.fragment().is_some() {
            return Err(WebhookError::InvalidUrl("a URL with a #fragment".into()));
        }
        self.fetcher
            .check_url(parsed.as_str())
            .map_err(|error| match error {
                FetchError::NotPublic { .. } => WebhookError::NotPublic(error.to_string()),
                other => WebhookError::InvalidUrl(other.to_string()),
            })?;
        Ok(parsed.to_string())
    }

    fn endpoint_of(&self, workspace: &str, id: &str) -> Result<EndpointRecord, WebhookError> {
        self.store
            .endpoint(id)?
            .filter(|endpoint| endpoint.workspace == workspace)
            .ok_or_else(|| WebhookError::EndpointNotFound(id.to_owned()))
    }

    /// A new endpoint with a new secret (shown in the answer only).
    pub fn create(
        &self,
        workspace: &str,
        input: EndpointInput,
        now: i64,
    ) -> Result<EndpointRecord, WebhookError> {
        let events = parse_events(&input.events)?;
        let description = check_description(input.description)?;
        let url = self.check_url(&input.url)?;
        let _lock = self.endpoint_lock.lock().unwrap_or_else(|e| e.into_inner());
        let count = self
            .store
            .endpoints()?
            .iter()
            .filter(|e| e.workspace == workspace)
            .count();
        if count >= self.settings.max_endpoints {
            return Err(WebhookError::TooManyEndpoints {
                max: self.settings.max_endpoints,
            });
        }
        let endpoint = EndpointRecord {
            id: format!("wh_{}", crate::keys::random_string(16)),
            workspace: workspace.to_owned(),
            url,
            events,
            secret: new_secret(),
            description,
            enabled: true,
            created_at: now,
            updated_at: now,
            failing_since: None,
            disabled_at: None,
            disabled_reason: None,
            last_success_at: None,
            last_failure_at: None,
        };
        self.store.put_endpoint(&endpoint)?;
        self.refresh_subscribers()?;
        Ok(endpoint)
    }

    /// The workspace's endpoints, oldest first.
    pub fn list(&self, workspace: &str) -> Result<Vec<EndpointRecord>, WebhookError> {
        let mut endpoints: Vec<EndpointRecord> = self
            .store
            .endpoints()?
            .into_iter()
            .filter(|e| e.workspace == workspace)
            .collect();
        endpoints.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(endpoints)
    }

    pub fn get(&self, workspace: &str, id: &str) -> Result<EndpointRecord, WebhookError> {
        self.endpoint_of(workspace, id)
    }

    pub fn update(
        &self,
        workspace: &str,
        id: &str,
        patch: EndpointPatch,
        now: i64,
    ) -> Result<EndpointRecord, WebhookError> {
        let events = patch.events.as_deref().map(parse_events).transpose()?;
        let description = patch.description.map(check_description).transpose()?;
        let url = patch
            .url
            .as_deref()
            .map(|u| self.check_url(u))
            .transpose()?;
        let _lock = self.endpoint_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut endpoint = self.endpoint_of(workspace, id)?;
        if let Some(url) = url {
            endpoint.url = url;
        }
        if let Some(events) = events {
            endpoint.events = events;
        }
        if let Some(description) = description {
            endpoint.description = description;
        }
        if let Some(enabled) = patch.enabled {
            if enabled && !endpoint.enabled {
                endpoint.failing_since = None;
                endpoint.disabled_at = None;
                endpoint.disabled_reason = None;
            }
            endpoint.enabled = enabled;
        }
        endpoint.updated_at = now;
        self.store.put_endpoint(&endpoint)?;
        self.refresh_subscribers()?;
        Ok(endpoint)
    }

    /// A new secret; the old one stops signing at once.
    pub fn rotate_secret(
        &self,
        workspace: &str,
        id: &str,
        now: i64,
    ) -> Result<EndpointRecord, WebhookError> {
        let _lock = self.endpoint_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut endpoint = self.endpoint_of(workspace, id)?;
        endpoint.secret = new_secret();
        endpoint.updated_at = now;
        self.store.put_endpoint(&endpoint)?;
        Ok(endpoint)
    }

    /// Removes an endpoint with its deliveries (pending ones are not sent).
    pub fn delete(&self, workspace: &str, id: &str) -> Result<(), WebhookError> {
        let _lock = self.endpoint_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.endpoint_of(workspace, id)?;
        self.store.delete_endpoint(id)?;
        self.refresh_subscribers()?;
        Ok(())
    }

    /// Logs a `webhook.test` event and makes its delivery to this endpoint
    /// only (whatever it subscribes to, enabled or not), due now.
    pub fn send_test(
        &self,
        workspace: &str,
        id: &str,
        now: i64,
    ) -> Result<DeliveryRecord, WebhookError> {
        let endpoint = self.endpoint_of(workspace, id)?;
        let seq = self.store.log_event(NewEvent {
            kind: EventKind::WebhookTest,
            workspace: workspace.to_owned(),
            subject: Subject::Test {
                endpoint_id: endpoint.id.clone(),
            },
        })?;
        let event = self
            .store
            .event(seq)?
            .ok_or_else(|| StoreError::Corrupt("the test event was not logged".into()))?;
        let id = self.store.next_delivery_ids(1)?.start;
        let delivery = dispatch::new_delivery(id, &endpoint, &event, now);
        self.store.put_delivery(&delivery, None)?;
        Ok(delivery)
    }

    /// An endpoint's deliveries, newest first.
    pub fn deliveries(
        &self,
        workspace: &str,
        endpoint: &str,
        state: Option<DeliveryState>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, WebhookError> {
        self.endpoint_of(workspace, endpoint)?;
        Ok(self
            .store
            .endpoint_deliveries(endpoint, state, before, limit)?)
    }

    /// Deliveries of every endpoint of the workspace in `state`, newest first.
    pub fn workspace_deliveries(
        &self,
        workspace: &str,
        state: Option<DeliveryState>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<DeliveryRecord>, WebhookError> {
        let mut out = Vec::new();
        for endpoint in self.list(workspace)? {
            out.extend(
                self.store
                    .endpoint_deliveries(&endpoint.id, state, before, limit)?,
            );
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.id));
        out.truncate(limit);
        Ok(out)
    }

    pub fn delivery(&self, workspace: &str, id: u64) -> Result<DeliveryRecord, WebhookError> {
        self.store
            .delivery(id)?
            .filter(|d| d.workspace == workspace)
            .ok_or_else(|| WebhookError::DeliveryNotFound(delivery_id(id)))
    }

    /// Sends a delivered or dead delivery again: pending, due now, with its
    /// attempts kept in its log and three retries again if it fails.
    pub fn redeliver(
        &self,
        workspace: &str,
        id: u64,
        now: i64,
    ) -> Result<DeliveryRecord, WebhookError> {
        let mut delivery = self.delivery(workspace, id)?;
        if delivery.state == DeliveryState::Pending {
            return Err(WebhookError::DeliveryPending(delivery_id(id)));
        }
        delivery.state = DeliveryState::Pending;
        delivery.retries_from = delivery.attempts;
        delivery.next_attempt_at = Some(now);
        self.store.put_delivery(&delivery, None)?;
        Ok(delivery)
    }
}

fn parse_events(names: &[String]) -> Result<Vec<EventKind>, WebhookError> {
    if names.is_empty() {
        return Err(WebhookError::InvalidEvents(
            "name at least one event type, or \"*\" for all".into(),
        ));
    }
    let mut kinds = Vec::new();
    for name in names {
        if name == "*" {
            return Ok(EventKind::SUBSCRIBABLE.to_vec());
        }
        let kind = EventKind::parse(name)
            .filter(|kind| *kind != EventKind::WebhookTest)
            .ok_or_else(|| {
                WebhookError::InvalidEvents(format!(
                    "unknown event type {name:?}; known: {}",
                    EventKind::SUBSCRIBABLE.map(EventKind::as_str).join(", ")
                ))
            })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Ok(kinds)
}

fn check_description(description: Option<String>) -> Result<Option<String>, WebhookError> {
    match description {
        Some(text) if text.len() > MAX_DESCRIPTION || text.chars().any(char::is_control) => {
            Err(WebhookError::InvalidDescription)
        }
        Some(text) if text.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lists_take_names_or_a_star_and_refuse_the_rest() {
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(&names(&["link.created", "link.clicked", "link.created"])).unwrap(),
            vec![EventKind::LinkCreated, EventKind::LinkClicked]
        );
        assert_eq!(
            parse_events(&names(&["*"])).unwrap().len(),
            EventKind::SUBSCRIBABLE.len()
        );
        assert!(matches!(
            parse_events(&[]),
            Err(WebhookError::InvalidEvents(_))
        ));
        assert!(matches!(
            parse_events(&names(&["link.exploded"])),
            Err(WebhookError::InvalidEvents(message)) if message.contains("link.exploded")
        ));
        assert!(parse_events(&names(&["webhook.test"])).is_err());
    }

    #[test]
    fn delivery_ids_round_trip() {
        assert_eq!(delivery_id(9), "dlv_9");
        assert_eq!(parse_delivery_id("dlv_9"), Some(9));
        assert_eq!(parse_delivery_id("9"), None);
        assert_eq!(parse_delivery_id("dlv_x"), None);
    }
}
