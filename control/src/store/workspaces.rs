//! Stored workspaces, memberships, invitations, and which workspace owns each
//! link and domain. Like users and sessions they never enter the change log:
//! engines serve links by (domain, code) and need not know who owns them.
//! A domain's settings do: `put_domain_settings` stages them as a change.
//!
//! Keyspaces: `workspaces` (id → workspace), `memberships` (workspace, user →
//! membership), `user_workspaces` (user, workspace → nothing; the reverse
//! index), `invitations` (id → invitation), `link_owners` (link id →
//! workspace), `workspace_links` (workspace, link id → nothing; listings),
//! `suspended` (workspace, link id → the state a link had before its
//! workspace was deleted). Records are serde JSON wrapped in a version tag.
//! Two-part keys join the parts with a 0 byte (ids never contain one).

use fjall::Keyspace;
use ricochet_model::domain::Hsts;
use ricochet_model::{Change, ChangeOp, DomainSettings, LinkRecord, LinkState, RedirectStatus};
use serde::{Deserialize, Serialize};

use super::verification::DomainVerification;
use super::{ControlStore, StoreError, WriteTxn};

/// The workspace that owns everything written before workspaces existed,
/// and the first owner's workspace on a new installation.
pub const DEFAULT_WORKSPACE: &str = "default";

/// What a member may do, from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads links, domains and analytics.
    Viewer,
    /// Also creates and edits links and domains.
    Member,
    /// Also manages members, invitations and API keys, and renames the workspace.
    Admin,
    /// Also manages owners, and deletes or restores the workspace.
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// A team's space: it owns links, domains, API keys and their analytics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceRecord {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// Soft deletion: restorable until `deleted_at` plus the retention.
    pub deleted_at: Option<i64>,
}

/// A user's role in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub workspace_id: String,
    pub user_id: String,
    pub role: Role,
    pub joined_at: i64,
}

/// An invitation to join a workspace, accepted once with its token
/// `inv_<id>_<secret>`; only the SHA-256 of the secret is kept. Its `Debug`
/// leaves the hash out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationRecord {
    pub id: String,
    pub workspace_id: String,
    /// Only this (normalized) address may accept.
    pub email: String,
    pub role: Role,
    pub secret_hash: String,
    /// The user who invited, or `None` for an API key.
    pub invited_by: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

impl std::fmt::Debug for InvitationRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvitationRecord")
            .field("id", &self.id)
            .field("workspace_id", &self.workspace_id)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// A registered domain and its settings (fields added later default, so
/// records written before them read as a domain without settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainRecord {
    pub workspace_id: String,
    pub created_at: i64,
    /// Where `/` goes; `None`: the engine's 404 page.
    #[serde(default)]
    pub root_url: Option<String>,
    /// Where unknown codes go; `None`: the engine's 404 page.
    #[serde(default)]
    pub not_found_url: Option<String>,
    /// Status of links created on the domain without one.
    #[serde(default)]
    pub default_status: RedirectStatus,
    /// Last change of the settings; 0 when they were never set.
    #[serde(default)]
    pub updated_at: i64,
    /// Plain HTTP requests are sent to HTTPS (308).
    #[serde(default)]
    pub https_redirect: bool,
    /// The HSTS policy of HTTPS answers.
    #[serde(default)]
    pub hsts: Option<Hsts>,
    /// Its proof of ownership; records from before verification read as
    /// verified.
    #[serde(default)]
    pub verification: DomainVerification,
    /// The handle of the page served at `/` (a domain dedicated to it).
    #[serde(default)]
    pub root_page: Option<String>,
}

impl DomainRecord {
    /// A domain registered by `workspace_id` at `created_at`, without
    /// settings, verified by configuration (the default domain, tests).
    pub fn new(workspace_id: &str, created_at: i64) -> Self {
        Self {
            workspace_id: workspace_id.to_owned(),
            created_at,
            root_url: None,
            not_found_url: None,
            default_status: RedirectStatus::default(),
            updated_at: 0,
            https_redirect: false,
            hsts: None,
            root_page: None,
            verification: DomainVerification::verified_by(
                super::verification::VerificationMethod::Configuration,
                created_at,
            ),
        }
    }

    /// The settings engines get for the domain `name`.
    pub fn settings(&self, name: &str) -> DomainSettings {
        DomainSettings {
            domain: name.to_owned(),
            root_url: self.root_url.clone(),
            not_found_url: self.not_found_url.clone(),
            default_status: self.default_status,
            updated_at: self.updated_at,
            https_redirect: self.https_redirect,
            hsts: self.hsts,
            root_page: self.root_page.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum Stored<T> {
    #[serde(rename = "v1")]
    V1(T),
}

fn encode<T: Serialize + Clone>(record: &T) -> Vec<u8> {
    serde_json::to_vec(&Stored::V1(record.clone())).expect("serializes")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T, StoreError> {
    match serde_json::from_slice(bytes) {
        Ok(Stored::V1(record)) => Ok(record),
        Err(e) => Err(StoreError::Corrupt(format!("{what} record: {e}"))),
    }
}

/// `a`, a 0 byte, `b`.
pub(super) fn pair(a: &str, b: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(a.len() + 1 + b.len());
    key.extend_from_slice(a.as_bytes());
    key.push(0);
    key.extend_from_slice(b);
    key
}

/// `a` and a 0 byte: the prefix of every [`pair`] starting with `a`.
pub(super) fn prefix(a: &str) -> Vec<u8> {
    pair(a, b"")
}

/// Decodes a stored domain: a JSON record, or (written before workspaces)
/// the 8-byte creation time of a domain of the default workspace.
pub(super) fn decode_domain(bytes: &[u8]) -> Result<DomainRecord, StoreError> {
    match <[u8; 8]>::try_from(bytes) {
        Ok(created) => Ok(DomainRecord {
            verification: DomainVerification::existing(),
            ..DomainRecord::new(DEFAULT_WORKSPACE, i64::from_be_bytes(created))
        }),
        Err(_) => decode(bytes, "domain"),
    }
}

pub(super) fn encode_domain(record: &DomainRecord) -> Vec<u8> {
    encode(record)
}

fn state_byte(state: LinkState) -> u8 {
    match state {
        LinkState::Active => 0,
        LinkState::Disabled => 1,
        LinkState::Deleted => 2,
    }
}

fn byte_state(byte: u8) -> LinkState {
    match byte {
        0 => LinkState::Active,
        1 => LinkState::Disabled,
        _ => LinkState::Deleted,
    }
}

fn link_id(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}

/// The workspace keyspaces, opened with the store.
pub(super) struct WorkspaceSpaces {
    pub workspaces: Keyspace,
    pub memberships: Keyspace,
    pub user_workspaces: Keyspace,
    pub invitations: Keyspace,
    pub link_owners: Keyspace,
    pub workspace_links: Keyspace,
    pub suspended: Keyspace,
}

impl ControlStore {
    /// Stores (or replaces) a workspace.
    pub fn put_workspace(&self, workspace: &WorkspaceRecord) -> Result<(), StoreError> {
        self.spaces
            .workspaces
            .insert(workspace.id.as_bytes(), encode(workspace))?;
        Ok(())
    }

    /// Stores a new workspace and its first owner in one batch.
    pub fn create_workspace(
        &self,
        workspace: &WorkspaceRecord,
        owner: &MembershipRecord,
    ) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        batch.insert(
            &self.spaces.workspaces,
            workspace.id.as_bytes(),
            encode(workspace),
        );
        self.stage_membership(&mut batch, owner);
        batch.commit()?;
        Ok(())
    }

    pub fn workspace(&self, id: &str) -> Result<Option<WorkspaceRecord>, StoreError> {
        self.spaces
            .workspaces
            .get(id.as_bytes())?
            .map(|bytes| decode(&bytes, "workspace"))
            .transpose()
    }

    /// Every workspace, deleted ones included.
    pub fn all_workspaces(&self) -> Result<Vec<WorkspaceRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.spaces.workspaces.iter() {
            let (_, value) = item.into_inner()?;
            out.push(decode(&value, "workspace")?);
        }
        Ok(out)
    }

    fn stage_membership(&self, batch: &mut fjall::OwnedWriteBatch, member: &MembershipRecord) {
        batch.insert(
            &self.spaces.memberships,
            pair(&member.workspace_id, member.user_id.as_bytes()),
            encode(member),
        );
        batch.insert(
            &self.spaces.user_workspaces,
            pair(&member.user_id, member.workspace_id.as_bytes()),
            b"",
        );
    }

    /// Adds or replaces a membership.
    pub fn put_membership(&self, member: &MembershipRecord) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        self.stage_membership(&mut batch, member);
        batch.commit()?;
        Ok(())
    }

    /// Adds a membership and marks an invitation accepted, in one batch.
    pub fn accept_invitation(
        &self,
        member: &MembershipRecord,
        invitation: &InvitationRecord,
    ) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        self.stage_membership(&mut batch, member);
        batch.insert(
            &self.spaces.invitations,
            invitation.id.as_bytes(),
            encode(invitation),
        );
        batch.commit()?;
        Ok(())
    }

    pub fn remove_membership(&self, workspace_id: &str, user_id: &str) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        batch.remove(
            &self.spaces.memberships,
            pair(workspace_id, user_id.as_bytes()),
        );
        batch.remove(
            &self.spaces.user_workspaces,
            pair(user_id, workspace_id.as_bytes()),
        );
        batch.commit()?;
        Ok(())
    }

    pub fn membership(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Option<MembershipRecord>, StoreError> {
        self.spaces
            .memberships
            .get(pair(workspace_id, user_id.as_bytes()))?
            .map(|bytes| decode(&bytes, "membership"))
            .transpose()
    }

    /// The members of a workspace.
    pub fn members_of(&self, workspace_id: &str) -> Result<Vec<MembershipRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.spaces.memberships.prefix(prefix(workspace_id)) {
            let (_, value) = item.into_inner()?;
            out.push(decode(&value, "membership")?);
        }
        Ok(out)
    }

    /// The ids of the workspaces `user_id` belongs to.
    pub fn workspaces_of(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let start = prefix(user_id);
        let mut out = Vec::new();
        for item in self.spaces.user_workspaces.prefix(&start) {
            let key = item.key()?;
            out.push(String::from_utf8_lossy(&key[start.len()..]).into_owned());
        }
        Ok(out)
    }

    pub fn put_invitation(&self, invitation: &InvitationRecord) -> Result<(), StoreError> {
        self.spaces
            .invitations
            .insert(invitation.id.as_bytes(), encode(invitation))?;
        Ok(())
    }

    pub fn invitation(&self, id: &str) -> Result<Option<InvitationRecord>, StoreError> {
        self.spaces
            .invitations
            .get(id.as_bytes())?
            .map(|bytes| decode(&bytes, "invitation"))
            .transpose()
    }

    pub fn delete_invitation(&self, id: &str) -> Result<(), StoreError> {
        self.spaces.invitations.remove(id.as_bytes())?;
        Ok(())
    }

    /// Every invitation of a workspace, accepted and expired ones included.
    pub fn invitations_of(&self, workspace_id: &str) -> Result<Vec<InvitationRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.spaces.invitations.iter() {
            let (_, value) = item.into_inner()?;
            let invitation: InvitationRecord = decode(&value, "invitation")?;
            if invitation.workspace_id == workspace_id {
                out.push(invitation);
            }
        }
        Ok(out)
    }

    /// The workspace owning link `id`.
    pub fn link_workspace(&self, id: u64) -> Result<Option<String>, StoreError> {
        Ok(self
            .spaces
            .link_owners
            .get(id.to_be_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Ids of the links of a workspace, in id order, after `after`.
    pub(super) fn workspace_link_ids(
        &self,
        workspace_id: &str,
        after: Option<u64>,
        newest_first: bool,
    ) -> Box<dyn Iterator<Item = Result<u64, StoreError>> + '_> {
        let start = prefix(workspace_id);
        let bound = |id: u64| pair(workspace_id, &id.to_be_bytes());
        let strip = move |item: fjall::Guard| -> Result<u64, StoreError> {
            let key = item.key()?;
            link_id(&key[key.len().saturating_sub(8)..])
                .ok_or_else(|| StoreError::Corrupt("workspace link index".into()))
        };
        let links = &self.spaces.workspace_links;
        let mut end = workspace_id.as_bytes().to_vec();
        end.push(1);
        match (newest_first, after) {
            (false, None) => Box::new(links.prefix(start).map(strip)),
            (false, Some(id)) => match id.checked_add(1) {
                Some(next) => Box::new(links.range(bound(next)..end).map(strip)),
                None => Box::new(std::iter::empty()),
            },
            (true, None) => Box::new(links.prefix(start).rev().map(strip)),
            (true, Some(id)) => Box::new(links.range(start..bound(id)).rev().map(strip)),
        }
    }

    /// Up to `limit` link ids of a workspace after `after`, in id order.
    pub fn workspace_links_after(
        &self,
        workspace_id: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.workspace_link_ids(workspace_id, after, false)
            .take(limit)
            .collect()
    }

    /// The workspace and creation time of a registered domain.
    pub fn domain(&self, domain: &str) -> Result<Option<DomainRecord>, StoreError> {
        self.domains
            .get(domain)?
            .map(|bytes| decode_domain(&bytes))
            .transpose()
    }

    /// Links of a workspace suspended by its deletion, with their earlier states.
    pub fn suspended_links(
        &self,
        workspace_id: &str,
        limit: usize,
    ) -> Result<Vec<(u64, LinkState)>, StoreError> {
        let start = prefix(workspace_id);
        let mut out = Vec::new();
        for item in self.spaces.suspended.prefix(&start).take(limit) {
            let (key, value) = item.into_inner()?;
            if let Some(id) = link_id(&key[start.len()..]) {
                out.push((id, byte_state(value.first().copied().unwrap_or(2))));
            }
        }
        Ok(out)
    }

    /// Whether link `id` of `workspace_id` is suspended.
    pub fn is_suspended(&self, workspace_id: &str, id: u64) -> Result<bool, StoreError> {
        Ok(self
            .spaces
            .suspended
            .contains_key(pair(workspace_id, &id.to_be_bytes()))?)
    }

    /// Deletes a workspace's record, memberships and invitations (its links,
    /// domains and keys go first, through [`WriteTxn`] and the key store).
    pub fn purge_workspace_records(&self, workspace_id: &str) -> Result<(), StoreError> {
        let mut batch = self.db.batch();
        for member in self.members_of(workspace_id)? {
            batch.remove(
                &self.spaces.memberships,
                pair(workspace_id, member.user_id.as_bytes()),
            );
            batch.remove(
                &self.spaces.user_workspaces,
                pair(&member.user_id, workspace_id.as_bytes()),
            );
        }
        for invitation in self.invitations_of(workspace_id)? {
            batch.remove(&self.spaces.invitations, invitation.id.as_bytes());
        }
        batch.remove(&self.spaces.workspaces, workspace_id.as_bytes());
        batch.commit()?;
        Ok(())
    }

    /// Up to `limit` ids of the links on `domain` (any state), in code order.
    pub fn domain_link_ids(&self, domain: &str, limit: usize) -> Result<Vec<u64>, StoreError> {
        let mut start = domain.as_bytes().to_vec();
        start.push(0);
        let mut out = Vec::new();
        for item in self.codes.prefix(&start).take(limit) {
            let value = item.value()?;
            if let Ok(bytes) = <[u8; 8]>::try_from(&value[..]) {
                out.push(u64::from_be_bytes(bytes));
            }
        }
        Ok(out)
    }

    /// Writes the owner entries of links written before workspaces existed:
    /// they all belong to [`DEFAULT_WORKSPACE`]. Runs once, in batches, when
    /// an older store is opened.
    pub(super) fn backfill_link_owners(&self) -> Result<u64, StoreError> {
        const BATCH: usize = 10_000;
        let mut done = 0u64;
        let mut batch = self.db.batch();
        let mut staged = 0;
        for item in self.links.iter() {
            let key = item.key()?;
            if self.spaces.link_owners.contains_key(&key)? {
                continue;
            }
            batch.insert(&self.spaces.link_owners, key.clone(), DEFAULT_WORKSPACE);
            batch.insert(
                &self.spaces.workspace_links,
                pair(DEFAULT_WORKSPACE, &key),
                b"",
            );
            staged += 1;
            done += 1;
            if staged == BATCH {
                std::mem::replace(&mut batch, self.db.batch()).commit()?;
                staged = 0;
                if done.is_multiple_of(1_000_000) {
                    tracing::info!(links = done, "assigning links to the default workspace");
                }
            }
        }
        batch.commit()?;
        Ok(done)
    }
}

impl WriteTxn<'_> {
    /// Stages the ownership of a new link.
    pub fn claim_link(&mut self, workspace_id: &str, id: u64) {
        self.staged_owners.insert(id, workspace_id.to_owned());
        if let Some(bulk) = &mut self.bulk {
            bulk.claim_link(workspace_id, id);
            return;
        }
        let spaces = &self.store.spaces;
        self.batch
            .insert(&spaces.link_owners, id.to_be_bytes(), workspace_id);
        self.batch.insert(
            &spaces.workspace_links,
            pair(workspace_id, &id.to_be_bytes()),
            b"",
        );
    }

    /// The workspace owning link `id`, counting what this transaction staged.
    pub fn link_workspace(&self, id: u64) -> Result<Option<String>, StoreError> {
        if let Some(workspace) = self.staged_owners.get(&id) {
            return Ok(Some(workspace.clone()));
        }
        self.store.link_workspace(id)
    }

    /// Stages the removal of an ownership entry whose link is gone.
    pub fn drop_owner(&mut self, workspace_id: &str, id: u64) {
        let spaces = &self.store.spaces;
        self.batch.remove(&spaces.link_owners, id.to_be_bytes());
        self.batch.remove(
            &spaces.workspace_links,
            pair(workspace_id, &id.to_be_bytes()),
        );
    }

    /// Stages a domain registration.
    pub fn put_domain(&mut self, domain: &str, record: &DomainRecord) {
        self.batch
            .insert(&self.store.domains, domain, encode_domain(record));
    }

    /// Stages the removal of a domain: its record (and so its verification),
    /// its certificate and ACME order state go, engines get empty settings
    /// and the certificate's removal, and a certificate the ACME authority
    /// issued is queued for revocation. Its links must be gone first.
    pub fn remove_domain(&mut self, domain: &str, now: i64) -> Result<(), StoreError> {
        self.batch.remove(&self.store.domains, domain);
        if let Some(certificate) = self.store.certificate(domain)? {
            if certificate.source == super::CertificateSource::Acme
                && !certificate.serial.is_empty()
                && certificate.not_after > now
            {
                self.put_revocation(
                    &super::Revocation {
                        domain: domain.to_owned(),
                        serial: certificate.serial.clone(),
                        certificate: certificate.chain.clone(),
                        not_after: certificate.not_after,
                        failures: 0,
                        last_error: None,
                        next_attempt_at: None,
                    },
                    false,
                );
            }
            self.put_certificate(domain, None);
        }
        self.put_acme_state(domain, &super::AcmeState::default());
        let mut settings = DomainSettings::empty(domain);
        settings.updated_at = now;
        self.stage_change(ChangeOp::Domain { settings });
        Ok(())
    }

    /// Stages a domain's record with new settings, and the change that
    /// carries the settings to engines.
    pub fn put_domain_settings(&mut self, domain: &str, record: &DomainRecord) {
        self.put_domain(domain, record);
        self.stage_change(ChangeOp::Domain {
            settings: record.settings(domain),
        });
    }

    /// Stages the suspension of a link by its workspace's deletion.
    pub fn suspend(&mut self, workspace_id: &str, id: u64, before: LinkState) {
        self.batch.insert(
            &self.store.spaces.suspended,
            pair(workspace_id, &id.to_be_bytes()),
            [state_byte(before)],
        );
    }

    /// Stages the end of a link's suspension.
    pub fn unsuspend(&mut self, workspace_id: &str, id: u64) {
        self.batch.remove(
            &self.store.spaces.suspended,
            pair(workspace_id, &id.to_be_bytes()),
        );
    }

    /// Stages the removal of a link for good: its record, code, ownership and
    /// suspension go, and engines get a purge change.
    pub fn purge_link(&mut self, workspace_id: &str, link: &LinkRecord) -> Result<(), StoreError> {
        if link.extensions.page.is_some() {
            if let Some(page) = self.store.page(link.id)? {
                self.remove_page(&page);
            }
            self.stage_event(crate::events::NewEvent {
                kind: crate::events::EventKind::PageUpdated,
                workspace: workspace_id.to_owned(),
                subject: crate::events::Subject::Page {
                    page_id: link.id,
                    domain: link.domain.clone(),
                    handle: link.code.clone(),
                    change: crate::events::PageChange::Deleted,
                },
            });
        } else {
            self.note_link_changed(link.id)?;
            if link.state != LinkState::Deleted {
                let mut gone = link.clone();
                gone.state = LinkState::Deleted;
                self.stage_event(crate::events::NewEvent {
                    kind: crate::events::EventKind::LinkDeleted,
                    workspace: workspace_id.to_owned(),
                    subject: crate::events::Subject::Link {
                        link: Box::new(gone),
                    },
                });
            }
        }
        let store = self.store;
        let id = link.id.to_be_bytes();
        self.batch.remove(&store.links, id);
        self.batch.remove(&store.codes, link.key().storage_key());
        self.batch.remove(&store.spaces.link_owners, id);
        self.batch
            .remove(&store.spaces.workspace_links, pair(workspace_id, &id));
        self.batch
            .remove(&store.spaces.suspended, pair(workspace_id, &id));
        self.version += 1;
        let change = Change {
            version: self.version,
            op: ChangeOp::Purge { key: link.key() },
        };
        self.batch.insert(
            &store.changes,
            self.version.to_be_bytes(),
            ricochet_model::codec::encode_change(&change),
        );
        self.staged_codes.remove(&link.key());
        self.changes.push(change);
        self.purged_links.push(link.id);
        Ok(())
    }
}
