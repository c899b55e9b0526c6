//! A link's short URL as people type it and QR codes carry it: the default
//! domain's configured base (`links.short_url_base`, e.g. `https://sho.rt` or
//! `http://127.0.0.1:8080`), or `https://<domain>` for a custom domain with a
//! certificate (uploaded or ordered by ACME), else `http://<domain>`.

use ricochet_model::LinkRecord;

use super::{LinkError, LinkService, LinkSettings};
use crate::store::{ControlStore, StoreError};

impl LinkService {
    /// The URL that redirects to `link`'s destination.
    pub fn short_url(&self, link: &LinkRecord) -> Result<String, LinkError> {
        Ok(format!(
            "{}/{}",
            self.domain_base_url(&link.domain)?,
            link.code
        ))
    }

    /// `scheme://host[:port]` of short links on `domain`, no trailing slash.
    pub fn domain_base_url(&self, domain: &str) -> Result<String, LinkError> {
        Ok(base_url(self.settings(), self.store(), domain)?)
    }
}

/// `scheme://host[:port]` of short links on `domain` under `settings`, no
/// trailing slash.
pub fn base_url(
    settings: &LinkSettings,
    store: &ControlStore,
    domain: &str,
) -> Result<String, StoreError> {
    if domain == settings.default_domain {
        if !settings.short_url_base.is_empty() {
            return Ok(settings.short_url_base.trim_end_matches('/').to_owned());
        }
    } else if settings.acme || store.certificate(domain)?.is_some() {
        return Ok(format!("https://{domain}"));
    }
    Ok(format!("http://{domain}"))
}
