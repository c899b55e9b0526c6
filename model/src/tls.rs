//! TLS material that travels through the change log like links do: the
//! certificate (chain and private key, PEM) each domain is served with, the
//! default certificate for names without one, and the answers to ACME
//! challenges that engines give while the control plane proves a domain to a
//! certificate authority. Engines compile a certificate once, when its change
//! arrives ([`parse_certificate`]); a handshake only looks it up.
//!
//! Private keys are never printed: [`CertificatePem`]'s `Debug` leaves the
//! key out.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::UnixMillis;
use crate::validate::{self, ValidationError};

/// The name under which the default certificate travels: served when a
/// client names no domain (or one without a certificate) and the engine is
/// set to answer such handshakes.
pub const DEFAULT_CERTIFICATE: &str = "*";

/// Largest PEM text accepted for a chain or a key.
pub const MAX_PEM_BYTES: usize = 64 * 1024;

/// Longest ACME challenge token (RFC 8555 tokens are 43 base64url bytes).
const MAX_TOKEN_LEN: usize = 128;

/// A certificate chain (leaf first) and its private key, both PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificatePem {
    pub chain: String,
    pub key: String,
}

impl std::fmt::Debug for CertificatePem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificatePem")
            .field("chain_bytes", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// A change to what engines serve over TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsChange {
    /// Serve `pem` for handshakes naming `name` (a normalized domain, or
    /// [`DEFAULT_CERTIFICATE`]); `None` stops serving one.
    Certificate {
        name: String,
        pem: Option<CertificatePem>,
    },
    /// ACME HTTP-01: answer `GET /.well-known/acme-challenge/{token}` on the
    /// plain HTTP port with `key_authorization`; `None` stops answering.
    Http01 {
        token: String,
        key_authorization: Option<String>,
    },
    /// ACME TLS-ALPN-01: answer handshakes for `domain` that offer only the
    /// `acme-tls/1` protocol with `pem` (the challenge certificate); `None`
    /// stops.
    Alpn01 {
        domain: String,
        pem: Option<CertificatePem>,
    },
}

impl TlsChange {
    /// Where an engine keeps this change's state: a later change with the
    /// same slot replaces it.
    pub fn slot(&self) -> Vec<u8> {
        let (kind, name) = match self {
            Self::Certificate { name, .. } => (b'c', name),
            Self::Http01 { token, .. } => (b'h', token),
            Self::Alpn01 { domain, .. } => (b'a', domain),
        };
        let mut slot = vec![kind, 0];
        slot.extend_from_slice(name.as_bytes());
        slot
    }

    /// Whether the change removes its slot's state.
    pub fn is_removal(&self) -> bool {
        match self {
            Self::Certificate { pem, .. } | Self::Alpn01 { pem, .. } => pem.is_none(),
            Self::Http01 {
                key_authorization, ..
            } => key_authorization.is_none(),
        }
    }

    /// Checks what engines rely on; certificates are parsed and their keys
    /// matched ([`parse_certificate`]).
    pub fn validate(&self) -> Result<(), ValidationError> {
        self.compile().map(drop)
    }

    /// Validates as [`Self::validate`] does and returns the certificate it
    /// parsed (for a certificate or TLS-ALPN-01 answer being set), so an
    /// engine parses each certificate once.
    pub fn compile(&self) -> Result<Option<ParsedCertificate>, ValidationError> {
        match self {
            Self::Certificate { name, pem } => {
                if name != DEFAULT_CERTIFICATE {
                    check_domain(name)?;
                }
                pem.as_ref()
                    .map(|pem| parse_certificate(pem).map_err(|e| e.into_validation("certificate")))
                    .transpose()
            }
            Self::Alpn01 { domain, pem } => {
                check_domain(domain)?;
                pem.as_ref()
                    .map(|pem| parse_certificate(pem).map_err(|e| e.into_validation("certificate")))
                    .transpose()
            }
            Self::Http01 {
                token,
                key_authorization,
            } => {
                if !is_token(token) {
                    return Err(field(
                        "token",
                        "invalid_token",
                        "token must be 1 to 128 base64url characters",
                    ));
                }
                if let Some(answer) = key_authorization
                    && !answer
                        .split_once('.')
                        .is_some_and(|(t, thumbprint)| t == token && is_token(thumbprint))
                {
                    return Err(field(
                        "key_authorization",
                        "invalid_key_authorization",
                        "key_authorization must be the token, a dot and a base64url thumbprint",
                    ));
                }
                Ok(None)
            }
        }
    }
}

fn check_domain(name: &str) -> Result<(), ValidationError> {
    if validate::normalize_domain(name)? != name {
        return Err(ValidationError::DomainNotNormalized);
    }
    Ok(())
}

/// Whether `token` is 1 to 128 base64url characters (what an ACME token and
/// a key thumbprint are).
pub fn is_token(token: &str) -> bool {
    (1..=MAX_TOKEN_LEN).contains(&token.len())
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn field(field: &str, code: &'static str, message: &str) -> ValidationError {
    ValidationError::Field {
        field: field.to_owned(),
        code,
        message: message.to_owned(),
    }
}

/// Why a certificate cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("the PEM text is longer than {MAX_PEM_BYTES} bytes")]
    TooLarge,
    #[error("the chain holds no CERTIFICATE block")]
    NoCertificate,
    #[error("the chain is not valid PEM: {0}")]
    BadPem(String),
    #[error("the certificate cannot be read: {0}")]
    BadCertificate(String),
    #[error("the key is not a PEM private key (PKCS#8, SEC1 or PKCS#1)")]
    NoKey,
    #[error("the key type is not supported (ECDSA P-256/P-384, Ed25519 or RSA)")]
    UnsupportedKey,
    #[error("the key does not belong to the certificate")]
    KeyMismatch,
}

impl CertificateError {
    /// The error as a validation error naming `field`.
    pub fn into_validation(self, field_name: &str) -> ValidationError {
        let code = match self {
            Self::KeyMismatch => "key_mismatch",
            Self::NoKey | Self::UnsupportedKey => "invalid_key",
            _ => "invalid_certificate",
        };
        field(field_name, code, &format!("{field_name}: {self}"))
    }
}

/// A certificate ready to serve, with what an operator is shown of it.
#[derive(Clone)]
pub struct ParsedCertificate {
    /// The chain and signing key rustls serves.
    pub certified: Arc<CertifiedKey>,
    /// The leaf's DNS names (subject alternative names).
    pub names: Vec<String>,
    pub not_before: UnixMillis,
    pub not_after: UnixMillis,
    /// The leaf's issuer, as a distinguished name.
    pub issuer: String,
    /// The leaf's serial number in lowercase hexadecimal, without leading
    /// zeros (as ACME authorities and `openssl x509 -serial` name it).
    pub serial: String,
}

impl std::fmt::Debug for ParsedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedCertificate")
            .field("names", &self.names)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl ParsedCertificate {
    /// Whether the leaf names `domain`, exactly or by a wildcard one label
    /// deep (`*.example.com` covers `go.example.com`).
    pub fn covers(&self, domain: &str) -> bool {
        self.names.iter().any(|name| {
            name.eq_ignore_ascii_case(domain)
                || name.strip_prefix("*.").is_some_and(|parent| {
                    domain.split_once('.').is_some_and(|(label, rest)| {
                        !label.is_empty() && rest.eq_ignore_ascii_case(parent)
                    })
                })
        })
    }
}

/// Parses a chain and key, checks that the key signs for the leaf, and
/// reads the leaf's names and validity.
pub fn parse_certificate(pem: &CertificatePem) -> Result<ParsedCertificate, CertificateError> {
    if pem.chain.len() > MAX_PEM_BYTES || pem.key.len() > MAX_PEM_BYTES {
        return Err(CertificateError::TooLarge);
    }
    let chain = CertificateDer::pem_slice_iter(pem.chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertificateError::BadPem(e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(CertificateError::NoCertificate);
    };
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| CertificateError::BadCertificate(e.to_string()))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push(dns.to_ascii_lowercase());
            }
        }
    }
    let validity = parsed.validity();
    let not_before = validity.not_before.timestamp().saturating_mul(1000);
    let not_after = validity.not_after.timestamp().saturating_mul(1000);
    let issuer = parsed.issuer().to_string();
    let serial = hex_serial(parsed.raw_serial());
    let key =
        PrivateKeyDer::from_pem_slice(pem.key.as_bytes()).map_err(|_| CertificateError::NoKey)?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|_| CertificateError::UnsupportedKey)?;
    // Compared here rather than by rustls's `keys_match`, which refuses a
    // certificate with an unknown critical extension: TLS-ALPN-01 answers
    // carry one (acmeIdentifier).
    if signer
        .public_key()
        .is_none_or(|key| key.as_ref() != parsed.public_key().raw)
    {
        return Err(CertificateError::KeyMismatch);
    }
    let certified = CertifiedKey::new(chain, signer);
    Ok(ParsedCertificate {
        certified: Arc::new(certified),
        names,
        not_before,
        not_after,
        issuer,
        serial,
    })
}

/// `bytes` (a big-endian serial) in lowercase hexadecimal without leading zeros.
fn hex_serial(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    match hex.trim_start_matches('0') {
        "" => "0".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> CertificatePem {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let generated = rcgen::generate_simple_self_signed(names).unwrap();
        CertificatePem {
            chain: generated.cert.pem(),
            key: generated.signing_key.serialize_pem(),
        }
    }

    #[test]
    fn a_certificate_is_parsed_with_its_names_and_validity() {
        let pem = self_signed(&["go.example.com", "*.links.example"]);
        let parsed = parse_certificate(&pem).unwrap();
        assert_eq!(parsed.names, ["go.example.com", "*.links.example"]);
        assert!(parsed.not_after > parsed.not_before);
        assert!(parsed.covers("go.example.com"));
        assert!(parsed.covers("a.links.example"));
        assert!(!parsed.covers("links.example"));
        assert!(!parsed.covers("a.b.links.example"));
        assert!(!parsed.covers("other.example.com"));
        assert!(!parsed.serial.is_empty() && !parsed.serial.starts_with('0'));
        assert!(
            parsed
                .serial
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(hex_serial(&[0, 0x0a, 0xbc]), "abc");
        assert_eq!(hex_serial(&[0]), "0");
        // The key never shows in debug output.
        assert!(!format!("{pem:?}").contains("PRIVATE"));
    }

    #[test]
    fn bad_material_is_refused_with_its_reason() {
        let pem = self_signed(&["go.example.com"]);
        let other = self_signed(&["go.example.com"]);
        let mismatched = CertificatePem {
            chain: pem.chain.clone(),
            key: other.key.clone(),
        };
        assert_eq!(
            parse_certificate(&mismatched).unwrap_err(),
            CertificateError::KeyMismatch
        );
        let no_key = CertificatePem {
            chain: pem.chain.clone(),
            key: "not a key".into(),
        };
        assert_eq!(
            parse_certificate(&no_key).unwrap_err(),
            CertificateError::NoKey
        );
        let no_chain = CertificatePem {
            chain: String::new(),
            key: pem.key.clone(),
        };
        assert_eq!(
            parse_certificate(&no_chain).unwrap_err(),
            CertificateError::NoCertificate
        );
        let garbage = CertificatePem {
            chain: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            key: pem.key.clone(),
        };
        assert!(matches!(
            parse_certificate(&garbage).unwrap_err(),
            CertificateError::BadCertificate(_)
        ));
        let huge = CertificatePem {
            chain: "x".repeat(MAX_PEM_BYTES + 1),
            key: pem.key,
        };
        assert_eq!(
            parse_certificate(&huge).unwrap_err(),
            CertificateError::TooLarge
        );
    }

    #[test]
    fn changes_are_validated() {
        let pem = self_signed(&["go.example.com"]);
        let good = [
            TlsChange::Certificate {
                name: "go.example.com".into(),
                pem: Some(pem.clone()),
            },
            TlsChange::Certificate {
                name: DEFAULT_CERTIFICATE.into(),
                pem: None,
            },
            TlsChange::Http01 {
                token: "tok_en-1".into(),
                key_authorization: Some("tok_en-1.thumb".into()),
            },
            TlsChange::Alpn01 {
                domain: "go.example.com".into(),
                pem: Some(pem),
            },
        ];
        for change in &good {
            change.validate().unwrap();
        }
        let bad = [
            TlsChange::Certificate {
                name: "Go.Example.com".into(),
                pem: None,
            },
            TlsChange::Http01 {
                token: "../etc".into(),
                key_authorization: None,
            },
            TlsChange::Http01 {
                token: "abc".into(),
                key_authorization: Some("other.thumb".into()),
            },
            TlsChange::Http01 {
                token: "abc".into(),
                key_authorization: Some("abc.<script>".into()),
            },
        ];
        for change in &bad {
            assert!(change.validate().is_err(), "{change:?}");
        }
        assert_ne!(good[0].slot(), good[3].slot(), "kinds keep separate slots");
        assert!(good[1].is_removal());
    }
}
