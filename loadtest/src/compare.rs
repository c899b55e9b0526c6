//! Running a suite against one or more targets in alternation (round 1: A B,
//! round 2: A B, …) so slow drift on a noisy machine hits every target
//! alike; then per-target medians over rounds and the ratios of each pair.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::calibrate::Ceiling;
use crate::certificate;
use crate::edits::{EditTarget, measure};
use crate::error::{Error, Result};
use crate::flood::{self, VERIFIER_THREAD, run_flood};
use crate::geoip;
use crate::http::HttpClient;
use crate::keys::KeySet;
use crate::networks::ClientNetworks;
use crate::report::Report;
use crate::restart::restart_during_run;
use crate::run::{RunResult, RunSpec, run};
use crate::seed::{seed_via_api, wait_served};
use crate::stats::Progress;
use crate::suite::{SeedMethod, Suite};
use crate::target::{SuiteFiles, Target, links_carry_behaviour, needs_certificate, uses};
use crate::thresholds;

/// Medians over rounds of one target in one phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub phase: String,
    pub target: String,
    pub rounds: usize,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Errors summed over rounds.
    pub errors: u64,
    pub server_cpu_per_request_us: Option<f64>,
    pub server_rss_mb: Option<f64>,
    pub propagation_p50_ms: Option<f64>,
    pub propagation_p99_ms: Option<f64>,
    pub restart_unavailable_ms: Option<f64>,
}

/// `target` over `baseline` in one phase, from medians.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratio {
    pub phase: String,
    pub target: String,
    pub baseline: String,
    pub throughput: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub server_cpu_per_request: Option<f64>,
    /// `target`'s server CPU per request minus `baseline`'s, µs (what a
    /// feature one target has and the other lacks costs per request).
    pub server_cpu_per_request_difference_us: Option<f64>,
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// One row per (phase, target), in the order they first ran.
pub fn summarize(runs: &[RunResult]) -> Vec<SummaryRow> {
    let mut keys: Vec<(String, String)> = Vec::new();
    for run in runs {
        let key = (run.phase.clone(), run.target.clone());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(phase, target)| {
            let mine: Vec<&RunResult> = runs
                .iter()
                .filter(|r| r.phase == phase && r.target == target)
                .collect();
            let pick = |f: &dyn Fn(&RunResult) -> Option<f64>| -> Option<f64> {
                let mut values: Vec<f64> = mine.iter().filter_map(|r| f(r)).collect();
                median(&mut values)
            };
            SummaryRow {
                rounds: mine.len(),
                throughput: pick(&|r| Some(r.throughput)).unwrap_or(0.0),
                p50_ms: pick(&|r| Some(r.latency_ms.p50)).unwrap_or(0.0),
                p90_ms: pick(&|r| Some(r.latency_ms.p90)).unwrap_or(0.0),
                p99_ms: pick(&|r| Some(r.latency_ms.p99)).unwrap_or(0.0),
                p999_ms: pick(&|r| Some(r.latency_ms.p999)).unwrap_or(0.0),
                max_ms: pick(&|r| Some(r.latency_ms.max)).unwrap_or(0.0),
                errors: mine.iter().map(|r| r.error_total).sum(),
                server_cpu_per_request_us: pick(&|r| r.server.map(|s| s.cpu_per_request_us)),
                server_rss_mb: pick(&|r| r.server.map(|s| s.rss_mb)),
                propagation_p50_ms: pick(&|r| r.propagation.as_ref().map(|p| p.latency_ms.p50)),
                propagation_p99_ms: pick(&|r| r.propagation.as_ref().map(|p| p.latency_ms.p99)),
                restart_unavailable_ms: pick(&|r| {
                    r.restart.as_ref().and_then(|x| x.unavailable_ms)
                }),
                phase,
                target,
            }
        })
        .collect()
}

/// Every pair of targets within a phase (later over earlier).
pub fn ratios(summary: &[SummaryRow]) -> Vec<Ratio> {
    let divide = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    let mut out = Vec::new();
    for (i, base) in summary.iter().enumerate() {
        for other in &summary[i + 1..] {
            if other.phase != base.phase {
                continue;
            }
            out.push(Ratio {
                phase: base.phase.clone(),
                target: other.target.clone(),
                baseline: base.target.clone(),
                throughput: divide(other.throughput, base.throughput),
                p50: divide(other.p50_ms, base.p50_ms),
                p99: divide(other.p99_ms, base.p99_ms),
                p999: divide(other.p999_ms, base.p999_ms),
                server_cpu_per_request: match (
                    other.server_cpu_per_request_us,
                    base.server_cpu_per_request_us,
                ) {
                    (Some(a), Some(b)) => Some(divide(a, b)),
                    _ => None,
                },
                server_cpu_per_request_difference_us: match (
                    other.server_cpu_per_request_us,
                    base.server_cpu_per_request_us,
                ) {
                    (Some(a), Some(b)) => Some(a - b),
                    _ => None,
                },
            });
        }
    }
    out
}

/// How to execute a suite.
#[derive(Debug)]
pub struct ExecOptions<'a> {
    /// Where targets keep their data, logs and generated files.
    pub work_dir: PathBuf,
    pub ceiling: Option<Ceiling>,
    /// The command line, recorded in the report.
    pub command: String,
    pub stop: &'a AtomicBool,
}

/// Prepares the targets, seeds them, runs every round and phase, and
/// returns the finished report.
pub fn execute(
    suite: &Suite,
    options: &ExecOptions<'_>,
    progress: &mut dyn FnMut(&str, &Progress),
) -> Result<Report> {
    if suite.targets.is_empty() {
        return Err(Error::Invalid(
            "no targets: give --target NAME=URL (repeatable) or [[target]] tables in the suite"
                .into(),
        ));
    }
    if suite.flood.is_some()
        && let Some(target) = suite.targets.iter().find(|t| t.url.starts_with("https://"))
    {
        return Err(Error::Target {
            name: target.name.clone(),
            message: "[flood] sends its wrong passwords over plain HTTP: give the target an http:// url, or leave [flood] out".into(),
        });
    }
    let keys = Arc::new(suite.keys.load()?.with_behaviour(suite.behaviour.clone()));
    std::fs::create_dir_all(&options.work_dir)
        .map_err(|e| Error::io(format!("cannot create {}", options.work_dir.display()), e))?;
    // Absolute, so `{work}` means the same to servers that change directory
    // (nginx resolves -c and -e under its -p prefix).
    let work_dir = std::fs::canonicalize(&options.work_dir)
        .map_err(|e| Error::io(format!("cannot resolve {}", options.work_dir.display()), e))?;
    let files = SuiteFiles {
        links_csv: work_dir.join("links.csv"),
        links_jsonl: work_dir.join("links.jsonl"),
        geoip_db: work_dir.join("geoip.mmdb"),
        suite_dir: suite
            .path
            .as_deref()
            .and_then(|p| p.parent())
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".")),
        tls_cert: work_dir.join("tls-cert.pem"),
        tls_key: work_dir.join("tls-key.pem"),
        tls_resumption: suite.phases.iter().any(|p| p.load.tls_resumption),
    };
    write_files(suite, &keys, &files)?;
    let mut targets = Vec::new();
    // Each target's answers are checked against its own links: with the
    // behaviour's destinations only where its links carry it.
    let mut target_keys: Vec<Arc<KeySet>> = Vec::new();
    for spec in &suite.targets {
        targets.push(Target::prepare(spec, &work_dir, &files, &keys)?);
        target_keys.push(
            match keys.behaviour().is_some() && !links_carry_behaviour(spec) {
                true => Arc::new(keys.with_behaviour(None)),
                false => keys.clone(),
            },
        );
    }
    let mut report = Report::new(
        Some(suite.name.clone()),
        options.command.clone(),
        options.ceiling.clone(),
    );
    for (target, keys) in targets.iter().zip(&target_keys) {
        let host = suite.host.clone().unwrap_or_else(|| target.host.clone());
        if suite.seed.method == SeedMethod::Api {
            let Some(api) = &target.api else {
                eprintln!("[{}] no api: not seeded through the API", target.name);
                continue;
            };
            let key = target.api_key()?;
            let started = Instant::now();
            let summary = seed_via_api(api, &key, keys, suite.seed.batch, &mut |done, total| {
                if done % 50_000 < suite.seed.batch as u64 || done == total {
                    eprintln!("[{}] seeded {done}/{total}", target.name);
                }
            })?;
            eprintln!(
                "[{}] seeding: {} created, {} already there, {} failed in {:.1}s",
                target.name,
                summary.created,
                summary.existed,
                summary.failed,
                started.elapsed().as_secs_f64()
            );
            let waited = wait_served(&target.url, &host, keys, keys.len() - 1, suite.seed.wait)?;
            eprintln!(
                "[{}] last seeded link served after {:.0} ms",
                target.name,
                waited.as_secs_f64() * 1000.0
            );
        }
        // A target that does not answer correctly is still measured (its
        // errors are counted), but the report says so up front.
        if let Err(e) = wait_served(&target.url, &host, keys, 0, Duration::from_secs(5)) {
            let note = format!(
                "target {}: the first key was not served correctly before the run: {e}",
                target.name
            );
            eprintln!("warning: {note}");
            report.notes.push(note);
        }
        if let Some(flood) = &suite.flood {
            check_flood_link(target, &host, &flood.code)?;
        }
    }
    for round in 1..=suite.repeat {
        for (target, keys) in targets.iter_mut().zip(&target_keys) {
            if options.stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let host = suite.host.clone().unwrap_or_else(|| target.host.clone());
            if !suite.warmup.is_zero() {
                let mut load = suite.phases[0].load.clone();
                load.duration = suite.warmup;
                load.max_requests = None;
                let spec = RunSpec {
                    target: target.name.clone(),
                    phase: "warm-up".into(),
                    round,
                    addr: target.addr,
                    host: host.clone(),
                    tls: target.url.tls,
                    load,
                    shape: suite.traffic.clone(),
                    keys: keys.clone(),
                    server_pid: None,
                };
                let label = format!("[{}] warm-up #{round}", target.name);
                run(&spec, options.stop, &mut |p| progress(&label, p))?;
            }
            for phase in &suite.phases {
                let spec = RunSpec {
                    target: target.name.clone(),
                    phase: phase.name.clone(),
                    round,
                    addr: target.addr,
                    host: host.clone(),
                    tls: target.url.tls,
                    load: phase.load.clone(),
                    shape: suite.traffic.clone(),
                    keys: keys.clone(),
                    server_pid: target.pid(),
                };
                let label = format!("[{}] {} #{round}", target.name, phase.name);
                let result = run_phase(suite, target, &spec, keys, options.stop, &mut |p| {
                    progress(&label, p)
                })?;
                report.runs.push(result);
            }
        }
    }
    drop(targets);
    report.description = suite.description.clone();
    report.finish();
    report.thresholds = thresholds::evaluate(&suite.thresholds, &report.runs);
    Ok(report)
}

/// Writes the files the targets use: `{links_csv}`, `{links_jsonl}`,
/// `{geoip_db}`, `{tls_cert}` and `{tls_key}`.
fn write_files(suite: &Suite, keys: &KeySet, files: &SuiteFiles) -> Result<()> {
    let used = |name: &str| suite.targets.iter().any(|t| uses(t, name));
    if suite.targets.iter().any(needs_certificate) {
        let host = suite.host.as_deref().unwrap_or("localhost");
        eprintln!(
            "writing a self-signed ECDSA P-256 certificate for {host} to {}",
            files.tls_cert.display()
        );
        certificate::write_self_signed(host, &files.tls_cert, &files.tls_key)?;
    }
    if used("links_csv") {
        eprintln!(
            "writing {} links to {}",
            keys.len(),
            files.links_csv.display()
        );
        keys.write_import_csv(&files.links_csv)?;
    }
    if used("links_jsonl") {
        eprintln!(
            "writing {} links{} to {}",
            keys.len(),
            if keys.behaviour().is_some() {
                " with their behaviour"
            } else {
                ""
            },
            files.links_jsonl.display()
        );
        keys.write_import_jsonl(&files.links_jsonl)?;
        if let Some(flood) = &suite.flood {
            eprintln!(
                "adding the password-protected link {} (Argon2id) for [flood]",
                flood.code
            );
            flood::append_link(&files.links_jsonl, &flood.code)?;
        }
    }
    if used("geoip_db") {
        let networks = match suite.traffic.visitors.networks() {
            Some(networks) => networks.clone(),
            None => ClientNetworks::generated(),
        };
        eprintln!(
            "writing a GeoIP database of {} client networks to {}",
            networks.len(),
            files.geoip_db.display()
        );
        geoip::write_database(&networks, &files.geoip_db)?;
    }
    Ok(())
}

/// Refuses to flood a target that does not serve `code` as a protected link
/// (the password form, 200).
fn check_flood_link(target: &Target, host: &str, code: &str) -> Result<()> {
    let mut client = HttpClient::new(&target.url, Duration::from_secs(5))?;
    let path = format!("/{code}");
    let status = client
        .request("GET", &path, &[("Host", host)], b"")
        .map(|r| r.status);
    match status {
        Ok(200) => Ok(()),
        other => Err(Error::Target {
            name: target.name.clone(),
            message: format!(
                "[flood] needs {path} to be a password-protected link, but GET {path} answered {}: import {{links_jsonl}} in the target's setup (the tool adds the link there), or create it on the target",
                match other {
                    Ok(status) => format!("{status}"),
                    Err(e) => e.to_string(),
                }
            ),
        }),
    }
}

/// One phase, with the suite's edits, flood or restart going on beside it.
fn run_phase(
    suite: &Suite,
    target: &mut Target,
    spec: &RunSpec,
    keys: &Arc<crate::keys::KeySet>,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<RunResult> {
    let edit_target = match &suite.edits {
        None => None,
        Some(_) => {
            let api = target.api.clone().ok_or_else(|| Error::Target {
                name: target.name.clone(),
                message: "the suite makes edits: the target needs `api` (and an API key)".into(),
            })?;
            Some(EditTarget {
                api,
                api_key: target.api_key()?,
                engine: target.url.clone(),
                host: spec.host.clone(),
            })
        }
    };
    let flood = suite.flood.as_ref().filter(|f| f.applies_to(&spec.phase));
    let verifier_cpu = || {
        flood
            .and(spec.server_pid)
            .and_then(|pid| flood::named_threads_cpu_ns(pid, VERIFIER_THREAD))
    };
    let verifier_before = verifier_cpu();
    let flood_addr = target.addr;
    let start = Instant::now();
    let deadline = start + spec.load.duration;
    std::thread::scope(|scope| -> Result<RunResult> {
        let edits = match (&suite.edits, &edit_target) {
            (Some(edits), Some(edit_target)) => {
                Some(scope.spawn(move || measure(edit_target, edits, deadline, stop)))
            }
            _ => None,
        };
        let flooding = flood.map(|flood| {
            let host = spec.host.as_str();
            scope.spawn(move || run_flood(flood_addr, host, flood, deadline, stop))
        });
        let restart = match &suite.restart {
            Some(restart) => {
                let target = &mut *target;
                let keys = keys.clone();
                Some(
                    scope.spawn(move || restart_during_run(target, restart, start, &keys, 0, stop)),
                )
            }
            None => None,
        };
        let result = run(spec, stop, progress);
        let verifier_after = verifier_cpu();
        let flooded = flooding
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("the flood thread panicked".into())))
            })
            .transpose();
        let propagation = edits
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("the edit thread panicked".into())))
            })
            .transpose();
        let restarted = restart
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("the restart thread panicked".into())))
            })
            .transpose();
        let mut result = result?;
        result.propagation = propagation?;
        if let Some(mut flooded) = flooded? {
            if let (Some(before), Some(after)) = (verifier_before, verifier_after) {
                let verifier_s = after.saturating_sub(before) as f64 / 1e9;
                flooded.verifier_cpu_s = Some(verifier_s);
                flooded.server_cpu_per_request_without_verifier_us = result.server.map(|s| {
                    (s.cpu_s - verifier_s).max(0.0) * 1e6 / result.responses.max(1) as f64
                });
            }
            result.flood = Some(flooded);
        }
        if let Some(mut restart) = restarted? {
            restart.errors = result.errors.clone();
            result.restart = Some(restart);
        }
        Ok(result)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
