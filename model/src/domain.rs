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
    /// Whether plain HTTP requests for the domain are sent to HTTPS (308),
    /// except ACME HTTP-01 challenges.
    #[serde(default)]
    pub https_redirect: bool,
    /// The `Strict-Transport-Security` policy HTTPS answers carry.
    #[serde(default)]
    pub hsts: Option<Hsts>,
    /// The code (a link-in-bio page's handle) whose answer `/` gets, on a
    /// domain dedicated to one page; before `root_url`.
    #[serde(default)]
    pub root_page: Option<String>,
}

/// An HSTS policy (RFC 6797).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hsts {
    /// How long browsers remember to use HTTPS only, in seconds.
    pub max_age: u32,
    pub include_subdomains: bool,
    /// Asks browsers' preload lists to include the domain; needs
    /// `include_subdomains` and a max age of at least a year.
    pub preload: bool,
}

/// The longest HSTS max age accepted: two years, what preload lists ask for.
pub const MAX_HSTS_MAX_AGE: u32 = 2 * 365 * 24 * 3600;
/// The shortest max age preload lists accept: one year.
pub const PRELOAD_MIN_MAX_AGE: u32 = 365 * 24 * 3600;

impl Hsts {
    /// The header line, CRLF included.
    pub fn header_line(&self) -> String {
        let mut line = format!("Strict-Transport-Security: max-age={}", self.max_age);
        if self.include_subdomains {
            line.push_str("; includeSubDomains");
        }
        if self.preload {
            line.push_str("; preload");
        }
        line.push_str("\r\n");
        line
    }

    /// Checks the policy; errors name `hsts.<field>`.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let error = |field: &str, code: &'static str, message: String| ValidationError::Field {
            field: format!("hsts.{field}"),
            code,
            message,
        };
        if self.max_age > MAX_HSTS_MAX_AGE {
            return Err(error(
                "max_age",
                "invalid_hsts",
                format!("hsts.max_age: at most {MAX_HSTS_MAX_AGE} seconds (two years)"),
            ));
        }
        if self.preload && (!self.include_subdomains || self.max_age < PRELOAD_MIN_MAX_AGE) {
            return Err(error(
                "preload",
                "invalid_hsts",
                format!(
                    "hsts.preload: needs include_subdomains and a max_age of at least {PRELOAD_MIN_MAX_AGE} seconds"
                ),
            ));
        }
        Ok(())
    }
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
            https_redirect: false,
            hsts: None,
            root_page: None,
        }
    }

    /// Whether the settings change nothing (as [`Self::empty`]'s, whatever
    /// their time): what a removed domain is sent to engines as.
    pub fn is_empty(&self) -> bool {
        let empty = Self {
            updated_at: self.updated_at,
            ..Self::empty(&self.domain)
        };
        self == &empty
    }

    /// Whether engines answer anything but their 404 page for this domain.
    pub fn redirects_misses(&self) -> bool {
        self.root_url.is_some() || self.not_found_url.is_some() || self.root_page.is_some()
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
        if let Some(hsts) = &self.hsts {
            hsts.validate()?;
        }
        if let Some(code) = &self.root_page {
            validate::validate_code(code).map_err(|error| field_error("root_page", error))?;
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
        let mut later = DomainSettings::empty("go.example.com");
        later.updated_at = 5;
        assert!(later.is_empty());
        assert!(!settings().is_empty());
        later.https_redirect = true;
        assert!(!later.is_empty(), "an HTTPS redirect is a setting");
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

    #[test]
    fn hsts_policies_are_checked_and_rendered() {
        let policy = Hsts {
            max_age: PRELOAD_MIN_MAX_AGE,
            include_subdomains: true,
            preload: true,
        };
        policy.validate().unwrap();
        assert_eq!(
            policy.header_line(),
            "Strict-Transport-Security: max-age=31536000; includeSubDomains; preload\r\n"
        );
        let short_preload = Hsts {
            max_age: 3600,
            ..policy
        };
        assert_eq!(
            short_preload.validate().unwrap_err().field(),
            "hsts.preload"
        );
        let too_long = Hsts {
            max_age: MAX_HSTS_MAX_AGE + 1,
            ..policy
        };
        assert_eq!(too_long.validate().unwrap_err().field(), "hsts.max_age");
        let mut settings = settings();
        settings.hsts = Some(too_long);
        assert!(settings.validate().is_err());
    }
}
