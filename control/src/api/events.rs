//! Events as the API shows them, and `GET /api/v1/events`: the caller's
//! workspace's events as Server-Sent Events, resumable with `Last-Event-ID`.
//!
//! Every event has the same envelope, for webhooks and the stream alike:
//! `{"id":"evt_12","type":"link.created","created_at":…,"workspace":…,"data":{…}}`.
//! The schema of `data` per type is in the OpenAPI document
//! ([`EventData`]); docs/WEBHOOKS.md shows each.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::types::{LinkView, to_datetime};
use super::{AppState, blocking};
use crate::events::clicks::StreamGuard;
use crate::events::{
    EventKind, EventRecord, ExpiryReason, LinkClicks, Subject, event_id, parse_event_id,
};
use crate::keys::Scope;
use crate::store::ControlStore;

/// A comment line sent when nothing happened for this long, so proxies
/// and clients keep the connection.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read from the log per step.
const READ_BATCH: usize = 200;

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    /// `evt_` and the event's number; receivers de-duplicate by it.
    #[schema(example = "evt_1042")]
    pub id: String,
    /// `link.created`, `link.updated`, `link.deleted`, `link.expired`,
    /// `link.clicked`, `domain.verified`, `domain.failed`,
    /// `certificate.issued`, `certificate.failed`, `page.updated`, `webhook.test`.
    #[serde(rename = "type")]
    #[schema(example = "link.created")]
    pub kind: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The workspace the event belongs to.
    pub workspace: String,
    pub data: EventData,
}

/// What an event carries, by type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EventData {
    /// `link.created`, `link.updated`, `link.deleted`: the link after the change.
    Link(LinkEventData),
    /// `link.expired`.
    Expired(LinkExpiredData),
    /// `link.clicked`.
    Clicks(ClicksData),
    /// `domain.verified`, `domain.failed`.
    Domain(DomainEventData),
    /// `certificate.issued`, `certificate.failed`.
    Certificate(CertificateEventData),
    /// `webhook.test`.
    Test(TestEventData),
    /// `page.updated`: a page was created, edited (or rendered again
    /// because a link it shows changed) or deleted.
    Page(PageEventData),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkEventData {
    pub link: LinkView,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkExpiredData {
    pub link: LinkView,
    /// `time` (its `expires_at` passed) or `click_limit` (its `max_clicks`
    /// were counted).
    #[schema(example = "time")]
    pub reason: String,
}

/// A closed 10-second window's clicks of the workspace's links. A window
/// with more than 500 links comes in parts (`part` 0, 1, …); a window an
/// engine delivered late comes as another event for the same window: sum
/// them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClicksData {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub window_end: OffsetDateTime,
    pub part: u32,
    /// Links by most human clicks.
    pub links: Vec<LinkClicksView>,
    /// When the window held more of the workspace's links than
    /// `webhooks.clicked_links_per_window` (1,000): how many were left out
    /// and their clicks, on the last part; else `null`.
    pub other_links: Option<OtherLinksView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OtherLinksView {
    pub links: u64,
    pub humans: u64,
    pub bots: u64,
}

/// One link's clicks in the window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LinkClicksView {
    pub link_id: u64,
    pub domain: String,
    pub code: String,
    pub humans: u64,
    pub bots: u64,
    /// Per dimension (`country`, `city`, `device`, `browser`, `os`,
    /// `referrer`, `utm_source`, `utm_medium`, `utm_campaign`,
    /// `destination`), the window's values by most humans. Dimensions
    /// without a value in the window are left out.
    pub breakdowns: BTreeMap<String, Vec<ValueCounts>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValueCounts {
    pub value: String,
    pub humans: u64,
    pub bots: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DomainEventData {
    pub domain: String,
    /// `verified` or `failed` (a verified domain whose record went missing
    /// stays `verified`, with `failure` set).
    pub status: String,
    /// Why the check failed.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CertificateEventData {
    pub domain: String,
    /// When the issued certificate expires.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub not_after: Option<OffsetDateTime>,
    /// Why the order failed (it is retried later).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageEventData {
    pub page_id: u64,
    pub domain: String,
    pub handle: String,
    /// `created`, `updated` or `deleted`.
    #[schema(example = "updated")]
    pub change: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TestEventData {
    pub endpoint_id: String,
    pub message: String,
}

fn clicks_view(links: &[LinkClicks]) -> Vec<LinkClicksView> {
    links
        .iter()
        .map(|link| LinkClicksView {
            link_id: link.link_id,
            domain: link.domain.clone(),
            code: link.code.clone(),
            humans: link.humans,
            bots: link.bots,
            breakdowns: link
                .breakdowns
                .iter()
                .map(|(dimension, values)| {
                    (
                        dimension.clone(),
                        values
                            .iter()
                            .map(|(value, humans, bots)| ValueCounts {
                                value: value.clone(),
                                humans: *humans,
                                bots: *bots,
                            })
                            .collect(),
                    )
                })
                .collect(),
        })
        .collect()
}

/// An event as the API and webhooks show it.
pub fn render(event: &EventRecord) -> EventView {
    let data = match &event.subject {
        Subject::Link { link } => EventData::Link(LinkEventData {
            link: LinkView::from(link.as_ref()),
        }),
        Subject::Expired { link, reason } => EventData::Expired(LinkExpiredData {
            link: LinkView::from(link.as_ref()),
            reason: match reason {
                ExpiryReason::Time => "time",
                ExpiryReason::ClickLimit => "click_limit",
            }
            .to_owned(),
        }),
        Subject::Clicks {
            window_start,
            part,
            links,
            others,
        } => EventData::Clicks(ClicksData {
            window_start: to_datetime(*window_start),
            window_end: to_datetime(window_start + ricochet_model::clicks::WINDOW_MILLIS),
            part: *part,
            links: clicks_view(links),
            other_links: others.map(|others| OtherLinksView {
                links: others.links,
                humans: others.humans,
                bots: others.bots,
            }),
        }),
        Subject::Domain {
            domain,
            status,
            failure,
        } => EventData::Domain(DomainEventData {
            domain: domain.clone(),
            status: status.clone(),
            failure: failure.clone(),
        }),
        Subject::Certificate {
            domain,
            not_after,
            error,
        } => EventData::Certificate(CertificateEventData {
            domain: domain.clone(),
            not_after: not_after.map(to_datetime),
            error: error.clone(),
        }),
        Subject::Page {
            page_id,
            domain,
            handle,
            change,
        } => EventData::Page(PageEventData {
            page_id: *page_id,
            domain: domain.clone(),
            handle: handle.clone(),
            change: change.as_str().to_owned(),
        }),
        Subject::Test { endpoint_id } => EventData::Test(TestEventData {
            endpoint_id: endpoint_id.clone(),
            message: "a test event sent on request".into(),
        }),
    };
    EventView {
        id: event.id(),
        kind: event.kind.as_str().to_owned(),
        created_at: to_datetime(event.created_at),
        workspace: event.workspace.clone(),
        data,
    }
}

/// An event's JSON, as a webhook body and a stream's `data:` line.
pub fn render_json(event: &EventRecord) -> String {
    serde_json::to_string(&render(event)).expect("serializes")
}

/// Query of `GET /api/v1/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Comma-separated types to receive (default: all the caller may read).
    pub types: Option<String>,
    /// Resume after this event id (as the `Last-Event-ID` header does).
    pub last_event_id: Option<String>,
}

/// What a stream sends.
struct Stream {
    store: Arc<ControlStore>,
    workspace: String,
    /// Types sent; `link.clicked` only with the analytics scope.
    types: HashSet<EventKind>,
    cursor: u64,
    watch: tokio::sync::watch::Receiver<u64>,
    ready: VecDeque<web::Bytes>,
    /// Keeps the workspace's click events made while the stream is open.
    _clicks: Option<StreamGuard>,
}

fn frame(event: &EventRecord) -> web::Bytes {
    web::Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        event.id(),
        event.kind.as_str(),
        render_json(event)
    ))
}

impl Stream {
    /// The next chunk: events logged after the cursor, else a keep-alive
    /// comment after [`KEEP_ALIVE`] of silence; `None` at shutdown.
    async fn next(mut self) -> Option<(Result<web::Bytes, actix_web::Error>, Self)> {
        loop {
            if let Some(chunk) = self.ready.pop_front() {
                return Some((Ok(chunk), self));
            }
            self.watch.borrow_and_update();
            let store = self.store.clone();
            let cursor = self.cursor;
            let events = web::block(move || store.events_after(cursor, READ_BATCH))
                .await
                .ok()?
                .ok()?;
            if let Some(last) = events.last() {
                self.cursor = last.seq;
                self.ready.extend(
                    events
                        .iter()
                        .filter(|e| e.workspace == self.workspace && self.types.contains(&e.kind))
                        .map(frame),
                );
                continue;
            }
            match actix_web::rt::time::timeout(KEEP_ALIVE, self.watch.changed()).await {
                Ok(Ok(())) => continue,
                Ok(Err(_)) => return None,
                Err(_) => return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), self)),
            }
        }
    }
}

/// The workspace's events, live, as Server-Sent Events (`text/event-stream`):
/// each is `id: evt_…`, `event: <type>`, `data: <the event's JSON>`.
/// Without `Last-Event-ID` the stream starts with events logged from now on;
/// with it, the events after that one are sent first, from the history kept
/// (`webhooks.retention`, at most `webhooks.max_events`). When the id is
/// older than the history, the stream starts with a `history_truncated`
/// event naming the oldest id kept. `link.clicked` needs the `analytics:read`
/// scope; a keep-alive comment comes every 15 s of silence.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id")
    ),
    responses(
        (status = 200, description = "The stream (`text/event-stream`); every `data:` line is an event", body = EventView, content_type = "text/event-stream"),
        (status = 400, description = "Unknown type in `types` (`invalid_types`) or a malformed event id (`invalid_last_event_id`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn stream_events(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: StreamQuery = super::parse_query(&request)?;
    let clicks_allowed = caller.caller.allows(Scope::AnalyticsRead);
    let types = match query.types.as_deref() {
        None | Some("") | Some("*") => EventKind::SUBSCRIBABLE
            .into_iter()
            .chain([EventKind::WebhookTest])
            .filter(|kind| clicks_allowed || !kind.is_analytics())
            .collect::<HashSet<_>>(),
        Some(list) => {
            let mut types = HashSet::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let kind = EventKind::parse(name).ok_or_else(|| {
                    ApiError::bad_request("invalid_types", format!("unknown event type {name:?}"))
                        .with_field("types")
                })?;
                if kind.is_analytics() && !clicks_allowed {
                    return Err(ApiError::new(
                        403,
                        "insufficient_scope",
                        "link.clicked needs the analytics:read scope",
                    )
                    .with_field("types"));
                }
                types.insert(kind);
            }
            types
        }
    };
    let resume = request
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.last_event_id);
    let resume = match resume.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(parse_event_id(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_last_event_id",
                format!("{text:?} is not an event id (evt_<number>)"),
            )
            .with_field("last_event_id")
        })?),
    };
    let store = state.service.store().clone();
    let (cursor, oldest) = {
        let store = store.clone();
        blocking(move || {
            let latest = store.latest_event();
            let oldest = store.oldest_event()?;
            Ok::<_, crate::store::StoreError>((latest, oldest))
        })
        .await?
    };
    let mut ready = VecDeque::new();
    let cursor = match resume {
        None => cursor,
        Some(after) => {
            let after = after.min(cursor);
            if oldest > 0 && after + 1 < oldest {
                ready.push_back(web::Bytes::from(format!(
                    "event: history_truncated\ndata: {}\n\n",
                    serde_json::json!({ "oldest_event_id": event_id(oldest) })
                )));
            }
            after
        }
    };
    let workspace = caller.caller.workspace_id().to_owned();
    let clicks = types
        .contains(&EventKind::LinkClicked)
        .then(|| state.click_subscribers.open_stream(&workspace));
    let stream = Stream {
        watch: store.watch_events(),
        store,
        workspace,
        types,
        cursor,
        ready,
        _clicks: clicks,
    };
    state
        .event_streams
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let counter = StreamCounter(state.into_inner());
    let body = futures_util::stream::unfold((stream, counter), |(stream, counter)| async move {
        let (chunk, stream) = stream.next().await?;
        Some((chunk, (stream, counter)))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// Counts a stream in `ricochet_control_event_streams` while it lives.
struct StreamCounter(Arc<AppState>);

impl Drop for StreamCounter {
    fn drop(&mut self) {
        self.0
            .event_streams
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}
