//! Link-in-bio pages over real HTTP: the document from memory with its
//! headers (ETag, no-cache, a strict CSP), 304 for a current copy, HEAD
//! without a body, views counted as `page_view` clicks (HEAD and prefetches
//! not), scheduled items appearing and disappearing on time without an
//! edit, a page surviving a restart, and a purge freeing the handle.

use std::time::Duration;

use ricochet_engine::clicks::{ClickReader, FjallSink};
use ricochet_engine::test_util::{Client, TestEngine, eventually, link};
use ricochet_model::LinkRecord;
use ricochet_model::clicks::Dimension;
use ricochet_model::page::{PageBody, PagePart};

fn page(code: &str, parts: Vec<PagePart>) -> LinkRecord {
    let mut record = link("localhost", code, &format!("http://localhost/{code}"));
    record.extensions.page = Some(PageBody { parts });
    record
}

fn request(client: &mut Client, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        raw.push_str(&format!("{name}: {value}\r\n"));
    }
    raw.push_str("\r\n");
    client.send(raw.as_bytes());
    client.read_response(method == "HEAD").unwrap()
}

type Response = ricochet_engine::test_util::Response;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

#[test]
fn pages_answer_from_memory_with_validators() {
    let mut engine = TestEngine::start();
    let html = "<!doctype html><title>Ada</title><a href=\"/x\">x</a>";
    engine.upsert(page("ada", vec![PagePart::always(html)]));
    let mut client = Client::connect(engine.addr());

    let first = request(&mut client, "GET", "/ada", &[]);
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), html);
    assert_eq!(
        first.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(first.header("cache-control").as_deref(), Some("no-cache"));
    let policy = first.header("content-security-policy").unwrap();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(!policy.contains("script-src"), "{policy}");
    assert_eq!(
        first.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(first.header("location").is_none());
    let etag = first.header("etag").unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    // A current copy: 304 with the validator, no body, the connection
    // still usable afterwards.
    let again = request(&mut client, "GET", "/ada", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(again.header("cache-control").as_deref(), Some("no-cache"));
    let weak = format!("W/{etag}");
    let listed = format!("\"stale\", {weak}");
    assert_eq!(
        request(&mut client, "GET", "/ada", &[("If-None-Match", &listed)]).status,
        304
    );
    let stale = request(
        &mut client,
        "GET",
        "/ada",
        &[("If-None-Match", "\"stale\"")],
    );
    assert_eq!((stale.status, stale.text().as_str()), (200, html));

    let head = request(&mut client, "HEAD", "/ada", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length").as_deref(),
        Some(html.len().to_string().as_str())
    );
    assert_eq!(head.header("etag").as_deref(), Some(etag.as_str()));

    // An edit changes the document and its tag; the old copy is stale.
    let edited = "<!doctype html><title>Ada L.</title>";
    engine.upsert(page("ada", vec![PagePart::always(edited)]));
    let after = request(&mut client, "GET", "/ada", &[("If-None-Match", &etag)]);
    assert_eq!((after.status, after.text().as_str()), (200, edited));
    assert_ne!(after.header("etag"), Some(etag.clone()));

    // Restarted without the control plane, the engine serves it from disk.
    engine.restart();
    let mut client = Client::connect(engine.addr());
    let restored = request(&mut client, "GET", "/ada", &[]);
    assert_eq!((restored.status, restored.text().as_str()), (200, edited));

    // A purged page is gone: its handle is free again.
    engine.purge("localhost", "ada");
    assert_eq!(request(&mut client, "GET", "/ada", &[]).status, 404);
}

#[test]
fn views_are_counted_as_page_view_clicks() {
    let mut engine = TestEngine::start_with(|c| c.clicks.node = "test-node".into());
    let record = page("me", vec![PagePart::always("<p>me</p>")]);
    let id = record.id;
    engine.upsert(record);
    let started = ricochet_model::now_millis();
    let mut client = Client::connect(engine.addr());
    let etag = request(&mut client, "GET", "/me", &[("User-Agent", FIREFOX)])
        .header("etag")
        .unwrap();
    let revalidated = [("User-Agent", FIREFOX), ("If-None-Match", etag.as_str())];
    assert_eq!(request(&mut client, "GET", "/me", &revalidated).status, 304);
    request(
        &mut client,
        "GET",
        "/me",
        &[("User-Agent", "Googlebot/2.1")],
    );
    // Not views: HEAD and a prefetch.
    request(&mut client, "HEAD", "/me", &[]);
    request(&mut client, "GET", "/me", &[("Sec-Purpose", "prefetch")]);
    drop(client);
    std::thread::sleep(Duration::from_millis(100));
    engine.stop();

    let store = FjallSink::open(&engine.data_dir().join("clicks")).unwrap();
    let until = ricochet_model::now_millis() + 20_000;
    let kinds = store
        .breakdown(id, started - 20_000, until, Dimension::Destination)
        .unwrap();
    assert_eq!(kinds.len(), 1, "{kinds:?}");
    assert_eq!(kinds[0].0, "page_view");
    assert_eq!((kinds[0].1.humans, kinds[0].1.bots), (2, 1));
}

#[test]
fn scheduled_items_appear_and_disappear_on_time() {
    let engine = TestEngine::start();
    let now = ricochet_model::now_millis();
    let (from, until) = (now + 1_500, now + 3_000);
    engine.upsert(page(
        "sale",
        vec![
            PagePart::always("<main>"),
            PagePart {
                html: "<a href=\"/deal\">Deal</a>".into(),
                from: Some(from),
                until: Some(until),
            },
            PagePart {
                html: "<p>soon</p>".into(),
                from: None,
                until: Some(from),
            },
            PagePart::always("</main>"),
        ],
    ));
    let mut client = Client::connect(engine.addr());
    let before = request(&mut client, "GET", "/sale", &[]);
    assert_eq!(before.text(), "<main><p>soon</p></main>");
    let before_tag = before.header("etag").unwrap();

    // No edit is made: the document changes at the instants alone.
    let mut during = None;
    assert!(eventually(Duration::from_secs(10), || {
        let answer = request(&mut client, "GET", "/sale", &[]);
        let shown = answer.text() == "<main><a href=\"/deal\">Deal</a></main>";
        if shown {
            during = Some((ricochet_model::now_millis(), answer));
        }
        shown
    }));
    let (seen_at, during) = during.unwrap();
    assert!(seen_at >= from, "shown {} ms early", from - seen_at);
    // The copy from before the window is stale now.
    assert_eq!(
        request(
            &mut client,
            "GET",
            "/sale",
            &[("If-None-Match", &before_tag)]
        )
        .status,
        200
    );
    let during_tag = during.header("etag").unwrap();
    assert_ne!(during_tag, before_tag);

    let mut gone_at = 0;
    assert!(eventually(Duration::from_secs(10), || {
        let shown = request(&mut client, "GET", "/sale", &[]).text();
        gone_at = ricochet_model::now_millis();
        shown == "<main></main>"
    }));
    assert!(gone_at >= until, "hidden {} ms early", until - gone_at);
}

#[test]
fn a_domain_dedicated_to_a_page_answers_its_root_with_it() {
    let engine = TestEngine::start();
    engine.upsert(page("ada", vec![PagePart::always("<p>Ada</p>")]));
    let mut client = Client::connect(engine.addr());
    assert_eq!(request(&mut client, "GET", "/", &[]).status, 404);

    let mut settings = ricochet_model::DomainSettings::empty("localhost");
    settings.root_page = Some("ada".into());
    settings.not_found_url = Some("https://example.com/missing".into());
    engine.set_domain(settings.clone());
    let root = request(&mut client, "GET", "/", &[]);
    assert_eq!((root.status, root.text().as_str()), (200, "<p>Ada</p>"));
    let etag = root.header("etag").unwrap();
    assert_eq!(
        request(&mut client, "GET", "/", &[("If-None-Match", &etag)]).status,
        304
    );
    // The handle still answers, and other paths are the domain's misses.
    assert_eq!(request(&mut client, "GET", "/ada", &[]).status, 200);
    let miss = request(&mut client, "GET", "/nope", &[]);
    assert_eq!(miss.status, 302);

    // Without the page (purged), the root is the domain's 404 again.
    engine.purge("localhost", "ada");
    assert_eq!(request(&mut client, "GET", "/", &[]).status, 404);
    settings.root_page = None;
    engine.set_domain(settings);
    assert_eq!(request(&mut client, "GET", "/", &[]).status, 404);
}

#[test]
fn browsers_get_the_page_gzipped_with_its_own_tag() {
    let engine = TestEngine::start();
    let html = format!(
        "<!doctype html><title>Ada</title><ul>{}</ul>",
        "<li><a class=\"button\" href=\"/abc\">A link</a></li>".repeat(60)
    );
    engine.upsert(page("ada", vec![PagePart::always(html.clone())]));
    let mut client = Client::connect(engine.addr());
    let browser = [("Accept-Encoding", "gzip, deflate, br, zstd")];
    let packed = request(&mut client, "GET", "/ada", &browser);
    assert_eq!(packed.status, 200);
    assert_eq!(packed.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(packed.header("vary").as_deref(), Some("Accept-Encoding"));
    assert!(
        packed.body.len() * 4 < html.len(),
        "{} bytes",
        packed.body.len()
    );
    let mut unpacked = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&packed.body[..]),
        &mut unpacked,
    )
    .unwrap();
    assert_eq!(unpacked, html);

    let plain = request(
        &mut client,
        "GET",
        "/ada",
        &[("Accept-Encoding", "gzip;q=0")],
    );
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.text(), html);
    let (packed_tag, plain_tag) = (
        packed.header("etag").unwrap(),
        plain.header("etag").unwrap(),
    );
    assert_ne!(packed_tag, plain_tag);
    // A copy in either encoding is current; the 304 names the encoding asked for.
    let again = request(
        &mut client,
        "GET",
        "/ada",
        &[("Accept-Encoding", "gzip"), ("If-None-Match", &plain_tag)],
    );
    assert_eq!(again.status, 304);
    assert_eq!(again.header("etag"), Some(packed_tag.clone()));
    let head = request(&mut client, "HEAD", "/ada", &browser);
    assert_eq!(
        head.header("content-length").as_deref(),
        Some(packed.body.len().to_string().as_str())
    );
}
