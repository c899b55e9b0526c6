//! Domain routes: `POST /domains` (scope `domains:write`), `GET /domains`,
//! `GET /domains/{domain}`, `PATCH /domains/{domain}` (its settings; scope
//! `domains:write`, in the workspace that registered it).

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::types::{CreateDomain, DomainList, DomainView, PatchDomain};
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
    let info = blocking(move || {
        let name = service.add_domain(&workspace, &input.domain, now)?;
        service.domain(&workspace, &name)
    })
    .await?;
    Ok(HttpResponse::Created().json(DomainView::from(info)))
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
        .map(DomainView::from)
        .collect();
    Ok(HttpResponse::Ok().json(DomainList { domains }))
}

/// One domain the caller's workspace may use, with its settings.
#[utoipa::path(
    get, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = String, Path, description = "Domain name")),
    responses(
        (status = 200, body = DomainView),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn get_domain(
    caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let info = blocking(move || service.domain(&workspace, &domain)).await?;
    Ok(HttpResponse::Ok().json(DomainView::from(info)))
}

/// Changes a domain's settings: where its root `/` and its unknown codes
/// send visitors (engines answer 302 there instead of their 404 page) and
/// the status of links created on it without one. Absent fields stay; a
/// refused edit changes nothing. The default domain's settings belong to
/// the default workspace.
#[utoipa::path(
    patch, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = String, Path, description = "Domain name")),
    request_body = PatchDomain,
    responses(
        (status = 200, body = DomainView),
        (status = 400, description = "Invalid body or field (`field` names it), or a destination on a short-link domain", body = ErrorBody),
        (status = 403, description = "The domain is usable here but registered by another workspace (`domain_not_owned`)", body = ErrorBody),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn patch_domain(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    domain: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let changes = super::read_json::<PatchDomain>(&request, payload, state.max_body_bytes)
        .await?
        .into();
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let info = blocking(move || service.update_domain(&workspace, &domain, &changes, now)).await?;
    Ok(HttpResponse::Ok().json(DomainView::from(info)))
}
