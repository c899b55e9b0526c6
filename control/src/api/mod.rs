//! The control plane's HTTP API (actix-web). Routes:
//! - `POST /api/v1/links`, `GET /api/v1/links`, `POST /api/v1/links/bulk`
//! - `GET|PATCH|DELETE /api/v1/links/{id}`, `POST /api/v1/links/{id}/restore`
//! - `GET /api/v1/links/{id}/qr?format&size&margin&ecc&download` (QR code, SVG or PNG; see [`qr`])
//! - `POST|GET /api/v1/domains`, `GET|PATCH|DELETE /api/v1/domains/{domain}`,
//!   `POST /api/v1/domains/{domain}/{verify,verification}` (DNS verification),
//!   `PUT|DELETE /api/v1/domains/{domain}/certificate`, `GET|PUT|DELETE /api/v1/certificates/default`
//! - `POST /api/v1/auth/{sign-in,sign-out,password}`, `GET /api/v1/auth/{session,sessions}`,
//!   `DELETE /api/v1/auth/sessions/{id}`, `PATCH /api/v1/auth/user` (signing in, see [`accounts`])
//! - workspaces, members and invitations (see [`workspaces`])
//! - `GET|POST /api/v1/keys`, `DELETE /api/v1/keys/{id}` (see [`keys`])
//! - `GET|POST /api/v1/denylist`, `DELETE /api/v1/denylist/{host}`,
//!   `GET /api/v1/denylist/check?url=` (blocked destinations; see [`denylist`])
//! - `GET|POST /api/v1/webhooks`, `GET|PATCH|DELETE /api/v1/webhooks/{id}`,
//!   `POST /api/v1/webhooks/{id}/{test,secret}`, `GET /api/v1/webhooks/{id}/deliveries`,
//!   `GET /api/v1/webhook-deliveries[/{id}]`, `POST /api/v1/webhook-deliveries/{id}/redeliver`
//!   (see [`webhooks`])
//! - `GET|POST /api/v1/pages`, `GET|PATCH|DELETE /api/v1/pages/{id}`,
//!   `POST /api/v1/pages/{id}/reorder`, `GET /api/v1/pages/{id}/{qr,analytics}`
//!   (link-in-bio pages; see [`pages`])
//! - `GET /api/v1/events` (Server-Sent Events of the workspace; see [`events`])
//! - `GET /api/v1/links/{id}/analytics/{series,breakdown}`, `GET /api/v1/analytics/{top-links,overview}`
//! - `GET /api/v1/openapi.json` (generated from the handlers)
//! - `GET /internal/v1/changes`, `POST /internal/v1/clicks` (engines, cluster token)
//! - `GET /healthz`, `GET /metrics` (Prometheus: windows and rows engines shipped)
//!
//! Every GET route also answers HEAD (same headers, no body); another method
//! on a known path gets 405 with `Allow`. Every error, including malformed
//! JSON, wrong content types, oversized bodies, unknown routes and methods, is
//! answered in the one JSON error shape.

pub mod accounts;
pub mod analytics;
pub mod auth;
pub mod behaviour_schema;
pub mod denylist;
pub mod domains;
pub mod endpoint;
pub mod error;
pub mod events;
pub mod intake;
pub mod internal;
pub mod keys;
pub mod links;
pub mod openapi;
pub mod pages;
pub mod qr;
pub mod schema;
pub mod types;
pub mod webhooks;
pub mod workspaces;

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::accounts::Accounts;
use crate::service::LinkService;
use crate::workspaces::Workspaces;
use auth::{RateLimits, SignInLimits};
use endpoint::Endpoint;
use error::ApiError;

/// What every handler shares.
pub struct AppState {
    pub service: LinkService,
    /// Link-in-bio pages.
    pub pages: crate::pages::PageService,
    /// Workspaces, members and invitations.
    pub workspaces: Workspaces,
    /// Base of invitation links (`accounts.console_url`), without a trailing slash.
    pub console_url: String,
    /// Mails invitation links when `accounts.smtp_url` is set.
    pub mailer: Option<crate::mailer::Mailer>,
    pub limits: RateLimits,
    /// Users and sessions.
    pub accounts: Accounts,
    pub sign_in_limits: SignInLimits,
    /// The session cookie is always `Secure` (`accounts.behind_https`).
    pub behind_https: bool,
    pub cluster_token: String,
    pub max_body_bytes: usize,
    /// Where click analytics are read; unset answers 503.
    pub clicks: ClickSource,
    /// Where windows shipped by engines are written.
    pub click_sink: std::sync::Arc<dyn ricochet_clickstore::ClickSink>,
    pub intake: std::sync::Arc<intake::IntakeStats>,
    /// The OpenAPI document, rendered at start ([`openapi::render`]).
    pub openapi: web::Bytes,
    /// Looks domains' verification records up.
    pub dns: std::sync::Arc<dyn crate::service::TxtLookup>,
    /// Webhook endpoints and deliveries.
    pub webhooks: crate::webhooks::Webhooks,
    pub webhook_stats: std::sync::Arc<crate::webhooks::dispatch::WebhookStats>,
    /// Who wants click events (open streams register here).
    pub click_subscribers: std::sync::Arc<crate::events::clicks::ClickSubscribers>,
    /// Open `GET /api/v1/events` streams.
    pub event_streams: std::sync::atomic::AtomicUsize,
}

/// The click reader, set at start.
pub type ClickSource =
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn ricochet_clickstore::ClickReader>>>;

/// Registers every route on an actix `App`.
pub fn configure(config: &mut web::ServiceConfig) {
    let routes = [
        Endpoint::new("/healthz").get(|| async { HttpResponse::Ok().body("ok\n") }),
        Endpoint::new("/api/v1/openapi.json").get(openapi::serve),
        Endpoint::new("/api/v1/links")
            .post(links::create_link)
            .get(links::list_links),
        Endpoint::new("/api/v1/links/bulk").post(links::bulk_create),
        Endpoint::new("/api/v1/links/{id}")
            .get(links::get_link)
            .patch(links::patch_link)
            .delete(links::delete_link),
        Endpoint::new("/api/v1/links/{id}/restore").post(links::restore_link),
        Endpoint::new("/api/v1/links/{id}/qr").get(qr::link_qr),
        Endpoint::new("/api/v1/links/{id}/analytics/series").get(analytics::series),
        Endpoint::new("/api/v1/links/{id}/analytics/breakdown").get(analytics::breakdown),
        Endpoint::new("/api/v1/analytics/top-links").get(analytics::top_links),
        Endpoint::new("/api/v1/analytics/overview").get(analytics::overview),
        Endpoint::new("/api/v1/pages")
            .post(pages::create_page)
            .get(pages::list_pages),
        Endpoint::new("/api/v1/pages/{id}")
            .get(pages::get_page)
            .patch(pages::patch_page)
            .delete(pages::delete_page),
        Endpoint::new("/api/v1/pages/{id}/reorder").post(pages::reorder_page),
        Endpoint::new("/api/v1/pages/{id}/qr").get(pages::page_qr),
        Endpoint::new("/api/v1/pages/{id}/analytics").get(pages::page_analytics),
        Endpoint::new("/api/v1/events").get(events::stream_events),
        Endpoint::new("/api/v1/webhooks")
            .get(webhooks::list_webhooks)
            .post(webhooks::create_webhook),
        Endpoint::new("/api/v1/webhooks/{id}")
            .get(webhooks::get_webhook)
            .patch(webhooks::patch_webhook)
            .delete(webhooks::delete_webhook),
        Endpoint::new("/api/v1/webhooks/{id}/test").post(webhooks::test_webhook),
        Endpoint::new("/api/v1/webhooks/{id}/secret").post(webhooks::rotate_webhook_secret),
        Endpoint::new("/api/v1/webhooks/{id}/deliveries").get(webhooks::list_webhook_deliveries),
        Endpoint::new("/api/v1/webhook-deliveries").get(webhooks::list_deliveries),
        Endpoint::new("/api/v1/webhook-deliveries/{id}").get(webhooks::get_delivery),
        Endpoint::new("/api/v1/webhook-deliveries/{id}/redeliver")
            .post(webhooks::redeliver_delivery),
        Endpoint::new("/api/v1/domains")
            .post(domains::create_domain)
            .get(domains::list_domains),
        Endpoint::new("/api/v1/domains/{domain}")
            .get(domains::get_domain)
            .patch(domains::patch_domain)
            .delete(domains::delete_domain),
        Endpoint::new("/api/v1/domains/{domain}/verify").post(domains::verify_domain),
        Endpoint::new("/api/v1/domains/{domain}/verification").post(domains::restart_verification),
        Endpoint::new("/api/v1/domains/{domain}/certificate")
            .put(domains::put_certificate)
            .delete(domains::delete_certificate),
        Endpoint::new("/api/v1/certificates/default")
            .get(domains::get_default_certificate)
            .put(domains::put_default_certificate)
            .delete(domains::delete_default_certificate),
        Endpoint::new("/api/v1/auth/sign-in").post(accounts::sign_in),
        Endpoint::new("/api/v1/auth/sign-out").post(accounts::sign_out),
        Endpoint::new("/api/v1/auth/session").get(accounts::current_session),
        Endpoint::new("/api/v1/auth/sessions").get(accounts::list_sessions),
        Endpoint::new("/api/v1/auth/sessions/{id}").delete(accounts::revoke_session),
        Endpoint::new("/api/v1/auth/password").post(accounts::change_password),
        Endpoint::new("/api/v1/auth/user").patch(accounts::update_user),
        Endpoint::new("/api/v1/workspaces")
            .get(workspaces::list_workspaces)
            .post(workspaces::create_workspace),
        Endpoint::new("/api/v1/workspaces/{id}")
            .get(workspaces::get_workspace)
            .patch(workspaces::rename_workspace)
            .delete(workspaces::delete_workspace),
        Endpoint::new("/api/v1/workspaces/{id}/restore").post(workspaces::restore_workspace),
        Endpoint::new("/api/v1/workspaces/{id}/switch").post(workspaces::switch_workspace),
        Endpoint::new("/api/v1/workspaces/{id}/members").get(workspaces::list_members),
        Endpoint::new("/api/v1/workspaces/{id}/members/{user_id}")
            .patch(workspaces::change_role)
            .delete(workspaces::remove_member),
        Endpoint::new("/api/v1/workspaces/{id}/invitations")
            .get(workspaces::list_invitations)
            .post(workspaces::create_invitation),
        Endpoint::new("/api/v1/workspaces/{id}/invitations/{invitation_id}")
            .delete(workspaces::revoke_invitation),
        Endpoint::new("/api/v1/invitations/preview").post(workspaces::preview_invitation),
        Endpoint::new("/api/v1/invitations/accept").post(workspaces::accept_invitation),
        Endpoint::new("/api/v1/keys")
            .get(keys::list_keys)
            .post(keys::create_key),
        Endpoint::new("/api/v1/keys/{id}").delete(keys::revoke_key),
        Endpoint::new("/api/v1/denylist")
            .get(denylist::list)
            .post(denylist::add),
        Endpoint::new("/api/v1/denylist/check").get(denylist::check),
        Endpoint::new("/api/v1/denylist/{host}").delete(denylist::remove),
        Endpoint::new("/internal/v1/changes").get(internal::changes),
        Endpoint::new("/internal/v1/clicks").post(intake::clicks),
        Endpoint::new("/metrics").get(intake::metrics),
    ];
    for endpoint in routes {
        config.service(endpoint.build());
    }
    config.default_service(web::to(unknown_route));
}

async fn unknown_route(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        request.method(),
        request.path()
    )))
}

/// Runs `work` (store or click-store calls) on actix's blocking pool, so
/// handlers never wait on disk on the threads that serve requests.
pub async fn blocking<T, E>(
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    match web::block(work).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(_) => Err(ApiError::internal()),
    }
}

/// Reads a request body of at most `limit` bytes.
pub async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                413,
                "payload_too_large",
                format!("the request body is over {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads a JSON body of at most `limit` bytes and parses it.
pub async fn read_json<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let body = read_body(payload, limit).await?;
    parse_json(request, &body)
}

/// Parses a JSON body, requiring a JSON content type.
pub fn parse_json<T: DeserializeOwned>(request: &HttpRequest, body: &[u8]) -> Result<T, ApiError> {
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media != "application/json" && !media.ends_with("+json") {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        ));
    }
    serde_json::from_slice(body).map_err(json_error)
}

/// Reads a JSON value (the console's forms, turned into the API's bodies)
/// as `T`, with the errors a JSON body would get.
pub fn from_json_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(json_error)
}

fn json_error(error: serde_json::Error) -> ApiError {
    let message = error.to_string();
    let field = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|marker| {
            let start = message.find(marker)? + marker.len();
            let end = message[start..].find('`')?;
            Some(message[start..start + end].to_owned())
        });
    let code = if error.is_data() {
        "invalid_field"
    } else {
        "invalid_json"
    };
    let error = ApiError::bad_request(code, message);
    match field {
        Some(field) => error.with_field(field),
        None => error,
    }
}

/// Parses the query string.
pub fn parse_query<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
