//! Domain routes: `POST /domains` (scope `domains:write`), `GET /domains`,
//! `GET /domains/{domain}`, `PATCH|DELETE /domains/{domain}` (its settings,
//! its removal; scope `domains:write`, in the workspace that registered it),
//! `POST /domains/{domain}/verify` and `/verification` (DNS verification, same
//! scope and workspace), `PUT|DELETE /domains/{domain}/certificate` (an uploaded certificate, same
//! scope and workspace) and `GET|PUT|DELETE /certificates/default` (the
//! certificate for names without one; the default workspace's).

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::now_millis;
use ricochet_model::tls::CertificatePem;

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::types::{
    CreateDomain, DefaultCertificate, DomainList, DomainRemoved, DomainView, PatchDomain,
    UploadCertificate,
};
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

/// Query of `DELETE /domains/{domain}`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Also remove the domain's links for good (engines answer 404 for
    /// them). Without it a domain with links is refused (409).
    #[serde(default)]
    pub purge_links: bool,
}

/// Removes a domain: engines stop serving its links, settings and
/// certificate, a certificate the ACME authority issued is revoked, and the
/// name may be registered again (verified anew). A domain with links
/// (deleted ones included) is refused unless `purge_links=true`. The
/// default domain cannot be removed.
#[utoipa::path(
    delete, path = "/api/v1/domains/{domain}", tag = "domains",
    params(("domain" = String, Path, description = "Domain name"), RemoveQuery),
    responses(
        (status = 200, body = DomainRemoved),
        (status = 400, description = "Invalid query (`invalid_query`)", body = ErrorBody),
        (status = 403, description = "The domain is usable here but registered by another workspace (`domain_not_owned`)", body = ErrorBody),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody),
        (status = 409, description = "Links are on the domain (`domain_has_links`), or it is the default domain (`default_domain`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn delete_domain(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    domain: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query: RemoveQuery = super::parse_query(&request)?;
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let removal =
        blocking(move || service.remove_domain(&workspace, &domain, query.purge_links, now))
            .await?;
    Ok(HttpResponse::Ok().json(DomainRemoved::from(removal)))
}

/// Serves an uploaded certificate for the domain on every engine's HTTPS
/// listener (it replaces any earlier one, uploaded or issued). The chain
/// (leaf first) must parse, the key must belong to the leaf, the leaf must
/// name the domain (exactly or by a wildcard) and must not have expired.
/// The key is never shown again.
#[utoipa::path(
    put, path = "/api/v1/domains/{domain}/certificate", tag = "domains",
    params(("domain" = String, Path, description = "Domain name")),
    request_body = UploadCertificate,
    responses(
        (status = 200, body = DomainView),
        (status = 400, description = "Invalid body, or a certificate or key that cannot be served (`field` is `certificate` or `private_key`; codes `invalid_certificate`, `invalid_key`, `key_mismatch`, `certificate_name_mismatch`, `certificate_expired`)", body = ErrorBody),
        (status = 403, description = "The domain is usable here but registered by another workspace (`domain_not_owned`)", body = ErrorBody),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn put_certificate(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    domain: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: UploadCertificate =
        super::read_json(&request, payload, state.max_body_bytes).await?;
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let pem = CertificatePem {
        chain: input.certificate,
        key: input.private_key,
    };
    let info = blocking(move || service.set_certificate(&workspace, &domain, pem, now)).await?;
    Ok(HttpResponse::Ok().json(DomainView::from(info)))
}

/// Stops serving the domain's certificate; HTTPS handshakes naming it get
/// the default certificate or an alert, as engines are set.
#[utoipa::path(
    delete, path = "/api/v1/domains/{domain}/certificate", tag = "domains",
    params(("domain" = String, Path, description = "Domain name")),
    responses(
        (status = 200, body = DomainView),
        (status = 403, description = "The domain is usable here but registered by another workspace (`domain_not_owned`)", body = ErrorBody),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn delete_certificate(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let info = blocking(move || service.remove_certificate(&workspace, &domain)).await?;
    Ok(HttpResponse::Ok().json(DomainView::from(info)))
}

/// The default certificate, served to HTTPS handshakes that name no domain
/// with a certificate of its own (unless engines refuse them); `null` when
/// none is set.
#[utoipa::path(
    get, path = "/api/v1/certificates/default", tag = "domains",
    responses((status = 200, body = DefaultCertificate)),
    security(("api_key" = []))
)]
pub async fn get_default_certificate(
    _caller: Authorized<scope::LinksRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let certificate = blocking(move || service.default_certificate()).await?;
    Ok(HttpResponse::Ok().json(DefaultCertificate::from(certificate)))
}

/// Sets the default certificate (the default workspace's, as the default
/// domain is). The chain must parse, the key must belong to the leaf and
/// the leaf must not have expired.
#[utoipa::path(
    put, path = "/api/v1/certificates/default", tag = "domains",
    request_body = UploadCertificate,
    responses(
        (status = 200, body = DefaultCertificate),
        (status = 400, description = "Invalid body, or a certificate or key that cannot be served (`field` is `certificate` or `private_key`)", body = ErrorBody),
        (status = 403, description = "Only the default workspace sets it (`domain_not_owned`)", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn put_default_certificate(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: UploadCertificate =
        super::read_json(&request, payload, state.max_body_bytes).await?;
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let pem = CertificatePem {
        chain: input.certificate,
        key: input.private_key,
    };
    let info =
        blocking(move || service.set_default_certificate(&workspace, Some(pem), now)).await?;
    Ok(HttpResponse::Ok().json(DefaultCertificate::from(info)))
}

/// Removes the default certificate.
#[utoipa::path(
    delete, path = "/api/v1/certificates/default", tag = "domains",
    responses(
        (status = 204, description = "Removed (or there was none)"),
        (status = 403, description = "Only the default workspace sets it (`domain_not_owned`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn delete_default_certificate(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    blocking(move || service.set_default_certificate(&workspace, None, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Looks the domain's TXT record up now (`_ricochet-challenge.<domain>` TXT
/// `ricochet-verification=<token>`, as `verification.record` says) and
/// answers the domain: `verified`, or `failed` with a reason a person can act
/// on (no record, wrong value, NXDOMAIN, timeout). A verified domain is
/// answered as it is. Links and certificates need a verified domain.
#[utoipa::path(
    post, path = "/api/v1/domains/{domain}/verify", tag = "domains",
    params(("domain" = String, Path, description = "Domain name")),
    responses(
        (status = 200, body = DomainView),
        (status = 403, description = "The domain is usable here but registered by another workspace (`domain_not_owned`)", body = ErrorBody),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody),
        (status = 409, description = "The verification ran out of its 10 attempts or 7 days (`verification_expired`): restart it", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn verify_domain(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let dns = state.dns.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let info =
        blocking(move || service.verify_domain(&workspace, &domain, dns.as_ref(), now)).await?;
    Ok(HttpResponse::Ok().json(DomainView::from(info)))
}

/// Issues a new verification token for a domain that is not verified: the
/// record to create changes, and the 10 attempts and 7 days start again.
#[utoipa::path(
    post, path = "/api/v1/domains/{domain}/verification", tag = "domains",
    params(("domain" = String, Path, description = "Domain name")),
    responses(
        (status = 200, body = DomainView),
        (status = 403, description = "The domain is usable here but registered by another workspace (`domain_not_owned`)", body = ErrorBody),
        (status = 404, description = "No such domain in this workspace (`domain_not_found`)", body = ErrorBody),
        (status = 409, description = "The domain is verified (`domain_already_verified`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn restart_verification(
    caller: Authorized<scope::DomainsWrite>,
    state: web::Data<AppState>,
    domain: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let service = state.service.clone();
    let now = now_millis();
    let workspace = caller.caller.workspace_id().to_owned();
    let info = blocking(move || service.restart_verification(&workspace, &domain, now)).await?;
    Ok(HttpResponse::Ok().json(DomainView::from(info)))
}
