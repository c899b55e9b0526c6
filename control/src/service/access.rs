//! Who may follow a link and how often: its password and its click limit as
//! callers give them ([`AccessChanges`]). A password is checked and hashed
//! with Argon2id before the write transaction (hashing is slow on purpose;
//! the API runs service calls off the threads serving requests); only the
//! hash is stored and sent to engines. [`PasswordInput`] never shows the
//! password in `Debug`, and no error repeats it.

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use ricochet_model::transfer::{self, MAX_CLICKS};
use ricochet_model::{LinkExtensions, ValidationError};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longest link password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Argon2id memory cost of a link password, in KiB (8 MiB). Lighter than
/// accounts' (19 MiB): an engine checks link passwords on one verifier
/// thread, and a link password guards a redirect, not an account.
pub const LINK_ARGON2_MEMORY_KIB: u32 = 8_192;
/// Argon2id passes over the memory.
pub const LINK_ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const LINK_ARGON2_PARALLELISM: u32 = 1;

/// A link password as a caller sent it: any JSON value, checked by the
/// service (`null` removes the protection on a patch). Its `Debug` is
/// redacted, so no log of a request or input ever shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordInput(Value);

impl PasswordInput {
    pub fn new(value: impl Into<Value>) -> Self {
        Self(value.into())
    }

    /// Whether this removes the protection (`null`).
    pub fn is_removal(&self) -> bool {
        self.0.is_null()
    }

    /// The password, when it is one a link may have: a string of 1 to
    /// [`MAX_PASSWORD_CHARS`] characters without control characters.
    fn checked(&self) -> Result<&str, ValidationError> {
        self.0
            .as_str()
            .filter(|text| (1..=MAX_PASSWORD_CHARS).contains(&text.chars().count()))
            .filter(|text| !text.chars().any(char::is_control))
            .ok_or_else(|| ValidationError::Field {
                field: "password".into(),
                code: "invalid_password",
                message: format!(
                    "password must be a string of 1 to {MAX_PASSWORD_CHARS} characters \
                     without control characters (null removes the protection)"
                ),
            })
    }

    /// What stands for the password in an idempotent create's request hash:
    /// an Argon2id hash salted by the idempotency `key`, so a retry with the
    /// same key and password matches while the stored request hash is as
    /// slow to guess from as the link's own hash (a SHA-256 of a body with
    /// the password in it would not be). `None` when it is no valid password
    /// (the create is refused before anything is stored).
    pub fn keyed_fingerprint(&self, key: &str) -> Option<String> {
        let password = self.checked().ok()?;
        let digest = Sha256::digest(format!("ricochet link password idempotency\0{key}"));
        let salt = SaltString::encode_b64(&digest[..16]).expect("16 bytes encode");
        Some(hash_with(password, &salt))
    }
}

impl std::fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_removal() {
            f.write_str("PasswordInput(null)")
        } else {
            f.write_str("PasswordInput(<redacted>)")
        }
    }
}

impl<'de> Deserialize<'de> for PasswordInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self)
    }
}

/// Changes to a link's password and click limit: `None` leaves one as it is
/// (on a new link: unset); `null` removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessChanges {
    pub password: Option<PasswordInput>,
    /// The `max_clicks` value: a whole number from 1 to [`MAX_CLICKS`].
    pub max_clicks: Option<Value>,
}

impl AccessChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the changes and hashes a new password (the slow part, done
    /// before the write transaction so it never holds the store's writer).
    pub fn prepare(&self) -> Result<PreparedAccess, ValidationError> {
        let click_limit = match &self.max_clicks {
            None => None,
            Some(Value::Null) => Some(None),
            Some(value) => Some(Some(click_limit(value)?)),
        };
        let password_hash = match &self.password {
            None => None,
            Some(password) if password.is_removal() => Some(None),
            Some(password) => Some(Some(hash_password(password.checked()?))),
        };
        Ok(PreparedAccess {
            click_limit,
            password_hash,
        })
    }
}

/// [`AccessChanges`] checked, with the password hashed: what a write applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreparedAccess {
    click_limit: Option<Option<u64>>,
    password_hash: Option<Option<String>>,
}

impl PreparedAccess {
    pub fn apply(&self, extensions: &mut LinkExtensions) {
        if let Some(limit) = self.click_limit {
            extensions.click_limit = limit;
        }
        if let Some(hash) = &self.password_hash {
            extensions.password_hash = hash.clone();
        }
    }
}

/// A `max_clicks` value: a whole number (`5` or `5.0`) from 1 to [`MAX_CLICKS`].
fn click_limit(value: &Value) -> Result<u64, ValidationError> {
    let limit = value.as_u64().or_else(|| {
        value
            .as_f64()
            .filter(|n| n.fract() == 0.0 && (1.0..=MAX_CLICKS as f64).contains(n))
            .map(|n| n as u64)
    });
    limit
        .ok_or_else(transfer::max_clicks_error)
        .and_then(transfer::check_max_clicks)
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(
        LINK_ARGON2_MEMORY_KIB,
        LINK_ARGON2_ITERATIONS,
        LINK_ARGON2_PARALLELISM,
        None,
    )
    .expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_with(password: &str, salt: &SaltString) -> String {
    hasher()
        .hash_password(password.as_bytes(), salt)
        .expect("Argon2 hashes any password within the length limit")
        .to_string()
}

/// The Argon2id PHC string of a link password, with a random 16-byte salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
    hash_with(password, &salt)
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHash, PasswordVerifier};
    use serde_json::json;

    use super::*;

    fn changes(password: Option<Value>, max_clicks: Option<Value>) -> AccessChanges {
        AccessChanges {
            password: password.map(PasswordInput::new),
            max_clicks,
        }
    }

    /// Verified the way engines do: parameters from the PHC string.
    fn engine_accepts(password: &str, hash: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), &PasswordHash::new(hash).unwrap())
            .is_ok()
    }

    #[test]
    fn a_password_is_stored_as_a_salted_argon2id_hash_engines_verify() {
        let mut extensions = LinkExtensions::default();
        changes(Some(json!("open sesame")), Some(json!(5)))
            .prepare()
            .unwrap()
            .apply(&mut extensions);
        let hash = extensions.password_hash.clone().unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"), "{hash}");
        assert!(engine_accepts("open sesame", &hash));
        assert!(!engine_accepts("open sesamE", &hash));
        assert_eq!(transfer::check_password_hash(&hash), Ok(()));
        assert_eq!(extensions.click_limit, Some(5));
        assert_ne!(hash, hash_password("open sesame"), "salted");

        // Absent stays; null removes.
        changes(None, None)
            .prepare()
            .unwrap()
            .apply(&mut extensions);
        assert_eq!(extensions.password_hash.as_deref(), Some(hash.as_str()));
        changes(Some(Value::Null), Some(Value::Null))
            .prepare()
            .unwrap()
            .apply(&mut extensions);
        assert!(extensions.is_plain(), "{extensions:?}");
    }

    #[test]
    fn bad_values_name_their_field_and_never_repeat_a_password() {
        let long = "p".repeat(MAX_PASSWORD_CHARS + 1);
        for value in [
            json!(""),
            json!(long),
            json!("tab\there"),
            json!("nul\u{0}"),
            json!("c1\u{85}"),
            json!(1234),
            json!(["secret"]),
            json!({"password": "secret"}),
        ] {
            let error = changes(Some(value.clone()), None).prepare().unwrap_err();
            assert_eq!(
                (error.field(), error.code()),
                ("password", "invalid_password")
            );
            assert!(!error.to_string().contains("secret") && !error.to_string().contains("ppp"));
        }
        for ok in [
            "x",
            &"é".repeat(MAX_PASSWORD_CHARS),
            "with spaces and ünïcode 🔑",
        ] {
            assert!(changes(Some(json!(ok)), None).prepare().is_ok(), "{ok}");
        }
        for value in [
            json!(0),
            json!(-1),
            json!(MAX_CLICKS + 1),
            json!(1.5),
            json!(1e13),
            json!("10"),
            json!(true),
        ] {
            let error = changes(None, Some(value.clone())).prepare().unwrap_err();
            assert_eq!(
                (error.field(), error.code()),
                ("max_clicks", "invalid_max_clicks"),
                "{value}"
            );
        }
        for (value, limit) in [
            (json!(1), 1),
            (json!(MAX_CLICKS), MAX_CLICKS),
            (json!(7.0), 7),
        ] {
            let mut extensions = LinkExtensions::default();
            changes(None, Some(value))
                .prepare()
                .unwrap()
                .apply(&mut extensions);
            assert_eq!(extensions.click_limit, Some(limit));
        }
    }

    #[test]
    fn debug_never_shows_a_password() {
        let input = changes(Some(json!("hunter2-correct")), Some(json!(3)));
        let shown = format!("{input:?} {input:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert_eq!(
            format!("{:?}", PasswordInput::new(Value::Null)),
            "PasswordInput(null)"
        );
    }

    #[test]
    fn keyed_fingerprints_match_retries_only() {
        let password = PasswordInput::new("open sesame");
        let first = password.keyed_fingerprint("key-1").unwrap();
        assert_eq!(password.keyed_fingerprint("key-1").unwrap(), first);
        assert_ne!(password.keyed_fingerprint("key-2").unwrap(), first);
        assert_ne!(
            PasswordInput::new("open sesamE")
                .keyed_fingerprint("key-1")
                .unwrap(),
            first
        );
        assert!(!first.contains("sesame"));
        assert_eq!(PasswordInput::new(5).keyed_fingerprint("key-1"), None);
    }

    /// The model's check of imported hashes (which the engine's import uses
    /// too) takes only strings the argon2 crate parses into parameters it
    /// can verify with, and takes what this module writes.
    #[test]
    fn the_models_hash_check_agrees_with_the_argon2_crate() {
        let written = hash_password("agree");
        let mut candidates = vec![written.clone()];
        for (from, to) in [
            ("m=8192", "m=65536"),
            ("m=8192", "m=65537"),
            ("m=8192,t=2,p=1", "p=1,m=8192,t=2"),
            ("m=8192,t=2,p=1", "m=8192,t=2,p=1,keyid=AAAAAA"),
            ("m=8192,t=2,p=1", "m=8192,t=2"),
            ("m=8192", "m=7"),
            ("t=2", "t=0"),
            ("p=1", "p=4"),
            ("p=1", "p=1025"),
            ("argon2id", "argon2i"),
            ("argon2id", "argon2d"),
            ("argon2id", "argon2"),
            ("v=19", "v=16"),
            ("$v=19", ""),
        ] {
            candidates.push(written.replacen(from, to, 1));
        }
        let (head, output) = written.rsplit_once('$').unwrap();
        let (_, salt) = head.rsplit_once('$').unwrap();
        for cut in [1, 2, 3, 10, 20] {
            candidates.push(format!("{head}${}", &output[..output.len() - cut]));
            candidates.push(written.replacen(salt, &salt[..salt.len() - cut], 1));
        }
        for extra in ["A", "AA", "+/", "-_", "=="] {
            candidates.push(format!("{written}{extra}"));
            candidates.push(written.replacen(salt, &format!("{salt}{extra}"), 1));
        }
        candidates.push(format!("{head}$"));
        candidates.push(head.to_owned());
        let mut accepted = 0;
        for candidate in &candidates {
            if transfer::check_password_hash(candidate).is_err() {
                continue;
            }
            accepted += 1;
            let parsed = PasswordHash::new(candidate)
                .unwrap_or_else(|e| panic!("the model takes {candidate}; argon2: {e}"));
            Params::try_from(&parsed)
                .unwrap_or_else(|e| panic!("the model takes {candidate}; argon2: {e}"));
            // Verifying runs the hash: a wrong password is refused, not an error.
            let verified = Argon2::default().verify_password(b"wrong", &parsed);
            assert_eq!(
                verified,
                Err(argon2::password_hash::Error::Password),
                "{candidate}"
            );
        }
        assert!(accepted >= 5, "{accepted} accepted");
        assert!(engine_accepts("agree", &written));
    }
}
