//! Test helpers (feature `test-util`): a control plane on loopback with a
//! temporary store, a JSON client for its API, a real `redis-server` on a
//! free port that tests can stop and restart, (in [`pages`]) a small web
//! server that destinations can point at, and (in [`browser`]) headless Chromium.

pub mod browser;
pub mod dns;
pub mod pages;
pub mod pebble;

pub use dns::ChallTestSrv;
pub use pebble::{Pebble, RenewalInfoProxy};

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_model::bus::{LocalBus, UpdateBus};
use serde_json::Value;
use tempfile::TempDir;

use crate::{ControlConfig, ControlPlane};

/// A control plane with a temporary store, its bootstrap admin key and its
/// first owner's credentials.
pub struct TestControl {
    pub control: Option<ControlPlane>,
    pub config: ControlConfig,
    pub admin_key: String,
    pub owner_email: String,
    pub owner_password: String,
    pub bus: Arc<dyn UpdateBus>,
    _dir: TempDir,
}

impl std::fmt::Debug for TestControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestControl").finish_non_exhaustive()
    }
}

impl TestControl {
    /// On the in-process bus.
    pub fn start() -> Self {
        Self::start_with(|_| {}, Arc::new(LocalBus::new()))
    }

    pub fn start_with(configure: impl FnOnce(&mut ControlConfig), bus: Arc<dyn UpdateBus>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = ControlConfig::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.server.workers = 2;
        config.storage.data_dir = dir.path().join("control");
        config.bus.heartbeat_interval = Duration::from_millis(200);
        // Tests of other features register domains and use them at once;
        // tests of verification set `domains.verification = "dns"` and a
        // DNS server ([`ChallTestSrv`]).
        config.domains.verification = crate::config::VerificationMode::None;
        configure(&mut config);
        let control =
            ControlPlane::start(config.clone(), bus.clone()).expect("control plane starts");
        let admin_key = control
            .bootstrap_key()
            .expect("a bootstrap key")
            .token
            .clone();
        let owner = control.first_owner().expect("a first owner").clone();
        Self {
            control: Some(control),
            config,
            admin_key,
            owner_email: owner.email,
            owner_password: owner.password,
            bus,
            _dir: dir,
        }
    }

    pub fn control(&self) -> &ControlPlane {
        self.control.as_ref().expect("running")
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.control().addr())
    }

    /// A client using the admin key.
    pub fn client(&self) -> ApiClient {
        ApiClient::new(&self.base_url(), Some(&self.admin_key))
    }

    /// A client signed in as the first owner: it sends the session cookie,
    /// and the CSRF token with every request.
    pub fn owner_client(&self) -> ApiClient {
        let anonymous = ApiClient::new(&self.base_url(), None);
        let answer = anonymous.post(
            "/api/v1/auth/sign-in",
            &serde_json::json!({"email": self.owner_email, "password": self.owner_password}),
        );
        assert_eq!(answer.status, 200, "{}", answer.text);
        anonymous.signed_in(&answer)
    }
}

/// A JSON client for the API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    agent: ureq::Agent,
    base: String,
    key: Option<String>,
    /// The `ricochet_session` cookie's value.
    pub session: Option<String>,
    /// Sent as `X-CSRF-Token`.
    pub csrf: Option<String>,
}

/// One API answer.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub text: String,
}

impl ApiResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `ricochet_session` token a `Set-Cookie` header carries.
    pub fn session_cookie(&self) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .find_map(|(_, v)| {
                v.strip_prefix("ricochet_session=")
                    .and_then(|rest| rest.split(';').next())
            })
    }

    /// The `error.code` of an error answer.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl ApiClient {
    pub fn new(base: &str, key: Option<&str>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Self {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            key: key.map(str::to_owned),
            session: None,
            csrf: None,
        }
    }

    /// This client, answering redirects instead of following them (a
    /// followed redirect would not carry the session cookie).
    pub fn without_redirects(&self) -> Self {
        Self {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
            ..self.clone()
        }
    }

    /// This client, carrying the session cookie and CSRF token of a sign-in answer.
    pub fn signed_in(&self, sign_in: &ApiResponse) -> Self {
        Self {
            session: sign_in.session_cookie().map(str::to_owned),
            csrf: sign_in.body["csrf_token"].as_str().map(str::to_owned),
            ..self.clone()
        }
    }

    /// This client with another CSRF token (or none).
    pub fn with_csrf(&self, csrf: Option<&str>) -> Self {
        Self {
            csrf: csrf.map(str::to_owned),
            ..self.clone()
        }
    }

    pub fn with_key(&self, key: Option<&str>) -> Self {
        Self {
            key: key.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Sends a request; `body` is sent as is with `content_type` when given.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> ApiResponse {
        let url = format!("{}{path}", self.base);
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = &self.key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        if let Some(session) = &self.session {
            request = request.header("Cookie", format!("ricochet_session={session}"));
        }
        if let Some(csrf) = &self.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let result = match body {
            Some((content_type, bytes)) => {
                if !content_type.is_empty() {
                    request = request.header("Content-Type", content_type);
                }
                self.agent.run(request.body(bytes.to_vec()).unwrap())
            }
            None => self.agent.run(request.body(()).unwrap()),
        };
        let mut response = result.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        ApiResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn get(&self, path: &str) -> ApiResponse {
        self.send("GET", path, None, &[])
    }

    pub fn delete(&self, path: &str) -> ApiResponse {
        self.send("DELETE", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> ApiResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send("POST", path, Some(("application/json", &bytes)), &[])
    }

    pub fn patch(&self, path: &str, body: &Value) -> ApiResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send("PATCH", path, Some(("application/json", &bytes)), &[])
    }

    pub fn put(&self, path: &str, body: &Value) -> ApiResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        self.send("PUT", path, Some(("application/json", &bytes)), &[])
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real `redis-server` child process on a fixed free port.
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

    /// Kills the server (SIGKILL): connections drop, messages are lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
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
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tool installed in the test venv `scripts/install-test-deps.sh` makes
/// (`RICOCHET_TEST_VENV`, default `~/.cache/ricochet-test-venv`); fails
/// (never skips) when it is missing.
pub fn venv_tool(name: &str) -> std::path::PathBuf {
    let venv = std::env::var_os("RICOCHET_TEST_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            std::path::PathBuf::from(home).join(".cache/ricochet-test-venv")
        });
    let tool = venv.join("bin").join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/install-test-deps.sh (it installs {name} into {})",
        tool.display(),
        venv.display()
    );
    tool
}
