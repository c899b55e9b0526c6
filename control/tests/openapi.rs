//! The OpenAPI document against standard tools: `openapi-spec-validator`
//! checks it is valid OpenAPI, and `schemathesis` fuzzes a running control
//! plane from it (no 5xx, only documented statuses, content types and response
//! shapes). Both come from the Python venv `scripts/install-test-deps.sh`
//! makes (`RICOCHET_TEST_VENV`, default `~/.cache/ricochet-test-venv`).

use std::process::Command;
use std::sync::Arc;

use ricochet_control::test_util::{ApiClient, TestControl, venv_tool};
use ricochet_model::bus::LocalBus;
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow, window_start};

/// Runs `command`; panics with its output unless it succeeds.
fn run(mut command: Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{command:?} failed:\n{text}");
    text
}

fn started() -> TestControl {
    TestControl::start_with(
        |config| {
            config.rate_limit.requests_per_second = 1_000_000;
            config.rate_limit.burst = 1_000_000;
            config.links.max_bulk = 20;
        },
        Arc::new(LocalBus::new()),
    )
}

#[test]
fn the_document_is_valid_openapi() {
    let validator = venv_tool("openapi-spec-validator");
    let test = started();
    let document = ApiClient::new(&test.base_url(), None).get("/api/v1/openapi.json");
    assert_eq!(document.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &document.text).unwrap();
    let output = run({
        let mut command = Command::new(validator);
        command.arg(&path);
        command
    });
    assert!(output.contains("OK"), "{output}");
}

/// Writes a window of clicks for links 1 to 3 into the control plane's own
/// click store, so analytics answers have content.
fn record_clicks(test: &TestControl) {
    let window = window_start(ricochet_model::now_millis() - 60_000);
    let rows = (1..=3)
        .flat_map(|link| {
            [(Dimension::Total, ""), (Dimension::Country, "FR")].map(|(dimension, value)| {
                WindowRow {
                    link_id: link,
                    window_start: window,
                    dimension,
                    value: value.to_owned(),
                    bot: false,
                    count: 2,
                }
            })
        })
        .collect();
    let batch = WindowBatch {
        node: "fuzz".to_owned(),
        shard: 0,
        window_start: window,
        rows,
    };
    test.control().click_store().sink().write(&batch).unwrap();
}

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let schemathesis = venv_tool("schemathesis");
    let test = started();
    record_clicks(&test);
    let api = test.client();
    for i in 0..3 {
        let created = api.post(
            "/api/v1/links",
            &serde_json::json!({"url": format!("https://example.com/{i}")}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let base = test.base_url();
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(schemathesis);
    command
        .current_dir(dir.path())
        .args(["run", &format!("{base}/api/v1/openapi.json")])
        .args(["--url", &base])
        .args(["-H", &format!("Authorization: Bearer {}", test.admin_key)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "50", "--seed", "1", "--workers", "1"])
        .args(["--request-timeout", "10", "--no-color"]);
    run(command);
}
