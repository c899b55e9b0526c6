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
use serde_json::{Value, json};

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
        // The event stream does not end (tests/events.rs reads it).
        .args(["--exclude-path", "/api/v1/events"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "50", "--seed", "1", "--workers", "1"])
        .args(["--request-timeout", "10", "--no-color"]);
    run(command);
}

/// Validates each `(component, instance)` against `document`'s component
/// schemas with Python's jsonschema (draft 2020-12, what OpenAPI 3.1 uses):
/// `None` when valid, else the errors.
fn schema_errors(document: &Value, checks: &[(&str, Value)]) -> Vec<Option<String>> {
    const SCRIPT: &str = r##"
import json, sys
from jsonschema import Draft202012Validator
data = json.load(sys.stdin)
answers = []
for name, instance in data["checks"]:
    root = {"$ref": "#/components/schemas/" + name, "components": data["components"]}
    errors = Draft202012Validator(root).iter_errors(instance)
    text = "; ".join(f"{list(e.absolute_path)}: {e.message[:160]}" for e in errors)
    answers.append(text or None)
print(json.dumps(answers))
"##;
    let input = json!({"components": document["components"], "checks": checks});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checks.json");
    std::fs::write(&path, input.to_string()).unwrap();
    let mut command = Command::new(venv_tool("python3"));
    command
        .args(["-c", SCRIPT])
        .stdin(std::fs::File::open(&path).unwrap());
    serde_json::from_str(&run(command)).unwrap()
}

/// What the server does with a body, against what the schema says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Valid by the schema, created (and the answer valid by `LinkView`).
    Created,
    /// Valid by the schema, refused for a rule across fields its
    /// descriptions state (weights adding up to 100, known time zones, …).
    CrossField,
    /// Refused by both.
    Refused,
}

fn behaviour_cases() -> Vec<(Value, Expect)> {
    use Expect::*;
    let url = "https://example.com/r";
    let rule = |conditions: Value| json!({"url": url, "conditions": conditions});
    let condition = |kind: &str, value: Value| json!({"type": kind, "value": value});
    let one = |c: Value| json!({"url": "https://example.com/", "rules": [rule(json!([c]))]});
    let schedule = |value: Value| one(condition("schedule", value));
    let split = |weights: &[u64]| -> Value {
        weights
            .iter()
            .map(|w| json!({"url": "https://example.com/v", "weight": w}))
            .collect()
    };
    let link = |fields: Value| {
        let mut body = json!({"url": "https://example.com/"});
        for (name, value) in fields.as_object().unwrap() {
            body[name] = value.clone();
        }
        body
    };
    let clef = |count: usize| "\u{1d11e}".repeat(count); // 4 bytes each
    let os = condition("os", json!("ios"));
    let ips = [
        "::",
        "::1",
        "fe80::1/64",
        "2001:db8::/32",
        "1:2:3:4:5:6:7::",
        "1::8",
        "2001:DB8:0:0:0:0:0:1/128",
        "0.0.0.0/0",
        "255.255.255.255",
        "203.0.113.9/32",
    ];
    vec![
        (
            link(json!({
                "rules": [
                    {"url": "https://example.com/ios", "conditions": [os.clone()]},
                    {"url": "https://example.com/fr", "conditions": [
                        condition("language", json!("fr")),
                        {"type": "query-param", "key": "ref", "value": "mail"}]}],
                "variants": split(&[50, 50]),
                "fallback_url": "https://example.com/gone",
                "card": {"title": "Spring", "description": "Half price", "image": "https://img.example/s.png"},
                "ios": "https://apps.apple.com/app/id1",
                "android": "http://play.example:8080/store?id=a#top"})),
            Created,
        ),
        (
            link(json!({"rules": vec![rule(Value::from(vec![os.clone(); 16])); 32]})),
            Created,
        ),
        (
            link(json!({"variants": split(&[12, 12, 12, 12, 13, 13, 13, 13]),
                        "rules": [{"url": url, "conditions": [os.clone()], "variants": split(&[100, 0])}]})),
            Created,
        ),
        (
            link(json!({"rules": [
                rule(json!([
                    condition("device", json!("tablet")),
                    condition("browser", json!(clef(64))),
                    condition("city", json!("São Paulo")),
                    condition("language", json!("zh-Hant-TW")),
                    condition("country", json!("br")),
                    {"type": "query-param", "key": clef(64), "value": ""},
                    {"type": "query-param", "key": "k", "value": null},
                    {"type": "query-param", "key": "k"},
                    {"type": "any-value-query-param", "key": "utm_source"},
                    {"type": "valueless-query-param", "key": "preview", "value": null},
                    condition("after", json!("2026-12-24T18:00:00.123456789+05:30")),
                    condition("before", json!("2030-01-01T00:00:00Z")),
                    condition("schedule", json!({"timezone": "America/Argentina/Buenos_Aires",
                                                 "days": ["sun", "sat"], "from": "22:00", "to": "06:00"})),
                    condition("schedule", json!({"timezone": "UTC"})),
                    condition("schedule", json!({"timezone": "Etc/GMT+5", "from": "00:00", "to": "24:00"}))
                ])),
                rule(ips.iter().map(|ip| condition("ip", json!(ip))).collect()),
            ]})),
            Created,
        ),
        (
            link(
                json!({"card": {"title": clef(75), "description": format!("{}\n{}", clef(100), clef(149)),
                                 "image": null}}),
            ),
            Created,
        ),
        (
            link(json!({"card": {}, "rules": [], "variants": null})),
            Created,
        ),
        (link(json!({"variants": split(&[40, 40])})), CrossField),
        (
            link(
                json!({"rules": [{"url": url, "conditions": [os.clone()], "variants": split(&[60, 60])}]}),
            ),
            CrossField,
        ),
        (schedule(json!({"timezone": "Mars/Olympus"})), CrossField),
        (
            schedule(json!({"timezone": "UTC", "from": "10:00", "to": "10:00"})),
            CrossField,
        ),
        (
            one(condition("after", json!("2026-02-30T00:00:00Z"))),
            CrossField,
        ),
        (
            link(json!({"rules": vec![rule(json!([os.clone()])); 33]})),
            Refused,
        ),
        (
            link(json!({"rules": [rule(Value::from(vec![os.clone(); 17]))]})),
            Refused,
        ),
        (link(json!({"rules": [rule(json!([]))]})), Refused),
        (link(json!({"variants": split(&[10; 10])})), Refused),
        (link(json!({"variants": split(&[100])})), Refused),
        (link(json!({"variants": split(&[101, 0])})), Refused),
        (
            link(json!({"variants": [{"url": url, "weight": 50.5}, {"url": url, "weight": 49.5}]})),
            Refused,
        ),
        (one(condition("device", json!("fridge"))), Refused),
        (one(condition("os", json!("amiga"))), Refused),
        (one(condition("country", json!("FRA"))), Refused),
        (one(condition("language", json!("français"))), Refused),
        (one(condition("ip", json!("10.0.0.300"))), Refused),
        (one(condition("ip", json!("1.2.3.4/33"))), Refused),
        (one(condition("browser", json!(""))), Refused),
        (one(condition("city", json!(" \u{3000} "))), Refused),
        (one(condition("city", json!("x".repeat(257)))), Refused),
        (one(json!({"type": "query-param", "value": "x"})), Refused),
        (
            one(json!({"type": "device", "key": "k", "value": "mobile"})),
            Refused,
        ),
        (
            one(json!({"type": "valueless-query-param", "key": "k", "value": "v"})),
            Refused,
        ),
        (one(json!({"type": "planet", "value": "mars"})), Refused),
        (one(condition("after", json!("tomorrow"))), Refused),
        (schedule(json!({"timezone": "UTC", "days": []})), Refused),
        (
            schedule(json!({"timezone": "UTC", "days": ["someday"]})),
            Refused,
        ),
        (
            schedule(json!({"timezone": "UTC", "from": "9:00"})),
            Refused,
        ),
        (schedule(json!({"timezone": "UTC", "to": "24:30"})), Refused),
        (schedule(json!({"timezone": "UTC", "at": "10:00"})), Refused),
        (
            link(json!({"rules": [{"url": url, "conditions": [os.clone()], "when": 1}]})),
            Refused,
        ),
        (
            link(
                json!({"variants": [{"url": url, "weight": 50}, {"url": url, "weight": 50, "label": "b"}]}),
            ),
            Refused,
        ),
        (link(json!({"card": {"colour": "red"}})), Refused),
        (link(json!({"card": {"title": "x".repeat(301)}})), Refused),
        (link(json!({"card": "title"})), Refused),
        (link(json!({"fallback_url": "ftp://example.com/"})), Refused),
        (link(json!({"ios": 5})), Refused),
        (link(json!({"android": "javascript:alert(1)"})), Refused),
        // Password and click limit.
        (link(json!({"password": "x", "max_clicks": 1})), Created),
        (
            link(json!({"password": clef(128), "max_clicks": 1_000_000_000_000u64})),
            Created,
        ),
        (
            link(json!({"password": "with spaces ünïcode", "max_clicks": null})),
            Created,
        ),
        (link(json!({"password": null})), Created),
        (link(json!({"password": ""})), Refused),
        (link(json!({"password": "x".repeat(129)})), Refused),
        (link(json!({"password": "tab\there"})), Refused),
        (link(json!({"password": "c1\u{85}"})), Refused),
        (link(json!({"password": 1234})), Refused),
        (link(json!({"max_clicks": 0})), Refused),
        (link(json!({"max_clicks": 1_000_000_000_001u64})), Refused),
        (link(json!({"max_clicks": 2.5})), Refused),
        (link(json!({"max_clicks": "3"})), Refused),
        (
            link(
                json!({"password_hash": "$argon2id$v=19$m=8192,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}),
            ),
            Refused,
        ),
    ]
}

#[test]
fn behaviour_schemas_accept_what_the_server_accepts_and_describe_its_answers() {
    let test = started();
    let api = test.client();
    let document = ApiClient::new(&test.base_url(), None)
        .get("/api/v1/openapi.json")
        .body;
    let cases = behaviour_cases();
    let bodies: Vec<(&str, Value)> = cases
        .iter()
        .map(|(body, _)| ("CreateLink", body.clone()))
        .collect();
    let verdicts = schema_errors(&document, &bodies);
    let mut views = Vec::new();
    for ((body, expect), verdict) in cases.iter().zip(&verdicts) {
        let what = body.to_string();
        let what: String = what.chars().take(300).collect();
        let answer = api.post("/api/v1/links", body);
        match expect {
            Expect::Created => {
                assert_eq!(verdict, &None, "the schema refuses {what}");
                assert_eq!(answer.status, 201, "{what}: {}", answer.text);
                views.push(("LinkView", answer.body));
            }
            Expect::CrossField => {
                assert_eq!(verdict, &None, "the schema refuses {what}");
                assert_eq!(answer.status, 400, "{what}: {}", answer.text);
            }
            Expect::Refused => {
                assert!(verdict.is_some(), "the schema takes {what}");
                assert_eq!(answer.status, 400, "{what}: {}", answer.text);
            }
        }
    }
    for (view, verdict) in views.iter().zip(schema_errors(&document, &views)) {
        assert_eq!(verdict, None, "LinkView does not describe {}", view.1);
    }
}
