//! Analytics pages: a link's clicks over time (1 hour, 1 day or 30 days,
//! humans and bots apart) with a breakdown per dimension, and the
//! workspace's overview with its most clicked links. Read from the click
//! store the API's analytics routes read.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use ricochet_clickstore::{ClickReader, Counts, Interval};
use ricochet_model::clicks::Dimension;
use ricochet_model::now_millis;

use super::chart::{self, ChartRange};
use super::error::ConsoleError;
use super::form::FormData;
use super::page::{self, Layout};
use super::session::Console;
use crate::api::analytics::clicked_links;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::keys::Scope;

/// The ranges a page offers: (key, label, length, bucket).
const RANGES: [(&str, &str, i64, &str); 3] = [
    ("1h", "Last hour", 3_600_000, "1m"),
    ("1d", "Last day", 86_400_000, "1h"),
    ("30d", "Last 30 days", 30 * 86_400_000, "1d"),
];

/// A range tab.
#[derive(Debug, Clone)]
pub struct RangeTab {
    pub key: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// One value of a breakdown.
#[derive(Debug, Clone)]
pub struct BreakdownRow {
    pub value: String,
    pub humans: u64,
    pub bots: u64,
}

/// A breakdown by one dimension.
#[derive(Debug, Clone)]
pub struct BreakdownTable {
    pub label: &'static str,
    pub rows: Vec<BreakdownRow>,
    /// The largest human count, the meters' maximum.
    pub max: u64,
}

/// What a link's page shows of its clicks.
#[derive(Debug, Clone, Default)]
pub struct LinkAnalytics {
    /// Why there is nothing to show (no click store, no role to read it).
    pub unavailable: Option<String>,
    pub ranges: Vec<RangeTab>,
    pub chart: String,
    pub humans: u64,
    pub bots: u64,
    /// (bucket label, humans, bots), for the table beside the chart.
    pub points: Vec<(String, u64, u64)>,
    pub breakdowns: Vec<BreakdownTable>,
}

fn dimension_label(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Total => "Total",
        Dimension::Country => "Country",
        Dimension::City => "City",
        Dimension::Device => "Device",
        Dimension::Browser => "Browser",
        Dimension::Os => "Operating system",
        Dimension::Referrer => "Referrer",
        Dimension::UtmSource => "UTM source",
        Dimension::UtmMedium => "UTM medium",
        Dimension::UtmCampaign => "UTM campaign",
        Dimension::Destination => "Destination (rule or variant)",
    }
}

fn reader(console: &Console) -> Option<Arc<dyn ClickReader>> {
    console.state.clicks.get().cloned()
}

/// The range the query asks for (`?range=`), the last day by default.
fn chosen_range(query: &FormData) -> (&'static str, i64, Interval, Vec<RangeTab>) {
    let wanted = query.get("range");
    let (key, _, length, bucket) = RANGES
        .into_iter()
        .find(|(key, ..)| *key == wanted)
        .unwrap_or(RANGES[1]);
    let tabs = RANGES
        .iter()
        .map(|(k, label, ..)| RangeTab {
            key: k,
            label,
            current: *k == key,
        })
        .collect();
    (
        key,
        length,
        Interval::parse(bucket).unwrap_or(Interval::Hour),
        tabs,
    )
}

/// A link's clicks in the range the query asks for.
pub async fn link_analytics(
    console: &Console,
    id: u64,
    query: &FormData,
) -> Result<LinkAnalytics, ConsoleError> {
    let (_, length, interval, ranges) = chosen_range(query);
    if !console.caller.allows(Scope::AnalyticsRead) {
        return Ok(LinkAnalytics {
            unavailable: Some("Your role does not include analytics.".to_owned()),
            ..LinkAnalytics::default()
        });
    }
    let Some(reader) = reader(console) else {
        return Ok(LinkAnalytics {
            unavailable: Some("This control plane has no click store configured.".to_owned()),
            ranges,
            ..LinkAnalytics::default()
        });
    };
    let to = now_millis();
    let from = to - length;
    let read = blocking(move || {
        let series = reader.series(id, from, to, interval)?;
        let mut breakdowns = Vec::new();
        for dimension in Dimension::ALL {
            if dimension == Dimension::Total {
                continue;
            }
            let values = reader.breakdown(id, from, to, dimension)?;
            if values.is_empty() {
                continue;
            }
            breakdowns.push((dimension, values));
        }
        Ok::<_, ApiError>((series, breakdowns))
    })
    .await;
    let (series, breakdowns) = match read {
        Ok(read) => read,
        Err(error) if error.status == 503 => {
            return Ok(LinkAnalytics {
                unavailable: Some(error.message),
                ranges,
                ..LinkAnalytics::default()
            });
        }
        Err(error) => return Err(error.into()),
    };
    let range = ChartRange {
        from,
        to,
        interval: interval.millis(),
    };
    let buckets = chart::buckets(range, &series);
    let humans = buckets.iter().map(|b| b.humans).sum();
    let bots = buckets.iter().map(|b| b.bots).sum();
    Ok(LinkAnalytics {
        unavailable: None,
        ranges,
        chart: chart::svg(&buckets, interval.millis(), "Clicks over time"),
        humans,
        bots,
        points: buckets
            .iter()
            .filter(|b| b.humans + b.bots > 0)
            .map(|b| (page::date_time(b.start), b.humans, b.bots))
            .collect(),
        breakdowns: breakdowns
            .into_iter()
            .map(|(dimension, values)| table(dimension_label(dimension), values))
            .collect(),
    })
}

fn table(label: &'static str, values: Vec<(String, Counts)>) -> BreakdownTable {
    let rows: Vec<BreakdownRow> = values
        .into_iter()
        .take(20)
        .map(|(value, counts)| BreakdownRow {
            value: if value.is_empty() {
                "(none)".to_owned()
            } else {
                value
            },
            humans: counts.humans,
            bots: counts.bots,
        })
        .collect();
    let max = rows
        .iter()
        .map(|r| r.humans + r.bots)
        .max()
        .unwrap_or(1)
        .max(1);
    BreakdownTable { label, rows, max }
}

/// A row of the most clicked links.
#[derive(Debug, Clone)]
pub struct TopRow {
    pub id: u64,
    pub short: String,
    pub url: String,
    pub humans: u64,
    pub bots: u64,
}

#[derive(Template)]
#[template(path = "console/analytics.html")]
struct OverviewPage {
    layout: Layout,
    ranges: Vec<RangeTab>,
    unavailable: Option<String>,
    humans: u64,
    bots: u64,
    links_with_clicks: usize,
    top: Vec<TopRow>,
}

/// `GET /console/analytics`: the workspace's clicks and top links.
pub async fn overview(
    console: Console,
    request: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::AnalyticsRead)?;
    let query = FormData::parse(request.query_string().as_bytes());
    let (_, length, _, ranges) = chosen_range(&query);
    let layout = Layout::of(&console, "Analytics", "analytics");
    let Some(reader) = reader(&console) else {
        return Ok(page::render(
            200,
            &OverviewPage {
                layout,
                ranges,
                unavailable: Some("This control plane has no click store configured.".to_owned()),
                humans: 0,
                bots: 0,
                links_with_clicks: 0,
                top: Vec::new(),
            },
        ));
    };
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let to = now_millis();
    let clicked = blocking(move || {
        let clicked = clicked_links(reader.as_ref(), &service, &workspace, (to - length, to))?;
        let top = clicked
            .iter()
            .take(20)
            .map(|(id, counts, link)| {
                Ok(TopRow {
                    id: *id,
                    short: service.short_url(link)?,
                    url: link.url.clone(),
                    humans: counts.humans,
                    bots: counts.bots,
                })
            })
            .collect::<Result<Vec<_>, crate::service::LinkError>>()?;
        let humans = clicked.iter().map(|(_, c, _)| c.humans).sum::<u64>();
        let bots = clicked.iter().map(|(_, c, _)| c.bots).sum::<u64>();
        Ok::<_, ApiError>((humans, bots, clicked.len(), top))
    })
    .await;
    let (unavailable, (humans, bots, links_with_clicks, top)) = match clicked {
        Ok(found) => (None, found),
        Err(error) if error.status == 503 => (Some(error.message), (0, 0, 0, Vec::new())),
        Err(error) => return Err(error.into()),
    };
    Ok(page::render(
        200,
        &OverviewPage {
            layout,
            ranges,
            unavailable,
            humans,
            bots,
            links_with_clicks,
            top,
        },
    ))
}
