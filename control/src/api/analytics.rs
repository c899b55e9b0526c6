//! Analytics routes (scope `analytics:read`):
//! - `GET /api/v1/links/{id}/analytics/series?from&to&interval`
//! - `GET /api/v1/links/{id}/analytics/breakdown?dimension&from&to`
//! - `GET /api/v1/analytics/top-links?from&to&limit`
//! - `GET /api/v1/analytics/overview?from&to`
//!
//! Ranges are RFC 3339 instants, `[from, to)`, by default the last 24 hours.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_clickstore::{ClickReader, Counts, Interval, SinkError};
use ricochet_model::clicks::Dimension;
use ricochet_model::{LinkRecord, now_millis};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Authorized, scope};
use super::error::{ApiError, ErrorBody};
use super::schema;
use super::types::{to_datetime, to_millis};
use super::{AppState, blocking};
use crate::service::LinkService;

/// Longest range a query may cover.
const MAX_RANGE_MILLIS: i64 = 400 * 86_400_000;
/// Most buckets a series may have.
const MAX_BUCKETS: i64 = 10_000;

/// Query of a series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    /// Start (RFC 3339); default 24 hours before `to`. Must be before `to`,
    /// at most 400 days before it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_start)]
    pub from: Option<OffsetDateTime>,
    /// End, exclusive (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_end)]
    pub to: Option<OffsetDateTime>,
    /// Bucket size; at most 10,000 buckets in the range.
    #[param(schema_with = schema::interval)]
    pub interval: Option<String>,
}

/// Query of a breakdown.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BreakdownQuery {
    /// Start (RFC 3339); default 24 hours before `to`. Must be before `to`,
    /// at most 400 days before it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_start)]
    pub from: Option<OffsetDateTime>,
    /// End, exclusive (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_end)]
    pub to: Option<OffsetDateTime>,
    /// What to count clicks by.
    #[serde(default)]
    #[param(required = true, value_type = schema::DimensionName, inline)]
    pub dimension: String,
}

/// Query of the top links.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TopLinksQuery {
    /// Start (RFC 3339); default 24 hours before `to`. Must be before `to`,
    /// at most 400 days before it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_start)]
    pub from: Option<OffsetDateTime>,
    /// End, exclusive (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_end)]
    pub to: Option<OffsetDateTime>,
    /// How many links, default 10.
    #[param(schema_with = schema::limit)]
    pub limit: Option<usize>,
}

/// Query of the overview.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OverviewQuery {
    /// Start (RFC 3339); default 24 hours before `to`. Must be before `to`,
    /// at most 400 days before it.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_start)]
    pub from: Option<OffsetDateTime>,
    /// End, exclusive (RFC 3339); default now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(schema_with = schema::range_end)]
    pub to: Option<OffsetDateTime>,
}

/// Human and bot clicks.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CountsView {
    pub humans: u64,
    pub bots: u64,
}

impl From<Counts> for CountsView {
    fn from(counts: Counts) -> Self {
        Self {
            humans: counts.humans,
            bots: counts.bots,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SeriesPoint {
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub start: OffsetDateTime,
    pub humans: u64,
    pub bots: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Series {
    pub link_id: u64,
    pub interval: String,
    pub total: CountsView,
    pub points: Vec<SeriesPoint>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BreakdownValue {
    pub value: String,
    pub humans: u64,
    pub bots: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Breakdown {
    pub link_id: u64,
    pub dimension: String,
    pub values: Vec<BreakdownValue>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopLink {
    pub link_id: u64,
    pub domain: Option<String>,
    pub code: Option<String>,
    pub humans: u64,
    pub bots: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopLinks {
    pub links: Vec<TopLink>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Overview {
    pub total: CountsView,
    pub links_with_clicks: usize,
    pub top_links: Vec<TopLink>,
}

pub(super) fn reader(state: &AppState) -> Result<Arc<dyn ClickReader>, ApiError> {
    state.clicks.get().cloned().ok_or_else(|| {
        ApiError::new(
            503,
            "analytics_unavailable",
            "this control plane has no click store configured",
        )
    })
}

pub(super) fn range(
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<(i64, i64), ApiError> {
    let to = to.map(to_millis).unwrap_or_else(now_millis);
    let from = from.map(to_millis).unwrap_or(to - 86_400_000);
    if from >= to {
        return Err(
            ApiError::bad_request("invalid_range", "from must be before to").with_field("from"),
        );
    }
    if to - from > MAX_RANGE_MILLIS {
        return Err(
            ApiError::bad_request("invalid_range", "a range covers at most 400 days")
                .with_field("from"),
        );
    }
    Ok((from, to))
}

/// The id of an existing link of `workspace`, or 404.
async fn existing_link(state: &AppState, workspace: &str, raw: &str) -> Result<u64, ApiError> {
    let id: u64 = raw
        .parse()
        .map_err(|_| ApiError::not_found(format!("no link with id {raw:?}")))?;
    let service = state.service.clone();
    let workspace = workspace.to_owned();
    blocking(move || service.link(&workspace, id)).await?;
    Ok(id)
}

impl From<SinkError> for ApiError {
    fn from(error: SinkError) -> Self {
        tracing::warn!(%error, "analytics query failed");
        ApiError::new(
            503,
            "analytics_unavailable",
            "the click store did not answer; retry shortly",
        )
    }
}

/// A link's clicks over time.
#[utoipa::path(
    get, path = "/api/v1/links/{id}/analytics/series", tag = "analytics",
    params(("id" = u64, Path, description = "Link id"), SeriesQuery),
    responses(
        (status = 200, body = Series), (status = 400, description = "Bad query", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 503, description = "No click store, or it did not answer", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn series(
    caller: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query: SeriesQuery = super::parse_query(&request)?;
    let id = existing_link(&state, caller.caller.workspace_id(), &id).await?;
    let (from, to) = range(query.from, query.to)?;
    let name = query.interval.as_deref().unwrap_or("1h");
    let interval = Interval::parse(name).ok_or_else(|| {
        ApiError::bad_request("invalid_interval", "interval must be 10s, 1m, 1h or 1d")
            .with_field("interval")
    })?;
    if (to - from) / interval.millis() > MAX_BUCKETS {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("at most {MAX_BUCKETS} buckets; use a longer interval"),
        )
        .with_field("interval"));
    }
    let reader = reader(&state)?;
    let points = blocking(move || reader.series(id, from, to, interval)).await?;
    let mut total = Counts::default();
    for (_, counts) in &points {
        total.humans += counts.humans;
        total.bots += counts.bots;
    }
    Ok(HttpResponse::Ok().json(Series {
        link_id: id,
        interval: name.to_owned(),
        total: total.into(),
        points: points
            .into_iter()
            .map(|(start, counts)| SeriesPoint {
                start: to_datetime(start),
                humans: counts.humans,
                bots: counts.bots,
            })
            .collect(),
    }))
}

/// A link's clicks by one dimension.
#[utoipa::path(
    get, path = "/api/v1/links/{id}/analytics/breakdown", tag = "analytics",
    params(("id" = u64, Path, description = "Link id"), BreakdownQuery),
    responses(
        (status = 200, body = Breakdown), (status = 400, description = "Bad query", body = ErrorBody),
        (status = 404, description = "No such link", body = ErrorBody),
        (status = 503, description = "No click store, or it did not answer", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn breakdown(
    caller: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query: BreakdownQuery = super::parse_query(&request)?;
    let id = existing_link(&state, caller.caller.workspace_id(), &id).await?;
    let (from, to) = range(query.from, query.to)?;
    let name = query.dimension.as_str();
    let dimension = Dimension::parse(name)
        .filter(|d| *d != Dimension::Total)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_dimension",
                format!("dimension must be {}", breakdown_dimensions()),
            )
            .with_field("dimension")
        })?;
    let reader = reader(&state)?;
    let values = blocking(move || reader.breakdown(id, from, to, dimension)).await?;
    Ok(HttpResponse::Ok().json(Breakdown {
        link_id: id,
        dimension: name.to_owned(),
        values: values
            .into_iter()
            .map(|(value, counts)| BreakdownValue {
                value,
                humans: counts.humans,
                bots: counts.bots,
            })
            .collect(),
    }))
}

/// The dimensions a breakdown takes, for messages: `country, city, … or
/// destination`, from [`Dimension::ALL`] so a new one is never left out.
fn breakdown_dimensions() -> String {
    let names: Vec<&str> = Dimension::ALL
        .into_iter()
        .filter(|d| *d != Dimension::Total)
        .map(Dimension::as_str)
        .collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The clicked links of `workspace` in the range, most human clicks first,
/// with their records. The reader ranks every link; the ones of other
/// workspaces are left out here, so totals and ranks are the workspace's own.
pub(crate) fn clicked_links(
    reader: &dyn ClickReader,
    service: &LinkService,
    workspace: &str,
    range: (i64, i64),
) -> Result<Vec<(u64, Counts, LinkRecord)>, ApiError> {
    let mut out = Vec::new();
    for (link_id, counts) in reader.top_links(range.0, range.1, usize::MAX)? {
        if let Some(link) = service.find(workspace, link_id)? {
            out.push((link_id, counts, link));
        }
    }
    Ok(out)
}

fn top_link((link_id, counts, link): &(u64, Counts, LinkRecord)) -> TopLink {
    TopLink {
        link_id: *link_id,
        domain: Some(link.domain.clone()),
        code: Some(link.code.clone()),
        humans: counts.humans,
        bots: counts.bots,
    }
}

/// The most clicked links.
#[utoipa::path(
    get, path = "/api/v1/analytics/top-links", tag = "analytics", params(TopLinksQuery),
    responses(
        (status = 200, body = TopLinks), (status = 400, description = "Bad query", body = ErrorBody),
        (status = 503, description = "No click store, or it did not answer", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn top_links(
    caller: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: TopLinksQuery = super::parse_query(&request)?;
    let (from, to) = range(query.from, query.to)?;
    let limit = query.limit.unwrap_or(10);
    if !(1..=1000).contains(&limit) {
        return Err(
            ApiError::bad_request("invalid_limit", "limit must be 1 to 1000").with_field("limit"),
        );
    }
    let reader = reader(&state)?;
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let clicked =
        blocking(move || clicked_links(reader.as_ref(), &service, &workspace, (from, to))).await?;
    Ok(HttpResponse::Ok().json(TopLinks {
        links: clicked.iter().take(limit).map(top_link).collect(),
    }))
}

/// Clicks across the caller's workspace.
#[utoipa::path(
    get, path = "/api/v1/analytics/overview", tag = "analytics", params(OverviewQuery),
    responses(
        (status = 200, body = Overview), (status = 400, description = "Bad query", body = ErrorBody),
        (status = 503, description = "No click store, or it did not answer", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn overview(
    caller: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: OverviewQuery = super::parse_query(&request)?;
    let (from, to) = range(query.from, query.to)?;
    let reader = reader(&state)?;
    let service = state.service.clone();
    let workspace = caller.caller.workspace_id().to_owned();
    let all =
        blocking(move || clicked_links(reader.as_ref(), &service, &workspace, (from, to))).await?;
    let mut total = Counts::default();
    for (_, counts, _) in &all {
        total.humans += counts.humans;
        total.bots += counts.bots;
    }
    Ok(HttpResponse::Ok().json(Overview {
        total: total.into(),
        links_with_clicks: all.len(),
        top_links: all.iter().take(10).map(top_link).collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dimension_message_names_every_breakdown_dimension() {
        let message = breakdown_dimensions();
        for dimension in Dimension::ALL {
            assert_eq!(
                message.contains(dimension.as_str()),
                dimension != Dimension::Total,
                "{dimension:?}: {message}"
            );
        }
        assert!(message.starts_with("country, city, "), "{message}");
        assert!(message.ends_with(" or destination"), "{message}");
    }
}
