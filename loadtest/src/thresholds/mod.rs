//! Thresholds a run must meet (`p99 < 2 ms`, `errors = 0`, `engine.p99 <=
//! 1.0 * nginx.p99`): parsed from a suite's `[[threshold]]` tables or
//! `--threshold`, checked against the run's medians over rounds, and
//! reported one line each with the measured value, so a CI job can gate on
//! them. `parse.rs` reads the expressions.

use std::fmt::Write as _;

use serde::Serialize;

use crate::compare::median;
use crate::report::{ms, thousands};
use crate::run::RunResult;

mod parse;

/// What a threshold measures, per phase and target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    P50,
    P90,
    P99,
    P999,
    Max,
    Mean,
    /// Errors of every kind, summed over rounds.
    Errors,
    /// Responses per second.
    Throughput,
    /// The server's CPU time per response, µs (needs its process).
    ServerCpuPerRequestUs,
    /// The server's resident memory after the run, MB (needs its process).
    Rss,
}

/// The kind of quantity a metric is, which decides the units it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    /// Milliseconds; a unit is required (`2 ms`, `500 us`, `1 s`).
    Latency,
    /// Microseconds; a bare number is µs.
    CpuTime,
    Count,
    /// Requests per second; a bare number or `req/s`.
    Rate,
    /// MB; a bare number is MB.
    Memory,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Self::P50,
        Self::P90,
        Self::P99,
        Self::P999,
        Self::Max,
        Self::Mean,
        Self::Errors,
        Self::Throughput,
        Self::ServerCpuPerRequestUs,
        Self::Rss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::P50 => "p50",
            Self::P90 => "p90",
            Self::P99 => "p99",
            Self::P999 => "p99.9",
            Self::Max => "max",
            Self::Mean => "mean",
            Self::Errors => "errors",
            Self::Throughput => "throughput",
            Self::ServerCpuPerRequestUs => "server_cpu_per_request_us",
            Self::Rss => "rss",
        }
    }

    /// Whether a larger value is an improvement (throughput) or not (the rest).
    pub fn higher_is_better(self) -> bool {
        self == Self::Throughput
    }

    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "p999" => Some(Self::P999),
            "rss_mb" => Some(Self::Rss),
            _ => Self::ALL.into_iter().find(|m| m.name() == word),
        }
    }

    fn dimension(self) -> Dimension {
        match self {
            Self::P50 | Self::P90 | Self::P99 | Self::P999 | Self::Max | Self::Mean => {
                Dimension::Latency
            }
            Self::Errors => Dimension::Count,
            Self::Throughput => Dimension::Rate,
            Self::ServerCpuPerRequestUs => Dimension::CpuTime,
            Self::Rss => Dimension::Memory,
        }
    }

    /// The unit values are reported in.
    pub fn unit(self) -> &'static str {
        match self.dimension() {
            Dimension::Latency => "ms",
            Dimension::CpuTime => "µs",
            Dimension::Count => "",
            Dimension::Rate => "req/s",
            Dimension::Memory => "MB",
        }
    }

    /// One round's value, if measured.
    pub fn of_run(self, run: &RunResult) -> Option<f64> {
        let latency = &run.latency_ms;
        match self {
            Self::P50 => Some(latency.p50),
            Self::P90 => Some(latency.p90),
            Self::P99 => Some(latency.p99),
            Self::P999 => Some(latency.p999),
            Self::Max => Some(latency.max),
            Self::Mean => Some(latency.mean),
            Self::Errors => Some(run.error_total as f64),
            Self::Throughput => Some(run.throughput),
            Self::ServerCpuPerRequestUs => run.server.map(|s| s.cpu_per_request_us),
            Self::Rss => run.server.map(|s| s.rss_mb),
        }
    }

    /// The value a threshold compares: the median over the rounds of
    /// `target` in `phase`, or for errors their sum.
    fn measure(self, runs: &[RunResult], phase: &str, target: &str) -> Option<f64> {
        let mut values: Vec<f64> = runs
            .iter()
            .filter(|r| r.phase == phase && r.target == target)
            .filter_map(|r| self.of_run(r))
            .collect();
        match self {
            Self::Errors if !values.is_empty() => Some(values.iter().sum()),
            _ => median(&mut values),
        }
    }

    /// A value with its unit, for tables.
    pub fn format(self, value: f64) -> String {
        match self.dimension() {
            Dimension::Latency => format!("{} ms", ms(value)),
            Dimension::CpuTime => format!("{value:.2} µs"),
            Dimension::Count => thousands(value),
            Dimension::Rate => format!("{} req/s", thousands(value)),
            Dimension::Memory => format!("{value:.0} MB"),
        }
    }
}

/// How the measured value must compare with the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    Equal,
}

impl Comparison {
    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Self::Less => left < right,
            Self::LessOrEqual => left <= right,
            Self::Greater => left > right,
            Self::GreaterOrEqual => left >= right,
            Self::Equal => left == right,
        }
    }
}

/// A metric of a target: the one the threshold is checked for (`None`) or a named one.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub target: Option<String>,
    pub metric: Metric,
}

/// The right-hand side: a fixed value (in the metric's unit) or another
/// metric times a factor.
#[derive(Debug, Clone, PartialEq)]
pub enum Limit {
    Value(f64),
    Scaled { factor: f64, reference: Reference },
}

/// One parsed threshold and where it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As written.
    pub expression: String,
    /// Only this phase (else every phase).
    pub phase: Option<String>,
    /// Only this target (else every target, or the one the expression names).
    pub target: Option<String>,
    /// Where it was written, e.g. `suite.toml:42` or `--threshold`.
    pub origin: String,
    pub left: Reference,
    pub comparison: Comparison,
    pub limit: Limit,
}

/// A threshold checked for one phase and target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdResult {
    pub expression: String,
    pub metric: String,
    pub phase: String,
    pub target: String,
    pub origin: String,
    /// The median over rounds (errors: the sum), in `unit`; null when not measured.
    pub measured: Option<f64>,
    /// The value it was compared with, in `unit` (for `k * other.metric`: k times the other's median).
    pub limit: Option<f64>,
    pub unit: String,
    /// For `k * other.metric`: the other target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared_with: Option<String>,
    pub passed: bool,
    /// Why it failed without a comparison (e.g. no server process measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Threshold {
    /// Parses `expression`; `origin` is kept for messages and reports.
    pub fn parse(
        expression: &str,
        phase: Option<String>,
        target: Option<String>,
        origin: String,
    ) -> Result<Self, String> {
        let (left, comparison, limit) = parse::expression(expression)?;
        if let (Some(named), Some(scope)) = (&left.target, &target)
            && named != scope
        {
            return Err(format!(
                "the expression is about target {named:?} but the table's target is {scope:?}"
            ));
        }
        Ok(Self {
            expression: expression.trim().to_owned(),
            phase,
            target: left.target.clone().or(target),
            origin,
            left,
            comparison,
            limit,
        })
    }

    /// Every target name the threshold uses.
    pub fn targets(&self) -> impl Iterator<Item = &str> {
        let other = match &self.limit {
            Limit::Scaled { reference, .. } => reference.target.as_deref(),
            Limit::Value(_) => None,
        };
        self.target.as_deref().into_iter().chain(other)
    }

    /// Checks the phase and target names against those of the suite.
    pub fn check_names(&self, phases: &[&str], targets: &[&str]) -> Result<(), String> {
        if let Some(phase) = &self.phase
            && !phases.contains(&phase.as_str())
        {
            return Err(format!(
                "no phase is named {phase:?} (the phases: {})",
                phases.join(", ")
            ));
        }
        for target in self.targets() {
            if !targets.contains(&target) {
                return Err(format!(
                    "{:?}: no target is named {target:?} (the targets: {})",
                    self.expression,
                    if targets.is_empty() {
                        "none yet".into()
                    } else {
                        targets.join(", ")
                    }
                ));
            }
        }
        Ok(())
    }

    /// Checks the threshold against every phase and target it applies to.
    pub fn evaluate(&self, runs: &[RunResult]) -> Vec<ThresholdResult> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for run in runs {
            let pair = (run.phase.as_str(), run.target.as_str());
            let phase_applies = self.phase.as_deref().is_none_or(|p| p == pair.0);
            let target_applies = self.target.as_deref().is_none_or(|t| t == pair.1);
            if phase_applies && target_applies && !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
        let mut results: Vec<ThresholdResult> = pairs
            .into_iter()
            .map(|(phase, target)| self.evaluate_one(runs, phase, target))
            .collect();
        if results.is_empty() {
            results.push(ThresholdResult {
                expression: self.expression.clone(),
                metric: self.left.metric.name().into(),
                phase: self.phase.clone().unwrap_or_default(),
                target: self.target.clone().unwrap_or_default(),
                origin: self.origin.clone(),
                measured: None,
                limit: None,
                unit: self.left.metric.unit().into(),
                compared_with: None,
                passed: false,
                note: Some("no run of this phase and target was measured".into()),
            });
        }
        results
    }

    fn evaluate_one(&self, runs: &[RunResult], phase: &str, target: &str) -> ThresholdResult {
        let metric = self.left.metric;
        let measured = metric.measure(runs, phase, target);
        let (limit, compared_with) = match &self.limit {
            Limit::Value(value) => (Some(*value), None),
            Limit::Scaled { factor, reference } => {
                let other = reference.target.as_deref().unwrap_or(target);
                (
                    reference
                        .metric
                        .measure(runs, phase, other)
                        .map(|v| v * factor),
                    Some(other.to_owned()),
                )
            }
        };
        let note = match (measured, limit) {
            (None, _)
                if metric.dimension() == Dimension::CpuTime
                    || metric.dimension() == Dimension::Memory =>
            {
                Some(format!(
                    "{} of {target} was not measured (the tool needs the server's process: a `command` target or `pid`)",
                    metric.name()
                ))
            }
            (None, _) => Some(format!("{} of {target} was not measured", metric.name())),
            (Some(_), None) => Some(format!(
                "{} was not measured",
                compared_with.as_deref().unwrap_or(target)
            )),
            _ => None,
        };
        let passed = match (measured, limit) {
            (Some(m), Some(l)) => self.comparison.holds(m, l),
            _ => false,
        };
        ThresholdResult {
            expression: self.expression.clone(),
            metric: metric.name().into(),
            phase: phase.to_owned(),
            target: target.to_owned(),
            origin: self.origin.clone(),
            measured,
            limit,
            unit: metric.unit().into(),
            compared_with,
            passed,
            note,
        }
    }
}

/// Checks every threshold; results in the order given.
pub fn evaluate(thresholds: &[Threshold], runs: &[RunResult]) -> Vec<ThresholdResult> {
    thresholds.iter().flat_map(|t| t.evaluate(runs)).collect()
}

/// The printed summary: one line per threshold, failures first marked.
pub fn table(results: &[ThresholdResult]) -> String {
    let mut out = String::new();
    if results.is_empty() {
        return out;
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    let _ = writeln!(
        out,
        "\nThresholds (medians over rounds; errors summed): {} passed, {failed} failed",
        results.len() - failed
    );
    for r in results {
        let value = |v: Option<f64>| match (v, Metric::parse(&r.metric)) {
            (Some(v), Some(metric)) => metric.format(v),
            (Some(v), None) => format!("{v}"),
            (None, _) => "not measured".to_owned(),
        };
        let measured = match r.measured {
            Some(_) => format!("measured {}", value(r.measured)),
            None => "not measured".to_owned(),
        };
        let _ = write!(
            out,
            "{} {} {}: {}: {measured}, limit {}",
            if r.passed { "pass" } else { "FAIL" },
            r.phase,
            r.target,
            r.expression,
            value(r.limit)
        );
        if let Some(other) = &r.compared_with {
            let _ = write!(out, " (from {other})");
        }
        if let Some(note) = &r.note {
            let _ = write!(out, "; {note}");
        }
        let _ = writeln!(out, " [{}]", r.origin);
    }
    out
}
