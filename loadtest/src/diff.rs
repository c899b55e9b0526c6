//! `diff BASE.json NEW.json` and `--baseline`: two reports compared per
//! phase, target and metric, each change judged against the spread of the
//! reports' own rounds (disjoint ranges, or an exact Mann-Whitney rank test).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compare::median;
use crate::error::{Error, Result};
use crate::report::Report;
use crate::thresholds::Metric;

/// A change is beyond the noise when the rounds' ranges do not overlap, or
/// when the rank test gives a two-sided p below this.
pub const SIGNIFICANCE: f64 = 0.05;

/// The rounds of a report, as `report.json` keeps them.
#[derive(Debug, Clone, Deserialize)]
pub struct Rounds {
    #[serde(default)]
    pub suite: Option<String>,
    #[serde(default)]
    pub started_at: String,
    pub runs: Vec<Round>,
}

/// One round of one target in one phase (the fields of a report's `runs`
/// the diff uses; the others are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Round {
    pub target: String,
    pub phase: String,
    pub round: usize,
    pub throughput: f64,
    pub latency_ms: RoundLatency,
    pub error_total: u64,
    #[serde(default)]
    pub server: Option<RoundServer>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoundLatency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RoundServer {
    pub cpu_per_request_us: f64,
    pub rss_mb: f64,
}

impl Round {
    fn value(&self, metric: Metric) -> Option<f64> {
        let latency = &self.latency_ms;
        match metric {
            Metric::P50 => Some(latency.p50),
            Metric::P90 => Some(latency.p90),
            Metric::P99 => Some(latency.p99),
            Metric::P999 => Some(latency.p999),
            Metric::Max => Some(latency.max),
            Metric::Mean => Some(latency.mean),
            Metric::Errors => Some(self.error_total as f64),
            Metric::Throughput => Some(self.throughput),
            Metric::ServerCpuPerRequestUs => self.server.as_ref().map(|s| s.cpu_per_request_us),
            Metric::Rss => self.server.as_ref().map(|s| s.rss_mb),
        }
    }
}

impl Rounds {
    /// Reads a `report.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read report {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::Invalid(format!(
                "{}:{}:{}: not a ricochet-loadtest report.json: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
        })
    }

    /// The rounds of a report just made.
    pub fn from_report(report: &Report) -> Result<Self> {
        serde_json::to_value(report)
            .and_then(serde_json::from_value)
            .map_err(|e| Error::Invalid(format!("cannot read the report's rounds: {e}")))
    }

    /// (phase, target) pairs in the order they first ran.
    fn pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs = Vec::new();
        for run in &self.runs {
            let pair = (run.phase.as_str(), run.target.as_str());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        pairs
    }

    fn values(&self, phase: &str, target: &str, metric: Metric) -> Option<Vec<f64>> {
        self.runs
            .iter()
            .filter(|r| r.phase == phase && r.target == target)
            .map(|r| r.value(metric))
            .collect()
    }
}

/// The rounds of one side of a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spread {
    pub rounds: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub values: Vec<f64>,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        let median = median(&mut values)?;
        Some(Self {
            rounds: values.len(),
            median,
            min: values[0],
            max: values[values.len() - 1],
            values,
        })
    }
}

/// What a change means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Beyond the noise, in the bad direction.
    Worse,
    /// Beyond the noise, in the good direction.
    Better,
    /// Within the spread of the rounds.
    Noise,
    /// One side has a single round: no spread to judge against.
    NoSpread,
}

impl Verdict {
    fn label(self) -> &'static str {
        match self {
            Self::Worse => "WORSE",
            Self::Better => "better",
            Self::Noise => "within noise",
            Self::NoSpread => "no spread: cannot judge",
        }
    }
}

/// One metric of one target in one phase, base against new.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffRow {
    pub phase: String,
    pub target: String,
    pub metric: String,
    pub unit: String,
    pub base: Spread,
    pub new: Spread,
    /// New median minus base median.
    pub change: f64,
    /// The same over the base median, in percent (none when that is 0).
    pub change_percent: Option<f64>,
    /// Exact two-sided Mann-Whitney p of the rounds (none without spread).
    pub p_value: Option<f64>,
    /// Whether every new round lies outside the base rounds' range, on one side.
    pub disjoint: bool,
    pub verdict: Verdict,
}

/// Two reports compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    pub base: String,
    pub new: String,
    /// How a change was judged.
    pub method: String,
    pub rows: Vec<DiffRow>,
    /// Phases and targets only one report has.
    pub unmatched: Vec<String>,
    pub regressions: usize,
    pub improvements: usize,
}

/// Compares every phase, target and metric both reports have.
pub fn diff(base: &Rounds, new: &Rounds, base_name: &str, new_name: &str) -> Diff {
    let mut rows = Vec::new();
    let base_pairs = base.pairs();
    let new_pairs = new.pairs();
    let mut unmatched = Vec::new();
    for &(phase, target) in &base_pairs {
        if !new_pairs.contains(&(phase, target)) {
            unmatched.push(format!("{phase} {target}: only in {base_name}"));
        }
    }
    for &(phase, target) in &new_pairs {
        if !base_pairs.contains(&(phase, target)) {
            unmatched.push(format!("{phase} {target}: only in {new_name}"));
            continue;
        }
        for metric in Metric::ALL {
            let (Some(before), Some(after)) = (
                base.values(phase, target, metric).and_then(Spread::of),
                new.values(phase, target, metric).and_then(Spread::of),
            ) else {
                continue;
            };
            rows.push(judge(phase, target, metric, before, after));
        }
    }
    let count = |verdict: Verdict| rows.iter().filter(|r| r.verdict == verdict).count();
    Diff {
        base: base_name.to_owned(),
        new: new_name.to_owned(),
        method: format!(
            "medians over rounds; a change is beyond the noise when the new rounds' range and the base rounds' do not overlap, or the exact two-sided Mann-Whitney rank test of the rounds gives p < {SIGNIFICANCE} (with 3 rounds each its smallest p is 0.1, so only disjoint ranges count)"
        ),
        regressions: count(Verdict::Worse),
        improvements: count(Verdict::Better),
        rows,
        unmatched,
    }
}

fn judge(phase: &str, target: &str, metric: Metric, base: Spread, new: Spread) -> DiffRow {
    let change = new.median - base.median;
    let change_percent = (base.median != 0.0).then(|| change / base.median * 100.0);
    let disjoint = new.min > base.max || new.max < base.min;
    let spread = base.rounds >= 2 && new.rounds >= 2;
    let p_value = spread.then(|| rank_test(&base.values, &new.values));
    let verdict = if !spread {
        Verdict::NoSpread
    } else if (disjoint || p_value.is_some_and(|p| p < SIGNIFICANCE)) && change != 0.0 {
        if (change > 0.0) == metric.higher_is_better() {
            Verdict::Better
        } else {
            Verdict::Worse
        }
    } else {
        Verdict::Noise
    };
    DiffRow {
        phase: phase.to_owned(),
        target: target.to_owned(),
        metric: metric.name().to_owned(),
        unit: metric.unit().to_owned(),
        base,
        new,
        change,
        change_percent,
        p_value,
        disjoint,
        verdict,
    }
}

/// Mann-Whitney U of `a` against `b`: pairs where a's value is larger,
/// ties counting half.
fn u_statistic(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .flat_map(|x| b.iter().map(move |y| (x, y)))
        .map(|(x, y)| match x.total_cmp(y) {
            std::cmp::Ordering::Greater => 1.0,
            std::cmp::Ordering::Equal => 0.5,
            std::cmp::Ordering::Less => 0.0,
        })
        .sum()
}

/// Most label permutations the exact test enumerates (C(20, 10) = 184,756:
/// ten rounds a side); beyond, the normal approximation.
const EXACT_LIMIT: u64 = 200_000;

/// Two-sided p of the Mann-Whitney rank test: the share of the ways to
/// split the pooled rounds into groups of these sizes whose U is at least
/// as far from its mean as the observed one (exact with ties); the normal
/// approximation with tie correction for large samples.
pub fn rank_test(a: &[f64], b: &[f64]) -> f64 {
    let (k, m) = (a.len(), b.len());
    if k == 0 || m == 0 {
        return 1.0;
    }
    let mean = (k * m) as f64 / 2.0;
    let observed = (u_statistic(a, b) - mean).abs();
    let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
    let n = pooled.len();
    if binomial(n as u64, k as u64) <= EXACT_LIMIT {
        let mut chosen: Vec<usize> = (0..k).collect();
        let (mut extreme, mut total) = (0u64, 0u64);
        let mut group_a = Vec::with_capacity(k);
        let mut group_b = Vec::with_capacity(m);
        loop {
            group_a.clear();
            group_b.clear();
            let mut next = 0;
            for (index, value) in pooled.iter().enumerate() {
                if chosen.get(next) == Some(&index) {
                    group_a.push(*value);
                    next += 1;
                } else {
                    group_b.push(*value);
                }
            }
            total += 1;
            if (u_statistic(&group_a, &group_b) - mean).abs() >= observed - 1e-9 {
                extreme += 1;
            }
            // The next combination of k indices out of n, in lexicographic order.
            let Some(i) = (0..k).rev().find(|&i| chosen[i] < n - k + i) else {
                break;
            };
            chosen[i] += 1;
            for j in i + 1..k {
                chosen[j] = chosen[j - 1] + 1;
            }
        }
        return extreme as f64 / total as f64;
    }
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for value in &pooled {
        *counts.entry(value.to_bits()).or_default() += 1;
    }
    let ties: f64 = counts.values().map(|&t| (t * t * t - t) as f64).sum();
    let (kf, mf, nf) = (k as f64, m as f64, n as f64);
    let variance = kf * mf / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (observed - 0.5).max(0.0) / variance.sqrt();
    (2.0 * normal_tail(z)).min(1.0)
}

fn binomial(n: u64, k: u64) -> u64 {
    let k = k.min(n - k);
    let mut result: u64 = 1;
    for i in 0..k {
        result = result.saturating_mul(n - i) / (i + 1);
        if result > EXACT_LIMIT {
            return u64::MAX;
        }
    }
    result
}

/// P(Z > z) of the standard normal (Abramowitz and Stegun 7.1.26, error
/// below 1.5e-7).
fn normal_tail(z: f64) -> f64 {
    let x = z / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    0.5 * poly * (-x * x).exp()
}

impl Diff {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The printed table: one line per phase, target and metric.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Diff: {} → {}", self.base, self.new);
        let _ = writeln!(out, "({})", self.method);
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:<26} {:>28} {:>28} {:>9} {:>7}  verdict",
            "phase",
            "target",
            "metric",
            "base median [min–max]",
            "new median [min–max]",
            "change",
            "p"
        );
        for row in &self.rows {
            let metric = Metric::parse(&row.metric).unwrap_or(Metric::Errors);
            let spread = |s: &Spread| {
                format!(
                    "{} [{}–{}]",
                    metric.format(s.median),
                    short(metric, s.min),
                    short(metric, s.max)
                )
            };
            let _ = writeln!(
                out,
                "{:<16} {:<12} {:<26} {:>28} {:>28} {:>9} {:>7}  {}",
                row.phase,
                row.target,
                row.metric,
                spread(&row.base),
                spread(&row.new),
                row.change_percent
                    .map_or("-".into(), |c| format!("{c:+.1}%")),
                row.p_value.map_or("-".into(), |p| format!("{p:.3}")),
                row.verdict.label()
            );
        }
        for line in &self.unmatched {
            let _ = writeln!(out, "not compared: {line}");
        }
        let _ = writeln!(
            out,
            "{} worse, {} better beyond the noise",
            self.regressions, self.improvements
        );
        out
    }
}

/// A bound of a range, without its unit: counts and rates whole, times
/// with three significant figures.
fn short(metric: Metric, value: f64) -> String {
    match metric {
        Metric::Errors | Metric::Throughput | Metric::Rss => crate::report::thousands(value),
        _ => crate::report::ms(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_test_is_exact_for_small_samples() {
        // 3 against 3, fully separated: 2 of the 20 splits are as extreme.
        let p = rank_test(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!((p - 0.1).abs() < 1e-12, "{p}");
        // 5 against 5, fully separated: 2 of 252.
        let p = rank_test(&[1.0, 2.0, 3.0, 4.0, 5.0], &[6.0, 7.0, 8.0, 9.0, 10.0]);
        assert!((p - 2.0 / 252.0).abs() < 1e-12, "{p}");
        // Interleaved: nothing to see.
        assert!(rank_test(&[1.0, 3.0, 5.0], &[2.0, 4.0, 6.0]) > 0.5);
        // All tied: every split is as extreme as the observed one.
        assert_eq!(rank_test(&[1.0, 1.0], &[1.0, 1.0]), 1.0);
        // Large samples, normal approximation: separated is tiny, equal is not.
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let b: Vec<f64> = (100..130).map(f64::from).collect();
        assert!(rank_test(&a, &b) < 1e-6);
        assert!(rank_test(&a, &a) > 0.9);
    }

    #[test]
    fn binomials() {
        assert_eq!(binomial(6, 3), 20);
        assert_eq!(binomial(20, 10), 184_756);
        assert_eq!(binomial(40, 20), u64::MAX);
    }
}
