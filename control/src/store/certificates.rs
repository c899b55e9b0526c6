//! Certificates engines serve: one per domain (uploaded by its workspace or
//! issued by ACME) and the default one (`*`). Keyspace `certificates` (name
//! → record, serde JSON in a version tag). Writing one stages the change
//! that carries the chain and key to engines, in the same batch.
//!
//! Private keys are kept here and in the change log, and leave the control
//! plane only to engines: [`CertificateRecord`]'s `Debug` leaves them out
//! and the API never returns them.

use ricochet_model::ChangeOp;
use ricochet_model::tls::{CertificatePem, ParsedCertificate, TlsChange};
use serde::{Deserialize, Serialize};

use super::{ControlStore, StoreError, WriteTxn};

/// Where a certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateSource {
    /// Uploaded by an operator (PEM chain and key).
    Uploaded,
    /// Issued by the configured ACME certificate authority.
    Acme,
}

/// A stored certificate and what is shown of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub source: CertificateSource,
    pub chain: String,
    pub key: String,
    /// The leaf's DNS names.
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub issuer: String,
    /// The leaf's serial number (hexadecimal); empty in records stored
    /// before it was kept.
    #[serde(default)]
    pub serial: String,
    pub updated_at: i64,
}

impl std::fmt::Debug for CertificateRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRecord")
            .field("source", &self.source)
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertificateRecord {
    /// A record of `pem`, already parsed into `parsed`.
    pub fn new(
        source: CertificateSource,
        pem: CertificatePem,
        parsed: &ParsedCertificate,
        now: i64,
    ) -> Self {
        Self {
            source,
            chain: pem.chain,
            key: pem.key,
            names: parsed.names.clone(),
            not_before: parsed.not_before,
            not_after: parsed.not_after,
            issuer: parsed.issuer.clone(),
            serial: parsed.serial.clone(),
            updated_at: now,
        }
    }

    fn pem(&self) -> CertificatePem {
        CertificatePem {
            chain: self.chain.clone(),
            key: self.key.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
enum Stored {
    #[serde(rename = "v1")]
    V1(CertificateRecord),
}

impl ControlStore {
    /// The certificate served for `name` (a domain, or `*`).
    pub fn certificate(&self, name: &str) -> Result<Option<CertificateRecord>, StoreError> {
        let Some(bytes) = self.certificates.get(name)? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(Stored::V1(record)) => Ok(Some(record)),
            Err(error) => Err(StoreError::Corrupt(format!(
                "certificate of {name}: {error}"
            ))),
        }
    }
}

impl WriteTxn<'_> {
    /// Stages the certificate served for `name` (`None` removes it) and the
    /// change that carries it to engines.
    pub fn put_certificate(&mut self, name: &str, record: Option<&CertificateRecord>) {
        match record {
            Some(record) => self.batch.insert(
                &self.store.certificates,
                name,
                serde_json::to_vec(&Stored::V1(record.clone())).expect("records serialize"),
            ),
            None => self.batch.remove(&self.store.certificates, name),
        }
        self.stage_change(ChangeOp::Tls {
            change: TlsChange::Certificate {
                name: name.to_owned(),
                pem: record.map(CertificateRecord::pem),
            },
        });
    }
}

/// Where ordering a domain's certificate from the ACME authority stands
/// (kept under `acme:<domain>` in the same keyspace).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcmeState {
    /// Failed orders since the last success.
    pub failures: u32,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<i64>,
    /// When the next order may be tried.
    pub next_attempt_at: Option<i64>,
}

const ACME_ACCOUNT: &str = "acme-account";

fn acme_key(domain: &str) -> String {
    format!("acme:{domain}")
}

/// A certificate the ACME authority is to be asked to revoke: one issued
/// for a domain since removed (kept under `revoke:<domain>:<serial>` in the
/// same keyspace until the authority has it revoked or it has expired).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub domain: String,
    pub serial: String,
    /// The chain (PEM), leaf first.
    pub certificate: String,
    pub not_after: i64,
    pub failures: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Revocation")
            .field("domain", &self.domain)
            .field("serial", &self.serial)
            .field("failures", &self.failures)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

const REVOCATION_PREFIX: &str = "revoke:";

impl Revocation {
    fn key(&self) -> String {
        format!("{REVOCATION_PREFIX}{}:{}", self.domain, self.serial)
    }
}

impl ControlStore {
    /// The ACME order state of `domain`.
    pub fn acme_state(&self, domain: &str) -> Result<Option<AcmeState>, StoreError> {
        let Some(bytes) = self.certificates.get(acme_key(domain))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("ACME state of {domain}: {e}")))
    }

    /// The ACME account's credentials (JSON), once created.
    pub fn acme_account(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .get(ACME_ACCOUNT)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Certificates waiting to be revoked.
    pub fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let mut out = Vec::new();
        for item in self.certificates.prefix(REVOCATION_PREFIX) {
            let (key, value) = item.into_inner()?;
            out.push(serde_json::from_slice(&value).map_err(|e| {
                StoreError::Corrupt(format!("revocation {}: {e}", String::from_utf8_lossy(&key)))
            })?);
        }
        Ok(out)
    }

    pub fn set_acme_account(&self, credentials: &str) -> Result<(), StoreError> {
        self.meta.insert(ACME_ACCOUNT, credentials.as_bytes())?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }
}

impl WriteTxn<'_> {
    /// Stages a pending revocation, or (`done`) its removal.
    pub fn put_revocation(&mut self, revocation: &Revocation, done: bool) {
        if done {
            self.batch
                .remove(&self.store.certificates, revocation.key());
        } else {
            self.batch.insert(
                &self.store.certificates,
                revocation.key(),
                serde_json::to_vec(revocation).expect("revocations serialize"),
            );
        }
    }

    /// Stages the ACME order state of `domain` (the default state removes it).
    pub fn put_acme_state(&mut self, domain: &str, state: &AcmeState) {
        if state == &AcmeState::default() {
            self.batch
                .remove(&self.store.certificates, acme_key(domain));
        } else {
            self.batch.insert(
                &self.store.certificates,
                acme_key(domain),
                serde_json::to_vec(state).expect("states serialize"),
            );
        }
    }
}
