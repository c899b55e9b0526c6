//! Read lookups on 1,000,000 links (7-character random codes, 60-byte URLs,
//! one domain, random key order): the engine's papaya `LinkTable` against a
//! `DashMap` of the same `LinkEntry` values; alone, beside a second reader
//! thread, and while a writer upserts 1,000 links/s.
//!
//! Run: `cargo bench -p ricochet-benches --bench link_table` (about 80 s;
//! add `--features mimalloc` for the mimalloc allocator).

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use ricochet_benches::dash::DashTable;
use ricochet_benches::data::{self, CODE_LEN, DOMAIN};
use ricochet_engine::LinkTable;
use ricochet_engine::table::{DomainId, LinkEntry};
use ricochet_model::LinkRecord;

const LINKS: usize = 1_000_000;
/// Distinct records the writer thread cycles through (existing codes, new URLs).
const UPDATES: usize = 10_000;
const WRITES_PER_SECOND: u32 = 1_000;

struct Fixture {
    papaya: LinkTable,
    dash: DashTable,
    domain: DomainId,
    /// Lookup order of the measured thread.
    keys: Vec<[u8; CODE_LEN]>,
    /// Lookup order of the second reader thread.
    other_keys: Vec<[u8; CODE_LEN]>,
    updates: Vec<LinkRecord>,
}

impl Fixture {
    fn build() -> Self {
        let started = Instant::now();
        let papaya = LinkTable::with_capacity(None, LINKS);
        let dash = DashTable::with_capacity(LINKS);
        let mut domain = DomainId::MAX;
        for i in 0..LINKS as u64 {
            let record = data::record(i);
            papaya.upsert(&record);
            if domain == DomainId::MAX {
                domain = papaya.reader().domain_id(DOMAIN.as_bytes()).unwrap();
            }
            dash.upsert(domain, &record);
        }
        let mut rng = data::SplitMix64::new(99);
        let updates = (0..UPDATES)
            .map(|_| {
                let i = rng.below(LINKS as u64);
                data::record_with_url(i, &data::url(i + 1))
            })
            .collect();
        eprintln!(
            "built {LINKS} links in both maps in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Self {
            papaya,
            dash,
            domain,
            keys: data::shuffled_codes(LINKS, 1),
            other_keys: data::shuffled_codes(LINKS, 2),
            updates,
        }
    }
}

/// What a redirect reads from an entry: its status and URL.
#[inline]
fn touch(entry: Option<&LinkEntry>) -> usize {
    entry.map_or(0, |e| e.status() as usize + e.url().len())
}

#[derive(Clone, Copy, PartialEq)]
enum Map {
    /// `reader()` + `domain_for_host` + `get`, as the redirect handler does.
    PapayaEnginePath,
    /// `reader()` + `get` with the domain id known.
    PapayaGet,
    /// Shard read lock + probe with the domain id known.
    DashmapGet,
}

impl Map {
    fn name(self) -> &'static str {
        match self {
            Map::PapayaEnginePath => "papaya_engine_path",
            Map::PapayaGet => "papaya_get",
            Map::DashmapGet => "dashmap_get",
        }
    }

    #[inline]
    fn lookup(self, fixture: &Fixture, code: &[u8]) -> usize {
        match self {
            Map::PapayaEnginePath => {
                let reader = fixture.papaya.reader();
                let Some(domain) = reader.domain_for_host(Some(DOMAIN.as_bytes())) else {
                    return 0;
                };
                touch(reader.get(domain, code))
            }
            Map::PapayaGet => touch(fixture.papaya.reader().get(fixture.domain, code)),
            Map::DashmapGet => fixture.dash.with_entry(fixture.domain, code, touch),
        }
    }

    fn upsert(self, fixture: &Fixture, record: &LinkRecord) {
        match self {
            Map::PapayaEnginePath | Map::PapayaGet => fixture.papaya.upsert(record),
            Map::DashmapGet => fixture.dash.upsert(fixture.domain, record),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    /// Independent lookups: the CPU overlaps the cache misses of successive
    /// lookups (a throughput figure no request loop reaches).
    OneThreadOverlapped,
    /// Each key depends on the previous result, so lookups do not overlap, as
    /// between two requests: the latency a request pays.
    OneThread,
    TwoReaders,
    WithWriter,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::OneThreadOverlapped => "1_thread_overlapped",
            Scenario::OneThread => "1_thread",
            Scenario::TwoReaders => "2_readers",
            Scenario::WithWriter => "writer_1k_per_s",
        }
    }
}

/// Runs `measure` while `background` runs on another thread until it returns.
fn beside(background: impl FnOnce(&AtomicBool) + Send, measure: impl FnOnce()) {
    let stop = AtomicBool::new(false);
    thread::scope(|scope| {
        let worker = scope.spawn(|| background(&stop));
        measure();
        stop.store(true, Ordering::Relaxed);
        worker.join().expect("background thread panicked");
    });
}

fn read_until_stopped(map: Map, fixture: &Fixture, stop: &AtomicBool) {
    let mut found = 0usize;
    let mut lookups = 0u64;
    'outer: loop {
        for chunk in fixture.other_keys.chunks(1024) {
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            for code in chunk {
                found += map.lookup(fixture, code);
            }
            lookups += chunk.len() as u64;
        }
    }
    black_box(found);
    eprintln!("  second reader: {lookups} lookups");
}

/// Upserts `WRITES_PER_SECOND` records a second, paced against the clock.
fn write_until_stopped(map: Map, fixture: &Fixture, stop: &AtomicBool) {
    let started = Instant::now();
    let period = Duration::from_secs(1) / WRITES_PER_SECOND;
    let mut written = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let due = started + period * written;
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
            continue;
        }
        map.upsert(fixture, &fixture.updates[written as usize % UPDATES]);
        written += 1;
    }
    eprintln!(
        "  writer: {written} upserts at {:.0}/s",
        written as f64 / started.elapsed().as_secs_f64()
    );
}

fn lookups(c: &mut Criterion) {
    let fixture = Fixture::build();
    let mut group = c.benchmark_group("lookup_1m");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);

    for scenario in [
        Scenario::OneThreadOverlapped,
        Scenario::OneThread,
        Scenario::TwoReaders,
        Scenario::WithWriter,
    ] {
        for map in [Map::PapayaEnginePath, Map::PapayaGet, Map::DashmapGet] {
            let id = BenchmarkId::new(map.name(), scenario.name());
            let fixture = &fixture;
            let measure = || {
                group.bench_function(id, |b| {
                    let mut next = 0usize;
                    if scenario == Scenario::OneThreadOverlapped {
                        b.iter(|| {
                            let found = map.lookup(fixture, black_box(&fixture.keys[next]));
                            next = if next + 1 == LINKS { 0 } else { next + 1 };
                            found
                        })
                    } else {
                        b.iter(|| {
                            let found = map.lookup(fixture, &fixture.keys[next]);
                            // Always 0, but the CPU cannot know: the next key's
                            // address waits for this lookup's result.
                            next += 1 + (found >> 40);
                            if next >= LINKS {
                                next = 0;
                            }
                            found
                        })
                    }
                });
            };
            match scenario {
                Scenario::OneThreadOverlapped | Scenario::OneThread => measure(),
                Scenario::TwoReaders => {
                    beside(|stop| read_until_stopped(map, fixture, stop), measure)
                }
                Scenario::WithWriter => {
                    beside(|stop| write_until_stopped(map, fixture, stop), measure)
                }
            }
        }
    }

    // The cost of pinning a papaya reader alone (paid once per request).
    group.bench_function("papaya_reader_only", |b| {
        b.iter(|| drop(black_box(fixture.papaya.reader())))
    });
    // Resolving the Host header to a domain id alone (once per request).
    group.bench_function("papaya_domain_for_host_only", |b| {
        b.iter(|| {
            let reader = fixture.papaya.reader();
            reader.domain_for_host(Some(black_box(DOMAIN.as_bytes())))
        })
    });
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
