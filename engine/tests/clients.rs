//! Per-client limits (`[server.clients]`) over real sockets: a client over
//! its connection cap or its request rate is refused while another address
//! (127.0.0.2: Linux's loopback answers all of 127.0.0.0/8) is still served,
//! limits that are off refuse nothing, and `/metrics` counts each refusal.

use std::net::IpAddr;
use std::time::Duration;

use ricochet_engine::test_util::{Client, TestEngine, Transport, eventually};

const ABUSER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 1)));
const NEIGHBOUR: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2)));
const GET_OK: &[u8] = b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n";

fn engine_with_link(
    transport: Transport,
    configure: impl FnOnce(&mut ricochet_engine::EngineConfig),
) -> TestEngine {
    let engine = TestEngine::start_over(transport, configure);
    engine.add("localhost", "ok", "https://example.com/ok");
    engine
}

fn client(engine: &TestEngine, source: Option<IpAddr>) -> Client {
    engine.try_client_from(source).expect("a connection")
}

fn served(engine: &TestEngine, source: Option<IpAddr>) -> bool {
    let Ok(mut client) = engine.try_client_from(source) else {
        return false;
    };
    client.write(GET_OK).is_ok() && client.read_response(false).is_ok_and(|r| r.status == 302)
}

#[test]
fn over_the_connection_cap_a_client_is_refused_and_others_are_served_plain() {
    over_the_connection_cap_a_client_is_refused_and_others_are_served(Transport::Plain);
}

#[test]
fn over_the_connection_cap_a_client_is_refused_and_others_are_served_tls() {
    over_the_connection_cap_a_client_is_refused_and_others_are_served(Transport::Tls);
}

fn over_the_connection_cap_a_client_is_refused_and_others_are_served(transport: Transport) {
    // Two workers: the two connections may land on either, the cap is shared.
    let engine = engine_with_link(transport, |c| c.server.clients.max_connections = 2);
    let mut first = client(&engine, ABUSER);
    let mut second = client(&engine, ABUSER);
    assert_eq!(first.get("/ok", "localhost").status, 302);
    assert_eq!(second.get("/ok", "localhost").status, 302);
    assert_eq!(
        engine.metric("ricochet_engine_client_addresses_tracked{limit=\"connections\"}"),
        Some(1.0)
    );

    match transport {
        Transport::Plain => {
            let mut third = client(&engine, ABUSER);
            let refused = third.read_response(false).expect("a 429");
            assert_eq!(refused.status, 429);
            assert_eq!(refused.header("connection").as_deref(), Some("close"));
            assert_eq!(refused.text(), "too many connections from your address\n");
            assert!(third.closed_within(Duration::from_secs(5)));
        }
        Transport::Tls => assert!(
            engine.try_client_from(ABUSER).is_err(),
            "closed before the handshake"
        ),
    }
    assert_eq!(
        engine.metric("ricochet_engine_client_connections_refused_total"),
        Some(1.0)
    );
    // The refused connection is not counted as open.
    assert_eq!(engine.metric("ricochet_engine_connections_open"), Some(2.0));

    // Another address has connections of its own.
    let mut neighbour = client(&engine, NEIGHBOUR);
    assert_eq!(neighbour.get("/ok", "localhost").status, 302);
    let mut neighbour_too = client(&engine, NEIGHBOUR);
    assert_eq!(neighbour_too.get("/ok", "localhost").status, 302);

    // The client's open connections go on; closing one frees a slot.
    assert_eq!(second.get("/ok", "localhost").status, 302);
    first.send(b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    first.read_response(false).unwrap();
    assert!(first.closed_within(Duration::from_secs(5)));
    assert!(eventually(Duration::from_secs(5), || served(
        &engine, ABUSER
    )));

    // Addresses without connections are forgotten.
    drop((second, neighbour, neighbour_too));
    assert!(eventually(Duration::from_secs(5), || {
        engine.metric("ricochet_engine_client_addresses_tracked{limit=\"connections\"}")
            == Some(0.0)
    }));
}

#[test]
fn over_the_request_rate_a_client_gets_429_and_is_closed_plain() {
    over_the_request_rate_a_client_gets_429_and_is_closed(Transport::Plain);
}

#[test]
fn over_the_request_rate_a_client_gets_429_and_is_closed_tls() {
    over_the_request_rate_a_client_gets_429_and_is_closed(Transport::Tls);
}

fn over_the_request_rate_a_client_gets_429_and_is_closed(transport: Transport) {
    // One request a second after a burst of 3: a pipelined batch of 20 is
    // over it however slowly the test runs.
    let engine = engine_with_link(transport, |c| {
        c.server.clients.requests_per_second = 1;
        c.server.clients.burst = 3;
    });
    let mut abuser = client(&engine, ABUSER);
    abuser.send(&GET_OK.repeat(20));
    let mut redirects = 0;
    let refused = loop {
        let response = abuser
            .read_response(false)
            .expect("an answer to each request");
        if response.status != 302 {
            break response;
        }
        redirects += 1;
    };
    assert!((3..20).contains(&redirects), "{redirects} redirects");
    assert_eq!(refused.status, 429);
    let retry_after: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1, "{retry_after}");
    assert_eq!(
        refused.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(refused.header("connection").as_deref(), Some("close"));
    assert_eq!(refused.text(), "too many requests from your address\n");
    assert!(
        abuser.closed_within(Duration::from_secs(5)),
        "nothing after the 429: {:?}",
        String::from_utf8_lossy(abuser.leftover())
    );

    assert!(
        served(&engine, NEIGHBOUR),
        "another address has its own bucket"
    );
    assert_eq!(
        engine.metric("ricochet_engine_client_requests_limited_total"),
        Some(1.0)
    );
    assert_eq!(
        engine.metric("ricochet_engine_client_addresses_tracked{limit=\"requests\"}"),
        Some(2.0)
    );
    // The bucket refills: the client is served again later.
    assert!(eventually(Duration::from_secs(10), || served(
        &engine, ABUSER
    )));
}

#[test]
fn a_head_request_over_the_rate_gets_no_body() {
    let engine = engine_with_link(Transport::Plain, |c| {
        c.server.clients.requests_per_second = 1;
        c.server.clients.burst = 1;
    });
    let mut abuser = client(&engine, ABUSER);
    abuser.send(&b"HEAD /ok HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(5));
    assert_eq!(abuser.read_response(true).unwrap().status, 302);
    let refused = abuser.read_response(true).unwrap();
    assert_eq!(refused.status, 429);
    assert!(abuser.closed_within(Duration::from_secs(5)));
    assert!(abuser.leftover().is_empty(), "no body after a HEAD's 429");
}

#[test]
fn limits_that_are_off_refuse_nothing() {
    let engine = engine_with_link(Transport::Plain, |_| {});
    let mut clients: Vec<Client> = (0..32).map(|_| client(&engine, ABUSER)).collect();
    for client in &mut clients {
        client.send(&GET_OK.repeat(50));
    }
    for client in &mut clients {
        for _ in 0..50 {
            assert_eq!(client.read_response(false).unwrap().status, 302);
        }
    }
    for name in [
        "ricochet_engine_client_connections_refused_total",
        "ricochet_engine_client_requests_limited_total",
        "ricochet_engine_client_addresses_tracked{limit=\"connections\"}",
        "ricochet_engine_client_addresses_tracked{limit=\"requests\"}",
    ] {
        assert_eq!(engine.metric(name), Some(0.0), "{name}");
    }
}
