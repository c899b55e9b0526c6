//! Domains: registering them, listing the ones a workspace may use, and
//! their settings: where the root `/` and unknown codes go (engines answer
//! with a 302 there instead of their 404 page) and the status links created
//! on the domain get when the caller gives none.
//!
//! A domain's settings belong to the workspace that registered it; the
//! default domain's to the default workspace (the installation's first
//! owner's), though every workspace may create links on it. A settings
//! write is one transaction: the record and the change engines apply.

use ricochet_model::{DomainSettings, RedirectStatus, validate};

use super::{LinkError, LinkService};
use crate::store::{DEFAULT_WORKSPACE, DomainRecord};

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
}

/// An edit of a domain's settings: `None` leaves a field alone; for the
/// destinations, `Some(None)` clears one (back to the 404 page).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainChanges {
    pub root_url: Option<Option<String>>,
    pub not_found_url: Option<Option<String>>,
    pub default_status: Option<u16>,
}

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
        if domain == self.settings.default_domain
            || !self.store.add_domain(&domain, workspace, now)?
        {
            return Err(LinkError::DomainExists { domain });
        }
        Ok(domain)
    }

    /// The domains `workspace` may create links on, by name: its own and the
    /// shared default domain.
    pub fn domains(&self, workspace: &str) -> Result<Vec<DomainInfo>, LinkError> {
        Ok(self
            .store
            .domains()?
            .into_iter()
            .filter(|(name, record)| self.usable(workspace, name, record))
            .map(|(name, record)| self.info(workspace, name, &record))
            .collect())
    }

    /// One domain `workspace` may use; another workspace's domain is
    /// answered as one that does not exist.
    pub fn domain(&self, workspace: &str, name: &str) -> Result<DomainInfo, LinkError> {
        let (name, record) = self.visible_domain(workspace, name)?;
        Ok(self.info(workspace, name, &record))
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
            record.updated_at = now;
            txn.put_domain_settings(&name, &record);
            Ok(record)
        })?;
        Ok(self.info(workspace, name, &record))
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

    fn visible_domain(
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

    fn info(&self, workspace: &str, name: String, record: &DomainRecord) -> DomainInfo {
        DomainInfo {
            settings: record.settings(&name),
            created_at: record.created_at,
            owned: record.workspace_id == workspace,
            is_default: name == self.settings.default_domain,
            name,
        }
    }
}

/// `error` about a destination or status, named as `field`.
fn field_error(field: &str, error: validate::ValidationError) -> LinkError {
    LinkError::Invalid(validate::ValidationError::Field {
        field: field.to_owned(),
        code: error.code(),
        message: format!("{field}: {error}"),
    })
}
