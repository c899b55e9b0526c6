//! Bad input never hangs or panics: refused connections, silent servers,
//! garbage and dropped connections are counted errors and the run ends on
//! time; bad suite files give line-numbered messages.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{load, run_once};
use ricochet_loadtest::TrafficShape;
use ricochet_loadtest::suite::Suite;
use ricochet_loadtest::test_util::{Answer, TestServer};

const KEYS: &str = ",a,https://a.example/,301\n";

/// Duration 1 s, timeout and grace 500 ms: every run must end within 2 s.
fn assert_on_time(started: Instant) {
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn refused_connections_are_counted() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let started = Instant::now();
    let result = run_once(addr, KEYS, load(4, 1000), TrafficShape::default());
    assert_on_time(started);
    assert_eq!(result.responses, 0);
    assert!(
        result.errors.get("connect").copied().unwrap_or(0) >= 4,
        "{:?}",
        result.errors
    );
}

#[test]
fn a_silent_server_gives_timeouts() {
    let server = TestServer::builder().answer("/a", Answer::Silence).start();
    let started = Instant::now();
    let mut spec = load(2, 1000);
    spec.timeout = Duration::from_millis(300);
    spec.grace = Duration::from_millis(300);
    let result = run_once(server.addr(), KEYS, spec, TrafficShape::default());
    assert_on_time(started);
    assert_eq!(result.responses, 0);
    assert!(
        result.errors.get("timeout").copied().unwrap_or(0) >= 2,
        "{:?}",
        result.errors
    );
    assert_eq!(
        result.sent,
        result.error_total - result.errors.get("connect").copied().unwrap_or(0)
    );
}

#[test]
fn garbage_and_closed_connections_are_errors() {
    let server = TestServer::builder()
        .answer("/a", Answer::Garbage)
        .answer("/b", Answer::Close)
        .start();
    let started = Instant::now();
    let result = run_once(
        server.addr(),
        ",a,https://a.example/,301\n,b,https://b.example/,301\n",
        load(2, 1000),
        TrafficShape::default(),
    );
    assert_on_time(started);
    assert_eq!(result.responses, 0);
    assert!(
        result.errors.get("malformed").copied().unwrap_or(0) > 0,
        "{:?}",
        result.errors
    );
    assert!(
        result.errors.get("closed").copied().unwrap_or(0) > 0,
        "{:?}",
        result.errors
    );
    // Every request sent is accounted for.
    let per_request: u64 = result
        .errors
        .iter()
        .filter(|(k, _)| k.as_str() != "connect")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(per_request, result.sent);
}

#[test]
fn bad_suite_files_name_the_line() {
    let text =
        "# a suite\nname = \"x\"\n\n[keys]\ngenerate = 100\n\n[load]\nmode = \"open\"\nrat = 100\n";
    let err = Suite::parse(text, "bad.toml").unwrap_err().to_string();
    assert!(err.starts_with("bad.toml:9:"), "{err}");
    assert!(err.contains("rat"), "{err}");

    let text = "[keys]\ngenerate = 100\n\n[traffic]\npopularity = \"zipf\"\nexponent = -1\n";
    let err = Suite::parse(text, "bad.toml").unwrap_err().to_string();
    assert!(err.starts_with("bad.toml:6:1: [traffic] exponent"), "{err}");

    let text = "[keys]\ngenerate = 100\n[load]\nmode = \"open\"\n";
    let err = Suite::parse(text, "bad.toml").unwrap_err().to_string();
    assert!(
        err.starts_with("bad.toml:4:1: [load] mode: the open loop needs `rate`"),
        "{err}"
    );

    let text = "[keys]\ngenerate = 100\n[load\n";
    let err = Suite::parse(text, "bad.toml").unwrap_err().to_string();
    assert!(err.starts_with("bad.toml:3:"), "{err}");
}

#[test]
fn the_binary_reports_a_bad_suite_and_exits_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(
        &path,
        "[keys]\ngenerate = 10\n\n[[phase]]\nname = \"a\"\nduration = \"forever\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ricochet-loadtest"))
        .args([
            "suite",
            path.to_str().unwrap(),
            "--target",
            "x=http://127.0.0.1:9",
            "--out",
            "none",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.toml:6:1: [phase] duration"),
        "{stderr}"
    );
}

#[test]
fn every_config_suite_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Suite::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 6, "{count} suites in {}", dir.display());
}
