//! Certificates from an ACME certificate authority (RFC 8555) for verified
//! domains, with instant-acme: one account (kept in the store), one order a
//! domain, answered by HTTP-01. The challenge answer travels to engines
//! through the change log like any change; once the authority has checked
//! it, the certificate (ECDSA P-256 key) is stored and published, and the
//! answer withdrawn. Only verified domains are ever ordered, never a name a
//! client merely asks for. A certificate is renewed at two thirds of its
//! lifetime; a failed order is retried with backoff, and its reason shows on
//! the API (`certificate_order`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use ricochet_model::tls::{CertificatePem, TlsChange, parse_certificate};
use ricochet_model::{ChangeOp, validate};

use crate::store::{
    AcmeState, CertificateRecord, CertificateSource, ControlStore, StoreError, VerificationStatus,
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
}

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
                && (current.source == CertificateSource::Uploaded || !renewal_due(current, now))
            {
                continue;
            }
            let state = self.store.acme_state(&name)?.unwrap_or_default();
            if state.next_attempt_at.is_some_and(|at| at > now) {
                continue;
            }
            match self.runtime.block_on(self.issue(&name)) {
                Ok(pem) => match parse_certificate(&pem) {
                    Ok(parsed) => {
                        let record =
                            CertificateRecord::new(CertificateSource::Acme, pem, &parsed, now);
                        self.store.write(|txn| {
                            txn.put_certificate(&name, Some(&record));
                            txn.put_acme_state(&name, &AcmeState::default());
                            Ok::<_, StoreError>(())
                        })?;
                        tracing::info!(domain = %name, not_after = parsed.not_after, "certificate issued");
                        issued += 1;
                    }
                    Err(error) => self.failed(&name, state, &error.to_string(), now)?,
                },
                Err(error) => self.failed(&name, state, &error, now)?,
            }
        }
        Ok(issued)
    }

    fn failed(
        &self,
        name: &str,
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
            Ok(())
        })
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

    /// One order for `domain`, answered by HTTP-01 through the engines.
    async fn issue(&self, domain: &str) -> Result<CertificatePem, String> {
        let account = self.account().await?;
        let identifiers = [Identifier::Dns(domain.to_owned())];
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
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
                let mut challenge = authorization
                    .challenge(ChallengeType::Http01)
                    .ok_or("the authority offers no HTTP-01 challenge")?;
                let token = challenge.token.clone();
                let answer = challenge.key_authorization().as_str().to_owned();
                self.publish(TlsChange::Http01 {
                    token: token.clone(),
                    key_authorization: Some(answer),
                })
                .map_err(|e| e.to_string())?;
                published.push(token);
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
        for token in published {
            if let Err(error) = self.publish(TlsChange::Http01 {
                token,
                key_authorization: None,
            }) {
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

/// Whether a certificate issued by ACME is at two thirds of its lifetime.
fn renewal_due(record: &CertificateRecord, now: i64) -> bool {
    let lifetime = record.not_after - record.not_before;
    now >= record.not_before + lifetime * 2 / 3
}

/// Whether an authority could issue for `name`: a public DNS name, not the
/// installation's default domain when it is a local name.
fn orderable(name: &str, default_domain: &str) -> bool {
    let local = name == "localhost" || name.ends_with(".localhost") || !name.contains('.');
    let address = name.parse::<std::net::IpAddr>().is_ok();
    !(local || address || (name == default_domain && validate::normalize_domain(name).is_err()))
}
