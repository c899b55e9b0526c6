//! Stored users and sign-in sessions. They live beside the links but never in
//! the change log: nothing here is published to engines or exported.
//!
//! Keyspaces: `users` (id → user), `user_emails` (lowercased email → id),
//! `sessions` (id → session). Values are serde JSON wrapped in a version tag
//! (`{"v1":{…}}`), so a later layout adds a variant and old records keep
//! decoding.

use fjall::Keyspace;
use serde::{Deserialize, Serialize};

use super::{ControlStore, StoreError};

/// A person who signs in. Memberships (workspaces, roles) will refer to `id`.
/// Its `Debug` leaves the password hash out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Random, stable, never reused.
    pub id: String,
    /// Validated and lowercased; unique.
    pub email: String,
    pub display_name: String,
    /// Argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    pub password_hash: String,
    pub created_at: i64,
    pub password_changed_at: i64,
    /// A disabled user cannot sign in and their sessions stop working.
    pub disabled: bool,
}

/// A signed-in browser. The cookie carries `<id>.<secret>`; only the
/// SHA-256 of the secret is kept. Its `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Public id, shown in listings and used to revoke.
    pub id: String,
    /// Hex SHA-256 of the secret part of the token.
    pub secret_hash: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Absolute expiry; the idle expiry is `last_seen_at` plus the idle timeout.
    pub expires_at: i64,
    pub user_agent: String,
    pub client_address: String,
    /// The workspace the user last switched to in this session; `None` (or
    /// one they left) means their first workspace.
    #[serde(default)]
    pub workspace_id: Option<String>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The stored layouts of a user.
#[derive(Serialize, Deserialize)]
enum StoredUser {
    #[serde(rename = "v1")]
    V1(UserRecord),
}

/// The stored layouts of a session.
#[derive(Serialize, Deserialize)]
enum StoredSession {
    #[serde(rename = "v1")]
    V1(SessionRecord),
}

fn encode_user(user: &UserRecord) -> Vec<u8> {
    serde_json::to_vec(&StoredUser::V1(user.clone())).expect("serializes")
}

fn decode_user(bytes: &[u8]) -> Result<UserRecord, StoreError> {
    match serde_json::from_slice(bytes) {
        Ok(StoredUser::V1(user)) => Ok(user),
        Err(e) => Err(StoreError::Corrupt(format!("user record: {e}"))),
    }
}

fn encode_session(session: &SessionRecord) -> Vec<u8> {
    serde_json::to_vec(&StoredSession::V1(session.clone())).expect("serializes")
}

fn decode_session(bytes: &[u8]) -> Result<SessionRecord, StoreError> {
    match serde_json::from_slice(bytes) {
        Ok(StoredSession::V1(session)) => Ok(session),
        Err(e) => Err(StoreError::Corrupt(format!("session record: {e}"))),
    }
}

/// The accounts keyspaces, opened with the store.
pub(super) struct AccountSpaces {
    pub users: Keyspace,
    pub user_emails: Keyspace,
    pub sessions: Keyspace,
    /// Serializes user creation so two users never take one email.
    pub creating: std::sync::Mutex<()>,
}

impl ControlStore {
    /// Stores a new user and claims its email in one batch; false (and nothing
    /// written) when the email is taken.
    pub fn create_user(&self, user: &UserRecord) -> Result<bool, StoreError> {
        let accounts = &self.accounts;
        let _creating = accounts.creating.lock().unwrap_or_else(|e| e.into_inner());
        if accounts.user_emails.contains_key(user.email.as_bytes())? {
            return Ok(false);
        }
        let mut batch = self.db.batch();
        batch.insert(&accounts.users, user.id.as_bytes(), encode_user(user));
        batch.insert(
            &accounts.user_emails,
            user.email.as_bytes(),
            user.id.as_bytes(),
        );
        batch.commit()?;
        Ok(true)
    }

    /// Replaces a user's record (the email stays as created).
    pub fn put_user(&self, user: &UserRecord) -> Result<(), StoreError> {
        self.accounts
            .users
            .insert(user.id.as_bytes(), encode_user(user))?;
        Ok(())
    }

    pub fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.accounts
            .users
            .get(id.as_bytes())?
            .map(|bytes| decode_user(&bytes))
            .transpose()
    }

    /// The user with `email` (already normalized).
    pub fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let Some(id) = self.accounts.user_emails.get(email.as_bytes())? else {
            return Ok(None);
        };
        self.user(&String::from_utf8_lossy(&id))
    }

    /// The user created first (the owner of the default workspace on upgrade).
    pub fn first_user(&self) -> Result<Option<UserRecord>, StoreError> {
        let mut first: Option<UserRecord> = None;
        for item in self.accounts.users.iter() {
            let (_, value) = item.into_inner()?;
            let user = decode_user(&value)?;
            if first
                .as_ref()
                .is_none_or(|f| (user.created_at, &user.id) < (f.created_at, &f.id))
            {
                first = Some(user);
            }
        }
        Ok(first)
    }

    /// Ends every session of `user_id`.
    pub fn delete_sessions_of(&self, user_id: &str) -> Result<usize, StoreError> {
        let sessions = self.sessions_of(user_id)?;
        for session in &sessions {
            self.delete_session(&session.id)?;
        }
        Ok(sessions.len())
    }

    /// Whether any user exists (the first start creates the owner when none does).
    pub fn has_users(&self) -> Result<bool, StoreError> {
        Ok(!self.accounts.users.is_empty()?)
    }

    pub fn put_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.accounts
            .sessions
            .insert(session.id.as_bytes(), encode_session(session))?;
        Ok(())
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.accounts
            .sessions
            .get(id.as_bytes())?
            .map(|bytes| decode_session(&bytes))
            .transpose()
    }

    pub fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.accounts.sessions.remove(id.as_bytes())?;
        Ok(())
    }

    /// Every session of `user_id`, expired ones included.
    pub fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.accounts.sessions.iter() {
            let (_, value) = item.into_inner()?;
            let session = decode_session(&value)?;
            if session.user_id == user_id {
                out.push(session);
            }
        }
        Ok(out)
    }
}
