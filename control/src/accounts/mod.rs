//! People who sign in: users (email, display name, Argon2id password hash)
//! and their server-side sessions (idle and absolute expiry, revocation), the
//! first owner created at first start, and password changes. Like
//! [`crate::keys`] it works on the store and knows nothing of HTTP; the API
//! runs its slow calls (hashing) on the blocking pool.
//!
//! - [`email`]: address validation and normalization.
//! - [`password`]: the password policy and Argon2id hashing.
//! - [`error`]: why an operation was refused ([`AccountError`]).
//!
//! Roles arrive with workspaces; until then every signed-in user is an owner
//! of the installation and may do what an admin key may.

pub mod email;
pub mod error;
pub mod password;

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use error::AccountError;

use crate::keys::random_string;
use crate::store::{ControlStore, SessionRecord, StoreError, UserRecord};

/// Characters of a session id (public: listings and revocation).
const SESSION_ID_LEN: usize = 16;
/// Characters of a session secret: 43 of 62 is just over 256 bits.
const SESSION_SECRET_LEN: usize = 43;
/// A session's `last_seen_at` is written at most this often (ms).
const LAST_SEEN_EVERY_MS: i64 = 60_000;
/// Longest user agent kept with a session, in bytes.
const MAX_USER_AGENT: usize = 256;
/// Longest display name, in characters.
const MAX_NAME_CHARS: usize = 100;

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionSettings {
    /// A session unused this long (ms) has expired.
    pub idle_timeout_ms: i64,
    /// A session this old (ms) has expired, however much it is used.
    pub absolute_timeout_ms: i64,
}

/// The first owner's credentials, shown once at first start.
#[derive(Clone)]
pub struct OwnerCredentials {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for OwnerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerCredentials")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Where a sign-in came from, kept for the session listing.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub user_agent: String,
    pub address: String,
}

/// A session just opened: `token` goes into the cookie and is never stored.
#[derive(Clone)]
pub struct OpenedSession {
    pub token: String,
    pub session: SessionRecord,
    pub user: UserRecord,
}

impl std::fmt::Debug for OpenedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedSession")
            .field("session", &self.session.id)
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a session token `<id>.<secret>`.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let alphanumeric = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric());
    (id.len() == SESSION_ID_LEN
        && secret.len() == SESSION_SECRET_LEN
        && alphanumeric(id)
        && alphanumeric(secret))
    .then_some((id, secret))
}

/// The CSRF token of a session: derived from its token (SHA-256 with a
/// label, so it never equals the stored hash), so it needs no storage, lives
/// and dies with the session, and cannot be computed without the cookie.
pub fn csrf_token(session_token: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"ricochet csrf\0");
    digest.update(session_token.as_bytes());
    hex::encode(digest.finalize())
}

/// Whether `sent` is the CSRF token of `session_token`, in constant time.
pub fn csrf_matches(session_token: &str, sent: &str) -> bool {
    csrf_token(session_token)
        .as_bytes()
        .ct_eq(sent.as_bytes())
        .into()
}

fn check_display_name(display_name: &str) -> Result<String, AccountError> {
    let display_name = display_name.trim();
    if display_name.is_empty()
        || display_name.chars().count() > MAX_NAME_CHARS
        || display_name.chars().any(char::is_control)
    {
        return Err(AccountError::InvalidName(
            "a display name has 1 to 100 characters and no control characters",
        ));
    }
    Ok(display_name.to_owned())
}

/// Users and sessions over the control store.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<ControlStore>,
    settings: SessionSettings,
}

impl Accounts {
    pub fn new(store: Arc<ControlStore>, settings: SessionSettings) -> Self {
        Self { store, settings }
    }

    pub fn settings(&self) -> SessionSettings {
        self.settings
    }

    /// Creates a user; the email must be free and the password meet the policy.
    pub fn create_user(
        &self,
        email: &str,
        display_name: &str,
        password: &str,
        now: i64,
    ) -> Result<UserRecord, AccountError> {
        let email = email::normalize_email(email).map_err(AccountError::InvalidEmail)?;
        let display_name = check_display_name(display_name)?;
        password::check_policy(password, &email).map_err(AccountError::WeakPassword)?;
        let user = UserRecord {
            id: random_string(16),
            email,
            display_name,
            password_hash: password::hash_password(password),
            created_at: now,
            password_changed_at: now,
            disabled: false,
        };
        if !self.store.create_user(&user)? {
            return Err(AccountError::EmailTaken);
        }
        Ok(user)
    }

    /// Creates the first owner with a generated password when there is no
    /// user at all (a new store, or one written before accounts existed).
    pub fn bootstrap_owner(
        &self,
        email: &str,
        now: i64,
    ) -> Result<Option<OwnerCredentials>, AccountError> {
        if self.store.has_users()? {
            return Ok(None);
        }
        let password = password::generate_password();
        let user = self.create_user(email, "Owner", &password, now)?;
        Ok(Some(OwnerCredentials {
            email: user.email,
            password,
        }))
    }

    /// Checks an email and password and opens a session. An unknown email
    /// costs the same hash verification as a known one, and every failure is
    /// the same [`AccountError::InvalidCredentials`].
    pub fn sign_in(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
        now: i64,
    ) -> Result<OpenedSession, AccountError> {
        let email = email::normalize_email(email).map_err(AccountError::InvalidEmail)?;
        let Some(user) = self.store.user_by_email(&email)? else {
            password::verify_dummy(password);
            return Err(AccountError::InvalidCredentials);
        };
        if !password::verify_password(password, &user.password_hash) || user.disabled {
            return Err(AccountError::InvalidCredentials);
        }
        Ok(self.open_session(user, client, now)?)
    }

    /// Opens a session for `user` (a user who just accepted an invitation).
    pub fn open_session_for(
        &self,
        user: UserRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<OpenedSession, StoreError> {
        self.open_session(user, client, now)
    }

    fn open_session(
        &self,
        user: UserRecord,
        client: &ClientInfo,
        now: i64,
    ) -> Result<OpenedSession, StoreError> {
        let id = random_string(SESSION_ID_LEN);
        let secret = random_string(SESSION_SECRET_LEN);
        let mut user_agent = client.user_agent.clone();
        if user_agent.len() > MAX_USER_AGENT {
            let mut end = MAX_USER_AGENT;
            while !user_agent.is_char_boundary(end) {
                end -= 1;
            }
            user_agent.truncate(end);
        }
        let session = SessionRecord {
            id: id.clone(),
            secret_hash: hash_secret(&secret),
            user_id: user.id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now.saturating_add(self.settings.absolute_timeout_ms),
            user_agent,
            client_address: client.address.clone(),
            workspace_id: None,
        };
        self.store.put_session(&session)?;
        Ok(OpenedSession {
            token: format!("{id}.{secret}"),
            session,
            user,
        })
    }

    /// When `session` expires if it stays unused: its idle or its absolute
    /// expiry, whichever comes first.
    pub fn expires_at(&self, session: &SessionRecord) -> i64 {
        session
            .last_seen_at
            .saturating_add(self.settings.idle_timeout_ms)
            .min(session.expires_at)
    }

    /// The user and live session a cookie's token belongs to. Expired sessions
    /// are deleted; a session is marked seen at most once a minute.
    pub fn authenticate(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Option<(UserRecord, SessionRecord)>, StoreError> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let Some(mut session) = self.store.session(id)? else {
            return Ok(None);
        };
        let matches: bool = hash_secret(secret)
            .as_bytes()
            .ct_eq(session.secret_hash.as_bytes())
            .into();
        if !matches {
            return Ok(None);
        }
        if self.expires_at(&session) <= now {
            self.store.delete_session(id)?;
            return Ok(None);
        }
        let Some(user) = self.store.user(&session.user_id)? else {
            return Ok(None);
        };
        if user.disabled {
            return Ok(None);
        }
        if now - session.last_seen_at >= LAST_SEEN_EVERY_MS {
            session.last_seen_at = now;
            self.store.put_session(&session)?;
        }
        Ok(Some((user, session)))
    }

    /// The user's live sessions, newest first; expired ones are deleted.
    pub fn sessions(&self, user_id: &str, now: i64) -> Result<Vec<SessionRecord>, StoreError> {
        let mut live = Vec::new();
        for session in self.store.sessions_of(user_id)? {
            if self.expires_at(&session) <= now {
                self.store.delete_session(&session.id)?;
            } else {
                live.push(session);
            }
        }
        live.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(live)
    }

    /// Ends one of the user's sessions; false when the user has no such session.
    pub fn revoke(&self, user_id: &str, session_id: &str) -> Result<bool, StoreError> {
        match self.store.session(session_id)? {
            Some(session) if session.user_id == user_id => {
                self.store.delete_session(session_id)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Makes `workspace_id` the workspace `session` acts in.
    pub fn set_workspace(
        &self,
        session: &SessionRecord,
        workspace_id: Option<&str>,
    ) -> Result<SessionRecord, StoreError> {
        let mut session = session.clone();
        session.workspace_id = workspace_id.map(str::to_owned);
        self.store.put_session(&session)?;
        Ok(session)
    }

    /// Changes a user's display name.
    pub fn rename(&self, user_id: &str, display_name: &str) -> Result<UserRecord, AccountError> {
        let display_name = check_display_name(display_name)?;
        let Some(mut user) = self.store.user(user_id)? else {
            return Err(AccountError::InvalidCredentials);
        };
        user.display_name = display_name;
        self.store.put_user(&user)?;
        Ok(user)
    }

    /// Changes the user's password after checking the current one, and ends
    /// every other session of theirs. Returns how many were ended.
    pub fn change_password(
        &self,
        user_id: &str,
        current: &str,
        new: &str,
        keep_session: &str,
        now: i64,
    ) -> Result<usize, AccountError> {
        let Some(mut user) = self.store.user(user_id)? else {
            return Err(AccountError::InvalidCredentials);
        };
        if !password::verify_password(current, &user.password_hash) {
            return Err(AccountError::WrongCurrentPassword);
        }
        password::check_policy(new, &user.email).map_err(AccountError::WeakPassword)?;
        user.password_hash = password::hash_password(new);
        user.password_changed_at = now;
        self.store.put_user(&user)?;
        let mut revoked = 0;
        for session in self.store.sessions_of(user_id)? {
            if session.id != keep_session {
                self.store.delete_session(&session.id)?;
                revoked += 1;
            }
        }
        Ok(revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(ControlStore::open(dir.path()).unwrap());
        let settings = SessionSettings {
            idle_timeout_ms: 100_000,
            absolute_timeout_ms: 300_000,
        };
        (dir, Accounts::new(store, settings))
    }

    #[test]
    fn the_owner_is_created_once_and_signs_in() {
        let (_dir, accounts) = accounts();
        let owner = accounts
            .bootstrap_owner("Owner@Example.com", 10)
            .unwrap()
            .unwrap();
        assert_eq!(owner.email, "owner@example.com");
        assert!(
            accounts
                .bootstrap_owner("other@example.com", 11)
                .unwrap()
                .is_none()
        );
        let client = ClientInfo::default();
        let opened = accounts
            .sign_in("OWNER@example.com", &owner.password, &client, 20)
            .unwrap();
        let (user, _) = accounts.authenticate(&opened.token, 21).unwrap().unwrap();
        assert_eq!(user.email, "owner@example.com");
        assert!(!opened.session.secret_hash.contains(&opened.token[17..]));
        assert!(matches!(
            accounts.sign_in("owner@example.com", "wrong password!", &client, 30),
            Err(AccountError::InvalidCredentials)
        ));
        assert!(matches!(
            accounts.sign_in("nobody@example.com", &owner.password, &client, 30),
            Err(AccountError::InvalidCredentials)
        ));
        assert!(matches!(
            accounts.create_user("owner@EXAMPLE.com", "Twin", "tangerine-ladder-41", 40),
            Err(AccountError::EmailTaken)
        ));
    }

    #[test]
    fn sessions_expire_when_idle_or_old_and_can_be_revoked() {
        let (_dir, accounts) = accounts();
        let owner = accounts
            .bootstrap_owner("o@example.com", 0)
            .unwrap()
            .unwrap();
        let client = ClientInfo::default();
        let idle = accounts
            .sign_in(&owner.email, &owner.password, &client, 0)
            .unwrap();
        assert!(
            accounts
                .authenticate(&idle.token, 99_999)
                .unwrap()
                .is_some()
        );
        assert!(
            accounts
                .authenticate(&idle.token, 199_999)
                .unwrap()
                .is_none()
        );

        // Used every minute, a session lives until its absolute expiry.
        let busy = accounts
            .sign_in(&owner.email, &owner.password, &client, 0)
            .unwrap();
        for now in (60_000..300_000).step_by(60_000) {
            assert!(
                accounts.authenticate(&busy.token, now).unwrap().is_some(),
                "{now}"
            );
        }
        assert!(
            accounts
                .authenticate(&busy.token, 300_000)
                .unwrap()
                .is_none()
        );

        let revoked = accounts
            .sign_in(&owner.email, &owner.password, &client, 0)
            .unwrap();
        assert!(
            !accounts
                .revoke("someone else", &revoked.session.id)
                .unwrap()
        );
        assert!(
            accounts
                .revoke(&revoked.user.id, &revoked.session.id)
                .unwrap()
        );
        assert!(accounts.authenticate(&revoked.token, 1).unwrap().is_none());
    }
}
