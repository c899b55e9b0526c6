//! What the connection driver speaks over its mio sockets: plain TCP, or TLS
//! (rustls, TLS 1.3 and 1.2, ALPN `http/1.1`) on the same non-blocking socket.
//! Both read and write as a socket does, so the driver is generic over them
//! and plain HTTP pays nothing for TLS.
//!
//! Certificates are not verified on the measured path, as h2load and wrk do:
//! a load generator measures servers, it does not authenticate them, and
//! verifying every handshake would spend the generator's CPU on it.

use std::io::{self, ErrorKind as IoErrorKind, Read, Write};
use std::net::IpAddr;
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind, SignatureScheme,
};

/// Sessions a thread's connections keep for resumption (`tls_resumption`).
const RESUMABLE_SESSIONS: usize = 256;

/// How a TLS handshake went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handshake {
    Full,
    /// The session of an earlier connection was resumed.
    Resumed,
}

/// One connection as the driver sees it. Reads and writes are non-blocking
/// and socket-like: `WouldBlock` when the socket has nothing (more) to give
/// or take, `Ok(0)` from `read` at the end of the stream, errors otherwise.
pub trait Transport: Sized {
    /// What opening a connection needs (TLS: the client configuration and
    /// the server name).
    type Setup;
    /// Whether a read shorter than the buffer drained the socket, so the
    /// edge-triggered driver may wait for the next edge. True for TCP; not
    /// over TLS, where rustls may hold more plaintext and the socket more
    /// records.
    const SHORT_READ_DRAINS: bool;
    /// Whether a handshake follows the TCP connect.
    const HANDSHAKE: bool;

    /// Wraps a socket whose connect is under way.
    fn open(socket: TcpStream, setup: &Self::Setup) -> io::Result<Self>;
    fn socket(&self) -> &TcpStream;
    fn socket_mut(&mut self) -> &mut TcpStream;
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Whether bytes the transport holds (TLS records) wait for the socket.
    fn has_pending(&self) -> bool;
    /// Sends what the transport holds; `WouldBlock` when the socket is full.
    fn flush_pending(&mut self) -> io::Result<()>;
    /// Moves the handshake on: `Ok(None)` while it goes on (wait for the
    /// next edge), `Ok(Some(_))` once it is complete.
    fn handshake(&mut self) -> io::Result<Option<Handshake>>;
    /// Ends the connection as a well-behaved client does (TLS: a
    /// `close_notify`), best effort, before the socket is closed.
    fn close(&mut self);
}

/// Plain HTTP: the socket itself.
impl Transport for TcpStream {
    type Setup = ();
    const SHORT_READ_DRAINS: bool = true;
    const HANDSHAKE: bool = false;

    fn open(socket: TcpStream, _setup: &()) -> io::Result<Self> {
        Ok(socket)
    }

    #[inline]
    fn socket(&self) -> &TcpStream {
        self
    }

    #[inline]
    fn socket_mut(&mut self) -> &mut TcpStream {
        self
    }

    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(self, buf)
    }

    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }

    #[inline]
    fn has_pending(&self) -> bool {
        false
    }

    #[inline]
    fn flush_pending(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn handshake(&mut self) -> io::Result<Option<Handshake>> {
        Ok(Some(Handshake::Full))
    }

    #[inline]
    fn close(&mut self) {}
}

/// What a thread's TLS connections share: one client configuration (so, with
/// resumption, one session store) and the server name of every handshake.
#[derive(Debug, Clone)]
pub struct TlsClient {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
}

impl TlsClient {
    /// A thread's TLS setup for handshakes naming `host` (the Host header of
    /// the requests; its port is dropped, and an IP address sends no SNI).
    /// With `resumption` the thread's connections resume each other's
    /// sessions; without, every handshake is a full one.
    pub fn new(host: &str, resumption: bool) -> Result<Self, String> {
        Ok(Self {
            config: client_config(resumption).map_err(|e| format!("cannot configure TLS: {e}"))?,
            server_name: server_name(host)?,
        })
    }
}

/// A TLS connection over a non-blocking socket.
#[derive(Debug)]
pub struct TlsConnection {
    socket: TcpStream,
    session: ClientConnection,
}

impl TlsConnection {
    /// Hands rustls what arrived; on a TLS error, sends its alert and fails.
    fn process(&mut self) -> io::Result<()> {
        if let Err(error) = self.session.process_new_packets() {
            let _ = self.flush_pending();
            return Err(io::Error::new(IoErrorKind::InvalidData, error));
        }
        Ok(())
    }

    /// Flushes, treating a full socket as success: the records wait in
    /// rustls for the next writable edge.
    fn flush_some(&mut self) -> io::Result<()> {
        match self.flush_pending() {
            Err(e) if e.kind() == IoErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}

impl Transport for TlsConnection {
    type Setup = TlsClient;
    const SHORT_READ_DRAINS: bool = false;
    const HANDSHAKE: bool = true;

    fn open(socket: TcpStream, setup: &TlsClient) -> io::Result<Self> {
        let session = ClientConnection::new(setup.config.clone(), setup.server_name.clone())
            .map_err(io::Error::other)?;
        Ok(Self { socket, session })
    }

    fn socket(&self) -> &TcpStream {
        &self.socket
    }

    fn socket_mut(&mut self) -> &mut TcpStream {
        &mut self.socket
    }

    /// Plaintext rustls holds first; otherwise records from the socket until
    /// some plaintext, the end of the stream, or `WouldBlock`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.session.reader().read(buf) {
                // Ok(0): the server sent close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == IoErrorKind::WouldBlock => {}
                // The server closed without close_notify: an end of stream
                // like any other (HTTP framing tells a truncated answer).
                Err(e) if e.kind() == IoErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.session.read_tls(&mut self.socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    self.process()?;
                    // Whatever the records asked for (a key update, an alert).
                    self.flush_some()?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Encrypts `buf` when the socket has taken everything before it, so a
    /// full socket pushes back as it does on plain TCP.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.flush_pending()?;
        let accepted = self.session.writer().write(buf)?;
        self.flush_some()?;
        Ok(accepted)
    }

    fn has_pending(&self) -> bool {
        self.session.wants_write()
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.socket) {
                Ok(0) => return Err(IoErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn handshake(&mut self) -> io::Result<Option<Handshake>> {
        loop {
            self.flush_some()?;
            if !self.session.is_handshaking() {
                let kind = match self.session.handshake_kind() {
                    Some(HandshakeKind::Resumed) => Handshake::Resumed,
                    _ => Handshake::Full,
                };
                return Ok(Some(kind));
            }
            match self.session.read_tls(&mut self.socket) {
                Ok(0) => {
                    return Err(io::Error::new(
                        IoErrorKind::UnexpectedEof,
                        "the server closed the connection during the TLS handshake",
                    ));
                }
                Ok(_) => self.process()?,
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn close(&mut self) {
        self.session.send_close_notify();
        let _ = self.flush_pending();
    }
}

/// The load tester's TLS client configuration: the ring provider, TLS 1.3
/// and 1.2, ALPN `http/1.1`, certificates accepted unverified. With
/// `resumption`, sessions are kept in a store of this configuration's own
/// (TLS 1.3 tickets, TLS 1.2 ids and tickets); without, none is kept or
/// offered and every handshake is a full one.
pub fn client_config(resumption: bool) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(UnverifiedServerCertificate {
        schemes: provider
            .signature_verification_algorithms
            .supported_schemes(),
    });
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = if resumption {
        Resumption::in_memory_sessions(RESUMABLE_SESSIONS)
    } else {
        Resumption::disabled()
    };
    Ok(Arc::new(config))
}

/// The server name a handshake sends for a Host header value: without its
/// port; an IP address is kept as such (rustls then sends no SNI, as
/// clients do for addresses).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let name = host_without_port(host);
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(ServerName::IpAddress(ip.into()));
    }
    ServerName::try_from(name.to_owned())
        .map_err(|e| format!("{name:?} cannot be a TLS server name: {e}"))
}

/// `host` of `host:port`, `[v6]:port`, `[v6]` or a bare name or address.
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port))
            if !name.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            name
        }
        _ => host,
    }
}

/// Accepts any server certificate and any handshake signature without
/// checking them: the measured path does not verify (see the module's
/// documentation). Never used to reach anything but the server under test.
#[derive(Debug)]
struct UnverifiedServerCertificate {
    schemes: Vec<SignatureScheme>,
}

impl ServerCertVerifier for UnverifiedServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_the_port_and_keep_addresses() {
        let dns = |host: &str| match server_name(host).unwrap() {
            ServerName::DnsName(name) => name.as_ref().to_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(dns("localhost"), "localhost");
        assert_eq!(dns("go.example:8443"), "go.example");
        for address in ["127.0.0.1", "127.0.0.1:443", "[::1]:443", "::1", "[::1]"] {
            assert!(
                matches!(server_name(address), Ok(ServerName::IpAddress(_))),
                "{address}"
            );
        }
        assert!(server_name("bad name").is_err());
    }

    #[test]
    fn configurations_offer_http_1_1_and_resume_only_when_asked() {
        let config = client_config(false).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(TlsClient::new("localhost:8443", true).is_ok());
    }
}
