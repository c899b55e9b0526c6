//! Link routes: `POST /links`, `GET /links`, `GET|PATCH|DELETE /links/{id}`,
//! `POST /links/bulk`.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::{LinkState, now_millis};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::AppState;
use super::auth::authorize;
use super::types::{BulkResult, CreateLink, LinkList, LinkView, PatchLink};
use crate::error::{ApiError, ErrorBody};
use crate::keys::Scope;
use crate::store::{LinkFilter, LinkSort};

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Creates a link with a random or custom code.
#[utoipa::path(
    post, path = "/api/v1/links", tag = "links",
    request_body = CreateLink,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first result")),
    responses(
        (status = 201, body = LinkView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_link(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksWrite,
    )?;
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let input: CreateLink = super::parse_json(&request, &body)?;
    let service = state.service.clone();
    let idempotency = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .ok()
                .filter(|v| !v.is_empty() && v.len() <= MAX_IDEMPOTENCY_KEY)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_idempotency_key",
                        format!(
                            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible characters"
                        ),
                    )
                    .with_field("Idempotency-Key")
                })?;
            Some(format!("{}:{value}", key.id))
        }
    };
    let now = now_millis();
    match idempotency {
        None => {
            let link = web::block(move || service.create(&input, now))
                .await
                .map_err(|_| ApiError::internal())??;
            Ok(HttpResponse::Created().json(LinkView::from(&link)))
        }
        Some(idempotency) => {
            let request_hash = hex::encode(Sha256::digest(&body));
            let (status, body) = web::block(move || {
                service.create_idempotent(&input, &idempotency, &request_hash, now)
            })
            .await
            .map_err(|_| ApiError::internal())??;
            Ok(HttpResponse::build(
                actix_web::http::StatusCode::from_u16(status).unwrap_or_default(),
            )
            .content_type("application/json")
            .body(body))
        }
    }
}

/// Query of `GET /links`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only links on this domain.
    pub domain: Option<String>,
    /// Only links with this tag.
    pub tag: Option<String>,
    /// Only links in this state: active, disabled or deleted.
    pub state: Option<String>,
    /// Text searched in code, title and destination (case-insensitive).
    pub q: Option<String>,
    /// `-created` (newest first, default), `created`, or `code`.
    pub sort: Option<String>,
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 1000 (default 50).
    pub limit: Option<usize>,
}

/// Lists links, filtered and sorted, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/links", tag = "links", params(ListQuery),
    responses((status = 200, body = LinkList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_links(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksRead,
    )?;
    let query: ListQuery = super::parse_query(&request)?;
    let sort = match query.sort.as_deref() {
        None | Some("-created") | Some("-created_at") => LinkSort::NewestFirst,
        Some("created") | Some("created_at") => LinkSort::OldestFirst,
        Some("code") => LinkSort::Code,
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_sort",
                format!("sort must be -created, created or code, not {other:?}"),
            )
            .with_field("sort"));
        }
    };
    let state_filter = match query.state.as_deref() {
        None => None,
        Some("active") => Some(LinkState::Active),
        Some("disabled") => Some(LinkState::Disabled),
        Some("deleted") => Some(LinkState::Deleted),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_state",
                format!("state must be active, disabled or deleted, not {other:?}"),
            )
            .with_field("state"));
        }
    };
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid_limit", "limit must be 1 to 1000").with_field("limit"),
        );
    }
    let domain = match &query.domain {
        Some(domain) => Some(ricochet_model::normalize_domain(domain)?),
        None => None,
    };
    let filter = LinkFilter {
        domain,
        tag: query.tag.clone(),
        state: state_filter,
        search: query.q.clone().filter(|q| !q.is_empty()),
    };
    let store = state.service.store().clone();
    let cursor = query.cursor.clone();
    let page = web::block(move || store.list_links(&filter, sort, cursor.as_deref(), limit))
        .await
        .map_err(|_| ApiError::internal())??
        .map_err(|_| {
            ApiError::bad_request("invalid_cursor", "the cursor is not one this API issued")
                .with_field("cursor")
        })?;
    Ok(HttpResponse::Ok().json(LinkList {
        links: page.links.iter().map(LinkView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no link with id {raw:?}")))
}

/// One link.
#[utoipa::path(
    get, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    responses((status = 200, body = LinkView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_link(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksRead,
    )?;
    let id = parse_id(&id)?;
    let link = state
        .service
        .store()
        .link(id)?
        .ok_or_else(|| ApiError::not_found(format!("no link with id {id}")))?;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Edits a link: destination, status, state, expiry, title, tags, forward-query flag.
#[utoipa::path(
    patch, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    request_body = PatchLink,
    responses((status = 200, body = LinkView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn patch_link(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksWrite,
    )?;
    let id = parse_id(&id)?;
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let patch: PatchLink = super::parse_json(&request, &body)?;
    let service = state.service.clone();
    let now = now_millis();
    let link = web::block(move || service.update(id, &patch, now))
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Soft-deletes a link: its state becomes `deleted` and engines answer 410.
#[utoipa::path(
    delete, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    responses((status = 200, body = LinkView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn delete_link(
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksWrite,
    )?;
    let id = parse_id(&id)?;
    let service = state.service.clone();
    let now = now_millis();
    let link = web::block(move || service.delete(id, now))
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Creates up to `links.max_bulk` links; each item succeeds or fails alone.
#[utoipa::path(
    post, path = "/api/v1/links/bulk", tag = "links",
    request_body = Vec<CreateLink>,
    responses((status = 200, body = BulkResult), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn bulk_create(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksWrite,
    )?;
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let inputs: Vec<CreateLink> = super::parse_json(&request, &body)?;
    let service = state.service.clone();
    let now = now_millis();
    let result = web::block(move || service.create_bulk(&inputs, now))
        .await
        .map_err(|_| ApiError::internal())??;
    Ok(HttpResponse::Ok().json(result))
}
