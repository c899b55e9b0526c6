//! Workspaces: teams that own links, domains, API keys and their analytics.
//! Users belong to workspaces with a [`Role`]; owners and admins invite people
//! by a link that works once before it expires, change roles and remove
//! members. Deleting a workspace is soft: its links stop answering at once
//! (engines get them as deleted) and come back as they were if it is restored
//! within the retention (30 days by default); after that a sweep purges the
//! workspace, its links (engines get purge changes), domains and keys.
//!
//! Like [`crate::accounts`] it works on the store and knows nothing of HTTP.
//! - [`error`]: why an operation was refused ([`WorkspaceError`]).

pub mod error;

use std::sync::{Arc, Mutex};

use ricochet_model::LinkState;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use error::WorkspaceError;

use crate::accounts::{Accounts, email};
use crate::keys::{Scope, random_secret, random_string};
use crate::store::{
    ControlStore, DEFAULT_WORKSPACE, InvitationRecord, MembershipRecord, Role, StoreError,
    UserRecord, WorkspaceRecord,
};

/// Longest workspace name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Links suspended, restored or purged per store transaction.
const CHUNK: usize = 1000;
const DAY_MS: i64 = 86_400_000;

/// What a role may do, as the scopes an API key would need.
pub fn role_allows(role: Role, scope: Scope) -> bool {
    match scope {
        Scope::LinksRead | Scope::AnalyticsRead => true,
        Scope::LinksWrite | Scope::DomainsWrite => role >= Role::Member,
        Scope::Admin => role >= Role::Admin,
    }
}

/// Who acts on a workspace: a member with their role, or an API key with the
/// admin scope (which acts as an admin, never as an owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<String>,
    pub role: Role,
}

/// How long invitations and deleted workspaces last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkspaceSettings {
    pub invitation_ttl_ms: i64,
    pub deletion_retention_ms: i64,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            invitation_ttl_ms: 7 * DAY_MS,
            deletion_retention_ms: 30 * DAY_MS,
        }
    }
}

/// An invitation just created: `token` is shown once and never stored.
#[derive(Clone)]
pub struct IssuedInvitation {
    pub token: String,
    pub invitation: InvitationRecord,
}

impl std::fmt::Debug for IssuedInvitation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedInvitation")
            .field("invitation", &self.invitation)
            .finish_non_exhaustive()
    }
}

/// A member with their user record.
#[derive(Debug, Clone)]
pub struct Member {
    pub membership: MembershipRecord,
    pub user: UserRecord,
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `inv_<id>_<secret>`.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("inv_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 16 && secret.len() == 40).then_some((id, secret))
}

fn check_name(name: &str) -> Result<String, WorkspaceError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(WorkspaceError::InvalidName(
            "a workspace name has 1 to 100 characters and no control characters",
        ));
    }
    Ok(name.to_owned())
}

/// Workspaces, members and invitations over the control store.
#[derive(Debug, Clone)]
pub struct Workspaces {
    store: Arc<ControlStore>,
    settings: WorkspaceSettings,
    /// Serializes changes to memberships, so two accepts of one invitation
    /// or two demotions of the last owners cannot both pass their checks.
    members: Arc<Mutex<()>>,
}

impl Workspaces {
    pub fn new(store: Arc<ControlStore>, settings: WorkspaceSettings) -> Self {
        Self {
            store,
            settings,
            members: Arc::default(),
        }
    }

    pub fn settings(&self) -> WorkspaceSettings {
        self.settings
    }

    /// Creates a workspace with `owner` as its first owner.
    pub fn create(
        &self,
        owner: &str,
        name: &str,
        now: i64,
    ) -> Result<WorkspaceRecord, WorkspaceError> {
        self.create_with_id(&random_string(12), owner, name, now)
    }

    fn create_with_id(
        &self,
        id: &str,
        owner: &str,
        name: &str,
        now: i64,
    ) -> Result<WorkspaceRecord, WorkspaceError> {
        let workspace = WorkspaceRecord {
            id: id.to_owned(),
            name: check_name(name)?,
            created_at: now,
            deleted_at: None,
        };
        let membership = MembershipRecord {
            workspace_id: workspace.id.clone(),
            user_id: owner.to_owned(),
            role: Role::Owner,
            joined_at: now,
        };
        self.store.create_workspace(&workspace, &membership)?;
        Ok(workspace)
    }

    /// Creates the default workspace, owned by the first user, once: on a new
    /// installation, and on the first start of a store written before
    /// workspaces (whose links, domains and keys already belong to it).
    pub fn ensure_default(&self, now: i64) -> Result<Option<WorkspaceRecord>, WorkspaceError> {
        const STEP: &str = "default_workspace";
        if self.store.is_done(STEP)? {
            return Ok(None);
        }
        let Some(owner) = self.store.first_user()? else {
            return Ok(None);
        };
        let created = match self.store.workspace(DEFAULT_WORKSPACE)? {
            Some(_) => None,
            None => Some(self.create_with_id(DEFAULT_WORKSPACE, &owner.id, "Default", now)?),
        };
        self.store.mark_done(STEP)?;
        Ok(created)
    }

    /// A live (not deleted) workspace.
    pub fn live(&self, id: &str) -> Result<Option<WorkspaceRecord>, StoreError> {
        Ok(self.store.workspace(id)?.filter(|w| w.deleted_at.is_none()))
    }

    /// The role of `user_id` in live workspace `workspace_id`, if a member.
    pub fn role_of(&self, workspace_id: &str, user_id: &str) -> Result<Option<Role>, StoreError> {
        if self.live(workspace_id)?.is_none() {
            return Ok(None);
        }
        Ok(self
            .store
            .membership(workspace_id, user_id)?
            .map(|m| m.role))
    }

    /// The workspace a session acts in: the one it switched to, or else the
    /// user's first live one (oldest membership). `None` when they have none.
    pub fn first_of(&self, user_id: &str) -> Result<Option<(WorkspaceRecord, Role)>, StoreError> {
        let mut best: Option<(WorkspaceRecord, MembershipRecord)> = None;
        for id in self.store.workspaces_of(user_id)? {
            let (Some(workspace), Some(member)) =
                (self.live(&id)?, self.store.membership(&id, user_id)?)
            else {
                continue;
            };
            if best.as_ref().is_none_or(|(_, b)| {
                (member.joined_at, &member.workspace_id) < (b.joined_at, &b.workspace_id)
            }) {
                best = Some((workspace, member));
            }
        }
        Ok(best.map(|(w, m)| (w, m.role)))
    }

    /// The workspaces of a user with their roles, oldest membership first:
    /// live ones, and deleted ones they own (so they can restore them).
    pub fn list_for(&self, user_id: &str) -> Result<Vec<(WorkspaceRecord, Role)>, StoreError> {
        let mut out = Vec::new();
        for id in self.store.workspaces_of(user_id)? {
            let (Some(workspace), Some(member)) = (
                self.store.workspace(&id)?,
                self.store.membership(&id, user_id)?,
            ) else {
                continue;
            };
            if workspace.deleted_at.is_none() || member.role == Role::Owner {
                out.push((workspace, member.role, member.joined_at));
            }
        }
        out.sort_by(|a, b| (a.2, &a.0.id).cmp(&(b.2, &b.0.id)));
        Ok(out.into_iter().map(|(w, r, _)| (w, r)).collect())
    }

    /// Renames a workspace (admins and owners).
    pub fn rename(
        &self,
        actor: &Actor,
        workspace_id: &str,
        name: &str,
    ) -> Result<WorkspaceRecord, WorkspaceError> {
        require(
            actor,
            Role::Admin,
            "only admins and owners rename a workspace",
        )?;
        let mut workspace = self
            .live(workspace_id)?
            .ok_or_else(|| not_found(workspace_id))?;
        workspace.name = check_name(name)?;
        self.store.put_workspace(&workspace)?;
        Ok(workspace)
    }

    /// Deletes a workspace softly (owners): it disappears from its members'
    /// requests, its keys stop, and its links answer 410 until it is restored.
    /// Deleting it again finishes a deletion a crash interrupted.
    pub fn delete(
        &self,
        actor: &Actor,
        workspace_id: &str,
        now: i64,
    ) -> Result<WorkspaceRecord, WorkspaceError> {
        require(actor, Role::Owner, "only owners delete a workspace")?;
        let mut workspace = self
            .store
            .workspace(workspace_id)?
            .ok_or_else(|| not_found(workspace_id))?;
        if workspace.deleted_at.is_none() {
            workspace.deleted_at = Some(now);
            self.store.put_workspace(&workspace)?;
        }
        self.suspend_links(workspace_id, now)?;
        Ok(workspace)
    }

    /// Marks every link of a deleted workspace deleted, remembering its state.
    fn suspend_links(&self, workspace_id: &str, now: i64) -> Result<(), WorkspaceError> {
        let mut after = None;
        loop {
            let ids: Vec<u64> = self
                .store
                .workspace_links_after(workspace_id, after, CHUNK)?;
            let Some(&last) = ids.last() else {
                return Ok(());
            };
            after = Some(last);
            self.store.write(|txn| {
                for &id in &ids {
                    let Some(mut link) = txn.link(id)? else {
                        continue;
                    };
                    if link.state == LinkState::Deleted
                        || self.store.is_suspended(workspace_id, id)?
                    {
                        continue;
                    }
                    txn.suspend(workspace_id, id, link.state);
                    link.state = LinkState::Deleted;
                    link.updated_at = now;
                    txn.put_link(link)?;
                }
                Ok::<_, WorkspaceError>(())
            })?;
        }
    }

    /// Restores a deleted workspace within the retention (owners): its links
    /// get back the states they had.
    pub fn restore(
        &self,
        actor: &Actor,
        workspace_id: &str,
        now: i64,
    ) -> Result<WorkspaceRecord, WorkspaceError> {
        require(actor, Role::Owner, "only owners restore a workspace")?;
        let mut workspace = self
            .store
            .workspace(workspace_id)?
            .ok_or_else(|| not_found(workspace_id))?;
        let Some(deleted_at) = workspace.deleted_at else {
            return Err(WorkspaceError::NotDeleted);
        };
        if deleted_at.saturating_add(self.settings.deletion_retention_ms) <= now {
            return Err(WorkspaceError::RestoreWindowOver {
                days: self.settings.deletion_retention_ms / DAY_MS,
            });
        }
        loop {
            let suspended = self.store.suspended_links(workspace_id, CHUNK)?;
            if suspended.is_empty() {
                break;
            }
            self.store.write(|txn| {
                for &(id, before) in &suspended {
                    if let Some(mut link) = txn.link(id)?
                        && link.state == LinkState::Deleted
                    {
                        link.state = before;
                        link.updated_at = now;
                        txn.put_link(link)?;
                    }
                    txn.unsuspend(workspace_id, id);
                }
                Ok::<_, WorkspaceError>(())
            })?;
        }
        workspace.deleted_at = None;
        self.store.put_workspace(&workspace)?;
        Ok(workspace)
    }

    /// Finishes what a crash may have interrupted (suspending the links of
    /// deleted workspaces) and purges workspaces deleted longer ago than the
    /// retention. Returns the ids purged.
    pub fn sweep(&self, now: i64) -> Result<Vec<String>, WorkspaceError> {
        let mut purged = Vec::new();
        for workspace in self.store.all_workspaces()? {
            let Some(deleted_at) = workspace.deleted_at else {
                continue;
            };
            if deleted_at.saturating_add(self.settings.deletion_retention_ms) > now {
                self.suspend_links(&workspace.id, now)?;
                continue;
            }
            self.purge(&workspace.id, now)?;
            purged.push(workspace.id);
        }
        Ok(purged)
    }

    /// Removes a workspace for good: links (engines get purge changes),
    /// domains (their certificates withdrawn, ACME ones revoked), keys, invitations, memberships, then the workspace.
    fn purge(&self, workspace_id: &str, now: i64) -> Result<(), WorkspaceError> {
        loop {
            let ids = self
                .store
                .workspace_links_after(workspace_id, None, CHUNK)?;
            if ids.is_empty() {
                break;
            }
            self.store.write(|txn| {
                for &id in &ids {
                    match txn.link(id)? {
                        Some(link) => txn.purge_link(workspace_id, &link)?,
                        None => txn.drop_owner(workspace_id, id),
                    }
                }
                Ok::<_, WorkspaceError>(())
            })?;
        }
        for (domain, record) in self.store.domains()? {
            if record.workspace_id == workspace_id {
                self.store.write(|txn| txn.remove_domain(&domain, now))?;
            }
        }
        for key in self.store.api_keys()? {
            if key.workspace_id == workspace_id {
                self.store.delete_api_key(&key.id)?;
            }
        }
        self.store.purge_workspace_records(workspace_id)?;
        tracing::info!(workspace = workspace_id, "purged a deleted workspace");
        Ok(())
    }

    /// The members of a workspace with their users, oldest first.
    pub fn members(&self, workspace_id: &str) -> Result<Vec<Member>, StoreError> {
        let mut out = Vec::new();
        for membership in self.store.members_of(workspace_id)? {
            if let Some(user) = self.store.user(&membership.user_id)? {
                out.push(Member { membership, user });
            }
        }
        out.sort_by(|a, b| {
            (a.membership.joined_at, &a.user.id).cmp(&(b.membership.joined_at, &b.user.id))
        });
        Ok(out)
    }

    /// Changes a member's role. Admins manage admins, members and viewers;
    /// only owners make or unmake owners; the last owner stays an owner.
    pub fn change_role(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Member, WorkspaceError> {
        require(actor, Role::Admin, "only admins and owners change roles")?;
        let _members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        let mut membership = self
            .store
            .membership(workspace_id, user_id)?
            .ok_or_else(|| WorkspaceError::MemberNotFound {
                id: user_id.to_owned(),
            })?;
        if (membership.role == Role::Owner || role == Role::Owner) && actor.role != Role::Owner {
            return Err(WorkspaceError::Forbidden(
                "only owners make or unmake owners",
            ));
        }
        if membership.role == Role::Owner && role != Role::Owner {
            self.keep_an_owner(workspace_id, user_id)?;
        }
        membership.role = role;
        self.store.put_membership(&membership)?;
        let user = self
            .store
            .user(user_id)?
            .ok_or_else(|| WorkspaceError::MemberNotFound {
                id: user_id.to_owned(),
            })?;
        Ok(Member { membership, user })
    }

    /// Removes a member (admins and owners; anyone may leave). Their access
    /// to the workspace ends at once, and the API keys they created there
    /// are revoked.
    pub fn remove_member(
        &self,
        actor: &Actor,
        workspace_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<(), WorkspaceError> {
        let leaving = actor.user_id.as_deref() == Some(user_id);
        if !leaving {
            require(actor, Role::Admin, "only admins and owners remove members")?;
        }
        let _members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        let membership = self
            .store
            .membership(workspace_id, user_id)?
            .ok_or_else(|| WorkspaceError::MemberNotFound {
                id: user_id.to_owned(),
            })?;
        if membership.role == Role::Owner {
            if !leaving && actor.role != Role::Owner {
                return Err(WorkspaceError::Forbidden("only owners remove owners"));
            }
            self.keep_an_owner(workspace_id, user_id)?;
        }
        self.store.remove_membership(workspace_id, user_id)?;
        for mut key in self.store.api_keys()? {
            if key.workspace_id == workspace_id
                && key.created_by.as_deref() == Some(user_id)
                && key.revoked_at.is_none()
            {
                key.revoked_at = Some(now);
                self.store.put_api_key(&key)?;
            }
        }
        Ok(())
    }

    fn keep_an_owner(&self, workspace_id: &str, leaving: &str) -> Result<(), WorkspaceError> {
        let others = self
            .store
            .members_of(workspace_id)?
            .into_iter()
            .filter(|m| m.role == Role::Owner && m.user_id != leaving)
            .count();
        if others == 0 {
            return Err(WorkspaceError::LastOwner);
        }
        Ok(())
    }

    /// Invites `email` with `role` (admins and owners; only owners invite owners).
    pub fn invite(
        &self,
        actor: &Actor,
        workspace_id: &str,
        email: &str,
        role: Role,
        now: i64,
    ) -> Result<IssuedInvitation, WorkspaceError> {
        require(actor, Role::Admin, "only admins and owners invite")?;
        if role == Role::Owner && actor.role != Role::Owner {
            return Err(WorkspaceError::Forbidden("only owners invite owners"));
        }
        let email = email::normalize_email(email).map_err(|reason| {
            WorkspaceError::Account(crate::accounts::AccountError::InvalidEmail(reason))
        })?;
        if let Some(user) = self.store.user_by_email(&email)?
            && self.store.membership(workspace_id, &user.id)?.is_some()
        {
            return Err(WorkspaceError::AlreadyMember { email });
        }
        let id = random_string(16);
        let secret = random_secret();
        let invitation = InvitationRecord {
            id: id.clone(),
            workspace_id: workspace_id.to_owned(),
            email,
            role,
            secret_hash: hash_secret(&secret),
            invited_by: actor.user_id.clone(),
            created_at: now,
            expires_at: now.saturating_add(self.settings.invitation_ttl_ms),
            accepted_at: None,
        };
        self.store.put_invitation(&invitation)?;
        Ok(IssuedInvitation {
            token: format!("inv_{id}_{secret}"),
            invitation,
        })
    }

    /// Pending invitations of a workspace (neither accepted nor expired), newest first.
    pub fn pending_invitations(
        &self,
        workspace_id: &str,
        now: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        let mut out: Vec<_> = self
            .store
            .invitations_of(workspace_id)?
            .into_iter()
            .filter(|i| i.accepted_at.is_none() && i.expires_at > now)
            .collect();
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Revokes a pending invitation (admins and owners).
    pub fn revoke_invitation(
        &self,
        actor: &Actor,
        workspace_id: &str,
        id: &str,
    ) -> Result<(), WorkspaceError> {
        require(
            actor,
            Role::Admin,
            "only admins and owners revoke invitations",
        )?;
        match self.store.invitation(id)? {
            Some(invitation) if invitation.workspace_id == workspace_id => {
                self.store.delete_invitation(id)?;
                Ok(())
            }
            _ => Err(WorkspaceError::InvitationNotFound { id: id.to_owned() }),
        }
    }

    /// The usable invitation a token belongs to, with its workspace.
    pub fn preview(
        &self,
        token: &str,
        now: i64,
    ) -> Result<(InvitationRecord, WorkspaceRecord), WorkspaceError> {
        let (id, secret) = parse_token(token.trim()).ok_or(WorkspaceError::InvitationInvalid)?;
        let invitation = self
            .store
            .invitation(id)?
            .ok_or(WorkspaceError::InvitationInvalid)?;
        let genuine: bool = hash_secret(secret)
            .as_bytes()
            .ct_eq(invitation.secret_hash.as_bytes())
            .into();
        if !genuine || invitation.accepted_at.is_some() || invitation.expires_at <= now {
            return Err(WorkspaceError::InvitationInvalid);
        }
        let workspace = self
            .live(&invitation.workspace_id)?
            .ok_or(WorkspaceError::InvitationInvalid)?;
        Ok((invitation, workspace))
    }

    /// Accepts an invitation as `user`, whose email must be the invited one.
    /// The invitation is used up in the same batch that adds the membership.
    pub fn accept(
        &self,
        token: &str,
        user: &UserRecord,
        now: i64,
    ) -> Result<(WorkspaceRecord, MembershipRecord), WorkspaceError> {
        let _members = self.members.lock().unwrap_or_else(|e| e.into_inner());
        let (mut invitation, workspace) = self.preview(token, now)?;
        if invitation.email != user.email {
            return Err(WorkspaceError::InvitationForAnotherUser);
        }
        if self.store.membership(&workspace.id, &user.id)?.is_some() {
            return Err(WorkspaceError::AlreadyMember {
                email: user.email.clone(),
            });
        }
        invitation.accepted_at = Some(now);
        let membership = MembershipRecord {
            workspace_id: workspace.id.clone(),
            user_id: user.id.clone(),
            role: invitation.role,
            joined_at: now,
        };
        self.store.accept_invitation(&membership, &invitation)?;
        Ok((workspace, membership))
    }

    /// Accepts an invitation by creating the invited user (who has no
    /// account yet) with `display_name` and `password`.
    pub fn accept_as_new_user(
        &self,
        accounts: &Accounts,
        token: &str,
        display_name: &str,
        password: &str,
        now: i64,
    ) -> Result<(UserRecord, WorkspaceRecord, MembershipRecord), WorkspaceError> {
        let (invitation, _) = self.preview(token, now)?;
        if self.store.user_by_email(&invitation.email)?.is_some() {
            return Err(WorkspaceError::SignInToAccept);
        }
        let user = accounts.create_user(&invitation.email, display_name, password, now)?;
        let (workspace, membership) = self.accept(token, &user, now)?;
        Ok((user, workspace, membership))
    }
}

fn not_found(id: &str) -> WorkspaceError {
    WorkspaceError::NotFound { id: id.to_owned() }
}

fn require(actor: &Actor, role: Role, message: &'static str) -> Result<(), WorkspaceError> {
    if actor.role >= role {
        Ok(())
    } else {
        Err(WorkspaceError::Forbidden(message))
    }
}

#[cfg(test)]
mod tests;
