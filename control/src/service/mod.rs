//! Link and domain operations on the store, in the domain's terms: creating
//! (random or custom codes, reserved words, per-domain uniqueness, bounded
//! retries), editing, soft deleting and restoring, bulk creation, reading.
//! Every operation acts in one workspace: a link or domain of another
//! workspace is answered exactly as one that does not exist. Codes stay
//! unique per domain across workspaces; a domain belongs to one workspace,
//! and the default domain is shared by all.
//! Each write is one atomic store transaction, so a refused operation stores
//! and publishes nothing. Callers (the API, import) map [`LinkError`] to
//! their own answers.
//!
//! - [`input`]: what callers pass in ([`NewLink`], [`LinkChanges`], …).
//! - [`behaviour`]: rules, variants, fallback, card, ios and android as
//!   callers give them ([`BehaviourChanges`]).
//! - [`access`]: the password (hashed before the write) and the click
//!   limit ([`AccessChanges`]).
//! - [`card`]: a new link's card read from its destination's page, when
//!   card fetching is on (before the write).
//! - [`domains`]: registering domains and their settings (root, unknown
//!   codes, default status), which reach engines as changes.
//! - [`error`]: why an operation was refused ([`LinkError`]).

pub mod access;
pub mod behaviour;
pub mod card;
pub mod domains;
pub mod error;
pub mod input;
pub mod short_url;
pub mod utm;
pub mod verification;

use std::collections::HashSet;
use std::sync::Arc;

use ricochet_model::{LinkExtensions, LinkKey, LinkRecord, LinkState, RedirectStatus, validate};

use access::PreparedAccess;
pub use access::{AccessChanges, PasswordInput};
pub use behaviour::BehaviourChanges;
pub use domains::{CertificateInfo, CertificateStatus, DomainChanges, DomainInfo, DomainRemoval};
pub use error::LinkError;
pub use input::{IdempotencyKey, LinkChanges, LinkQuery, NewLink, StoredAnswer};
pub use verification::{TxtAnswer, TxtLookup};

use crate::cards::CardFetcher;
use crate::denylist::Denylist;
use crate::keys::random_string;
use crate::store::{ControlStore, IdempotentResponse, LinkPage, StoreError, WriteTxn};

/// Codes nobody may take: paths engines or operators may need.
pub const BUILT_IN_RESERVED: &[&str] = &[
    "api",
    "admin",
    "internal",
    "healthz",
    "readyz",
    "metrics",
    "static",
    "assets",
    "login",
    "logout",
    "signup",
    "settings",
    "dashboard",
    "docs",
    "openapi",
    "robots",
    "favicon",
    "well-known",
    "_next",
    "app",
    "www",
];

/// Random-code attempts before giving up.
const CODE_ATTEMPTS: usize = 8;

/// Settings of link creation.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    pub default_domain: String,
    pub code_length: usize,
    pub max_bulk: usize,
    pub reserved: HashSet<String>,
    /// New domains must prove ownership by DNS before links live on them;
    /// off, every registered domain counts as verified.
    pub dns_verification: bool,
    /// Verified domains get certificates from an ACME authority.
    pub acme: bool,
    /// Base of short URLs on the default domain (`links.short_url_base`);
    /// empty: `http://<default_domain>`.
    pub short_url_base: String,
}

impl LinkSettings {
    pub fn new(
        default_domain: &str,
        code_length: usize,
        max_bulk: usize,
        extra: &[String],
    ) -> Self {
        let reserved = BUILT_IN_RESERVED
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_lowercase()))
            .collect();
        Self {
            default_domain: default_domain.to_owned(),
            code_length,
            max_bulk,
            reserved,
            dns_verification: true,
            acme: false,
            short_url_base: String::new(),
        }
    }

    /// These settings with certificates ordered from an ACME authority.
    pub fn with_acme(mut self, on: bool) -> Self {
        self.acme = on;
        self
    }

    /// These settings with short URLs on the default domain under `base`.
    pub fn with_short_url_base(mut self, base: &str) -> Self {
        self.short_url_base = base.trim_end_matches('/').to_owned();
        self
    }

    /// These settings with DNS verification of new domains on or off.
    pub fn with_dns_verification(mut self, on: bool) -> Self {
        self.dns_verification = on;
        self
    }
}

/// Creates, edits and reads links and domains.
#[derive(Debug, Clone)]
pub struct LinkService {
    store: Arc<ControlStore>,
    settings: Arc<LinkSettings>,
    /// Reads the card of a new link without one from its destination.
    cards: Option<Arc<CardFetcher>>,
    /// Blocked destinations; without one nothing is blocked.
    denylist: Option<Arc<Denylist>>,
}

impl LinkService {
    pub fn new(store: Arc<ControlStore>, settings: LinkSettings) -> Self {
        Self {
            store,
            settings: Arc::new(settings),
            cards: None,
            denylist: None,
        }
    }

    /// This service, refusing destinations `denylist` blocks and keeping
    /// the verdict of the links it writes.
    pub fn with_denylist(mut self, denylist: Arc<Denylist>) -> Self {
        self.denylist = Some(denylist);
        self
    }

    /// The denylist, when the service has one.
    pub fn denylist(&self) -> Option<&Arc<Denylist>> {
        self.denylist.as_ref()
    }

    /// This service, giving links created without a card the one their
    /// destination's page declares (see [`card`]).
    pub fn with_cards(mut self, cards: CardFetcher) -> Self {
        self.cards = Some(Arc::new(cards));
        self
    }

    pub fn store(&self) -> &Arc<ControlStore> {
        &self.store
    }

    pub fn settings(&self) -> &LinkSettings {
        &self.settings
    }

    /// Creates one link in `workspace` (without a card, with the one its
    /// destination declares when card fetching is on; see [`card`]).
    pub fn create(
        &self,
        workspace: &str,
        input: &NewLink,
        now: i64,
    ) -> Result<LinkRecord, LinkError> {
        let access = input.access.prepare()?;
        let input = self.with_fetched_card(input);
        self.store
            .write(|txn| self.stage_create(txn, workspace, &input, &access, now))
    }

    /// Creates one link once per idempotency key: a retry with the same key
    /// and request gets the first answer (`answer` renders it, and it is stored
    /// in the link's batch); the same key with another request is refused.
    pub fn create_idempotent(
        &self,
        workspace: &str,
        input: &NewLink,
        idempotency: &IdempotencyKey,
        now: i64,
        answer: impl FnOnce(&LinkRecord) -> StoredAnswer,
    ) -> Result<StoredAnswer, LinkError> {
        let access = input.access.prepare()?;
        // A retry is answered from the store: no second fetch.
        let input = match self.store.idempotent_response(&idempotency.key)? {
            Some(_) => std::borrow::Cow::Borrowed(input),
            None => self.with_fetched_card(input),
        };
        self.store.write(|txn| {
            if let Some(stored) = self.store.idempotent_response(&idempotency.key)? {
                if stored.request_hash != idempotency.request_hash {
                    return Err(LinkError::IdempotencyKeyReused);
                }
                return Ok(StoredAnswer {
                    status: stored.status,
                    body: stored.body,
                });
            }
            let link = self.stage_create(txn, workspace, &input, &access, now)?;
            let answer = answer(&link);
            txn.put_idempotent_response(
                &idempotency.key,
                &IdempotentResponse {
                    request_hash: idempotency.request_hash.clone(),
                    status: answer.status,
                    body: answer.body.clone(),
                    created_at: now,
                },
            );
            Ok(answer)
        })
    }

    /// Creates many links in one transaction; each item succeeds or fails
    /// alone (one outcome per input, in order). Cards are fetched first, a
    /// few at a time within one time limit (see [`card`]). A fault (see
    /// [`LinkError::is_fault`]) fails the whole call and stores nothing.
    pub fn create_bulk(
        &self,
        workspace: &str,
        inputs: &[NewLink],
        now: i64,
    ) -> Result<Vec<Result<LinkRecord, LinkError>>, LinkError> {
        if inputs.len() > self.settings.max_bulk {
            return Err(LinkError::TooMany {
                max: self.settings.max_bulk,
                got: inputs.len(),
            });
        }
        // Passwords are hashed before the transaction, each item alone.
        let accesses: Vec<_> = inputs.iter().map(|input| input.access.prepare()).collect();
        let inputs = self.with_fetched_cards(inputs, |index| accesses[index].is_err());
        self.store.write(|txn| {
            let mut outcomes = Vec::with_capacity(inputs.len());
            for (input, access) in inputs.iter().zip(&accesses) {
                let staged = match access {
                    Ok(access) => self.stage_create(txn, workspace, input, access, now),
                    Err(error) => Err(error.clone().into()),
                };
                match staged {
                    Err(error) if error.is_fault() => return Err(error),
                    outcome => outcomes.push(outcome),
                }
            }
            Ok(outcomes)
        })
    }

    /// Applies `changes` to link `id` of `workspace`.
    pub fn update(
        &self,
        workspace: &str,
        id: u64,
        changes: &LinkChanges,
        now: i64,
    ) -> Result<LinkRecord, LinkError> {
        let access = changes.access.prepare()?;
        self.store.write(|txn| {
            let mut link = existing(txn, workspace, id)?;
            let was_blocked = link.extensions.blocked.is_some();
            if let Some(url) = &changes.url {
                link.url = validate::validate_destination(url)?;
            }
            if !changes.utm.is_empty() {
                link.url = validate::validate_destination(&utm::apply(&link.url, &changes.utm)?)?;
            }
            if changes.url.is_some() || !changes.utm.is_empty() {
                self.refuse_short_domain("url", &link.url)?;
                self.refuse_blocked("url", &link.url)?;
            }
            if !changes.behaviour.is_empty() {
                self.apply_behaviour(&changes.behaviour, &mut link.extensions)?;
            }
            access.apply(&mut link.extensions);
            if let Some(Some(at)) = changes.expires_at
                && at <= now
            {
                return Err(LinkError::ExpiryInPast);
            }
            if let Some(status) = changes.status {
                link.status = RedirectStatus::try_from(status)?;
            }
            if let Some(state) = changes.state {
                link.state = state;
            }
            if let Some(expires_at) = changes.expires_at {
                link.expires_at = expires_at;
            }
            if let Some(title) = &changes.title {
                link.title = title.clone();
            }
            if let Some(tags) = &changes.tags {
                link.tags = tags.clone();
            }
            if let Some(forward) = changes.forward_query {
                link.forward_query = forward;
            }
            link.updated_at = now;
            // The destinations left as they were may be blocked already.
            link.extensions.blocked = self.verdict(&link);
            link.validate()?;
            if let Some(denylist) = &self.denylist {
                denylist.count_edit(was_blocked, link.extensions.blocked.is_some());
            }
            Ok(txn.put_link(link)?)
        })
    }

    /// Soft-deletes link `id`: it keeps its code and engines answer 410 until
    /// it is restored. Deleting a deleted link changes nothing.
    pub fn delete(&self, workspace: &str, id: u64, now: i64) -> Result<LinkRecord, LinkError> {
        self.transition(workspace, id, now, |state| {
            (state != LinkState::Deleted).then_some(LinkState::Deleted)
        })
    }

    /// Brings soft-deleted link `id` back to active. A link that is not
    /// deleted is returned unchanged.
    pub fn restore(&self, workspace: &str, id: u64, now: i64) -> Result<LinkRecord, LinkError> {
        self.transition(workspace, id, now, |state| {
            (state == LinkState::Deleted).then_some(LinkState::Active)
        })
    }

    /// Moves link `id` to the state `next` gives for its current one; `None`
    /// leaves the link as it is (no new version).
    fn transition(
        &self,
        workspace: &str,
        id: u64,
        now: i64,
        next: impl FnOnce(LinkState) -> Option<LinkState>,
    ) -> Result<LinkRecord, LinkError> {
        self.store.write(|txn| {
            let mut link = existing(txn, workspace, id)?;
            let Some(state) = next(link.state) else {
                return Ok(link);
            };
            link.state = state;
            link.updated_at = now;
            Ok(txn.put_link(link)?)
        })
    }

    /// Link `id` of `workspace`.
    pub fn link(&self, workspace: &str, id: u64) -> Result<LinkRecord, LinkError> {
        self.find(workspace, id)?.ok_or(LinkError::NotFound { id })
    }

    /// Link `id` of `workspace`, if it has one.
    pub fn find(&self, workspace: &str, id: u64) -> Result<Option<LinkRecord>, LinkError> {
        if self.store.link_workspace(id)?.as_deref() != Some(workspace) {
            return Ok(None);
        }
        // A page's record is edited as a page, not as a link.
        Ok(self
            .store
            .link(id)?
            .filter(|link| link.extensions.page.is_none()))
    }

    /// A page of the links of `workspace`.
    pub fn list(&self, workspace: &str, query: &LinkQuery) -> Result<LinkPage, LinkError> {
        let mut filter = query.filter.clone();
        filter.workspace = Some(workspace.to_owned());
        if let Some(domain) = &filter.domain {
            filter.domain = Some(validate::normalize_domain(domain)?);
        }
        self.store
            .list_links(&filter, query.sort, query.cursor.as_deref(), query.limit)?
            .map_err(|_| LinkError::BadCursor)
    }

    fn stage_create(
        &self,
        txn: &mut WriteTxn<'_>,
        workspace: &str,
        input: &NewLink,
        access: &PreparedAccess,
        now: i64,
    ) -> Result<LinkRecord, LinkError> {
        // Imports keep the expiry a link had; a new link must not be born expired.
        if input.expires_at.is_some_and(|at| at <= now) {
            return Err(LinkError::ExpiryInPast);
        }
        let link = self.prepare_create(txn, workspace, input, access, now)?;
        Ok(stage_new(txn, workspace, link)?)
    }

    /// The validated record a create of `input` would store (its code free,
    /// its domain registered, a new id, `access` being `input.access`
    /// prepared), not yet staged: the importer sets the fields an API create
    /// cannot (state, `created_at`, a password hash) before staging it.
    pub(crate) fn prepare_create(
        &self,
        txn: &mut WriteTxn<'_>,
        workspace: &str,
        input: &NewLink,
        access: &PreparedAccess,
        now: i64,
    ) -> Result<LinkRecord, LinkError> {
        let (domain, domain_record) = self.creatable_domain(workspace, input.domain.as_deref())?;
        let mut url = validate::validate_destination(&input.url)?;
        if !input.utm.is_empty() {
            url = validate::validate_destination(&utm::apply(&url, &input.utm)?)?;
        }
        self.refuse_short_domain("url", &url)?;
        self.refuse_blocked("url", &url)?;
        let mut extensions = LinkExtensions::default();
        self.apply_behaviour(&input.behaviour, &mut extensions)?;
        let code = match &input.code {
            Some(code) => {
                self.check_free_code(txn, &domain, code)?;
                code.clone()
            }
            None => self.random_code(txn, &domain)?,
        };
        let mut link = LinkRecord::new(txn.next_id(), &domain, &code, &url, now)?;
        link.status = match input.status {
            Some(status) => RedirectStatus::try_from(status)?,
            None => domain_record.default_status,
        };
        link.expires_at = input.expires_at;
        link.forward_query = input.forward_query;
        link.title = input.title.clone();
        link.tags = input.tags.clone();
        link.extensions = extensions;
        access.apply(&mut link.extensions);
        link.validate()?;
        Ok(link)
    }

    /// The normalized domain (`None`: the default one) and its record, when
    /// `workspace` may create links on it and it is verified.
    pub(crate) fn creatable_domain(
        &self,
        workspace: &str,
        domain: Option<&str>,
    ) -> Result<(String, crate::store::DomainRecord), LinkError> {
        let domain = match domain {
            Some(domain) => validate::normalize_domain(domain)?,
            None => self.settings.default_domain.clone(),
        };
        let Some(record) = self.usable_domain(workspace, &domain)? else {
            return Err(LinkError::UnknownDomain { domain });
        };
        if !record.verification.is_verified() {
            return Err(LinkError::DomainNotVerified { domain });
        }
        Ok((domain, record))
    }

    /// Refuses `code` on `domain` unless it is valid, not reserved and not
    /// taken (by a link or a page).
    pub(crate) fn check_free_code(
        &self,
        txn: &WriteTxn<'_>,
        domain: &str,
        code: &str,
    ) -> Result<(), LinkError> {
        validate::validate_code(code)?;
        if self.is_reserved(code) {
            return Err(LinkError::Reserved {
                code: code.to_owned(),
            });
        }
        let key = LinkKey {
            domain: domain.to_owned(),
            code: code.to_owned(),
        };
        if txn.code_owner(&key)?.is_some() {
            return Err(LinkError::CodeTaken {
                domain: domain.to_owned(),
                code: code.to_owned(),
            });
        }
        Ok(())
    }

    /// Validates `changes` and applies them to `extensions`, refusing any
    /// destination they set on a short-link domain.
    fn apply_behaviour(
        &self,
        changes: &BehaviourChanges,
        extensions: &mut LinkExtensions,
    ) -> Result<(), LinkError> {
        changes.apply(extensions)?;
        for (field, destination) in changes.destinations(extensions) {
            self.refuse_short_domain(&field, destination)?;
            self.refuse_blocked(&field, destination)?;
        }
        Ok(())
    }

    /// Refuses a destination (at `field`) the denylist blocks.
    fn refuse_blocked(&self, field: &str, destination: &str) -> Result<(), LinkError> {
        let Some(block) = self.denylist.as_ref().and_then(|d| d.check(destination)) else {
            return Ok(());
        };
        Err(LinkError::DestinationBlocked {
            field: field.to_owned(),
            host: block.host,
            list: block.source,
            reason: block.reason,
        })
    }

    /// What blocks any destination of `link` now.
    fn verdict(&self, link: &LinkRecord) -> Option<ricochet_model::block::Block> {
        self.denylist.as_ref().and_then(|d| d.verdict(link))
    }

    /// Refuses a destination (at `field`) on one of the installation's
    /// short-link domains (any workspace's, or the default one): it would
    /// redirect to a short link, possibly itself.
    fn refuse_short_domain(&self, field: &str, destination: &str) -> Result<(), LinkError> {
        let Some(host) = validate::destination_host(destination) else {
            return Ok(());
        };
        if host == self.settings.default_domain || self.store.has_domain(&host)? {
            return Err(LinkError::PointsToShortDomain {
                field: field.to_owned(),
                domain: host,
            });
        }
        Ok(())
    }

    fn is_reserved(&self, code: &str) -> bool {
        self.settings.reserved.contains(&code.to_lowercase())
    }

    fn random_code(&self, txn: &WriteTxn<'_>, domain: &str) -> Result<String, LinkError> {
        for _ in 0..CODE_ATTEMPTS {
            let code = random_string(self.settings.code_length);
            if self.is_reserved(&code) {
                continue;
            }
            let key = LinkKey {
                domain: domain.to_owned(),
                code: code.clone(),
            };
            if txn.code_owner(&key)?.is_none() {
                return Ok(code);
            }
        }
        Err(LinkError::CodeSpaceExhausted)
    }
}

/// Stages a new link and its ownership by `workspace`.
pub(crate) fn stage_new(
    txn: &mut WriteTxn<'_>,
    workspace: &str,
    link: LinkRecord,
) -> Result<LinkRecord, StoreError> {
    txn.claim_link(workspace, link.id);
    txn.put_link(link)
}

/// Link `id` of `workspace`; another workspace's link is not found.
fn existing(txn: &WriteTxn<'_>, workspace: &str, id: u64) -> Result<LinkRecord, LinkError> {
    if txn.link_workspace(id)?.as_deref() != Some(workspace) {
        return Err(LinkError::NotFound { id });
    }
    // A page's record is edited as a page, not as a link.
    txn.link(id)?
        .filter(|link| link.extensions.page.is_none())
        .ok_or(LinkError::NotFound { id })
}
