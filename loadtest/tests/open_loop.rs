//! The open loop holds its rate, and its latency, measured from when each
//! request should have left, shows a 200 ms server stall in the high
//! percentiles where a closed loop hides it.

mod common;

use std::time::Duration;

use common::{load, run_once};
use ricochet_loadtest::test_util::TestServer;
use ricochet_loadtest::{Mode, TrafficShape};

const KEYS: &str = ",a,https://a.example/,301\n";

#[test]
fn open_loop_holds_the_requested_rate() {
    let server = TestServer::builder()
        .redirect("/a", 301, "https://a.example/")
        .start();
    let mut spec = load(16, 2000);
    spec.mode = Mode::Open { rate: 2000.0 };
    let result = run_once(server.addr(), KEYS, spec, TrafficShape::default());
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert!(
        (3800..=4200).contains(&result.responses),
        "{} responses",
        result.responses
    );
    let rate = result.responses as f64 / 2.0;
    assert!((1900.0..=2100.0).contains(&rate), "{rate} req/s");
    assert!(
        (1900.0..=2100.0).contains(&result.throughput),
        "{}",
        result.throughput
    );
}

#[test]
fn a_stall_shows_in_the_open_loop_and_hides_in_the_closed_loop() {
    let stall = Duration::from_millis(200);
    // Open loop: 2,000 req/s for 2 s; every connection stalls 200 ms once.
    let server = TestServer::builder()
        .redirect("/a", 301, "https://a.example/")
        .stall_after(1000, stall)
        .start();
    let mut spec = load(16, 2000);
    spec.mode = Mode::Open { rate: 2000.0 };
    let open = run_once(server.addr(), KEYS, spec, TrafficShape::default());
    assert_eq!(open.error_total, 0, "{:?}", open.errors);
    // About 400 requests were due during the stall: about 10 % of all,
    // with latencies spread from 200 ms down to nothing.
    assert!(
        open.latency_ms.p99 >= 100.0,
        "open p99 {} ms",
        open.latency_ms.p99
    );
    assert!(
        open.latency_ms.max >= 190.0,
        "open max {} ms",
        open.latency_ms.max
    );

    // Closed loop, one connection: only the one request caught in the stall
    // is slow, and the percentiles look fine.
    let server = TestServer::builder()
        .redirect("/a", 301, "https://a.example/")
        .stall_after(1000, stall)
        .start();
    let closed = run_once(server.addr(), KEYS, load(1, 2000), TrafficShape::default());
    assert_eq!(closed.error_total, 0, "{:?}", closed.errors);
    assert!(closed.responses > 2000, "{}", closed.responses);
    assert!(
        closed.latency_ms.max >= 190.0,
        "closed max {} ms",
        closed.latency_ms.max
    );
    assert!(
        closed.latency_ms.p99 < 50.0,
        "closed p99 {} ms",
        closed.latency_ms.p99
    );
}
