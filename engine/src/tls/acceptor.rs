//! The rustls server configuration every shard shares: certificates chosen
//! by SNI from the current [`CertificateSet`](super::CertificateSet), TLS 1.2
//! and 1.3, ALPN `http/1.1` (and `acme-tls/1` for TLS-ALPN-01 validation),
//! session tickets whose keys are shared by the shards and rotated, and a
//! session cache for TLS 1.2 resumption.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert, ServerConfig, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use super::{ACME_TLS_ALPN, TlsCertificates};

/// Sessions kept for TLS 1.2 resumption by id, across all shards.
const SESSION_CACHE_ENTRIES: usize = 16 * 1024;

/// What a handshake gets when it names no server, or one without a
/// certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownSni {
    /// The default certificate (`*`), when one is set; else refused.
    #[default]
    Default,
    /// A handshake failure alert.
    Refuse,
}

/// Accepts TLS connections with the shared configuration.
pub type TlsAcceptor = tokio_rustls::TlsAcceptor;

#[derive(Debug)]
struct Resolver {
    certificates: Arc<TlsCertificates>,
    unknown: UnknownSni,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.certificates.current();
        let name = hello.server_name().map(|name| {
            if name.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Owned(name.to_ascii_lowercase())
            } else {
                std::borrow::Cow::Borrowed(name)
            }
        });
        // A TLS-ALPN-01 validator offers acme-tls/1 alone, and gets the
        // challenge certificate or nothing.
        if let Some(mut protocols) = hello.alpn()
            && protocols.next() == Some(ACME_TLS_ALPN)
            && protocols.next().is_none()
        {
            return name.and_then(|name| set.alpn_challenge(&name).cloned());
        }
        if let Some(found) = name.as_deref().and_then(|name| set.for_name(name)) {
            return Some(found.clone());
        }
        match self.unknown {
            UnknownSni::Default => set.default_certificate().cloned(),
            UnknownSni::Refuse => None,
        }
    }
}

/// The server configuration for `certificates`.
pub fn server_config(
    certificates: Arc<TlsCertificates>,
    unknown: UnknownSni,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver {
            certificates,
            unknown,
        }));
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    // One rotating ticketer for every shard: a ticket one shard issued
    // resumes on any other.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    Ok(Arc::new(config))
}
