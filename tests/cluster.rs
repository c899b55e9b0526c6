//! Several engines without ScyllaDB, as separate processes: a real
//! redis-server, the `ricochet-control` binary and three `ricochet-engine`
//! binaries, each with its own data directory. Links reach every engine;
//! clicks sent through all three add up in the control plane's analytics;
//! an engine killed with SIGKILL catches up and loses at most its open
//! window; a control plane restarted while engines ship windows loses and
//! double-counts nothing.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ricochet_control::test_util::{ApiClient, RedisServer, free_port};
use ricochet_engine::test_util::{Client, eventually};
use serde_json::json;

const TOKEN: &str = "cluster-test-token-0123456789abcdef";

/// A workspace binary, built once for this test run (a no-op when fresh).
fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "ricochet-engine", "-p"])
            .arg("ricochet-control")
            .arg("--bins")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the engine and control binaries");
    });
    let dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    dir.join(name)
}

/// A child process killed (SIGKILL) when dropped.
struct Process {
    child: Child,
}

impl Process {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "process {pid} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct ControlProcess {
    process: Process,
    addr: SocketAddr,
}

impl ControlProcess {
    /// Starts `ricochet-control` on `addr`; on a first start, also returns the
    /// bootstrap key it prints after its address.
    fn start(dir: &Path, addr: SocketAddr, redis: &str, first: bool) -> (Self, Option<String>) {
        let mut child = Command::new(binary("ricochet-control"))
            .args(["--bus", redis])
            .env("RICOCHET_CONTROL_SERVER__LISTEN", addr.to_string())
            .env("RICOCHET_CONTROL_STORAGE__DATA_DIR", dir)
            .env("RICOCHET_CONTROL_BUS__CLUSTER_TOKEN", TOKEN)
            .env("RICOCHET_CONTROL_RATE_LIMIT__REQUESTS_PER_SECOND", "100000")
            .env("RICOCHET_CONTROL_RATE_LIMIT__BURST", "100000")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ricochet-control");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut key = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(token) = line.trim().strip_prefix("rk_") {
                key = Some(format!("rk_{token}"));
                break;
            }
            if line.starts_with("ricochet-control: API on") && !first {
                break;
            }
        }
        std::thread::spawn(move || lines.for_each(drop));
        wait_for_port(addr);
        (
            Self {
                process: Process { child },
                addr,
            },
            key,
        )
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

struct EngineProcess {
    process: Process,
    dir: PathBuf,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl EngineProcess {
    fn start(dir: &Path, control: &str, redis: &str) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let process = Self::launch(dir, addr, admin, control, redis);
        Self {
            process,
            dir: dir.to_path_buf(),
            addr,
            admin,
        }
    }

    /// Starts the engine again on the same ports and data directory.
    fn restart(&mut self, control: &str, redis: &str) {
        self.process.kill();
        self.process = Self::launch(&self.dir, self.addr, self.admin, control, redis);
    }

    fn launch(
        dir: &Path,
        addr: SocketAddr,
        admin: SocketAddr,
        control: &str,
        redis: &str,
    ) -> Process {
        let child = Command::new(binary("ricochet-engine"))
            .args(["--control-url", control, "--bus", redis])
            .args(["--cluster-token", TOKEN, "--workers", "2"])
            .args(["--listen", &addr.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .arg("--data-dir")
            .arg(dir)
            .env("RICOCHET_ENGINE_CLICKS__WINDOW_GRACE", "200ms")
            .env("RICOCHET_ENGINE_SYNC__POLL_INTERVAL", "500ms")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ricochet-engine");
        let process = Process { child };
        let ready = eventually(Duration::from_secs(60), || {
            TcpStream::connect(admin).is_ok() && admin_get(admin, "/readyz").0 == 200
        });
        assert!(ready, "engine at {addr} became ready");
        process
    }

    /// Where `code` redirects (asked with HEAD, which never counts as a click).
    fn location(&self, code: &str) -> Option<String> {
        let response = Client::connect(self.addr).head(&format!("/{code}"), "localhost");
        (response.status == 302)
            .then(|| response.header("location"))
            .flatten()
    }

    /// Sends `count` clicks (GET redirects) to `code` on one connection.
    fn click(&self, code: &str, count: usize) {
        let mut client = Client::connect(self.addr);
        for _ in 0..count {
            assert_eq!(client.get(&format!("/{code}"), "localhost").status, 302);
        }
    }

    fn metric(&self, name: &str) -> f64 {
        let (_, text) = admin_get(self.admin, "/metrics");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

fn admin_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = Client::connect(addr).get(path, "localhost");
    (response.status, response.text())
}

/// Clicks the control plane reports for a link (humans and bots).
fn clicks(api: &ApiClient, id: u64) -> Option<u64> {
    let response = api.get(&format!(
        "/api/v1/links/{id}/analytics/series?interval=1d&from=2026-01-01T00:00:00Z"
    ));
    if response.status != 200 {
        return None;
    }
    let total = &response.body["total"];
    Some(total["humans"].as_u64()? + total["bots"].as_u64()?)
}

/// Waits until the reported clicks equal `expected` (and stay there for two
/// more window closes, so late double counts would show).
fn assert_clicks(api: &ApiClient, id: u64, expected: u64) {
    let reached = eventually(Duration::from_secs(60), || {
        clicks(api, id) == Some(expected)
    });
    assert!(
        reached,
        "analytics reached {expected} clicks (saw {:?})",
        clicks(api, id)
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(clicks(api, id), Some(expected), "and stayed there");
}

fn create(api: &ApiClient, code: &str, url: &str) -> u64 {
    let created = api.post("/api/v1/links", &json!({"url": url, "code": code}));
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_u64().unwrap()
}

#[test]
fn three_engines_share_links_and_analytics_through_the_control_plane() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start();
    let control_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (mut control, key) = ControlProcess::start(
        &dir.path().join("control"),
        control_addr,
        &redis.url(),
        true,
    );
    let api = ApiClient::new(
        &control.url(),
        Some(&key.expect("the bootstrap key is printed")),
    );
    let mut engines: Vec<EngineProcess> = (0..3)
        .map(|i| {
            EngineProcess::start(
                &dir.path().join(format!("engine-{i}")),
                &control.url(),
                &redis.url(),
            )
        })
        .collect();

    // Links created and edited through the API reach all three engines.
    let id = create(&api, "shared", "https://example.com/one");
    let edited = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"url": "https://example.com/two"}),
    );
    assert_eq!(edited.status, 200, "{}", edited.text);
    for engine in &engines {
        assert!(
            eventually(Duration::from_secs(10), || engine
                .location("shared")
                .as_deref()
                == Some("https://example.com/two")),
            "engine {} serves the edited link",
            engine.addr
        );
    }
    // Three engines, three node ids.
    let ids: std::collections::BTreeSet<String> = engines
        .iter()
        .map(|e| std::fs::read_to_string(e.dir.join("node-id")).unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "each engine has its own node id: {ids:?}");

    // A known number of clicks through each engine add up.
    for (engine, count) in engines.iter().zip([30, 40, 50]) {
        engine.click("shared", count);
    }
    let mut expected = 120;
    assert_clicks(&api, id, expected);

    // SIGKILL one engine; a link created while it is down reaches it after a
    // restart, and at most the clicks of its open window are lost.
    engines[1].click("shared", 7);
    expected += 7;
    assert_clicks(&api, id, expected);
    engines[1].click("shared", 5);
    engines[1].process.kill();
    create(&api, "late", "https://example.com/late");
    engines[1].restart(&control.url(), &redis.url());
    assert!(
        eventually(Duration::from_secs(10), || engines[1]
            .location("late")
            .as_deref()
            == Some("https://example.com/late")),
        "the restarted engine caught up"
    );
    engines[1].click("shared", 11);
    expected += 11;
    let reached = eventually(Duration::from_secs(60), || {
        clicks(&api, id).is_some_and(|seen| (expected..=expected + 5).contains(&seen))
    });
    assert!(
        reached,
        "after the kill, {expected} to {} clicks (the 5 in the open window may be lost); saw {:?}",
        expected + 5,
        clicks(&api, id)
    );
    expected = clicks(&api, id).unwrap();

    // Restart the control plane while every engine keeps clicking: windows
    // closed meanwhile wait in the engines' spill queues and arrive once.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clickers: Vec<_> = engines
        .iter()
        .map(|engine| {
            let addr = engine.addr;
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut sent = 0u64;
                let mut client = Client::connect(addr);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(client.get("/shared", "localhost").status, 302);
                    sent += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                sent
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    control.process.terminate();
    assert!(
        eventually(Duration::from_secs(30), || engines
            .iter()
            .any(|e| e.metric("ricochet_click_windows_spilled_total") > 0.0)),
        "windows spilled while the control plane was down"
    );
    let (restarted, _) = ControlProcess::start(
        &dir.path().join("control"),
        control_addr,
        &redis.url(),
        false,
    );
    control = restarted;
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: u64 = clickers.into_iter().map(|c| c.join().unwrap()).sum();
    expected += sent;
    assert_clicks(&api, id, expected);
    for engine in &engines {
        assert_eq!(
            engine.metric("ricochet_click_windows_dead_lettered_total"),
            0.0
        );
    }
    drop(control);
}
