//! HTTPS: what the TLS listeners serve, compiled when a change arrives.
//!
//! - [`TlsCertificates`] (this file): certificates by server name, the
//!   default certificate, ACME challenge answers; one immutable set swapped
//!   atomically when a batch of changes arrives, so a handshake reads it
//!   without a lock.
//! - `acceptor`: the rustls server configuration the shards share (SNI
//!   resolver, TLS 1.2 and 1.3, ALPN, rotating session-ticket keys).

mod acceptor;

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use ricochet_model::tls::{DEFAULT_CERTIFICATE, TlsChange, parse_certificate};
use rustls::sign::CertifiedKey;

pub use self::acceptor::{TlsAcceptor, UnknownSni, server_config};

/// The ALPN protocol of ACME's TLS-ALPN-01 challenge (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// What the engine serves over TLS: shared by the intake (writer) and every
/// shard's handshakes (readers).
#[derive(Debug, Default)]
pub struct TlsCertificates {
    current: ArcSwap<CertificateSet>,
}

/// One immutable state of [`TlsCertificates`].
#[derive(Debug, Default, Clone)]
pub struct CertificateSet {
    by_name: HashMap<Box<str>, Served>,
    default: Option<Served>,
    /// TLS-ALPN-01 challenge certificates, by domain.
    alpn: HashMap<Box<str>, Arc<CertifiedKey>>,
    /// HTTP-01 answers: token → key authorization.
    http01: HashMap<Box<str>, Box<[u8]>>,
}

/// A certificate as served, with what the admin port reports of it.
#[derive(Debug, Clone)]
struct Served {
    key: Arc<CertifiedKey>,
    not_after: i64,
}

impl CertificateSet {
    /// The certificate for a handshake naming `name` (lowercase), if any.
    pub fn for_name(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        self.by_name.get(name).map(|served| &served.key)
    }

    /// The default certificate.
    pub fn default_certificate(&self) -> Option<&Arc<CertifiedKey>> {
        self.default.as_ref().map(|served| &served.key)
    }

    /// The TLS-ALPN-01 challenge certificate for `domain`.
    pub fn alpn_challenge(&self, domain: &str) -> Option<&Arc<CertifiedKey>> {
        self.alpn.get(domain)
    }

    /// The HTTP-01 key authorization for `token`.
    pub fn http01(&self, token: &[u8]) -> Option<&[u8]> {
        let token = std::str::from_utf8(token).ok()?;
        self.http01.get(token).map(|answer| &answer[..])
    }

    /// Number of domains with a certificate (the default not counted).
    pub fn certificates(&self) -> usize {
        self.by_name.len()
    }

    /// The earliest expiry among served certificates (Unix milliseconds).
    pub fn earliest_expiry(&self) -> Option<i64> {
        self.by_name
            .values()
            .chain(&self.default)
            .map(|served| served.not_after)
            .min()
    }

    /// Applies one change; a certificate that cannot be parsed is logged and
    /// leaves the slot as it was (changes were validated at intake).
    fn apply(&mut self, change: &TlsChange) {
        match change {
            TlsChange::Certificate { name, pem } => {
                let served = match pem {
                    None => None,
                    Some(pem) => match parse_certificate(pem) {
                        Ok(parsed) => Some(Served {
                            key: parsed.certified,
                            not_after: parsed.not_after,
                        }),
                        Err(error) => {
                            tracing::warn!(%name, %error, "skipping a certificate that cannot be served");
                            return;
                        }
                    },
                };
                if name == DEFAULT_CERTIFICATE {
                    self.default = served;
                } else {
                    match served {
                        Some(served) => self.by_name.insert(name.as_str().into(), served),
                        None => self.by_name.remove(name.as_str()),
                    };
                }
            }
            TlsChange::Alpn01 { domain, pem } => match pem {
                None => {
                    self.alpn.remove(domain.as_str());
                }
                Some(pem) => match parse_certificate(pem) {
                    Ok(parsed) => {
                        self.alpn.insert(domain.as_str().into(), parsed.certified);
                    }
                    Err(error) => {
                        tracing::warn!(%domain, %error, "skipping a challenge certificate that cannot be served");
                    }
                },
            },
            TlsChange::Http01 {
                token,
                key_authorization,
            } => match key_authorization {
                None => {
                    self.http01.remove(token.as_str());
                }
                Some(answer) => {
                    self.http01
                        .insert(token.as_str().into(), answer.as_bytes().into());
                }
            },
        }
    }
}

impl TlsCertificates {
    /// The current set; handshakes read it, it never changes under them.
    #[inline]
    pub fn current(&self) -> arc_swap::Guard<Arc<CertificateSet>> {
        self.current.load()
    }

    /// Applies `changes` in order and makes the result current in one swap.
    /// Only the intake writes, under its lock, so no update is lost.
    pub fn apply<'c>(&self, changes: impl IntoIterator<Item = &'c TlsChange>) {
        let mut changes = changes.into_iter().peekable();
        if changes.peek().is_none() {
            return;
        }
        let mut next = CertificateSet::clone(&self.current.load());
        for change in changes {
            next.apply(change);
        }
        self.current.store(Arc::new(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::self_signed as pem_for;
    use ricochet_model::tls::CertificatePem;

    #[test]
    fn changes_replace_and_remove_slots_in_one_swap() {
        let tls = TlsCertificates::default();
        let before = tls.current();
        tls.apply(&[
            TlsChange::Certificate {
                name: "go.example.com".into(),
                pem: Some(pem_for(&["go.example.com"])),
            },
            TlsChange::Certificate {
                name: DEFAULT_CERTIFICATE.into(),
                pem: Some(pem_for(&["fallback.example"])),
            },
            TlsChange::Http01 {
                token: "tok".into(),
                key_authorization: Some("tok.thumb".into()),
            },
        ]);
        // A reader holding the old set keeps it.
        assert_eq!(before.certificates(), 0);
        let now = tls.current();
        assert!(now.for_name("go.example.com").is_some());
        assert!(now.default_certificate().is_some());
        assert_eq!(now.http01(b"tok"), Some(&b"tok.thumb"[..]));
        assert!(now.earliest_expiry().is_some());

        tls.apply(&[
            TlsChange::Certificate {
                name: "go.example.com".into(),
                pem: None,
            },
            TlsChange::Http01 {
                token: "tok".into(),
                key_authorization: None,
            },
        ]);
        let after = tls.current();
        assert!(after.for_name("go.example.com").is_none());
        assert!(after.default_certificate().is_some());
        assert_eq!(after.http01(b"tok"), None);
    }

    #[test]
    fn a_certificate_that_cannot_be_parsed_leaves_the_slot_alone() {
        let tls = TlsCertificates::default();
        let good = pem_for(&["go.example.com"]);
        tls.apply(&[TlsChange::Certificate {
            name: "go.example.com".into(),
            pem: Some(good.clone()),
        }]);
        tls.apply(&[TlsChange::Certificate {
            name: "go.example.com".into(),
            pem: Some(CertificatePem {
                chain: good.chain,
                key: pem_for(&["x.example"]).key,
            }),
        }]);
        assert!(tls.current().for_name("go.example.com").is_some());
    }
}
