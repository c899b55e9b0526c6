//! Passwords: the policy new passwords must meet (at least 12 characters, not
//! in the common-password list shipped in `control/common-passwords.txt`) and
//! Argon2id hashing with OWASP's parameters. Hashing is slow on purpose
//! (tens of milliseconds): callers run it off the threads serving requests.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest accepted password, in bytes (bounds the work of one hash).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id memory cost in KiB (19 MiB), OWASP's first recommendation.
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Argon2id passes over the memory.
pub const ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const ARGON2_PARALLELISM: u32 = 1;

/// Passwords people pick most, lowercased, one a line.
static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../common-passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// A hash of a password nobody knows, verified when the email is unknown so a
/// failed sign-in takes as long whether or not the account exists.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_password(&crate::keys::random_secret()));

fn hasher() -> Argon2<'static> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why a new password was refused.
pub fn check_policy(password: &str, email: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err("the password must have at least 12 characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err("the password must be at most 1024 bytes");
    }
    let lowered = password.to_lowercase();
    if COMMON.contains(lowered.as_str()) {
        return Err("the password is one of the most common passwords; choose another");
    }
    if lowered == email || lowered.chars().collect::<HashSet<_>>().len() < 3 {
        return Err("the password is too easy to guess; choose another");
    }
    Ok(())
}

/// The Argon2id PHC string of `password`, with a random 16-byte salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).expect("16 bytes encode");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashes any password within the length limit")
        .to_string()
}

/// Whether `password` matches the PHC string `hash` (checked in constant time
/// by the argon2 crate). An unreadable hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Does the work of a verification against a hash that matches nothing.
pub fn verify_dummy(password: &str) {
    let _ = verify_password(password, &DUMMY_HASH);
}

/// Computes the dummy hash now, so the first unknown email is not slower.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// A password for the first owner: 24 characters of 62 (about 143 bits).
pub fn generate_password() -> String {
    crate::keys::random_string(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_documented_parameters() {
        let hash = hash_password("correct horse battery");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("correct horse batterY", &hash));
        assert!(!verify_password("x", "not a hash"));
        assert_ne!(hash, hash_password("correct horse battery"), "salted");
    }

    #[test]
    fn policy_refuses_short_common_and_trivial_passwords() {
        assert!(check_policy("short", "a@b.c").is_err());
        assert!(check_policy("elevenchars", "a@b.c").is_err());
        assert!(check_policy("Password1234", "a@b.c").is_err());
        assert!(check_policy("aaaaaaaaaaaaaaaa", "a@b.c").is_err());
        assert!(check_policy("owner@ricochet.local", "owner@ricochet.local").is_err());
        assert!(check_policy("tangerine-ladder-41", "a@b.c").is_ok());
        assert!(check_policy(&generate_password(), "a@b.c").is_ok());
        assert!(check_policy(&"x1y".repeat(400), "a@b.c").is_err());
    }
}
