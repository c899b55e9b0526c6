//! The per-request cost of the redirect path without sockets: parse a request
//! with httparse, then `RedirectHandler::handle` it into an output `Vec`, over
//! 1,000,000 links in random order.
//!
//! Run: `cargo bench -p ricochet-benches --bench redirect_path` (about 40 s).
//! `handle_only/hit_5_rules` against `handle_only/hit_plain_visitors` is the
//! cost of five rules (see `rules_against_plain`); `*_60k_networks` are the
//! same with visitors from all 60,000 client networks, as the load tester's
//! suite sends them, so the per-worker GeoIP cache is read from memory
//! rather than the CPU's caches.
//!
//! `pages_1m/*` (`-- pages_1m/` alone) is a link-in-bio page's answer
//! (200 with a 6,000-byte document, as is or gzipped, or 304 to a
//! revalidation) against a plain redirect, in one table of 1,000,000 links
//! and 100,000 pages.
//!
//! `limited/*` (about 40 s more; `-- limited/` alone) is the cost of a
//! redirect of a link with a click limit: handle, await the counter, write.
//! `embedded_*` counts in a fjall store in `target/` (an fsync per batch);
//! `redis_*` in a `redis-server` it starts on a free port (skipped when none
//! is installed). `*_one_at_a_time` is one visitor's latency; `*_64_in_flight`
//! is the time per redirect with 64 requests waiting at once (they share
//! batches: one fsync or one pipeline).
//!
//! The connection's own parser (`http::conn::parse_one`) is private, so
//! `parse` below repeats its work on the headers that matter (Host,
//! Connection, Content-Length, Transfer-Encoding, Sec-Purpose, and the
//! User-Agent, Referer and Accept-Language a click records). Click capture
//! is off (`RedirectHandler::new(.., None)`). Responses are
//! written through `ResponseWriter::close_after` (`new` is crate-private), so
//! each carries `Connection: close`, 19 bytes a keep-alive answer would not.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ricochet_benches::data::{self, CODE_LEN, SplitMix64};
use ricochet_benches::traffic::{ACCEPT_LANGUAGES, Networks, USER_AGENTS, geo_database, pick};
use ricochet_engine::LinkTable;
use ricochet_engine::clicks::enrich::GeoDatabase;
use ricochet_engine::http::{BatchClock, Clock, Handled, Handler, Method, Request, ResponseWriter};
use ricochet_engine::limits::{FjallCounter, LimitCounter, RedisCounter};
use ricochet_engine::redirect::{RedirectHandler, RedirectSettings};
use ricochet_engine::store::LinkStore;
use ricochet_model::LinkRecord;
use ricochet_model::behaviour::{Condition, Device, Rule, Schedule, Variant};

const LINKS: usize = 1_000_000;
/// Links of the query-forwarding case.
const FORWARDING_LINKS: usize = 65_536;
const MAX_HEADERS: usize = 64;
/// Links of the rules-against-plain case, and its distinct visitors.
const RULE_LINKS: usize = 65_536;
const VISITORS: usize = 4_096;
/// Distinct visitors of the `*_60k_networks` cases (a power of two).
const MANY_VISITORS: usize = 262_144;

/// A minimal client (curl); the code is at `CODE_AT`.
const CURL: &[u8] =
    b"GET /0000000 HTTP/1.1\r\nHost: go.example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
/// A desktop browser's navigation request.
const BROWSER: &[u8] = b"GET /0000000 HTTP/1.1\r\nHost: go.example\r\nConnection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\nsec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\nUpgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Sec-Fetch-Site: none\r\nSec-Fetch-Mode: navigate\r\nSec-Fetch-User: ?1\r\nSec-Fetch-Dest: document\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n\r\n";
const CODE_AT: usize = 5;
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

/// The status of an answer written at once (deferred answers are 0).
#[inline]
fn status(handled: Handled) -> u16 {
    match handled {
        Handled::Answered(status) => status,
        Handled::Deferred(_) => 0,
    }
}

/// Parses one request head the way the engine's connection does.
#[inline]
fn parse(input: &[u8]) -> Option<Request<'_>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(input) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let method = match parsed.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    let mut host = None;
    let mut close = false;
    let mut prefetch = false;
    let empty: &[u8] = b"";
    let (mut user_agent, mut referer, mut accept_language, mut cookie) =
        (empty, empty, empty, empty);
    let (mut if_none_match, mut accept_encoding) = (empty, empty);
    for header in parsed.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"user-agent") {
            user_agent = header.value;
        } else if name.eq_ignore_ascii_case(b"referer") {
            referer = header.value;
        } else if name.eq_ignore_ascii_case(b"accept-language") {
            accept_language = header.value;
        } else if name.eq_ignore_ascii_case(b"cookie") {
            cookie = header.value;
        } else if name.eq_ignore_ascii_case(b"host") {
            host = Some(header.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= header
                .value
                .split(|&b| b == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"content-length")
            || name.eq_ignore_ascii_case(b"transfer-encoding")
        {
            return None;
        } else if name.eq_ignore_ascii_case(b"sec-purpose") || name.eq_ignore_ascii_case(b"purpose")
        {
            prefetch = true;
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            accept_encoding = header.value;
        } else if name.eq_ignore_ascii_case(b"if-none-match") {
            if_none_match = header.value;
        }
    }
    black_box(close);
    let host = host.filter(|h| {
        h.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
    })?;
    let target = parsed.path?.as_bytes();
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(at) => (&target[..at], &target[at + 1..]),
        None => (target, &b""[..]),
    };
    Some(Request {
        method,
        path,
        query,
        host: Some(host),
        prefetch,
        user_agent,
        referer,
        accept_language,
        cookie,
        forwarded_for: b"",
        if_none_match,
        accept_encoding,
        peer: Some(PEER),
        secure: false,
        body: b"",
    })
}

/// A GET for `path` on the default domain, as a parsed request.
#[inline]
fn get_request<'a>(
    path: &'a [u8],
    query: &'a [u8],
    user_agent: &'a [u8],
    accept_language: &'a [u8],
    peer: IpAddr,
) -> Request<'a> {
    Request {
        method: Method::Get,
        path,
        query,
        host: Some(b"go.example"),
        prefetch: false,
        user_agent,
        referer: b"",
        accept_language,
        cookie: b"",
        forwarded_for: b"",
        if_none_match: b"",
        accept_encoding: b"",
        peer: Some(peer),
        secure: false,
        body: b"",
    }
}

struct Fixture {
    handler: RedirectHandler,
    clock: BatchClock,
    /// Codes in the table, in lookup order.
    hits: Vec<[u8; CODE_LEN]>,
    /// Codes not in the table.
    misses: Vec<[u8; CODE_LEN]>,
}

impl Fixture {
    fn build() -> Self {
        let started = Instant::now();
        let table = LinkTable::with_capacity(Some(data::DOMAIN), LINKS);
        for i in 0..LINKS as u64 {
            table.upsert(&data::record(i));
        }
        eprintln!(
            "built {LINKS} links in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        Self {
            // No click capture: this measures the redirect alone.
            handler: RedirectHandler::new(
                Arc::new(table),
                Arc::new(RedirectSettings::new(3600)),
                None,
            ),
            clock: Clock::batch(),
            hits: data::shuffled_codes(LINKS, 3),
            misses: (0..65_536).map(|i| data::code(LINKS as u64 + i)).collect(),
        }
    }
}

/// Request bytes cycling through a list of codes.
struct Requests<'a> {
    codes: &'a [[u8; CODE_LEN]],
    request: Vec<u8>,
    next: usize,
}

impl<'a> Requests<'a> {
    fn new(codes: &'a [[u8; CODE_LEN]], template: &[u8]) -> Self {
        Self {
            codes,
            request: template.to_vec(),
            next: 0,
        }
    }

    /// The template with the next code written in.
    #[inline]
    fn next(&mut self) -> &[u8] {
        self.request[CODE_AT..CODE_AT + CODE_LEN].copy_from_slice(&self.codes[self.next]);
        self.next = if self.next + 1 == self.codes.len() {
            0
        } else {
            self.next + 1
        };
        &self.request
    }
}

fn redirect_path(c: &mut Criterion) {
    let mut fixture = Fixture::build();
    let mut group = c.benchmark_group("redirect_1m");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);

    for (name, template) in [("curl", CURL), ("browser", BROWSER)] {
        let mut requests = Requests::new(&fixture.hits, template);
        group.bench_function(format!("parse_only/{name}"), |b| {
            b.iter(|| parse(requests.next()).map(|r| r.path.len()))
        });
    }

    let clock = fixture.clock;
    let mut out = Vec::with_capacity(4096);
    {
        let mut next = 0usize;
        let handler = &mut fixture.handler;
        let hits = &fixture.hits;
        group.bench_function("handle_only/hit", |b| {
            b.iter(|| {
                let mut path = [b'/'; CODE_LEN + 1];
                path[1..].copy_from_slice(&hits[next]);
                next = if next + 1 == hits.len() { 0 } else { next + 1 };
                let request = get_request(&path, b"", b"curl/8.5.0", b"", PEER);
                out.clear();
                status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)))
            })
        });
    }

    for (name, template, codes) in [
        ("curl_hit", CURL, &fixture.hits),
        ("browser_hit", BROWSER, &fixture.hits),
        ("curl_miss", CURL, &fixture.misses),
    ] {
        let mut requests = Requests::new(codes, template);
        let handler = &mut fixture.handler;
        group.bench_function(format!("parse_and_handle/{name}"), |b| {
            b.iter(|| {
                let request = parse(requests.next()).expect("valid request");
                out.clear();
                status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)))
            })
        });
    }
    // Links that forward the incoming query string, asked with a
    // 60-byte query (the path `Location` building takes for them).
    {
        let forwarding = LinkTable::with_capacity(Some(data::DOMAIN), FORWARDING_LINKS);
        for i in 0..FORWARDING_LINKS as u64 {
            let mut record = data::record(i);
            record.forward_query = true;
            forwarding.upsert(&record);
        }
        let mut handler = RedirectHandler::new(
            Arc::new(forwarding),
            Arc::new(RedirectSettings::new(3600)),
            None,
        );
        let codes = data::shuffled_codes(FORWARDING_LINKS, 5);
        let mut next = 0usize;
        group.bench_function("handle_only/hit_forwarding_query", |b| {
            b.iter(|| {
                let mut path = [b'/'; CODE_LEN + 1];
                path[1..].copy_from_slice(&codes[next]);
                next = if next + 1 == codes.len() { 0 } else { next + 1 };
                let request = get_request(
                    &path,
                    b"utm_source=newsletter&utm_medium=email&utm_campaign=spring",
                    b"curl/8.5.0",
                    b"",
                    PEER,
                );
                out.clear();
                status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)))
            })
        });
    }
    rules_against_plain(&mut group, &clock, &mut out);
    group.finish();

    out.clear();
    let mut requests = Requests::new(&fixture.hits, CURL);
    let request = parse(requests.next()).expect("valid request");
    fixture
        .handler
        .handle(&request, ResponseWriter::close_after(&mut out, &clock));
    eprintln!(
        "sample response ({} bytes):\n{}",
        out.len(),
        String::from_utf8_lossy(&out)
    );
}

/// Links with five rules (device, country, language, a weekday schedule and
/// an A/B split of the link's own traffic) against plain links, both asked
/// by the same realistic visitors: weighted user agents (a warm per-worker
/// cache, as a running engine has), Accept-Language values and client
/// addresses from a synthetic GeoIP2-City database. Most visitors match no
/// rule, so most requests test every condition and then split.
fn rules_against_plain(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    clock: &BatchClock,
    out: &mut Vec<u8>,
) {
    let mut rng = SplitMix64::new(11);
    let networks = Networks::generate(&mut rng);
    let geo = Arc::new(GeoDatabase::from_bytes(geo_database(&networks, &mut rng)).expect("opens"));
    let visitors: Vec<(&str, &str, IpAddr)> = (0..MANY_VISITORS)
        .map(|_| {
            (
                pick(&mut rng, USER_AGENTS),
                pick(&mut rng, ACCEPT_LANGUAGES),
                networks.client(&mut rng),
            )
        })
        .collect();
    let plain = Arc::new(LinkTable::with_capacity(Some(data::DOMAIN), RULE_LINKS));
    let ruled = Arc::new(LinkTable::with_capacity(Some(data::DOMAIN), RULE_LINKS));
    for i in 0..RULE_LINKS as u64 {
        let record = data::record(i);
        plain.upsert(&record);
        ruled.upsert(&with_five_rules(record));
    }
    let codes = data::shuffled_codes(RULE_LINKS, 9);
    let cases = [
        ("hit_plain_visitors", &plain, VISITORS),
        ("hit_5_rules", &ruled, VISITORS),
        ("hit_plain_visitors_60k_networks", &plain, MANY_VISITORS),
        ("hit_5_rules_60k_networks", &ruled, MANY_VISITORS),
    ];
    for (name, table, visitor_count) in cases {
        let settings = RedirectSettings::new(3600).with_geo(Some(geo.clone()));
        let mut handler = RedirectHandler::new(table.clone(), Arc::new(settings), None);
        let mut next = 0usize;
        group.bench_function(format!("handle_only/{name}"), |b| {
            b.iter(|| {
                let mut path = [b'/'; CODE_LEN + 1];
                path[1..].copy_from_slice(&codes[next % RULE_LINKS]);
                let (user_agent, accept_language, peer) = visitors[next % visitor_count];
                next = next.wrapping_add(1);
                let request = get_request(
                    &path,
                    b"",
                    user_agent.as_bytes(),
                    accept_language.as_bytes(),
                    peer,
                );
                out.clear();
                status(handler.handle(&request, ResponseWriter::close_after(out, clock)))
            })
        });
    }
}

fn with_five_rules(mut record: LinkRecord) -> LinkRecord {
    let rule = |url: &str, condition: Condition| Rule {
        url: url.to_owned(),
        conditions: vec![condition],
        variants: Vec::new(),
    };
    record.extensions.rules = vec![
        rule(
            "https://example.com/mobile",
            Condition::Device(Device::Mobile),
        ),
        rule("https://example.com/de", Condition::Country("DE".into())),
        rule("https://example.com/fr", Condition::Language("fr".into())),
        rule(
            "https://example.com/office",
            Condition::Schedule(Schedule {
                timezone: "Europe/Paris".into(),
                days: 0b001_1111,
                from: 9 * 60,
                to: 17 * 60,
            }),
        ),
    ];
    record.extensions.variants = vec![
        Variant {
            url: "https://example.com/a".into(),
            weight: 50,
        },
        Variant {
            url: "https://example.com/b".into(),
            weight: 50,
        },
    ];
    record
}

/// Limited links: a click limit no request reaches.
const LIMITED_LINKS: usize = 1_024;
/// Requests waiting at once in the `*_64_in_flight` cases.
const IN_FLIGHT: u64 = 64;

fn limited_redirects(c: &mut Criterion) {
    let table = LinkTable::with_capacity(Some(data::DOMAIN), LIMITED_LINKS);
    for i in 0..LIMITED_LINKS as u64 {
        let mut record = data::record(i);
        record.extensions.click_limit = Some(u64::MAX);
        table.upsert(&record);
    }
    let table = Arc::new(table);
    let codes = data::shuffled_codes(LIMITED_LINKS, 13);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory on disk");
    let embedded: Arc<dyn LimitCounter> =
        FjallCounter::open(LinkStore::open(dir.path()).expect("store opens")).expect("counter");
    let redis = BenchRedis::start();
    let mut counters = vec![("embedded", embedded)];
    match &redis {
        Some(server) => counters.push((
            "redis",
            RedisCounter::start(&server.url()).expect("counter"),
        )),
        None => eprintln!("redis-server is not installed: skipping limited/redis_*"),
    }

    let mut group = c.benchmark_group("limited");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let clock = Clock::batch();
    let mut out = Vec::with_capacity(4096);
    for (name, counter) in counters {
        let settings = RedirectSettings::new(3600).with_counter(Some(counter.clone()));
        let mut handler = RedirectHandler::new(table.clone(), Arc::new(settings), None);
        let mut next = 0usize;
        group.bench_function(format!("{name}_one_at_a_time"), |b| {
            b.iter(|| {
                let work = limited_request(&mut handler, &codes, &mut next);
                runtime.block_on(async {
                    let answer = work.await;
                    out.clear();
                    answer(ResponseWriter::close_after(&mut out, &clock))
                })
            })
        });
        group.bench_function(format!("{name}_64_in_flight"), |b| {
            b.iter_custom(|iters| {
                let started = Instant::now();
                let mut left = iters;
                while left > 0 {
                    let batch = left.min(IN_FLIGHT);
                    let works: Vec<_> = (0..batch)
                        .map(|_| limited_request(&mut handler, &codes, &mut next))
                        .collect();
                    runtime.block_on(async {
                        for work in works {
                            let answer = work.await;
                            out.clear();
                            assert_eq!(answer(ResponseWriter::close_after(&mut out, &clock)), 302);
                        }
                    });
                    left -= batch;
                }
                started.elapsed()
            })
        });
        counter.stop();
    }
    group.finish();
}

/// Asks for the next limited link; its deferred answer.
fn limited_request(
    handler: &mut RedirectHandler,
    codes: &[[u8; CODE_LEN]],
    next: &mut usize,
) -> ricochet_engine::http::Deferred {
    let mut path = [b'/'; CODE_LEN + 1];
    path[1..].copy_from_slice(&codes[*next % codes.len()]);
    *next = next.wrapping_add(1);
    let request = get_request(&path, b"", b"curl/8.5.0", b"", PEER);
    let clock = Clock::batch();
    let mut unused = Vec::new();
    match handler.handle(&request, ResponseWriter::close_after(&mut unused, &clock)) {
        Handled::Deferred(work) => work,
        Handled::Answered(status) => panic!("a limited link answered {status} at once"),
    }
}

/// A `redis-server` on a free port for the `redis_*` cases, killed on drop.
struct BenchRedis {
    port: u16,
    child: std::process::Child,
}

impl BenchRedis {
    fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(Self { port, child })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pages served next to the links of the same table.
const PAGES: usize = 100_000;
/// Bytes of each page's document: a rendered page with a dozen items.
const PAGE_BYTES: usize = 6_000;

/// A link-in-bio page's answer (200 with its document, 304 to a
/// revalidation) against a plain redirect, in one table of 1,000,000 links
/// and 100,000 pages: `pages_1m/parse_and_handle/{redirect,page_200,page_304}`.
fn pages_against_redirects(c: &mut Criterion) {
    use ricochet_model::page::{PageBody, PagePart};
    let started = Instant::now();
    let table = LinkTable::with_capacity(Some(data::DOMAIN), LINKS + PAGES);
    for i in 0..LINKS as u64 {
        table.upsert(&data::record(i));
    }
    let filler = "<li><a class=\"button\" href=\"/abcdefg\">A link of the page</a></li>";
    for i in LINKS as u64..(LINKS + PAGES) as u64 {
        let mut record = data::record(i);
        let mut html = format!("<!doctype html><title>Page {i}</title><ul>");
        while html.len() < PAGE_BYTES {
            html.push_str(filler);
        }
        html.truncate(PAGE_BYTES);
        record.extensions.page = Some(PageBody {
            parts: vec![PagePart::always(html)],
        });
        table.upsert(&record);
    }
    eprintln!(
        "built {LINKS} links and {PAGES} pages in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut handler =
        RedirectHandler::new(Arc::new(table), Arc::new(RedirectSettings::new(3600)), None);
    let clock = Clock::batch();
    let links = data::shuffled_codes(LINKS, 3);
    let mut pages: Vec<[u8; CODE_LEN]> = (LINKS as u64..(LINKS + PAGES) as u64)
        .map(data::code)
        .collect();
    let mut rng = SplitMix64::new(17);
    for i in (1..pages.len()).rev() {
        pages.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    // Each page's ETag, read from a first answer, for its revalidation.
    let mut out = Vec::with_capacity(16 * 1024);
    let etags: Vec<String> = pages
        .iter()
        .map(|code| {
            let mut path = [b'/'; CODE_LEN + 1];
            path[1..].copy_from_slice(code);
            let request = get_request(&path, b"", b"curl/8.5.0", b"", PEER);
            out.clear();
            assert_eq!(
                status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock))),
                200
            );
            let head = std::str::from_utf8(&out[..out.len() - PAGE_BYTES]).expect("ASCII head");
            let line = head
                .lines()
                .find(|l| l.starts_with("ETag: "))
                .expect("an ETag");
            line["ETag: ".len()..].to_owned()
        })
        .collect();

    let mut group = c.benchmark_group("pages_1m");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    let mut requests = Requests::new(&links, CURL);
    group.bench_function("parse_and_handle/redirect", |b| {
        b.iter(|| {
            let request = parse(requests.next()).expect("valid request");
            out.clear();
            status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)))
        })
    });
    let mut requests = Requests::new(&pages, CURL);
    group.bench_function("parse_and_handle/page_200", |b| {
        b.iter(|| {
            let request = parse(requests.next()).expect("valid request");
            out.clear();
            status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)))
        })
    });
    // A browser's Accept-Encoding: the gzipped document.
    let gzip_template = b"GET /0000000 HTTP/1.1\r\nHost: go.example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n";
    let mut requests = Requests::new(&pages, gzip_template);
    group.bench_function("parse_and_handle/page_200_gzip", |b| {
        b.iter(|| {
            let request = parse(requests.next()).expect("valid request");
            out.clear();
            status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)))
        })
    });
    // Revalidations: the curl request with `If-None-Match` of that page,
    // the code and tag written into one buffer as `Requests` does (a
    // server reads each request from its connection's buffer).
    let mut request = format!(
        "GET /0000000 HTTP/1.1\r\nHost: go.example\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nIf-None-Match: {}\r\n\r\n",
        etags[0]
    )
    .into_bytes();
    let tag_at = request.len() - 4 - etags[0].len();
    assert!(etags.iter().all(|tag| tag.len() == etags[0].len()));
    let mut next = 0usize;
    group.bench_function("parse_and_handle/page_304", |b| {
        b.iter(|| {
            request[CODE_AT..CODE_AT + CODE_LEN].copy_from_slice(&pages[next]);
            request[tag_at..tag_at + etags[next].len()].copy_from_slice(etags[next].as_bytes());
            next = if next + 1 == pages.len() { 0 } else { next + 1 };
            let request = parse(&request).expect("valid request");
            out.clear();
            let status =
                status(handler.handle(&request, ResponseWriter::close_after(&mut out, &clock)));
            debug_assert_eq!(status, 304);
            status
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    redirect_path,
    limited_redirects,
    pages_against_redirects
);
criterion_main!(benches);
