//! The installation's denylist of destinations: `GET|POST /api/v1/denylist`,
//! `DELETE /api/v1/denylist/{host}`, `GET /api/v1/denylist/check?url=`.
//! Operators only: scope `admin` in the default workspace (the one that also
//! holds the default domain and certificate). Adding or removing a host
//! applies it to every link before answering (see [`crate::denylist`]).

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_model::block::{Block, BlockSource, MAX_BLOCK_REASON};
use ricochet_model::now_millis;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, Caller, scope};
use super::error::{ApiError, ErrorBody};
use super::types::to_datetime;
use super::{AppState, blocking};
use crate::denylist::{Denylist, DenylistError, SourceStatus, SweepReport};
use crate::store::{DEFAULT_WORKSPACE, DeniedHost};

/// A host to block.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDeniedHost {
    /// A host name (it and every host under it are blocked) or an IP address.
    #[schema(example = "phish.example", min_length = 1, max_length = 253)]
    pub host: String,
    /// Shown on the blocked links' page; at most 200 bytes.
    #[schema(example = "credential phishing", max_length = 200)]
    pub reason: Option<String>,
}

/// One listed host.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeniedHostView {
    pub host: String,
    /// `api` (removable here) or `file` (edit `denylist.file`).
    #[schema(example = "api")]
    pub source: String,
    pub reason: Option<String>,
    /// When it was added (API entries only).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<OffsetDateTime>,
    /// Who added it (API entries only): a key id or `user:<id>`.
    pub created_by: Option<String>,
}

/// A file the denylist reads.
#[derive(Debug, Serialize, ToSchema)]
pub struct DenylistFileView {
    /// `file` (hosts) or `threat_list` (URLhaus CSV).
    pub source: String,
    pub path: String,
    /// Entries of its last good read.
    pub entries: usize,
    /// Lines of that read that were not entries.
    pub skipped: usize,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub loaded_at: Option<OffsetDateTime>,
    /// Why the last read failed (its previous entries still apply).
    pub error: Option<String>,
}

/// The denylist: listed hosts (the API's and the hosts file's), the files,
/// and how many links are blocked.
#[derive(Debug, Serialize, ToSchema)]
pub struct DenylistView {
    pub hosts: Vec<DeniedHostView>,
    pub files: Vec<DenylistFileView>,
    /// Links blocked now (counted by each sweep, kept current by edits).
    pub links_blocked: u64,
}

/// What adding or removing a host did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DenylistChange {
    /// The entry added (absent on removal).
    pub host: Option<DeniedHostView>,
    /// Links that became blocked.
    pub links_blocked: usize,
    /// Links that redirect again.
    pub links_unblocked: usize,
}

/// Why a link or URL is blocked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlockView {
    /// The destination's host that is listed (or under a listed one).
    pub host: String,
    /// `api`, `file` or `threat_list`.
    pub source: String,
    pub reason: Option<String>,
}

impl From<&Block> for BlockView {
    fn from(block: &Block) -> Self {
        Self {
            host: block.host.clone(),
            source: block.source.as_str().to_owned(),
            reason: block.reason.clone(),
        }
    }
}

/// Query of `GET /api/v1/denylist/check`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CheckQuery {
    /// The destination to check.
    pub url: String,
}

/// Whether a destination is blocked.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub url: String,
    /// Why it is blocked; `null` when it is not.
    pub blocked: Option<BlockView>,
}

impl From<DenylistError> for ApiError {
    fn from(error: DenylistError) -> Self {
        let message = error.to_string();
        match error {
            DenylistError::InvalidHost(_) => {
                Self::bad_request("invalid_host", message).with_field("host")
            }
            DenylistError::NotListed { .. } => Self::not_found(message),
            DenylistError::FromFile { .. } => Self::new(409, "listed_in_file", message),
            DenylistError::Store(error) => Self::from_fault(&error),
        }
    }
}

/// The denylist, for callers allowed to manage it.
fn operator_denylist(
    caller: &Caller,
    state: &AppState,
) -> Result<std::sync::Arc<Denylist>, ApiError> {
    if caller.workspace_id() != DEFAULT_WORKSPACE {
        return Err(ApiError::new(
            403,
            "not_operator",
            "the denylist is the installation's: only admins of the default workspace manage it",
        ));
    }
    state
        .service
        .denylist()
        .cloned()
        .ok_or_else(ApiError::internal)
}

fn api_view(entry: &DeniedHost) -> DeniedHostView {
    DeniedHostView {
        host: entry.host.clone(),
        source: BlockSource::Api.as_str().to_owned(),
        reason: entry.reason.clone(),
        created_at: Some(to_datetime(entry.created_at)),
        created_by: entry.created_by.clone(),
    }
}

fn file_view(source: BlockSource, status: &SourceStatus) -> Option<DenylistFileView> {
    Some(DenylistFileView {
        source: source.as_str().to_owned(),
        path: status.path.as_ref()?.display().to_string(),
        entries: status.report.entries,
        skipped: status.report.skipped,
        loaded_at: status.loaded_at.map(to_datetime),
        error: status.error.clone(),
    })
}

/// The whole denylist: the API's hosts, the hosts file's, the files' state.
pub fn view(denylist: &Denylist) -> Result<DenylistView, DenylistError> {
    let mut hosts: Vec<DeniedHostView> = denylist.api_entries()?.iter().map(api_view).collect();
    hosts.extend(
        denylist
            .file_entries()
            .into_iter()
            .map(|(host, reason)| DeniedHostView {
                host,
                source: BlockSource::File.as_str().to_owned(),
                reason,
                created_at: None,
                created_by: None,
            }),
    );
    let (file, threat_list) = denylist.sources();
    Ok(DenylistView {
        hosts,
        files: [
            file_view(BlockSource::File, &file),
            file_view(BlockSource::ThreatList, &threat_list),
        ]
        .into_iter()
        .flatten()
        .collect(),
        links_blocked: denylist
            .stats
            .links_blocked
            .load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Checks a reason: at most 200 bytes, no control characters.
pub fn check_reason(reason: Option<&str>) -> Result<(), ApiError> {
    match reason {
        Some(reason) if reason.len() > MAX_BLOCK_REASON || reason.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                "invalid_reason",
                "a reason has at most 200 bytes and no control characters",
            )
            .with_field("reason"))
        }
        _ => Ok(()),
    }
}

fn change(host: Option<&DeniedHost>, report: SweepReport) -> DenylistChange {
    DenylistChange {
        host: host.map(api_view),
        links_blocked: report.blocked,
        links_unblocked: report.unblocked,
    }
}

/// The denylist.
#[utoipa::path(
    get, path = "/api/v1/denylist", tag = "denylist",
    responses(
        (status = 200, body = DenylistView),
        (status = 403, description = "Not an admin of the default workspace (`not_operator`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn list(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let denylist = operator_denylist(&caller.caller, &state)?;
    let view = blocking(move || view(&denylist)).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Blocks a host (and every host under it) and applies it to every link:
/// links pointing there answer a 451 page on every engine. Adding a listed
/// host again replaces its reason.
#[utoipa::path(
    post, path = "/api/v1/denylist", tag = "denylist", request_body = AddDeniedHost,
    responses(
        (status = 201, body = DenylistChange),
        (status = 400, description = "Invalid body, host (`invalid_host`) or reason (`invalid_reason`)", body = ErrorBody),
        (status = 403, description = "Not an admin of the default workspace (`not_operator`)", body = ErrorBody),
        (status = 413, description = "The body is over `server.max_body_bytes`", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn add(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let denylist = operator_denylist(&caller.caller, &state)?;
    let input: AddDeniedHost = super::read_json(&request, payload, state.max_body_bytes).await?;
    check_reason(input.reason.as_deref())?;
    let by = caller.caller.id();
    let (entry, report) = blocking(move || {
        denylist.add(&input.host, input.reason.as_deref(), Some(by), now_millis())
    })
    .await?;
    Ok(HttpResponse::Created().json(change(Some(&entry), report)))
}

/// Unblocks a host the API listed and applies it to every link. A host
/// from the hosts file is removed there (409).
#[utoipa::path(
    delete, path = "/api/v1/denylist/{host}", tag = "denylist",
    params(("host" = String, Path, description = "The listed host")),
    responses(
        (status = 200, body = DenylistChange),
        (status = 400, description = "Not a host (`invalid_host`)", body = ErrorBody),
        (status = 403, description = "Not an admin of the default workspace (`not_operator`)", body = ErrorBody),
        (status = 404, description = "Not listed", body = ErrorBody),
        (status = 409, description = "Listed in the hosts file (`listed_in_file`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn remove(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    host: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let denylist = operator_denylist(&caller.caller, &state)?;
    let host = host.into_inner();
    let report = blocking(move || denylist.remove(&host)).await?;
    Ok(HttpResponse::Ok().json(change(None, report)))
}

/// Whether a destination is blocked, and why.
#[utoipa::path(
    get, path = "/api/v1/denylist/check", tag = "denylist",
    params(CheckQuery),
    responses(
        (status = 200, body = CheckResult),
        (status = 400, description = "`url` missing or not an http(s) URL", body = ErrorBody),
        (status = 403, description = "Not an admin of the default workspace (`not_operator`)", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn check(
    caller: Authorized<scope::Admin>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let denylist = operator_denylist(&caller.caller, &state)?;
    let query: CheckQuery = super::parse_query(&request)?;
    let url = ricochet_model::validate_destination(&query.url)
        .map_err(|error| ApiError::from(error).with_field("url"))?;
    let blocked = denylist.check(&url).as_ref().map(BlockView::from);
    Ok(HttpResponse::Ok().json(CheckResult { url, blocked }))
}
