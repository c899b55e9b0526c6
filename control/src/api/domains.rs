//! Domain routes: `POST /domains` (scope `domains:write`), `GET /domains`.

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;

use super::AppState;
use super::auth::authorize;
use super::types::{CreateDomain, DomainList, DomainView, to_datetime};
use crate::error::{ApiError, ErrorBody};
use crate::keys::Scope;

/// Registers a domain links can be created on.
#[utoipa::path(
    post, path = "/api/v1/domains", tag = "domains", request_body = CreateDomain,
    responses((status = 201, body = DomainView), (status = 409, body = ErrorBody), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn create_domain(
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::DomainsWrite,
    )?;
    let body = super::read_body(payload, state.max_body_bytes).await?;
    let input: CreateDomain = super::parse_json(&request, &body)?;
    let domain = ricochet_model::normalize_domain(&input.domain)?;
    let now = now_millis();
    if !state.service.store().add_domain(&domain, now)? {
        return Err(ApiError::new(
            409,
            "domain_exists",
            format!("{domain} is already registered"),
        )
        .with_field("domain"));
    }
    Ok(HttpResponse::Created().json(DomainView {
        domain,
        created_at: to_datetime(now),
    }))
}

/// Lists registered domains.
#[utoipa::path(
    get, path = "/api/v1/domains", tag = "domains",
    responses((status = 200, body = DomainList)),
    security(("api_key" = []))
)]
pub async fn list_domains(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    authorize(
        &request,
        state.service.store(),
        &state.limits,
        Scope::LinksRead,
    )?;
    let domains = state
        .service
        .store()
        .domains()?
        .into_iter()
        .map(|(domain, created)| DomainView {
            domain,
            created_at: to_datetime(created),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DomainList { domains }))
}
