//! Clicks over time as an inline SVG bar chart, drawn on the server from
//! the click store's series: one bar per bucket (empty buckets drawn as
//! zero), humans stacked under bots, a y axis with round ticks and a few
//! time labels. Only numbers and our own labels reach the SVG.

use std::fmt::Write as _;

use ricochet_clickstore::Counts;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// A chart's range: buckets of `interval` milliseconds from `from` to `to`.
#[derive(Debug, Clone, Copy)]
pub struct ChartRange {
    pub from: i64,
    pub to: i64,
    pub interval: i64,
}

/// One bucket, zero-filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: i64,
    pub humans: u64,
    pub bots: u64,
}

/// The buckets of `range`, with the counts of `points` (bucket starts from
/// the click store) and zero elsewhere.
pub fn buckets(range: ChartRange, points: &[(i64, Counts)]) -> Vec<Bucket> {
    let interval = range.interval.max(1);
    let first = range.from - range.from.rem_euclid(interval);
    let mut out: Vec<Bucket> = (0..)
        .map(|i| first + i * interval)
        .take_while(|start| *start < range.to)
        .map(|start| Bucket {
            start,
            humans: 0,
            bots: 0,
        })
        .collect();
    for (start, counts) in points {
        let index = (start - first).div_euclid(interval);
        if let Some(bucket) = usize::try_from(index).ok().and_then(|i| out.get_mut(i)) {
            bucket.humans += counts.humans;
            bucket.bots += counts.bots;
        }
    }
    out
}

/// A y-axis maximum at or above `max` that divides into 4 round steps.
fn nice_max(max: u64) -> u64 {
    if max <= 4 {
        return 4;
    }
    let step = max.div_ceil(4);
    let magnitude = 10u64.pow(step.ilog10());
    let step = [10, 20, 25, 50, 100]
        .into_iter()
        .map(|tenths| tenths * magnitude / 10)
        .find(|candidate| *candidate >= step)
        .unwrap_or(10 * magnitude);
    step * 4
}

/// The label of a bucket start: `HH:MM` for sub-day buckets, `MM-DD` else.
fn label(start: i64, interval: i64) -> String {
    let at = crate::api::types::to_datetime(start);
    if interval < 86_400_000 {
        format!("{:02}:{:02}", at.hour(), at.minute())
    } else {
        format!("{:02}-{:02}", u8::from(at.month()), at.day())
    }
}

/// The chart as an `<svg>` element; `title` names it for screen readers.
pub fn svg(buckets: &[Bucket], interval: i64, title: &str) -> String {
    let max = buckets.iter().map(|b| b.humans + b.bots).max().unwrap_or(0);
    let top = nice_max(max) as f64;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let slot = plot_width / buckets.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let y = |value: f64| TOP + plot_height - value / top * plot_height;
    let mut out = String::with_capacity(4096 + buckets.len() * 160);
    let total: u64 = buckets.iter().map(|b| b.humans + b.bots).sum();
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc"><title id="chart-title">{}</title><desc id="chart-desc">{} clicks in {} buckets; humans in blue, bots in grey.</desc>"#,
        html_escape::encode_text(title),
        total,
        buckets.len()
    );
    for step in 0..=4 {
        let value = top / 4.0 * f64::from(step);
        let at = y(value);
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{at:.1}" y2="{at:.1}" stroke="#d5d9de" stroke-width="1"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#555d66">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            at + 4.0,
            value as u64
        );
    }
    for (i, bucket) in buckets.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let humans_top = y(bucket.humans as f64);
        let all_top = y((bucket.humans + bucket.bots) as f64);
        let when = label(bucket.start, interval);
        if bucket.humans > 0 {
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{humans_top:.1}" width="{bar:.1}" height="{:.1}" fill="#0b57d0"><title>{when}: {} humans</title></rect>"##,
                y(0.0) - humans_top,
                bucket.humans
            );
        }
        if bucket.bots > 0 {
            let _ = write!(
                out,
                r##"<rect x="{x:.1}" y="{all_top:.1}" width="{bar:.1}" height="{:.1}" fill="#9aa4ae"><title>{when}: {} bots</title></rect>"##,
                humans_top - all_top,
                bucket.bots
            );
        }
    }
    let labels = 6.min(buckets.len());
    if labels > 0 {
        let every = buckets.len().div_ceil(labels);
        for (i, bucket) in buckets.iter().enumerate().step_by(every) {
            let x = LEFT + slot * (i as f64 + 0.5);
            let _ = write!(
                out,
                r##"<text x="{x:.1}" y="{}" font-size="11" text-anchor="middle" fill="#555d66">{}</text>"##,
                HEIGHT - 8.0,
                label(bucket.start, interval)
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_buckets_are_zero_and_counts_land_in_theirs() {
        let range = ChartRange {
            from: 3_600_000,
            to: 3_600_000 * 4,
            interval: 3_600_000,
        };
        let points = [(7_200_000, Counts { humans: 3, bots: 1 })];
        let buckets = buckets(range, &points);
        assert_eq!(buckets.len(), 3);
        assert_eq!(
            buckets[1],
            Bucket {
                start: 7_200_000,
                humans: 3,
                bots: 1
            }
        );
        assert_eq!(buckets[0].humans + buckets[2].humans, 0);
    }

    #[test]
    fn the_axis_rounds_up() {
        assert_eq!(nice_max(0), 4);
        assert_eq!(nice_max(7), 8);
        assert_eq!(nice_max(41), 80);
        assert_eq!(nice_max(1000), 1000);
        assert_eq!(nice_max(1001), 2000);
    }

    #[test]
    fn bars_carry_their_counts_and_the_title_is_escaped() {
        let buckets = [
            Bucket {
                start: 0,
                humans: 5,
                bots: 2,
            },
            Bucket {
                start: 60_000,
                humans: 0,
                bots: 0,
            },
        ];
        let svg = svg(&buckets, 60_000, "<b>clicks</b>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("00:00: 5 humans"));
        assert!(svg.contains("00:00: 2 bots"));
        assert!(svg.contains("&lt;b&gt;clicks&lt;/b&gt;"));
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
