//! API keys: high-entropy random tokens `rk_<id>_<secret>`. Only a SHA-256
//! hash of the secret is stored (the secret is random, so a slow password hash
//! adds nothing) and it is compared in constant time. Scopes say what a key
//! may do; a key acts in one workspace, and a key a user created acts with at
//! most that user's role there (see `api::auth`).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::store::{ApiKeyRecord, ControlStore, DEFAULT_WORKSPACE, StoreError};

const ALPHABET: [char; 62] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I',
    'J', 'K', 'L', 'M', 'N', 'O', 'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'a', 'b',
    'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u',
    'v', 'w', 'x', 'y', 'z',
];

/// Random characters from the 62-character alphabet, from the OS CSPRNG.
pub fn random_string(length: usize) -> String {
    nanoid::format(nanoid::rngs::default, &ALPHABET, length)
}

/// A 40-character secret (about 238 bits).
pub fn random_secret() -> String {
    random_string(40)
}

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    LinksRead,
    LinksWrite,
    AnalyticsRead,
    DomainsWrite,
    /// Everything, including managing keys.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::LinksRead,
        Scope::LinksWrite,
        Scope::AnalyticsRead,
        Scope::DomainsWrite,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinksRead => "links:read",
            Self::LinksWrite => "links:write",
            Self::AnalyticsRead => "analytics:read",
            Self::DomainsWrite => "domains:write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// A key just created: the token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub token: String,
    pub record: ApiKeyRecord,
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits `rk_<id>_<secret>`.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("rk_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && secret.len() == 40).then_some((id, secret))
}

/// Creates, checks and revokes keys.
#[derive(Debug, Clone, Copy)]
pub struct KeyRing<'s> {
    store: &'s ControlStore,
}

impl<'s> KeyRing<'s> {
    pub fn new(store: &'s ControlStore) -> Self {
        Self { store }
    }

    /// Creates a key with `scopes` in `workspace_id`, on behalf of user
    /// `created_by` (`None` for the CLI).
    pub fn create(
        &self,
        workspace_id: &str,
        created_by: Option<&str>,
        name: &str,
        scopes: &[Scope],
        now: i64,
    ) -> Result<IssuedKey, StoreError> {
        let id = random_string(12);
        let secret = random_secret();
        let record = ApiKeyRecord {
            id: id.clone(),
            name: name.to_owned(),
            secret_hash: hash_secret(&secret),
            scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            created_at: now,
            revoked_at: None,
            workspace_id: workspace_id.to_owned(),
            created_by: created_by.map(str::to_owned),
        };
        self.store.put_api_key(&record)?;
        Ok(IssuedKey {
            token: format!("rk_{id}_{secret}"),
            record,
        })
    }

    /// Creates the first admin key when there is no key at all.
    pub fn bootstrap(&self, now: i64) -> Result<Option<IssuedKey>, StoreError> {
        if !self.store.api_keys()?.is_empty() {
            return Ok(None);
        }
        self.create(
            DEFAULT_WORKSPACE,
            None,
            "bootstrap admin",
            &[Scope::Admin],
            now,
        )
        .map(Some)
    }

    /// The keys of a workspace, revoked ones included, oldest first.
    pub fn list(&self, workspace_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys: Vec<_> = self
            .store
            .api_keys()?
            .into_iter()
            .filter(|k| k.workspace_id == workspace_id)
            .collect();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// The active key a token belongs to, if the token is genuine.
    pub fn authenticate(&self, token: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let Some(record) = self.store.api_key(id)? else {
            return Ok(None);
        };
        let matches: bool = hash_secret(secret)
            .as_bytes()
            .ct_eq(record.secret_hash.as_bytes())
            .into();
        Ok((matches && record.revoked_at.is_none()).then_some(record))
    }

    /// Revokes a key of `workspace_id` (any workspace when `None`); false
    /// when it has no such key.
    pub fn revoke(
        &self,
        workspace_id: Option<&str>,
        id: &str,
        now: i64,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let Some(mut record) = self.store.api_key(id)? else {
            return Ok(None);
        };
        if workspace_id.is_some_and(|w| w != record.workspace_id) {
            return Ok(None);
        }
        if record.revoked_at.is_none() {
            record.revoked_at = Some(now);
            self.store.put_api_key(&record)?;
        }
        Ok(Some(record))
    }
}

/// Whether a key with `scopes` may act with `needed`.
pub fn allows(scopes: &[String], needed: Scope) -> bool {
    scopes
        .iter()
        .any(|s| s == needed.as_str() || s == Scope::Admin.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_authenticate_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = ControlStore::open(dir.path()).unwrap();
        let ring = KeyRing::new(&store);
        let issued = ring
            .create(DEFAULT_WORKSPACE, None, "ci", &[Scope::LinksRead], 1)
            .unwrap();
        assert!(issued.token.starts_with("rk_"));
        assert!(
            !store
                .api_key(&issued.record.id)
                .unwrap()
                .unwrap()
                .secret_hash
                .contains(&issued.token[16..])
        );
        assert_eq!(
            ring.authenticate(&issued.token).unwrap().unwrap().id,
            issued.record.id
        );
        let mut forged = issued.token.clone();
        forged.pop();
        forged.push(if issued.token.ends_with('a') {
            'b'
        } else {
            'a'
        });
        assert!(ring.authenticate(&forged).unwrap().is_none());
        assert!(ring.authenticate("rk_nope").unwrap().is_none());
        assert!(
            ring.revoke(Some("another"), &issued.record.id, 2)
                .unwrap()
                .is_none()
        );
        assert!(ring.authenticate(&issued.token).unwrap().is_some());
        assert!(ring.revoke(None, &issued.record.id, 2).unwrap().is_some());
        assert!(ring.authenticate(&issued.token).unwrap().is_none());
        assert!(ring.revoke(None, "missing", 2).unwrap().is_none());
    }

    #[test]
    fn bootstrap_happens_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = ControlStore::open(dir.path()).unwrap();
        let ring = KeyRing::new(&store);
        let first = ring.bootstrap(1).unwrap().unwrap();
        assert_eq!(first.record.scopes, vec!["admin"]);
        assert!(ring.bootstrap(2).unwrap().is_none());
    }

    #[test]
    fn admin_allows_everything() {
        assert!(allows(&["admin".into()], Scope::LinksWrite));
        assert!(allows(&["links:read".into()], Scope::LinksRead));
        assert!(!allows(&["links:read".into()], Scope::LinksWrite));
    }
}
