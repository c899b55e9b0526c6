//! Domains: registering them, listing the ones a workspace may use, and
//! their settings: where the root `/` and unknown codes go (engines answer
//! with a 302 there instead of their 404 page) and the status links created
//! on the domain get when the caller gives none.
//!
//! A domain's settings belong to the workspace that registered it; the
//! default domain's to the default workspace (the installation's first
//! owner's), though every workspace may create links on it. A settings
//! write is one transaction: the record and the change engines apply.

use ricochet_model::domain::Hsts;
use ricochet_model::tls::{
    CertificateError, CertificatePem, DEFAULT_CERTIFICATE, ParsedCertificate, parse_certificate,
};
use ricochet_model::{DomainSettings, RedirectStatus, validate};

use super::{LinkError, LinkService};
use crate::store::{
    AcmeState, CertificateRecord, CertificateSource, DEFAULT_WORKSPACE, DomainRecord,
    DomainVerification, StoreError,
};

/// A domain as a workspace sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    pub name: String,
    pub created_at: i64,
    pub settings: DomainSettings,
    /// Whether the workspace may change the settings (it owns the domain).
    pub owned: bool,
    /// Whether this is the installation's shared default domain.
    pub is_default: bool,
    /// The certificate engines serve for the domain, if any.
    pub certificate: Option<CertificateInfo>,
    /// Its proof of ownership.
    pub verification: DomainVerification,
    /// Where ordering its certificate from the ACME authority stands, after
    /// a failure.
    pub certificate_order: Option<AcmeState>,
    /// Where its certificate stands; `None`: none served and none to order.
    pub certificate_status: Option<CertificateStatus>,
}

/// Where a domain's certificate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Served and not expired (a failed renewal shows as its `last_error`).
    Valid,
    /// Served, but past its `not_after`.
    Expired,
    /// The ACME authority is to issue one (the domain is verified).
    Pending,
    /// None served, and the last order failed.
    Failed,
}

impl CertificateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Expired => "expired",
            Self::Pending => "pending",
            Self::Failed => "failed",
        }
    }

    /// The status of a served certificate expiring at `not_after`.
    pub fn of_served(not_after: i64, now: i64) -> Self {
        if not_after <= now {
            Self::Expired
        } else {
            Self::Valid
        }
    }
}

/// What is shown of a served certificate (never its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub source: CertificateSource,
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub issuer: String,
    pub serial: String,
    pub updated_at: i64,
}

impl From<&CertificateRecord> for CertificateInfo {
    fn from(record: &CertificateRecord) -> Self {
        Self {
            source: record.source,
            names: record.names.clone(),
            not_before: record.not_before,
            not_after: record.not_after,
            issuer: record.issuer.clone(),
            serial: record.serial.clone(),
            updated_at: record.updated_at,
        }
    }
}

/// An edit of a domain's settings: `None` leaves a field alone; for the
/// destinations, `Some(None)` clears one (back to the 404 page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainChanges {
    pub root_url: Option<Option<String>>,
    pub not_found_url: Option<Option<String>>,
    pub default_status: Option<u16>,
    pub https_redirect: Option<bool>,
    /// `Some(None)` switches HSTS off.
    pub hsts: Option<Option<Hsts>>,
}

/// What removing a domain did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRemoval {
    pub name: String,
    /// Links on the domain removed with it (engines answer 404 for them).
    pub links_purged: u64,
    /// Whether a certificate the ACME authority issued is queued for
    /// revocation.
    pub revocation_queued: bool,
}

/// Links purged in one transaction when a domain is removed.
const PURGE_CHUNK: usize = 1_000;

impl DomainChanges {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl LinkService {
    /// Registers a domain for `workspace`; returns its normalized name. A
    /// name registered by any workspace is taken.
    pub fn add_domain(&self, workspace: &str, domain: &str, now: i64) -> Result<String, LinkError> {
        let domain = validate::normalize_domain(domain)?;
        let record = DomainRecord {
            verification: self.new_verification(now),
            ..DomainRecord::new(workspace, now)
        };
        if domain == self.settings.default_domain
            || !self.store.add_domain_record(&domain, &record)?
        {
            return Err(LinkError::DomainExists { domain });
        }
        Ok(domain)
    }

    /// The domains `workspace` may create links on, by name: its own and the
    /// shared default domain.
    pub fn domains(&self, workspace: &str) -> Result<Vec<DomainInfo>, LinkError> {
        self.store
            .domains()?
            .into_iter()
            .filter(|(name, record)| self.usable(workspace, name, record))
            .map(|(name, record)| self.info(workspace, name, &record))
            .collect()
    }

    /// One domain `workspace` may use; another workspace's domain is
    /// answered as one that does not exist.
    pub fn domain(&self, workspace: &str, name: &str) -> Result<DomainInfo, LinkError> {
        let (name, record) = self.visible_domain(workspace, name)?;
        self.info(workspace, name, &record)
    }

    /// Changes a domain's settings. Destinations are validated as link
    /// destinations are, and may not point at a short-link domain of this
    /// installation (a root or unknown-code redirect could loop).
    pub fn update_domain(
        &self,
        workspace: &str,
        name: &str,
        changes: &DomainChanges,
        now: i64,
    ) -> Result<DomainInfo, LinkError> {
        let (name, _) = self.visible_domain(workspace, name)?;
        let destinations = [
            ("root_url", &changes.root_url),
            ("not_found_url", &changes.not_found_url),
        ];
        let mut checked = [None, None];
        for ((field, change), out) in destinations.into_iter().zip(&mut checked) {
            if let Some(Some(url)) = change {
                let url = validate::validate_destination(url)
                    .map_err(|error| field_error(field, error))?;
                self.refuse_short_domain(field, &url)?;
                *out = Some(url);
            }
        }
        let status = changes
            .default_status
            .map(|code| {
                RedirectStatus::try_from(code).map_err(|e| field_error("default_status", e))
            })
            .transpose()?;
        if let Some(Some(hsts)) = &changes.hsts {
            hsts.validate()?;
        }
        let [root_url, not_found_url] = checked;
        let record = self.store.write(|txn| {
            // Read inside the transaction: concurrent edits of other fields
            // of the same domain are not lost.
            let mut record =
                self.store
                    .domain(&name)?
                    .ok_or_else(|| LinkError::DomainNotFound {
                        domain: name.clone(),
                    })?;
            if record.workspace_id != workspace {
                return Err(LinkError::DomainNotOwned {
                    domain: name.clone(),
                });
            }
            if changes.is_empty() {
                return Ok(record);
            }
            if let Some(change) = &changes.root_url {
                record.root_url = change.as_ref().and(root_url);
            }
            if let Some(change) = &changes.not_found_url {
                record.not_found_url = change.as_ref().and(not_found_url);
            }
            if let Some(status) = status {
                record.default_status = status;
            }
            if let Some(https_redirect) = changes.https_redirect {
                record.https_redirect = https_redirect;
            }
            if let Some(hsts) = changes.hsts {
                record.hsts = hsts;
            }
            record.updated_at = now;
            txn.put_domain_settings(&name, &record);
            Ok(record)
        })?;
        self.info(workspace, name, &record)
    }

    /// Removes a domain the workspace registered: its record, verification,
    /// certificate (one the ACME authority issued is revoked) and settings,
    /// on engines too. A domain with links is refused unless `purge_links`,
    /// which first removes them for good (engines then answer 404 for them)
    /// in transactions of [`PURGE_CHUNK`]; an interrupted removal leaves the
    /// domain with fewer links and is finished by calling again. The
    /// installation's default domain cannot be removed.
    pub fn remove_domain(
        &self,
        workspace: &str,
        name: &str,
        purge_links: bool,
        now: i64,
    ) -> Result<DomainRemoval, LinkError> {
        let (name, _) = self.visible_domain(workspace, name)?;
        if name == self.settings.default_domain {
            return Err(LinkError::DefaultDomain { domain: name });
        }
        self.owned_domain(&name, workspace)?;
        let mut links_purged = 0u64;
        loop {
            let ids = self.store.domain_link_ids(&name, PURGE_CHUNK)?;
            if ids.is_empty() {
                break;
            }
            if !purge_links {
                let links = self.store.domain_link_ids(&name, usize::MAX)?.len();
                return Err(LinkError::DomainHasLinks {
                    domain: name,
                    links,
                });
            }
            links_purged += self.store.write(|txn| {
                let mut purged = 0;
                for &id in &ids {
                    let Some(link) = txn.link(id)? else { continue };
                    let owner = txn
                        .link_workspace(id)?
                        .unwrap_or_else(|| workspace.to_owned());
                    txn.purge_link(&owner, &link)?;
                    purged += 1;
                }
                Ok::<_, LinkError>(purged)
            })?;
        }
        let revocation_queued = self.store.write(|txn| {
            // Under the writer's lock: no link can be created on the domain
            // between this check and the record's removal.
            self.owned_domain(&name, workspace)?;
            if !self.store.domain_link_ids(&name, 1)?.is_empty() {
                return Err(LinkError::DomainHasLinks {
                    domain: name.clone(),
                    links: self.store.domain_link_ids(&name, usize::MAX)?.len(),
                });
            }
            let revocable = self.store.certificate(&name)?.is_some_and(|certificate| {
                certificate.source == CertificateSource::Acme && certificate.not_after > now
            });
            txn.remove_domain(&name, now)?;
            Ok::<_, LinkError>(revocable)
        })?;
        tracing::info!(domain = %name, links_purged, revocation_queued, "domain removed");
        Ok(DomainRemoval {
            name,
            links_purged,
            revocation_queued,
        })
    }

    /// Serves an uploaded certificate (PEM chain, leaf first, and private
    /// key) for a domain the workspace owns. The chain must parse, the key
    /// must sign for the leaf, the leaf must name the domain and must not
    /// have expired; a refused upload changes nothing.
    pub fn set_certificate(
        &self,
        workspace: &str,
        name: &str,
        pem: CertificatePem,
        now: i64,
    ) -> Result<DomainInfo, LinkError> {
        let (name, _) = self.visible_domain(workspace, name)?;
        if !self
            .owned_domain(&name, workspace)?
            .verification
            .is_verified()
        {
            return Err(LinkError::DomainNotVerified { domain: name });
        }
        let parsed = checked_certificate(&pem, Some(&name), now)?;
        let record = CertificateRecord::new(CertificateSource::Uploaded, pem, &parsed, now);
        let domain = self.store.write(|txn| {
            let domain = self.owned_domain(&name, workspace)?;
            txn.put_certificate(&name, Some(&record));
            Ok::<_, LinkError>(domain)
        })?;
        self.info(workspace, name, &domain)
    }

    /// Stops serving a certificate for a domain the workspace owns.
    pub fn remove_certificate(&self, workspace: &str, name: &str) -> Result<DomainInfo, LinkError> {
        let (name, _) = self.visible_domain(workspace, name)?;
        let domain = self.store.write(|txn| {
            let domain = self.owned_domain(&name, workspace)?;
            if self.store.certificate(&name)?.is_some() {
                txn.put_certificate(&name, None);
            }
            Ok::<_, LinkError>(domain)
        })?;
        self.info(workspace, name, &domain)
    }

    /// The default certificate: served to handshakes naming no domain with
    /// a certificate (when engines are set to).
    pub fn default_certificate(&self) -> Result<Option<CertificateInfo>, LinkError> {
        Ok(self
            .store
            .certificate(DEFAULT_CERTIFICATE)?
            .as_ref()
            .map(CertificateInfo::from))
    }

    /// Sets (or with `None` removes) the default certificate; the default
    /// workspace's, as the default domain is.
    pub fn set_default_certificate(
        &self,
        workspace: &str,
        pem: Option<CertificatePem>,
        now: i64,
    ) -> Result<Option<CertificateInfo>, LinkError> {
        if workspace != DEFAULT_WORKSPACE {
            return Err(LinkError::DomainNotOwned {
                domain: DEFAULT_CERTIFICATE.to_owned(),
            });
        }
        let record = match pem {
            None => None,
            Some(pem) => {
                let parsed = checked_certificate(&pem, None, now)?;
                Some(CertificateRecord::new(
                    CertificateSource::Uploaded,
                    pem,
                    &parsed,
                    now,
                ))
            }
        };
        self.store.write(|txn| {
            if record.is_some() || self.store.certificate(DEFAULT_CERTIFICATE)?.is_some() {
                txn.put_certificate(DEFAULT_CERTIFICATE, record.as_ref());
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(record.as_ref().map(CertificateInfo::from))
    }

    /// The record of `name` when `workspace` registered it.
    pub(super) fn owned_domain(
        &self,
        name: &str,
        workspace: &str,
    ) -> Result<DomainRecord, LinkError> {
        let record = self
            .store
            .domain(name)?
            .ok_or_else(|| LinkError::DomainNotFound {
                domain: name.to_owned(),
            })?;
        if record.workspace_id != workspace {
            return Err(LinkError::DomainNotOwned {
                domain: name.to_owned(),
            });
        }
        Ok(record)
    }

    /// Registers the shared default domain (at start).
    pub fn register_default_domain(&self, now: i64) -> Result<(), LinkError> {
        self.store
            .add_domain(&self.settings.default_domain, DEFAULT_WORKSPACE, now)?;
        Ok(())
    }

    /// The record of `domain` (normalized) when `workspace` may create links
    /// on it.
    pub(super) fn usable_domain(
        &self,
        workspace: &str,
        domain: &str,
    ) -> Result<Option<DomainRecord>, LinkError> {
        Ok(self
            .store
            .domain(domain)?
            .filter(|record| self.usable(workspace, domain, record)))
    }

    pub(super) fn visible_domain(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<(String, DomainRecord), LinkError> {
        let not_found = || LinkError::DomainNotFound {
            domain: name.to_owned(),
        };
        let name = validate::normalize_domain(name).map_err(|_| not_found())?;
        let record = self
            .usable_domain(workspace, &name)?
            .ok_or_else(not_found)?;
        Ok((name, record))
    }

    fn usable(&self, workspace: &str, name: &str, record: &DomainRecord) -> bool {
        name == self.settings.default_domain || record.workspace_id == workspace
    }

    pub(super) fn info(
        &self,
        workspace: &str,
        name: String,
        record: &DomainRecord,
    ) -> Result<DomainInfo, LinkError> {
        let certificate = self
            .store
            .certificate(&name)?
            .as_ref()
            .map(CertificateInfo::from);
        let certificate_order = self.store.acme_state(&name)?;
        let now = ricochet_model::now_millis();
        let certificate_status = match (&certificate, &certificate_order) {
            (Some(served), _) => Some(CertificateStatus::of_served(served.not_after, now)),
            (None, Some(_)) => Some(CertificateStatus::Failed),
            (None, None)
                if self.settings.acme
                    && record.verification.is_verified()
                    && crate::acme::orderable(&name, &self.settings.default_domain) =>
            {
                Some(CertificateStatus::Pending)
            }
            (None, None) => None,
        };
        Ok(DomainInfo {
            settings: record.settings(&name),
            created_at: record.created_at,
            owned: record.workspace_id == workspace,
            is_default: name == self.settings.default_domain,
            certificate,
            verification: record.verification.clone(),
            certificate_order,
            certificate_status,
            name,
        })
    }
}

/// Parses an uploaded certificate and checks it can be served for `domain`
/// (any name, for the default certificate) at `now`.
fn checked_certificate(
    pem: &CertificatePem,
    domain: Option<&str>,
    now: i64,
) -> Result<ParsedCertificate, LinkError> {
    let parsed = parse_certificate(pem).map_err(|error| {
        let field = match error {
            CertificateError::NoKey
            | CertificateError::UnsupportedKey
            | CertificateError::KeyMismatch => "private_key",
            _ => "certificate",
        };
        LinkError::Invalid(error.into_validation(field))
    })?;
    let refuse = |code: &'static str, message: String| {
        LinkError::Invalid(validate::ValidationError::Field {
            field: "certificate".to_owned(),
            code,
            message,
        })
    };
    if let Some(domain) = domain
        && !parsed.covers(domain)
    {
        return Err(refuse(
            "certificate_name_mismatch",
            format!(
                "certificate: the certificate names {} and not {domain}",
                parsed.names.join(", ")
            ),
        ));
    }
    if parsed.not_after <= now {
        return Err(refuse(
            "certificate_expired",
            "certificate: the certificate has expired".to_owned(),
        ));
    }
    Ok(parsed)
}

/// `error` about a destination or status, named as `field`.
fn field_error(field: &str, error: validate::ValidationError) -> LinkError {
    LinkError::Invalid(validate::ValidationError::Field {
        field: field.to_owned(),
        code: error.code(),
        message: format!("{field}: {error}"),
    })
}
