//! Bad input over real sockets: malformed requests, oversized heads, stalled
//! and idle clients, the connection cap, paths that are not codes, and
//! attempts to put CR or LF into a response header. None may crash a worker.
//! Every test runs twice: over plain HTTP and over the HTTPS listener.

use std::time::{Duration, Instant};

use ricochet_engine::test_util::{TestEngine, Transport, link};

/// Runs each named test over both transports: `name::plain` and `name::tls`.
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn plain() {
                super::$name(super::Transport::Plain)
            }
            #[test]
            fn tls() {
                super::$name(super::Transport::Tls)
            }
        }
    )*};
}

over_both_transports!(
    malformed_request_lines_and_headers_get_400_and_close,
    host_header_rules,
    request_bodies_that_cannot_be_skipped_are_refused,
    oversized_heads_get_431,
    a_stalled_partial_request_gets_408_after_the_header_timeout,
    a_slow_drip_client_is_closed_by_the_header_timeout,
    idle_keep_alive_connections_are_closed,
    the_connection_cap_refuses_extra_connections,
    paths_that_are_not_codes_get_404,
    no_input_puts_cr_or_lf_into_a_header,
    random_garbage_never_takes_a_worker_down,
);

fn expect_refusal(engine: &TestEngine, raw: &[u8], status: u16) {
    let mut client = engine.client();
    client.send(raw);
    let response = client.read_response(false).expect("a response");
    assert_eq!(
        response.status,
        status,
        "{:?}",
        String::from_utf8_lossy(raw)
    );
    assert_eq!(response.header("connection").as_deref(), Some("close"));
    assert!(
        client.closed_within(Duration::from_secs(5)),
        "connection closed"
    );
}

fn still_serving(engine: &TestEngine) {
    assert_eq!(
        engine.get("/ok", "localhost").status,
        302,
        "engine still serves"
    );
}

fn engine_with_link(
    transport: Transport,
    configure: impl FnOnce(&mut ricochet_engine::EngineConfig),
) -> TestEngine {
    let engine = TestEngine::start_over(transport, configure);
    engine.add("localhost", "ok", "https://example.com/ok");
    engine
}

fn malformed_request_lines_and_headers_get_400_and_close(transport: Transport) {
    let engine = engine_with_link(transport, |_| {});
    let cases: &[&[u8]] = &[
        b"GARBAGE\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /ok HTTP/9.9\r\nHost: localhost\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost localhost\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHo st: localhost\r\n\r\n",
        b"GET /o k HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"GET /ok HTTP/1.1\r\nHost: local\x01host\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ];
    for raw in cases {
        expect_refusal(&engine, raw, 400);
    }
    assert!(engine.metric("ricochet_engine_bad_requests_total").unwrap() >= cases.len() as f64);
    still_serving(&engine);
}

fn host_header_rules(transport: Transport) {
    let engine = engine_with_link(transport, |_| {});
    // HTTP/1.1 requires exactly one valid Host.
    expect_refusal(&engine, b"GET /ok HTTP/1.1\r\n\r\n", 400);
    expect_refusal(
        &engine,
        b"GET /ok HTTP/1.1\r\nHost: localhost\r\nHost: other.example\r\n\r\n",
        400,
    );
    expect_refusal(&engine, b"GET /ok HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    expect_refusal(
        &engine,
        b"GET /ok HTTP/1.1\r\nHost: evil.example/path\r\n\r\n",
        400,
    );
    still_serving(&engine);
}

fn request_bodies_that_cannot_be_skipped_are_refused(transport: Transport) {
    let engine = engine_with_link(transport, |_| {});
    expect_refusal(
        &engine,
        b"GET /ok HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
    expect_refusal(
        &engine,
        b"GET /ok HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
        400,
    );
    expect_refusal(
        &engine,
        b"GET /ok HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        400,
    );
    expect_refusal(
        &engine,
        b"GET /ok HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999\r\n\r\n",
        413,
    );
    still_serving(&engine);
}

fn oversized_heads_get_431(transport: Transport) {
    let engine = engine_with_link(transport, |c| c.server.max_header_bytes = 1024);
    // One huge header, complete.
    let big = format!(
        "GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(4000)
    );
    expect_refusal(&engine, big.as_bytes(), 431);
    // A head that never ends: refused as soon as it passes the limit.
    let endless = format!(
        "GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Big: {}",
        "a".repeat(3000)
    );
    expect_refusal(&engine, endless.as_bytes(), 431);
    // A long request line.
    let long_path = format!(
        "GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "a".repeat(2000)
    );
    expect_refusal(&engine, long_path.as_bytes(), 431);
    // Too many header lines.
    let mut many = String::from("GET /ok HTTP/1.1\r\nHost: localhost\r\n");
    for i in 0..80 {
        many.push_str(&format!("X{i}: v\r\n"));
    }
    many.push_str("\r\n");
    expect_refusal(&engine, many.as_bytes(), 431);
    // Just under the limit is fine.
    let fits = format!(
        "GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(900)
    );
    assert_eq!(engine.exchange(fits.as_bytes()).status, 302);
}

fn a_stalled_partial_request_gets_408_after_the_header_timeout(transport: Transport) {
    let engine = engine_with_link(transport, |c| {
        c.server.header_timeout = Duration::from_millis(300)
    });
    let mut client = engine.client();
    let started = Instant::now();
    client.send(b"GET /ok HTTP/1.1\r\nHost: loc");
    let response = client.read_response(false).expect("a 408");
    let waited = started.elapsed();
    assert_eq!(response.status, 408);
    assert!(
        waited >= Duration::from_millis(250),
        "closed too early: {waited:?}"
    );
    assert!(client.closed_within(Duration::from_secs(5)));
    assert_eq!(
        engine.metric("ricochet_engine_header_timeouts_total"),
        Some(1.0)
    );
}

fn a_slow_drip_client_is_closed_by_the_header_timeout(transport: Transport) {
    let engine = engine_with_link(transport, |c| {
        c.server.header_timeout = Duration::from_millis(500)
    });
    let mut client = engine.client();
    let started = Instant::now();
    // One byte every 50 ms keeps the connection busy but never finishes the head.
    let drip = b"GET /ok HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for byte in drip {
        if client.write(&[*byte]).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if started.elapsed() > Duration::from_secs(2) {
            break;
        }
    }
    assert!(
        client.closed_within(Duration::from_secs(3)),
        "slow client was closed"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "closed after {elapsed:?}");
    assert_eq!(
        engine.metric("ricochet_engine_header_timeouts_total"),
        Some(1.0)
    );
}

fn idle_keep_alive_connections_are_closed(transport: Transport) {
    let engine = engine_with_link(transport, |c| {
        c.server.idle_timeout = Duration::from_millis(300)
    });
    let mut client = engine.client();
    assert_eq!(client.get("/ok", "localhost").status, 302);
    let started = Instant::now();
    assert!(client.closed_within(Duration::from_secs(5)));
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(client.leftover().is_empty(), "idle close sends nothing");
    assert_eq!(
        engine.metric("ricochet_engine_idle_timeouts_total"),
        Some(1.0)
    );
}

/// Over the cap a plain client gets 503; a TLS client is closed before its
/// handshake (a handshake is the work the cap spares).
fn the_connection_cap_refuses_extra_connections(transport: Transport) {
    let engine = engine_with_link(transport, |c| {
        c.server.workers = 1;
        c.server.max_connections = 2;
    });
    let mut first = engine.client();
    let mut second = engine.client();
    assert_eq!(first.get("/ok", "localhost").status, 302);
    assert_eq!(second.get("/ok", "localhost").status, 302);
    match transport {
        Transport::Plain => {
            let mut third = engine.client();
            let refused = third.read_response(false).expect("a 503");
            assert_eq!(refused.status, 503);
            assert!(third.closed_within(Duration::from_secs(5)));
        }
        Transport::Tls => assert!(engine.try_client().is_err(), "no handshake over the cap"),
    }
    assert_eq!(
        engine.metric("ricochet_engine_connections_rejected_total"),
        Some(1.0)
    );
    // Closing one frees a slot.
    first.send(b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    first.read_response(false).unwrap();
    assert!(first.closed_within(Duration::from_secs(5)));
    assert!(ricochet_engine::test_util::eventually(
        Duration::from_secs(5),
        || {
            let Ok(mut client) = engine.try_client() else {
                return false;
            };
            client.send(b"GET /ok HTTP/1.1\r\nHost: localhost\r\n\r\n");
            client
                .read_response(false)
                .map(|r| r.status == 302)
                .unwrap_or(false)
        }
    ));
    assert_eq!(second.get("/ok", "localhost").status, 302);
}

fn paths_that_are_not_codes_get_404(transport: Transport) {
    let engine = engine_with_link(transport, |_| {});
    let long = format!("/{}", "a".repeat(65));
    for path in [
        "/",
        "/ok/",
        "/ok/extra",
        "//ok",
        "/../etc/passwd",
        "/%6Fk",
        "/ok%00",
        "/ok.php",
        "/~ok",
        long.as_str(),
        "/ok;x=1",
    ] {
        let response = engine.client().get(path, "localhost");
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.header("location"), None, "{path}");
    }
    // Non-ASCII bytes in the target are answered, never a crash.
    let response = engine.exchange(b"GET /\xc3\xa9 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(matches!(response.status, 400 | 404), "{}", response.status);
    still_serving(&engine);
}

fn no_input_puts_cr_or_lf_into_a_header(transport: Transport) {
    let engine = TestEngine::start_over(transport, |_| {});
    let mut record = link("localhost", "fwd", "https://example.com/landing");
    record.forward_query = true;
    engine.upsert(record);
    // Each request, and the Location it gets when it is answered with a
    // redirect: an encoded CR or LF is never forwarded, so such a query gets
    // the destination alone.
    let alone = "https://example.com/landing";
    let attempts: &[(&[u8], &str)] = &[
        (
            b"GET /fwd?a=%0D%0ASet-Cookie:%20x=1 HTTP/1.1\r\nHost: localhost\r\n\r\n",
            alone,
        ),
        (
            b"GET /fwd?a=%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: localhost\r\n\r\n",
            alone,
        ),
        (
            b"GET /fwd?a=\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n",
            "https://example.com/landing?a=%FF%FE",
        ),
        (
            b"GET /fwd?a=1\rSet-Cookie:x HTTP/1.1\r\nHost: localhost\r\n\r\n",
            alone,
        ),
        (
            b"GET /fwd?a=1\nSet-Cookie:x HTTP/1.1\r\nHost: localhost\r\n\r\n",
            alone,
        ),
        (
            b"GET /fwd%0D%0ASet-Cookie:x HTTP/1.1\r\nHost: localhost\r\n\r\n",
            alone,
        ),
    ];
    for (raw, expected) in attempts {
        let mut client = engine.client();
        client.send(raw);
        let response = client.read_response(false).expect("a response");
        assert_eq!(
            response.header_count("set-cookie"),
            0,
            "{:?}",
            String::from_utf8_lossy(raw)
        );
        for (name, value) in &response.headers {
            assert!(
                !value.iter().any(|&b| b == b'\r' || b == b'\n'),
                "{name} carries CR/LF"
            );
        }
        if response.status == 302 {
            let location = response.header("location").unwrap();
            assert_eq!(location, *expected, "{:?}", String::from_utf8_lossy(raw));
        }
    }
    // Destinations with CR/LF never reach the table: validation refuses them.
    assert!(
        ricochet_model::LinkRecord::new(1, "localhost", "x", "https://e.com/\r\nA: b", 0).is_err()
    );
    assert!(
        ricochet_model::LinkRecord::new(1, "localhost", "x", "https://e.com/%0d%0aA:b", 0).is_err()
    );
}

fn random_garbage_never_takes_a_worker_down(transport: Transport) {
    let engine = engine_with_link(transport, |c| {
        c.server.header_timeout = Duration::from_millis(200)
    });
    // A small deterministic generator: the same bytes every run.
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let prefixes: &[&[u8]] = &[
        b"",
        b"GET /",
        b"GET /ok HTTP/1.1\r\n",
        b"HEAD /ok HTTP/1.1\r\nHost: ",
    ];
    for round in 0..200 {
        let mut raw = prefixes[round % prefixes.len()].to_vec();
        let len = (next() % 300) as usize;
        raw.extend((0..len).map(|_| (next() & 0xff) as u8));
        if round % 3 == 0 {
            raw.extend_from_slice(b"\r\n\r\n");
        }
        let mut client = engine.client();
        let _ = client.write(&raw);
        // Whatever the answer, the connection ends (refusal or header timeout).
        let _ = client.closed_within(Duration::from_secs(3));
    }
    still_serving(&engine);
    assert_eq!(
        engine.metric("ricochet_engine_requests_total{class=\"5xx\"}"),
        Some(0.0)
    );
}
