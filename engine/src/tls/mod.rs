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
use ricochet_model::ValidationError;
use ricochet_model::tls::{DEFAULT_CERTIFICATE, ParsedCertificate, TlsChange};
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

    /// Applies one change, its certificate (when it sets one) already
    /// parsed by [`TlsChange::compile`].
    fn apply(&mut self, change: &TlsChange, parsed: Option<ParsedCertificate>) {
        match change {
            TlsChange::Certificate { name, .. } => {
                let served = parsed.map(|parsed| Served {
                    key: parsed.certified,
                    not_after: parsed.not_after,
                });
                if name == DEFAULT_CERTIFICATE {
                    self.default = served;
                } else {
                    match served {
                        Some(served) => self.by_name.insert(name.as_str().into(), served),
                        None => self.by_name.remove(name.as_str()),
                    };
                }
            }
            TlsChange::Alpn01 { domain, .. } => match parsed {
                None => {
                    self.alpn.remove(domain.as_str());
                }
                Some(parsed) => {
                    self.alpn.insert(domain.as_str().into(), parsed.certified);
                }
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

/// A change checked and its certificate parsed, ready to apply.
#[derive(Debug)]
pub struct CompiledTls<'c> {
    change: &'c TlsChange,
    parsed: Option<ParsedCertificate>,
}

impl<'c> CompiledTls<'c> {
    /// Validates `change` and parses its certificate: the only parse it gets.
    pub fn compile(change: &'c TlsChange) -> Result<Self, ValidationError> {
        let parsed = change.compile()?;
        Ok(Self { change, parsed })
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
    pub fn apply<'c>(&self, changes: impl IntoIterator<Item = CompiledTls<'c>>) {
        let mut changes = changes.into_iter().peekable();
        if changes.peek().is_none() {
            return;
        }
        let mut next = CertificateSet::clone(&self.current.load());
        for compiled in changes {
            next.apply(compiled.change, compiled.parsed);
        }
        self.current.store(Arc::new(next));
    }

    /// Compiles and applies `changes`; one that does not compile (they were
    /// validated when they arrived) is logged and leaves its slot as it was.
    pub fn compile_and_apply<'c>(&self, changes: impl IntoIterator<Item = &'c TlsChange>) {
        self.apply(changes.into_iter().filter_map(|change| {
            CompiledTls::compile(change)
                .inspect_err(|error| {
                    tracing::warn!(%error, "skipping a certificate or challenge that cannot be served")
                })
                .ok()
        }));
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
        tls.compile_and_apply(&[
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

        tls.compile_and_apply(&[
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
        tls.compile_and_apply(&[TlsChange::Certificate {
            name: "go.example.com".into(),
            pem: Some(good.clone()),
        }]);
        tls.compile_and_apply(&[TlsChange::Certificate {
            name: "go.example.com".into(),
            pem: Some(CertificatePem {
                chain: good.chain,
                key: pem_for(&["x.example"]).key,
            }),
        }]);
        assert!(tls.current().for_name("go.example.com").is_some());
    }
}
