//! What CI gates on and what people open afterwards: thresholds (a failed
//! one exits 99 and is named with its measured value), `diff` against the
//! spread of the rounds, HdrHistogram interval logs that read back, and an
//! HTML report that escapes what suite files say.

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use ricochet_loadtest::diff::{Rounds, Verdict, diff};
use ricochet_loadtest::fixed_server::FixedServer;
use ricochet_loadtest::suite::Suite;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_ricochet-loadtest");

/// A suite file against `url`: one code a line (any redirect is right),
/// closed loop for `duration`, the given extra TOML after the load.
fn write_suite(
    dir: &Path,
    name: &str,
    url: &str,
    duration: &str,
    extra: &str,
) -> std::path::PathBuf {
    let keys = dir.join("keys.txt");
    std::fs::write(&keys, "anything\n").unwrap();
    let path = dir.join("suite.toml");
    std::fs::write(
        &path,
        format!(
            r#"name = {name:?}
description = "a <b>bold</b> & \"quoted\" description"
repeat = 2
[keys]
file = "{keys}"
[load]
connections = 4
duration = "{duration}"
timeout = "500ms"
grace = "500ms"
[[phase]]
name = "main"
[[target]]
name = "fixed"
url = "{url}"
{extra}
"#,
            keys = keys.display(),
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_failed_threshold_exits_99_and_says_which_with_the_measured_value() {
    let server = FixedServer::start(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(
        dir.path(),
        "gated",
        &format!("http://{}", server.addr()),
        "1s",
        r#"[[threshold]]
phase = "main"
expect = ["errors = 0", "throughput >= 1_000_000_000", "p99 < 10 s"]
"#,
    );
    let out = dir.path().join("out");
    let output = Command::new(BIN)
        .args(["suite", suite.to_str().unwrap(), "--quiet", "--out"])
        .arg(&out)
        .args(["--threshold", "max < 1 ns"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(99), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Thresholds (medians over rounds; errors summed): 2 passed, 2 failed"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("FAIL main fixed: throughput >= 1_000_000_000: measured "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(line.contains("limit 1,000,000,000 req/s"), "{line}");
    assert!(
        line.ends_with(&format!("[{}:18]", suite.display())),
        "{line}"
    );
    assert!(stdout.contains("FAIL main fixed: max < 1 ns"), "{stdout}");
    assert!(
        stdout.contains("pass main fixed: errors = 0: measured 0"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "thresholds failed: main fixed: throughput >= 1_000_000_000; main fixed: max < 1 ns"
        ),
        "{stderr}"
    );

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let thresholds = report["thresholds"].as_array().unwrap();
    assert_eq!(thresholds.len(), 4, "{thresholds:?}");
    let throughput = &thresholds[1];
    assert_eq!(throughput["expression"], "throughput >= 1_000_000_000");
    assert_eq!(throughput["passed"], false);
    assert_eq!(throughput["limit"], 1e9);
    let measured = throughput["measured"].as_f64().unwrap();
    assert!(measured > 100.0, "{throughput}");
    assert_eq!(thresholds[0]["passed"], true);
    assert_eq!(thresholds[2]["passed"], true);
    assert_eq!(thresholds[3]["origin"], "--threshold");
}

#[test]
fn passing_thresholds_exit_0_and_a_baseline_diffs_against_the_run() {
    let server = FixedServer::start(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let suite = write_suite(
        dir.path(),
        "baseline",
        &format!("http://{}", server.addr()),
        "500ms",
        "[[threshold]]\nexpect = [\"errors = 0\"]\n",
    );
    let baseline = dir.path().join("baseline.json");
    let run = |extra: &[&str]| {
        Command::new(BIN)
            .args(["suite", suite.to_str().unwrap(), "--quiet", "--out", "none"])
            .args(extra)
            .output()
            .unwrap()
    };
    let first = run(&["--save-baseline", baseline.to_str().unwrap()]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run(&["--baseline", baseline.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        stdout.contains(&format!("Diff: {} → this run", baseline.display())),
        "{stdout}"
    );
    let p99 = stdout
        .lines()
        .find(|l| l.split_whitespace().take(3).eq(["main", "fixed", "p99"]))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(p99.contains(" ms ["), "{p99}");
}

/// A report.json with `values[i]` as round i's p99 (ms) and throughput.
fn report(rounds: &[(f64, f64)]) -> Value {
    let runs: Vec<Value> = rounds
        .iter()
        .enumerate()
        .map(|(i, (p99, throughput))| {
            json!({
                "target": "engine",
                "phase": "closed",
                "round": i + 1,
                "throughput": throughput,
                "latency_ms": {"p50": 0.1, "p90": 0.2, "p99": p99, "p999": 3.0, "max": 9.0, "mean": 0.12},
                "error_total": 0,
                "server": null,
                "anything_else": "ignored"
            })
        })
        .collect();
    json!({"suite": "synthetic", "started_at": "2026-12-03 10:00:00 UTC", "runs": runs})
}

fn rounds(value: &Value) -> Rounds {
    serde_json::from_value(value.clone()).unwrap()
}

#[test]
fn diff_flags_a_clear_regression_and_not_a_change_within_the_spread() {
    // p99 doubles, every new round above every base round; throughput moves
    // by less than the rounds' own spread.
    let base = report(&[(1.00, 100_000.0), (1.10, 90_000.0), (1.05, 110_000.0)]);
    let new = report(&[(2.00, 104_000.0), (2.20, 95_000.0), (2.10, 112_000.0)]);
    let changes = diff(&rounds(&base), &rounds(&new), "base", "new");
    let row = |metric: &str| {
        changes
            .rows
            .iter()
            .find(|r| r.metric == metric)
            .unwrap_or_else(|| panic!("{metric}: {changes:?}"))
    };
    let p99 = row("p99");
    assert_eq!(p99.verdict, Verdict::Worse, "{p99:?}");
    assert!(p99.disjoint);
    assert!(
        (p99.change_percent.unwrap() - 100.0).abs() < 1e-9,
        "{p99:?}"
    );
    assert!((p99.p_value.unwrap() - 0.1).abs() < 1e-12, "{p99:?}");
    assert_eq!(row("throughput").verdict, Verdict::Noise);
    assert_eq!(row("p50").verdict, Verdict::Noise);
    assert_eq!(changes.regressions, 1, "{}", changes.table());
    // No server process measured: no CPU or memory rows.
    assert!(changes.rows.iter().all(|r| r.metric != "rss"));
    // Faster is better.
    let back = diff(&rounds(&new), &rounds(&base), "new", "base");
    assert_eq!(
        back.rows
            .iter()
            .find(|r| r.metric == "p99")
            .unwrap()
            .verdict,
        Verdict::Better
    );
    assert_eq!(back.regressions, 0);

    // One round a side: no spread to judge against.
    let single = diff(
        &rounds(&report(&[(1.0, 100_000.0)])),
        &rounds(&report(&[(5.0, 10.0)])),
        "a",
        "b",
    );
    assert!(single.rows.iter().all(|r| r.verdict == Verdict::NoSpread));
    assert!(single.table().contains("no spread: cannot judge"));

    // The command: a table, JSON, and status 98 with --fail-on-regression.
    let dir = tempfile::tempdir().unwrap();
    let (base_path, new_path) = (dir.path().join("base.json"), dir.path().join("new.json"));
    std::fs::write(&base_path, base.to_string()).unwrap();
    std::fs::write(&new_path, new.to_string()).unwrap();
    let command = |extra: &[&str]| {
        Command::new(BIN)
            .arg("diff")
            .args([&base_path, &new_path])
            .args(extra)
            .output()
            .unwrap()
    };
    let table = command(&[]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("WORSE") && text.contains("within noise"),
        "{text}"
    );
    let json_output = command(&["--json", "--fail-on-regression"]);
    assert_eq!(json_output.status.code(), Some(98));
    let parsed: Value = serde_json::from_slice(&json_output.stdout).unwrap();
    assert_eq!(parsed["regressions"], 1);

    std::fs::write(&new_path, "{\"runs\": 3}").unwrap();
    let broken = command(&[]);
    assert_eq!(broken.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&broken.stderr);
    assert!(
        stderr.contains("new.json:1:") && stderr.contains("not a ricochet-loadtest report.json"),
        "{stderr}"
    );
}

#[test]
fn interval_logs_read_back_and_the_html_escapes_the_suite() {
    let server = FixedServer::start(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let hostile = "<script>alert('x')</script>";
    let path = write_suite(
        dir.path(),
        hostile,
        &format!("http://{}", server.addr()),
        "2s",
        "",
    );
    let suite = Suite::from_file(&path).unwrap();
    let report = common::execute_in(&dir.path().join("work"), &suite).unwrap();
    let out = dir.path().join("out");
    report.write_files(&out).unwrap();

    for run in &report.runs {
        assert!(run.responses > 100, "{}", run.responses);
        let log =
            std::fs::read(out.join(format!("latency-main-fixed-r{}.hlog", run.round))).unwrap();
        let text = String::from_utf8_lossy(&log);
        assert!(text.starts_with("#ricochet-loadtest"), "{text}");
        assert!(text.contains("#[Histogram log format version 1.3]"));
        let (mut intervals, mut count, mut base_time) = (0, 0u64, false);
        for entry in IntervalLogIterator::new(&log) {
            match entry.expect("the log parses") {
                LogEntry::BaseTime(_) => base_time = true,
                LogEntry::StartTime(_) => {}
                LogEntry::Interval(interval) => {
                    assert_eq!(interval.duration().as_secs(), 1);
                    let bytes = STANDARD.decode(interval.encoded_histogram()).unwrap();
                    let histogram: hdrhistogram::Histogram<u64> =
                        Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                    count += histogram.len();
                    intervals += 1;
                }
            }
        }
        assert!(base_time);
        assert!(intervals >= 2, "{intervals} intervals");
        assert_eq!(count, run.responses, "round {}", run.round);
    }

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "an unescaped script tag");
    assert!(!html.contains("<b>bold</b>"));
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    assert!(html.contains("<svg") && html.contains("polyline"));
    assert_eq!(
        html.matches("<svg").count(),
        2,
        "one latency and one throughput plot"
    );
}
