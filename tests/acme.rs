//! Certificates by ACME end to end, against real programs: `pebble` (the
//! authority), `pebble-challtestsrv` (the DNS both the control plane and
//! pebble ask), Redis, the control plane and an engine. A domain is added,
//! its TXT record created and verified; the control plane orders its
//! certificate, the engine answers pebble's HTTP-01 check, and then serves
//! HTTPS for the domain with a certificate that chains to pebble's root, as
//! a real TLS client checks. A domain that is not verified is never ordered.
//! Orders are answered by HTTP-01 or TLS-ALPN-01; a removed domain's
//! certificate is revoked.

use std::sync::Arc;
use std::time::Duration;

use ricochet_control::acme::AcmeChallenge;
use ricochet_control::test_util::{
    ChallTestSrv, Pebble, RedisServer, RenewalInfoProxy, TestControl,
};
use ricochet_engine::test_util::{Client, TestEngine, TlsClientSetup, eventually};
use ricochet_model::bus::{RedisBus, UpdateBus};
use ricochet_model::tls::CertificatePem;
use serde_json::json;

/// The programs of one test: DNS, Redis, a control plane ordering from
/// pebble with `challenge`, an engine with an HTTPS listener, and pebble
/// validating on the engine's ports.
struct Setup {
    dns: ChallTestSrv,
    _redis: RedisServer,
    control: TestControl,
    engine: TestEngine,
    pebble: Pebble,
    /// The proxy adding renewal information, when asked for.
    renewal_info: Option<RenewalInfoProxy>,
    acme_listen: std::net::SocketAddr,
    root_path: std::path::PathBuf,
    _root_dir: tempfile::TempDir,
}

impl Setup {
    fn start(challenge: AcmeChallenge) -> Self {
        Self::start_with(challenge, false)
    }

    /// With `renewal_info`, the control plane orders through a proxy that
    /// adds ACME renewal information to pebble.
    fn start_with(challenge: AcmeChallenge, renewal_info: bool) -> Self {
        let dns = ChallTestSrv::start();
        let redis = RedisServer::start();
        let (acme_listen, acme_management) = Pebble::ports();
        let (proxy_listen, _) = Pebble::ports();
        let directory = if renewal_info {
            proxy_listen
        } else {
            acme_listen
        };
        let bus: Arc<dyn UpdateBus> = Arc::new(RedisBus::new(&redis.url(), "test:acme").unwrap());
        // Pebble writes the certificate clients must trust when it starts;
        // the control plane reads it when it first orders, after the engine
        // exists.
        let root_dir = tempfile::tempdir().unwrap();
        let root_path = root_dir.path().join("pebble-https.pem");
        let control = TestControl::start_with(
            |c| {
                c.bus.url = redis.url();
                c.bus.channel = "test:acme".into();
                c.domains.verification = ricochet_control::config::VerificationMode::Dns;
                c.domains.dns_server = dns.dns_addr().to_string();
                c.acme.directory_url = Pebble::directory_url(directory);
                c.acme.root_certificate = root_path.display().to_string();
                c.acme.challenge = challenge;
                // Time for the engine to get the answer through the change
                // log before the authority asks (the default is 2 s); 500 ms
                // was too short once while the machine was loaded.
                c.acme.challenge_delay = Duration::from_millis(1500);
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
        let renewal_info = renewal_info.then(|| RenewalInfoProxy::start(proxy_listen, &pebble));
        Self {
            dns,
            _redis: redis,
            control,
            engine,
            pebble,
            renewal_info,
            acme_listen,
            root_path,
            _root_dir: root_dir,
        }
    }

    /// Registers `domain`, creates its TXT record and verifies it.
    fn verified_domain(&self, domain: &str) {
        let api = self.control.client();
        let created = api.post("/api/v1/domains", &json!({"domain": domain}));
        assert_eq!(created.status, 201, "{}", created.text);
        let record = &created.body["verification"]["record"];
        self.dns.set_txt(
            record["name"].as_str().unwrap(),
            record["value"].as_str().unwrap(),
        );
        let verified = api.post(&format!("/api/v1/domains/{domain}/verify"), &json!({}));
        assert_eq!(
            verified.body["verification"]["status"], "verified",
            "{}",
            verified.text
        );
    }

    /// Waits for the certificate of `domain` to be issued and served: a
    /// real TLS client trusting only pebble's root completes a handshake.
    fn wait_for_certificate(&self, domain: &str) -> serde_json::Value {
        let api = self.control.client();
        let path = format!("/api/v1/domains/{domain}");
        assert!(
            eventually(Duration::from_secs(60), || {
                // Under the API key's rate limit.
                std::thread::sleep(Duration::from_millis(100));
                api.get(&path).body["certificate"]["source"] == "acme"
            }),
            "the certificate was issued: {}",
            api.get(&path).text
        );
        assert!(
            eventually(Duration::from_secs(10), || self.handshake(domain).is_ok()),
            "the engine serves the issued certificate"
        );
        api.get(&path).body
    }

    fn handshake(&self, domain: &str) -> Result<Client, String> {
        let setup = TlsClientSetup::trusting(&CertificatePem {
            chain: self.pebble.issuing_root(),
            key: String::new(),
        });
        Client::connect_tls(self.engine.engine().tls_addr().unwrap(), domain, &setup)
            .map_err(|e| e.to_string())
    }
}

#[test]
fn a_verified_domain_gets_a_certificate_from_the_authority_and_engines_serve_it() {
    let setup = Setup::start(AcmeChallenge::Http01);
    let (dns, control) = (&setup.dns, &setup.control);
    let api = control.client();
    // An unverified domain is never ordered.
    let unverified = api.post("/api/v1/domains", &json!({"domain": "other.example"}));
    assert_eq!(unverified.status, 201);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        api.get("/api/v1/domains/other.example").body["certificate"].is_null(),
        "nothing is ordered before verification"
    );
    setup.verified_domain("brand.example");
    let shown = setup.wait_for_certificate("brand.example");
    assert_eq!(shown["certificate"]["names"], json!(["brand.example"]));
    assert_eq!(shown["certificate"]["status"], "valid");
    assert!(shown["certificate"]["last_error"].is_null());
    // The challenge answer was withdrawn once the order was done.
    let challenges = challenge_changes(control);
    assert!(
        challenges.http01.0 >= 1 && challenges.http01.1 >= 1,
        "{challenges:?}"
    );
    assert_eq!(challenges.alpn01, (0, 0), "{challenges:?}");
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
            directory_url: Pebble::directory_url(setup.acme_listen),
            root_certificate: Some(setup.root_path.clone()),
            contact: Vec::new(),
            challenge: AcmeChallenge::Http01,
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
    // The certificate's own status says the same.
    let certificate = &failed["certificate"];
    assert_eq!(certificate["status"], "failed", "{failed}");
    assert_eq!(certificate["last_error"], order["last_error"], "{failed}");
    assert!(certificate["not_after"].is_null(), "{failed}");
    assert!(certificate["source"].is_null(), "{failed}");

    // Each issue and failure was logged as an event of the domains'
    // workspace (webhooks, docs/WEBHOOKS.md).
    let certificate_events: Vec<(&str, String, bool)> = store
        .events_after(0, 10_000)
        .unwrap()
        .into_iter()
        .filter_map(|event| match event.subject {
            ricochet_control::events::Subject::Certificate { domain, error, .. } => {
                Some((event.kind.as_str(), domain, error.is_some()))
            }
            _ => None,
        })
        .collect();
    let issued = ("certificate.issued", "brand.example".to_owned(), false);
    let failed = ("certificate.failed", "broken.example".to_owned(), true);
    assert_eq!(
        certificate_events.iter().filter(|e| **e == issued).count(),
        2,
        "the order and the renewal: {certificate_events:?}"
    );
    assert!(
        certificate_events.contains(&failed),
        "{certificate_events:?}"
    );
}

#[test]
fn tls_alpn_01_orders_and_a_removed_domain_has_its_certificate_revoked() {
    let setup = Setup::start(AcmeChallenge::TlsAlpn01);
    let control = &setup.control;
    let api = control.client();
    setup.verified_domain("alpn.example");
    let shown = setup.wait_for_certificate("alpn.example");
    // Answered on the HTTPS port only: no HTTP-01 answer was published.
    let challenges = challenge_changes(control);
    assert!(
        challenges.alpn01.0 >= 1 && challenges.alpn01.1 >= 1,
        "{challenges:?}"
    );
    assert_eq!(challenges.http01, (0, 0), "{challenges:?}");
    let serial = shown["certificate"]["serial"].as_str().unwrap().to_owned();
    assert_eq!(setup.pebble.certificate_status(&serial), "Valid");

    // A link on the domain, served by the engine.
    let link = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/landing", "domain": "alpn.example", "code": "promo"}),
    );
    assert_eq!(link.status, 201, "{}", link.text);
    let engine = &setup.engine;
    assert!(eventually(Duration::from_secs(10), || {
        engine.get("/promo", "alpn.example").status == 302
    }));

    // A domain with links is not removed unless its links go with it.
    let refused = api.delete("/api/v1/domains/alpn.example");
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert_eq!(refused.body["error"]["code"], "domain_has_links");
    assert!(api.get("/api/v1/domains/alpn.example").status == 200);
    let bad = api.delete("/api/v1/domains/alpn.example?purge_links=maybe");
    assert_eq!(bad.status, 400, "{}", bad.text);
    // The default domain is the configuration's.
    let default = api.delete("/api/v1/domains/localhost");
    assert_eq!(default.status, 409, "{}", default.text);
    assert_eq!(default.body["error"]["code"], "default_domain");

    let removed = api.delete("/api/v1/domains/alpn.example?purge_links=true");
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(
        removed.body,
        json!({"domain": "alpn.example", "links_purged": 1, "certificate_revocation_queued": true})
    );
    assert_eq!(api.get("/api/v1/domains/alpn.example").status, 404);
    // The authority revokes it; the pending revocation is then forgotten.
    assert!(
        eventually(Duration::from_secs(30), || {
            setup.pebble.certificate_status(&serial) == "Revoked"
        }),
        "the certificate was revoked"
    );
    assert!(eventually(Duration::from_secs(10), || {
        control.control().store().revocations().unwrap().is_empty()
    }));
    // Engines stop serving the link and the certificate.
    assert!(eventually(Duration::from_secs(10), || {
        engine.get("/promo", "alpn.example").status == 404
            && setup.handshake("alpn.example").is_err()
    }));
    let metrics = api.get("/metrics").text;
    assert!(
        metrics.contains("ricochet_control_certificate_revocations_pending 0"),
        "{metrics}"
    );

    // The name can be registered again, and must be verified again.
    let again = api.post("/api/v1/domains", &json!({"domain": "alpn.example"}));
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["verification"]["status"], "pending");
    assert!(again.body["certificate"].is_null());
}

#[test]
fn renewal_information_from_the_authority_brings_a_renewal_forward() {
    let setup = Setup::start_with(AcmeChallenge::Http01, true);
    let proxy = setup.renewal_info.as_ref().unwrap();
    setup.verified_domain("ari.example");
    let first = setup.wait_for_certificate("ari.example")["certificate"]["serial"]
        .as_str()
        .unwrap()
        .to_owned();
    let store = setup.control.control().store();
    let serial = || store.certificate("ari.example").unwrap().unwrap().serial;
    // Asked, and a window a month away changes nothing.
    assert!(eventually(Duration::from_secs(10), || proxy.queries() >= 2));
    assert_eq!(serial(), first);
    assert!(proxy.replaces().is_empty(), "{:?}", proxy.replaces());

    // A window in the past: renewed at once, long before two thirds of the
    // lifetime, and the order names the certificate it replaces.
    proxy.set_renew_now(true);
    assert!(
        eventually(Duration::from_secs(60), || serial() != first),
        "renewed when the authority said so: {:?}",
        store.acme_state("ari.example")
    );
    proxy.set_renew_now(false);
    let replaces = proxy.replaces();
    assert!(
        !replaces.is_empty(),
        "the renewal order names what it replaces"
    );
    // base64url(authority key identifier) "." base64url(serial number).
    use base64::Engine as _;
    let serial_part = replaces[0]
        .split_once('.')
        .map(|(_, serial)| serial)
        .unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(serial_part)
        .unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.trim_start_matches('0'), first, "{replaces:?}");
    assert!(
        eventually(Duration::from_secs(10), || setup
            .handshake("ari.example")
            .is_ok()),
        "the renewed certificate is served"
    );
}

/// Challenge answers in the change log: (published, withdrawn) of each kind.
#[derive(Debug, Default)]
struct ChallengeChanges {
    http01: (usize, usize),
    alpn01: (usize, usize),
}

fn challenge_changes(control: &TestControl) -> ChallengeChanges {
    use ricochet_model::tls::TlsChange;
    let mut counts = ChallengeChanges::default();
    for change in control.control().store().changes_after(0, 100_000).unwrap() {
        let ricochet_model::ChangeOp::Tls { change } = change.op else {
            continue;
        };
        let (slot, published) = match change {
            TlsChange::Http01 {
                key_authorization, ..
            } => (&mut counts.http01, key_authorization.is_some()),
            TlsChange::Alpn01 { pem, .. } => (&mut counts.alpn01, pem.is_some()),
            TlsChange::Certificate { .. } => continue,
        };
        if published {
            slot.0 += 1;
        } else {
            slot.1 += 1;
        }
    }
    counts
}
