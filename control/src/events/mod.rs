//! What happened in a workspace, as events: links created, updated, deleted
//! and expired, domains verified or failing, certificates, clicks per closed
//! window. Events are written to the control store's event log in the same
//! atomic batch as the change they describe ([`crate::store::WriteTxn`]), so
//! a change is never committed without its event nor an event without its
//! change; webhooks ([`crate::webhooks`]) and the live stream
//! (`GET /api/v1/events`) read that log by sequence number.
//!
//! - [`EventKind`]: the event types and their names.
//! - [`EventRecord`], [`Subject`]: one logged event and what it is about.
//! - [`clicks`]: closed windows turned into `link.clicked` events.
//! - [`expiry`]: `link.expired` when a link's time or click limit runs out.

pub mod clicks;
pub mod expiry;

use ricochet_model::{LinkRecord, LinkState, UnixMillis};
use serde::{Deserialize, Serialize};

/// An event's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "link.created")]
    LinkCreated,
    #[serde(rename = "link.updated")]
    LinkUpdated,
    #[serde(rename = "link.deleted")]
    LinkDeleted,
    #[serde(rename = "link.expired")]
    LinkExpired,
    #[serde(rename = "link.clicked")]
    LinkClicked,
    #[serde(rename = "domain.verified")]
    DomainVerified,
    #[serde(rename = "domain.failed")]
    DomainFailed,
    #[serde(rename = "certificate.issued")]
    CertificateIssued,
    #[serde(rename = "certificate.failed")]
    CertificateFailed,
    #[serde(rename = "page.updated")]
    PageUpdated,
    /// Sent by `POST /api/v1/webhooks/{id}/test` to that endpoint only.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventKind {
    /// Every type an endpoint can subscribe to (`webhook.test` is sent on
    /// request to one endpoint, whatever it subscribes to).
    pub const SUBSCRIBABLE: [EventKind; 10] = [
        EventKind::LinkCreated,
        EventKind::LinkUpdated,
        EventKind::LinkDeleted,
        EventKind::LinkExpired,
        EventKind::LinkClicked,
        EventKind::DomainVerified,
        EventKind::DomainFailed,
        EventKind::CertificateIssued,
        EventKind::CertificateFailed,
        EventKind::PageUpdated,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LinkCreated => "link.created",
            Self::LinkUpdated => "link.updated",
            Self::LinkDeleted => "link.deleted",
            Self::LinkExpired => "link.expired",
            Self::LinkClicked => "link.clicked",
            Self::DomainVerified => "domain.verified",
            Self::DomainFailed => "domain.failed",
            Self::CertificateIssued => "certificate.issued",
            Self::CertificateFailed => "certificate.failed",
            Self::PageUpdated => "page.updated",
            Self::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([Self::WebhookTest])
            .find(|kind| kind.as_str() == text)
    }

    /// Whether reading this event needs the analytics scope.
    pub fn is_analytics(self) -> bool {
        self == Self::LinkClicked
    }
}

/// Why a link expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpiryReason {
    /// Its `expires_at` passed.
    Time,
    /// Its `max_clicks` were counted.
    ClickLimit,
}

/// A dimension's values in a window: (value, humans, bots), most humans first.
pub type ValueCounts = Vec<(String, u64, u64)>;

/// One link's clicks in one window: humans and bots, and per dimension
/// (country, device, referrer, UTM…) the counts of each value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClicks {
    pub link_id: u64,
    pub domain: String,
    pub code: String,
    pub humans: u64,
    pub bots: u64,
    /// Dimension name → value → counts, values by most humans.
    pub breakdowns: Vec<(String, ValueCounts)>,
}

/// Links of a window left out of its events, summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OtherLinks {
    pub links: u64,
    pub humans: u64,
    pub bots: u64,
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "subject", rename_all = "snake_case")]
pub enum Subject {
    /// The link as the change left it.
    Link { link: Box<LinkRecord> },
    Expired {
        link: Box<LinkRecord>,
        reason: ExpiryReason,
    },
    /// A closed window's clicks of the workspace's links (one part of it
    /// when the window holds more links than an event carries).
    Clicks {
        window_start: UnixMillis,
        part: u32,
        links: Vec<LinkClicks>,
        /// The workspace's links of the window beyond the most an event
        /// window carries (`webhooks.clicked_links_per_window`), summed;
        /// on the last part only.
        #[serde(default)]
        others: Option<OtherLinks>,
    },
    Domain {
        domain: String,
        status: String,
        failure: Option<String>,
    },
    Certificate {
        domain: String,
        not_after: Option<UnixMillis>,
        error: Option<String>,
    },
    /// A webhook test: the endpoint it was sent to.
    Test { endpoint_id: String },
    /// A link-in-bio page was created, edited (or rendered again because
    /// a link it shows changed) or removed.
    Page {
        page_id: u64,
        domain: String,
        handle: String,
        change: PageChange,
    },
}

/// What happened to a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageChange {
    Created,
    Updated,
    Deleted,
}

impl PageChange {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

impl Subject {
    /// The subject of a write of `link` (`created`: there was no record):
    /// the page for a page's record, else the link.
    pub fn of_link(created: bool, link: &LinkRecord) -> Self {
        if link.extensions.page.is_none() {
            return Self::Link {
                link: Box::new(link.clone()),
            };
        }
        Self::Page {
            page_id: link.id,
            domain: link.domain.clone(),
            handle: link.code.clone(),
            change: match created {
                true => PageChange::Created,
                false => PageChange::Updated,
            },
        }
    }
}

/// An event about to be logged (its sequence number is given at commit).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub workspace: String,
    pub subject: Subject,
}

/// A logged event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Strictly increasing over the log, from 1.
    pub seq: u64,
    pub kind: EventKind,
    pub workspace: String,
    pub created_at: UnixMillis,
    pub subject: Subject,
}

impl EventRecord {
    /// The public id: `evt_` and the sequence number.
    pub fn id(&self) -> String {
        event_id(self.seq)
    }
}

/// The public id of event `seq`.
pub fn event_id(seq: u64) -> String {
    format!("evt_{seq}")
}

/// The sequence number of a public event id (`evt_12` or `12`).
pub fn parse_event_id(text: &str) -> Option<u64> {
    text.trim()
        .strip_prefix("evt_")
        .unwrap_or(text.trim())
        .parse()
        .ok()
}

/// The event a write of `next` over `previous` is: created when there was
/// no record, deleted when it became deleted, else updated. A restore (from
/// deleted to active) is an update.
pub fn link_event_kind(previous: Option<&LinkRecord>, next: &LinkRecord) -> EventKind {
    if next.extensions.page.is_some() {
        return EventKind::PageUpdated;
    }
    match previous {
        None => EventKind::LinkCreated,
        Some(before) if before.state != LinkState::Deleted && next.state == LinkState::Deleted => {
            EventKind::LinkDeleted
        }
        Some(_) => EventKind::LinkUpdated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(state: LinkState) -> LinkRecord {
        let mut link = LinkRecord::new(1, "rico.local", "abc", "https://example.com/", 0).unwrap();
        link.state = state;
        link
    }

    #[test]
    fn a_write_is_created_updated_or_deleted_by_what_it_replaces() {
        let active = link(LinkState::Active);
        let deleted = link(LinkState::Deleted);
        let disabled = link(LinkState::Disabled);
        assert_eq!(link_event_kind(None, &active), EventKind::LinkCreated);
        assert_eq!(
            link_event_kind(Some(&active), &active),
            EventKind::LinkUpdated
        );
        assert_eq!(
            link_event_kind(Some(&active), &deleted),
            EventKind::LinkDeleted
        );
        assert_eq!(
            link_event_kind(Some(&disabled), &deleted),
            EventKind::LinkDeleted
        );
        assert_eq!(
            link_event_kind(Some(&deleted), &deleted),
            EventKind::LinkUpdated
        );
        assert_eq!(
            link_event_kind(Some(&deleted), &active),
            EventKind::LinkUpdated
        );
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in EventKind::SUBSCRIBABLE
            .into_iter()
            .chain([EventKind::WebhookTest])
        {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(EventKind::parse("link.*"), None);
        assert_eq!(EventKind::parse(""), None);
    }

    #[test]
    fn event_ids_parse_with_or_without_their_prefix() {
        assert_eq!(event_id(42), "evt_42");
        assert_eq!(parse_event_id("evt_42"), Some(42));
        assert_eq!(parse_event_id("42"), Some(42));
        assert_eq!(parse_event_id(" evt_7 "), Some(7));
        assert_eq!(parse_event_id("evt_"), None);
        assert_eq!(parse_event_id("evt_-1"), None);
        assert_eq!(parse_event_id("abc"), None);
    }
}
