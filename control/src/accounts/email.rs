//! Email addresses as account names: trimmed, lowercased, one `@`, a plain
//! ASCII local part and a host name the link rules accept.

/// Longest accepted address (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// The normalized address, or why `email` is not one.
pub fn normalize_email(email: &str) -> Result<String, &'static str> {
    let email = email.trim().to_ascii_lowercase();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err("an email address has 3 to 254 characters");
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err("an email address has the form name@example.com");
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b));
    if !local_ok {
        return Err("the part before @ has characters an email address cannot have");
    }
    match ricochet_model::normalize_domain(domain) {
        Ok(normalized) if normalized == domain => Ok(email),
        _ => Err("the part after @ is not a host name"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email("  Ada.Lovelace@Example.COM ").unwrap(),
            "ada.lovelace@example.com"
        );
        assert_eq!(
            normalize_email("owner@ricochet.local").unwrap(),
            "owner@ricochet.local"
        );
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a b@example.com",
            "a..b@example.com",
            "a@exa mple.com",
            "é@example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }
}
