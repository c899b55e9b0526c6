//! What a user reads: the live progress line, the table at the end, the JSON
//! document (`--json`), and the files of a run directory (report.json,
//! report.txt, one latency and one throughput SVG per phase).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::calibrate::Ceiling;
use crate::compare::{Ratio, SummaryRow, median, ratios, summarize};
use crate::error::{Error, Result};
use crate::plot;
use crate::run::RunResult;
use crate::stats::Progress;
use crate::thresholds::{self, ThresholdResult};

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub suite: Option<String>,
    /// The suite's description.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub started_at: String,
    /// The command line that produced the report.
    pub command: String,
    /// The generator's own ceiling on this machine, if calibrated.
    pub ceiling: Option<Ceiling>,
    pub runs: Vec<RunResult>,
    /// Medians over rounds, per phase and target.
    pub summary: Vec<SummaryRow>,
    /// Each target against the first, per phase (medians).
    pub ratios: Vec<Ratio>,
    /// Each phase with a `[flood]` against the phase of the same load
    /// without it, per target (medians).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flood_ratios: Vec<FloodRatio>,
    /// Each threshold checked for each phase and target it applies to
    /// (medians over rounds; errors summed).
    pub thresholds: Vec<ThresholdResult>,
    pub notes: Vec<String>,
}

/// A target's figures in a phase with the flood over those in a phase of
/// the same load without it, from medians over rounds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FloodRatio {
    pub target: String,
    /// The phase with the flood.
    pub phase: String,
    /// The phase without it.
    pub baseline: String,
    pub throughput: f64,
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub server_cpu_per_request: Option<f64>,
    pub server_cpu_per_request_difference_us: Option<f64>,
    /// The same, leaving out the engine's verifier thread in the flooded
    /// phase: what the flood cost the threads serving redirects.
    pub server_cpu_per_request_without_verifier: Option<f64>,
    pub server_cpu_per_request_without_verifier_difference_us: Option<f64>,
}

/// Pairs each flooded (target, phase) with the first phase of the same
/// target and the same load that had no flood.
fn flood_ratios(runs: &[RunResult]) -> Vec<FloodRatio> {
    let mut pairs: Vec<(&str, &str, &str)> = Vec::new();
    for run in runs.iter().filter(|r| r.flood.is_some()) {
        let Some(quiet) = runs.iter().find(|q| {
            q.flood.is_none()
                && q.target == run.target
                && q.phase != run.phase
                && q.load == run.load
                && !runs
                    .iter()
                    .any(|o| o.phase == q.phase && o.target == q.target && o.flood.is_some())
        }) else {
            continue;
        };
        let pair = (
            run.target.as_str(),
            run.phase.as_str(),
            quiet.phase.as_str(),
        );
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    let divide = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    pairs
        .into_iter()
        .map(|(target, phase, baseline)| {
            let of = |name: &str, f: &dyn Fn(&RunResult) -> Option<f64>| -> Option<f64> {
                let mut values: Vec<f64> = runs
                    .iter()
                    .filter(|r| r.target == target && r.phase == name)
                    .filter_map(f)
                    .collect();
                median(&mut values)
            };
            let both = |f: &dyn Fn(&RunResult) -> Option<f64>| (of(phase, f), of(baseline, f));
            let ratio = |f: &dyn Fn(&RunResult) -> Option<f64>| match both(f) {
                (Some(a), Some(b)) => divide(a, b),
                _ => f64::NAN,
            };
            let cpu = |r: &RunResult| r.server.map(|s| s.cpu_per_request_us);
            let quiet_cpu = of(baseline, &cpu);
            let flooded_cpu = of(phase, &cpu);
            let without = of(phase, &|r: &RunResult| {
                r.flood
                    .as_ref()
                    .and_then(|f| f.server_cpu_per_request_without_verifier_us)
            });
            let pair = |a: Option<f64>| match (a, quiet_cpu) {
                (Some(a), Some(b)) => (Some(divide(a, b)), Some(a - b)),
                _ => (None, None),
            };
            let (server_cpu_per_request, server_cpu_per_request_difference_us) = pair(flooded_cpu);
            let (
                server_cpu_per_request_without_verifier,
                server_cpu_per_request_without_verifier_difference_us,
            ) = pair(without);
            FloodRatio {
                target: target.to_owned(),
                phase: phase.to_owned(),
                baseline: baseline.to_owned(),
                throughput: ratio(&|r| Some(r.throughput)),
                p50: ratio(&|r| Some(r.latency_ms.p50)),
                p99: ratio(&|r| Some(r.latency_ms.p99)),
                p999: ratio(&|r| Some(r.latency_ms.p999)),
                server_cpu_per_request,
                server_cpu_per_request_difference_us,
                server_cpu_per_request_without_verifier,
                server_cpu_per_request_without_verifier_difference_us,
            }
        })
        .collect()
}

impl Report {
    pub fn new(suite: Option<String>, command: String, ceiling: Option<Ceiling>) -> Self {
        Self {
            tool: format!("ricochet-loadtest {}", env!("CARGO_PKG_VERSION")),
            suite,
            description: String::new(),
            started_at: utc_now(),
            command,
            ceiling,
            runs: Vec::new(),
            summary: Vec::new(),
            ratios: Vec::new(),
            flood_ratios: Vec::new(),
            thresholds: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Whether every threshold passed (true when there are none).
    pub fn thresholds_passed(&self) -> bool {
        self.thresholds.iter().all(|t| t.passed)
    }

    /// Computes the summary and ratios from the runs.
    pub fn finish(&mut self) {
        self.summary = summarize(&self.runs);
        self.ratios = ratios(&self.summary);
        self.flood_ratios = flood_ratios(&self.runs);
        for run in &self.runs {
            for worker in &run.workers {
                if let Some(why) = &worker.lost {
                    self.notes.push(format!(
                        "{} {} round {}: worker {} {why}; its share ({} requests) is counted as not_sent",
                        run.target, run.phase, run.round, worker.address, worker.not_sent
                    ));
                }
            }
            let ceiling = self.ceiling.as_ref().map(|c| {
                let per_thread = if run.load.depth > 1 {
                    c.pipelined_rate
                } else {
                    c.rate
                };
                // Every generator thread, on all workers when there were some.
                per_thread * run.generator.threads.max(1) as f64
            });
            if let Some(ceiling) = ceiling
                && run.throughput > 0.8 * ceiling
            {
                self.notes.push(format!(
                    "{} {} round {}: {} req/s is over 80% of the generator's calibrated ceiling ({} req/s): the server may be faster than measured",
                    run.target,
                    run.phase,
                    run.round,
                    thousands(run.throughput),
                    thousands(ceiling)
                ));
            }
            let by_behaviour: u64 = run.destinations.iter().skip(1).map(|d| d.answers).sum();
            if !run.destinations.is_empty() && run.ok > 0 && by_behaviour == 0 {
                self.notes.push(format!(
                    "{} {} round {}: every correct answer went to the links' own URLs, none to a rule or variant: either no visitor matched, or the target serves the links without their behaviour (were they imported from {{links_jsonl}}?)",
                    run.target, run.phase, run.round
                ));
            }
            if let Some(f) = &run.flood {
                if f.answers_other > 0 {
                    self.notes.push(format!(
                        "{} {} round {}: {} wrong passwords were answered with neither 403, 429 nor 503 ({:?}): a 2xx or 3xx means one got through",
                        run.target, run.phase, run.round, f.answers_other, f.other_statuses
                    ));
                }
                if f.rate < 0.9 * f.target_rate {
                    self.notes.push(format!(
                        "{} {} round {}: the flood sent {:.0} wrong passwords/s, not the {:.0}/s asked for ({} not sent: every connection had an attempt out; raise [flood] connections)",
                        run.target, run.phase, run.round, f.rate, f.target_rate, f.not_sent
                    ));
                }
            }
            if run.generator.busy > 0.9 {
                self.notes.push(format!(
                    "{} {} round {}: the generator was {:.0}% busy: the server may be faster than measured (add --threads or pin the generator to its own core)",
                    run.target,
                    run.phase,
                    run.round,
                    run.generator.busy * 100.0
                ));
            }
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The human table.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}{} — {}",
            self.tool,
            self.suite
                .as_ref()
                .map(|s| format!(", suite {s}"))
                .unwrap_or_default(),
            self.started_at
        );
        let _ = writeln!(out, "{}", ceiling_line(self.ceiling.as_ref()));
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<14} {:<16} {:>3} {:<14} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
            "target",
            "phase",
            "rnd",
            "mode",
            "conn×dep",
            "req/s",
            "p50 ms",
            "p90",
            "p99",
            "p99.9",
            "max",
            "errors",
            "srv µs/r",
            "srv MB",
            "gen%"
        );
        for run in &self.runs {
            let server = run.server.as_ref();
            let _ = writeln!(
                out,
                "{:<14} {:<16} {:>3} {:<14} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5.0}",
                truncate(&run.target, 14),
                truncate(&run.phase, 16),
                run.round,
                truncate(&run.load.mode_label(), 14),
                format!("{}×{}", run.load.connections, run.load.depth),
                thousands(run.throughput),
                ms(run.latency_ms.p50),
                ms(run.latency_ms.p90),
                ms(run.latency_ms.p99),
                ms(run.latency_ms.p999),
                ms(run.latency_ms.max),
                run.error_total,
                server.map_or("-".into(), |s| format!("{:.2}", s.cpu_per_request_us)),
                server.map_or("-".into(), |s| format!("{:.0}", s.rss_mb)),
                run.generator.busy * 100.0,
            );
        }
        out.push('\n');
        for run in &self.runs {
            let statuses: Vec<String> = run
                .statuses
                .iter()
                .map(|(s, n)| format!("{s}: {}", thousands(*n as f64)))
                .collect();
            let errors: Vec<String> = run
                .errors
                .iter()
                .map(|(k, n)| format!("{k}: {}", thousands(*n as f64)))
                .collect();
            let _ = writeln!(
                out,
                "{} {} #{}: sent {}, answered {} ({} correct); statuses {}; errors {}",
                run.target,
                run.phase,
                run.round,
                thousands(run.sent as f64),
                thousands(run.responses as f64),
                thousands(run.ok as f64),
                if statuses.is_empty() {
                    "none".into()
                } else {
                    statuses.join(", ")
                },
                if errors.is_empty() {
                    "none".into()
                } else {
                    errors.join(", ")
                },
            );
            let tls = run.tls_handshakes > 0 || run.errors.contains_key("tls");
            if tls || run.load.requests_per_connection.is_some() {
                let mut line = format!(
                    "  connections opened {}",
                    thousands(run.connections_opened as f64)
                );
                if tls {
                    let _ = write!(
                        line,
                        "; TLS handshakes {} ({} resumed), failed {}",
                        thousands(run.tls_handshakes as f64),
                        thousands(run.tls_resumed as f64),
                        thousands(run.errors.get("tls").copied().unwrap_or(0) as f64)
                    );
                }
                let _ = writeln!(out, "{line}");
            }
            if !run.destinations.is_empty() && run.ok > 0 {
                let shares: Vec<String> = run
                    .destinations
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {:.1}%",
                            d.destination,
                            100.0 * d.answers as f64 / run.ok as f64
                        )
                    })
                    .collect();
                let _ = writeln!(out, "  destinations: {}", shares.join(", "));
            }
            if !run.workers.is_empty() {
                let parts: Vec<String> = run
                    .workers
                    .iter()
                    .map(|w| match &w.lost {
                        None => format!(
                            "{} sent {}, answered {}",
                            w.address,
                            thousands(w.sent as f64),
                            thousands(w.responses as f64)
                        ),
                        Some(_) => format!(
                            "{} LOST ({} not sent)",
                            w.address,
                            thousands(w.not_sent as f64)
                        ),
                    })
                    .collect();
                let _ = writeln!(out, "  workers: {}", parts.join("; "));
            }
            if let Some(lag) = &run.send_lag_ms
                && lag.p99 > 1.0
            {
                let _ = writeln!(
                    out,
                    "  send lag p99 {} ms (requests left late: no free connection or a busy generator; latency includes it)",
                    ms(lag.p99)
                );
                if let Some(service) = &run.service_ms {
                    let _ = writeln!(
                        out,
                        "  from each request's actual send: p99 {} ms, p99.9 {} ms",
                        ms(service.p99),
                        ms(service.p999)
                    );
                }
            }
            if let Some(p) = &run.propagation {
                let _ = writeln!(
                    out,
                    "  propagation over {} edits: p50 {} ms, p90 {} ms, p99 {} ms, max {} ms; not propagated {}, API errors {}",
                    p.edits,
                    ms(p.latency_ms.p50),
                    ms(p.latency_ms.p90),
                    ms(p.latency_ms.p99),
                    ms(p.latency_ms.max),
                    p.not_propagated,
                    p.api_errors
                );
            }
            if let Some(f) = &run.flood {
                let mut answers = format!(
                    "403 {}, 429 {}, 503 {}",
                    thousands(f.answers_403 as f64),
                    thousands(f.answers_429 as f64),
                    thousands(f.answers_503 as f64)
                );
                if f.answers_other > 0 {
                    let _ = write!(
                        answers,
                        ", OTHER {} {:?}",
                        thousands(f.answers_other as f64),
                        f.other_statuses
                    );
                }
                let _ = writeln!(
                    out,
                    "  flood on /{}: sent {} ({:.0}/s of {:.0}/s) from {} addresses over {} connections; answered {}: {answers}; errors {}{}, not sent {}; answer p50 {} ms, p99 {} ms, max {} ms",
                    f.code,
                    thousands(f.sent as f64),
                    f.rate,
                    f.target_rate,
                    thousands(f64::from(f.addresses)),
                    f.connections_opened,
                    thousands(f.answered as f64),
                    f.errors,
                    if f.error_kinds.is_empty() {
                        String::new()
                    } else {
                        format!(" {:?}", f.error_kinds)
                    },
                    f.not_sent,
                    ms(f.latency_ms.p50),
                    ms(f.latency_ms.p99),
                    ms(f.latency_ms.max),
                );
                if let (Some(verifier), Some(without)) = (
                    f.verifier_cpu_s,
                    f.server_cpu_per_request_without_verifier_us,
                ) {
                    let _ = writeln!(
                        out,
                        "  flood: the verifier thread used {verifier:.2} s of CPU; the server's CPU per request without it {without:.2} µs"
                    );
                }
            }
            if let Some(r) = &run.restart {
                let opt = |v: Option<f64>| v.map_or("never".into(), |v| format!("{v:.0} ms"));
                let _ = writeln!(
                    out,
                    "  restart at {:.1}s: stop took {:.0} ms; start → ready {}, start → serving {}, unavailable {}; errors {:?}",
                    r.stopped_at_s,
                    r.stop_ms,
                    opt(r.start_to_ready_ms),
                    opt(r.start_to_serving_ms),
                    opt(r.unavailable_ms),
                    r.errors
                );
            }
        }
        let rounds = self.summary.iter().map(|s| s.rounds).max().unwrap_or(0);
        if rounds > 1
            || self
                .summary
                .iter()
                .map(|s| &s.target)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                > 1
        {
            let _ = writeln!(out, "\nMedians over rounds:");
            let _ = writeln!(
                out,
                "{:<14} {:<16} {:>6} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                "target",
                "phase",
                "rounds",
                "req/s",
                "p50 ms",
                "p99",
                "p99.9",
                "errors",
                "srv µs/r",
                "srv MB"
            );
            for row in &self.summary {
                let _ = writeln!(
                    out,
                    "{:<14} {:<16} {:>6} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                    truncate(&row.target, 14),
                    truncate(&row.phase, 16),
                    row.rounds,
                    thousands(row.throughput),
                    ms(row.p50_ms),
                    ms(row.p99_ms),
                    ms(row.p999_ms),
                    row.errors,
                    row.server_cpu_per_request_us
                        .map_or("-".into(), |v| format!("{v:.2}")),
                    row.server_rss_mb.map_or("-".into(), |v| format!("{v:.0}")),
                );
            }
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(
                out,
                "\nRatios of medians (X vs Y: X's figure divided by Y's):"
            );
            for r in &self.ratios {
                let _ = writeln!(
                    out,
                    "{} {} vs {}: req/s ×{:.2}, p50 ×{:.2}, p99 ×{:.2}, p99.9 ×{:.2}{}",
                    r.phase,
                    r.target,
                    r.baseline,
                    r.throughput,
                    r.p50,
                    r.p99,
                    r.p999,
                    match (
                        r.server_cpu_per_request,
                        r.server_cpu_per_request_difference_us
                    ) {
                        (Some(ratio), Some(difference)) =>
                            format!(", server CPU per request ×{ratio:.2} ({difference:+.2} µs)"),
                        _ => String::new(),
                    }
                );
            }
        }
        if !self.flood_ratios.is_empty() {
            let _ = writeln!(
                out,
                "\nFlood against the same load without it (medians; X vs Y: X's figure divided by Y's):"
            );
            for r in &self.flood_ratios {
                let cpu = |ratio: Option<f64>, difference: Option<f64>| match (ratio, difference) {
                    (Some(ratio), Some(difference)) => format!("×{ratio:.2} ({difference:+.2} µs)"),
                    _ => "-".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{} {} vs {}: req/s ×{:.2}, p50 ×{:.2}, p99 ×{:.2}, p99.9 ×{:.2}, server CPU per request {}, without the verifier thread {}",
                    r.target,
                    r.phase,
                    r.baseline,
                    r.throughput,
                    r.p50,
                    r.p99,
                    r.p999,
                    cpu(
                        r.server_cpu_per_request,
                        r.server_cpu_per_request_difference_us
                    ),
                    cpu(
                        r.server_cpu_per_request_without_verifier,
                        r.server_cpu_per_request_without_verifier_difference_us
                    ),
                );
            }
        }
        out.push_str(&thresholds::table(&self.thresholds));
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        out
    }

    /// Writes report.json, report.txt, report.html, the plots and one
    /// HdrHistogram interval log per run into `dir`.
    pub fn write_files(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let mut written = Vec::new();
        let mut write = |name: String, text: String| -> Result<()> {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
            written.push(path);
            Ok(())
        };
        write("report.json".into(), self.to_json())?;
        write("report.txt".into(), self.to_table())?;
        let plots = plot::phase_plots(self);
        for plot in &plots {
            write(format!("latency-{}.svg", plot.file), plot.latency.clone())?;
            write(
                format!("throughput-{}.svg", plot.file),
                plot.throughput.clone(),
            )?;
        }
        write(
            "report.html".into(),
            crate::report_html::render(self, &plots)?,
        )?;
        for run in &self.runs {
            let name = format!(
                "latency-{}-{}-r{}.hlog",
                sanitize(&run.phase),
                sanitize(&run.target),
                run.round
            );
            let path = dir.join(name);
            let comment = format!(
                "{}: suite {}, target {}, phase {}, round {}",
                self.tool,
                self.suite.as_deref().unwrap_or("run"),
                run.target,
                run.phase,
                run.round
            );
            crate::hlog::write_log(&run.intervals, &comment, &path)?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The generator's ceiling as one line, for every report.
pub fn ceiling_line(ceiling: Option<&Ceiling>) -> String {
    match ceiling {
        None => "Generator ceiling: not calibrated on this machine (run `ricochet-loadtest calibrate`); results near the generator's limit cannot be told from the server's.".into(),
        Some(c) => {
            let mut line = format!(
                "Generator ceiling (one thread, fixed-response server, {} visitors, {}): {} req/s with {} connections, {} req/s pipelined ×{}",
                c.visitors,
                c.measured_at,
                thousands(c.rate),
                c.connections,
                thousands(c.pipelined_rate),
                c.pipeline_depth
            );
            if let Some(wrk) = c.wrk_rate {
                let _ = write!(line, "; wrk -t1 on the same core: {} req/s", thousands(wrk));
            }
            line
        }
    }
}

/// One progress line (no newline).
pub fn progress_line(label: &str, p: &Progress) -> String {
    format!(
        "{label}  {:>5.1}/{:.0}s  {:>10} req/s  {:>12} answers  {:>6} errors  {:>5} in flight  max {} ms",
        p.elapsed_s.min(p.duration_s.max(p.elapsed_s)),
        p.duration_s,
        thousands(p.rate),
        thousands(p.responses as f64),
        p.errors,
        p.in_flight,
        ms(p.max_latency_ms)
    )
}

/// 1234567.8 → "1,234,568".
pub fn thousands(value: f64) -> String {
    let rounded = value.round();
    let negative = rounded < 0.0;
    let digits = format!("{}", rounded.abs() as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if negative { format!("-{out}") } else { out }
}

/// Milliseconds with three significant figures.
pub fn ms(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        text.chars().take(width - 1).collect::<String>() + "…"
    }
}

pub(crate) fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Now in UTC, "2026-11-25 00:30:12 UTC".
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(1_234_567.8), "1,234,568");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(ms(0.0712), "0.071");
        assert!(utc_now().ends_with("UTC"));
    }
}
