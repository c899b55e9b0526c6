//! What callers ask of the service: a new link, changes to one, a listing.
//! Values are raw (unvalidated) where the service validates them; times are
//! milliseconds since the epoch.

use ricochet_model::LinkState;

use super::access::AccessChanges;
use super::behaviour::BehaviourChanges;
use super::utm::UtmChanges;
use crate::store::{LinkFilter, LinkSort};

/// A link to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewLink {
    /// Destination; validated and normalized by the service.
    pub url: String,
    /// The default domain when `None`.
    pub domain: Option<String>,
    /// A random code when `None`.
    pub code: Option<String>,
    /// The default status (302) when `None`.
    pub status: Option<u16>,
    pub expires_at: Option<i64>,
    pub forward_query: bool,
    pub title: Option<String>,
    pub tags: Vec<String>,
    /// UTM fields merged into the destination's query (see [`super::utm`]).
    pub utm: UtmChanges,
    /// Rules, variants, fallback, card, ios and android, validated by the
    /// service; absent and `null` fields are unset.
    pub behaviour: BehaviourChanges,
    /// Password and click limit; absent and `null` are unset.
    pub access: AccessChanges,
}

/// Changes to a link: `None` leaves a field as it is; `Some(None)` clears an
/// optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChanges {
    pub url: Option<String>,
    pub status: Option<u16>,
    pub state: Option<LinkState>,
    pub expires_at: Option<Option<i64>>,
    pub title: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub forward_query: Option<bool>,
    /// Applied after `url` (see [`super::utm`]).
    pub utm: UtmChanges,
    /// Rules, variants, fallback, card, ios and android: absent fields stay,
    /// `null` clears one.
    pub behaviour: BehaviourChanges,
    /// Password and click limit: absent stays, `null` removes.
    pub access: AccessChanges,
}

/// One page of a listing to read.
#[derive(Debug, Clone)]
pub struct LinkQuery {
    /// `domain` is normalized by the service.
    pub filter: LinkFilter,
    pub sort: LinkSort,
    pub cursor: Option<String>,
    pub limit: usize,
}

/// A create that a retry with the same key must answer the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Unique per caller (the API prefixes the caller's key id).
    pub key: String,
    /// Hash of the request; the same key with another hash is refused.
    pub request_hash: String,
}

/// The answer the caller rendered for a created link, stored with the link in
/// the same batch and replayed to retries as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub status: u16,
    pub body: String,
}
