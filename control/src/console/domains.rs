//! Domain pages: the workspace's domains, adding one and the exact DNS
//! record to create, checking it now, its certificate's status, and
//! removing it (with its links when asked).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use ricochet_model::now_millis;

use super::error::ConsoleError;
use super::form::{FieldErrors, FormData, Submitted};
use super::page::{self, Layout};
use super::session::Console;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::api::types::DomainView;
use crate::keys::Scope;
use crate::service::DomainInfo;

/// A domain as the pages show it.
#[derive(Debug, Clone)]
pub struct DomainRow {
    pub name: String,
    pub is_default: bool,
    pub owned: bool,
    /// `pending`, `verified` or `failed`.
    pub verification: String,
    /// (type, name, value) of the TXT record to create, while pending.
    pub record: Option<(String, String, String)>,
    pub failure: Option<String>,
    pub checked: Option<String>,
    pub expires: Option<String>,
    /// `valid`, `expired`, `pending`, `failed`, or none.
    pub certificate: Option<String>,
    pub certificate_until: Option<String>,
    pub certificate_error: Option<String>,
}

fn text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn when(at: Option<time::OffsetDateTime>) -> Option<String> {
    at.map(|at| page::date_time(crate::api::types::to_millis(at)))
}

impl From<DomainInfo> for DomainRow {
    fn from(info: DomainInfo) -> Self {
        let view = DomainView::from(info);
        let verification = text(&view.verification.status);
        Self {
            record: view
                .verification
                .record
                .filter(|_| verification != "verified")
                .map(|r| (r.kind, r.name, r.value)),
            failure: view.verification.failure,
            checked: when(view.verification.last_checked_at),
            expires: when(view.verification.expires_at),
            certificate: view.certificate.as_ref().map(|c| c.status.clone()),
            certificate_until: view.certificate.as_ref().and_then(|c| when(c.not_after)),
            certificate_error: view.certificate_order.and_then(|order| order.last_error),
            verification,
            name: view.domain,
            is_default: view.is_default,
            owned: view.owned,
        }
    }
}

#[derive(Template)]
#[template(path = "console/domains.html")]
struct ListPage {
    layout: Layout,
    domains: Vec<DomainRow>,
    new_domain: String,
    errors: FieldErrors,
}

async fn domains(console: &Console) -> Result<Vec<DomainRow>, ConsoleError> {
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let domains = blocking(move || service.domains(&workspace)).await?;
    Ok(domains.into_iter().map(DomainRow::from).collect())
}

/// `GET /console/domains`.
pub async fn list(console: Console, request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let query = FormData::parse(request.query_string().as_bytes());
    let layout = Layout::of(&console, "Domains", "domains").with_notice(query.optional("notice"));
    Ok(page::render(
        200,
        &ListPage {
            layout,
            domains: domains(&console).await?,
            new_domain: String::new(),
            errors: FieldErrors::none(),
        },
    ))
}

/// `POST /console/domains`: registers a domain and shows its DNS record.
pub async fn add(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::DomainsWrite)?;
    let name = form.get("domain").to_owned();
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let wanted = name.clone();
    let added = if name.is_empty() {
        Err(ApiError::bad_request("invalid_domain", "Type the domain to add.").with_field("domain"))
    } else {
        blocking(move || service.add_domain(&workspace, &wanted, now_millis())).await
    };
    match added {
        Ok(name) => Ok(page::see_other(&format!(
            "{}/domains/{}?notice=domain-added",
            super::PREFIX,
            page::encode(&name)
        ))),
        Err(error) if error.status < 500 => {
            let layout = Layout::of(&console, "Domains", "domains");
            Ok(page::render(
                error.status,
                &ListPage {
                    layout,
                    domains: domains(&console).await?,
                    new_domain: name,
                    errors: FieldErrors::from_api(&error, &["domain"]),
                },
            ))
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Template)]
#[template(path = "console/domain.html")]
struct DomainPage {
    layout: Layout,
    domain: DomainRow,
}

/// `GET /console/domains/{domain}`.
pub async fn detail(
    console: Console,
    request: HttpRequest,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let query = FormData::parse(request.query_string().as_bytes());
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let name = name.into_inner();
    let info = blocking(move || service.domain(&workspace, &name)).await?;
    let layout =
        Layout::of(&console, info.name.clone(), "domains").with_notice(query.optional("notice"));
    Ok(page::render(
        200,
        &DomainPage {
            layout,
            domain: DomainRow::from(info),
        },
    ))
}

/// `POST /console/domains/{domain}/verify`: looks the TXT record up now.
pub async fn verify(
    submitted: Submitted,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let console = submitted.console;
    console.require(Scope::DomainsWrite)?;
    let service = console.state.service.clone();
    let dns = console.state.dns.clone();
    let workspace = console.workspace_id().to_owned();
    let name = name.into_inner();
    let info =
        blocking(move || service.verify_domain(&workspace, &name, dns.as_ref(), now_millis()))
            .await?;
    let notice = if info.verification.is_verified() {
        "domain-verified"
    } else {
        "domain-check-failed"
    };
    Ok(page::see_other(&format!(
        "{}/domains/{}?notice={notice}",
        super::PREFIX,
        page::encode(&info.name)
    )))
}

/// `POST /console/domains/{domain}/delete`: removes the domain (and its
/// links when `purge_links` is ticked).
pub async fn remove(
    submitted: Submitted,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::DomainsWrite)?;
    let purge = form.checked("purge_links");
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let name = name.into_inner();
    blocking(move || service.remove_domain(&workspace, &name, purge, now_millis())).await?;
    Ok(page::see_other(&format!(
        "{}/domains?notice=domain-removed",
        super::PREFIX
    )))
}
