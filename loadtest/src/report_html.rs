//! `report.html`: one self-contained page per report, the phases' SVG plots
//! inline and tables of thresholds, medians, ratios and rounds. The template
//! (`templates/report.html`) is checked at compile time and escapes every
//! value; only the plots, which escape their own text, go in unescaped.

use askama::Template;

use crate::error::{Error, Result};
use crate::plot::PhasePlots;
use crate::report::{Report, ceiling_line, ms, thousands};
use crate::thresholds::Metric;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    title: String,
    description: &'a str,
    tool: &'a str,
    started_at: &'a str,
    command: &'a str,
    ceiling: String,
    thresholds: Vec<ThresholdLine>,
    thresholds_passed: usize,
    thresholds_failed: usize,
    summary: Vec<Vec<String>>,
    ratios: Vec<Vec<String>>,
    runs: Vec<Vec<String>>,
    plots: &'a [PhasePlots],
    notes: &'a [String],
}

struct ThresholdLine {
    class: &'static str,
    result: &'static str,
    phase: String,
    target: String,
    expression: String,
    measured: String,
    limit: String,
    note: String,
    origin: String,
}

fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// The page for `report`, with the plots `plot::phase_plots` made of it.
pub fn render(report: &Report, plots: &[PhasePlots]) -> Result<String> {
    let thresholds: Vec<ThresholdLine> = report
        .thresholds
        .iter()
        .map(|t| {
            let metric = Metric::parse(&t.metric);
            let value = |v: Option<f64>| match (v, metric) {
                (Some(v), Some(metric)) => metric.format(v),
                (Some(v), None) => format!("{v}"),
                (None, _) => "not measured".into(),
            };
            ThresholdLine {
                class: if t.passed { "pass" } else { "fail" },
                result: if t.passed { "pass" } else { "FAIL" },
                phase: t.phase.clone(),
                target: t.target.clone(),
                expression: t.expression.clone(),
                measured: value(t.measured),
                limit: match &t.compared_with {
                    Some(other) => format!("{} ({other})", value(t.limit)),
                    None => value(t.limit),
                },
                note: t.note.clone().unwrap_or_default(),
                origin: t.origin.clone(),
            }
        })
        .collect();
    let failed = report.thresholds.iter().filter(|t| !t.passed).count();
    let summary = report
        .summary
        .iter()
        .map(|row| {
            vec![
                row.phase.clone(),
                row.target.clone(),
                row.rounds.to_string(),
                thousands(row.throughput),
                ms(row.p50_ms),
                ms(row.p90_ms),
                ms(row.p99_ms),
                ms(row.p999_ms),
                ms(row.max_ms),
                row.errors.to_string(),
                optional(row.server_cpu_per_request_us, 2),
                optional(row.server_rss_mb, 0),
            ]
        })
        .collect();
    let ratios = report
        .ratios
        .iter()
        .map(|r| {
            vec![
                r.phase.clone(),
                r.target.clone(),
                r.baseline.clone(),
                format!("×{:.2}", r.throughput),
                format!("×{:.2}", r.p50),
                format!("×{:.2}", r.p99),
                format!("×{:.2}", r.p999),
                match (
                    r.server_cpu_per_request,
                    r.server_cpu_per_request_difference_us,
                ) {
                    (Some(ratio), Some(difference)) => {
                        format!("×{ratio:.2} ({difference:+.2} µs)")
                    }
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let runs = report
        .runs
        .iter()
        .map(|run| {
            vec![
                run.target.clone(),
                run.phase.clone(),
                run.round.to_string(),
                run.load.mode_label(),
                format!("{}×{}", run.load.connections, run.load.depth),
                thousands(run.throughput),
                ms(run.latency_ms.p50),
                ms(run.latency_ms.p90),
                ms(run.latency_ms.p99),
                ms(run.latency_ms.p999),
                ms(run.latency_ms.max),
                run.error_total.to_string(),
                optional(run.server.map(|s| s.cpu_per_request_us), 2),
                optional(run.server.map(|s| s.rss_mb), 0),
                format!("{:.0}%", run.generator.busy * 100.0),
            ]
        })
        .collect();
    let page = ReportPage {
        title: match &report.suite {
            Some(suite) => format!("Load test: {suite}"),
            None => "Load test".into(),
        },
        description: &report.description,
        tool: &report.tool,
        started_at: &report.started_at,
        command: &report.command,
        ceiling: ceiling_line(report.ceiling.as_ref()),
        thresholds_passed: thresholds.len() - failed,
        thresholds_failed: failed,
        thresholds,
        summary,
        ratios,
        runs,
        plots,
        notes: &report.notes,
    };
    page.render()
        .map_err(|e| Error::Invalid(format!("cannot render report.html: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_files_and_command_lines_say_is_escaped() {
        let mut report = Report::new(
            Some("<script>alert(1)</script>".into()),
            "ricochet-loadtest suite \"a&b\".toml".into(),
            None,
        );
        report.description = "<img src=x onerror=alert(1)>".into();
        report.notes.push("a </li><script> note".into());
        let html = render(&report, &[]).unwrap();
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{html}"
        );
        assert!(html.contains("a&#38;b"), "{html}");
        // No thresholds, no table of them.
        assert!(!html.contains("<h2>Thresholds</h2>"));
    }
}
