//! Analytics queries on the embedded `FjallSink` holding 30 days of clicks for
//! 10,000 links: the 30-day time series at hourly interval of one link, and
//! its 30-day breakdown by country, for a random link and for the busiest one.
//!
//! Run: `cargo bench -p ricochet-benches --bench click_query` (the first run
//! seeds the store, a few minutes; later runs reuse it and take about 30 s).
//!
//! Seeding goes through `ClickSink::write`, then `FjallSink::roll_up` as the
//! engine's background pass runs it, up to "now": every finished minute,
//! hour and day is rolled up, while the current hour and day are still read
//! from their parts, as they are in a running engine. Every link gets one 10-second
//! window in every hour of the 30 days (720 windows per link, 7.2 million in
//! all), from one of two shards; the busiest link gets one window per minute
//! from each shard. A real link with clicks all day has more windows than one
//! per hour, but an hourly series reads only the hour rows, and those are one
//! per (hour, node, shard, human/bot) however many windows the hour had.
//! Windows hold only the two dimensions the queries read (`total` and
//! `country`): the other eight are stored apart and would only make seeding
//! slower. The store is kept in `target/bench-data/` and reused while
//! its parameters match; delete that directory to seed again.

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ricochet_benches::data::SplitMix64;
use ricochet_engine::clicks::{ClickReader, ClickSink, FjallSink, Interval};
use ricochet_model::clicks::{Dimension, WINDOW_MILLIS, WindowBatch, WindowRow};
use ricochet_model::{LinkId, UnixMillis};

const LINKS: u64 = 10_000;
const DAYS: i64 = 30;
const SHARDS: u16 = 2;
const NODE: &str = "engine-1";
/// The link with one window per minute from every shard.
const HOT_LINK: LinkId = 1;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
/// Start of the seeded data (2026-10-25T00:00:00Z).
const START: UnixMillis = 1_795_478_400_000 - DAYS * DAY;
/// "Now" for the queries: near the end of the data, not on a bucket boundary.
const NOW: UnixMillis = START + DAYS * DAY - 25 * 60_000 + 3_000;
/// Bump when the generated data changes, so a stale store is not reused.
const DATA_VERSION: u32 = 2;

const COUNTRIES: &[&str] = &[
    "US", "DE", "GB", "FR", "IN", "BR", "CA", "ES", "IT", "NL", "JP", "AU", "MX", "PL", "SE", "TR",
    "KR", "ID", "AR", "CH", "BE", "AT", "IE", "PT", "NO", "DK", "FI", "CZ", "RO", "UA", "ZA", "NG",
    "EG", "KE", "SG", "PH", "VN", "TH", "MY", "IL", "AE", "SA", "PK", "BD", "CN", "TW", "HK", "NZ",
    "CL", "CO",
];

/// A skewed pick: earlier entries are more likely.
fn skewed<'a>(rng: &mut SplitMix64, values: &[&'a str]) -> &'a str {
    let a = rng.below(values.len() as u64);
    let b = rng.below(values.len() as u64);
    values[a.min(b) as usize]
}

/// The rows of one link in one window: a few human clicks by total and by
/// country, sometimes a bot. Only the two dimensions the queries read are
/// seeded (see the module comment).
fn link_window(rng: &mut SplitMix64, link: LinkId, window: UnixMillis, rows: &mut Vec<WindowRow>) {
    let hot = link == HOT_LINK;
    let humans = 1 + rng.below(if hot { 20 } else { 3 });
    let mut row = |dimension, value: &str, bot, count| {
        rows.push(WindowRow {
            link_id: link,
            window_start: window,
            dimension,
            value: value.to_owned(),
            bot,
            count,
        })
    };
    row(Dimension::Total, "", false, humans);
    // Humans split over up to three countries (the hot link) or one.
    let countries = if hot { 3 } else { 1 };
    let mut left = humans;
    for i in 0..countries {
        if left == 0 {
            break;
        }
        let count = if i + 1 == countries {
            left
        } else {
            1 + rng.below(left)
        };
        left -= count.min(left);
        row(Dimension::Country, skewed(rng, COUNTRIES), false, count);
    }
    if rng.below(100) < 15 {
        row(Dimension::Total, "", true, 1);
        row(Dimension::Country, skewed(rng, COUNTRIES), true, 1);
    }
}

/// The batches shard `shard` closes in hour `hour`, in time order: every
/// other link (by parity) in one window of the hour; the hot link in one
/// window of every minute.
fn hour_batches(hour: i64, shard: u16) -> Vec<WindowBatch> {
    const WINDOWS_PER_HOUR: usize = (HOUR / WINDOW_MILLIS) as usize;
    let mut rng = SplitMix64::new(((hour as u64) << 8) | shard as u64);
    let hour_start = START + hour * HOUR;
    let mut links: Vec<Vec<LinkId>> = vec![Vec::new(); WINDOWS_PER_HOUR];
    for link in 1..=LINKS {
        if link == HOT_LINK {
            for minute in 0..60 {
                links[minute * 6 + rng.below(6) as usize].push(link);
            }
        } else if (link + hour as u64) % SHARDS as u64 == shard as u64 {
            links[rng.below(WINDOWS_PER_HOUR as u64) as usize].push(link);
        }
    }
    let mut batches = Vec::new();
    for (index, links) in links.into_iter().enumerate() {
        if links.is_empty() {
            continue;
        }
        let window = hour_start + index as i64 * WINDOW_MILLIS;
        let mut rows = Vec::new();
        for link in links {
            link_window(&mut rng, link, window, &mut rows);
        }
        batches.push(WindowBatch {
            node: NODE.to_owned(),
            shard,
            window_start: window,
            rows,
        });
    }
    batches
}

fn store_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("bench-data").join(format!(
        "click_query-v{DATA_VERSION}-{LINKS}links-{DAYS}days-{SHARDS}shards"
    ))
}

/// Opens the seeded store, seeding it first when it is missing or incomplete.
fn seeded_sink() -> FjallSink {
    let dir = store_dir();
    let done = dir.join("SEEDED");
    if done.exists() {
        eprintln!("reusing the seeded click store in {}", dir.display());
        return FjallSink::open(&dir).expect("the seeded store opens");
    }
    if dir.exists() {
        eprintln!("removing the incomplete click store in {}", dir.display());
        std::fs::remove_dir_all(&dir).expect("the incomplete store is removed");
    }
    eprintln!(
        "seeding {} ({LINKS} links, {DAYS} days, one window per link per hour; \
         runs once, then the store is reused)",
        dir.display()
    );
    let sink = FjallSink::open(&dir).expect("the store opens");
    let started = Instant::now();
    let windows = AtomicU64::new(0);
    let rows = AtomicU64::new(0);
    let hours = (DAYS * 24) as u64;
    let hours_done = AtomicU64::new(0);
    std::thread::scope(|scope| {
        // One writer per shard, as in the engine (each shard's actor writes
        // its own windows; rollups of one shard never read another's rows).
        let writers: Vec<_> = (0..SHARDS)
            .map(|shard| {
                let (sink, windows, rows, hours_done) = (&sink, &windows, &rows, &hours_done);
                scope.spawn(move || {
                    for hour in 0..DAYS * 24 {
                        for batch in hour_batches(hour, shard) {
                            sink.write(&batch).expect("a seeding write");
                            windows.fetch_add(
                                batch
                                    .rows
                                    .iter()
                                    .filter(|r| r.dimension == Dimension::Total && !r.bot)
                                    .count() as u64,
                                Ordering::Relaxed,
                            );
                            rows.fetch_add(batch.rows.len() as u64, Ordering::Relaxed);
                        }
                        hours_done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let total = hours * SHARDS as u64;
        let mut printed = Instant::now();
        while !writers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if printed.elapsed() < Duration::from_secs(10) {
                continue;
            }
            printed = Instant::now();
            let done = hours_done.load(Ordering::Relaxed);
            let elapsed = started.elapsed().as_secs_f64();
            eprintln!(
                "  {:5.1} %: {:.2}M link-windows, {:.1}M rows in {elapsed:.0} s, about {:.0} s left",
                100.0 * done as f64 / total as f64,
                windows.load(Ordering::Relaxed) as f64 / 1e6,
                rows.load(Ordering::Relaxed) as f64 / 1e6,
                elapsed * (total - done) as f64 / done.max(1) as f64,
            );
        }
        for writer in writers {
            writer.join().expect("a seeding thread panicked");
        }
    });
    let written = started.elapsed();
    eprintln!("  rolling up every finished minute, hour and day");
    let rolled = sink.roll_up(NOW).expect("the rollup");
    sink.persist().expect("the store syncs");
    let summary = format!(
        "{} link-windows, {} rows (window level) written in {:.0} s; \
         {rolled} buckets rolled up in {:.0} s\n",
        windows.load(Ordering::Relaxed),
        rows.load(Ordering::Relaxed),
        written.as_secs_f64(),
        (started.elapsed() - written).as_secs_f64(),
    );
    eprint!("  {summary}");
    std::fs::write(&done, summary).expect("the marker is written");
    drop(sink);
    FjallSink::open(&dir).expect("the seeded store opens")
}

fn queries(c: &mut Criterion) {
    let sink = seeded_sink();
    let from = NOW - DAYS * DAY;
    // Sanity: every hour of the range holds clicks of the link queried.
    let series = sink.series(2, from, NOW, Interval::Hour).expect("a series");
    let empty = series.iter().filter(|(_, c)| c.humans == 0).count();
    eprintln!(
        "link 2: {} hourly buckets, {empty} empty, {} human clicks",
        series.len(),
        series.iter().map(|(_, c)| c.humans).sum::<u64>()
    );

    let mut group = c.benchmark_group("click_query_30d");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(50);
    let mut rng = SplitMix64::new(11);
    let mut random_link = move || 1 + rng.below(LINKS);
    for (name, hot) in [("random_link", false), ("hot_link", true)] {
        group.bench_function(format!("series_hourly/{name}"), |b| {
            b.iter(|| {
                let link = if hot { HOT_LINK } else { random_link() };
                let series = sink
                    .series(link, from, NOW, Interval::Hour)
                    .expect("a series");
                black_box(series)
            })
        });
        group.bench_function(format!("breakdown_country/{name}"), |b| {
            b.iter(|| {
                let link = if hot { HOT_LINK } else { random_link() };
                let countries = sink
                    .breakdown(link, from, NOW, Dimension::Country)
                    .expect("a breakdown");
                black_box(countries)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
