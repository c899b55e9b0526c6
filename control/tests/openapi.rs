//! The OpenAPI document against standard tools: `openapi-spec-validator`
//! checks it is valid OpenAPI, and `schemathesis` fuzzes a running control
//! plane from it (no 5xx, only documented statuses, content types and response
//! shapes). Both come from the Python venv `scripts/install-test-deps.sh`
//! makes (`RICOCHET_TEST_VENV`, default `~/.cache/ricochet-test-venv`).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_model::bus::LocalBus;
use ricochet_model::clicks::{ClickReader, Counts, Dimension, Interval, SinkError, bucket_series};

/// A tool installed in the test venv; fails (never skips) when it is missing.
fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("RICOCHET_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/ricochet-test-venv")
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

/// Clicks for any query, so every analytics answer has content.
struct SomeClicks;

impl ClickReader for SomeClicks {
    fn series(
        &self,
        _: u64,
        from: i64,
        to: i64,
        interval: Interval,
    ) -> Result<Vec<(i64, Counts)>, SinkError> {
        let click = (from, Counts { humans: 2, bots: 1 });
        Ok(bucket_series(from, to, interval, [click]))
    }

    fn breakdown(
        &self,
        _: u64,
        _: i64,
        _: i64,
        _: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        Ok(vec![("FR".to_owned(), Counts { humans: 2, bots: 1 })])
    }

    fn top_links(&self, _: i64, _: i64, limit: usize) -> Result<Vec<(u64, Counts)>, SinkError> {
        let links = [
            (1, Counts { humans: 5, bots: 0 }),
            (999_999, Counts::default()),
        ];
        Ok(links.into_iter().take(limit).collect())
    }
}

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let schemathesis = venv_tool("schemathesis");
    let test = started();
    test.control().set_click_reader(Arc::new(SomeClicks));
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
