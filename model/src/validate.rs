//! Validation every producer of links runs (API, bulk import, engine intake):
//! codes, domains and destinations. A destination that passes is safe to copy
//! verbatim into a `Location` header.

use thiserror::Error;

/// Longest destination accepted, in bytes of its normalized form.
pub const MAX_URL_LEN: usize = 4096;
/// Longest code accepted.
pub const MAX_CODE_LEN: usize = 64;
/// Longest domain name (RFC 1035).
pub const MAX_DOMAIN_LEN: usize = 253;
pub const MAX_TITLE_LEN: usize = 512;
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_LEN: usize = 64;

/// Why a value was refused. `field()` and `code()` feed the API's error shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("code must be 1 to {MAX_CODE_LEN} characters of A-Z, a-z, 0-9, '_' or '-'")]
    Code,
    #[error("domain is not a valid host name")]
    Domain,
    #[error("domain must be given in its normalized form (lowercase, punycode)")]
    DomainNotNormalized,
    #[error("destination is empty")]
    DestinationEmpty,
    #[error("destination is longer than {MAX_URL_LEN} bytes")]
    DestinationTooLong,
    #[error("destination contains a control character")]
    DestinationControlCharacter,
    #[error("destination contains an encoded CR, LF or NUL")]
    DestinationEncodedControl,
    #[error("destination is not an absolute URL: {0}")]
    DestinationNotAbsolute(String),
    #[error("destination scheme must be http or https, not {0:?}")]
    DestinationScheme(String),
    #[error("destination has no host")]
    DestinationNoHost,
    #[error("destination must not carry a user name or password")]
    DestinationCredentials,
    #[error("destination must be given in its normalized form")]
    DestinationNotNormalized,
    #[error("status must be 301, 302, 307 or 308, not {0}")]
    Status(u16),
    #[error("title is longer than {MAX_TITLE_LEN} bytes")]
    TitleTooLong,
    #[error("at most {MAX_TAGS} tags of 1 to {MAX_TAG_LEN} bytes without control characters")]
    Tags,
    /// A behaviour field (rules, variants, card, …), named by its path.
    #[error("{message}")]
    Field {
        field: String,
        code: &'static str,
        message: String,
    },
}

impl ValidationError {
    /// The record field the error is about.
    pub fn field(&self) -> &str {
        match self {
            Self::Field { field, .. } => field,
            Self::Code => "code",
            Self::Domain | Self::DomainNotNormalized => "domain",
            Self::Status(_) => "status",
            Self::TitleTooLong => "title",
            Self::Tags => "tags",
            _ => "url",
        }
    }

    /// A stable machine-readable error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Field { code, .. } => code,
            Self::Code => "invalid_code",
            Self::Domain | Self::DomainNotNormalized => "invalid_domain",
            Self::Status(_) => "invalid_status",
            Self::TitleTooLong => "invalid_title",
            Self::Tags => "invalid_tags",
            _ => "invalid_url",
        }
    }
}

/// Whether `byte` may appear in a code.
#[inline]
pub const fn is_code_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'
}

/// Checks a code against `[A-Za-z0-9_-]{1,64}`.
pub fn validate_code(code: &str) -> Result<&str, ValidationError> {
    if is_valid_code(code.as_bytes()) {
        Ok(code)
    } else {
        Err(ValidationError::Code)
    }
}

/// Byte-level code check, used on the request path.
#[inline]
pub fn is_valid_code(code: &[u8]) -> bool {
    !code.is_empty() && code.len() <= MAX_CODE_LEN && code.iter().all(|&b| is_code_byte(b))
}

/// Lowercases a domain, strips one trailing dot and converts IDN labels to
/// punycode. IP addresses are accepted (useful for tests and private setups);
/// ports, paths and user info are not.
pub fn normalize_domain(domain: &str) -> Result<String, ValidationError> {
    let trimmed = domain.strip_suffix('.').unwrap_or(domain);
    if trimmed.is_empty()
        || trimmed.len() > MAX_DOMAIN_LEN * 4
        || trimmed
            .bytes()
            .any(|b| b.is_ascii_control() || matches!(b, b' ' | b'/' | b'@' | b':' | b'?' | b'#'))
    {
        return Err(ValidationError::Domain);
    }
    let ascii = idna::domain_to_ascii_strict(trimmed).map_err(|_| ValidationError::Domain)?;
    if ascii.is_empty() || ascii.len() > MAX_DOMAIN_LEN {
        return Err(ValidationError::Domain);
    }
    Ok(ascii)
}

/// Validates a destination and returns its normalized form: an absolute http or
/// https URL whose bytes are all visible ASCII, with no encoded CR, LF or NUL.
pub fn validate_destination(raw: &str) -> Result<String, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::DestinationEmpty);
    }
    if raw.len() > MAX_URL_LEN {
        return Err(ValidationError::DestinationTooLong);
    }
    // The URL parser silently drops tabs and newlines; refuse them before it can.
    if raw.chars().any(char::is_control) {
        return Err(ValidationError::DestinationControlCharacter);
    }
    let parsed = url::Url::parse(raw)
        .map_err(|err| ValidationError::DestinationNotAbsolute(err.to_string()))?;
    match parsed.scheme() {
        "http" | "https" => {}
        other => return Err(ValidationError::DestinationScheme(other.to_owned())),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::DestinationNoHost);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ValidationError::DestinationCredentials);
    }
    let normalized = String::from(parsed);
    if normalized.len() > MAX_URL_LEN {
        return Err(ValidationError::DestinationTooLong);
    }
    if !normalized.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ValidationError::DestinationControlCharacter);
    }
    if contains_encoded_control(normalized.as_bytes()) {
        return Err(ValidationError::DestinationEncodedControl);
    }
    Ok(normalized)
}

/// The host of a destination, lowercase (IDN hosts in punycode), without
/// its port; `None` when it is not an absolute URL with a host.
pub fn destination_host(destination: &str) -> Option<String> {
    url::Url::parse(destination)
        .ok()?
        .host_str()
        .filter(|host| !host.is_empty())
        .map(str::to_ascii_lowercase)
}

fn contains_encoded_control(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| {
        w[0] == b'%' && w[1] == b'0' && matches!(w[2].to_ascii_lowercase(), b'0' | b'a' | b'd')
    })
}

/// Checks a tag list.
pub fn validate_tags(tags: &[String]) -> Result<(), ValidationError> {
    let bad = |tag: &String| {
        tag.is_empty() || tag.len() > MAX_TAG_LEN || tag.chars().any(char::is_control)
    };
    if tags.len() > MAX_TAGS || tags.iter().any(bad) {
        return Err(ValidationError::Tags);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        for good in ["a", "abc_DEF-123", &"x".repeat(64)] {
            assert!(validate_code(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", "a.b", &"x".repeat(65), "a%20"] {
            assert_eq!(validate_code(bad), Err(ValidationError::Code), "{bad}");
        }
    }

    #[test]
    fn domains_are_lowercased_and_punycoded() {
        assert_eq!(normalize_domain("Example.COM.").unwrap(), "example.com");
        assert_eq!(
            normalize_domain("bücher.example").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(normalize_domain("127.0.0.1").unwrap(), "127.0.0.1");
        for bad in ["", "exa mple.com", "a/b", "user@host", "host:80", "a\r\nb"] {
            assert!(normalize_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn destinations_accept_http_and_https_only() {
        assert_eq!(
            validate_destination("https://Example.com/a?b=c#d").unwrap(),
            "https://example.com/a?b=c#d"
        );
        assert_eq!(
            validate_destination("http://bücher.example/straße").unwrap(),
            "http://xn--bcher-kva.example/stra%C3%9Fe"
        );
        for (bad, field_code) in [
            ("javascript:alert(1)", "invalid_url"),
            ("data:text/html,hi", "invalid_url"),
            ("file:///etc/passwd", "invalid_url"),
            ("ftp://example.com/", "invalid_url"),
            ("/relative", "invalid_url"),
            ("https://", "invalid_url"),
            ("", "invalid_url"),
        ] {
            let err = validate_destination(bad).unwrap_err();
            assert_eq!(err.code(), field_code, "{bad}");
            assert_eq!(err.field(), "url");
        }
    }

    #[test]
    fn destinations_refuse_header_injection() {
        for bad in [
            "https://example.com/\r\nSet-Cookie: a=b",
            "https://example.com/\nx",
            "https://example.com/\tx",
            "https://example.com/%0d%0aSet-Cookie:%20a=b",
            "https://example.com/?q=%0A",
            "https://example.com/%00",
            "https://example.com/\u{7f}",
            "https://user:pw@example.com/",
        ] {
            assert!(validate_destination(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn destinations_are_bounded() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            validate_destination(&long),
            Err(ValidationError::DestinationTooLong)
        );
        let fits = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 40));
        assert!(validate_destination(&fits).is_ok());
    }

    #[test]
    fn tags() {
        assert!(validate_tags(&["a".into(), "b c".into()]).is_ok());
        assert!(validate_tags(&["".into()]).is_err());
        assert!(validate_tags(&vec!["t".to_owned(); MAX_TAGS + 1]).is_err());
    }

    #[test]
    fn destination_hosts() {
        assert_eq!(
            destination_host("https://Go.Example.com:8443/a?b=c").as_deref(),
            Some("go.example.com")
        );
        assert_eq!(
            destination_host("https://bücher.example/").as_deref(),
            Some("xn--bcher-kva.example")
        );
        assert_eq!(destination_host("not a url"), None);
    }
}
