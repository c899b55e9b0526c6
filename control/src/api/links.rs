//! Link routes: `POST /links`, `GET /links`, `GET|PATCH|DELETE /links/{id}`,
//! `POST /links/{id}/restore`, `POST /links/bulk`.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::{LinkState, now_millis};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::schema;
use super::types::{BulkItem, BulkResult, CreateLink, LinkList, LinkView, PatchLink};
use super::{AppState, blocking};
use crate::service::{IdempotencyKey, LinkChanges, LinkQuery, NewLink, StoredAnswer};
use crate::store::{LinkFilter, LinkSort};

/// Longest accepted `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Creates a link with a random or custom code, and its behaviour (rules,
/// variants, fallback URL, card, ios, android), password and click limit
/// when given. With `links.fetch_card_metadata` on, a link without a card
/// gets the one its destination's page declares (public addresses only);
/// a failed fetch only leaves the card unset.
#[utoipa::path(
    post, path = "/api/v1/links", tag = "links",
    request_body = CreateLink,
    params(("Idempotency-Key" = Option<String>, Header,
        min_length = 1, max_length = 255, pattern = "^[\\x21-\\x7e](?:[\\x20-\\x7e]*[\\x21-\\x7e])?$",
        description = "Makes a retried create (same key, same body) return the first result")),
    responses(
        (status = 201, description = "Created (or the first answer to this Idempotency-Key)", body = LinkView),
        (status = 400, description = "Invalid body, field (`field` is its full path, such as `rules[3].conditions[0].value`; `invalid_password`, `invalid_max_clicks`), a destination on a short-link domain, reserved code or Idempotency-Key", body = ErrorBody),
        (status = 409, description = "The code is taken on that domain", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 422, description = "Unregistered domain, or an Idempotency-Key reused with another body", body = ErrorBody),
        (status = 503, description = "No free random code; raise `links.code_length`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_link(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let input: NewLink = super::parse_json::<CreateLink>(&request, &body)?.into();
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
            Some(format!("{}:{value}", caller.caller.id()))
        }
    };
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let Some(idempotency) = idempotency else {
        let link = blocking(move || service.create(&workspace, &input, now)).await?;
        return Ok(HttpResponse::Created().json(LinkView::from(&link)));
    };
    let answer = blocking(move || {
        let idempotency = IdempotencyKey {
            request_hash: request_hash(&body, &idempotency, &input),
            key: idempotency,
        };
        service.create_idempotent(&workspace, &input, &idempotency, now, |link| StoredAnswer {
            status: 201,
            body: serde_json::to_string(&LinkView::from(link)).expect("serializes"),
        })
    })
    .await?;
    Ok(HttpResponse::build(
        actix_web::http::StatusCode::from_u16(answer.status).unwrap_or_default(),
    )
    .content_type("application/json")
    .body(answer.body))
}

/// The hash a retry's body must match: a SHA-256 of the body, where a
/// password is left out of the body and stands in as its Argon2id hash
/// salted by the idempotency key (see
/// [`PasswordInput::keyed_fingerprint`](crate::service::PasswordInput::keyed_fingerprint)),
/// so the stored hash gives no fast way to guess the password. Slow with a
/// password: run off the threads serving requests.
fn request_hash(body: &[u8], key: &str, input: &NewLink) -> String {
    let fingerprint = input
        .access
        .password
        .as_ref()
        .and_then(|password| password.keyed_fingerprint(key));
    let Some(fingerprint) = fingerprint else {
        return hex::encode(Sha256::digest(body));
    };
    let mut without = serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    if let Some(fields) = without.as_object_mut() {
        fields.remove("password");
    }
    let mut hasher = Sha256::new();
    hasher.update(without.to_string());
    hasher.update([0]);
    hasher.update(fingerprint);
    hex::encode(hasher.finalize())
}

/// Query of `GET /links`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only links on this domain.
    #[param(schema_with = schema::hostname)]
    pub domain: Option<String>,
    /// Only links with this tag.
    pub tag: Option<String>,
    /// Only links in this state (soft-deleted links are `deleted`).
    #[param(schema_with = schema::state)]
    pub state: Option<String>,
    /// Text searched in code, title and destination (case-insensitive).
    pub q: Option<String>,
    #[param(schema_with = schema::sort)]
    pub sort: Option<String>,
    /// From `next_cursor` of the previous page (400 for any other value;
    /// empty means the first page).
    pub cursor: Option<String>,
    /// Page size (default 50).
    #[param(schema_with = schema::limit)]
    pub limit: Option<usize>,
}

/// Lists links, filtered and sorted, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/links", tag = "links", params(ListQuery),
    responses(
        (status = 200, body = LinkList),
        (status = 400, description = "Bad query parameter or cursor", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn list_links(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: ListQuery = super::parse_query(&request)?;
    let sort = parse_sort(query.sort.as_deref())?;
    let state_filter = parse_state(query.state.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid_limit", "limit must be 1 to 1000").with_field("limit"),
        );
    }
    let query = LinkQuery {
        filter: LinkFilter {
            workspace: None,
            domain: query.domain,
            tag: query.tag,
            state: state_filter,
            search: query.q.filter(|q| !q.is_empty()),
        },
        sort,
        cursor: query.cursor.filter(|c| !c.is_empty()),
        limit,
    };
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let page = blocking(move || service.list(&workspace, &query)).await?;
    Ok(HttpResponse::Ok().json(LinkList {
        links: page.links.iter().map(LinkView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The `sort` of a listing (`-created` when absent).
pub fn parse_sort(sort: Option<&str>) -> Result<LinkSort, ApiError> {
    Ok(match sort {
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
    })
}

/// The `state` filter of a listing.
pub fn parse_state(state: Option<&str>) -> Result<Option<LinkState>, ApiError> {
    Ok(match state {
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
    })
}

fn parse_id(raw: &str) -> Result<u64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no link with id {raw:?}")))
}

/// One link.
#[utoipa::path(
    get, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    responses(
        (status = 200, description = "The link, deleted ones included", body = LinkView),
        (status = 404, description = "No such link", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn get_link(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let link = blocking(move || service.link(&workspace, id)).await?;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Edits a link: destination, status, state, expiry, title, tags, forward-query
/// flag, rules, variants, fallback URL, card, ios, android, password and
/// click limit. Absent fields stay; a refused edit changes nothing.
#[utoipa::path(
    patch, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    request_body = PatchLink,
    responses(
        (status = 200, body = LinkView),
        (status = 400, description = "Invalid body or field (`field` is its full path, such as `rules[3].conditions[0].value`; `invalid_password`, `invalid_max_clicks`), or a destination on a short-link domain", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn patch_link(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let changes: LinkChanges =
        super::read_json::<PatchLink>(&request, payload, state.max_body_bytes)
            .await?
            .into();
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let link = blocking(move || service.update(&workspace, id, &changes, now)).await?;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Soft-deletes a link: its state becomes `deleted`, it keeps its id and code
/// (still listed with `state=deleted`), and engines answer 410 until
/// `POST /links/{id}/restore`. Deleting a deleted link changes nothing.
#[utoipa::path(
    delete, path = "/api/v1/links/{id}", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    responses(
        (status = 200, description = "The link, now deleted", body = LinkView),
        (status = 404, description = "No such link", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn delete_link(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let link = blocking(move || service.delete(&workspace, id, now)).await?;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Restores a soft-deleted link: its state becomes `active` again, as a new
/// version published to engines like any edit. A link that is not deleted is
/// returned unchanged.
#[utoipa::path(
    post, path = "/api/v1/links/{id}/restore", tag = "links",
    params(("id" = u64, Path, description = "Link id")),
    responses(
        (status = 200, description = "The link, active again (or unchanged)", body = LinkView),
        (status = 404, description = "No such link", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn restore_link(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let link = blocking(move || service.restore(&workspace, id, now)).await?;
    Ok(HttpResponse::Ok().json(LinkView::from(&link)))
}

/// Creates up to `links.max_bulk` links; each item succeeds or fails alone.
#[utoipa::path(
    post, path = "/api/v1/links/bulk", tag = "links",
    request_body = Vec<CreateLink>,
    responses(
        (status = 200, description = "One result per item; refused items carry their error", body = BulkResult),
        (status = 400, description = "The body is not an array of links", body = ErrorBody),
        (status = 413, description = "More than `links.max_bulk` items, or a body over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
        (status = 503, description = "No free random code; raise `links.code_length`", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn bulk_create(
    caller: Authorized<scope::LinksWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let inputs: Vec<CreateLink> = super::read_json(&request, payload, state.max_body_bytes).await?;
    let inputs: Vec<NewLink> = inputs.into_iter().map(NewLink::from).collect();
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let outcomes = blocking(move || service.create_bulk(&workspace, &inputs, now)).await?;
    let items: Vec<BulkItem> = outcomes
        .into_iter()
        .enumerate()
        .map(|(index, outcome)| match outcome {
            Ok(link) => BulkItem {
                index,
                status: 201,
                link: Some(LinkView::from(&link)),
                error: None,
            },
            Err(error) => {
                let error = ApiError::from(error);
                BulkItem {
                    index,
                    status: error.status,
                    link: None,
                    error: Some(error.detail()),
                }
            }
        })
        .collect();
    let created = items.iter().filter(|item| item.status == 201).count();
    Ok(HttpResponse::Ok().json(BulkResult {
        created,
        failed: items.len() - created,
        items,
    }))
}
