//! A real DNS server for tests: Debian's `pebble-challtestsrv` on free
//! loopback ports, whose TXT records are set over its management API.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// `pebble-challtestsrv` answering DNS on a free port.
#[derive(Debug)]
pub struct ChallTestSrv {
    child: Child,
    dns: SocketAddr,
    management: SocketAddr,
}

impl ChallTestSrv {
    /// Starts one (DNS only); panics with a hint when it is not installed.
    pub fn start() -> Self {
        let dns: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let management: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let child = Command::new("pebble-challtestsrv")
            .args(["-dns01", &dns.to_string()])
            .args(["-management", &management.to_string()])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "pebble-challtestsrv runs (apt-get install pebble; scripts/install-test-deps.sh)",
            );
        let server = Self {
            child,
            dns,
            management,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(management).is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble-challtestsrv did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Where it answers DNS (UDP and TCP).
    pub fn dns_addr(&self) -> SocketAddr {
        self.dns
    }

    /// Where its management API listens.
    pub fn management_addr(&self) -> SocketAddr {
        self.management
    }

    /// Adds a TXT record `value` at `name`.
    pub fn set_txt(&self, name: &str, value: &str) {
        self.post(
            "/set-txt",
            serde_json::json!({"host": fqdn(name), "value": value}),
        );
    }

    /// Answers A queries for `name` with `address` (others get 127.0.0.1).
    pub fn set_a(&self, name: &str, address: std::net::Ipv4Addr) {
        self.post(
            "/add-a",
            serde_json::json!({"host": fqdn(name), "addresses": [address.to_string()]}),
        );
    }

    /// Removes every TXT record at `name`.
    pub fn clear_txt(&self, name: &str) {
        self.post("/clear-txt", serde_json::json!({"host": fqdn(name)}));
    }

    fn post(&self, path: &str, body: serde_json::Value) {
        let url = format!("http://{}{path}", self.management);
        ureq::post(&url)
            .send_json(body)
            .unwrap_or_else(|e| panic!("pebble-challtestsrv {path}: {e}"));
    }
}

fn fqdn(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

impl Drop for ChallTestSrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
