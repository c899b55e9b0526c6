//! Links with behaviour end to end: the JSON Lines import file carries the
//! suite's rules and variants as the model reads them; an engine that
//! imported it, asked by varied visitors (user agents, languages, client
//! addresses placed by the tool's GeoIP database), answers only with
//! destinations the check accepts, every rule among them; the same answers
//! checked as plain links are wrong targets; and a suite gives each target
//! the check its links call for.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{NEVER, load};
use ricochet_engine::test_util::{TestEngine, exchange};
use ricochet_loadtest::behaviour::Behaviour;
use ricochet_loadtest::keys::generated_code;
use ricochet_loadtest::networks::ClientNetworks;
use ricochet_loadtest::run::OWN_URL;
use ricochet_loadtest::suite::Suite;
use ricochet_loadtest::test_util::TestServer;
use ricochet_loadtest::{
    GeneratedKeys, KeySet, Popularity, RunResult, RunSpec, TrafficShape, Visitors, geoip, run,
};
use ricochet_model::behaviour::check::{parse_rules, parse_variants};
use ricochet_model::transfer::{TransferRow, from_json_line};

const LINKS: u64 = 200;

fn behaviour() -> Arc<Behaviour> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest/rules-5.json");
    Arc::new(Behaviour::from_file(&path).expect("rules-5.json is valid"))
}

fn keys() -> KeySet {
    KeySet::generated(GeneratedKeys {
        count: LINKS,
        status: 302,
        ..GeneratedKeys::default()
    })
    .unwrap()
    .with_behaviour(Some(behaviour()))
}

fn varied() -> TrafficShape {
    TrafficShape {
        popularity: Popularity::Uniform,
        bot_share: 0.05,
        visitors: Visitors::varied(ClientNetworks::generated()),
        ..TrafficShape::default()
    }
}

/// An engine reading X-Forwarded-For and the tool's GeoIP database, with
/// the key set imported from the tool's JSON Lines file.
fn engine_with_rules(dir: &Path) -> TestEngine {
    let geoip_db = dir.join("geoip.mmdb");
    geoip::write_database(&ClientNetworks::generated(), &geoip_db).unwrap();
    let engine = TestEngine::start_with(|config| {
        config.clicks.enabled = false;
        config.clicks.trust_forwarded_for = true;
        config.clicks.geoip_database = geoip_db.clone();
    });
    let jsonl = dir.join("links.jsonl");
    keys().write_import_jsonl(&jsonl).unwrap();
    assert_eq!(common::import_jsonl(&engine, &jsonl), LINKS);
    // The first user agent an engine classifies compiles the classifier
    // (seconds in a debug build): once, before anything is measured, as a
    // suite's warm-up does.
    let code = String::from_utf8(generated_code(0, 0).to_vec()).unwrap();
    let first = exchange(
        engine.addr(),
        format!("GET /{code} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8.5.0\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(first.status, 302);
    engine
}

fn measure(addr: std::net::SocketAddr, keys: KeySet) -> RunResult {
    let mut spec_load = load(4, 1500);
    spec_load.depth = 4;
    // A debug engine on a busy machine: correctness, not speed.
    spec_load.timeout = std::time::Duration::from_secs(3);
    spec_load.grace = spec_load.timeout;
    let spec = RunSpec {
        target: "engine".into(),
        phase: "main".into(),
        round: 1,
        addr,
        host: "localhost".into(),
        tls: false,
        load: spec_load,
        shape: varied(),
        keys: Arc::new(keys),
        server_pid: None,
    };
    run(&spec, &NEVER, &mut |_| {}).expect("run completes")
}

fn wrong_targets(run: &RunResult) -> u64 {
    run.errors.get("wrong_target").copied().unwrap_or(0)
}

fn answers(run: &RunResult, destination: &str) -> u64 {
    run.destinations
        .iter()
        .find(|d| d.destination == destination)
        .unwrap_or_else(|| panic!("no {destination} in {:?}", run.destinations))
        .answers
}

#[test]
fn jsonl_rows_carry_the_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("links.jsonl");
    let keys = keys();
    keys.write_import_jsonl(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len() as u64, LINKS);
    let behaviour = behaviour();
    for (index, line) in lines.iter().enumerate() {
        let Ok(TransferRow::Link(row)) = from_json_line(line) else {
            panic!("line {index} is not a link: {line}");
        };
        let record = keys.record(index as u64);
        assert_eq!(row.domain, None);
        assert_eq!(row.code.as_deref(), Some(record.code.as_str()));
        assert_eq!(Some(row.url), record.url);
        assert_eq!(row.status, Some(302));
        assert_eq!(parse_rules(&row.rules.unwrap()).unwrap(), behaviour.rules());
        assert_eq!(
            parse_variants(&row.variants.unwrap()).unwrap(),
            behaviour.variants()
        );
    }
    // Without a behaviour the rows are the links alone.
    let plain = keys.with_behaviour(None);
    plain.write_import_jsonl(&path).unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    let Ok(TransferRow::Link(row)) = from_json_line(first.lines().next().unwrap()) else {
        panic!("not a link");
    };
    assert_eq!((row.rules, row.variants), (None, None));
}

/// Visitors no earlier rule of rules-5.json matched go to its schedule rule
/// during office hours (weekdays 09:00-17:00 in Paris, by the engine's
/// clock) and to the A/B split otherwise: all to one or the other, at
/// whatever time the test runs.
fn office_or_split_takes_the_rest(run: &RunResult) {
    let office = answers(run, "https://example.com/office");
    let (a, b) = (
        answers(run, "https://example.com/a"),
        answers(run, "https://example.com/b"),
    );
    assert!(
        (office > 0 && a == 0 && b == 0) || (office == 0 && a > 0 && b > 0),
        "{:?}",
        run.destinations
    );
}

#[test]
fn an_engine_with_rules_answers_varied_visitors_within_the_behaviour() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_rules(dir.path());
    let run = measure(engine.addr(), keys());
    assert_eq!(run.error_total, 0, "{:?}", run.errors);
    assert_eq!(run.ok, run.responses);
    assert!(run.responses > 1000, "{}", run.responses);
    let total: u64 = run.destinations.iter().map(|d| d.answers).sum();
    assert_eq!(total, run.ok);
    // The split takes everyone no rule matched: no answer is the link's own URL.
    assert_eq!(answers(&run, OWN_URL), 0, "{:?}", run.destinations);
    for destination in [
        "https://example.com/mobile",
        "https://example.com/de",
        "https://example.com/fr",
    ] {
        assert!(answers(&run, destination) > 0, "{:?}", run.destinations);
    }
    office_or_split_takes_the_rest(&run);
    // The same answers, checked as plain links, go to the wrong places.
    let strict = measure(engine.addr(), keys().with_behaviour(None));
    assert!(
        wrong_targets(&strict) > strict.responses / 2,
        "{:?}",
        strict.errors
    );
    assert!(strict.destinations.is_empty());
}

#[test]
fn behaviour_destinations_are_accepted_and_nothing_else() {
    // Three links: one answers with its own URL, one with a rule's, one
    // with a URL no rule has.
    let server = TestServer::builder()
        .redirect("/a", 302, "https://own.example/a")
        .redirect("/b", 302, "https://example.com/office")
        .redirect("/c", 302, "https://example.com/elsewhere")
        .start();
    let keys = KeySet::parse(
        ",a,https://own.example/a,302\n,b,https://own.example/b,302\n,c,https://own.example/c,302\n",
        "keys",
    )
    .unwrap()
    .with_behaviour(Some(behaviour()));
    let mut spec_load = load(3, 30_000);
    spec_load.max_requests = Some(300);
    let spec = RunSpec {
        target: "server".into(),
        phase: "main".into(),
        round: 1,
        addr: server.addr(),
        host: "localhost".into(),
        tls: false,
        load: spec_load,
        shape: TrafficShape {
            popularity: Popularity::Sequential,
            visitors: Visitors::varied(ClientNetworks::generated()),
            ..TrafficShape::default()
        },
        keys: Arc::new(keys),
        server_pid: None,
    };
    let run = run(&spec, &NEVER, &mut |_| {}).unwrap();
    assert_eq!(run.responses, 300);
    assert_eq!(run.ok, 200);
    assert_eq!(
        run.errors.get("wrong_target"),
        Some(&100),
        "{:?}",
        run.errors
    );
    assert_eq!(answers(&run, OWN_URL), 100);
    assert_eq!(answers(&run, "https://example.com/office"), 100);
    assert_eq!(answers(&run, "https://example.com/mobile"), 0);
}

#[test]
fn a_suite_checks_each_target_against_the_links_it_imported() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine_with_rules(dir.path());
    let behaviour_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest/rules-5.json");
    // Both targets are the same engine (links with rules); the first says it
    // imported the links alone, the second the links with their rules.
    let text = format!(
        r#"
name = "rules"
[keys]
generate = {LINKS}
status = 302
behaviour = "{behaviour}"
[traffic]
visitors = "varied"
bot_share = 0.05
[load]
connections = 4
depth = 4
duration = "1s"
[[target]]
name = "plain"
url = "http://{addr}"
host = "localhost"
setup = [["test", "-s", "{{links_csv}}"]]
[[target]]
name = "rules-5"
url = "http://{addr}"
host = "localhost"
setup = [["test", "-s", "{{links_jsonl}}"], ["test", "-s", "{{geoip_db}}"]]
"#,
        behaviour = behaviour_file.display(),
        addr = engine.addr(),
    );
    let suite = Suite::parse(&text, "rules.toml").expect("suite parses");
    let work = tempfile::tempdir().unwrap();
    let report = common::execute_in(work.path(), &suite).expect("suite runs");
    let [plain, rules] = &report.runs[..] else {
        panic!("{} runs", report.runs.len());
    };
    assert_eq!(rules.error_total, 0, "{:?}", rules.errors);
    office_or_split_takes_the_rest(rules);
    assert!(
        wrong_targets(plain) > plain.responses / 2,
        "{:?}",
        plain.errors
    );
    assert!(plain.destinations.is_empty());
    let table = report.to_table();
    assert!(
        table.contains("destinations: (the link's own URL) 0.0%, https://example.com/mobile"),
        "{table}"
    );
    assert!(
        !report
            .notes
            .iter()
            .any(|n| n.contains("without their behaviour")),
        "{:?}",
        report.notes
    );
}
