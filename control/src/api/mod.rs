//! The control plane's HTTP API (actix-web). Routes:
//! - `POST /api/v1/links`, `GET /api/v1/links`, `POST /api/v1/links/bulk`
//! - `GET|PATCH|DELETE /api/v1/links/{id}`, `POST /api/v1/links/{id}/restore`
//! - `POST|GET /api/v1/domains`
//! - `GET /api/v1/links/{id}/analytics/{series,breakdown}`, `GET /api/v1/analytics/{top-links,overview}`
//! - `GET /api/v1/openapi.json` (generated from the handlers)
//! - `GET /internal/v1/changes` (engines, cluster token)
//! - `GET /healthz`
//!
//! Every error, including malformed JSON, wrong content types, oversized
//! bodies and unknown routes, is answered in the one JSON error shape.

pub mod analytics;
pub mod auth;
pub mod domains;
pub mod error;
pub mod internal;
pub mod links;
pub mod openapi;
pub mod types;

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::service::LinkService;
use auth::RateLimits;
use error::ApiError;

/// What every handler shares.
pub struct AppState {
    pub service: LinkService,
    pub limits: RateLimits,
    pub cluster_token: String,
    pub max_body_bytes: usize,
    /// Where click analytics are read; unset answers 503.
    pub clicks: ClickSource,
}

/// The click reader, set at start or later (the all-in-one binary starts the
/// engine, which owns the click store, after the control plane).
pub type ClickSource =
    std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn ricochet_model::clicks::ClickReader>>>;

/// Registers every route on an actix `App`.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().body("ok\n") }),
        )
        .route("/api/v1/openapi.json", web::get().to(openapi::serve))
        .route("/api/v1/links", web::post().to(links::create_link))
        .route("/api/v1/links", web::get().to(links::list_links))
        .route("/api/v1/links/bulk", web::post().to(links::bulk_create))
        .route("/api/v1/links/{id}", web::get().to(links::get_link))
        .route("/api/v1/links/{id}", web::patch().to(links::patch_link))
        .route("/api/v1/links/{id}", web::delete().to(links::delete_link))
        .route(
            "/api/v1/links/{id}/restore",
            web::post().to(links::restore_link),
        )
        .route("/api/v1/domains", web::post().to(domains::create_domain))
        .route("/api/v1/domains", web::get().to(domains::list_domains))
        .route(
            "/api/v1/links/{id}/analytics/series",
            web::get().to(analytics::series),
        )
        .route(
            "/api/v1/links/{id}/analytics/breakdown",
            web::get().to(analytics::breakdown),
        )
        .route(
            "/api/v1/analytics/top-links",
            web::get().to(analytics::top_links),
        )
        .route(
            "/api/v1/analytics/overview",
            web::get().to(analytics::overview),
        )
        .route("/internal/v1/changes", web::get().to(internal::changes))
        .default_service(web::to(unknown_route));
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
