//! Traffic mixes from a file: the shipped default mix renders valid
//! requests in its shares (HEAD, unknown codes, bots without a language,
//! utm queries, X-Forwarded-For addresses), and an engine asked with it
//! answers every request as the check expects (404 for unknown codes, the
//! redirect without a body for HEAD, the link's target whatever the query).

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{NEVER, load};
use ricochet_engine::test_util::{TestEngine, exchange};
use ricochet_loadtest::keys::generated_code;
use ricochet_loadtest::mix::Mix;
use ricochet_loadtest::suite::Suite;
use ricochet_loadtest::traffic::RequestMaker;
use ricochet_loadtest::{GeneratedKeys, KeySet, RunSpec, TrafficShape, run};

const LINKS: u64 = 200;

fn default_mix() -> Arc<Mix> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest/mixes/default.toml");
    Arc::new(Mix::from_file(&path).unwrap_or_else(|e| panic!("{e}")))
}

fn keys() -> KeySet {
    KeySet::generated(GeneratedKeys {
        count: LINKS,
        ..GeneratedKeys::default()
    })
    .unwrap()
}

#[test]
fn the_default_mix_renders_valid_requests_in_its_shares() {
    let keys = keys();
    let shape = TrafficShape {
        mix: Some(default_mix()),
        ..TrafficShape::default()
    };
    let mut maker = RequestMaker::new(&shape, &keys, "localhost", 0).unwrap();
    let mut out = Vec::new();
    const N: usize = 20_000;
    for _ in 0..N {
        let draw = maker.pick(1);
        maker.render(&keys, draw, &mut out);
    }
    let (mut at, mut head, mut unknown, mut queries, mut without_language) = (0, 0, 0, 0, 0);
    let mut agents = std::collections::HashSet::new();
    for _ in 0..N {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut request = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(len) = request.parse(&out[at..]).unwrap() else {
            panic!("a partial request");
        };
        at += len;
        let header = |name: &str| {
            request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| std::str::from_utf8(h.value).unwrap())
        };
        head += usize::from(request.method == Some("HEAD"));
        let path = request.path.unwrap();
        unknown += usize::from(path.starts_with("/u_"));
        queries += usize::from(
            path.contains("?utm_") || path.contains("?fbclid") || path.contains("?ref="),
        );
        without_language += usize::from(header("Accept-Language").is_none());
        agents.insert(header("User-Agent").unwrap().to_owned());
        let client: std::net::IpAddr = header("X-Forwarded-For").unwrap().parse().unwrap();
        assert!(!client.is_loopback());
    }
    assert_eq!(at, out.len());
    let share = |n: usize| n as f64 / N as f64;
    assert!(
        (0.015..0.025).contains(&share(head)),
        "HEAD {}",
        share(head)
    );
    assert!(
        (0.025..0.035).contains(&share(unknown)),
        "unknown {}",
        share(unknown)
    );
    // Bots and link checkers send no Accept-Language.
    assert!(
        (0.04..0.06).contains(&share(without_language)),
        "{}",
        share(without_language)
    );
    assert!(
        (0.15..0.35).contains(&share(queries)),
        "queries {}",
        share(queries)
    );
    assert!(agents.len() > 40, "{}", agents.len());
}

#[test]
fn an_engine_answers_the_default_mix_as_the_check_expects() {
    let dir = tempfile::tempdir().unwrap();
    let engine = TestEngine::start_with(|config| {
        config.clicks.trust_forwarded_for = true;
    });
    let jsonl = dir.path().join("links.jsonl");
    keys().write_import_jsonl(&jsonl).unwrap();
    assert_eq!(common::import_jsonl(&engine, &jsonl), LINKS);
    // The first user agent compiles the classifier (seconds in a debug build).
    let code = String::from_utf8(generated_code(0, 0).to_vec()).unwrap();
    let first = exchange(
        engine.addr(),
        format!("GET /{code} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(first.status, 301);
    let mut spec_load = load(4, 2000);
    spec_load.depth = 4;
    spec_load.timeout = std::time::Duration::from_secs(3);
    spec_load.grace = spec_load.timeout;
    let spec = RunSpec {
        target: "engine".into(),
        phase: "main".into(),
        round: 1,
        addr: engine.addr(),
        host: "localhost".into(),
        tls: false,
        load: spec_load,
        shape: TrafficShape {
            mix: Some(default_mix()),
            ..TrafficShape::default()
        },
        keys: Arc::new(keys()),
        server_pid: None,
    };
    let result = run(&spec, &NEVER, &mut |_| {}).expect("run completes");
    assert!(result.responses > 500, "{}", result.responses);
    assert_eq!(
        result.error_total, 0,
        "{:?} {:?}",
        result.errors, result.statuses
    );
    assert_eq!(result.ok, result.responses);
    let not_found = result.statuses.get(&404).copied().unwrap_or(0);
    assert!(
        not_found > 0 && not_found < result.responses / 10,
        "{:?}",
        result.statuses
    );
    assert_eq!(
        result.statuses.get(&301).copied().unwrap_or(0) + not_found,
        result.responses
    );
}

#[test]
fn suites_name_a_mix_and_its_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[[shape]]\nname = \"x\"\nweight = 1\nuser_agents = [\"A/1\"]\nnetworks = [\"10.0.0.0/8\", \"10.1.0.0/99\"]\n",
    )
    .unwrap();
    let mixes = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest/mixes");
    let text = |mix: &str, extra: &str| {
        format!("[keys]\ngenerate = 10\n\n[traffic]\n{extra}mix = \"{mix}\"\n")
    };
    let suite = Suite::parse_in(&text("default.toml", ""), "s.toml", &mixes).unwrap();
    assert_eq!(
        suite.traffic.mix.as_ref().map(|m| m.name()),
        Some("default")
    );
    let err = |mix: &str, extra: &str| {
        Suite::parse_in(&text(mix, extra), "s.toml", dir.path())
            .unwrap_err()
            .to_string()
    };
    let message = err("bad.toml", "");
    assert!(
        message.starts_with("s.toml:5:1: [traffic] mix: "),
        "{message}"
    );
    assert!(
        message.contains("bad.toml:5:1: [shape] networks: "),
        "{message}"
    );
    assert!(message.contains("10.1.0.0/99"), "{message}");
    let message = err("missing.toml", "");
    assert!(message.contains("cannot read mix"), "{message}");
    std::fs::copy(mixes.join("default.toml"), dir.path().join("default.toml")).unwrap();
    let message = err("default.toml", "bot_share = 0.1\n");
    assert!(
        message.starts_with("s.toml:6:1: [traffic] mix: bot_share comes from the mix"),
        "{message}"
    );
}

#[test]
fn the_binary_reports_a_bad_mix_with_its_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad-mix.toml");
    std::fs::write(&path, "[[shape]]\nuser_agents = [\"A/1\"]\nweight = 0\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ricochet-loadtest"))
        .args(["run", "http://127.0.0.1:9", "--generate", "10"])
        .args(["--mix", path.to_str().unwrap(), "--out", "none"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad-mix.toml:3:1: [shape] weight: must be a number above 0, not 0"),
        "{stderr}"
    );
    // A mix and a traffic share it replaces: refused before anything runs.
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest/mixes/default.toml");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_ricochet-loadtest"))
        .args(["run", "http://127.0.0.1:9", "--generate", "10", "--head"])
        .args(["--mix", good.to_str().unwrap(), "--out", "none"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("method comes from the mix"), "{stderr}");
}
