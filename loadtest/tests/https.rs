//! https targets against a real engine's HTTPS listener: answers checked as
//! over plain HTTP, handshakes counted, a connection (and a full handshake)
//! per request, sessions resumed only when asked, refused handshakes
//! counted as `tls` errors; and a suite that installs its own certificate
//! through the control plane and measures over HTTPS.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NEVER, execute_in, load};
use ricochet_control::test_util::TestControl;
use ricochet_engine::test_util::TestEngine;
use ricochet_engine::tls::UnknownSni;
use ricochet_engine::{StartOptions, SyncSource};
use ricochet_loadtest::certificate;
use ricochet_loadtest::suite::Suite;
use ricochet_loadtest::{KeySet, LoadSpec, RunResult, RunSpec, TrafficShape, run};
use ricochet_model::bus::{LocalBus, UpdateBus};
use ricochet_model::tls::{CertificatePem, DEFAULT_CERTIFICATE, TlsChange};

const KEYS: &str = ",a,https://a.example/,302\n,b,https://b.example/page,302\n";

/// An engine with an HTTPS listener serving the load tester's own
/// certificate (the one suites write) for `name`, or as the default one,
/// and the links of [`KEYS`].
fn https_engine(name: &str, unknown_sni: UnknownSni) -> TestEngine {
    let engine = TestEngine::start_with(|c| {
        c.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
        c.server.unknown_sni = unknown_sni;
    });
    let pem = certificate::self_signed(if name == DEFAULT_CERTIFICATE {
        "localhost"
    } else {
        name
    })
    .expect("a certificate");
    engine.set_tls(TlsChange::Certificate {
        name: name.into(),
        pem: Some(CertificatePem {
            chain: pem.certificate,
            key: pem.private_key,
        }),
    });
    engine.add("localhost", "a", "https://a.example/");
    engine.add("localhost", "b", "https://b.example/page");
    engine
}

fn run_https(engine: &TestEngine, host: &str, load: LoadSpec) -> RunResult {
    let spec = RunSpec {
        target: "engine".into(),
        phase: "main".into(),
        round: 1,
        addr: engine.engine().tls_addr().expect("a TLS listener"),
        host: host.into(),
        tls: true,
        load,
        shape: TrafficShape::default(),
        keys: Arc::new(KeySet::parse(KEYS, "test keys").expect("keys parse")),
        server_pid: None,
    };
    run(&spec, &NEVER, &mut |_| {}).expect("run completes")
}

/// A closed loop of exactly `requests`, each on a new connection, over one
/// connection at a time (so no connection is opened that no request uses).
fn handshake_per_request(requests: u64, resumption: bool) -> LoadSpec {
    LoadSpec {
        connections: 1,
        max_requests: Some(requests),
        duration: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
        grace: Duration::from_secs(5),
        requests_per_connection: Some(1),
        tls_resumption: resumption,
        ..LoadSpec::default()
    }
}

#[test]
fn keep_alive_https_answers_are_checked_and_handshakes_counted() {
    let engine = https_engine(DEFAULT_CERTIFICATE, UnknownSni::Default);
    let mut spec = load(4, 500);
    spec.depth = 4;
    let result = run_https(&engine, "localhost", spec);
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert!(result.responses > 100, "{}", result.responses);
    assert_eq!(result.ok, result.responses);
    assert_eq!(result.statuses.get(&302), Some(&result.responses));
    // Kept alive: one connection and one full handshake each.
    assert_eq!(result.connections_opened, 4);
    assert_eq!(result.tls_handshakes, 4);
    assert_eq!(result.tls_resumed, 0);
}

#[test]
fn a_connection_per_request_is_a_full_handshake_per_request() {
    let engine = https_engine("localhost", UnknownSni::Refuse);
    let result = run_https(&engine, "localhost", handshake_per_request(120, false));
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert_eq!((result.responses, result.ok), (120, 120));
    assert_eq!(result.connections_opened, 120);
    assert_eq!(result.tls_handshakes, 120);
    assert_eq!(result.tls_resumed, 0);

    // Several connections at once: every answer still correct, and every
    // handshake full.
    let mut spec = handshake_per_request(200, false);
    spec.connections = 8;
    let result = run_https(&engine, "localhost:443", spec);
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert_eq!((result.responses, result.ok), (200, 200));
    assert!(
        (200..208).contains(&result.tls_handshakes),
        "{} handshakes",
        result.tls_handshakes
    );
    assert_eq!(result.tls_resumed, 0);
}

#[test]
fn reconnects_resume_sessions_when_asked() {
    let engine = https_engine(DEFAULT_CERTIFICATE, UnknownSni::Default);
    let result = run_https(&engine, "localhost", handshake_per_request(60, true));
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert_eq!((result.responses, result.ok), (60, 60));
    assert_eq!(result.tls_handshakes, 60);
    // The first handshake has nothing to resume.
    assert!(
        (1..60).contains(&result.tls_resumed),
        "{} resumed",
        result.tls_resumed
    );
}

#[test]
fn a_refused_handshake_is_a_tls_error_and_sends_nothing() {
    // The engine has a certificate for go.example only and refuses others.
    let engine = https_engine("go.example", UnknownSni::Refuse);
    let result = run_https(&engine, "other.example", load(2, 300));
    assert!(
        result.errors.get("tls").is_some_and(|n| *n >= 2),
        "{:?}",
        result.errors
    );
    assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
    assert_eq!(
        (result.sent, result.responses, result.tls_handshakes),
        (0, 0, 0)
    );

    // A name it has: served.
    let result = run_https(&engine, "go.example", load(2, 200));
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert!(result.ok > 0);
}

#[test]
fn an_https_suite_installs_its_certificate_and_measures_handshakes() {
    let bus: Arc<dyn UpdateBus> = Arc::new(LocalBus::new());
    let control = TestControl::start_with(
        |c| {
            c.rate_limit.requests_per_second = 100_000;
            c.rate_limit.burst = 100_000;
        },
        bus.clone(),
    );
    let mut engine = TestEngine::start_with(|c| {
        c.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    });
    engine.start_again_with(StartOptions {
        sync: Some(SyncSource {
            bus,
            changes: control.control().change_source(),
        }),
        ..StartOptions::default()
    });
    assert!(engine.engine().wait_ready(Duration::from_secs(30)));
    let tls_addr = engine.engine().tls_addr().expect("a TLS listener");
    let text = format!(
        r#"
name = "https"
host = "localhost"
[keys]
generate = 50
status = 302
[seed]
method = "api"
wait = "20s"
[load]
connections = 2
duration = "400ms"
[[phase]]
name = "keep-alive"
[[phase]]
name = "handshakes"
connections = 1
max_requests = 30
duration = "30s"
requests_per_connection = 1
[[phase]]
name = "resumed"
connections = 1
max_requests = 30
duration = "30s"
requests_per_connection = 1
tls_resumption = true
[[target]]
name = "engine"
url = "https://{tls_addr}"
api = "{api}/api/v1"
api_key = "{key}"
certificate_upload = "/certificates/default"
"#,
        api = control.base_url(),
        key = control.admin_key,
    );
    let suite = Suite::parse(&text, "https.toml").expect("suite parses");
    let work = tempfile::tempdir().unwrap();
    let report = execute_in(work.path(), &suite).expect("suite runs");
    // Served correctly over HTTPS before the runs (checked through TLS).
    assert!(
        !report.notes.iter().any(|n| n.contains("not served")),
        "{:?}",
        report.notes
    );
    assert!(work.path().join("tls-cert.pem").is_file());
    let [keep_alive, handshakes, resumed] = &report.runs[..] else {
        panic!("{} runs", report.runs.len());
    };
    for run in [keep_alive, handshakes, resumed] {
        assert_eq!(run.error_total, 0, "{} {:?}", run.phase, run.errors);
        assert_eq!(run.ok, run.responses, "{}", run.phase);
    }
    assert_eq!(keep_alive.tls_handshakes, 2);
    assert_eq!((handshakes.responses, handshakes.tls_handshakes), (30, 30));
    assert_eq!(handshakes.tls_resumed, 0);
    assert_eq!((resumed.responses, resumed.tls_handshakes), (30, 30));
    assert!(resumed.tls_resumed > 0, "{}", resumed.tls_resumed);
    let table = report.to_table();
    assert!(
        table.contains("connections opened 30; TLS handshakes 30 (0 resumed), failed 0"),
        "{table}"
    );
}

#[test]
fn https_options_that_cannot_work_are_refused_clearly() {
    let work = tempfile::tempdir().unwrap();
    let refused = |text: &str| {
        let suite = Suite::parse(text, "s.toml").expect("suite parses");
        execute_in(work.path(), &suite)
            .expect_err("refused")
            .to_string()
    };
    let message = refused(
        "[keys]\ngenerate = 10\n[[target]]\nname = \"engine\"\nurl = \"https://127.0.0.1:1\"\ncertificate_upload = \"/certificates/default\"\n",
    );
    assert!(
        message.starts_with("target engine: certificate_upload needs `api`"),
        "{message}"
    );
    let message = refused(
        "[keys]\ngenerate = 10\n[flood]\nrate = 10\n[[target]]\nname = \"engine\"\nurl = \"https://127.0.0.1:1\"\n",
    );
    assert!(
        message.starts_with("target engine: [flood] sends its wrong passwords over plain HTTP"),
        "{message}"
    );
    let message = Suite::parse(
        "[keys]\ngenerate = 10\n[[target]]\nname = \"x\"\nurl = \"https://127.0.0.1:1\"\ncertificate = \"x\"\n",
        "s.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(message.contains("unknown field `certificate`"), "{message}");
}
