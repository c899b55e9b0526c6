//! Suites end to end: edits under load against a real control plane and
//! engine (seeded through the bulk API, propagation measured), and a restart
//! under load of a server process the tool starts itself.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ricochet_control::test_util::TestControl;
use ricochet_engine::test_util::TestEngine;
use ricochet_engine::{StartOptions, SyncSource};
use ricochet_loadtest::compare::{ExecOptions, execute};
use ricochet_loadtest::suite::Suite;
use ricochet_model::bus::{LocalBus, UpdateBus};

static NEVER: AtomicBool = AtomicBool::new(false);

fn execute_suite(text: &str) -> ricochet_loadtest::report::Report {
    let suite = Suite::parse(text, "test-suite.toml").expect("suite parses");
    let work = tempfile::tempdir().unwrap();
    let options = ExecOptions {
        work_dir: work.path().to_path_buf(),
        ceiling: None,
        command: "test".into(),
        stop: &NEVER,
    };
    execute(&suite, &options, &mut |_, _| {}).expect("suite runs")
}

#[test]
fn edits_under_load_measure_propagation() {
    let bus: Arc<dyn UpdateBus> = Arc::new(LocalBus::new());
    let control = TestControl::start_with(
        |c| {
            c.rate_limit.requests_per_second = 100_000;
            c.rate_limit.burst = 100_000;
        },
        bus.clone(),
    );
    let mut engine = TestEngine::start();
    engine.start_again_with(StartOptions {
        sync: Some(SyncSource {
            bus,
            changes: control.control().change_source(),
        }),
        ..StartOptions::default()
    });
    assert!(engine.engine().wait_ready(Duration::from_secs(30)));
    let text = format!(
        r#"
name = "edits"
[keys]
generate = 300
[seed]
method = "api"
batch = 100
wait = "20s"
[load]
mode = "open"
rate = 500
connections = 4
duration = "2s"
[edits]
count = 15
interval = "50ms"
timeout = "3s"
[[target]]
name = "ricochet"
url = "http://{engine}"
api = "{api}/api/v1"
api_key = "{key}"
"#,
        engine = engine.addr(),
        api = control.base_url(),
        key = control.admin_key,
    );
    let report = execute_suite(&text);
    assert_eq!(report.runs.len(), 1);
    let run = &report.runs[0];
    assert_eq!(run.error_total, 0, "{:?}", run.errors);
    assert_eq!(run.ok, run.responses);
    assert!(run.responses > 800, "{}", run.responses);
    let propagation = run.propagation.as_ref().expect("propagation measured");
    assert!(propagation.edits >= 10, "{propagation:?}");
    assert_eq!(propagation.not_propagated, 0, "{propagation:?}");
    assert_eq!(propagation.api_errors, 0, "{propagation:?}");
    assert!(propagation.latency_ms.max < 3000.0, "{propagation:?}");
}

#[test]
fn restart_under_load_times_the_way_back() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "anything\n").unwrap();
    let text = format!(
        r#"
name = "restart"
[keys]
file = "{keys}"
[load]
mode = "open"
rate = 1000
connections = 8
duration = "3s"
timeout = "500ms"
[restart]
at = "1s"
signal = "term"
timeout = "10s"
[[target]]
name = "fixed"
url = "http://127.0.0.1:{{port}}"
command = ["{bin}", "fixed-server", "--listen", "127.0.0.1:{{port}}"]
"#,
        keys = keys.display(),
        bin = env!("CARGO_BIN_EXE_ricochet-loadtest"),
    );
    let report = execute_suite(&text);
    let run = &report.runs[0];
    let restart = run.restart.as_ref().expect("restart measured");
    assert!(restart.stopped_at_s >= 0.9, "{restart:?}");
    let serving = restart.start_to_serving_ms.expect("serving again");
    assert!(serving < 5000.0, "{restart:?}");
    assert!(restart.unavailable_ms.is_some(), "{restart:?}");
    assert!(run.responses > 1000, "{}", run.responses);
    // Requests due while the server was down either waited or failed; none
    // is lost from the books.
    let per_request: u64 = run
        .errors
        .iter()
        .filter(|(k, _)| k.as_str() != "connect")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        run.responses + per_request,
        run.sent + run.errors.get("not_sent").copied().unwrap_or(0)
    );
}
