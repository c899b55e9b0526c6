//! Test helpers (feature `test-util`): an engine on loopback ports with a
//! temporary store, a raw HTTP/1.1 client that never follows redirects and
//! shows exactly what the engine sent, a real `redis-server` on a free port,
//! and `eventually` for polling.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ricochet_model::{Change, ChangeOp, LinkKey, LinkRecord, now_millis};
use tempfile::TempDir;

use crate::config::EngineConfig;
use crate::server::{Engine, StartOptions};

/// Polls `check` every 5 ms until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An engine on `127.0.0.1:0` with a store in a temporary directory.
pub struct TestEngine {
    engine: Option<Engine>,
    config: EngineConfig,
    dir: TempDir,
    /// Set when [`TestEngine::client`] connects over TLS.
    tls: Option<TlsClientSetup>,
}

/// How [`TestEngine::client`] reaches the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Plain,
    /// The HTTPS listener, naming `localhost`, which the default certificate covers.
    Tls,
}

impl std::fmt::Debug for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestEngine")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl TestEngine {
    /// Two workers, default domain `localhost`.
    pub fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// Like [`TestEngine::start`] after `configure` adjusts the configuration.
    pub fn start_with(configure: impl FnOnce(&mut EngineConfig)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Self::config_in(dir.path());
        configure(&mut config);
        let engine = Engine::start(config.clone()).expect("engine starts");
        assert!(
            engine.wait_ready(Duration::from_secs(60)),
            "engine became ready"
        );
        Self {
            engine: Some(engine),
            config,
            dir,
            tls: None,
        }
    }

    /// Like [`TestEngine::start_with`]; over [`Transport::Tls`], with an
    /// HTTPS listener whose default certificate (self-signed, for
    /// `localhost`) [`TestEngine::client`] trusts and connects through.
    pub fn start_over(transport: Transport, configure: impl FnOnce(&mut EngineConfig)) -> Self {
        if transport == Transport::Plain {
            return Self::start_with(configure);
        }
        let mut engine = Self::start_with(|config| {
            config.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
            configure(config);
        });
        let pem = self_signed(&["localhost"]);
        engine.set_tls(ricochet_model::tls::TlsChange::Certificate {
            name: ricochet_model::tls::DEFAULT_CERTIFICATE.into(),
            pem: Some(pem.clone()),
        });
        engine.tls = Some(TlsClientSetup::trusting(&pem));
        engine
    }

    /// A connection to the engine, over TLS when it was started so.
    pub fn client(&self) -> Client {
        self.try_client().expect("a connection")
    }

    /// [`TestEngine::client`], or why the TLS handshake failed.
    pub fn try_client(&self) -> Result<Client, rustls::Error> {
        self.try_client_from(None)
    }

    /// [`TestEngine::try_client`] from the local address `source` (any of
    /// 127.0.0.0/8 on Linux: another client as far as the engine can tell).
    pub fn try_client_from(&self, source: Option<IpAddr>) -> Result<Client, rustls::Error> {
        match &self.tls {
            None => Ok(Client::connect_from(self.addr(), source)),
            Some(setup) => Client::tls_over(
                connect_tcp(self.engine().tls_addr().expect("a TLS listener"), source),
                "localhost",
                setup,
            ),
        }
    }

    /// Sends `raw` on a fresh [`TestEngine::client`] and reads one response.
    pub fn exchange(&self, raw: &[u8]) -> Response {
        let mut client = self.client();
        client.send(raw);
        client.read_response(false).expect("a response")
    }

    /// The configuration tests start from: loopback ports picked by the OS.
    pub fn config_in(dir: &std::path::Path) -> EngineConfig {
        let mut config = EngineConfig::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.admin.listen = "127.0.0.1:0".parse().unwrap();
        config.server.workers = 2;
        config.storage.data_dir = dir.join("engine");
        config
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine is running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.engine().redirect_addr()
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.engine().admin_addr()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.config.storage.data_dir
    }

    /// Stops the engine and starts a new one on the same store (new ports).
    pub fn restart(&mut self) {
        self.stop();
        let engine = Engine::start(self.config.clone()).expect("engine restarts");
        assert!(
            engine.wait_ready(Duration::from_secs(60)),
            "engine became ready"
        );
        self.engine = Some(engine);
    }

    /// Stops the engine; the store stays.
    pub fn stop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
    }

    /// Starts an engine on the same store with start-up hooks, without waiting.
    pub fn start_again_with(&mut self, options: StartOptions) -> &Engine {
        self.stop();
        self.engine =
            Some(Engine::start_with(self.config.clone(), options).expect("engine starts"));
        self.engine()
    }

    /// Applies an upsert of `link` as the next version; returns that version.
    pub fn upsert(&self, mut link: LinkRecord) -> u64 {
        let intake = self.engine().intake();
        let version = intake.last_applied() + 1;
        link.version = version;
        intake
            .apply(&[Change {
                version,
                op: ChangeOp::Upsert { link },
            }])
            .expect("change applies");
        version
    }

    /// Applies a purge of (domain, code) as the next version.
    pub fn purge(&self, domain: &str, code: &str) -> u64 {
        self.apply_op(ChangeOp::Purge {
            key: LinkKey::new(domain, code).unwrap(),
        })
    }

    /// Applies a domain's settings as the next version.
    pub fn set_domain(&self, settings: ricochet_model::DomainSettings) -> u64 {
        self.apply_op(ChangeOp::Domain { settings })
    }

    /// Applies a certificate or ACME challenge change as the next version.
    pub fn set_tls(&self, change: ricochet_model::tls::TlsChange) -> u64 {
        self.apply_op(ChangeOp::Tls { change })
    }

    /// Applies `op` as the next version; returns that version.
    pub fn apply_op(&self, op: ChangeOp) -> u64 {
        let intake = self.engine().intake();
        let version = intake.last_applied() + 1;
        intake
            .apply(&[Change { version, op }])
            .expect("change applies");
        version
    }

    /// Creates an active 302 link.
    pub fn add(&self, domain: &str, code: &str, url: &str) -> LinkRecord {
        let link = link(domain, code, url);
        self.upsert(link.clone());
        link
    }

    /// A GET on a fresh connection.
    pub fn get(&self, path: &str, host: &str) -> Response {
        let mut client = Client::connect(self.addr());
        client.get(path, host)
    }

    /// The admin port's answer to `GET path`.
    pub fn admin_get(&self, path: &str) -> Response {
        Client::connect(self.admin_addr()).get(path, "admin")
    }

    /// Value of one metric line (no labels, or with its label set as written).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let body = self.admin_get("/metrics").text();
        body.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (key, value) = line.rsplit_once(' ')?;
                (key == name).then(|| value.parse().ok()).flatten()
            })
    }
}

impl Drop for TestEngine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A real `redis-server` child process on a free port.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one; panics with a hint when redis-server is not installed.
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server (SIGKILL): connections drop, counts are lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (./test.sh installs it)");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            eventually(Duration::from_secs(10), || TcpStream::connect(addr).is_ok()),
            "redis-server did not start"
        );
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes `config` count click limits in the Redis at `url` (its update bus;
/// the control plane it names is never reached, so clicks are off).
pub fn count_in_redis(config: &mut EngineConfig, url: &str) {
    config.sync.bus = url.to_owned();
    config.sync.control_url = format!("http://127.0.0.1:{}", free_port());
    config.clicks.enabled = false;
}

/// A link record for tests (status 302), with an id no other record of
/// this process has, as the control plane gives them.
pub fn link(domain: &str, code: &str, url: &str) -> LinkRecord {
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    LinkRecord::new(id, domain, code, url, now_millis()).expect("valid test link")
}

/// One HTTP response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive), as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// How many headers are named `name`.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw HTTP/1.1 client on one connection, plain or TLS.
#[derive(Debug)]
pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
}

/// A client connection's transport.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}

/// What a TLS test client trusts and offers.
#[derive(Debug, Clone)]
pub struct TlsClientSetup {
    /// Certificates (DER) trusted as roots.
    pub roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    /// `None`: TLS 1.2 and 1.3.
    pub version: Option<&'static rustls::SupportedProtocolVersion>,
    pub alpn: Vec<Vec<u8>>,
}

impl TlsClientSetup {
    /// Trusts the first certificate of `pem` (a self-signed one).
    pub fn trusting(pem: &ricochet_model::tls::CertificatePem) -> Self {
        use rustls::pki_types::pem::PemObject;
        let roots = rustls::pki_types::CertificateDer::pem_slice_iter(pem.chain.as_bytes())
            .take(1)
            .collect::<Result<Vec<_>, _>>()
            .expect("PEM certificates");
        Self {
            roots,
            version: None,
            alpn: vec![b"http/1.1".to_vec()],
        }
    }

    fn config(&self) -> std::sync::Arc<rustls::ClientConfig> {
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = match self.version {
            Some(version) => vec![version],
            None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
        };
        let mut roots = rustls::RootCertStore::empty();
        for root in &self.roots {
            roots.add(root.clone()).expect("a usable root");
        }
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = self.alpn.clone();
        std::sync::Arc::new(config)
    }
}

/// A self-signed certificate and key for `names`.
pub fn self_signed(names: &[&str]) -> ricochet_model::tls::CertificatePem {
    let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
    let generated = rcgen::generate_simple_self_signed(names).expect("a certificate");
    ricochet_model::tls::CertificatePem {
        chain: generated.cert.pem(),
        key: generated.signing_key.serialize_pem(),
    }
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Self {
        Self::connect_from(addr, None)
    }

    /// Connects from the local address `source` (`None`: the one the OS picks).
    pub fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> Self {
        Self {
            stream: Stream::Plain(connect_tcp(addr, source)),
            buf: Vec::new(),
        }
    }

    /// Connects over TLS naming `server_name` (SNI) and completes the
    /// handshake; the error when it fails.
    pub fn connect_tls(
        addr: SocketAddr,
        server_name: &str,
        setup: &TlsClientSetup,
    ) -> Result<Self, rustls::Error> {
        Self::tls_over(connect_tcp(addr, None), server_name, setup)
    }

    /// Completes a TLS handshake over `tcp`.
    fn tls_over(
        tcp: TcpStream,
        server_name: &str,
        setup: &TlsClientSetup,
    ) -> Result<Self, rustls::Error> {
        let name =
            rustls::pki_types::ServerName::try_from(server_name.to_owned()).expect("a server name");
        let connection = rustls::ClientConnection::new(setup.config(), name)?;
        let mut tls = rustls::StreamOwned::new(connection, tcp);
        while tls.conn.is_handshaking() {
            if let Err(error) = tls.conn.complete_io(&mut tls.sock) {
                return Err(match error.into_inner() {
                    Some(inner) => match inner.downcast::<rustls::Error>() {
                        Ok(tls_error) => *tls_error,
                        Err(other) => rustls::Error::General(other.to_string()),
                    },
                    None => rustls::Error::General("connection closed".into()),
                });
            }
        }
        Ok(Self {
            stream: Stream::Tls(Box::new(tls)),
            buf: Vec::new(),
        })
    }

    /// The TLS session, on a TLS connection.
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match &self.stream {
            Stream::Tls(tls) => Some(&tls.conn),
            Stream::Plain(_) => None,
        }
    }

    /// The certificate the server presented (DER of the leaf).
    pub fn peer_certificate(&self) -> Option<Vec<u8>> {
        Some(self.tls()?.peer_certificates()?.first()?.to_vec())
    }

    /// The TCP stream under the connection (raw writes bypass TLS).
    pub fn stream(&mut self) -> &mut TcpStream {
        match &mut self.stream {
            Stream::Plain(tcp) => tcp,
            Stream::Tls(tls) => &mut tls.sock,
        }
    }

    /// Sends raw bytes (through TLS on a TLS connection).
    pub fn send(&mut self, bytes: &[u8]) {
        self.write(bytes).expect("send");
    }

    /// Sends raw bytes (through TLS on a TLS connection); the error when the
    /// connection is gone.
    pub fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()
    }

    /// `GET path` with `Host: host`, and reads the response.
    pub fn get(&mut self, path: &str, host: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        self.read_response(false).expect("a response")
    }

    /// `HEAD path` with `Host: host`, and reads the response (no body).
    pub fn head(&mut self, path: &str, host: &str) -> Response {
        self.send(format!("HEAD {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
        self.read_response(true).expect("a response")
    }

    /// Reads one response; `head_request` says whether it answers a HEAD (no body).
    pub fn read_response(&mut self, head_request: bool) -> std::io::Result<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed.parse(&self.buf) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let status = parsed.code.unwrap_or(0);
                    let headers: Vec<(String, Vec<u8>)> = parsed
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), h.value.to_vec()))
                        .collect();
                    let length = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
                        .unwrap_or(0);
                    // HEAD, 204 and 304 answers have no body whatever their Content-Length.
                    let body_len = if head_request || status == 204 || status == 304 {
                        0
                    } else {
                        length
                    };
                    while self.buf.len() < head_len + body_len {
                        self.fill()?;
                    }
                    let body = self.buf[head_len..head_len + body_len].to_vec();
                    self.buf.drain(..head_len + body_len);
                    return Ok(Response {
                        status,
                        headers,
                        body,
                    });
                }
                Ok(httparse::Status::Partial) => self.fill()?,
                Err(error) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "bad response: {error}: {:?}",
                            String::from_utf8_lossy(&self.buf)
                        ),
                    ));
                }
            }
        }
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Whether the server closed the connection (EOF with nothing more to
    /// read) within `timeout`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        self.stream.tcp().set_read_timeout(Some(timeout)).unwrap();
        let mut chunk = [0u8; 1024];
        let closed = loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    break true;
                }
                Err(_) => break false,
            }
        };
        self.stream
            .tcp()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        closed
    }

    /// Bytes received but not consumed as a response.
    pub fn leftover(&self) -> &[u8] {
        &self.buf
    }
}

fn connect_tcp(addr: SocketAddr, source: Option<IpAddr>) -> TcpStream {
    let stream = match source {
        None => TcpStream::connect(addr).expect("connect"),
        Some(source) => {
            use socket2::{Domain, Protocol, Socket, Type};
            let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
                .expect("a socket");
            socket
                .bind(&SocketAddr::new(source, 0).into())
                .expect("bind the source address");
            socket.connect(&addr.into()).expect("connect");
            TcpStream::from(socket)
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Sends `raw` on a fresh connection and reads one response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut client = Client::connect(addr);
    client.send(raw);
    client.read_response(false).expect("a response")
}

/// A small MaxMind-format database for tests, in the flat DB-IP lite layout
/// (`country_code`, `city`) or the GeoIP2 layout (`country.iso_code`,
/// `city.names.en`): one entry per (network, country, city).
pub fn geo_database(geoip2_layout: bool, entries: &[(&str, &str, &str)]) -> Vec<u8> {
    use std::collections::BTreeMap;
    let mut writer = mmdb_writer::Writer::new(if geoip2_layout {
        "GeoIP2-City"
    } else {
        "dbip-city-lite"
    });
    for (network, country, city) in entries {
        let network: mmdb_writer::ipnet::IpNet = network.parse().expect("a network in CIDR form");
        if geoip2_layout {
            let mut names = BTreeMap::new();
            names.insert("en", *city);
            let mut city_field = BTreeMap::new();
            city_field.insert("names", names);
            let mut country_field = BTreeMap::new();
            country_field.insert("iso_code", *country);
            #[derive(serde::Serialize)]
            struct Record<'a> {
                country: BTreeMap<&'a str, &'a str>,
                city: BTreeMap<&'a str, BTreeMap<&'a str, &'a str>>,
            }
            writer
                .insert(
                    network,
                    &Record {
                        country: country_field,
                        city: city_field,
                    },
                )
                .expect("insert");
        } else {
            let mut record = BTreeMap::new();
            record.insert("country_code", *country);
            record.insert("city", *city);
            writer.insert(network, &record).expect("insert");
        }
    }
    writer.to_bytes().expect("a database")
}
