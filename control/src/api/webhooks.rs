//! Webhook endpoints and their deliveries (scope `admin`: endpoints hold
//! secrets):
//! - `GET|POST /api/v1/webhooks`, `GET|PATCH|DELETE /api/v1/webhooks/{id}`
//! - `POST /api/v1/webhooks/{id}/test` (a `webhook.test` event to it),
//!   `POST /api/v1/webhooks/{id}/secret` (a new secret)
//! - `GET /api/v1/webhooks/{id}/deliveries` (its delivery log)
//! - `GET /api/v1/webhook-deliveries` (every endpoint's; `?state=dead` is
//!   the dead-letter list), `GET /api/v1/webhook-deliveries/{id}`,
//!   `POST /api/v1/webhook-deliveries/{id}/redeliver`

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::types::{optional_field, to_datetime};
use super::{AppState, blocking};
use crate::events::EventRecord;
use crate::store::{Attempt, DeliveryRecord, DeliveryState, EndpointRecord};
use crate::webhooks::{EndpointInput, EndpointPatch, WebhookError, delivery_id, parse_delivery_id};

/// Deliveries a page holds by default and at most.
const DEFAULT_PAGE: usize = 50;
const MAX_PAGE: usize = 200;

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where events are POSTed: a public http(s) URL.
    #[schema(example = "https://hooks.example.com/ricochet", max_length = 2048)]
    pub url: String,
    /// Types to receive (see `EventView.type`); `["*"]` is every type.
    #[schema(example = json!(["link.created", "link.clicked"]))]
    pub events: Vec<String>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
}

/// An edit; absent fields stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchWebhook {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "optional_field")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// `true` re-enables an endpoint disabled for failing (its failures are
    /// forgotten); `false` pauses it (events meanwhile are not delivered).
    pub enabled: Option<bool>,
}

/// An endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    #[schema(example = "wh_4fJ2kq9ZpX7mN1bV")]
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// The signing secret: in the answers that create it or rotate it only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
    /// Since when every attempt has failed; `null` while it answers.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<OffsetDateTime>,
    /// When it was disabled for failing (`webhooks.disable_after`).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub disabled_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_success_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_failure_at: Option<OffsetDateTime>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

/// One event to one endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    #[schema(example = "dlv_311")]
    pub id: String,
    pub webhook_id: String,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `dead` (the dead-letter list).
    pub state: String,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<OffsetDateTime>,
    /// The latest attempts (at most 10), oldest first.
    pub log: Vec<AttemptView>,
    /// The body sent (the event), on `GET /api/v1/webhook-deliveries/{id}`
    /// and the test's answer only, while the event is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<super::events::EventView>)]
    pub payload: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next (older) page; `null` at the end.
    pub next_before: Option<String>,
}

/// Query of the delivery lists.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `delivered` or `dead`.
    pub state: Option<String>,
    /// Deliveries older than this one (`next_before` of the last page).
    pub before: Option<String>,
    /// 1 to 200 (default 50).
    pub limit: Option<usize>,
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        let message = error.to_string();
        match error {
            WebhookError::InvalidUrl(_) => {
                Self::bad_request("invalid_url", message).with_field("url")
            }
            WebhookError::NotPublic(_) => {
                Self::bad_request("url_not_public", message).with_field("url")
            }
            WebhookError::InvalidEvents(_) => {
                Self::bad_request("invalid_events", message).with_field("events")
            }
            WebhookError::InvalidDescription => {
                Self::bad_request("invalid_description", message).with_field("description")
            }
            WebhookError::TooManyEndpoints { .. } => Self::new(409, "too_many_webhooks", message),
            WebhookError::EndpointNotFound(_) | WebhookError::DeliveryNotFound(_) => {
                Self::not_found(message)
            }
            WebhookError::DeliveryPending(_) => Self::new(409, "delivery_pending", message),
            WebhookError::Store(error) => Self::from_fault(&error),
        }
    }
}

fn view(endpoint: EndpointRecord, with_secret: bool) -> WebhookView {
    WebhookView {
        id: endpoint.id,
        url: endpoint.url,
        events: endpoint
            .events
            .iter()
            .map(|kind| kind.as_str().to_owned())
            .collect(),
        description: endpoint.description,
        enabled: endpoint.enabled,
        secret: with_secret.then_some(endpoint.secret),
        created_at: to_datetime(endpoint.created_at),
        updated_at: to_datetime(endpoint.updated_at),
        failing_since: endpoint.failing_since.map(to_datetime),
        disabled_at: endpoint.disabled_at.map(to_datetime),
        disabled_reason: endpoint.disabled_reason,
        last_success_at: endpoint.last_success_at.map(to_datetime),
        last_failure_at: endpoint.last_failure_at.map(to_datetime),
    }
}

fn attempt_view(attempt: &Attempt) -> AttemptView {
    AttemptView {
        at: to_datetime(attempt.at),
        status: attempt.status,
        latency_ms: attempt.latency_ms,
        error: attempt.error.clone(),
    }
}

/// `delivery` as the API shows it, with the event it sends when given.
fn delivery_view(delivery: &DeliveryRecord, payload: Option<&EventRecord>) -> DeliveryView {
    DeliveryView {
        id: delivery_id(delivery.id),
        webhook_id: delivery.endpoint_id.clone(),
        event_id: crate::events::event_id(delivery.event_seq),
        event_type: delivery.event_type.as_str().to_owned(),
        state: delivery.state.as_str().to_owned(),
        attempts: delivery.attempts,
        next_attempt_at: delivery.next_attempt_at.map(to_datetime),
        created_at: to_datetime(delivery.created_at),
        delivered_at: delivery.delivered_at.map(to_datetime),
        log: delivery.log.iter().map(attempt_view).collect(),
        payload: payload
            .map(|event| serde_json::to_value(super::events::render(event)).expect("serializes")),
    }
}

fn parse_delivery(text: &str) -> Result<u64, ApiError> {
    parse_delivery_id(text).ok_or_else(|| ApiError::not_found(format!("no delivery {text}")))
}

/// The state, cursor and size of a delivery page.
fn page(query: DeliveryQuery) -> Result<(Option<DeliveryState>, Option<u64>, usize), ApiError> {
    let state = query
        .state
        .as_deref()
        .map(|text| {
            DeliveryState::parse(text).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_state",
                    format!("state {text:?} is not pending, delivered or dead"),
                )
                .with_field("state")
            })
        })
        .transpose()?;
    let before = query
        .before
        .as_deref()
        .map(|text| {
            parse_delivery_id(text).ok_or_else(|| {
                ApiError::bad_request("invalid_before", format!("{text:?} is not a delivery id"))
                    .with_field("before")
            })
        })
        .transpose()?;
    let limit = match query.limit {
        None => DEFAULT_PAGE,
        Some(limit @ 1..=MAX_PAGE) => limit,
        Some(_) => {
            return Err(
                ApiError::bad_request("invalid_limit", "limit is 1 to 200").with_field("limit")
            );
        }
    };
    Ok((state, before, limit))
}

fn delivery_list(deliveries: Vec<DeliveryRecord>, limit: usize) -> DeliveryList {
    let next_before = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| delivery_id(d.id)))
        .flatten();
    DeliveryList {
        deliveries: deliveries.iter().map(|d| delivery_view(d, None)).collect(),
        next_before,
    }
}

/// The workspace's endpoints (secrets left out).
#[utoipa::path(
    get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)),
    security(("api_key" = []))
)]
pub async fn list_webhooks(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let endpoints = blocking(move || webhooks.list(&workspace)).await?;
    Ok(HttpResponse::Ok().json(WebhookList {
        webhooks: endpoints.into_iter().map(|e| view(e, false)).collect(),
    }))
}

/// A new endpoint. The answer holds its signing secret: the only time it
/// is shown (rotate it with `POST /api/v1/webhooks/{id}/secret`).
#[utoipa::path(
    post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses(
        (status = 201, body = WebhookView),
        (status = 400, description = "`invalid_url`, `url_not_public` (a private, loopback or link-local address, after resolution), `invalid_events`, `invalid_description`", body = ErrorBody),
        (status = 409, description = "The workspace has `webhooks.max_endpoints` endpoints (`too_many_webhooks`)", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_webhook(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: CreateWebhook = super::read_json(&request, payload, state.max_body_bytes).await?;
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let endpoint = blocking(move || {
        webhooks.create(
            &workspace,
            EndpointInput {
                url: input.url,
                events: input.events,
                description: input.description,
            },
            now_millis(),
        )
    })
    .await?;
    Ok(HttpResponse::Created().json(view(endpoint, true)))
}

#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_webhook(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let endpoint = blocking(move || webhooks.get(&workspace, &id)).await?;
    Ok(HttpResponse::Ok().json(view(endpoint, false)))
}

/// Changes an endpoint's URL, types, description, or whether it is enabled.
#[utoipa::path(
    patch, path = "/api/v1/webhooks/{id}", tag = "webhooks", request_body = PatchWebhook,
    params(("id" = String, Path)),
    responses(
        (status = 200, body = WebhookView),
        (status = 400, description = "As for creation", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn patch_webhook(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: PatchWebhook = super::read_json(&request, payload, state.max_body_bytes).await?;
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let endpoint = blocking(move || {
        webhooks.update(
            &workspace,
            &id,
            EndpointPatch {
                url: input.url,
                events: input.events,
                description: input.description,
                enabled: input.enabled,
            },
            now_millis(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(view(endpoint, false)))
}

/// Removes an endpoint and its deliveries.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn delete_webhook(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    blocking(move || webhooks.delete(&workspace, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sends a `webhook.test` event to this endpoint (only), now; the answer is
/// the delivery, to follow on `GET /api/v1/webhook-deliveries/{id}`.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/test", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 202, body = DeliveryView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn test_webhook(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let (delivery, event) = blocking(move || {
        let delivery = webhooks.send_test(&workspace, &id, now_millis())?;
        let event = webhooks.store().event(delivery.event_seq)?;
        Ok::<_, WebhookError>((delivery, event))
    })
    .await?;
    Ok(HttpResponse::Accepted().json(delivery_view(&delivery, event.as_ref())))
}

/// A new signing secret (in the answer, once); the old one stops at once.
#[utoipa::path(
    post, path = "/api/v1/webhooks/{id}/secret", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn rotate_webhook_secret(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let endpoint = blocking(move || webhooks.rotate_secret(&workspace, &id, now_millis())).await?;
    Ok(HttpResponse::Ok().json(view(endpoint, true)))
}

/// An endpoint's delivery log, newest first.
#[utoipa::path(
    get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), DeliveryQuery),
    responses(
        (status = 200, body = DeliveryList),
        (status = 400, description = "`invalid_state`, `invalid_before`, `invalid_limit`", body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn list_webhook_deliveries(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (delivery_state, before, limit) = page(super::parse_query(&request)?)?;
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let deliveries =
        blocking(move || webhooks.deliveries(&workspace, &id, delivery_state, before, limit))
            .await?;
    Ok(HttpResponse::Ok().json(delivery_list(deliveries, limit)))
}

/// Deliveries of every endpoint of the workspace, newest first;
/// `?state=dead` is the dead-letter list.
#[utoipa::path(
    get, path = "/api/v1/webhook-deliveries", tag = "webhooks",
    params(DeliveryQuery),
    responses(
        (status = 200, body = DeliveryList),
        (status = 400, description = "`invalid_state`, `invalid_before`, `invalid_limit`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn list_deliveries(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (delivery_state, before, limit) = page(super::parse_query(&request)?)?;
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let deliveries =
        blocking(move || webhooks.workspace_deliveries(&workspace, delivery_state, before, limit))
            .await?;
    Ok(HttpResponse::Ok().json(delivery_list(deliveries, limit)))
}

/// One delivery, with the body it sends.
#[utoipa::path(
    get, path = "/api/v1/webhook-deliveries/{id}", tag = "webhooks",
    params(("id" = String, Path)),
    responses((status = 200, body = DeliveryView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_delivery(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_delivery(&id)?;
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let (delivery, event) = blocking(move || {
        let delivery = webhooks.delivery(&workspace, id)?;
        let event = webhooks.store().event(delivery.event_seq)?;
        Ok::<_, WebhookError>((delivery, event))
    })
    .await?;
    Ok(HttpResponse::Ok().json(delivery_view(&delivery, event.as_ref())))
}

/// Sends a dead (or delivered) delivery again, now, with three retries if
/// it fails again. The same event id goes out: receivers de-duplicate.
#[utoipa::path(
    post, path = "/api/v1/webhook-deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = String, Path)),
    responses(
        (status = 202, body = DeliveryView),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The delivery is pending (`delivery_pending`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn redeliver_delivery(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_delivery(&id)?;
    let webhooks = state.webhooks.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let delivery = blocking(move || webhooks.redeliver(&workspace, id, now_millis())).await?;
    Ok(HttpResponse::Accepted().json(delivery_view(&delivery, None)))
}
