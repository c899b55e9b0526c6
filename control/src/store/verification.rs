//! A domain's proof of ownership, kept in its [`DomainRecord`](super::DomainRecord).
//! Records written before verification existed have none and read as
//! verified ([`DomainVerification::existing`]): domains that worked before
//! an upgrade keep working.

use serde::{Deserialize, Serialize};

/// Where a domain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    /// Waiting for the TXT record.
    Pending,
    Verified,
    /// The last check did not find the record (`failure` says why); checks
    /// go on until the attempts or the 7 days run out.
    Failed,
}

/// How a domain came to count as verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMethod {
    /// Its TXT record was found.
    Dns,
    /// The operator's configuration names it, or turns verification off.
    Configuration,
    /// Registered before verification existed.
    Existing,
    /// Registered by an import file the operator ran.
    Import,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainVerification {
    pub status: VerificationStatus,
    pub method: VerificationMethod,
    /// The value the TXT record must hold after `ricochet-verification=`;
    /// empty when the domain was not verified by DNS.
    pub token: String,
    /// When the token was issued: pending verifications expire 7 days later.
    pub issued_at: i64,
    pub attempts: u32,
    pub last_checked_at: Option<i64>,
    /// When the background task checks next; `None`: never (expired).
    pub next_check_at: Option<i64>,
    pub verified_at: Option<i64>,
    /// Why the last check failed, for a person to act on.
    pub failure: Option<String>,
    /// A verified domain whose record a daily check no longer found, since
    /// when (the domain keeps working; the flag says to restore the record).
    pub record_missing_since: Option<i64>,
}

impl DomainVerification {
    /// A domain from before verification: verified.
    pub fn existing() -> Self {
        Self::verified_by(VerificationMethod::Existing, 0)
    }

    /// Verified without DNS (configuration, import) at `now`.
    pub fn verified_by(method: VerificationMethod, now: i64) -> Self {
        Self {
            status: VerificationStatus::Verified,
            method,
            token: String::new(),
            issued_at: now,
            attempts: 0,
            last_checked_at: None,
            next_check_at: None,
            verified_at: Some(now),
            failure: None,
            record_missing_since: None,
        }
    }

    /// Waiting for `token` in DNS, issued at `now`; first checked at `first_check`.
    pub fn pending(token: String, now: i64, first_check: i64) -> Self {
        Self {
            status: VerificationStatus::Pending,
            method: VerificationMethod::Dns,
            token,
            issued_at: now,
            attempts: 0,
            last_checked_at: None,
            next_check_at: Some(first_check),
            verified_at: None,
            failure: None,
            record_missing_since: None,
        }
    }

    pub fn is_verified(&self) -> bool {
        self.status == VerificationStatus::Verified
    }
}

impl Default for DomainVerification {
    fn default() -> Self {
        Self::existing()
    }
}
