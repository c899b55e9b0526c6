//! A real ACME authority for tests: Debian's `pebble` on free loopback
//! ports, validating HTTP-01 challenges on the port an engine serves and
//! resolving names through a [`ChallTestSrv`](super::ChallTestSrv).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::free_port;

/// `pebble` with its own HTTPS certificate in a temporary directory.
#[derive(Debug)]
pub struct Pebble {
    child: Child,
    dir: TempDir,
    listen: SocketAddr,
    management: SocketAddr,
}

impl Pebble {
    /// Ports chosen now, so a control plane can be configured before the
    /// engine whose ports the authority validates on exists.
    pub fn ports() -> (SocketAddr, SocketAddr) {
        let pick = || -> SocketAddr { format!("127.0.0.1:{}", free_port()).parse().unwrap() };
        (pick(), pick())
    }

    /// The directory URL for `listen`.
    pub fn directory_url(listen: SocketAddr) -> String {
        format!("https://{listen}/dir")
    }

    /// Starts pebble on `listen` (ACME) and `management`, validating HTTP-01
    /// on `http_port` and TLS-ALPN-01 on `tls_port` of 127.0.0.1 as
    /// `dns` resolves them; `root` is where its HTTPS certificate is written
    /// (what ACME clients must trust).
    pub fn start(
        listen: SocketAddr,
        management: SocketAddr,
        http_port: u16,
        tls_port: u16,
        dns: SocketAddr,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let generated = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("a certificate");
        std::fs::write(dir.path().join("cert.pem"), generated.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join("key.pem"),
            generated.signing_key.serialize_pem(),
        )
        .unwrap();
        let config = serde_json::json!({"pebble": {
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": dir.path().join("cert.pem"),
            "privateKey": dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &dns.to_string()])
            // Validate at once, and accept every nonce: the tests exercise
            // issuance, not the client's patience.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble runs (apt-get install pebble; scripts/install-test-deps.sh)");
        let pebble = Self {
            child,
            dir,
            listen,
            management,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(listen).is_err() {
            assert!(Instant::now() < deadline, "pebble did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        pebble
    }

    /// The PEM file ACME clients must trust for pebble's own HTTPS.
    pub fn https_root(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The key of pebble's own HTTPS certificate.
    pub fn https_key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The root (PEM) certificates pebble issues chain to.
    pub fn issuing_root(&self) -> String {
        self.management_get("/roots/0")
    }

    /// What pebble says of the certificate with serial number `serial`
    /// (hexadecimal): `Valid` or `Revoked`.
    pub fn certificate_status(&self, serial: &str) -> String {
        let answer: serde_json::Value =
            serde_json::from_str(&self.management_get(&format!("/cert-status-by-serial/{serial}")))
                .expect("a JSON status");
        answer["Status"].as_str().unwrap_or_default().to_owned()
    }

    fn management_get(&self, path: &str) -> String {
        https_call(&self.https_root(), &[], self.management, path)
    }
}

/// The body of an HTTPS request to `addr` + `path` (curl, trusting `root`,
/// with `args` such as a method and body); panics on a failure.
fn https_call(root: &std::path::Path, args: &[&str], addr: SocketAddr, path: &str) -> String {
    let output = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(root)
        .args(args)
        .arg(format!("https://{addr}{path}"))
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "https://{addr}{path}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("text")
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pebble behind a proxy that adds ACME renewal information (ARI), which
/// Debian's pebble lacks (`ari_proxy.py`; forwards everything else).
#[derive(Debug)]
pub struct RenewalInfoProxy {
    child: Child,
    listen: SocketAddr,
    https_root: PathBuf,
}

impl RenewalInfoProxy {
    /// Starts the proxy on `listen` (a port chosen before the control plane
    /// was configured) in front of `pebble`, with pebble's own HTTPS
    /// certificate.
    pub fn start(listen: SocketAddr, pebble: &Pebble) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/test_util/ari_proxy.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(listen.port().to_string())
            .arg(pebble.listen_addr().to_string())
            .arg(pebble.https_root())
            .arg(pebble.https_key())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut ready = String::new();
        let stdout = child.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut ready)
            .expect("the proxy starts");
        assert_eq!(
            ready.trim(),
            "ready",
            "the renewal-information proxy did not start"
        );
        Self {
            child,
            listen,
            https_root: pebble.https_root(),
        }
    }

    /// Whether the window it answers says "renew now" or "in a month".
    pub fn set_renew_now(&self, now: bool) {
        let body = if now { "renew-now" } else { "later" };
        self.call(&["-X", "POST", "--data", body], "/_window");
    }

    /// Renewal-information requests answered so far.
    pub fn queries(&self) -> u64 {
        self.call(&[], "/_queries").trim().parse().expect("a count")
    }

    /// The `replaces` fields of the orders seen.
    pub fn replaces(&self) -> Vec<String> {
        self.call(&[], "/_replaces")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn call(&self, args: &[&str], path: &str) -> String {
        https_call(&self.https_root, args, self.listen, path)
    }
}

impl Drop for RenewalInfoProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
