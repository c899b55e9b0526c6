//! Domain verification by DNS TXT record, against a real DNS server
//! (`pebble-challtestsrv`) and hickory's resolver: a new domain is pending
//! with the record to create; links and certificates are refused on it; a
//! check names what is wrong (no record, wrong value, timeout); the right
//! record verifies it; attempts run out and the verification restarts with a
//! new token; the background pass re-checks pending domains and flags a
//! verified one whose record disappeared without dropping it.

use std::net::UdpSocket;
use std::time::Duration;

use ricochet_control::config::VerificationMode;
use ricochet_control::dns::DnsLookup;
use ricochet_control::service::{LinkService, LinkSettings};
use ricochet_control::test_util::{ApiResponse, ChallTestSrv, TestControl};
use serde_json::{Value, json};

fn ok(response: ApiResponse) -> Value {
    assert!(
        (200..300).contains(&response.status),
        "{}: {}",
        response.status,
        response.text
    );
    response.body
}

fn assert_refused(response: &ApiResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.error_code(), code, "{}", response.text);
}

fn control_with_dns(server: std::net::SocketAddr) -> TestControl {
    TestControl::start_with(
        |c| {
            c.domains.verification = VerificationMode::Dns;
            c.domains.dns_server = server.to_string();
            c.domains.dns_timeout = Duration::from_millis(500);
            // The background pass is exercised through the service below.
            c.domains.check_interval = Duration::from_secs(3600);
        },
        std::sync::Arc::new(ricochet_model::LocalBus::new()),
    )
}

#[test]
fn a_domain_is_verified_by_its_txt_record_and_only_then_takes_links_and_certificates() {
    let dns = ChallTestSrv::start();
    let test = control_with_dns(dns.dns_addr());
    let api = test.client();

    let created = ok(api.post("/api/v1/domains", &json!({"domain": "Brand.Example"})));
    let verification = &created["verification"];
    assert_eq!(verification["status"], "pending");
    assert_eq!(verification["method"], "dns");
    assert_eq!(verification["attempts"], 0);
    assert_eq!(verification["record"]["type"], "TXT");
    assert_eq!(
        verification["record"]["name"],
        "_ricochet-challenge.brand.example"
    );
    let value = verification["record"]["value"].as_str().unwrap().to_owned();
    assert!(value.starts_with("ricochet-verification="), "{value}");
    assert!(value.len() > "ricochet-verification=".len() + 20, "{value}");
    assert!(verification["expires_at"].as_str().is_some());

    let metrics = api.get("/metrics").text;
    assert!(
        metrics.contains("\nricochet_control_domains_pending_verification 1\n"),
        "{metrics}"
    );

    // Nothing lives on a pending domain.
    let link = json!({"url": "https://example.com/", "domain": "brand.example", "code": "spring"});
    let refused = api.post("/api/v1/links", &link);
    assert_refused(&refused, 422, "domain_not_verified");
    assert_eq!(refused.body["error"]["field"], "domain");
    let pem = {
        let generated = rcgen::generate_simple_self_signed(vec!["brand.example".into()]).unwrap();
        json!({"certificate": generated.cert.pem(), "private_key": generated.signing_key.serialize_pem()})
    };
    assert_refused(
        &api.put("/api/v1/domains/brand.example/certificate", &pem),
        422,
        "domain_not_verified",
    );

    // No record yet.
    let checked = ok(api.post("/api/v1/domains/brand.example/verify", &json!({})));
    assert_eq!(checked["verification"]["status"], "failed");
    assert_eq!(checked["verification"]["attempts"], 1);
    let reason = checked["verification"]["failure"].as_str().unwrap();
    assert!(
        reason.starts_with("no record") || reason.starts_with("NXDOMAIN"),
        "{reason}"
    );
    assert!(
        reason.contains(&value),
        "the reason says what to create: {reason}"
    );

    // A wrong value.
    dns.set_txt(
        "_ricochet-challenge.brand.example",
        "ricochet-verification=someone-else",
    );
    let checked = ok(api.post("/api/v1/domains/brand.example/verify", &json!({})));
    assert_eq!(checked["verification"]["status"], "failed");
    let reason = checked["verification"]["failure"].as_str().unwrap();
    assert!(reason.starts_with("wrong value"), "{reason}");
    assert!(reason.contains("someone-else"), "{reason}");

    // The right one, beside the wrong one.
    dns.set_txt("_ricochet-challenge.brand.example", &value);
    let verified = ok(api.post("/api/v1/domains/brand.example/verify", &json!({})));
    assert_eq!(verified["verification"]["status"], "verified");
    assert!(verified["verification"]["verified_at"].as_str().is_some());
    assert!(verified["verification"]["failure"].is_null());
    assert!(verified["verification"]["expires_at"].is_null());
    assert_eq!(ok(api.get("/api/v1/domains/brand.example")), verified);

    assert_eq!(api.post("/api/v1/links", &link).status, 201);
    assert_eq!(
        api.put("/api/v1/domains/brand.example/certificate", &pem)
            .status,
        200
    );
    let metrics = api.get("/metrics").text;
    for line in [
        "ricochet_control_domains_pending_verification 0",
        "ricochet_control_certificates 1",
        "ricochet_control_certificate_orders_failing 0",
    ] {
        assert!(
            metrics.contains(&format!("\n{line}\n")),
            "{line}: {metrics}"
        );
    }
    // Checking a verified domain again changes nothing; restarting it is refused.
    assert_eq!(
        ok(api.post("/api/v1/domains/brand.example/verify", &json!({})))["verification"],
        verified["verification"]
    );
    assert_refused(
        &api.post("/api/v1/domains/brand.example/verification", &json!({})),
        409,
        "domain_already_verified",
    );

    // The default domain counts as verified: the operator configured it.
    let default = ok(api.get("/api/v1/domains/localhost"));
    assert_eq!(default["verification"]["status"], "verified");
    assert_eq!(default["verification"]["method"], "configuration");
    assert!(default["verification"]["record"].is_null());
}

#[test]
fn a_dns_server_that_does_not_answer_is_reported_as_a_timeout() {
    // A socket that takes queries and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let test = control_with_dns(silent.local_addr().unwrap());
    let api = test.client();
    ok(api.post("/api/v1/domains", &json!({"domain": "slow.example"})));
    let checked = ok(api.post("/api/v1/domains/slow.example/verify", &json!({})));
    assert_eq!(checked["verification"]["status"], "failed");
    let reason = checked["verification"]["failure"].as_str().unwrap();
    assert!(reason.starts_with("timeout"), "{reason}");
}

#[test]
fn attempts_run_out_and_a_restarted_verification_has_a_new_token() {
    let dns = ChallTestSrv::start();
    let test = control_with_dns(dns.dns_addr());
    let api = test.client();
    let created = ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    let first_value = created["verification"]["record"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    for attempt in 1..=10 {
        let checked = ok(api.post("/api/v1/domains/brand.example/verify", &json!({})));
        assert_eq!(checked["verification"]["attempts"], attempt);
    }
    let last = ok(api.get("/api/v1/domains/brand.example"));
    assert!(
        last["verification"]["next_check_at"].is_null(),
        "no more background checks: {last}"
    );
    assert_refused(
        &api.post("/api/v1/domains/brand.example/verify", &json!({})),
        409,
        "verification_expired",
    );

    let restarted = ok(api.post("/api/v1/domains/brand.example/verification", &json!({})));
    let verification = &restarted["verification"];
    assert_eq!(verification["status"], "pending");
    assert_eq!(verification["attempts"], 0);
    let value = verification["record"]["value"].as_str().unwrap();
    assert_ne!(value, first_value, "a new token");
    dns.set_txt("_ricochet-challenge.brand.example", value);
    let verified = ok(api.post("/api/v1/domains/brand.example/verify", &json!({})));
    assert_eq!(verified["verification"]["status"], "verified");

    // Another workspace's domain cannot be verified or restarted from here.
    let owner = test.owner_client();
    let other = ok(owner.post("/api/v1/workspaces", &json!({"name": "Other"})));
    let id = other["id"].as_str().unwrap();
    ok(owner.post(&format!("/api/v1/workspaces/{id}/switch"), &json!({})));
    for path in [
        "/api/v1/domains/brand.example/verify",
        "/api/v1/domains/brand.example/verification",
    ] {
        assert_refused(&owner.post(path, &json!({})), 404, "domain_not_found");
    }
}

#[test]
fn the_background_pass_verifies_pending_domains_and_flags_a_vanished_record() {
    let dns = ChallTestSrv::start();
    let test = control_with_dns(dns.dns_addr());
    let api = test.client();
    let created = ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    let value = created["verification"]["record"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let service = LinkService::new(
        test.control().store().clone(),
        LinkSettings::new("localhost", 7, 100, &[]),
    );
    let lookup = DnsLookup::new(Some(dns.dns_addr()), Duration::from_secs(2)).unwrap();
    let now = ricochet_model::now_millis();
    const MINUTE: i64 = 60_000;

    // Not due yet: the first background check waits a minute.
    assert_eq!(service.check_due_domains(&lookup, now).unwrap(), 0);
    dns.set_txt("_ricochet-challenge.brand.example", &value);
    assert_eq!(
        service
            .check_due_domains(&lookup, now + 2 * MINUTE)
            .unwrap(),
        1
    );
    let domain = ok(api.get("/api/v1/domains/brand.example"));
    assert_eq!(domain["verification"]["status"], "verified");

    // A day later the record is gone: the domain is flagged, and keeps working.
    dns.clear_txt("_ricochet-challenge.brand.example");
    let day_later = now + 2 * MINUTE + 24 * 60 * MINUTE + 1;
    assert_eq!(service.check_due_domains(&lookup, day_later).unwrap(), 1);
    let flagged = ok(api.get("/api/v1/domains/brand.example"));
    assert_eq!(flagged["verification"]["status"], "verified");
    assert!(
        flagged["verification"]["record_missing_since"]
            .as_str()
            .is_some(),
        "{flagged}"
    );
    assert!(flagged["verification"]["failure"].as_str().is_some());
    let link = json!({"url": "https://example.com/", "domain": "brand.example"});
    assert_eq!(api.post("/api/v1/links", &link).status, 201);

    // The record is back: the flag goes.
    dns.set_txt("_ricochet-challenge.brand.example", &value);
    let two_days_later = day_later + 24 * 60 * MINUTE + 1;
    assert_eq!(
        service.check_due_domains(&lookup, two_days_later).unwrap(),
        1
    );
    let restored = ok(api.get("/api/v1/domains/brand.example"));
    assert!(restored["verification"]["record_missing_since"].is_null());
    assert!(restored["verification"]["failure"].is_null());

    // The workspace heard of each change of outcome, once (docs/WEBHOOKS.md).
    let domain_events: Vec<(&str, String)> = test
        .control()
        .store()
        .events_after(0, 1000)
        .unwrap()
        .into_iter()
        .filter_map(|event| match event.subject {
            ricochet_control::events::Subject::Domain { domain, .. } => {
                Some((event.kind.as_str(), domain))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        domain_events,
        [
            ("domain.verified", "brand.example".to_owned()),
            ("domain.failed", "brand.example".to_owned())
        ]
    );
}
