//! Feeds arbitrary bytes, in arbitrary read sizes, to the engine's TLS
//! accept path: rustls's server handshake with the engine's configuration
//! (TLS 1.2 and 1.3, ALPN `http/1.1` and `acme-tls/1`, session tickets) and
//! its certificate resolver (SNI lowercasing, the ACME challenge branch, the
//! default certificate). It must never panic; a handshake that fails is the
//! expected answer to noise.
#![no_main]

#[path = "duplex.rs"]
mod duplex;

use std::sync::{Arc, OnceLock};

use duplex::Duplex;
use libfuzzer_sys::fuzz_target;
use ricochet_engine::tls::{TlsAcceptor, TlsCertificates, UnknownSni, server_config};
use ricochet_model::tls::{DEFAULT_CERTIFICATE, TlsChange};

/// The engine's acceptor with a certificate for `fuzz.example`, an ACME
/// challenge certificate for `acme.example` and a default certificate.
fn acceptor() -> &'static TlsAcceptor {
    static ACCEPTOR: OnceLock<TlsAcceptor> = OnceLock::new();
    ACCEPTOR.get_or_init(|| {
        let certificates = Arc::new(TlsCertificates::default());
        let self_signed = ricochet_engine::test_util::self_signed;
        let changes = [
            TlsChange::Certificate {
                name: "fuzz.example".into(),
                pem: Some(self_signed(&["fuzz.example"])),
            },
            TlsChange::Certificate {
                name: DEFAULT_CERTIFICATE.into(),
                pem: Some(self_signed(&["default.example"])),
            },
            TlsChange::Alpn01 {
                domain: "acme.example".into(),
                pem: Some(self_signed(&["acme.example"])),
            },
        ];
        certificates.compile_and_apply(changes.iter());
        let config = server_config(certificates, UnknownSni::Default).expect("a TLS configuration");
        TlsAcceptor::from(config)
    })
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let stream = Duplex {
        input,
        chunk: usize::from(chunk.max(1)),
        output: Vec::new(),
    };
    // Noise never completes a handshake; whatever the outcome, no panic.
    let _ = runtime().block_on(acceptor().accept(stream));
});
