//! SVG plots written by hand: latency by percentile (log scales, one line per
//! run or target, overlaid) and throughput over time, per phase of a report.

use std::fmt::Write as _;

use crate::report::Report;
use crate::run::RunResult;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;
const COLORS: &[&str] = &[
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One line of a plot.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn frame(title: &str, x_label: &str, y_label: &str) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>
<text x="{}" y="{}" text-anchor="middle">{}</text>
<text x="16" y="{}" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>
"##,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        escape(title),
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        HEIGHT - 12.0,
        escape(x_label),
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        escape(y_label),
    );
    svg
}

fn legend(svg: &mut String, labels: &[&str]) {
    for (i, label) in labels.iter().enumerate() {
        let y = TOP + 10.0 + i as f64 * 18.0;
        let x = WIDTH - RIGHT + 15.0;
        let _ = writeln!(
            svg,
            r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="2.5"/><text x="{}" y="{}">{}</text>"#,
            x + 22.0,
            COLORS[i % COLORS.len()],
            x + 28.0,
            y + 4.0,
            escape(label)
        );
    }
}

fn polyline(svg: &mut String, index: usize, points: &[(f64, f64)]) {
    let mut path = String::new();
    for (x, y) in points {
        let _ = write!(path, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        svg,
        r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>"#,
        COLORS[index % COLORS.len()],
        path.trim_end()
    );
}

fn format_ms(ms: f64) -> String {
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        let text = format!("{ms}");
        text.trim_end_matches('0').to_owned()
    }
}

/// Latency (ms, log scale) by percentile (log scale of 1/(1-p)); each
/// series' points are (percentile, ms), the last being the maximum.
pub fn latency_percentiles(title: &str, series: &[Series]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let nines = |p: f64| -> f64 {
        if p >= 100.0 {
            5.5
        } else {
            (-(1.0 - p / 100.0).log10()).clamp(0.0, 5.5)
        }
    };
    let values = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| *v > 0.0);
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (lo, hi) = if hi <= 0.0 { (0.01, 1.0) } else { (lo, hi) };
    let decade_lo = lo.log10().floor();
    let decade_hi = hi.log10().ceil().max(decade_lo + 1.0);
    let x = |p: f64| LEFT + nines(p) / 5.5 * plot_w;
    let y = |ms: f64| {
        let v = ms.max(10f64.powf(decade_lo)).log10();
        TOP + plot_h - (v - decade_lo) / (decade_hi - decade_lo) * plot_h
    };
    let mut svg = frame(title, "percentile", "latency (ms)");
    for (label, p) in [
        ("0", 0.0),
        ("90", 90.0),
        ("99", 99.0),
        ("99.9", 99.9),
        ("99.99", 99.99),
        ("99.999", 99.999),
        ("max", 100.0),
    ] {
        let px = x(p);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{}" stroke="#ddd"/><text x="{px:.1}" y="{}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
    }
    let mut decade = decade_lo;
    while decade <= decade_hi + 1e-9 {
        let ms = 10f64.powf(decade);
        let py = y(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            format_ms(ms)
        );
        decade += 1.0;
    }
    finish(svg, series, x, y)
}

/// Responses per second over the run; points are (second, responses).
pub fn throughput_over_time(title: &str, series: &[Series]) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let max_x = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max)
        .ceil();
    let max_y = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let step = nice_step(max_y / 5.0);
    let top_y = (max_y / step).ceil() * step;
    let x = |s: f64| LEFT + s / max_x * plot_w;
    let y = |v: f64| TOP + plot_h - v / top_y * plot_h;
    let mut svg = frame(title, "seconds", "responses per second");
    let mut tick = 0.0;
    while tick <= top_y + 1e-9 {
        let py = y(tick);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{}" y2="{py:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            crate::report::thousands(tick)
        );
        tick += step;
    }
    let x_step = nice_step(max_x / 6.0).max(1.0);
    let mut tick = 0.0;
    while tick <= max_x + 1e-9 {
        let px = x(tick);
        let _ = writeln!(
            svg,
            r#"<text x="{px:.1}" y="{}" text-anchor="middle">{tick}</text>"#,
            TOP + plot_h + 16.0
        );
        tick += x_step;
    }
    finish(svg, series, x, y)
}

/// Draws every series (data mapped to the plot by `x` and `y`), the legend,
/// and closes the document.
fn finish(
    mut svg: String,
    series: &[Series],
    x: impl Fn(f64) -> f64,
    y: impl Fn(f64) -> f64,
) -> String {
    for (i, s) in series.iter().enumerate() {
        let points: Vec<(f64, f64)> = s.points.iter().map(|(a, b)| (x(*a), y(*b))).collect();
        polyline(&mut svg, i, &points);
    }
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    legend(&mut svg, &labels);
    svg.push_str("</svg>\n");
    svg
}

fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Per phase, the latency-by-percentile and throughput-over-time SVGs,
/// every target and round overlaid.
pub fn phase_plots(report: &Report) -> Vec<PhasePlots> {
    let mut phases: Vec<&str> = Vec::new();
    for run in &report.runs {
        if !phases.contains(&run.phase.as_str()) {
            phases.push(&run.phase);
        }
    }
    let suite = report.suite.as_deref().unwrap_or("run");
    phases
        .into_iter()
        .map(|phase| {
            let runs: Vec<&RunResult> = report.runs.iter().filter(|r| r.phase == phase).collect();
            let label = |r: &RunResult| {
                if runs.iter().any(|o| o.round != r.round) {
                    format!("{} #{}", r.target, r.round)
                } else {
                    r.target.clone()
                }
            };
            let latency: Vec<Series> = runs
                .iter()
                .map(|r| Series {
                    label: label(r),
                    points: r.percentiles.clone(),
                })
                .collect();
            // Whole seconds of the run only: the drain after it is partial.
            let throughput: Vec<Series> = runs
                .iter()
                .map(|r| Series {
                    label: label(r),
                    points: r
                        .per_second
                        .iter()
                        .take((r.load.duration.as_secs() as usize).max(1))
                        .enumerate()
                        .map(|(s, n)| (s as f64 + 0.5, *n as f64))
                        .collect(),
                })
                .collect();
            PhasePlots {
                phase: phase.to_owned(),
                file: crate::report::sanitize(phase),
                latency: latency_percentiles(
                    &format!("{suite} / {phase}: latency by percentile"),
                    &latency,
                ),
                throughput: throughput_over_time(
                    &format!("{suite} / {phase}: throughput"),
                    &throughput,
                ),
            }
        })
        .collect()
}

/// One phase's plots (SVG documents).
#[derive(Debug, Clone)]
pub struct PhasePlots {
    pub phase: String,
    /// The phase's name as it appears in file names.
    pub file: String,
    pub latency: String,
    pub throughput: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_svg() {
        let series = vec![Series {
            label: "a<b".into(),
            points: vec![(0.0, 0.05), (99.0, 1.0), (100.0, 200.0)],
        }];
        let svg = latency_percentiles("t", &series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("a&lt;b"));
        let svg = throughput_over_time(
            "t",
            &[Series {
                label: "x".into(),
                points: vec![(0.0, 10.0), (1.0, 20.0)],
            }],
        );
        assert!(svg.contains("polyline"));
    }
}
