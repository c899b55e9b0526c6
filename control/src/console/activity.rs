//! The workspace's activity, live: the latest events (link changes, clicks
//! per window, domains, certificates) rendered on the server, then followed
//! with `GET /api/v1/events` by `console.js` (an `EventSource` on the same
//! session), newest first. Without script the page is the history as of
//! its loading.

use actix_web::HttpResponse;
use askama::Template;

use super::error::ConsoleError;
use super::page::{self, Layout};
use super::session::Console;
use crate::api::blocking;
use crate::events::{EventKind, EventRecord, Subject};
use crate::keys::Scope;

/// Events the page shows at first.
const SHOWN: usize = 50;

/// One event as listed.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: String,
    pub kind: &'static str,
    pub summary: String,
    pub at: String,
}

#[derive(Template)]
#[template(path = "console/activity.html")]
struct ActivityPage {
    layout: Layout,
    events: Vec<EventRow>,
    /// Where the stream resumes: the newest event shown (or the log's end).
    last_event_id: String,
    /// The types the stream asks for, space-separated.
    types: String,
}

/// One line about an event (the page's script writes the same for live ones).
fn summary(event: &EventRecord) -> String {
    match &event.subject {
        Subject::Link { link } | Subject::Expired { link, .. } => {
            format!("{}/{} → {}", link.domain, link.code, link.url)
        }
        Subject::Page {
            domain,
            handle,
            change,
            ..
        } => format!("page {domain}/{handle} {}", change.as_str()),
        Subject::Clicks {
            links,
            others,
            part,
            ..
        } => {
            let (mut humans, mut bots) = links
                .iter()
                .fold((0, 0), |(h, b), l| (h + l.humans, b + l.bots));
            let mut count = links.len() as u64;
            if let Some(others) = others {
                humans += others.humans;
                bots += others.bots;
                count += others.links;
            }
            let part = if *part > 0 {
                format!(" (part {})", part + 1)
            } else {
                String::new()
            };
            format!("{humans} human and {bots} bot clicks on {count} links{part}")
        }
        Subject::Domain {
            domain, failure, ..
        } => match failure {
            Some(failure) => format!("{domain}: {failure}"),
            None => domain.clone(),
        },
        Subject::Certificate { domain, error, .. } => match error {
            Some(error) => format!("{domain}: {error}"),
            None => domain.clone(),
        },
        Subject::Test { endpoint_id } => format!("test sent to {endpoint_id}"),
    }
}

/// `GET /console/activity`.
pub async fn page(console: Console) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksRead)?;
    let clicks = console.caller.allows(Scope::AnalyticsRead);
    let types: Vec<EventKind> = EventKind::SUBSCRIBABLE
        .into_iter()
        .chain([EventKind::WebhookTest])
        .filter(|kind| clicks || !kind.is_analytics())
        .collect();
    let store = console.state.service.store().clone();
    let workspace = console.workspace_id().to_owned();
    let wanted = types.clone();
    let (events, latest) = blocking(move || {
        let latest = store.latest_event();
        let events = store.recent_events(&workspace, SHOWN, |e| wanted.contains(&e.kind))?;
        Ok::<_, crate::store::StoreError>((events, latest))
    })
    .await?;
    Ok(page::render(
        200,
        &ActivityPage {
            layout: Layout::of(&console, "Activity", "activity"),
            events: events
                .iter()
                .map(|event| EventRow {
                    id: event.id(),
                    kind: event.kind.as_str(),
                    summary: summary(event),
                    at: page::date_time(event.created_at),
                })
                .collect(),
            last_event_id: crate::events::event_id(latest),
            types: types
                .iter()
                .map(|kind| kind.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        },
    ))
}
