//! A short soak against the fixed-response server: a row per interval with
//! the percentiles and the server's memory and CPU, progress lines as the
//! intervals end, and a verdict on drift.

use std::process::Command;

use ricochet_loadtest::fixed_server::FixedServer;

#[test]
fn a_short_soak_reports_every_interval_and_a_verdict() {
    let server = FixedServer::start(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "abc\n").unwrap();
    let out = dir.path().join("out");
    // The fixed server runs in this process: its memory and CPU are ours.
    let output = Command::new(env!("CARGO_BIN_EXE_ricochet-loadtest"))
        .args(["soak", &format!("http://{}", server.addr())])
        .args(["--keys", keys.to_str().unwrap()])
        .args(["--rate", "300", "--duration", "4s", "--interval", "1s"])
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--json", "--out", out.to_str().unwrap()])
        .args(["--ceiling", dir.path().join("none.json").to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{report}");
    for (index, row) in rows.iter().enumerate() {
        assert_eq!(row["interval"].as_u64(), Some(index as u64 + 1));
        assert_eq!(row["at_s"].as_f64(), Some(index as f64));
        assert_eq!(row["sent"].as_u64(), Some(300), "{row}");
        assert_eq!(row["responses"].as_u64(), Some(300), "{row}");
        assert_eq!(row["errors"].as_u64(), Some(0), "{row}");
        for field in ["p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"] {
            assert!(row[field].as_f64().unwrap() > 0.0, "{field} {row}");
        }
        assert!(row["rss_mb"].as_f64().unwrap() > 1.0, "{row}");
        assert!(row["server_cores"].as_f64().unwrap() >= 0.0, "{row}");
        assert!(
            stderr.contains(&format!("soak {:>3}/4 ", index + 1)),
            "{stderr}"
        );
    }
    assert_eq!(report["drift"]["quarter"].as_u64(), Some(1));
    let verdict = report["drift"]["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("no drift") || verdict.starts_with("drift: "),
        "{verdict}"
    );
    assert!(
        verdict.ends_with("(from 1 interval per quarter: a noisy verdict)"),
        "{verdict}"
    );
    assert!(report["drift"]["rss_mb"]["first"].as_f64().unwrap() > 1.0);
    assert!(out.join("soak.json").exists() && out.join("soak.txt").exists());
    assert_eq!(server.requests(), 1200);
}

#[test]
fn a_soak_needs_a_rate() {
    let output = Command::new(env!("CARGO_BIN_EXE_ricochet-loadtest"))
        .args([
            "soak",
            "http://127.0.0.1:9",
            "--generate",
            "10",
            "--duration",
            "2s",
        ])
        .args(["--interval", "1s", "--out", "none"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--rate"));
}
