//! The key A/B cookies are signed with: from `redirect.cookie_secret`,
//! else from the cluster token (which every engine of a cluster shares),
//! else a secret generated at first start and kept in the data directory
//! (a single engine).

use std::io::Write as _;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The file in the data directory that keeps a generated secret.
pub const SECRET_FILE: &str = "cookie-secret";

/// The key A/B cookies are signed with. Every engine of a cluster must use
/// the same one (see `redirect.cookie_secret`).
#[derive(Clone)]
pub struct CookieKey([u8; 32]);

impl CookieKey {
    /// The key derived from a configured secret.
    pub fn from_secret(secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"ricochet-cookie-key-v1\0");
        hasher.update(secret.as_bytes());
        Self(hasher.finalize().into())
    }

    /// The key of an engine: the configured secret, else the cluster
    /// token, else the secret kept in `data_dir` (created on first call).
    pub fn for_engine(secret: &str, cluster_token: &str, data_dir: &Path) -> std::io::Result<Self> {
        if !secret.is_empty() {
            return Ok(Self::from_secret(secret));
        }
        if !cluster_token.is_empty() {
            return Ok(Self::from_secret(cluster_token));
        }
        let path = data_dir.join(SECRET_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(Self::from_secret(text.trim())),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        let secret = nanoid::nanoid!(43);
        // Written aside and renamed, so a crash never leaves half a secret.
        let staging = data_dir.join(format!("{SECRET_FILE}.tmp"));
        let mut file = std::fs::File::create(&staging)?;
        file.write_all(format!("{secret}\n").as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&staging, &path)?;
        Ok(Self::from_secret(&secret))
    }

    /// A key of this process only (tests, tools).
    pub fn random() -> Self {
        Self::from_secret(&nanoid::nanoid!(43))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_secret_then_the_token_then_a_kept_one() {
        let dir = tempfile::tempdir().unwrap();
        let configured = CookieKey::for_engine("s", "t", dir.path()).unwrap();
        assert_eq!(
            configured.as_bytes(),
            CookieKey::from_secret("s").as_bytes()
        );
        let token = CookieKey::for_engine("", "t", dir.path()).unwrap();
        assert_eq!(token.as_bytes(), CookieKey::from_secret("t").as_bytes());
        let kept = CookieKey::for_engine("", "", dir.path()).unwrap();
        let again = CookieKey::for_engine("", "", dir.path()).unwrap();
        assert_eq!(kept.as_bytes(), again.as_bytes(), "stable across starts");
        let other = tempfile::tempdir().unwrap();
        let elsewhere = CookieKey::for_engine("", "", other.path()).unwrap();
        assert_ne!(kept.as_bytes(), elsewhere.as_bytes());
    }
}
