//! Click limits (`max_clicks`) end to end: a real redis-server, the control
//! plane publishing on it, and two engines following it that count uses in
//! that Redis. Links created over the API with `max_clicks` 1 and 5 redirect
//! exactly that many times under 100 concurrent requests spread over both
//! engines; every other request gets the limit-reached answer (410, or the
//! 302 to the `fallback_url`). The count lives in Redis: an engine restarted
//! on its store, and a fresh engine with an empty store, both answer the
//! reached limit at once. A link without `max_clicks` on the same engines
//! redirects all 100 requests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ricochet_control::test_util::{ApiClient, RedisServer, TestControl};
use ricochet_engine::test_util::{Client, Response, TestEngine, eventually};
use ricochet_model::bus::{RedisBus, UpdateBus};
use serde_json::json;

const CHANNEL: &str = "test:changes";
const REQUESTS: usize = 100;

struct Cluster {
    redis: RedisServer,
    control: TestControl,
    engines: Vec<TestEngine>,
}

impl Cluster {
    fn start() -> Self {
        let redis = RedisServer::start();
        let bus: Arc<dyn UpdateBus> = Arc::new(RedisBus::new(&redis.url(), CHANNEL).unwrap());
        let control = TestControl::start_with(
            |c| {
                c.bus.url = redis.url();
                c.bus.channel = CHANNEL.into();
                c.rate_limit.requests_per_second = 1_000_000;
                c.rate_limit.burst = 1_000_000;
            },
            bus,
        );
        let mut cluster = Self {
            redis,
            control,
            engines: Vec::new(),
        };
        for _ in 0..2 {
            let engine = cluster.engine();
            cluster.engines.push(engine);
        }
        cluster
    }

    /// A new engine with its own empty store, following the control plane
    /// and counting click limits in the cluster's Redis (its `sync.bus`).
    fn engine(&self) -> TestEngine {
        TestEngine::start_with(|c| {
            c.sync.control_url = self.control.base_url();
            c.sync.bus = self.redis.url();
            c.sync.channel = CHANNEL.into();
            c.sync.cluster_token = self.control.control().cluster_token().to_owned();
            // Long enough that only the bus (and the catch-up at start) can
            // explain an engine having the links within the tests' timeouts.
            c.sync.poll_interval = Duration::from_secs(600);
        })
    }

    fn api(&self) -> ApiClient {
        self.control.client()
    }
}

/// A link created over the API.
struct Created {
    id: u64,
    host: String,
    path: String,
}

fn create(api: &ApiClient, body: serde_json::Value) -> Created {
    let created = api.post("/api/v1/links", &body);
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["max_clicks"], body["max_clicks"],
        "{}",
        created.text
    );
    Created {
        id: created.body["id"].as_u64().unwrap(),
        host: created.body["domain"].as_str().unwrap().to_owned(),
        path: format!("/{}", created.body["code"].as_str().unwrap()),
    }
}

/// One request on a fresh connection; the raw client never follows redirects.
fn request(addr: SocketAddr, method: &str, link: &Created, headers: &[(&str, &str)]) -> Response {
    let mut text = format!("{method} {} HTTP/1.1\r\nHost: {}\r\n", link.path, link.host);
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut client = Client::connect(addr);
    client.send(text.as_bytes());
    client.read_response(method == "HEAD").unwrap()
}

fn get(engine: &TestEngine, link: &Created) -> Response {
    request(engine.addr(), "GET", link, &[])
}

/// Waits until `engine` serves the limited `link`, without taking a use: a
/// prefetch of a limited link is declined with 503 and `Vary` (an unknown
/// link is 404, a link without a limit redirects).
fn wait_until_limited_link_is_served(engine: &TestEngine, link: &Created) {
    let declined = |r: &Response| {
        r.status == 503 && r.header("vary").as_deref() == Some("Sec-Purpose, Purpose")
    };
    let served = eventually(Duration::from_secs(10), || {
        declined(&request(
            engine.addr(),
            "GET",
            link,
            &[("Sec-Purpose", "prefetch")],
        ))
    });
    let last = request(engine.addr(), "GET", link, &[("Sec-Purpose", "prefetch")]);
    assert!(served, "{} not served as limited: {last:?}", link.path);
}

/// Sends `count` GETs of `link` at once, spread evenly over `engines`, each
/// on its own connection and thread; the responses, in no particular order.
fn storm(engines: &[TestEngine], link: &Created, count: usize) -> Vec<Response> {
    let addrs: Vec<SocketAddr> = engines.iter().map(TestEngine::addr).collect();
    let text = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", link.path, link.host);
    let barrier = Barrier::new(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|n| {
                let (addr, barrier, text) = (addrs[n % addrs.len()], &barrier, &text);
                scope.spawn(move || {
                    let mut client = Client::connect(addr);
                    barrier.wait();
                    client.send(text.as_bytes());
                    client.read_response(false).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A granted redirect of a limited link: its status, its destination, and
/// `no-store` so no cache repeats a redirect nobody counted.
fn is_granted(response: &Response, status: u16, destination: &str) -> bool {
    response.status == status
        && response.header("location").as_deref() == Some(destination)
        && response.header("cache-control").as_deref() == Some("no-store")
}

/// The limit-reached answer of a link with a fallback: 302 to it, `no-store`.
fn is_fallback(response: &Response, fallback: &str) -> bool {
    response.status == 302
        && response.header("location").as_deref() == Some(fallback)
        && response.header("cache-control").as_deref() == Some("no-store")
}

/// The limit-reached answer of a link without a fallback: the 410 page.
fn is_gone(response: &Response) -> bool {
    response.status == 410
        && response.header("location").is_none()
        && response.header("cache-control").as_deref() == Some("no-store")
        && response.text().contains("no longer available")
}

fn summary(responses: &[Response]) -> Vec<(u16, Option<String>)> {
    responses
        .iter()
        .map(|r| (r.status, r.header("location")))
        .collect()
}

/// `GET key` on the Redis at `url` over raw RESP; the value as text.
fn redis_get(url: &str, key: &str) -> Option<String> {
    let addr = url
        .trim_start_matches("redis://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let command = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    stream.write_all(command.as_bytes()).unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 256];
    // A bulk string `$N\r\n<value>\r\n`, or the nil `$-1\r\n`.
    loop {
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "Redis closed the connection");
        reply.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&reply).into_owned();
        if text == "$-1\r\n" {
            return None;
        }
        if let Some((head, rest)) = text.split_once("\r\n") {
            let len: usize = head
                .strip_prefix('$')
                .unwrap_or_else(|| panic!("unexpected Redis reply {text:?}"))
                .parse()
                .unwrap();
            if rest.len() >= len + 2 {
                return Some(rest[..len].to_owned());
            }
        }
    }
}

fn clicks_used_in_redis(cluster: &Cluster, link: &Created) -> Option<String> {
    redis_get(
        &cluster.redis.url(),
        &format!("ricochet:clicks-used:{}", link.id),
    )
}

#[test]
fn max_clicks_are_exact_across_two_engines_sharing_redis_and_outlive_a_restart() {
    let mut cluster = Cluster::start();
    let api = cluster.api();
    let once = create(
        &api,
        json!({"url": "https://e.com/once", "code": "once", "status": 307, "max_clicks": 1}),
    );
    let five = create(
        &api,
        json!({
            "url": "https://e.com/five", "code": "five", "status": 301, "max_clicks": 5,
            "fallback_url": "https://e.com/sold-out",
        }),
    );
    let plain = create(&api, json!({"url": "https://e.com/plain", "code": "plain"}));

    for engine in &cluster.engines {
        wait_until_limited_link_is_served(engine, &once);
        wait_until_limited_link_is_served(engine, &five);
        assert!(
            eventually(Duration::from_secs(10), || {
                get(engine, &plain).header("location").as_deref() == Some("https://e.com/plain")
            }),
            "the plain link reached the engine"
        );
        for link in [&once, &five, &plain] {
            assert_eq!(engine.engine().click_limits().used(link.id), Ok(0));
        }
    }

    // max_clicks 1: exactly one redirect, 99 times the 410 page.
    let answers = storm(&cluster.engines, &once, REQUESTS);
    let granted = answers
        .iter()
        .filter(|r| is_granted(r, 307, "https://e.com/once"))
        .count();
    let gone = answers.iter().filter(|r| is_gone(r)).count();
    assert_eq!(granted, 1, "{:?}", summary(&answers));
    assert_eq!(gone, REQUESTS - 1, "{:?}", summary(&answers));

    // max_clicks 5 with a fallback: exactly five redirects, 95 times the
    // fallback.
    let answers = storm(&cluster.engines, &five, REQUESTS);
    let granted = answers
        .iter()
        .filter(|r| is_granted(r, 301, "https://e.com/five"))
        .count();
    let fallback = answers
        .iter()
        .filter(|r| is_fallback(r, "https://e.com/sold-out"))
        .count();
    assert_eq!(granted, 5, "{:?}", summary(&answers));
    assert_eq!(fallback, REQUESTS - 5, "{:?}", summary(&answers));

    // The counts are in Redis, one key per link, and both engines read them.
    assert_eq!(clicks_used_in_redis(&cluster, &once).as_deref(), Some("1"));
    assert_eq!(clicks_used_in_redis(&cluster, &five).as_deref(), Some("5"));
    for engine in &cluster.engines {
        let counter = engine.engine().click_limits();
        assert_eq!(counter.used(once.id), Ok(1));
        assert_eq!(counter.used(five.id), Ok(5));
    }

    // No max_clicks: all 100 redirect, on the same engines, and nothing is
    // counted.
    let answers = storm(&cluster.engines, &plain, REQUESTS);
    let redirected = answers
        .iter()
        .filter(|r| {
            r.status == 302 && r.header("location").as_deref() == Some("https://e.com/plain")
        })
        .count();
    assert_eq!(redirected, REQUESTS, "{:?}", summary(&answers));
    assert_eq!(clicks_used_in_redis(&cluster, &plain), None);
    assert_eq!(
        cluster.engines[0].engine().click_limits().used(plain.id),
        Ok(0)
    );

    // An engine restarted on its store still answers the reached limits:
    // its new plans know nothing, the count in Redis does.
    cluster.engines[1].restart();
    for _ in 0..3 {
        assert!(is_gone(&get(&cluster.engines[1], &once)));
        assert!(is_fallback(
            &get(&cluster.engines[1], &five),
            "https://e.com/sold-out"
        ));
    }
    assert_eq!(
        get(&cluster.engines[1], &plain)
            .header("location")
            .as_deref(),
        Some("https://e.com/plain")
    );

    // So does a fresh engine with an empty store on the same Redis, once it
    // has caught up with the control plane (the plain link was created last).
    let fresh = cluster.engine();
    assert!(
        eventually(Duration::from_secs(10), || {
            get(&fresh, &plain).header("location").as_deref() == Some("https://e.com/plain")
        }),
        "the fresh engine caught up"
    );
    let answers = storm(std::slice::from_ref(&fresh), &once, 10);
    assert!(answers.iter().all(is_gone), "{:?}", summary(&answers));
    let answers = storm(std::slice::from_ref(&fresh), &five, 10);
    assert!(
        answers
            .iter()
            .all(|r| is_fallback(r, "https://e.com/sold-out")),
        "{:?}",
        summary(&answers)
    );

    // Nothing after the storms took another use.
    assert_eq!(clicks_used_in_redis(&cluster, &once).as_deref(), Some("1"));
    assert_eq!(clicks_used_in_redis(&cluster, &five).as_deref(), Some("5"));
}
