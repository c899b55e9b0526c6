//! What an hour of uniform high-cardinality click traffic costs the embedded
//! click store: 360 windows of 700,000 distinct links, written as the writer
//! thread writes them, each minute rolled up as the background thread does,
//! then the hour. Prints the time of each part.
//!
//! `ROWS_PER_LINK` picks the shape of each link's clicks in a window:
//! - 1 (the default): wrk's UA-less requests over 1M links. Such a click is a
//!   bot of implied device, browser and OS, so the window stores its total
//!   only (docs/CLICKS.md, "Implied values"). About 1.5 min on 2 cores.
//! - 4: a human click with a named device, browser and OS (total plus three
//!   rows). About 5 min.
//!
//! Run: `cargo run --release -p ricochet-benches --bin click-hour-rollup`

use std::time::Instant;

use ricochet_engine::clicks::{ClickSink, FjallSink};
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow};

/// Start of the hour (2026-11-24T00:00:00Z).
const HOUR: i64 = 1_795_478_400_000;
const LINKS: u64 = 1_000_000;
const LINKS_PER_WINDOW: u64 = 700_000;

/// The rows of one window: a different slice of the links each time.
fn window_rows(index: u64, at: i64, rows_per_link: usize) -> Vec<WindowRow> {
    let first = index * LINKS_PER_WINDOW % LINKS;
    let mut links: Vec<u64> = (0..LINKS_PER_WINDOW)
        .map(|i| (first + i * 7) % LINKS + 1)
        .collect();
    links.sort_unstable();
    links.dedup();
    let shape: &[(Dimension, &str)] = match rows_per_link {
        1 => &[(Dimension::Total, "")],
        _ => &[
            (Dimension::Total, ""),
            (Dimension::Device, "desktop"),
            (Dimension::Browser, "Chrome"),
            (Dimension::Os, "Windows"),
        ],
    };
    let mut rows = Vec::with_capacity(links.len() * shape.len());
    for link_id in links {
        for &(dimension, value) in shape {
            rows.push(WindowRow {
                link_id,
                window_start: at,
                dimension,
                value: value.to_owned(),
                bot: rows_per_link == 1,
                count: 1,
            });
        }
    }
    rows
}

fn main() {
    let rows_per_link = match std::env::var("ROWS_PER_LINK").as_deref() {
        Err(_) | Ok("1") => 1,
        Ok("4") => 4,
        Ok(other) => {
            eprintln!("ROWS_PER_LINK must be 1 or 4, not {other:?}");
            std::process::exit(2);
        }
    };
    eprintln!("{LINKS_PER_WINDOW} links per window, {rows_per_link} row(s) per link");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sink = FjallSink::open(dir.path()).expect("the store opens");
    let (mut rows, mut writing, mut minutes) = (0usize, 0.0, 0.0);
    for minute in 0..60i64 {
        for window in 0..6i64 {
            let at = HOUR + minute * 60_000 + window * 10_000;
            let batch = WindowBatch {
                node: "bench".into(),
                shard: 0,
                window_start: at,
                rows: window_rows((minute * 6 + window) as u64, at, rows_per_link),
            };
            rows += batch.rows.len();
            let started = Instant::now();
            sink.write(&batch).expect("a write");
            writing += started.elapsed().as_secs_f64();
        }
        // Each minute once it is due (the last one rolls with the hour).
        if minute < 59 {
            let started = Instant::now();
            let rolled = sink
                .roll_up(HOUR + (minute + 1) * 60_000 + 20_000)
                .expect("a rollup");
            assert_eq!(rolled, 1, "one minute");
            minutes += started.elapsed().as_secs_f64();
        }
        if minute % 10 == 9 {
            eprintln!(
                "  {} minutes: {rows} rows written in {writing:.1} s, minutes rolled up in {minutes:.1} s",
                minute + 1
            );
        }
    }
    let started = Instant::now();
    let rolled = sink.roll_up(HOUR + 3_600_000 + 20_000).expect("a rollup");
    assert_eq!(rolled, 2, "the last minute and the hour");
    let hour = started.elapsed().as_secs_f64();
    println!(
        "{rows} window rows in 360 windows: writes {writing:.1} s ({:.0} ns/row), \
         59 minute rollups {minutes:.1} s ({:.0} ns/row), last minute + hour rollup {hour:.1} s",
        writing * 1e9 / rows as f64,
        minutes * 1e9 / (rows as f64 * 59.0 / 60.0),
    );
}
