//! `[flood]`: wrong passwords for a protected link beside the load. The
//! suite keys parse with defaults and every bad value names its key and
//! line; against a real engine (X-Forwarded-For trusted) that imported the
//! tool's JSON Lines file with the protected link, a suite with a quiet and
//! a flooded phase sends the POSTs, the engine answers them 403, 429 or 503
//! only, the redirects of the main load stay correct, and the report holds
//! the flood's counts and the flooded phase against the quiet one; one
//! client address runs into the limiter (429); a target without the link
//! is refused before anything runs.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use ricochet_engine::test_util::{TestEngine, exchange};
use ricochet_loadtest::flood::{self, FloodSpec, RIGHT_PASSWORD, run_flood};
use ricochet_loadtest::suite::Suite;
use ricochet_loadtest::{GeneratedKeys, KeySet};

static NEVER: AtomicBool = AtomicBool::new(false);

const LINKS: u64 = 200;

fn parse(flood: &str) -> ricochet_loadtest::Result<Suite> {
    let text = format!(
        "[keys]\ngenerate = 10\n\n[load]\nmode = \"open\"\nrate = 100\n\n[[phase]]\nname = \"quiet\"\n\n[[phase]]\nname = \"flood\"\n\n{flood}"
    );
    Suite::parse(&text, "s.toml")
}

fn error(flood: &str) -> String {
    parse(flood).expect_err("the suite is refused").to_string()
}

#[test]
fn flood_keys_parse_with_defaults_and_bad_values_name_their_key() {
    let suite = parse("[flood]\n").unwrap();
    assert_eq!(suite.flood, Some(FloodSpec::default()));
    let spec = suite.flood.unwrap();
    assert_eq!(
        (
            spec.rate,
            spec.connections,
            spec.addresses,
            spec.code.as_str()
        ),
        (200.0, 128, 1000, "flood-pw")
    );
    assert!(spec.applies_to("quiet") && spec.applies_to("flood"));
    assert_eq!(parse("").unwrap().flood, None);

    let suite = parse(
        "[flood]\nrate = 50.5\nconnections = 8\naddresses = 1\ncode = \"pw_1\"\ntimeout = \"2s\"\nphases = [\"flood\"]\n",
    )
    .unwrap();
    let spec = suite.flood.unwrap();
    assert_eq!(
        spec,
        FloodSpec {
            rate: 50.5,
            connections: 8,
            addresses: 1,
            code: "pw_1".into(),
            timeout: Duration::from_secs(2),
            phases: vec!["flood".into()],
        }
    );
    assert!(spec.applies_to("flood") && !spec.applies_to("quiet"));

    // [flood] starts on line 14; its first key is on line 15.
    for (flood, expected) in [
        ("rate = 0", "s.toml:15:1: [flood] rate: must be a number"),
        ("rate = -3.0", "s.toml:15:1: [flood] rate: must be a number"),
        (
            "connections = 0",
            "s.toml:15:1: [flood] connections: must be between 1 and 10000",
        ),
        (
            "addresses = 0",
            "s.toml:15:1: [flood] addresses: must be between 1 and 131072",
        ),
        (
            "addresses = 200000",
            "s.toml:15:1: [flood] addresses: must be between 1 and 131072",
        ),
        (
            "code = \"a b\"",
            "s.toml:15:1: [flood] code: \"a b\" is not a valid code",
        ),
        (
            "timeout = \"soon\"",
            "s.toml:15:1: [flood] timeout: \"soon\" is not a duration",
        ),
        (
            "timeout = \"0s\"",
            "s.toml:15:1: [flood] timeout: must be positive",
        ),
        (
            "phases = []",
            "s.toml:15:1: [flood] phases: name at least one phase",
        ),
        (
            "phases = [\"flood\", \"loud\"]",
            "s.toml:15:1: [flood] phases: no phase is named \"loud\" (the phases: quiet, flood)",
        ),
    ] {
        let message = error(&format!("[flood]\n{flood}\n"));
        assert!(message.starts_with(expected), "{flood}: {message}");
    }
    // Type mistakes and unknown keys are TOML's messages, at their place.
    let message = error("[flood]\nrate = \"fast\"\n");
    assert!(message.starts_with("s.toml:15:"), "{message}");
    let message = error("[flood]\nrat = 200\n");
    assert!(
        message.starts_with("s.toml:15:") && message.contains("unknown field `rat`"),
        "{message}"
    );
    // The link comes with the engine import: seeding through the API cannot make it.
    let message = error("[flood]\n\n[seed]\nmethod = \"api\"\n");
    assert!(
        message
            .starts_with("s.toml:17:1: [seed] method: [flood] needs its password-protected link"),
        "{message}"
    );
}

fn keys() -> KeySet {
    KeySet::generated(GeneratedKeys {
        count: LINKS,
        status: 302,
        ..GeneratedKeys::default()
    })
    .unwrap()
}

/// An engine trusting X-Forwarded-For (as the suite's does), with the
/// links and the protected link imported from the tool's JSON Lines.
fn engine_with_protected_link(dir: &Path) -> TestEngine {
    let engine = TestEngine::start_with(|config| {
        config.clicks.enabled = false;
        config.clicks.trust_forwarded_for = true;
    });
    let jsonl = dir.join("links.jsonl");
    keys().write_import_jsonl(&jsonl).unwrap();
    flood::append_link(&jsonl, flood::DEFAULT_CODE).unwrap();
    assert_eq!(common::import_jsonl(&engine, &jsonl), LINKS + 1);
    engine
}

fn post(engine: &TestEngine, client: &str, password: &str) -> u16 {
    let body = format!("password={password}");
    let request = format!(
        "POST /flood-pw HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: {client}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    exchange(engine.addr(), request.as_bytes()).status
}

fn suite_text(engine: &TestEngine, flood: &str) -> String {
    format!(
        r#"
name = "flood"
repeat = 1
[keys]
generate = {LINKS}
status = 302
[load]
mode = "open"
rate = 400
connections = 4
duration = "2s"
timeout = "2s"
[[phase]]
name = "quiet"
[[phase]]
name = "flood"
{flood}
[[target]]
name = "engine"
url = "http://{addr}"
host = "localhost"
# The engine runs in this process: its verifier thread is measured here.
pid = {pid}
setup = [["test", "-s", "{{links_jsonl}}"]]
"#,
        addr = engine.addr(),
        pid = std::process::id(),
    )
}

#[test]
fn a_flood_beside_the_load_is_answered_403_429_or_503_and_redirects_stay_correct() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_protected_link(dir.path());
    // The link is protected: a form, the right password passes, a wrong one not.
    assert_eq!(engine.get("/flood-pw", "localhost").status, 200);
    assert_eq!(post(&engine, "192.0.2.1", "wrong"), 403);
    assert_eq!(post(&engine, "192.0.2.1", RIGHT_PASSWORD), 303);

    let text = suite_text(
        &engine,
        "[flood]\nrate = 40\naddresses = 1000\nconnections = 16\ntimeout = \"10s\"\nphases = [\"flood\"]\n",
    );
    let suite = Suite::parse(&text, "flood.toml").expect("suite parses");
    let work = tempfile::tempdir().unwrap();
    let report = common::execute_in(work.path(), &suite).expect("suite runs");
    let [quiet, flooded] = &report.runs[..] else {
        panic!("{} runs", report.runs.len());
    };
    assert_eq!(
        (quiet.phase.as_str(), flooded.phase.as_str()),
        ("quiet", "flood")
    );
    for run in [quiet, flooded] {
        assert_eq!(run.error_total, 0, "{}: {:?}", run.phase, run.errors);
        assert_eq!(run.ok, run.responses, "{}", run.phase);
        assert!(run.responses > 600, "{}: {}", run.phase, run.responses);
    }
    assert!(quiet.flood.is_none());
    let f = flooded.flood.as_ref().expect("the flood's counts");
    assert!(f.sent > 0, "{f:?}");
    // The achieved rate depends on how busy the machine is: only that one was measured.
    assert!(f.rate > 0.0 && f.rate <= 40.0 * 1.05, "{f:?}");
    assert_eq!(f.answered, f.sent, "{f:?}");
    assert_eq!(f.answers_other, 0, "{f:?}");
    assert_eq!(f.answers_403 + f.answers_429 + f.answers_503, f.answered);
    assert!(f.answers_403 > 0, "{f:?}");
    assert_eq!(f.errors, 0, "{f:?}");
    // Attempts come due at 40/s for 2 s; each is sent or counted as not sent.
    assert!(f.sent + f.not_sent >= 60, "{f:?}");
    assert!(f.verifier_cpu_s.is_some_and(|s| s > 0.0), "{f:?}");
    assert!(f.server_cpu_per_request_without_verifier_us.is_some());

    // The report: counts under the run, the flooded phase against the quiet one.
    let [ratio] = &report.flood_ratios[..] else {
        panic!("{:?}", report.flood_ratios);
    };
    assert_eq!(
        (
            ratio.target.as_str(),
            ratio.phase.as_str(),
            ratio.baseline.as_str()
        ),
        ("engine", "flood", "quiet")
    );
    // A ratio of two measured rates: its value is the measurement's, not the test's.
    assert!(
        ratio.throughput.is_finite() && ratio.throughput > 0.0,
        "{ratio:?}"
    );
    let table = report.to_table();
    assert!(table.contains("  flood on /flood-pw: sent "), "{table}");
    assert!(table.contains("engine flood vs quiet: req/s ×"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["runs"][1]["flood"]["answers_403"], f.answers_403);
    assert!(json["runs"][0].get("flood").is_none());
    assert_eq!(json["flood_ratios"][0]["baseline"], "quiet");

    // The tool's own import file ends with the protected link.
    let written = std::fs::read_to_string(work.path().join("links.jsonl")).unwrap();
    assert_eq!(written.lines().count() as u64, LINKS + 1);
    let last: serde_json::Value = serde_json::from_str(written.lines().last().unwrap()).unwrap();
    assert_eq!(last["code"], "flood-pw");
    assert!(
        last["password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$v=19$m=8192,t=2,p=1$")
    );

    // One client address: past its 10 attempts a minute, the limiter answers.
    let one = FloodSpec {
        rate: 40.0,
        connections: 4,
        addresses: 1,
        timeout: Duration::from_secs(10),
        ..FloodSpec::default()
    };
    let deadline = Instant::now() + Duration::from_millis(1500);
    let f = run_flood(engine.addr(), "localhost", &one, deadline, &NEVER).unwrap();
    assert!(f.sent >= 40, "{f:?}");
    assert_eq!((f.answered, f.answers_other), (f.sent, 0), "{f:?}");
    assert!(f.answers_403 <= 10, "{f:?}");
    assert!(f.answers_429 >= f.sent - 10, "{f:?}");
}

#[test]
fn a_target_without_the_protected_link_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_protected_link(dir.path());
    let text = suite_text(&engine, "[flood]\ncode = \"not-there\"\n");
    let suite = Suite::parse(&text, "flood.toml").expect("suite parses");
    let work = tempfile::tempdir().unwrap();
    let message = common::execute_in(work.path(), &suite)
        .expect_err("no run without the link")
        .to_string();
    assert!(
        message.starts_with(
            "target engine: [flood] needs /not-there to be a password-protected link, but GET /not-there answered 404"
        ),
        "{message}"
    );
}
