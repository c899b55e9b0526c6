//! Click events one click actor counts per second on one core: what
//! `engine/src/clicks/actor.rs` does per event (enrich with a warm user-agent
//! cache, then `WindowAggregator::add`), over 10,000 links with Zipf
//! popularity, 51 user agents (browsers, phones, in-app browsers, bots), a few
//! referrers and UTM tags, with and without a GeoIP database; plus the cost of
//! closing a full window and writing it to a `FjallSink`, which the actor's
//! thread also pays once per window, and of rolling six such windows up into
//! a minute, which the store's background thread pays once per minute.
//!
//! Run: `cargo bench -p ricochet-benches --bench click_window` (about 3 min,
//! most of it writing windows; `-- --quick` for a short run).
//!
//! The GeoIP database is synthetic (mmdb-writer): 60,000 networks with
//! GeoIP2-City-shaped records (names in eight languages, continent, location,
//! postal code, subdivision), about 4 MB. A real GeoLite2-City file is tens of MB
//! and mostly out of cache, so a real lookup misses more than these do.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use ricochet_benches::data::SplitMix64;
use ricochet_benches::traffic::{
    ACCEPT_LANGUAGES, Networks, QUERIES, REFERRERS, USER_AGENTS, geo_database, pick,
};
use ricochet_engine::clicks::actor::count_event;
use ricochet_engine::clicks::enrich::{EnrichSettings, Enriched, Enricher, GeoDatabase};
use ricochet_engine::clicks::event::ClickEvent;
use ricochet_engine::clicks::window::WindowAggregator;
use ricochet_engine::clicks::{ClickSink, FjallSink};
use ricochet_model::clicks::WINDOW_MILLIS;
use ricochet_model::{LinkId, UnixMillis};

const LINKS: u64 = 10_000;
/// Zipf exponent of link popularity.
const ZIPF_S: f64 = 1.0;
/// Events generated once and replayed (about 35 MB of events).
const EVENTS: usize = 1 << 17;
/// Events per measured iteration: what an actor takes from its channel per
/// wake-up (`BATCH` in `actor.rs`).
const CHUNK: usize = 4096;
/// Start of the window every measured event falls in (2026-11-24T00:00:00Z).
const WINDOW: UnixMillis = 1_795_478_400_000;

/// Link ranks drawn with Zipf popularity, mapped to scattered link ids.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: u64, s: f64) -> Self {
        let mut sum = 0.0;
        let cumulative = (1..=n)
            .map(|rank| {
                sum += 1.0 / (rank as f64).powf(s);
                sum
            })
            .collect();
        Self { cumulative }
    }

    fn link(&self, rng: &mut SplitMix64) -> LinkId {
        let total = *self.cumulative.last().expect("links");
        let target = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        let rank = self.cumulative.partition_point(|&c| c < target) as u64;
        // Scatter ranks over the ids so the most popular links are not 1, 2, 3.
        rank * 7_919 % LINKS + 1
    }
}

struct Fixture {
    events: Vec<ClickEvent>,
    geo: Arc<GeoDatabase>,
}

impl Fixture {
    fn build() -> Self {
        let started = Instant::now();
        let mut rng = SplitMix64::new(7);
        let networks = Networks::generate(&mut rng);
        let bytes = geo_database(&networks, &mut rng);
        let geo_megabytes = bytes.len() as f64 / 1e6;
        let geo = Arc::new(GeoDatabase::from_bytes(bytes).expect("the database opens"));
        let zipf = Zipf::new(LINKS, ZIPF_S);
        let events = (0..EVENTS)
            .map(|i| {
                ClickEvent::new(
                    zipf.link(&mut rng),
                    WINDOW + (i as i64 * 7) % WINDOW_MILLIS,
                    Some(networks.client(&mut rng)),
                    pick(&mut rng, USER_AGENTS).as_bytes(),
                    pick(&mut rng, REFERRERS).as_bytes(),
                    pick(&mut rng, ACCEPT_LANGUAGES).as_bytes(),
                    pick(&mut rng, QUERIES).as_bytes(),
                )
            })
            .collect();
        eprintln!(
            "built {EVENTS} events and a {geo_megabytes:.1} MB GeoIP database in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Self { events, geo }
    }

    /// An enricher whose user-agent cache holds every user agent.
    fn enricher(&self, geo: bool) -> Enricher {
        let mut enricher = Enricher::new(EnrichSettings::default(), geo.then(|| self.geo.clone()));
        for (_, user_agent) in USER_AGENTS {
            enricher.agent(user_agent);
        }
        enricher
    }

    /// Every event enriched once (with GeoIP), for the window benchmarks.
    fn enriched(&self) -> Vec<(UnixMillis, LinkId, Enriched)> {
        let mut enricher = self.enricher(true);
        self.events
            .iter()
            .map(|e| (e.at, e.link_id, enricher.enrich(e)))
            .collect()
    }

    fn chunks(&self) -> impl Iterator<Item = &[ClickEvent]> {
        self.events.chunks(CHUNK).cycle()
    }
}

fn per_event(c: &mut Criterion) {
    let fixture = Fixture::build();
    let mut group = c.benchmark_group("click_actor");
    group
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .sample_size(30)
        .throughput(Throughput::Elements(CHUNK as u64));

    // (a) `WindowAggregator::add` alone, on clicks enriched beforehand (with
    // geo, so country and city are counted too).
    let enriched = fixture.enriched();
    let bots = enriched.iter().filter(|(_, _, e)| e.bot).count();
    eprintln!(
        "bots: {:.1} % of events",
        100.0 * bots as f64 / enriched.len() as f64
    );
    group.bench_function("window_add", |b| {
        let mut windows = WindowAggregator::new("bench", 0);
        let mut chunks = enriched.chunks(CHUNK).cycle();
        b.iter(|| {
            for (at, link, click) in chunks.next().expect("chunks cycle") {
                windows.add(*at, *link, click);
            }
        });
        black_box(windows.open_windows());
    });
    drop(enriched);

    for geo in [false, true] {
        let variant = if geo { "geo" } else { "no_geo" };
        // Enrichment alone, for the breakdown.
        group.bench_function(format!("enrich/{variant}"), |b| {
            let mut enricher = fixture.enricher(geo);
            let mut chunks = fixture.chunks();
            b.iter(|| {
                for event in chunks.next().expect("chunks cycle") {
                    black_box(enricher.enrich(event));
                }
            });
        });
        // (b) The actor's whole per-event work (`actor::count_event`).
        group.bench_function(format!("enrich_and_add/{variant}"), |b| {
            let mut enricher = fixture.enricher(geo);
            let mut windows = WindowAggregator::new("bench", 0);
            let mut chunks = fixture.chunks();
            b.iter(|| {
                for event in chunks.next().expect("chunks cycle") {
                    black_box(count_event(&mut enricher, &mut windows, event));
                }
            });
        });
    }
    group.finish();
}

/// Once per 10 seconds the actor closes its window and writes it to the sink
/// on its own thread: the cost of that for a window of `EVENTS` clicks, into a
/// `FjallSink` that already holds the earlier windows of the same hour.
fn window_close(c: &mut Criterion) {
    let fixture = Fixture::build();
    let enriched = fixture.enriched();
    drop(fixture);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sink = FjallSink::open(dir.path()).expect("the sink opens");
    let mut group = c.benchmark_group("click_window_close");
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .sample_size(10);
    // Each iteration fills the next 10-second window.
    let mut shift = 0;
    let mut fill = || {
        let mut windows = WindowAggregator::new("bench", 0);
        for (at, link, click) in &enriched {
            windows.add(at + shift, *link, click);
        }
        shift += WINDOW_MILLIS;
        windows
    };
    let mut rows = 0;
    group.bench_function(format!("close/{EVENTS}_events"), |b| {
        b.iter_batched(
            &mut fill,
            |mut windows| {
                let batches = windows.close_all();
                rows = batches[0].rows.len();
                batches
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(format!("close_and_write_fjall/{EVENTS}_events"), |b| {
        b.iter_batched(
            &mut fill,
            |mut windows| {
                for batch in windows.close_all() {
                    sink.write(&batch).expect("the write succeeds");
                }
            },
            BatchSize::PerIteration,
        );
    });
    // The background rollup of one minute: six full windows merged (in a
    // store of its own, so no earlier window is rolled up with them).
    let minute = 60_000 * (WINDOW / 60_000 + 1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sink = FjallSink::open(dir.path()).expect("the sink opens");
    group.bench_function(format!("roll_up_minute/6x{EVENTS}_events"), |b| {
        b.iter_batched(
            || {
                for window in 0..6 {
                    let mut windows = WindowAggregator::new("bench", 0);
                    for (at, link, click) in &enriched {
                        let at = minute + window * WINDOW_MILLIS + at - WINDOW;
                        windows.add(at, *link, click);
                    }
                    for batch in windows.close_all() {
                        sink.write(&batch).expect("the write succeeds");
                    }
                }
            },
            // Late enough for the minute, too early for its hour and day.
            |()| {
                let rolled = sink.roll_up(minute + 80_000).expect("the rollup");
                assert_eq!(rolled, 1, "one minute rolled up");
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
    eprintln!("rows per closed window: {rows}");
}

criterion_group!(benches, per_event, window_close);
criterion_main!(benches);
