//! Domain routes: `POST /domains` (scope `domains:write`), `GET /domains`.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::types::{CreateDomain, DomainList, DomainView, to_datetime};
use super::{AppState, blocking};

/// Registers a domain for the caller's workspace: its members can then
/// create links on it. A name registered by any workspace is taken (409).
#[utoipa::path(
    post, path = "/api/v1/domains", tag = "domains", request_body = CreateDomain,
    responses(
        (status = 201, body = DomainView),
        (status = 400, description = "Invalid body or host name", body = ErrorBody),
        (status = 409, description = "Already registered", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_domain(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: CreateDomain = super::read_json(&request, payload, state.max_body_bytes).await?;
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let domain = blocking(move || service.add_domain(&workspace, &input.domain, now)).await?;
    Ok(HttpResponse::Created().json(DomainView {
        domain,
        created_at: to_datetime(now),
    }))
}

/// Lists the domains the caller's workspace can create links on: its own and
/// the shared default domain.
#[utoipa::path(
    get, path = "/api/v1/domains", tag = "domains",
    responses((status = 200, body = DomainList)),
    security(("api_key" = []))
)]
pub async fn list_domains(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let domains = blocking(move || service.domains(&workspace))
        .await?
        .into_iter()
        .map(|(domain, created)| DomainView {
            domain,
            created_at: to_datetime(created),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DomainList { domains }))
}
