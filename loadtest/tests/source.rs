//! `source`: a run's connections come from the local address it names, so
//! the server sees another client. Shown against an engine that allows one
//! connection per client, while the test holds 127.0.0.1's one.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::{load, run_once};
use ricochet_engine::test_util::TestEngine;
use ricochet_loadtest::TrafficShape;

const KEYS: &str = "localhost,a,https://a.example/,302\n";

#[test]
fn connections_come_from_the_source_address() {
    let engine = TestEngine::start_with(|c| c.server.clients.max_connections = 1);
    engine.add("localhost", "a", "https://a.example/");
    let mut held = engine
        .try_client_from(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .unwrap();
    assert_eq!(held.get("/a", "localhost").status, 302);

    let mut spec = load(4, 500);
    spec.source = vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))];
    let result = run_once(engine.addr(), KEYS, spec, TrafficShape::default());
    // 127.0.0.2 has one connection served; its other connections are refused.
    assert!(
        result.statuses.get(&302).is_some_and(|&n| n > 0),
        "{:?}",
        result.statuses
    );
    assert!(
        result.statuses.get(&429).is_some_and(|&n| n > 0),
        "{:?}",
        result.statuses
    );
    assert_eq!(held.get("/a", "localhost").status, 302);
}
