//! Soak runs: hours at one open-loop rate, measured interval by interval
//! (latency percentiles, throughput, errors, the server's resident memory
//! and CPU from /proc), with a drift verdict at the end: did memory or p99
//! grow between the first and the last quarter of the run?
//!
//! Each interval is its own run on one common timetable (interval k starts
//! at start + k × interval, so the rate never pauses; requests due while an
//! interval finishes are sent late and measured from when they were due).
//! Connections are opened again at each interval.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::procstat;
use crate::run::{RunSpec, record, server_use, summarize};
use crate::schedule::Mode;
use crate::stats::Progress;

/// When growth between the first and the last quarter counts as drift:
/// both the relative growth and the absolute one must exceed their bounds
/// (so noise on small figures is not drift).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DriftTolerance {
    /// Resident memory: last-quarter median over first-quarter median, minus 1.
    pub rss_growth: f64,
    /// And at least this many MB more.
    pub rss_floor_mb: f64,
    /// p99 latency: last-quarter median over first-quarter median, minus 1.
    pub p99_growth: f64,
    /// And at least this many ms more.
    pub p99_floor_ms: f64,
}

impl Default for DriftTolerance {
    fn default() -> Self {
        Self {
            rss_growth: 0.10,
            rss_floor_mb: 16.0,
            p99_growth: 0.50,
            p99_floor_ms: 1.0,
        }
    }
}

/// A soak's inputs: `run` describes one interval (its duration is the
/// interval, its load an open loop).
#[derive(Debug, Clone)]
pub struct SoakSpec {
    pub run: RunSpec,
    pub duration: Duration,
    pub tolerance: DriftTolerance,
}

/// One interval's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SoakRow {
    /// 1-based.
    pub interval: usize,
    /// Seconds from the soak's start to the interval's start.
    pub at_s: f64,
    pub sent: u64,
    pub responses: u64,
    pub ok: u64,
    pub errors: u64,
    pub throughput: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The server's resident memory at the interval's end (with `--pid`).
    pub rss_mb: Option<f64>,
    /// The server's CPU over the interval, in cores.
    pub server_cores: Option<f64>,
}

/// One series compared between the first and the last quarter.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Growth {
    pub first: f64,
    pub last: f64,
    /// last / first − 1 (infinite when first is 0 and last is not).
    pub growth: f64,
    pub drift: bool,
}

/// The verdict at the end.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Drift {
    /// Intervals in each quarter compared (0: too short to judge).
    pub quarter: usize,
    pub rss_mb: Option<Growth>,
    pub p99_ms: Option<Growth>,
    pub tolerance: DriftTolerance,
    /// "no drift", "drift: …" or why there is no verdict.
    pub verdict: String,
}

/// Everything a soak measured.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub tool: String,
    pub started_at: String,
    pub command: String,
    pub target: String,
    pub rate: f64,
    pub interval_s: f64,
    pub duration_s: f64,
    pub rows: Vec<SoakRow>,
    pub drift: Drift,
}

/// Fewest intervals a verdict needs (one per quarter).
pub const MIN_INTERVALS: usize = 4;
/// Fewer intervals per quarter than this, and the verdict says it is noisy.
const FEW_PER_QUARTER: usize = 3;

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

fn growth(series: &[f64], quarter: usize, relative: f64, floor: f64) -> Option<Growth> {
    let first = median(&mut series[..quarter].to_vec())?;
    let last = median(&mut series[series.len() - quarter..].to_vec())?;
    let growth = if first > 0.0 {
        last / first - 1.0
    } else if last > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    Some(Growth {
        first,
        last,
        growth,
        drift: growth > relative && last - first > floor,
    })
}

/// The drift rule: the median of the last quarter of intervals against the
/// median of the first quarter, for the server's RSS and for p99; drift
/// when both bounds of `tolerance` are exceeded.
pub fn drift(rows: &[SoakRow], tolerance: DriftTolerance) -> Drift {
    let quarter = rows.len() / 4;
    if rows.len() < MIN_INTERVALS {
        return Drift {
            quarter: 0,
            rss_mb: None,
            p99_ms: None,
            tolerance,
            verdict: format!(
                "too short to judge: {} intervals, a verdict needs {MIN_INTERVALS}",
                rows.len()
            ),
        };
    }
    let rss: Vec<f64> = rows.iter().filter_map(|r| r.rss_mb).collect();
    let rss_mb = (rss.len() == rows.len())
        .then(|| growth(&rss, quarter, tolerance.rss_growth, tolerance.rss_floor_mb))
        .flatten();
    let p99: Vec<f64> = rows.iter().map(|r| r.p99_ms).collect();
    let p99_ms = growth(&p99, quarter, tolerance.p99_growth, tolerance.p99_floor_ms);
    let mut findings = Vec::new();
    if let Some(g) = rss_mb.filter(|g| g.drift) {
        findings.push(format!(
            "memory grew {:.0}% ({:.1} MB to {:.1} MB)",
            g.growth * 100.0,
            g.first,
            g.last
        ));
    }
    if let Some(g) = p99_ms.filter(|g| g.drift) {
        findings.push(format!(
            "p99 grew {:.0}% ({:.2} ms to {:.2} ms)",
            g.growth * 100.0,
            g.first,
            g.last
        ));
    }
    let mut verdict = match (findings.is_empty(), rss_mb.is_some()) {
        (false, _) => format!("drift: {}", findings.join("; ")),
        (true, true) => "no drift".to_owned(),
        (true, false) => "no latency drift (memory not watched: give the server's pid)".to_owned(),
    };
    if quarter < FEW_PER_QUARTER {
        let _ = write!(
            verdict,
            " (from {quarter} interval{} per quarter: a noisy verdict)",
            if quarter == 1 { "" } else { "s" }
        );
    }
    Drift {
        quarter,
        rss_mb,
        p99_ms,
        tolerance,
        verdict,
    }
}

/// Runs the soak; `on_row` gets each interval's row as it ends, `on_progress`
/// the live figures.
pub fn soak(
    spec: &SoakSpec,
    command: &str,
    stop: &AtomicBool,
    on_row: &mut dyn FnMut(&SoakRow),
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<SoakReport> {
    let run = &spec.run;
    let Mode::Open { rate } = run.load.mode else {
        return Err(Error::Invalid("a soak needs a rate (an open loop)".into()));
    };
    if !run.load.workers.is_empty() {
        return Err(Error::Invalid(
            "a soak runs on this generator: workers are for single phases".into(),
        ));
    }
    let interval = run.load.duration;
    if interval.is_zero() || spec.duration < interval {
        return Err(Error::Invalid(format!(
            "the interval ({interval:?}) must be positive and at most the duration ({:?})",
            spec.duration
        )));
    }
    run.load.validate()?;
    run.shape.validate()?;
    let intervals = (spec.duration.as_nanos() / interval.as_nanos()) as usize;
    let started_at = crate::report::utc_now();
    let start = Instant::now() + Duration::from_millis(5);
    let mut rows = Vec::with_capacity(intervals);
    for index in 0..intervals {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let at = start + interval * index as u32;
        // Each interval its own random sequence: not the same keys in the
        // same order every interval.
        let mut part = run.clone();
        part.shape.seed = run.shape.seed.wrapping_add((index as u64) << 20);
        let before = part.server_pid.and_then(procstat::tree_cpu);
        let total = record(&part, at, stop, on_progress)?;
        let elapsed = Duration::from_nanos(total.elapsed_ns.max(1));
        let server = server_use(&part, before.as_ref(), &total, elapsed, stop);
        let result = summarize(&part, &total, elapsed, server);
        let row = SoakRow {
            interval: index + 1,
            at_s: (interval * index as u32).as_secs_f64(),
            sent: result.sent,
            responses: result.responses,
            ok: result.ok,
            errors: result.error_total,
            throughput: result.throughput,
            p50_ms: result.latency_ms.p50,
            p90_ms: result.latency_ms.p90,
            p99_ms: result.latency_ms.p99,
            p999_ms: result.latency_ms.p999,
            max_ms: result.latency_ms.max,
            rss_mb: result.server.map(|s| s.rss_mb),
            server_cores: result.server.map(|s| s.cores),
        };
        on_row(&row);
        rows.push(row);
    }
    Ok(SoakReport {
        tool: format!("ricochet-loadtest {}", env!("CARGO_PKG_VERSION")),
        started_at,
        command: command.to_owned(),
        target: run.target.clone(),
        rate,
        interval_s: interval.as_secs_f64(),
        duration_s: spec.duration.as_secs_f64(),
        drift: drift(&rows, spec.tolerance),
        rows,
    })
}

/// One interval as a progress line.
pub fn row_line(row: &SoakRow, of: usize) -> String {
    let at = row.at_s as u64;
    let mut line = format!(
        "soak {:>3}/{of} +{:02}:{:02}:{:02}  {:>9.0} req/s  p50 {:.2}  p99 {:.2}  max {:.1} ms  errors {}",
        row.interval,
        at / 3600,
        at / 60 % 60,
        at % 60,
        row.throughput,
        row.p50_ms,
        row.p99_ms,
        row.max_ms,
        row.errors
    );
    if let (Some(rss), Some(cores)) = (row.rss_mb, row.server_cores) {
        let _ = write!(line, "  rss {rss:.1} MB  cpu {cores:.2}");
    }
    line
}

impl SoakReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// Every row and the verdict, as text.
    pub fn to_table(&self) -> String {
        let mut out = format!(
            "soak of {} at {} req/s, {} s intervals\n",
            self.target, self.rate, self.interval_s
        );
        let of = self.rows.len();
        for row in &self.rows {
            let _ = writeln!(out, "{}", row_line(row, of));
        }
        let _ = writeln!(out, "{}", self.drift.verdict);
        out
    }

    /// Writes soak.json and soak.txt into `dir`.
    pub fn write_files(&self, dir: &std::path::Path) -> Result<()> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        for (name, text) in [("soak.json", self.to_json()), ("soak.txt", self.to_table())] {
            let path = dir.join(name);
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rss: &[f64], p99: &[f64]) -> Vec<SoakRow> {
        rss.iter()
            .zip(p99)
            .enumerate()
            .map(|(index, (&rss, &p99))| SoakRow {
                interval: index + 1,
                at_s: index as f64 * 60.0,
                sent: 1000,
                responses: 1000,
                ok: 1000,
                errors: 0,
                throughput: 1000.0,
                p50_ms: p99 / 3.0,
                p90_ms: p99 / 2.0,
                p99_ms: p99,
                p999_ms: p99 * 2.0,
                max_ms: p99 * 3.0,
                rss_mb: Some(rss),
                server_cores: Some(0.5),
            })
            .collect()
    }

    #[test]
    fn steady_series_have_no_drift() {
        let rss = [100.0, 103.0, 99.0, 101.0, 104.0, 100.0, 102.0, 101.0];
        let p99 = [2.0, 2.4, 1.9, 2.2, 2.1, 2.6, 2.0, 2.3];
        let verdict = drift(&rows(&rss, &p99), DriftTolerance::default());
        assert_eq!(verdict.quarter, 2);
        assert!(verdict.verdict.starts_with("no drift (from 2 intervals"));
        assert!(!verdict.rss_mb.unwrap().drift);
    }

    #[test]
    fn a_leak_and_a_slowing_server_are_flagged() {
        // 100 MB growing 10 MB an interval: first quarter median 105, last 175.
        let rss: Vec<f64> = (0..8).map(|i| 100.0 + 10.0 * i as f64).collect();
        let p99 = [2.0; 8];
        let verdict = drift(&rows(&rss, &p99), DriftTolerance::default());
        let memory = verdict.rss_mb.unwrap();
        assert_eq!((memory.first, memory.last), (105.0, 165.0));
        assert!(memory.drift);
        assert!(!verdict.p99_ms.unwrap().drift);
        assert!(
            verdict.verdict.starts_with("drift: memory grew 57%"),
            "{}",
            verdict.verdict
        );

        let p99 = [1.0, 1.1, 1.0, 1.2, 3.0, 3.5, 4.0, 4.4];
        let verdict = drift(&rows(&[100.0; 8], &p99), DriftTolerance::default());
        assert!(verdict.p99_ms.unwrap().drift);
        assert!(verdict.verdict.contains("p99 grew"), "{}", verdict.verdict);
        assert!(!verdict.verdict.contains("memory"), "{}", verdict.verdict);
    }

    #[test]
    fn small_absolute_changes_are_not_drift() {
        // p99 doubles, but from 0.1 to 0.2 ms; memory grows 50% of 10 MB.
        let verdict = drift(
            &rows(&[10.0, 10.0, 15.0, 15.0], &[0.1, 0.1, 0.2, 0.2]),
            DriftTolerance::default(),
        );
        assert_eq!(verdict.quarter, 1);
        assert_eq!(
            verdict.verdict,
            "no drift (from 1 interval per quarter: a noisy verdict)"
        );
        let short = drift(&rows(&[1.0; 3], &[1.0; 3]), DriftTolerance::default());
        assert_eq!(short.quarter, 0);
        assert!(short.verdict.starts_with("too short"), "{}", short.verdict);
    }
}
