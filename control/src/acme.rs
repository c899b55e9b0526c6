//! Certificates from an ACME certificate authority (RFC 8555) for verified
//! domains, with instant-acme: one account (kept in the store), one order a
//! domain, answered by HTTP-01 or TLS-ALPN-01 (`acme.challenge`). The
//! challenge answer travels to engines through the change log like any
//! change; once the authority has checked it, the certificate (ECDSA P-256
//! key) is stored and published, and the answer withdrawn. Only verified
//! domains are ever ordered, never a name a client merely asks for. A
//! certificate is renewed at two thirds of its lifetime, or earlier when the
//! authority's renewal information (ARI) suggests it; a failed order is
//! retried with backoff, and its reason shows on the API
//! (`certificate_order`). The certificate of a removed domain is revoked
//! (reason: cessation of operation), retried with the same backoff until
//! the authority has it or it expires.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy, RevocationReason,
    RevocationRequest,
};
use ricochet_model::tls::{CertificatePem, TlsChange, parse_certificate};
use ricochet_model::{ChangeOp, validate};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub use crate::config::AcmeChallenge;
use crate::events::{EventKind, NewEvent, Subject};
use crate::store::{
    AcmeState, CertificateRecord, CertificateSource, ControlStore, Revocation, StoreError,
    VerificationStatus,
};

/// Where and how to order certificates.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The authority's directory URL.
    pub directory_url: String,
    /// A PEM root the authority's own HTTPS chains to (test authorities);
    /// `None`: the system's roots.
    pub root_certificate: Option<PathBuf>,
    /// Contact URIs of the account (`mailto:…`).
    pub contact: Vec<String>,
    /// The challenge engines answer.
    pub challenge: AcmeChallenge,
    /// Time engines get to apply a challenge answer before the authority is
    /// told to check it.
    pub challenge_delay: Duration,
}

/// Waits after a failed order, by failures so far.
const RETRY_MS: [i64; 6] = [
    60_000,
    5 * 60_000,
    30 * 60_000,
    2 * 3_600_000,
    6 * 3_600_000,
    24 * 3_600_000,
];

/// Orders and renews certificates of verified domains.
pub struct Issuer {
    store: Arc<ControlStore>,
    settings: AcmeSettings,
    default_domain: String,
    runtime: tokio::runtime::Runtime,
    account: std::sync::Mutex<Option<Account>>,
    /// The authority's last renewal information, by domain.
    renewal_info: std::sync::Mutex<HashMap<String, RenewalInfo>>,
    /// The authority's directory offers no renewal information.
    renewal_info_unsupported: AtomicBool,
}

/// What the authority's renewal information said of a domain's certificate.
#[derive(Debug)]
struct RenewalInfo {
    serial: String,
    /// When to renew (in the suggested window); `i64::MAX` after a failed
    /// look-up.
    renew_at: i64,
    next_check_at: i64,
}

/// Longest wait between renewal information look-ups, whatever the
/// authority's Retry-After.
const RENEWAL_INFO_MAX_WAIT_MS: i64 = 24 * 3_600_000;

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("directory_url", &self.settings.directory_url)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    pub fn new(
        store: Arc<ControlStore>,
        settings: AcmeSettings,
        default_domain: &str,
    ) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the ACME runtime: {e}"))?;
        Ok(Self {
            store,
            settings,
            default_domain: default_domain.to_owned(),
            runtime,
            account: std::sync::Mutex::new(None),
            renewal_info: std::sync::Mutex::new(HashMap::new()),
            renewal_info_unsupported: AtomicBool::new(false),
        })
    }

    /// Orders a certificate for every verified domain due one (none yet, an
    /// issued one at two thirds of its lifetime, a failed order whose wait is
    /// over). Returns how many were issued.
    pub fn run_once(&self, now: i64) -> Result<usize, StoreError> {
        let mut issued = 0;
        for (name, record) in self.store.domains()? {
            if record.verification.status != VerificationStatus::Verified
                || !orderable(&name, &self.default_domain)
            {
                continue;
            }
            let current = self.store.certificate(&name)?;
            if let Some(current) = &current
                && (current.source == CertificateSource::Uploaded
                    || !(renewal_due(current, now) || self.renewal_suggested(&name, current, now)))
            {
                continue;
            }
            let state = self.store.acme_state(&name)?.unwrap_or_default();
            if state.next_attempt_at.is_some_and(|at| at > now) {
                continue;
            }
            // An authority with renewal information is told which
            // certificate the order replaces.
            let record_workspace = record.workspace_id.clone();
            let replaces = current
                .as_ref()
                .filter(|current| self.renewal_info_known(&name, current))
                .and_then(|current| certificate_identifier(&current.chain));
            match self.runtime.block_on(self.issue(&name, replaces)) {
                Ok(pem) => match parse_certificate(&pem) {
                    Ok(parsed) => {
                        let record =
                            CertificateRecord::new(CertificateSource::Acme, pem, &parsed, now);
                        self.store.write(|txn| {
                            txn.put_certificate(&name, Some(&record));
                            txn.put_acme_state(&name, &AcmeState::default());
                            txn.stage_event(NewEvent {
                                kind: EventKind::CertificateIssued,
                                workspace: record_workspace.clone(),
                                subject: Subject::Certificate {
                                    domain: name.clone(),
                                    not_after: Some(parsed.not_after),
                                    error: None,
                                },
                            });
                            Ok::<_, StoreError>(())
                        })?;
                        tracing::info!(domain = %name, not_after = parsed.not_after, "certificate issued");
                        issued += 1;
                    }
                    Err(error) => {
                        self.failed(&name, &record_workspace, state, &error.to_string(), now)?
                    }
                },
                Err(error) => self.failed(&name, &record_workspace, state, &error, now)?,
            }
        }
        Ok(issued)
    }

    /// Records a failed order (retried after a wait) and logs
    /// `certificate.failed` for the domain's workspace.
    fn failed(
        &self,
        name: &str,
        workspace: &str,
        mut state: AcmeState,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        tracing::warn!(domain = %name, %error, "certificate order failed");
        let wait = RETRY_MS[(state.failures as usize).min(RETRY_MS.len() - 1)];
        state.failures += 1;
        state.last_error = Some(error.to_owned());
        state.last_attempt_at = Some(now);
        state.next_attempt_at = Some(now + wait);
        self.store.write(|txn| {
            txn.put_acme_state(name, &state);
            txn.stage_event(NewEvent {
                kind: EventKind::CertificateFailed,
                workspace: workspace.to_owned(),
                subject: Subject::Certificate {
                    domain: name.to_owned(),
                    not_after: None,
                    error: Some(error.to_owned()),
                },
            });
            Ok(())
        })
    }

    /// Whether the authority's renewal information (ARI, RFC 9773) says to
    /// renew `current` now: asked when the last answer's Retry-After has
    /// passed, remembered in memory (a restart asks again). The moment
    /// chosen in the suggested window is spread by the serial number, so
    /// certificates sharing a window are not all renewed at once.
    fn renewal_suggested(&self, name: &str, current: &CertificateRecord, now: i64) -> bool {
        if current.source != CertificateSource::Acme
            || self.renewal_info_unsupported.load(Ordering::Relaxed)
        {
            return false;
        }
        let mut known = self.renewal_info.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(info) = known.get(name)
            && info.serial == current.serial
            && info.next_check_at > now
        {
            return info.renew_at <= now;
        }
        let Some(identifier) = certificate_identifier(&current.chain) else {
            return false;
        };
        let answer = self.runtime.block_on(async {
            let account = self.account().await.map_err(RenewalInfoError::Failed)?;
            account
                .renewal_info(&identifier)
                .await
                .map_err(|error| match error {
                    instant_acme::Error::Unsupported(_) => RenewalInfoError::Unsupported,
                    other => RenewalInfoError::Failed(other.to_string()),
                })
        });
        match answer {
            Ok((info, retry_after)) => {
                let window = &info.suggested_window;
                let start = (window.start.unix_timestamp_nanos() / 1_000_000) as i64;
                let end = (window.end.unix_timestamp_nanos() / 1_000_000) as i64;
                let renew_at = start + (end - start).max(0) * spread(&current.serial) / 1_000;
                let wait = i64::try_from(retry_after.as_millis())
                    .unwrap_or(i64::MAX)
                    .clamp(0, RENEWAL_INFO_MAX_WAIT_MS);
                tracing::debug!(domain = %name, renew_at, "renewal information");
                known.insert(
                    name.to_owned(),
                    RenewalInfo {
                        serial: current.serial.clone(),
                        renew_at,
                        next_check_at: now + wait,
                    },
                );
                renew_at <= now
            }
            Err(RenewalInfoError::Unsupported) => {
                self.renewal_info_unsupported.store(true, Ordering::Relaxed);
                false
            }
            Err(RenewalInfoError::Failed(error)) => {
                tracing::warn!(domain = %name, %error, "cannot read the authority's renewal information");
                known.insert(
                    name.to_owned(),
                    RenewalInfo {
                        serial: current.serial.clone(),
                        renew_at: i64::MAX,
                        next_check_at: now + RETRY_MS[1],
                    },
                );
                false
            }
        }
    }

    /// Whether the authority answered renewal information for `current`
    /// (so it supports ARI, and an order may name what it replaces).
    fn renewal_info_known(&self, name: &str, current: &CertificateRecord) -> bool {
        self.renewal_info
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .is_some_and(|info| info.serial == current.serial && info.renew_at != i64::MAX)
    }

    /// Asks the authority to revoke the certificates of removed domains
    /// whose wait is over; forgets those that have expired (nothing left to
    /// revoke) and those the authority already has revoked. Returns how
    /// many were revoked.
    pub fn revoke_pending(&self, now: i64) -> Result<usize, StoreError> {
        let mut revoked = 0;
        for mut revocation in self.store.revocations()? {
            if revocation.not_after <= now {
                self.store.write(|txn| {
                    txn.put_revocation(&revocation, true);
                    Ok::<_, StoreError>(())
                })?;
                continue;
            }
            if revocation.next_attempt_at.is_some_and(|at| at > now) {
                continue;
            }
            let done = match self.runtime.block_on(self.revoke(&revocation)) {
                Ok(()) => {
                    tracing::info!(domain = %revocation.domain, serial = %revocation.serial,
                        "certificate of a removed domain revoked");
                    revoked += 1;
                    true
                }
                Err(RevokeError::AlreadyRevoked) => true,
                Err(RevokeError::Failed(error)) => {
                    tracing::warn!(domain = %revocation.domain, serial = %revocation.serial,
                        %error, "certificate revocation failed");
                    let wait = RETRY_MS[(revocation.failures as usize).min(RETRY_MS.len() - 1)];
                    revocation.failures += 1;
                    revocation.last_error = Some(error);
                    revocation.next_attempt_at = Some(now + wait);
                    false
                }
            };
            self.store.write(|txn| {
                txn.put_revocation(&revocation, done);
                Ok::<_, StoreError>(())
            })?;
        }
        Ok(revoked)
    }

    async fn revoke(&self, revocation: &Revocation) -> Result<(), RevokeError> {
        let leaf = CertificateDer::pem_slice_iter(revocation.certificate.as_bytes())
            .next()
            .ok_or_else(|| RevokeError::Failed("the stored chain holds no certificate".into()))?
            .map_err(|e| RevokeError::Failed(format!("the stored chain is unreadable: {e}")))?;
        let account = self.account().await.map_err(RevokeError::Failed)?;
        let request = RevocationRequest {
            certificate: &leaf,
            reason: Some(RevocationReason::CessationOfOperation),
        };
        match account.revoke(&request).await {
            Ok(()) => Ok(()),
            Err(instant_acme::Error::Api(problem))
                if problem.r#type.as_deref()
                    == Some("urn:ietf:params:acme:error:alreadyRevoked") =>
            {
                Err(RevokeError::AlreadyRevoked)
            }
            Err(error) => Err(RevokeError::Failed(error.to_string())),
        }
    }

    /// The account, loaded from the store or created (and stored) once.
    async fn account(&self) -> Result<Account, String> {
        if let Some(account) = self
            .account
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(account);
        }
        let builder = || match &self.settings.root_certificate {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        };
        let account = match self.store.acme_account().map_err(|e| e.to_string())? {
            Some(saved) => {
                let credentials: AccountCredentials = serde_json::from_str(&saved)
                    .map_err(|e| format!("the stored ACME account is unreadable: {e}"))?;
                builder()
                    .map_err(|e| e.to_string())?
                    .from_credentials(credentials)
                    .await
                    .map_err(|e| format!("cannot use the ACME account: {e}"))?
            }
            None => {
                let contact: Vec<&str> = self.settings.contact.iter().map(String::as_str).collect();
                let (account, credentials) = builder()
                    .map_err(|e| e.to_string())?
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.settings.directory_url.clone(),
                        None,
                    )
                    .await
                    .map_err(|e| format!("cannot create an ACME account: {e}"))?;
                let saved = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
                self.store
                    .set_acme_account(&saved)
                    .map_err(|e| e.to_string())?;
                account
            }
        };
        *self.account.lock().unwrap_or_else(|e| e.into_inner()) = Some(account.clone());
        Ok(account)
    }

    /// One order for `domain`, answered through the engines.
    async fn issue(
        &self,
        domain: &str,
        replaces: Option<CertificateIdentifier<'static>>,
    ) -> Result<CertificatePem, String> {
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(domain.to_owned())];
        let mut new_order = NewOrder::new(&identifiers);
        if let Some(replaces) = replaces {
            new_order = new_order.replaces(replaces);
        }
        let mut order = account
            .new_order(&new_order)
            .await
            .map_err(|e| format!("the order was refused: {e}"))?;
        let mut published = Vec::new();
        let result = async {
            let mut authorizations = order.authorizations();
            while let Some(authorization) = authorizations.next().await {
                let mut authorization = authorization.map_err(|e| e.to_string())?;
                match authorization.status {
                    AuthorizationStatus::Valid => continue,
                    AuthorizationStatus::Pending => {}
                    other => return Err(format!("the authorization is {other:?}")),
                }
                let kind = match self.settings.challenge {
                    AcmeChallenge::Http01 => ChallengeType::Http01,
                    AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
                };
                let mut challenge = authorization
                    .challenge(kind.clone())
                    .ok_or_else(|| format!("the authority offers no {kind:?} challenge"))?;
                let answer = match self.settings.challenge {
                    AcmeChallenge::Http01 => TlsChange::Http01 {
                        token: challenge.token.clone(),
                        key_authorization: Some(challenge.key_authorization().as_str().to_owned()),
                    },
                    AcmeChallenge::TlsAlpn01 => TlsChange::Alpn01 {
                        domain: domain.to_owned(),
                        pem: Some(alpn_certificate(
                            domain,
                            challenge.key_authorization().digest().as_ref(),
                        )?),
                    },
                };
                self.publish(answer.clone()).map_err(|e| e.to_string())?;
                published.push(answer);
                tokio::time::sleep(self.settings.challenge_delay).await;
                challenge.set_ready().await.map_err(|e| e.to_string())?;
            }
            let retries = RetryPolicy::new().timeout(Duration::from_secs(60));
            let status = order
                .poll_ready(&retries)
                .await
                .map_err(|e| e.to_string())?;
            if status != OrderStatus::Ready {
                return Err(format!(
                    "the authority did not validate the challenge (order {status:?})"
                ));
            }
            let key = order.finalize().await.map_err(|e| e.to_string())?;
            let chain = order
                .poll_certificate(&retries)
                .await
                .map_err(|e| e.to_string())?;
            Ok(CertificatePem { chain, key })
        }
        .await;
        for answer in published {
            let withdrawal = match answer {
                TlsChange::Http01 { token, .. } => TlsChange::Http01 {
                    token,
                    key_authorization: None,
                },
                TlsChange::Alpn01 { domain, .. } => TlsChange::Alpn01 { domain, pem: None },
                TlsChange::Certificate { .. } => continue,
            };
            if let Err(error) = self.publish(withdrawal) {
                tracing::warn!(%error, "could not withdraw a challenge answer");
            }
        }
        result
    }

    fn publish(&self, change: TlsChange) -> Result<(), StoreError> {
        self.store.write(|txn| {
            txn.stage_change(ChangeOp::Tls { change });
            Ok(())
        })
    }
}

/// Why renewal information could not be read.
enum RenewalInfoError {
    /// The authority's directory offers none.
    Unsupported,
    Failed(String),
}

/// The ARI identifier (authority key identifier and serial) of the leaf of
/// `chain` (PEM).
fn certificate_identifier(chain: &str) -> Option<CertificateIdentifier<'static>> {
    let leaf = CertificateDer::pem_slice_iter(chain.as_bytes())
        .next()?
        .ok()?;
    CertificateIdentifier::try_from(&leaf)
        .ok()
        .map(CertificateIdentifier::into_owned)
}

/// A stable fraction (in thousandths) for a serial number: where in the
/// suggested window its renewal falls.
fn spread(serial: &str) -> i64 {
    let hash = serial.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % 1_000) as i64
}

/// Why a revocation did not happen.
enum RevokeError {
    /// The authority has it revoked already: nothing left to do.
    AlreadyRevoked,
    Failed(String),
}

/// The TLS-ALPN-01 answer for `domain` (RFC 8737): a self-signed
/// certificate naming it, with the key authorization's SHA-256 `digest` in
/// a critical acmeIdentifier extension, and a fresh ECDSA P-256 key.
fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<CertificatePem, String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("cannot make a challenge key: {e}"))?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])
        .map_err(|e| format!("cannot make a challenge certificate: {e}"))?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let certificate = params
        .self_signed(&key)
        .map_err(|e| format!("cannot make a challenge certificate: {e}"))?;
    Ok(CertificatePem {
        chain: certificate.pem(),
        key: key.serialize_pem(),
    })
}

/// Whether a certificate issued by ACME is at two thirds of its lifetime.
fn renewal_due(record: &CertificateRecord, now: i64) -> bool {
    let lifetime = record.not_after - record.not_before;
    now >= record.not_before + lifetime * 2 / 3
}

/// Whether an authority could issue for `name`: a public DNS name, not the
/// installation's default domain when it is a local name.
pub(crate) fn orderable(name: &str, default_domain: &str) -> bool {
    let local = name == "localhost" || name.ends_with(".localhost") || !name.contains('.');
    let address = name.parse::<std::net::IpAddr>().is_ok();
    !(local || address || (name == default_domain && validate::normalize_domain(name).is_err()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_spread_over_the_suggested_window_by_serial() {
        let spots: Vec<i64> = ["1a2b", "ff00", "0c", "deadbeef"]
            .iter()
            .map(|serial| spread(serial))
            .collect();
        assert!(
            spots.iter().all(|spot| (0..1_000).contains(spot)),
            "{spots:?}"
        );
        assert_eq!(spread("1a2b"), spots[0], "stable for one certificate");
        assert!(spots.windows(2).any(|pair| pair[0] != pair[1]), "{spots:?}");
    }

    #[test]
    fn the_tls_alpn_01_answer_is_a_certificate_engines_accept() {
        let digest = [7u8; 32];
        let pem = alpn_certificate("go.example.com", &digest).unwrap();
        let change = TlsChange::Alpn01 {
            domain: "go.example.com".into(),
            pem: Some(pem.clone()),
        };
        change.validate().unwrap();
        let parsed = parse_certificate(&pem).unwrap();
        assert_eq!(parsed.names, ["go.example.com"]);
        // The acmeIdentifier extension (1.3.6.1.5.5.7.1.31), critical,
        // holding the digest as an OCTET STRING.
        let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.chain.as_bytes()).unwrap();
        let (_, certificate) = x509_parser::parse_x509_certificate(&der).unwrap();
        let extension = certificate
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("the acmeIdentifier extension");
        assert!(extension.critical);
        assert_eq!(extension.value[..2], [0x04, 32]);
        assert_eq!(extension.value[2..], digest);
    }
}
