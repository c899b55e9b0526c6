//! Proving who owns a domain: a new domain is `pending` with a token, and
//! becomes `verified` once `_ricochet-challenge.<domain>` holds the TXT value
//! `ricochet-verification=<token>`. A check is asked for by the API or made
//! by the background task with backoff; a pending verification ends after
//! [`MAX_ATTEMPTS`] checks or [`PENDING_TTL_MS`], and can be restarted with a
//! new token. Verified domains are re-checked daily; one whose record is gone
//! is flagged (`record_missing_since`), never dropped. Links can be created
//! only on verified domains, and only verified domains get certificates.

use super::{DomainInfo, LinkError, LinkService};
use crate::events::{EventKind, NewEvent, Subject};
use crate::store::{DomainRecord, DomainVerification, VerificationMethod, VerificationStatus};

/// The label the TXT record sits under.
pub const TXT_LABEL: &str = "_ricochet-challenge";
/// What the TXT value starts with, before the token.
pub const TXT_VALUE_PREFIX: &str = "ricochet-verification=";
/// Checks a pending verification gets before it must be restarted.
pub const MAX_ATTEMPTS: u32 = 10;
/// How long a token stays valid: 7 days.
pub const PENDING_TTL_MS: i64 = 7 * DAY_MS;
/// How often a verified domain's record is checked again.
pub const RECHECK_VERIFIED_MS: i64 = DAY_MS;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Waits before the background task's next check of a pending domain, by
/// attempts made: the ten attempts span about the token's 7 days.
const BACKOFF_MS: [i64; 10] = [
    MINUTE_MS,
    5 * MINUTE_MS,
    15 * MINUTE_MS,
    HOUR_MS,
    3 * HOUR_MS,
    6 * HOUR_MS,
    12 * HOUR_MS,
    DAY_MS,
    2 * DAY_MS,
    3 * DAY_MS,
];

/// What a TXT look-up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxtAnswer {
    /// The values of every TXT record at the name (each record's strings
    /// joined).
    Found(Vec<String>),
    /// The name exists but holds no TXT record.
    NoRecord,
    /// The name does not exist.
    NxDomain,
    Timeout,
    Failed(String),
}

/// Looks TXT records up (the DNS in production, a test DNS server in tests).
pub trait TxtLookup: Send + Sync {
    fn txt(&self, name: &str) -> TxtAnswer;
}

/// The name of a domain's verification record.
pub fn record_name(domain: &str) -> String {
    format!("{TXT_LABEL}.{domain}")
}

/// The value a domain's verification record must hold.
pub fn record_value(token: &str) -> String {
    format!("{TXT_VALUE_PREFIX}{token}")
}

/// When a pending verification stops being checked.
pub fn expires_at(verification: &DomainVerification) -> i64 {
    verification.issued_at + PENDING_TTL_MS
}

fn new_token() -> String {
    nanoid::nanoid!(32, &nanoid::alphabet::SAFE)
}

/// Why `answer` does not prove `token` for `domain`, or `None` when it does.
fn failure(domain: &str, token: &str, answer: &TxtAnswer) -> Option<String> {
    let name = record_name(domain);
    let value = record_value(token);
    match answer {
        TxtAnswer::Found(values) if values.iter().any(|v| v.trim() == value) => None,
        TxtAnswer::Found(values) => {
            let mut seen: Vec<String> = values
                .iter()
                .take(3)
                .map(|v| v.chars().take(80).collect())
                .collect();
            if values.len() > 3 {
                seen.push(format!("and {} more", values.len() - 3));
            }
            Some(format!(
                "wrong value: the TXT record at {name} holds {seen:?}, not {value:?}"
            ))
        }
        TxtAnswer::NoRecord => Some(format!(
            "no record: {name} has no TXT record; create one holding {value:?}"
        )),
        TxtAnswer::NxDomain => Some(format!(
            "NXDOMAIN: {name} does not exist; create a TXT record there holding {value:?}"
        )),
        TxtAnswer::Timeout => Some(format!(
            "timeout: the DNS look-up of {name} did not answer in time; try again later"
        )),
        TxtAnswer::Failed(reason) => Some(format!("the DNS look-up of {name} failed: {reason}")),
    }
}

impl LinkService {
    /// The verification a newly registered domain starts with.
    pub(super) fn new_verification(&self, now: i64) -> DomainVerification {
        if self.settings.dns_verification {
            DomainVerification::pending(new_token(), now, now + BACKOFF_MS[0])
        } else {
            DomainVerification::verified_by(VerificationMethod::Configuration, now)
        }
    }

    /// Checks the TXT record of a domain the workspace owns now; a verified
    /// domain is answered as it is. Refused once the pending verification
    /// has run out of attempts or time ([`LinkError::VerificationExpired`]).
    pub fn verify_domain(
        &self,
        workspace: &str,
        name: &str,
        lookup: &dyn TxtLookup,
        now: i64,
    ) -> Result<DomainInfo, LinkError> {
        let (name, record) = self.visible_domain(workspace, name)?;
        self.owned_domain(&name, workspace)?;
        if record.verification.is_verified() {
            return self.info(workspace, name, &record);
        }
        if is_expired(&record.verification, now) {
            return Err(LinkError::VerificationExpired { domain: name });
        }
        let answer = lookup.txt(&record_name(&name));
        let record = self.record_check(&name, &record.verification.token, &answer, now)?;
        self.info(workspace, name, &record)
    }

    /// Issues a new token for a domain that is not verified: attempts and
    /// the 7 days start again.
    pub fn restart_verification(
        &self,
        workspace: &str,
        name: &str,
        now: i64,
    ) -> Result<DomainInfo, LinkError> {
        let (name, _) = self.visible_domain(workspace, name)?;
        let record = self.store.write(|txn| {
            let mut record = self.owned_domain(&name, workspace)?;
            if record.verification.is_verified() {
                return Err(LinkError::AlreadyVerified {
                    domain: name.clone(),
                });
            }
            record.verification =
                DomainVerification::pending(new_token(), now, now + BACKOFF_MS[0]);
            txn.put_domain(&name, &record);
            Ok(record)
        })?;
        self.info(workspace, name, &record)
    }

    /// The background task's pass: checks every domain due a check (pending
    /// ones by their backoff, verified ones daily). Returns how many were
    /// checked.
    pub fn check_due_domains(&self, lookup: &dyn TxtLookup, now: i64) -> Result<usize, LinkError> {
        let mut checked = 0;
        for (name, record) in self.store.domains()? {
            let verification = &record.verification;
            let due = verification.method == VerificationMethod::Dns
                && verification.next_check_at.is_some_and(|at| at <= now)
                && !is_expired(verification, now);
            if !due {
                continue;
            }
            let answer = lookup.txt(&record_name(&name));
            self.record_check(&name, &verification.token, &answer, now)?;
            checked += 1;
        }
        Ok(checked)
    }

    /// Writes what a check of `token` found, read and written in one
    /// transaction (a token restarted meanwhile is not overwritten).
    fn record_check(
        &self,
        name: &str,
        token: &str,
        answer: &TxtAnswer,
        now: i64,
    ) -> Result<DomainRecord, LinkError> {
        let failure = failure(name, token, answer);
        self.store.write(|txn| {
            let mut record = self
                .store
                .domain(name)?
                .ok_or_else(|| LinkError::DomainNotFound {
                    domain: name.to_owned(),
                })?;
            let verification = &mut record.verification;
            if verification.token != token {
                return Ok(record);
            }
            verification.last_checked_at = Some(now);
            let before = (
                verification.status,
                verification.record_missing_since.is_some(),
            );
            match (verification.status, failure) {
                (VerificationStatus::Verified, None) => {
                    verification.record_missing_since = None;
                    verification.failure = None;
                    verification.next_check_at = Some(now + RECHECK_VERIFIED_MS);
                }
                (VerificationStatus::Verified, Some(reason)) => {
                    verification.record_missing_since.get_or_insert(now);
                    verification.failure = Some(reason);
                    verification.next_check_at = Some(now + RECHECK_VERIFIED_MS);
                }
                (_, None) => {
                    verification.attempts += 1;
                    verification.status = VerificationStatus::Verified;
                    verification.verified_at = Some(now);
                    verification.failure = None;
                    verification.next_check_at = Some(now + RECHECK_VERIFIED_MS);
                }
                (_, Some(reason)) => {
                    verification.attempts += 1;
                    verification.status = VerificationStatus::Failed;
                    verification.failure = Some(reason);
                    let attempts = verification.attempts as usize;
                    verification.next_check_at = BACKOFF_MS
                        .get(attempts)
                        .map(|wait| now + wait)
                        .filter(|_| !is_expired(verification, now));
                }
            }
            if let Some(kind) = domain_event(before, &record.verification) {
                txn.stage_event(NewEvent {
                    kind,
                    workspace: record.workspace_id.clone(),
                    subject: Subject::Domain {
                        domain: name.to_owned(),
                        status: status_name(record.verification.status).to_owned(),
                        failure: record.verification.failure.clone(),
                    },
                });
            }
            txn.put_domain(name, &record);
            Ok(record)
        })
    }
}

/// The event a check is: `domain.verified` when the domain became verified,
/// `domain.failed` when a pending one failed its first check since it was
/// pending, or a verified one's record went missing; else none (a check that
/// changes nothing is not an event).
fn domain_event(
    (status, was_missing): (VerificationStatus, bool),
    after: &DomainVerification,
) -> Option<EventKind> {
    match (status, after.status) {
        (VerificationStatus::Verified, VerificationStatus::Verified) => (!was_missing
            && after.record_missing_since.is_some())
        .then_some(EventKind::DomainFailed),
        (_, VerificationStatus::Verified) => Some(EventKind::DomainVerified),
        (VerificationStatus::Failed, VerificationStatus::Failed) => None,
        (_, VerificationStatus::Failed) => Some(EventKind::DomainFailed),
        _ => None,
    }
}

fn status_name(status: VerificationStatus) -> &'static str {
    match status {
        VerificationStatus::Pending => "pending",
        VerificationStatus::Verified => "verified",
        VerificationStatus::Failed => "failed",
    }
}

/// Counts of domains' verification and certificates, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainHealth {
    pub pending: u64,
    /// Not verified, last check failed (still being checked or expired).
    pub failed: u64,
    /// Verified, but the daily check no longer finds the record.
    pub record_missing: u64,
    pub certificates: u64,
    /// Certificates whose expiry is within 14 days.
    pub expiring_soon: u64,
    /// Domains whose last certificate order failed.
    pub failed_orders: u64,
    /// Certificates of removed domains the ACME authority has yet to revoke.
    pub revocations_pending: u64,
}

impl LinkService {
    /// The state of every domain's verification and certificate at `now`.
    pub fn domain_health(&self, now: i64) -> Result<DomainHealth, LinkError> {
        let mut health = DomainHealth::default();
        for (name, record) in self.store.domains()? {
            match record.verification.status {
                VerificationStatus::Pending => health.pending += 1,
                VerificationStatus::Failed => health.failed += 1,
                VerificationStatus::Verified => {
                    if record.verification.record_missing_since.is_some() {
                        health.record_missing += 1;
                    }
                }
            }
            if let Some(certificate) = self.store.certificate(&name)? {
                health.certificates += 1;
                if certificate.not_after - now < 14 * DAY_MS {
                    health.expiring_soon += 1;
                }
            }
            if self.store.acme_state(&name)?.is_some() {
                health.failed_orders += 1;
            }
        }
        health.revocations_pending = self.store.revocations()?.len() as u64;
        Ok(health)
    }
}

/// Whether a verification that is not verified has run out of attempts or time.
pub fn is_expired(verification: &DomainVerification, now: i64) -> bool {
    !verification.is_verified()
        && (verification.attempts >= MAX_ATTEMPTS || now >= expires_at(verification))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_events_only_when_the_outcome_changes() {
        let after = |status, missing: bool| {
            let mut verification = DomainVerification::existing();
            verification.status = status;
            verification.record_missing_since = missing.then_some(1);
            verification
        };
        use VerificationStatus::{Failed, Pending, Verified};
        let cases = [
            (
                (Pending, false),
                after(Verified, false),
                Some(EventKind::DomainVerified),
            ),
            (
                (Failed, false),
                after(Verified, false),
                Some(EventKind::DomainVerified),
            ),
            (
                (Pending, false),
                after(Failed, false),
                Some(EventKind::DomainFailed),
            ),
            ((Failed, false), after(Failed, false), None),
            ((Verified, false), after(Verified, false), None),
            (
                (Verified, false),
                after(Verified, true),
                Some(EventKind::DomainFailed),
            ),
            ((Verified, true), after(Verified, true), None),
            ((Verified, true), after(Verified, false), None),
        ];
        for (before, after, expected) in cases {
            assert_eq!(
                domain_event(before, &after),
                expected,
                "{before:?} -> {after:?}"
            );
        }
    }

    #[test]
    fn reasons_name_what_to_do() {
        let reason = |answer| failure("go.example.com", "tok", &answer).unwrap();
        assert!(reason(TxtAnswer::NoRecord).starts_with("no record"));
        assert!(reason(TxtAnswer::NxDomain).starts_with("NXDOMAIN"));
        assert!(reason(TxtAnswer::Timeout).starts_with("timeout"));
        let wrong = reason(TxtAnswer::Found(vec!["ricochet-verification=other".into()]));
        assert!(wrong.starts_with("wrong value"), "{wrong}");
        assert!(wrong.contains("\"ricochet-verification=tok\""), "{wrong}");
        assert_eq!(
            failure(
                "go.example.com",
                "tok",
                &TxtAnswer::Found(vec!["v=spf1".into(), "ricochet-verification=tok".into()])
            ),
            None
        );
        assert!(record_name("go.example.com") == "_ricochet-challenge.go.example.com");
    }

    #[test]
    fn pending_verifications_expire_by_attempts_or_time() {
        let mut verification = DomainVerification::pending("t".into(), 0, 1);
        assert!(!is_expired(&verification, PENDING_TTL_MS - 1));
        assert!(is_expired(&verification, PENDING_TTL_MS));
        verification.attempts = MAX_ATTEMPTS;
        assert!(is_expired(&verification, 0));
        assert!(!is_expired(&DomainVerification::existing(), i64::MAX));
        // The backoff spans about the 7 days.
        let total: i64 = BACKOFF_MS.iter().sum();
        assert!(total > 6 * DAY_MS && total < PENDING_TTL_MS, "{total}");
    }
}
