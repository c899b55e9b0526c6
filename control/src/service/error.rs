//! Why a link or domain operation was refused, in the domain's terms. The API
//! maps these to HTTP statuses and its JSON error shape; the service never
//! knows about HTTP.

use ricochet_model::ValidationError;
use ricochet_model::block::BlockSource;
use thiserror::Error;

use crate::store::StoreError;

/// A refused or failed operation of [`LinkService`](super::LinkService).
#[derive(Debug, Error)]
pub enum LinkError {
    /// A value broke the shared validation rules; `field()` names it.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("domain {domain:?} is not registered")]
    UnknownDomain { domain: String },
    #[error("{code:?} is reserved")]
    Reserved { code: String },
    #[error("{code:?} is already taken on {domain}")]
    CodeTaken { domain: String, code: String },
    #[error("{domain} is already registered")]
    DomainExists { domain: String },
    #[error("no domain {domain:?} in this workspace")]
    DomainNotFound { domain: String },
    #[error(
        "{domain} is not verified yet: create its TXT record and POST \
         /api/v1/domains/{domain}/verify"
    )]
    DomainNotVerified { domain: String },
    #[error(
        "the verification of {domain} ran out of attempts or time: POST \
         /api/v1/domains/{domain}/verification for a new token"
    )]
    VerificationExpired { domain: String },
    #[error(
        "{domain} is the installation's default domain: it is set in the engines' and \
         control plane's configuration, not removed through the API"
    )]
    DefaultDomain { domain: String },
    #[error(
        "{links} links (deleted ones included) are on {domain}: remove the domain with \
         ?purge_links=true to remove them for good with it"
    )]
    DomainHasLinks { domain: String, links: usize },
    #[error("{domain} is already verified")]
    AlreadyVerified { domain: String },
    #[error(
        "{domain}'s settings belong to the workspace that registered it (the default \
         domain's to the default workspace)"
    )]
    DomainNotOwned { domain: String },
    /// `field` names the destination: `url`, `rules[1].variants[0].url`, `ios`, ….
    #[error(
        "{field} is on {domain}, a short-link domain of this installation: a link \
         cannot redirect to a short link here (it could loop)"
    )]
    PointsToShortDomain { field: String, domain: String },
    /// `field` names the destination, as for [`Self::PointsToShortDomain`].
    #[error(
        "{field} is on {host}, which {}{}",
        match list {
            BlockSource::ThreatList => "a threat list names",
            BlockSource::Api | BlockSource::File => "this installation's denylist blocks",
        },
        reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    DestinationBlocked {
        field: String,
        host: String,
        /// The list that blocks it.
        list: BlockSource,
        reason: Option<String>,
    },
    #[error("utm.{field} must be 1 to 200 characters without control characters (null removes it)")]
    InvalidUtm { field: &'static str },
    #[error("expires_at is in the past; an expired link cannot be created or given a past expiry")]
    ExpiryInPast,
    #[error("no link with id {id}")]
    NotFound { id: u64 },
    #[error("a bulk call takes at most {max} items; got {got}")]
    TooMany { max: usize, got: usize },
    #[error("this idempotency key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the cursor is not one this service issued")]
    BadCursor,
    #[error("no free random code found; raise links.code_length")]
    CodeSpaceExhausted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LinkError {
    /// The input field at fault, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Invalid(error) => Some(error.field()),
            Self::UnknownDomain { .. }
            | Self::DomainExists { .. }
            | Self::DomainNotVerified { .. } => Some("domain"),
            Self::Reserved { .. } | Self::CodeTaken { .. } => Some("code"),
            Self::BadCursor => Some("cursor"),
            Self::PointsToShortDomain { field, .. } | Self::DestinationBlocked { field, .. } => {
                Some(field)
            }
            Self::ExpiryInPast => Some("expires_at"),
            Self::InvalidUtm { .. } => None,
            _ => None,
        }
    }

    /// Whether the failure is the service's, not the input's: a bulk call
    /// stops on these instead of reporting them against one item.
    pub fn is_fault(&self) -> bool {
        matches!(self, Self::Store(_) | Self::CodeSpaceExhausted)
    }
}
