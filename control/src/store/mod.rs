//! The control plane's source of truth in fjall. Every change to a link gets
//! the next version and is written together with the record, its code index
//! entry and its change-log entry in one atomic batch (`ControlStore::write`),
//! so the log and the records never disagree.
//!
//! Keyspaces: `links` (id → record), `codes` (domain, code → id), `changes`
//! (version → change), `domains`, `certificates`, `api_keys`, `idempotency`, `meta`, the
//! accounts' `users`, `user_emails`, `sessions`, and the workspaces' keyspaces
//! ([`workspaces`]); none of the last two groups enters the change log.
//!
//! `meta.schema` says which layout the store has: a store from before
//! workspaces (no schema) gets its links assigned to the default workspace
//! when it is opened.

mod accounts;
mod bulk;
mod certificates;
mod code_index;
mod denylist;
mod events;
mod keys;
mod links;
mod pages;
mod verification;
mod workspaces;

pub use accounts::{SessionRecord, UserRecord};
pub use bulk::DEFAULT_BULK_CHUNK;
pub use certificates::{AcmeState, CertificateRecord, CertificateSource, Revocation};
pub use denylist::DeniedHost;
pub use events::{Attempt, DeliveryRecord, DeliveryState, EndpointRecord, MAX_ATTEMPTS_KEPT};
pub use keys::ApiKeyRecord;
pub use links::{LinkFilter, LinkPage, LinkSort, MAX_EXAMINED};
pub use pages::PageRenderer;
pub use verification::{DomainVerification, VerificationMethod, VerificationStatus};
pub use workspaces::{
    DEFAULT_WORKSPACE, DomainRecord, InvitationRecord, MembershipRecord, Role, WorkspaceRecord,
};

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;

use fjall::config::PinningPolicy;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use ricochet_model::codec::{self, CodecError};
use ricochet_model::{Change, ChangeOp, LinkKey, LinkRecord};
use serde::{Deserialize, Serialize};
use thiserror::Error;

const META_VERSION: &[u8] = b"version";
const META_NEXT_ID: &[u8] = b"next_id";
const META_CLUSTER_TOKEN: &[u8] = b"cluster_token";
const META_SCHEMA: &[u8] = b"schema";
/// The layout written now: 2 added workspaces.
const SCHEMA: u64 = 2;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the control store at {path}: {source}")]
    Open { path: String, source: fjall::Error },
    #[error("control store: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("control store holds a corrupt value: {0}")]
    Corrupt(String),
}

impl From<CodecError> for StoreError {
    fn from(error: CodecError) -> Self {
        Self::Corrupt(error.to_string())
    }
}

/// A stored answer to an `Idempotency-Key` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentResponse {
    /// Fingerprint of the request body, so a reused key with another body is refused.
    pub request_hash: String,
    pub status: u16,
    pub body: String,
    pub created_at: i64,
}

struct Writer {
    version: u64,
    next_id: u64,
    /// Number of the last logged event.
    event_seq: u64,
}

/// The control plane's store.
pub struct ControlStore {
    db: Database,
    links: Keyspace,
    codes: Keyspace,
    changes: Keyspace,
    domains: Keyspace,
    /// Served certificates by domain (and `*`): [`certificates`].
    certificates: Keyspace,
    api_keys: Keyspace,
    /// Hosts blocked through the API: [`denylist`].
    denylist: Keyspace,
    idempotency: Keyspace,
    meta: Keyspace,
    accounts: accounts::AccountSpaces,
    spaces: workspaces::WorkspaceSpaces,
    /// The event log and the webhooks' records ([`events`]).
    event_spaces: events::EventSpaces,
    /// Link-in-bio pages ([`pages`]).
    page_spaces: pages::PageSpaces,
    writer: Mutex<Writer>,
    latest: AtomicU64,
    latest_event: AtomicU64,
    /// Told the latest event number after every commit that logged one.
    event_watch: tokio::sync::watch::Sender<u64>,
    /// Committed changes go here in version order, for the publisher.
    published: Mutex<Option<Sender<Change>>>,
    /// The open bulk load, if any ([`bulk`]).
    bulk: Mutex<Option<bulk::BulkStage>>,
    bulk_chunk: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for ControlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlStore")
            .field("latest_version", &self.latest_version())
            .finish_non_exhaustive()
    }
}

/// The JSON record at `key` (`what` names it in a corruption error).
fn read_json<T: serde::de::DeserializeOwned>(
    keyspace: &Keyspace,
    key: impl AsRef<[u8]>,
    what: &str,
) -> Result<Option<T>, StoreError> {
    match keyspace.get(key)? {
        Some(value) => serde_json::from_slice(&value)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))),
        None => Ok(None),
    }
}

fn read_u64(keyspace: &Keyspace, key: &[u8]) -> Result<u64, StoreError> {
    Ok(keyspace
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes)
        .unwrap_or(0))
}

impl ControlStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.display().to_string(),
            source: e.into(),
        })?;
        let db = Database::builder(dir)
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.display().to_string(),
                source,
            })?;
        let keyspace = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        // Every create looks its (domain, code) up and almost always misses:
        // with the bloom filters of every level in memory (about 1.25 bytes a
        // link), a miss reads no block, however large the store grows. By
        // default only level 0's are pinned and the others compete for the
        // block cache, so creates and imports slow down as the store grows
        // (docs/PERFORMANCE.md, "Imports"). Applies to stores created from now on.
        let codes = db.keyspace("codes", || {
            KeyspaceCreateOptions::default().filter_block_pinning_policy(PinningPolicy::all(true))
        })?;
        let meta = keyspace("meta")?;
        let store = Self {
            links: keyspace("links")?,
            codes,
            changes: keyspace("changes")?,
            domains: keyspace("domains")?,
            certificates: keyspace("certificates")?,
            api_keys: keyspace("api_keys")?,
            denylist: keyspace("denylist")?,
            idempotency: keyspace("idempotency")?,
            accounts: accounts::AccountSpaces {
                users: keyspace("users")?,
                user_emails: keyspace("user_emails")?,
                sessions: keyspace("sessions")?,
                creating: Mutex::new(()),
            },
            spaces: workspaces::WorkspaceSpaces {
                workspaces: keyspace("workspaces")?,
                memberships: keyspace("memberships")?,
                user_workspaces: keyspace("user_workspaces")?,
                invitations: keyspace("invitations")?,
                link_owners: keyspace("link_owners")?,
                workspace_links: keyspace("workspace_links")?,
                suspended: keyspace("suspended")?,
            },
            event_spaces: events::EventSpaces::open(keyspace, &meta)?,
            page_spaces: pages::PageSpaces::open(keyspace)?,
            meta,
            db,
            writer: Mutex::new(Writer {
                version: 0,
                next_id: 1,
                event_seq: 0,
            }),
            latest: AtomicU64::new(0),
            latest_event: AtomicU64::new(0),
            event_watch: tokio::sync::watch::Sender::new(0),
            published: Mutex::new(None),
            bulk: Mutex::new(None),
            bulk_chunk: bulk::DEFAULT_BULK_CHUNK.into(),
        };
        store.recover_bulk_load()?;
        let version = read_u64(&store.meta, META_VERSION)?;
        let next_id = read_u64(&store.meta, META_NEXT_ID)?.max(1);
        let event_seq = read_u64(&store.meta, events::META_EVENT_SEQ)?;
        *store.writer.lock().unwrap() = Writer {
            version,
            next_id,
            event_seq,
        };
        store.latest.store(version, Ordering::Release);
        store.latest_event.store(event_seq, Ordering::Release);
        store.event_watch.send_replace(event_seq);
        store.upgrade()?;
        let indexed = store.backfill_endpoint_due()?;
        if indexed > 0 {
            tracing::info!(
                deliveries = indexed,
                "indexed pending webhook deliveries by endpoint"
            );
        }
        Ok(store)
    }

    /// Brings an older store to the current layout.
    fn upgrade(&self) -> Result<(), StoreError> {
        let schema = read_u64(&self.meta, META_SCHEMA)?;
        if schema >= SCHEMA {
            return Ok(());
        }
        let assigned = self.backfill_link_owners()?;
        if assigned > 0 {
            tracing::info!(
                links = assigned,
                "assigned the links of a store from before workspaces to the default workspace"
            );
        }
        self.meta.insert(META_SCHEMA, SCHEMA.to_be_bytes())?;
        Ok(())
    }

    /// Sends every change committed from now on to `sender`, in version order.
    pub fn publish_to(&self, sender: Sender<Change>) {
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
    }

    /// Version of the last committed change.
    pub fn latest_version(&self) -> u64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Runs `build` with a write transaction and commits what it staged in one
    /// atomic batch. If `build` fails, nothing is written.
    pub fn write<T, E>(&self, build: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut txn = WriteTxn {
            store: self,
            batch: self.db.batch(),
            version: writer.version,
            next_id: writer.next_id,
            changes: Vec::new(),
            staged_codes: std::collections::HashMap::new(),
            staged_owners: std::collections::HashMap::new(),
            bulk: self.bulk_load_open().then(bulk::BulkStage::default),
            events: Vec::new(),
            pages_to_render: Vec::new(),
            pages_removed: Vec::new(),
            purged_links: Vec::new(),
        };
        let value = build(&mut txn)?;
        txn.render_changed_pages()?;
        let WriteTxn {
            mut batch,
            version,
            next_id,
            changes,
            bulk: staged,
            events,
            ..
        } = txn;
        batch.insert(&self.meta, META_VERSION, version.to_be_bytes());
        batch.insert(&self.meta, META_NEXT_ID, next_id.to_be_bytes());
        let event_seq = self.stage_events(&mut batch, writer.event_seq, events);
        batch.commit().map_err(StoreError::from)?;
        self.events_committed(&mut writer, event_seq);
        if let Some(staged) = staged {
            self.add_to_bulk_load(staged)?;
        }
        writer.version = version;
        writer.next_id = next_id;
        self.latest.store(version, Ordering::Release);
        if let Some(sender) = self
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            for change in changes {
                let _ = sender.send(change);
            }
        }
        Ok(value)
    }

    /// Stages `events` after number `last` in `batch`; the new last number.
    fn stage_events(
        &self,
        batch: &mut OwnedWriteBatch,
        mut last: u64,
        events: Vec<crate::events::NewEvent>,
    ) -> u64 {
        if events.is_empty() {
            return last;
        }
        let now = ricochet_model::now_millis();
        for event in events {
            last += 1;
            let record = crate::events::EventRecord {
                seq: last,
                kind: event.kind,
                workspace: event.workspace,
                created_at: now,
                subject: event.subject,
            };
            batch.insert(
                &self.event_spaces.events,
                last.to_be_bytes(),
                serde_json::to_vec(&record).expect("serializes"),
            );
        }
        batch.insert(&self.meta, events::META_EVENT_SEQ, last.to_be_bytes());
        last
    }

    /// Publishes event number `last` once its batch is committed.
    fn events_committed(&self, writer: &mut Writer, last: u64) {
        if last != writer.event_seq {
            writer.event_seq = last;
            self.latest_event.store(last, Ordering::Release);
            self.event_watch.send_replace(last);
        }
    }

    /// Logs one event on its own (no change with it); its number.
    pub fn log_event(&self, event: crate::events::NewEvent) -> Result<u64, StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = self.db.batch();
        let last = self.stage_events(&mut batch, writer.event_seq, vec![event]);
        batch.commit()?;
        self.events_committed(&mut writer, last);
        Ok(last)
    }

    /// Up to `limit` changes with versions above `after`.
    pub fn changes_after(&self, after: u64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let start = after.saturating_add(1).to_be_bytes();
        let mut out = Vec::new();
        for item in self.changes.range(start..).take(limit) {
            let (_, value) = item.into_inner()?;
            out.push(codec::decode_change(&value)?);
        }
        Ok(out)
    }

    /// The cluster token, generating and storing one on first use when
    /// `configured` is empty.
    pub fn cluster_token(&self, configured: &str) -> Result<String, StoreError> {
        if !configured.is_empty() {
            return Ok(configured.to_owned());
        }
        if let Some(token) = self.meta.get(META_CLUSTER_TOKEN)? {
            return Ok(String::from_utf8_lossy(&token).into_owned());
        }
        let token = crate::keys::random_secret();
        self.meta.insert(META_CLUSTER_TOKEN, token.as_bytes())?;
        Ok(token)
    }

    /// Registers a domain for a workspace, verified by configuration;
    /// returns false when it already existed (in any workspace).
    pub fn add_domain(
        &self,
        domain: &str,
        workspace_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.add_domain_record(domain, &DomainRecord::new(workspace_id, now))
    }

    /// Registers `domain` with `record` unless it is registered; whether it was added.
    pub fn add_domain_record(
        &self,
        domain: &str,
        record: &DomainRecord,
    ) -> Result<bool, StoreError> {
        if self.domains.contains_key(domain)? {
            return Ok(false);
        }
        self.domains
            .insert(domain, workspaces::encode_domain(record))?;
        Ok(true)
    }

    pub fn has_domain(&self, domain: &str) -> Result<bool, StoreError> {
        Ok(self.domains.contains_key(domain)?)
    }

    /// All domains with their records, by name.
    pub fn domains(&self) -> Result<Vec<(String, DomainRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.domains.iter() {
            let (key, value) = item.into_inner()?;
            out.push((
                String::from_utf8_lossy(&key).into_owned(),
                workspaces::decode_domain(&value)?,
            ));
        }
        Ok(out)
    }

    /// Whether the one-time step `name` has run (see [`Self::mark_done`]).
    pub fn is_done(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.meta.contains_key(format!("done:{name}"))?)
    }

    /// Records that the one-time step `name` has run.
    pub fn mark_done(&self, name: &str) -> Result<(), StoreError> {
        self.meta.insert(format!("done:{name}"), b"1")?;
        Ok(())
    }

    /// A stored idempotent answer.
    pub fn idempotent_response(&self, key: &str) -> Result<Option<IdempotentResponse>, StoreError> {
        match self.idempotency.get(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("idempotency record: {e}"))),
            None => Ok(None),
        }
    }

    /// Flushes to disk.
    pub fn persist(&self) -> Result<(), StoreError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

/// Changes staged for one atomic commit.
pub struct WriteTxn<'s> {
    store: &'s ControlStore,
    batch: OwnedWriteBatch,
    version: u64,
    next_id: u64,
    changes: Vec<Change>,
    /// Codes claimed in this transaction (domain, code) → id.
    staged_codes: std::collections::HashMap<LinkKey, u64>,
    /// Links given an owner in this transaction, id → workspace.
    staged_owners: std::collections::HashMap<u64, String>,
    /// During a bulk load: this transaction's link entries, added to the
    /// load when it commits.
    bulk: Option<bulk::BulkStage>,
    /// Events logged with this transaction's changes.
    events: Vec<crate::events::NewEvent>,
    /// Pages showing links this transaction changed, rendered before it
    /// commits ([`pages`]).
    pages_to_render: Vec<u64>,
    /// Pages this transaction removed.
    pages_removed: Vec<u64>,
    /// Links this transaction purged.
    purged_links: Vec<u64>,
}

impl<'s> WriteTxn<'s> {
    /// The store, for reads of what is committed.
    pub fn store(&self) -> &'s ControlStore {
        self.store
    }

    /// A new link id.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The id holding (domain, code), counting what this transaction staged.
    pub fn code_owner(&self, key: &LinkKey) -> Result<Option<u64>, StoreError> {
        if let Some(&id) = self.staged_codes.get(key) {
            return Ok(Some(id));
        }
        if self.bulk.is_some()
            && let Some(id) = self.store.bulk_code_owner(key)
        {
            return Ok(Some(id));
        }
        self.store.id_for_key(key)
    }

    /// Stages `op` as the next version of the change log.
    pub(crate) fn stage_change(&mut self, op: ChangeOp) {
        self.version += 1;
        let change = Change {
            version: self.version,
            op,
        };
        self.batch.insert(
            &self.store.changes,
            self.version.to_be_bytes(),
            codec::encode_change(&change),
        );
        self.changes.push(change);
    }

    /// The record with `id`, counting what this transaction staged.
    pub fn link(&self, id: u64) -> Result<Option<LinkRecord>, StoreError> {
        if self.purged_links.contains(&id) {
            return Ok(None);
        }
        for change in self.changes.iter().rev() {
            if let ChangeOp::Upsert { link } = &change.op
                && link.id == id
            {
                return Ok(Some(link.clone()));
            }
        }
        self.store.link(id)
    }

    /// Logs `event` with this transaction's changes.
    pub fn stage_event(&mut self, event: crate::events::NewEvent) {
        self.events.push(event);
    }

    /// Stages an upsert of `link` as the next version and returns the stored
    /// record; logs `link.created`, `link.updated` or `link.deleted` (not
    /// during a bulk load, which only fills a store without links).
    pub fn put_link(&mut self, link: LinkRecord) -> Result<LinkRecord, StoreError> {
        if self.bulk.is_some() {
            return Ok(self.write_link(link));
        }
        let previous = self.link(link.id)?;
        let workspace = self.link_workspace(link.id)?;
        let link = self.write_link(link);
        if link.extensions.page.is_none() {
            self.note_link_changed(link.id)?;
        }
        if let Some(workspace) = workspace {
            self.events.push(crate::events::NewEvent {
                kind: crate::events::link_event_kind(previous.as_ref(), &link),
                workspace,
                subject: crate::events::Subject::of_link(previous.is_none(), &link),
            });
        }
        Ok(link)
    }

    fn write_link(&mut self, mut link: LinkRecord) -> LinkRecord {
        self.version += 1;
        link.version = self.version;
        let key = link.key();
        if let Some(bulk) = &mut self.bulk {
            let change = Change {
                version: self.version,
                op: ChangeOp::Upsert { link: link.clone() },
            };
            bulk.put_link(&link, &change);
            self.staged_codes.insert(key, link.id);
            self.changes.push(change);
            return link;
        }
        self.batch.insert(
            &self.store.links,
            link.id.to_be_bytes(),
            codec::encode_record(&link),
        );
        self.batch
            .insert(&self.store.codes, key.storage_key(), link.id.to_be_bytes());
        let change = Change {
            version: self.version,
            op: ChangeOp::Upsert { link: link.clone() },
        };
        self.batch.insert(
            &self.store.changes,
            self.version.to_be_bytes(),
            codec::encode_change(&change),
        );
        self.staged_codes.insert(key, link.id);
        self.changes.push(change);
        link
    }

    /// Stages an idempotent answer, written with the change it answers.
    pub fn put_idempotent_response(&mut self, key: &str, response: &IdempotentResponse) {
        self.batch.insert(
            &self.store.idempotency,
            key,
            serde_json::to_vec(response).expect("serializes"),
        );
    }
}
