//! Exact accounting against a test server: every request is answered or
//! counted as an error, status tallies match what the server sent, and a
//! redirect to the wrong target is an error, pipelined or not, on kept-alive
//! connections or a few requests per connection.

mod common;

use common::{load, run_once};
use ricochet_loadtest::test_util::{Answer, TestServer};
use ricochet_loadtest::{Popularity, TrafficShape};

const KEYS: &str = "domain,code,url,status
,a,https://a.example/,301
,b,https://b.example/x?y=1,302
,c,https://c.example/,301
,d,https://d.example/,301
";

fn server() -> TestServer {
    TestServer::builder()
        .redirect("/a", 301, "https://a.example/")
        .answer(
            "/b",
            Answer::ChunkedRedirect {
                status: 302,
                location: "https://b.example/x?y=1".into(),
            },
        )
        .redirect("/c", 301, "https://wrong.example/")
        .start()
}

fn sequential() -> TrafficShape {
    TrafficShape {
        popularity: Popularity::Sequential,
        ..TrafficShape::default()
    }
}

fn check_exact(depth: usize, threads: usize) {
    let server = server();
    let mut spec = load(8, 30_000);
    spec.depth = depth;
    spec.threads = threads;
    spec.max_requests = Some(4000);
    let result = run_once(server.addr(), KEYS, spec, sequential());
    assert_eq!(result.sent, 4000);
    assert_eq!(result.responses, 4000);
    assert_eq!(server.requests(), 4000);
    for path in ["/a", "/b", "/c", "/d"] {
        assert_eq!(server.path_count(path), 1000, "{path}");
    }
    let statuses: Vec<(u16, u64)> = result.statuses.iter().map(|(s, n)| (*s, *n)).collect();
    assert_eq!(statuses, vec![(301, 2000), (302, 1000), (404, 1000)]);
    assert_eq!(server.statuses().into_iter().collect::<Vec<_>>(), statuses);
    assert_eq!(result.errors.get("wrong_target"), Some(&1000));
    assert_eq!(result.errors.get("wrong_status"), Some(&1000));
    assert_eq!(result.errors.len(), 2, "{:?}", result.errors);
    assert_eq!(result.ok, 2000);
    assert_eq!(result.error_total, 2000);
}

#[test]
fn counts_are_exact_one_request_at_a_time() {
    check_exact(1, 1);
}

#[test]
fn counts_are_exact_pipelined_on_two_threads() {
    check_exact(8, 2);
}

#[test]
fn unknown_codes_expect_404_and_are_tallied() {
    let server = server();
    let mut spec = load(4, 30_000);
    spec.max_requests = Some(2000);
    let shape = TrafficShape {
        popularity: Popularity::Hot {
            keys: 1,
            share: 1.0,
        },
        unknown_share: 0.3,
        bot_share: 0.5,
        ..TrafficShape::default()
    };
    let result = run_once(server.addr(), KEYS, spec, shape);
    assert_eq!(result.responses, 2000);
    let unknown = result.statuses.get(&404).copied().unwrap_or(0);
    assert_eq!(unknown, server.statuses().get(&404).copied().unwrap_or(0));
    assert!(unknown > 400 && unknown < 800, "{unknown}");
    assert_eq!(
        result.statuses.get(&301).copied().unwrap_or(0),
        server.path_count("/a")
    );
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert_eq!(result.ok, 2000);
}

#[test]
fn a_connection_per_request_opens_exactly_one_per_request() {
    let server = server();
    let mut spec = load(1, 30_000);
    spec.max_requests = Some(200);
    spec.requests_per_connection = Some(1);
    let result = run_once(server.addr(), KEYS, spec, sequential());
    assert_eq!((result.sent, result.responses), (200, 200));
    assert_eq!(
        (result.connections_opened, server.connections()),
        (200, 200)
    );
    assert_eq!(result.tls_handshakes, 0);
    // Answers are judged as on kept-alive connections.
    assert_eq!(result.ok, 100);
    assert_eq!(result.errors.get("wrong_target"), Some(&50));
    assert_eq!(result.errors.get("wrong_status"), Some(&50));
    assert_eq!(result.errors.len(), 2, "{:?}", result.errors);
}

#[test]
fn pipelined_connections_close_after_their_share_of_requests() {
    let server = server();
    let mut spec = load(4, 30_000);
    spec.max_requests = Some(400);
    spec.depth = 2;
    spec.requests_per_connection = Some(4);
    let result = run_once(server.addr(), KEYS, spec, sequential());
    assert_eq!((result.sent, result.responses), (400, 400));
    assert_eq!(server.requests(), 400);
    // 100 connections carry the 400 requests; at the end up to three more
    // may open that no request is left for.
    assert!(
        (100..=103).contains(&result.connections_opened),
        "{}",
        result.connections_opened
    );
    assert!(server.connections() >= 100, "{}", server.connections());
    assert_eq!(result.errors.len(), 2, "{:?}", result.errors);
}
