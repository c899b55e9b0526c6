//! Per-domain settings: where a short domain's root `/` and its unknown codes
//! send visitors, and the status its new links get when none is given. They
//! reach engines through the change log like links do, so every engine
//! answers a domain's misses the same way, and a restart keeps them.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;
use crate::link::RedirectStatus;
use crate::validate::{self, ValidationError};

/// The settings of one short domain. A domain without settings answers its
/// root and its unknown codes with the engine's 404 page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSettings {
    /// The normalized domain name.
    pub domain: String,
    /// Where `/` goes (302); `None`: the 404 page.
    pub root_url: Option<String>,
    /// Where an unknown code (any path that is no link) goes (302); `None`:
    /// the 404 page.
    pub not_found_url: Option<String>,
    /// The status of links created on the domain without one. Engines do not
    /// use it: it is settled when a link is created.
    pub default_status: RedirectStatus,
    pub updated_at: UnixMillis,
}

impl DomainSettings {
    /// Settings that change nothing: the engine's 404 page for root and
    /// unknown codes, 302 for new links.
    pub fn empty(domain: &str) -> Self {
        Self {
            domain: domain.to_owned(),
            root_url: None,
            not_found_url: None,
            default_status: RedirectStatus::default(),
            updated_at: 0,
        }
    }

    /// Whether engines answer anything but their 404 page for this domain.
    pub fn redirects_misses(&self) -> bool {
        self.root_url.is_some() || self.not_found_url.is_some()
    }

    /// Checks what engines rely on: a normalized domain and normalized,
    /// header-safe destinations (the rules links' destinations follow).
    pub fn validate(&self) -> Result<(), ValidationError> {
        if validate::normalize_domain(&self.domain)? != self.domain {
            return Err(ValidationError::DomainNotNormalized);
        }
        for (field, url) in [
            ("root_url", &self.root_url),
            ("not_found_url", &self.not_found_url),
        ] {
            if let Some(url) = url {
                match validate::validate_destination(url) {
                    Ok(normalized) if &normalized == url => {}
                    Ok(_) => {
                        return Err(field_error(
                            field,
                            ValidationError::DestinationNotNormalized,
                        ));
                    }
                    Err(error) => return Err(field_error(field, error)),
                }
            }
        }
        Ok(())
    }
}

/// `error` about a destination, named as `field`.
fn field_error(field: &str, error: ValidationError) -> ValidationError {
    ValidationError::Field {
        field: field.to_owned(),
        code: error.code(),
        message: format!("{field}: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DomainSettings {
        DomainSettings {
            root_url: Some("https://www.example.com/".into()),
            not_found_url: Some("https://www.example.com/missing".into()),
            ..DomainSettings::empty("go.example.com")
        }
    }

    #[test]
    fn valid_settings_pass() {
        settings().validate().unwrap();
        DomainSettings::empty("go.example.com").validate().unwrap();
        assert!(settings().redirects_misses());
        assert!(!DomainSettings::empty("go.example.com").redirects_misses());
    }

    #[test]
    fn bad_destinations_name_their_field() {
        let mut bad = settings();
        bad.not_found_url = Some("javascript:alert(1)".into());
        let error = bad.validate().unwrap_err();
        assert_eq!(error.field(), "not_found_url");
        assert_eq!(error.code(), "invalid_url");

        let mut unnormalized = settings();
        unnormalized.root_url = Some("HTTPS://WWW.Example.com".into());
        assert_eq!(unnormalized.validate().unwrap_err().field(), "root_url");

        let mut domain = settings();
        domain.domain = "Go.Example.com".into();
        assert_eq!(domain.validate().unwrap_err().field(), "domain");
    }
}
