//! Certificates by ACME end to end, against real programs: `pebble` (the
//! authority), `pebble-challtestsrv` (the DNS both the control plane and
//! pebble ask), Redis, the control plane and an engine. A domain is added,
//! its TXT record created and verified; the control plane orders its
//! certificate, the engine answers pebble's HTTP-01 check, and then serves
//! HTTPS for the domain with a certificate that chains to pebble's root, as
//! a real TLS client checks. A domain that is not verified is never ordered.

use std::sync::Arc;
use std::time::Duration;

use ricochet_control::test_util::{ChallTestSrv, Pebble, RedisServer, TestControl};
use ricochet_engine::test_util::{Client, TestEngine, TlsClientSetup, eventually};
use ricochet_model::bus::{RedisBus, UpdateBus};
use ricochet_model::tls::CertificatePem;
use serde_json::json;

#[test]
fn a_verified_domain_gets_a_certificate_from_the_authority_and_engines_serve_it() {
    let dns = ChallTestSrv::start();
    let redis = RedisServer::start();
    let (acme_listen, acme_management) = Pebble::ports();
    let bus: Arc<dyn UpdateBus> = Arc::new(RedisBus::new(&redis.url(), "test:acme").unwrap());
    // Pebble writes the certificate clients must trust when it starts; the
    // control plane reads it when it first orders, after the engine exists.
    let root_dir = tempfile::tempdir().unwrap();
    let root_path = root_dir.path().join("pebble-https.pem");
    let control = TestControl::start_with(
        |c| {
            c.bus.url = redis.url();
            c.bus.channel = "test:acme".into();
            c.domains.verification = ricochet_control::config::VerificationMode::Dns;
            c.domains.dns_server = dns.dns_addr().to_string();
            c.acme.directory_url = Pebble::directory_url(acme_listen);
            c.acme.root_certificate = root_path.display().to_string();
            c.acme.challenge_delay = Duration::from_millis(500);
            c.acme.check_interval = Duration::from_millis(300);
        },
        bus,
    );
    let engine = TestEngine::start_with(|c| {
        c.sync.control_url = control.base_url();
        c.sync.bus = redis.url();
        c.sync.channel = "test:acme".into();
        c.sync.cluster_token = control.control().cluster_token().to_owned();
        c.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    });
    let pebble = Pebble::start(
        acme_listen,
        acme_management,
        engine.addr().port(),
        engine.engine().tls_addr().unwrap().port(),
        dns.dns_addr(),
    );
    std::fs::copy(pebble.https_root(), &root_path).unwrap();

    let api = control.client();
    let created = api.post("/api/v1/domains", &json!({"domain": "brand.example"}));
    assert_eq!(created.status, 201, "{}", created.text);
    let record = &created.body["verification"]["record"];
    // An unverified domain is never ordered.
    let unverified = api.post("/api/v1/domains", &json!({"domain": "other.example"}));
    assert_eq!(unverified.status, 201);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        api.get("/api/v1/domains/brand.example").body["certificate"].is_null(),
        "nothing is ordered before verification"
    );
    dns.set_txt(
        record["name"].as_str().unwrap(),
        record["value"].as_str().unwrap(),
    );
    let verified = api.post("/api/v1/domains/brand.example/verify", &json!({}));
    assert_eq!(
        verified.body["verification"]["status"], "verified",
        "{}",
        verified.text
    );

    assert!(
        eventually(Duration::from_secs(60), || {
            api.get("/api/v1/domains/brand.example").body["certificate"]["source"] == "acme"
        }),
        "the certificate was issued: {}",
        api.get("/api/v1/domains/brand.example").text
    );
    let shown = api.get("/api/v1/domains/brand.example").body;
    assert_eq!(shown["certificate"]["names"], json!(["brand.example"]));

    // The engine serves it, chaining to pebble's root.
    let setup = TlsClientSetup::trusting(&CertificatePem {
        chain: pebble.issuing_root(),
        key: String::new(),
    });
    let tls = engine.engine().tls_addr().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || Client::connect_tls(
            tls,
            "brand.example",
            &setup
        )
        .is_ok()),
        "the engine serves the issued certificate"
    );
    // The challenge answer was withdrawn once the order was done.
    let challenges = ok_changes(&control);
    assert!(challenges.0 >= 1 && challenges.1 >= 1, "{challenges:?}");
    assert!(
        api.get("/api/v1/domains/other.example").body["certificate"].is_null(),
        "the unverified domain got nothing"
    );
    assert!(shown["certificate_order"].is_null(), "{shown}");

    // At two thirds of its lifetime the certificate is ordered again (an
    // issuer on the same store, asked as if that time had come).
    let issuer = ricochet_control::acme::Issuer::new(
        control.control().store().clone(),
        ricochet_control::acme::AcmeSettings {
            directory_url: Pebble::directory_url(acme_listen),
            root_certificate: Some(root_path.clone()),
            contact: Vec::new(),
            challenge_delay: Duration::from_millis(500),
        },
        "localhost",
    )
    .unwrap();
    let store = control.control().store();
    let first = store.certificate("brand.example").unwrap().unwrap();
    let now = ricochet_model::now_millis();
    assert_eq!(issuer.run_once(now).unwrap(), 0, "not due yet");
    let two_thirds = first.not_before + (first.not_after - first.not_before) * 2 / 3;
    assert!(issuer.run_once(two_thirds + 1).unwrap() >= 1, "renewed");
    let renewed = store.certificate("brand.example").unwrap().unwrap();
    assert_ne!(renewed.chain, first.chain, "a new certificate");
    assert_ne!(renewed.key, first.key, "with a new key");

    // A verified domain the authority cannot reach: the failure shows, with
    // the next attempt scheduled.
    let created = api.post("/api/v1/domains", &json!({"domain": "broken.example"}));
    let record = &created.body["verification"]["record"];
    dns.set_txt(
        record["name"].as_str().unwrap(),
        record["value"].as_str().unwrap(),
    );
    dns.set_a("broken.example", std::net::Ipv4Addr::new(127, 0, 0, 2));
    let verified = api.post("/api/v1/domains/broken.example/verify", &json!({}));
    assert_eq!(verified.body["verification"]["status"], "verified");
    assert!(
        eventually(Duration::from_secs(60), || {
            !api.get("/api/v1/domains/broken.example").body["certificate_order"].is_null()
        }),
        "the failed order shows"
    );
    let failed = api.get("/api/v1/domains/broken.example").body;
    let order = &failed["certificate_order"];
    assert_eq!(order["failures"], 1, "{failed}");
    // The authority's own words: it could not connect to the domain.
    assert!(
        order["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("connection")),
        "{failed}"
    );
    assert!(order["next_attempt_at"].as_str().is_some(), "{failed}");
    assert!(failed["certificate"].is_null());
}

/// (HTTP-01 answers published, answers withdrawn) in the change log.
fn ok_changes(control: &TestControl) -> (usize, usize) {
    let mut published = 0;
    let mut withdrawn = 0;
    for change in control.control().store().changes_after(0, 100_000).unwrap() {
        if let ricochet_model::ChangeOp::Tls {
            change:
                ricochet_model::tls::TlsChange::Http01 {
                    key_authorization, ..
                },
        } = change.op
        {
            match key_authorization {
                Some(_) => published += 1,
                None => withdrawn += 1,
            }
        }
    }
    (published, withdrawn)
}
