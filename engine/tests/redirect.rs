//! The redirect port over real sockets: statuses, Location, caching headers,
//! HEAD, query forwarding, Host routing, keep-alive and pipelining.

use std::time::Duration;

use ricochet_engine::test_util::{Client, TestEngine, exchange, link};
use ricochet_model::{LinkState, RedirectStatus, now_millis};

#[test]
fn every_redirect_status_with_its_location() {
    let engine = TestEngine::start();
    for (code, status) in [
        ("p301", RedirectStatus::MovedPermanently),
        ("p302", RedirectStatus::Found),
        ("p307", RedirectStatus::TemporaryRedirect),
        ("p308", RedirectStatus::PermanentRedirect),
    ] {
        let mut record = link("localhost", code, &format!("https://example.com/{code}"));
        record.status = status;
        engine.upsert(record);
    }
    for (code, status) in [("p301", 301), ("p302", 302), ("p307", 307), ("p308", 308)] {
        let response = engine.get(&format!("/{code}"), "localhost");
        assert_eq!(response.status, status, "{code}");
        assert_eq!(
            response.header("location").as_deref(),
            Some(format!("https://example.com/{code}").as_str())
        );
        assert_eq!(response.header("content-length").as_deref(), Some("0"));
        assert!(response.body.is_empty());
        let date = response.header("date").expect("a Date header");
        assert!(httpdate::parse_http_date(&date).is_ok(), "{date}");
        let cache = response.header("cache-control");
        if status == 301 || status == 308 {
            assert_eq!(cache.as_deref(), Some("public, max-age=3600"), "{code}");
        } else {
            assert_eq!(cache, None, "{code} must not be cacheable");
        }
    }
}

#[test]
fn permanent_max_age_is_configurable() {
    let engine = TestEngine::start_with(|c| c.redirect.permanent_max_age = Duration::from_secs(60));
    let mut record = link("localhost", "perm", "https://example.com/");
    record.status = RedirectStatus::MovedPermanently;
    engine.upsert(record);
    let response = engine.get("/perm", "localhost");
    assert_eq!(
        response.header("cache-control").as_deref(),
        Some("public, max-age=60")
    );
}

#[test]
fn unknown_disabled_deleted_and_expired_links() {
    let engine = TestEngine::start();
    assert_eq!(engine.get("/nothing", "localhost").status, 404);

    let mut disabled = link("localhost", "off", "https://example.com/");
    disabled.state = LinkState::Disabled;
    engine.upsert(disabled);
    let mut deleted = link("localhost", "gone", "https://example.com/");
    deleted.state = LinkState::Deleted;
    engine.upsert(deleted);
    let mut expired = link("localhost", "old", "https://example.com/");
    expired.expires_at = Some(now_millis() - 1_000);
    engine.upsert(expired);
    let mut later = link("localhost", "later", "https://example.com/later");
    later.expires_at = Some(now_millis() + 3_600_000);
    engine.upsert(later);

    for code in ["off", "gone", "old"] {
        let response = engine.get(&format!("/{code}"), "localhost");
        assert_eq!(response.status, 410, "{code}");
        assert_eq!(response.header("location"), None);
        assert_eq!(
            response.header("cache-control").as_deref(),
            Some("no-store")
        );
        assert_eq!(
            response
                .header("content-length")
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            response.body.len()
        );
    }
    assert_eq!(engine.get("/later", "localhost").status, 302);
}

#[test]
fn a_link_expires_while_the_engine_runs() {
    let engine = TestEngine::start();
    let mut soon = link("localhost", "soon", "https://example.com/");
    soon.expires_at = Some(now_millis() + 300);
    engine.upsert(soon);
    assert_eq!(engine.get("/soon", "localhost").status, 302);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(engine.get("/soon", "localhost").status, 410);
}

#[test]
fn edits_and_purges_are_served_at_once() {
    let engine = TestEngine::start();
    let mut record = engine.add("localhost", "edit", "https://one.example/");
    assert_eq!(
        engine
            .get("/edit", "localhost")
            .header("location")
            .as_deref(),
        Some("https://one.example/")
    );
    record.url = "https://two.example/".into();
    record.status = RedirectStatus::TemporaryRedirect;
    engine.upsert(record);
    let response = engine.get("/edit", "localhost");
    assert_eq!(response.status, 307);
    assert_eq!(
        response.header("location").as_deref(),
        Some("https://two.example/")
    );
    engine.purge("localhost", "edit");
    assert_eq!(engine.get("/edit", "localhost").status, 404);
}

#[test]
fn head_answers_like_get_without_a_body() {
    let engine = TestEngine::start();
    engine.add("localhost", "h", "https://example.com/h");
    let mut client = Client::connect(engine.addr());
    let head = client.head("/h", "localhost");
    assert_eq!(head.status, 302);
    assert_eq!(
        head.header("location").as_deref(),
        Some("https://example.com/h")
    );
    // A 404 has a body on GET; on HEAD only its length is announced.
    let missing = client.head("/missing", "localhost");
    assert_eq!(missing.status, 404);
    let announced: usize = missing.header("content-length").unwrap().parse().unwrap();
    assert!(announced > 0);
    // The next response on the connection starts right away: no body was sent.
    let next = client.get("/h", "localhost");
    assert_eq!(next.status, 302);
    assert!(client.leftover().is_empty());
    let get = client.get("/missing", "localhost");
    assert_eq!(get.body.len(), announced);
}

#[test]
fn query_strings_are_forwarded_when_the_link_asks() {
    let engine = TestEngine::start();
    let mut plain = link("localhost", "fwd", "https://example.com/landing");
    plain.forward_query = true;
    engine.upsert(plain);
    let mut with_query = link("localhost", "fwdq", "https://example.com/l?ref=a#top");
    with_query.forward_query = true;
    engine.upsert(with_query);
    engine.add("localhost", "nofwd", "https://example.com/fixed");

    let cases = [
        (
            "/fwd?utm_source=x&b=2",
            "https://example.com/landing?utm_source=x&b=2",
        ),
        ("/fwd", "https://example.com/landing"),
        ("/fwd?", "https://example.com/landing"),
        (
            "/fwdq?utm_medium=m",
            "https://example.com/l?ref=a&utm_medium=m#top",
        ),
        ("/nofwd?utm_source=x", "https://example.com/fixed"),
        // An encoded NUL, LF or CR is never forwarded: the destination alone.
        ("/fwd?a=%00b", "https://example.com/landing"),
        (
            "/fwd?a=1&b=%0d%0aSet-Cookie:x",
            "https://example.com/landing",
        ),
        ("/fwdq?x=%0A", "https://example.com/l?ref=a#top"),
        // Other encodings pass as sent.
        ("/fwd?q=%20%26", "https://example.com/landing?q=%20%26"),
    ];
    for (path, expected) in cases {
        let response = engine.get(path, "localhost");
        assert_eq!(response.status, 302, "{path}");
        assert_eq!(
            response.header("location").as_deref(),
            Some(expected),
            "{path}"
        );
    }
}

#[test]
fn a_forwarded_query_that_would_make_the_location_too_long_is_dropped() {
    let engine = TestEngine::start();
    let mut link = link("localhost", "fwd", "https://example.com/landing#part");
    link.forward_query = true;
    engine.upsert(link);
    let base = "https://example.com/landing".len() + 1 + "#part".len();
    // The whole Location may be 4,096 bytes: up to that the query is forwarded.
    let fits = format!("q={}", "a".repeat(4096 - base - 2));
    let response = engine.get(&format!("/fwd?{fits}"), "localhost");
    let location = response.header("location").unwrap();
    assert_eq!(location.len(), 4096);
    assert_eq!(location, format!("https://example.com/landing?{fits}#part"));
    let over = format!("{fits}a");
    let response = engine.get(&format!("/fwd?{over}"), "localhost");
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location").as_deref(),
        Some("https://example.com/landing#part")
    );
}

#[test]
fn host_routing_and_the_default_domain() {
    let engine = TestEngine::start();
    engine.add("localhost", "same", "https://default.example/");
    engine.add("brand.example", "same", "https://brand.example/landing");
    engine.add("brand.example", "only", "https://brand.example/only");

    let location = |path: &str, host: &str| {
        let response = engine.get(path, host);
        (response.status, response.header("location"))
    };
    assert_eq!(
        location("/same", "brand.example"),
        (302, Some("https://brand.example/landing".into()))
    );
    assert_eq!(
        location("/same", "BRAND.Example:8080"),
        (302, Some("https://brand.example/landing".into()))
    );
    assert_eq!(
        location("/same", "brand.example."),
        (302, Some("https://brand.example/landing".into()))
    );
    // A Host with no links of its own is served from the default domain.
    assert_eq!(
        location("/same", "127.0.0.1"),
        (302, Some("https://default.example/".into()))
    );
    // A Host with links does not fall back.
    assert_eq!(location("/only", "localhost").0, 404);
    assert_eq!(location("/nope", "brand.example").0, 404);
    // Absolute-form targets name the host themselves.
    let response = exchange(
        engine.addr(),
        b"GET http://brand.example/only HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(
        response.header("location").as_deref(),
        Some("https://brand.example/only")
    );
}

#[test]
fn without_a_default_domain_unknown_hosts_get_404() {
    let engine = TestEngine::start_with(|c| c.redirect.default_domain = String::new());
    engine.add("localhost", "x", "https://example.com/");
    assert_eq!(engine.get("/x", "localhost").status, 302);
    assert_eq!(engine.get("/x", "127.0.0.1").status, 404);
}

#[test]
fn idn_domains_are_matched_in_punycode() {
    let engine = TestEngine::start();
    engine.add("bücher.example", "b", "https://bücher.example/straße");
    let response = engine.get("/b", "xn--bcher-kva.example");
    assert_eq!(response.status, 302);
    assert_eq!(
        response.header("location").as_deref(),
        Some("https://xn--bcher-kva.example/stra%C3%9Fe")
    );
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let engine = TestEngine::start();
    engine.add("localhost", "k", "https://example.com/k");
    let mut client = Client::connect(engine.addr());
    for _ in 0..100 {
        let response = client.get("/k", "localhost");
        assert_eq!(response.status, 302);
        assert_eq!(response.header("connection"), None);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let engine = TestEngine::start();
    engine.add("localhost", "a", "https://example.com/a");
    engine.add("localhost", "b", "https://example.com/b");
    let mut client = Client::connect(engine.addr());
    let mut batch = Vec::new();
    let order = ["a", "b", "missing", "a", "b"];
    for code in order {
        batch.extend_from_slice(
            format!("GET /{code} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
        );
    }
    batch.extend_from_slice(b"HEAD /a HTTP/1.1\r\nHost: localhost\r\n\r\n");
    client.send(&batch);
    for code in order {
        let response = client.read_response(false).unwrap();
        match code {
            "missing" => assert_eq!(response.status, 404),
            _ => assert_eq!(
                response.header("location"),
                Some(format!("https://example.com/{code}"))
            ),
        }
    }
    let head = client.read_response(true).unwrap();
    assert_eq!(
        head.header("location").as_deref(),
        Some("https://example.com/a")
    );
}

#[test]
fn connection_close_and_http_1_0() {
    let engine = TestEngine::start();
    engine.add("localhost", "c", "https://example.com/c");

    let mut client = Client::connect(engine.addr());
    client.send(b"GET /c HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let response = client.read_response(false).unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert!(client.closed_within(Duration::from_secs(5)));

    let mut old = Client::connect(engine.addr());
    old.send(b"GET /c HTTP/1.0\r\n\r\n");
    let response = old.read_response(false).unwrap();
    assert_eq!(
        response.status, 302,
        "HTTP/1.0 without Host uses the default domain"
    );
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert!(old.closed_within(Duration::from_secs(5)));

    let mut kept = Client::connect(engine.addr());
    kept.send(b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let response = kept.read_response(false).unwrap();
    assert_eq!(response.header("connection").as_deref(), Some("keep-alive"));
    kept.send(b"GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(kept.read_response(false).unwrap().status, 302);
}

#[test]
fn other_methods_get_405_with_allow() {
    let engine = TestEngine::start();
    engine.add("localhost", "m", "https://example.com/");
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let response = exchange(
            engine.addr(),
            format!("{method} /m HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow").as_deref(), Some("GET, HEAD"));
    }
}

#[test]
fn a_get_with_a_small_body_is_answered_and_the_body_skipped() {
    let engine = TestEngine::start();
    engine.add("localhost", "body", "https://example.com/");
    let mut client = Client::connect(engine.addr());
    client.send(b"GET /body HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(client.read_response(false).unwrap().status, 302);
    assert_eq!(client.get("/body", "localhost").status, 302);
}

#[test]
fn admin_port_reports_health_readiness_and_metrics() {
    let engine = TestEngine::start();
    engine.add("localhost", "m1", "https://example.com/");
    engine.add("other.example", "m2", "https://example.com/");
    assert_eq!(engine.admin_get("/healthz").status, 200);
    assert_eq!(engine.admin_get("/readyz").status, 200);
    assert_eq!(engine.admin_get("/nope").status, 404);
    for _ in 0..3 {
        engine.get("/m1", "localhost");
    }
    engine.get("/missing", "localhost");
    let metrics = engine.admin_get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(
        engine.metric("ricochet_engine_requests_total{class=\"3xx\"}"),
        Some(3.0)
    );
    assert_eq!(
        engine.metric("ricochet_engine_requests_total{class=\"4xx\"}"),
        Some(1.0)
    );
    assert_eq!(engine.metric("ricochet_engine_redirects_total"), Some(3.0));
    assert_eq!(engine.metric("ricochet_engine_not_found_total"), Some(1.0));
    assert_eq!(engine.metric("ricochet_engine_links"), Some(2.0));
    assert_eq!(engine.metric("ricochet_engine_domains"), Some(2.0));
    assert_eq!(
        engine.metric("ricochet_engine_last_applied_version"),
        Some(2.0)
    );
    assert_eq!(engine.metric("ricochet_engine_ready"), Some(1.0));
    assert_eq!(engine.metric("ricochet_engine_workers"), Some(2.0));
    assert!(engine.metric("ricochet_engine_load_seconds").is_some());
}

#[test]
fn workers_share_the_port() {
    let engine = TestEngine::start_with(|c| c.server.workers = 4);
    engine.add("localhost", "w", "https://example.com/");
    for _ in 0..64 {
        assert_eq!(engine.get("/w", "localhost").status, 302);
    }
    let body = engine.admin_get("/metrics").text();
    let busy = body
        .lines()
        .filter(|l| l.starts_with("ricochet_engine_worker_requests_total{"))
        .filter(|l| !l.ends_with(" 0"))
        .count();
    assert!(busy >= 2, "connections spread over workers:\n{body}");
}
