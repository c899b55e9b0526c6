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
use ricochet_model::now_millis;
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

fn reader(state: &AppState) -> Result<Arc<dyn ClickReader>, ApiError> {
    state.clicks.get().cloned().ok_or_else(|| {
        ApiError::new(
            503,
            "analytics_unavailable",
            "this control plane has no click store configured",
        )
    })
}

fn range(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> Result<(i64, i64), ApiError> {
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

/// The id of an existing link, or 404.
async fn existing_link(state: &AppState, raw: &str) -> Result<u64, ApiError> {
    let id: u64 = raw
        .parse()
        .map_err(|_| ApiError::not_found(format!("no link with id {raw:?}")))?;
    let service = state.service.clone();
    blocking(move || service.link(id)).await?;
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
    _: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query: SeriesQuery = super::parse_query(&request)?;
    let id = existing_link(&state, &id).await?;
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
    _: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let query: BreakdownQuery = super::parse_query(&request)?;
    let id = existing_link(&state, &id).await?;
    let (from, to) = range(query.from, query.to)?;
    let name = query.dimension.as_str();
    let dimension = Dimension::parse(name).filter(|d| *d != Dimension::Total).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_dimension",
            "dimension must be country, city, device, browser, os, referrer, utm_source, utm_medium or utm_campaign",
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

/// The `limit` most clicked links with their domain and code.
fn top(
    reader: &dyn ClickReader,
    service: &LinkService,
    range: (i64, i64),
    limit: usize,
) -> Result<Vec<TopLink>, ApiError> {
    reader
        .top_links(range.0, range.1, limit)?
        .into_iter()
        .map(|(link_id, counts)| {
            let link = service.find(link_id)?;
            Ok(TopLink {
                link_id,
                domain: link.as_ref().map(|l| l.domain.clone()),
                code: link.map(|l| l.code),
                humans: counts.humans,
                bots: counts.bots,
            })
        })
        .collect()
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
    _: Authorized<scope::AnalyticsRead>,
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
    let links = blocking(move || top(reader.as_ref(), &service, (from, to), limit)).await?;
    Ok(HttpResponse::Ok().json(TopLinks { links }))
}

/// Clicks across the whole instance.
#[utoipa::path(
    get, path = "/api/v1/analytics/overview", tag = "analytics", params(OverviewQuery),
    responses(
        (status = 200, body = Overview), (status = 400, description = "Bad query", body = ErrorBody),
        (status = 503, description = "No click store, or it did not answer", body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn overview(
    _: Authorized<scope::AnalyticsRead>,
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: OverviewQuery = super::parse_query(&request)?;
    let (from, to) = range(query.from, query.to)?;
    let reader = reader(&state)?;
    let service = state.service.clone();
    let (all, top_links) = blocking(move || {
        let all = reader.top_links(from, to, usize::MAX)?;
        let top_links = top(reader.as_ref(), &service, (from, to), 10)?;
        Ok::<_, ApiError>((all, top_links))
    })
    .await?;
    let mut total = Counts::default();
    for (_, counts) in &all {
        total.humans += counts.humans;
        total.bots += counts.bots;
    }
    Ok(HttpResponse::Ok().json(Overview {
        total: total.into(),
        links_with_clicks: all.len(),
        top_links,
    }))
}
