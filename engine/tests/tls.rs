//! HTTPS: certificates arrive through the change log and are served by SNI
//! on every shard's TLS listener, swapped without a restart, kept across
//! restarts; ACME challenges are answered; domains can send plain HTTP to
//! HTTPS and carry HSTS; the connection limits hold over TLS.

use std::io::Write;
use std::time::Duration;

use ricochet_engine::config::EngineConfig;
use ricochet_engine::test_util::{Client, TestEngine, TlsClientSetup, eventually, self_signed};
use ricochet_engine::tls::UnknownSni;
use ricochet_model::domain::Hsts;
use ricochet_model::tls::{CertificatePem, DEFAULT_CERTIFICATE, TlsChange};
use ricochet_model::{Change, ChangeOp, DomainSettings};

fn with_tls(config: &mut EngineConfig) {
    config.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    config.redirect.default_domain = "go.example".into();
}

fn certificate(engine: &TestEngine, name: &str, pem: Option<&CertificatePem>) {
    engine.set_tls(TlsChange::Certificate {
        name: name.into(),
        pem: pem.cloned(),
    });
}

fn tls_addr(engine: &TestEngine) -> std::net::SocketAddr {
    engine.engine().tls_addr().expect("a TLS listener")
}

fn leaf_der(pem: &CertificatePem) -> Vec<u8> {
    TlsClientSetup::trusting(pem).roots[0].to_vec()
}

#[test]
fn a_certificate_from_the_change_log_is_served_for_its_name_over_tls_1_2_and_1_3() {
    let engine = TestEngine::start_with(with_tls);
    engine.add("go.example", "spring", "https://example.com/spring");
    engine.add("brand.example", "launch", "https://example.com/launch");
    let go = self_signed(&["go.example"]);
    let brand = self_signed(&["brand.example"]);
    certificate(&engine, "go.example", Some(&go));
    certificate(&engine, "brand.example", Some(&brand));

    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut setup = TlsClientSetup::trusting(&brand);
        setup.version = Some(version);
        let mut client =
            Client::connect_tls(tls_addr(&engine), "brand.example", &setup).expect("handshake");
        let session = client.tls().unwrap();
        assert_eq!(session.protocol_version(), Some(version.version));
        assert_eq!(session.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(client.peer_certificate().unwrap(), leaf_der(&brand));
        let response = client.get("/launch", "brand.example");
        assert_eq!(response.status, 302);
        assert_eq!(
            response.header("location").as_deref(),
            Some("https://example.com/launch")
        );
        // Keep-alive and pipelining work as on plain HTTP.
        client.send(b"GET /launch HTTP/1.1\r\nHost: brand.example\r\n\r\nGET /nope HTTP/1.1\r\nHost: brand.example\r\n\r\n");
        assert_eq!(client.read_response(false).unwrap().status, 302);
        assert_eq!(client.read_response(false).unwrap().status, 404);
    }

    // The other name gets its own certificate; a client trusting only the
    // first refuses it.
    let client = Client::connect_tls(
        tls_addr(&engine),
        "go.example",
        &TlsClientSetup::trusting(&go),
    )
    .expect("handshake");
    assert_eq!(client.peer_certificate().unwrap(), leaf_der(&go));
    assert!(
        Client::connect_tls(
            tls_addr(&engine),
            "go.example",
            &TlsClientSetup::trusting(&brand)
        )
        .is_err()
    );
    assert!(
        engine
            .metric("ricochet_engine_tls_handshakes_total")
            .unwrap()
            >= 3.0
    );
    assert_eq!(engine.metric("ricochet_engine_tls_certificates"), Some(2.0));
    assert!(
        engine
            .metric("ricochet_engine_tls_earliest_expiry_seconds")
            .unwrap()
            > ricochet_model::now_millis() as f64 / 1000.0
    );
}

#[test]
fn unknown_names_get_the_default_certificate_or_an_alert() {
    let engine = TestEngine::start_with(with_tls);
    engine.add("go.example", "spring", "https://example.com/spring");
    let fallback = self_signed(&["fallback.example"]);
    let setup = TlsClientSetup::trusting(&fallback);
    // Nothing to serve yet: the handshake fails.
    assert!(Client::connect_tls(tls_addr(&engine), "fallback.example", &setup).is_err());
    certificate(&engine, DEFAULT_CERTIFICATE, Some(&fallback));
    let mut client =
        Client::connect_tls(tls_addr(&engine), "fallback.example", &setup).expect("handshake");
    assert_eq!(client.peer_certificate().unwrap(), leaf_der(&fallback));
    // The request is served from the default domain, as on plain HTTP.
    assert_eq!(client.get("/spring", "fallback.example").status, 302);
    assert!(
        engine
            .metric("ricochet_engine_tls_handshake_failures_total")
            .unwrap()
            >= 1.0
    );

    let refusing = TestEngine::start_with(|config| {
        with_tls(config);
        config.server.unknown_sni = UnknownSni::Refuse;
    });
    certificate(&refusing, DEFAULT_CERTIFICATE, Some(&fallback));
    assert!(Client::connect_tls(tls_addr(&refusing), "fallback.example", &setup).is_err());
}

#[test]
fn certificates_are_swapped_and_removed_without_a_restart_and_kept_across_one() {
    let mut engine = TestEngine::start_with(with_tls);
    engine.add("go.example", "spring", "https://example.com/spring");
    let first = self_signed(&["go.example"]);
    let second = self_signed(&["go.example"]);
    certificate(&engine, "go.example", Some(&first));
    let mut open = Client::connect_tls(
        tls_addr(&engine),
        "go.example",
        &TlsClientSetup::trusting(&first),
    )
    .unwrap();

    certificate(&engine, "go.example", Some(&second));
    let renewed = Client::connect_tls(
        tls_addr(&engine),
        "go.example",
        &TlsClientSetup::trusting(&second),
    )
    .unwrap();
    assert_eq!(renewed.peer_certificate().unwrap(), leaf_der(&second));
    // A connection made before the swap goes on.
    assert_eq!(open.get("/spring", "go.example").status, 302);

    engine.restart();
    let after_restart = Client::connect_tls(
        tls_addr(&engine),
        "go.example",
        &TlsClientSetup::trusting(&second),
    )
    .expect("the stored certificate is served at start");
    assert_eq!(after_restart.peer_certificate().unwrap(), leaf_der(&second));

    certificate(&engine, "go.example", None);
    assert!(
        Client::connect_tls(
            tls_addr(&engine),
            "go.example",
            &TlsClientSetup::trusting(&second)
        )
        .is_err()
    );
    engine.restart();
    assert!(
        Client::connect_tls(
            tls_addr(&engine),
            "go.example",
            &TlsClientSetup::trusting(&second)
        )
        .is_err(),
        "a removed certificate stays removed"
    );
}

#[test]
fn a_certificate_whose_key_does_not_match_is_refused_at_intake() {
    let engine = TestEngine::start_with(with_tls);
    let one = self_signed(&["go.example"]);
    let other = self_signed(&["go.example"]);
    let intake = engine.engine().intake();
    let before = intake.last_applied();
    let refused = intake.apply(&[Change {
        version: before + 1,
        op: ChangeOp::Tls {
            change: TlsChange::Certificate {
                name: "go.example".into(),
                pem: Some(CertificatePem {
                    chain: one.chain,
                    key: other.key,
                }),
            },
        },
    }]);
    assert!(refused.is_err());
    assert_eq!(intake.last_applied(), before);
}

#[test]
fn acme_challenges_are_answered_over_http_and_tls_alpn() {
    let engine = TestEngine::start_with(|config| {
        config.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    });
    // No default domain and no link on the name: the challenge is still answered.
    engine.set_tls(TlsChange::Http01 {
        token: "tok-EN_1".into(),
        key_authorization: Some("tok-EN_1.thumb".into()),
    });
    let response = engine.get("/.well-known/acme-challenge/tok-EN_1", "new.example");
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "tok-EN_1.thumb");
    assert_eq!(
        engine
            .get("/.well-known/acme-challenge/other", "new.example")
            .status,
        404
    );
    engine.set_tls(TlsChange::Http01 {
        token: "tok-EN_1".into(),
        key_authorization: None,
    });
    assert_eq!(
        engine
            .get("/.well-known/acme-challenge/tok-EN_1", "new.example")
            .status,
        404
    );

    // TLS-ALPN-01: a validator offering acme-tls/1 alone gets the challenge
    // certificate, and the connection ends with the handshake.
    let challenge = self_signed(&["new.example"]);
    engine.set_tls(TlsChange::Alpn01 {
        domain: "new.example".into(),
        pem: Some(challenge.clone()),
    });
    let mut setup = TlsClientSetup::trusting(&challenge);
    setup.alpn = vec![b"acme-tls/1".to_vec()];
    let mut validator = Client::connect_tls(tls_addr(&engine), "new.example", &setup).unwrap();
    assert_eq!(validator.peer_certificate().unwrap(), leaf_der(&challenge));
    assert_eq!(
        validator.tls().unwrap().alpn_protocol(),
        Some(&b"acme-tls/1"[..])
    );
    assert!(validator.closed_within(Duration::from_secs(5)));
    // A browser naming the same domain does not get the challenge certificate.
    assert!(
        Client::connect_tls(
            tls_addr(&engine),
            "new.example",
            &TlsClientSetup::trusting(&challenge)
        )
        .is_err()
    );
}

#[test]
fn domains_send_plain_http_to_https_and_carry_hsts_over_tls() {
    let engine = TestEngine::start_with(|config| {
        with_tls(config);
        config.server.https_port = 8443;
    });
    engine.add("brand.example", "launch", "https://example.com/launch");
    engine.add("go.example", "spring", "https://example.com/spring");
    let brand = self_signed(&["brand.example"]);
    certificate(&engine, "brand.example", Some(&brand));
    engine.set_domain(DomainSettings {
        https_redirect: true,
        hsts: Some(Hsts {
            max_age: 31_536_000,
            include_subdomains: true,
            preload: false,
        }),
        ..DomainSettings::empty("brand.example")
    });

    let plain = engine.get("/launch?utm_source=x", "Brand.Example:8080");
    assert_eq!(plain.status, 308);
    assert_eq!(
        plain.header("location").as_deref(),
        Some("https://Brand.Example:8443/launch?utm_source=x")
    );
    assert_eq!(plain.header("strict-transport-security"), None);
    // Unknown codes are sent too; ACME challenges are not.
    assert_eq!(engine.get("/other", "brand.example").status, 308);
    assert_eq!(
        engine
            .get("/.well-known/acme-challenge/abc", "brand.example")
            .status,
        404
    );
    // Another domain is untouched.
    let other = engine.get("/spring", "go.example");
    assert_eq!(other.status, 302);
    assert_eq!(other.header("strict-transport-security"), None);

    let mut client = Client::connect_tls(
        tls_addr(&engine),
        "brand.example",
        &TlsClientSetup::trusting(&brand),
    )
    .unwrap();
    for (path, status) in [("/launch", 302), ("/missing", 404)] {
        let response = client.get(path, "brand.example");
        assert_eq!(response.status, status);
        assert_eq!(
            response.header("strict-transport-security").as_deref(),
            Some("max-age=31536000; includeSubDomains"),
            "{path}"
        );
    }

    // Settings without them switch both off.
    engine.set_domain(DomainSettings::empty("brand.example"));
    assert_eq!(engine.get("/launch", "brand.example").status, 302);
    assert_eq!(
        client
            .get("/launch", "brand.example")
            .header("strict-transport-security"),
        None
    );
}

#[test]
fn connection_limits_hold_over_tls() {
    let engine = TestEngine::start_with(|config| {
        with_tls(config);
        config.server.header_timeout = Duration::from_millis(300);
        config.server.handshake_timeout = Duration::from_millis(300);
        config.server.max_header_bytes = 1024;
    });
    engine.add("go.example", "spring", "https://example.com/spring");
    let pem = self_signed(&["go.example"]);
    certificate(&engine, "go.example", Some(&pem));
    let setup = TlsClientSetup::trusting(&pem);

    // A client that connects and never says hello is closed.
    let mut silent = Client::connect(tls_addr(&engine));
    assert!(silent.closed_within(Duration::from_secs(5)));
    assert!(
        eventually(Duration::from_secs(5), || engine
            .metric("ricochet_engine_tls_handshake_timeouts_total")
            .is_some_and(|count| count >= 1.0)),
        "the timeout is counted: {:?} timeouts, {:?} failures",
        engine.metric("ricochet_engine_tls_handshake_timeouts_total"),
        engine.metric("ricochet_engine_tls_handshake_failures_total"),
    );

    // A stalled request head gets 408, as on plain HTTP.
    let mut stalled = Client::connect_tls(tls_addr(&engine), "go.example", &setup).unwrap();
    stalled.send(b"GET /spring HTTP/1.1\r\nHost: go.exa");
    assert_eq!(stalled.read_response(false).unwrap().status, 408);

    // An oversized head gets 431.
    let mut large = Client::connect_tls(tls_addr(&engine), "go.example", &setup).unwrap();
    let filler = "a".repeat(2048);
    large.send(
        format!("GET /spring HTTP/1.1\r\nHost: go.example\r\nX-Filler: {filler}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(large.read_response(false).unwrap().status, 431);

    // Bytes that are not TLS end the connection without a crash.
    let mut garbage = Client::connect(tls_addr(&engine));
    garbage
        .stream()
        .write_all(b"GET / HTTP/1.1\r\nHost: go.example\r\n\r\n")
        .unwrap();
    assert!(garbage.closed_within(Duration::from_secs(5)));
    // The engine still serves.
    let mut client = Client::connect_tls(tls_addr(&engine), "go.example", &setup).unwrap();
    assert_eq!(client.get("/spring", "go.example").status, 302);
}

#[test]
fn a_certificate_from_files_is_the_default_until_the_change_log_sets_one() {
    let files = tempfile::tempdir().unwrap();
    let own = self_signed(&["files.example"]);
    let chain_path = files.path().join("fullchain.pem");
    let key_path = files.path().join("privkey.pem");
    std::fs::write(&chain_path, &own.chain).unwrap();
    std::fs::write(&key_path, &own.key).unwrap();
    let (chain, key) = (chain_path.clone(), key_path.clone());
    let mut engine = TestEngine::start_with(move |config| {
        with_tls(config);
        config.server.tls_certificate = Some(chain);
        config.server.tls_private_key = Some(key);
    });
    engine.add("go.example", "spring", "https://example.com/spring");
    // Served to any name, without a control plane.
    let setup = TlsClientSetup::trusting(&own);
    let mut client =
        Client::connect_tls(tls_addr(&engine), "files.example", &setup).expect("handshake");
    assert_eq!(client.peer_certificate().unwrap(), leaf_der(&own));
    assert_eq!(client.get("/spring", "files.example").status, 302);

    // A default certificate from the change log replaces it, also after a
    // restart (the files are read again, the stored one still wins).
    let managed = self_signed(&["managed.example"]);
    certificate(&engine, DEFAULT_CERTIFICATE, Some(&managed));
    let managed_setup = TlsClientSetup::trusting(&managed);
    let client = Client::connect_tls(tls_addr(&engine), "managed.example", &managed_setup)
        .expect("handshake");
    assert_eq!(client.peer_certificate().unwrap(), leaf_der(&managed));
    engine.restart();
    let client = Client::connect_tls(tls_addr(&engine), "managed.example", &managed_setup)
        .expect("handshake after a restart");
    assert_eq!(client.peer_certificate().unwrap(), leaf_der(&managed));

    // Files that cannot be served stop the start with the setting named.
    let mut half = EngineConfig::default();
    half.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    half.server.tls_certificate = Some(chain_path.clone());
    assert!(half.validate().unwrap_err().contains("tls_private_key"));
    let mut no_listener = EngineConfig::default();
    no_listener.server.tls_certificate = Some(chain_path.clone());
    no_listener.server.tls_private_key = Some(key_path.clone());
    assert!(no_listener.validate().unwrap_err().contains("tls_listen"));
    let dir = tempfile::tempdir().unwrap();
    let mut missing = TestEngine::config_in(dir.path());
    with_tls(&mut missing);
    missing.server.tls_certificate = Some(files.path().join("nowhere.pem"));
    missing.server.tls_private_key = Some(key_path.clone());
    let error = ricochet_engine::Engine::start(missing)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("server.tls_certificate") && error.contains("nowhere.pem"),
        "{error}"
    );
    let other_key = files.path().join("other-key.pem");
    std::fs::write(&other_key, self_signed(&["x.example"]).key).unwrap();
    let mut mismatched = TestEngine::config_in(dir.path());
    with_tls(&mut mismatched);
    mismatched.server.tls_certificate = Some(chain_path);
    mismatched.server.tls_private_key = Some(other_key);
    let error = ricochet_engine::Engine::start(mismatched)
        .unwrap_err()
        .to_string();
    assert!(error.contains("server.tls_certificate"), "{error}");
}
