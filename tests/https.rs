//! HTTPS end to end: a real redis-server, the control plane publishing on
//! it, engines following it. A certificate uploaded through the API is
//! served by an engine's TLS listener for its name; an engine started later
//! serves it from the change log without asking anyone; a domain's
//! `https_redirect` and `hsts` reach the engines; removing the certificate
//! stops the handshakes.

use std::sync::Arc;
use std::time::Duration;

use ricochet_control::test_util::{RedisServer, TestControl};
use ricochet_engine::config::EngineConfig;
use ricochet_engine::test_util::{Client, TestEngine, TlsClientSetup, eventually, self_signed};
use ricochet_model::bus::{RedisBus, UpdateBus};
use serde_json::json;

fn follow(config: &mut EngineConfig, control: &TestControl, redis: &RedisServer) {
    config.sync.control_url = control.base_url();
    config.sync.bus = redis.url();
    config.sync.channel = "test:https".into();
    config.sync.cluster_token = control.control().cluster_token().to_owned();
    config.server.tls_listen = Some("127.0.0.1:0".parse().unwrap());
}

#[test]
fn an_uploaded_certificate_is_served_by_every_engine_and_its_domains_settings_apply() {
    let redis = RedisServer::start();
    let bus: Arc<dyn UpdateBus> = Arc::new(RedisBus::new(&redis.url(), "test:https").unwrap());
    let control = TestControl::start_with(
        |c| {
            c.bus.url = redis.url();
            c.bus.channel = "test:https".into();
        },
        bus,
    );
    let engine = TestEngine::start_with(|c| follow(c, &control, &redis));
    let api = control.client();
    let status = api
        .post("/api/v1/domains", &json!({"domain": "brand.example"}))
        .status;
    assert_eq!(status, 201);
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/launch", "domain": "brand.example", "code": "launch"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let pem = self_signed(&["brand.example"]);
    let uploaded = api.put(
        "/api/v1/domains/brand.example/certificate",
        &json!({"certificate": pem.chain, "private_key": pem.key}),
    );
    assert_eq!(uploaded.status, 200, "{}", uploaded.text);

    let setup = TlsClientSetup::trusting(&pem);
    let tls = engine.engine().tls_addr().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || Client::connect_tls(
            tls,
            "brand.example",
            &setup
        )
        .is_ok()),
        "the engine serves the uploaded certificate"
    );
    let mut client = Client::connect_tls(tls, "brand.example", &setup).unwrap();
    let answer = client.get("/launch", "brand.example");
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location").as_deref(),
        Some("https://example.com/launch")
    );

    let patched = api.patch(
        "/api/v1/domains/brand.example",
        &json!({"https_redirect": true, "hsts": {"max_age": 600}}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert!(eventually(Duration::from_secs(10), || engine
        .get("/launch", "brand.example")
        .status
        == 308));
    assert_eq!(
        client
            .get("/launch", "brand.example")
            .header("strict-transport-security")
            .as_deref(),
        Some("max-age=600")
    );

    // An engine that starts now gets the certificate from the change log.
    let late = TestEngine::start_with(|c| follow(c, &control, &redis));
    let late_tls = late.engine().tls_addr().unwrap();
    assert!(
        eventually(Duration::from_secs(10), || Client::connect_tls(
            late_tls,
            "brand.example",
            &setup
        )
        .is_ok()),
        "a new engine serves the certificate from the change log"
    );

    assert_eq!(
        api.delete("/api/v1/domains/brand.example/certificate")
            .status,
        200
    );
    for tls in [tls, late_tls] {
        assert!(
            eventually(Duration::from_secs(10), || Client::connect_tls(
                tls,
                "brand.example",
                &setup
            )
            .is_err()),
            "a removed certificate is no longer served"
        );
    }
}
