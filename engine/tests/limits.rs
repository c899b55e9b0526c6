//! Click limits (`max_clicks`) over real sockets and a real redis-server:
//! exactly N redirects under 100 concurrent requests (one engine counting in
//! fjall, two engines sharing Redis), across a restart, with Redis down
//! (503, never a redirect), prefetches and crawler cards taking no use,
//! password links taking it on the redirect, the fallback or 410 once the
//! limit is reached, and links without a limit unaffected.

use std::net::SocketAddr;
use std::sync::Barrier;
use std::time::Duration;

use ricochet_engine::limits::{LimitCounter, RedisCounter, conformance};
use ricochet_engine::test_util::{
    Client, RedisServer, Response, TestEngine, count_in_redis, eventually, link,
};
use ricochet_model::behaviour::{Card, Rule};
use ricochet_model::{LinkRecord, RedirectStatus};

const SLACKBOT: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut client = Client::connect(addr);
    client.send(text.as_bytes());
    client.read_response(method == "HEAD").unwrap()
}

fn get(engine: &TestEngine, path: &str) -> Response {
    request(engine.addr(), "GET", path, &[])
}

fn limited(code: &str, max: u64) -> LinkRecord {
    let mut record = link("localhost", code, &format!("https://example.com/{code}"));
    record.extensions.click_limit = Some(max);
    record
}

fn is_redirect(response: &Response) -> bool {
    matches!(response.status, 301 | 302 | 303 | 307 | 308) && response.header("location").is_some()
}

/// Sends `count` GETs of `path` at once, spread over `engines`, each on its
/// own connection; the statuses.
fn storm(engines: &[&TestEngine], path: &str, count: usize) -> Vec<(u16, bool)> {
    let addrs: Vec<SocketAddr> = engines.iter().map(|engine| engine.addr()).collect();
    let barrier = Barrier::new(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|n| {
                let (addr, barrier) = (addrs[n % addrs.len()], &barrier);
                scope.spawn(move || {
                    let mut client = Client::connect(addr);
                    let text = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    barrier.wait();
                    client.send(text.as_bytes());
                    let response = client.read_response(false).unwrap();
                    (response.status, is_redirect(&response))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_gone_page(response: &Response) {
    assert_eq!(response.status, 410);
    assert_eq!(response.header("location"), None);
    assert_eq!(
        response.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(
        response.text().contains("no longer available"),
        "{}",
        response.text()
    );
}

#[test]
fn the_counter_suite_passes_against_redis_and_counts_outlive_a_counter() {
    let redis = RedisServer::start();
    let counter = RedisCounter::start(&redis.url()).unwrap();
    conformance::run(counter.as_ref());
    counter.stop();
    let again = RedisCounter::start(&redis.url()).unwrap();
    assert_eq!(again.used(1), Ok(5));
    assert_eq!(again.used(4), Ok(10));
}

#[test]
fn one_use_under_100_concurrent_requests_counted_in_fjall() {
    let engine = TestEngine::start();
    let record = limited("once", 1);
    engine.upsert(record.clone());
    let answers = storm(&[&engine], "/once", 100);
    let redirects = answers.iter().filter(|(_, redirect)| *redirect).count();
    assert_eq!(redirects, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|&(status, redirect)| redirect || status == 410),
        "{answers:?}"
    );
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(1));
}

#[test]
fn one_use_under_100_concurrent_requests_from_two_engines_sharing_redis() {
    let redis = RedisServer::start();
    let first = TestEngine::start_with(|c| count_in_redis(c, &redis.url()));
    let second = TestEngine::start_with(|c| count_in_redis(c, &redis.url()));
    let record = limited("once", 1);
    first.upsert(record.clone());
    second.upsert(record.clone());
    let answers = storm(&[&first, &second], "/once", 100);
    let redirects = answers.iter().filter(|(_, redirect)| *redirect).count();
    assert_eq!(redirects, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|&(status, redirect)| redirect || status == 410),
        "{answers:?}"
    );
    assert_eq!(first.engine().click_limits().used(record.id), Ok(1));

    // A limit of 3 over both engines: three redirects in all.
    let three = limited("three", 3);
    first.upsert(three.clone());
    second.upsert(three.clone());
    let answers = storm(&[&first, &second], "/three", 100);
    assert_eq!(answers.iter().filter(|(_, r)| *r).count(), 3, "{answers:?}");
}

#[test]
fn three_uses_across_a_restart_counted_in_fjall() {
    let mut engine = TestEngine::start();
    let mut record = limited("thrice", 3);
    record.status = RedirectStatus::MovedPermanently;
    engine.upsert(record.clone());

    let first = get(&engine, "/thrice");
    assert_eq!(first.status, 301);
    assert_eq!(
        first.header("location").as_deref(),
        Some("https://example.com/thrice")
    );
    assert_eq!(
        first.header("cache-control").as_deref(),
        Some("no-store"),
        "no cache may repeat a limited redirect"
    );
    let head = request(engine.addr(), "HEAD", "/thrice", &[]);
    assert_eq!(
        head.status, 301,
        "HEAD reveals the destination: it takes a use"
    );

    engine.restart();
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(2));
    assert_eq!(get(&engine, "/thrice").status, 301);
    assert_gone_page(&get(&engine, "/thrice"));
    engine.restart();
    assert_gone_page(&get(&engine, "/thrice"));
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(3));

    // The count is the link's, not the version's: an edit keeps it, a
    // raised limit grants the difference.
    record.url = "https://example.com/moved".into();
    engine.upsert(record.clone());
    assert_gone_page(&get(&engine, "/thrice"));
    record.extensions.click_limit = Some(4);
    engine.upsert(record.clone());
    let raised = get(&engine, "/thrice");
    assert_eq!(
        raised.header("location").as_deref(),
        Some("https://example.com/moved")
    );
    assert_gone_page(&get(&engine, "/thrice"));
}

#[test]
fn with_redis_down_a_limited_link_answers_503_and_never_redirects() {
    let mut redis = RedisServer::start();
    let engine = TestEngine::start_with(|c| count_in_redis(c, &redis.url()));
    engine.upsert(limited("promise", 5));
    engine.add("localhost", "plain", "https://example.com/plain");
    assert_eq!(get(&engine, "/promise").status, 302);

    redis.kill();
    for _ in 0..5 {
        let refused = get(&engine, "/promise");
        assert_eq!(refused.status, 503);
        assert_eq!(refused.header("location"), None);
        assert_eq!(refused.header("cache-control").as_deref(), Some("no-store"));
        assert_eq!(refused.header("retry-after").as_deref(), Some("1"));
    }
    assert_eq!(get(&engine, "/plain").status, 302, "plain links go on");

    redis.restart();
    assert!(
        eventually(Duration::from_secs(10), || get(&engine, "/promise").status
            == 302),
        "counting resumes once Redis is back"
    );
}

#[test]
fn prefetches_take_no_use() {
    let engine = TestEngine::start();
    let record = limited("preview", 1);
    engine.upsert(record.clone());
    for (name, value) in [
        ("Sec-Purpose", "prefetch"),
        ("Sec-Purpose", "prefetch;prerender"),
        ("Purpose", "prefetch"),
    ] {
        let declined = request(engine.addr(), "GET", "/preview", &[(name, value)]);
        assert_eq!(declined.status, 503, "{name}: {value}");
        assert_eq!(declined.header("location"), None);
        assert_eq!(
            declined.header("cache-control").as_deref(),
            Some("no-store")
        );
    }
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(0));
    let visit = get(&engine, "/preview");
    assert_eq!(visit.status, 302, "{visit:?} {}", visit.text());
    assert_gone_page(&get(&engine, "/preview"));
}

#[test]
fn a_reached_limit_answers_the_fallback_when_set_else_the_410_page() {
    let engine = TestEngine::start();
    let mut with_fallback = limited("fb", 1);
    with_fallback.extensions.fallback_url = Some("https://example.com/sold-out".into());
    engine.upsert(with_fallback);
    engine.upsert(limited("nofb", 1));

    assert_eq!(
        get(&engine, "/fb").header("location").as_deref(),
        Some("https://example.com/fb")
    );
    for _ in 0..2 {
        let after = get(&engine, "/fb");
        assert_eq!(after.status, 302);
        assert_eq!(
            after.header("location").as_deref(),
            Some("https://example.com/sold-out")
        );
        assert_eq!(after.header("cache-control").as_deref(), Some("no-store"));
    }
    assert_eq!(get(&engine, "/nofb").status, 302);
    assert_gone_page(&get(&engine, "/nofb"));
}

#[test]
fn crawlers_get_the_card_without_the_destination_and_take_no_use() {
    let engine = TestEngine::start();
    let mut record = limited("card", 1);
    record.extensions.card = Some(Card {
        title: Some("One-time invite".into()),
        description: None,
        image: None,
    });
    engine.upsert(record.clone());
    for _ in 0..3 {
        let card = request(engine.addr(), "GET", "/card", &[("User-Agent", SLACKBOT)]);
        assert_eq!(card.status, 200);
        let page = card.text();
        assert!(page.contains("One-time invite"), "{page}");
        assert!(!page.contains("example.com/card"), "{page}");
        assert!(!page.contains("refresh"), "{page}");
    }
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(0));
    assert_eq!(get(&engine, "/card").status, 302);
    assert_gone_page(&get(&engine, "/card"));
}

#[test]
fn password_links_take_the_use_on_the_redirect_not_on_the_form() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"test-salt-16byte").unwrap();
    let hash = hasher.hash_password(b"open", &salt).unwrap().to_string();

    let engine = TestEngine::start();
    let mut record = limited("locked", 1);
    record.extensions.password_hash = Some(hash);
    engine.upsert(record.clone());
    assert_eq!(get(&engine, "/locked").status, 200, "the form");
    let mut client = Client::connect(engine.addr());
    client.send(
        b"POST /locked HTTP/1.1\r\nHost: localhost\r\nContent-Length: 13\r\n\r\npassword=open",
    );
    let pass = client.read_response(false).unwrap();
    assert_eq!(pass.status, 303);
    let cookie = pass.header("set-cookie").unwrap();
    let cookie = cookie.split(';').next().unwrap();
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(0));
    let through = request(engine.addr(), "GET", "/locked", &[("Cookie", cookie)]);
    assert_eq!(
        through.header("location").as_deref(),
        Some("https://example.com/locked")
    );
    assert_eq!(engine.engine().click_limits().used(record.id), Ok(1));
    assert_gone_page(&request(
        engine.addr(),
        "GET",
        "/locked",
        &[("Cookie", cookie)],
    ));
}

#[test]
fn links_without_a_limit_are_unaffected() {
    let redis = RedisServer::start();
    let engine = TestEngine::start_with(|c| count_in_redis(c, &redis.url()));
    let plain = engine.add("localhost", "plain", "https://example.com/plain");
    let mut ruled = link("localhost", "ruled", "https://example.com/default");
    ruled.extensions.rules = vec![Rule {
        url: "https://example.com/ref".into(),
        conditions: vec![ricochet_model::behaviour::Condition::AnyValueQueryParam {
            key: "ref".into(),
        }],
        variants: Vec::new(),
    }];
    engine.upsert(ruled.clone());
    for _ in 0..50 {
        let answer = get(&engine, "/plain");
        assert_eq!(answer.status, 302);
        assert_eq!(answer.header("cache-control"), None);
        let answer = request(
            engine.addr(),
            "GET",
            "/ruled?ref=1",
            &[("Sec-Purpose", "prefetch")],
        );
        assert_eq!(answer.status, 302, "prefetches of unlimited links redirect");
        assert_eq!(
            answer.header("cache-control").as_deref(),
            Some("private, no-cache")
        );
    }
    let counter = engine.engine().click_limits();
    assert_eq!(counter.used(plain.id), Ok(0));
    assert_eq!(counter.used(ruled.id), Ok(0));
}
