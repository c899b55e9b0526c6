//! Certificates and HTTPS settings over the API (real HTTP, real store): a
//! domain's uploaded certificate is checked (parses, key matches, names the
//! domain, not expired), shown without its key, published to engines as one
//! change, and removed; the default certificate belongs to the default
//! workspace; `https_redirect` and `hsts` are patched and validated.

use ricochet_control::test_util::{ApiResponse, TestControl};
use ricochet_model::ChangeOp;
use ricochet_model::tls::{CertificatePem, TlsChange};
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

fn assert_refused(response: &ApiResponse, status: u16, code: &str, field: Option<&str>) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.error_code(), code, "{}", response.text);
    if let Some(field) = field {
        assert_eq!(response.body["error"]["field"], field, "{}", response.text);
    }
}

/// A self-signed certificate for `names`, valid from 2020 until `until_year`.
fn certificate(names: &[&str], until_year: i32) -> CertificatePem {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(until_year, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    CertificatePem {
        chain: cert.pem(),
        key: key.serialize_pem(),
    }
}

fn upload(pem: &CertificatePem) -> Value {
    json!({"certificate": pem.chain, "private_key": pem.key})
}

/// The TLS changes in the log, oldest first.
fn tls_changes(test: &TestControl) -> Vec<TlsChange> {
    test.control()
        .store()
        .changes_after(0, 10_000)
        .unwrap()
        .into_iter()
        .filter_map(|change| match change.op {
            ChangeOp::Tls { change } => Some(change),
            _ => None,
        })
        .collect()
}

#[test]
fn an_uploaded_certificate_is_shown_without_its_key_published_and_removed() {
    let test = TestControl::start();
    let api = test.client();
    let created = ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    assert!(created["certificate"].is_null());
    assert_eq!(created["https_redirect"], false);
    assert!(created["hsts"].is_null());

    let pem = certificate(&["brand.example", "www.brand.example"], 2099);
    let answer = api.put("/api/v1/domains/Brand.Example/certificate", &upload(&pem));
    assert!(!answer.text.contains("PRIVATE KEY"), "{}", answer.text);
    let view = ok(answer);
    let shown = &view["certificate"];
    assert_eq!(shown["status"], "valid");
    assert!(shown["last_error"].is_null());
    assert_eq!(shown["source"], "uploaded");
    assert_eq!(
        shown["names"],
        json!(["brand.example", "www.brand.example"])
    );
    assert_eq!(shown["not_after"], "2099-01-01T00:00:00Z");
    assert_eq!(shown["not_before"], "2020-01-01T00:00:00Z");
    assert!(shown["issuer"].as_str().is_some());
    assert_eq!(ok(api.get("/api/v1/domains/brand.example")), view);
    let listed = ok(api.get("/api/v1/domains"));
    let listed = listed["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "brand.example")
        .unwrap()
        .clone();
    assert_eq!(listed, view);

    // One change carries chain and key to engines.
    assert_eq!(
        tls_changes(&test),
        [TlsChange::Certificate {
            name: "brand.example".into(),
            pem: Some(pem.clone()),
        }]
    );

    // A wildcard certificate covers its subdomains.
    ok(api.post("/api/v1/domains", &json!({"domain": "go.links.example"})));
    let wildcard = certificate(&["*.links.example"], 2099);
    ok(api.put(
        "/api/v1/domains/go.links.example/certificate",
        &upload(&wildcard),
    ));

    let removed = ok(api.delete("/api/v1/domains/brand.example/certificate"));
    assert!(removed["certificate"].is_null());
    assert_eq!(
        tls_changes(&test).last(),
        Some(&TlsChange::Certificate {
            name: "brand.example".into(),
            pem: None,
        })
    );
    // Removing what is not there publishes nothing.
    ok(api.delete("/api/v1/domains/brand.example/certificate"));
    assert_eq!(tls_changes(&test).len(), 3);
}

#[test]
fn certificates_that_cannot_be_served_are_refused_naming_the_field() {
    let test = TestControl::start();
    let api = test.client();
    ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    let good = certificate(&["brand.example"], 2099);
    let other = certificate(&["brand.example"], 2099);
    let path = "/api/v1/domains/brand.example/certificate";

    let cases = [
        (
            upload(&certificate(&["other.example"], 2099)),
            "certificate_name_mismatch",
            "certificate",
        ),
        (
            upload(&certificate(&["brand.example"], 2021)),
            "certificate_expired",
            "certificate",
        ),
        (
            json!({"certificate": good.chain, "private_key": other.key}),
            "key_mismatch",
            "private_key",
        ),
        (
            json!({"certificate": good.chain, "private_key": "not a key"}),
            "invalid_key",
            "private_key",
        ),
        (
            json!({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "private_key": good.key}),
            "invalid_certificate",
            "certificate",
        ),
        (
            json!({"certificate": "", "private_key": good.key}),
            "invalid_certificate",
            "certificate",
        ),
    ];
    for (body, code, field) in cases {
        assert_refused(&api.put(path, &body), 400, code, Some(field));
    }
    // A body without the key is malformed.
    assert_eq!(
        api.put(path, &json!({"certificate": good.chain})).status,
        400
    );
    assert!(tls_changes(&test).is_empty(), "nothing was published");
    assert!(ok(api.get("/api/v1/domains/brand.example"))["certificate"].is_null());
    assert_refused(
        &api.put(
            "/api/v1/domains/missing.example/certificate",
            &upload(&good),
        ),
        404,
        "domain_not_found",
        None,
    );
}

#[test]
fn only_the_owning_workspace_sets_a_certificate_and_the_default_one_is_the_default_workspaces() {
    let test = TestControl::start();
    let admin = test.client();
    ok(admin.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    let brand = certificate(&["brand.example"], 2099);
    let fallback = certificate(&["fallback.example"], 2099);

    // The default certificate: none, set, shown, removed.
    assert_eq!(
        ok(admin.get("/api/v1/certificates/default")),
        json!({"certificate": null})
    );
    let set = ok(admin.put("/api/v1/certificates/default", &upload(&fallback)));
    assert_eq!(set["certificate"]["names"], json!(["fallback.example"]));
    assert!(!set.to_string().contains("PRIVATE KEY"));
    assert_eq!(ok(admin.get("/api/v1/certificates/default")), set);

    let owner = test.owner_client();
    let other = ok(owner.post("/api/v1/workspaces", &json!({"name": "Other"})));
    let id = other["id"].as_str().unwrap();
    ok(owner.post(&format!("/api/v1/workspaces/{id}/switch"), &json!({})));
    assert_refused(
        &owner.put("/api/v1/domains/brand.example/certificate", &upload(&brand)),
        404,
        "domain_not_found",
        None,
    );
    assert_refused(
        &owner.put("/api/v1/domains/localhost/certificate", &upload(&brand)),
        403,
        "domain_not_owned",
        None,
    );
    assert_refused(
        &owner.put("/api/v1/certificates/default", &upload(&fallback)),
        403,
        "domain_not_owned",
        None,
    );
    assert_refused(
        &owner.delete("/api/v1/certificates/default"),
        403,
        "domain_not_owned",
        None,
    );

    assert_eq!(admin.delete("/api/v1/certificates/default").status, 204);
    assert_eq!(
        ok(admin.get("/api/v1/certificates/default")),
        json!({"certificate": null})
    );
    assert_eq!(
        tls_changes(&test),
        [
            TlsChange::Certificate {
                name: "*".into(),
                pem: Some(fallback),
            },
            TlsChange::Certificate {
                name: "*".into(),
                pem: None,
            },
        ]
    );
}

#[test]
fn https_redirect_and_hsts_are_patched_validated_and_cleared() {
    let test = TestControl::start();
    let api = test.client();
    ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    let patched = ok(api.patch(
        "/api/v1/domains/brand.example",
        &json!({"https_redirect": true, "hsts": {"max_age": 31536000, "include_subdomains": true, "preload": true}}),
    ));
    assert_eq!(patched["https_redirect"], true);
    assert_eq!(
        patched["hsts"],
        json!({"max_age": 31536000, "include_subdomains": true, "preload": true})
    );
    let published = test
        .control()
        .store()
        .changes_after(0, 100)
        .unwrap()
        .into_iter()
        .filter_map(|change| match change.op {
            ChangeOp::Domain { settings } => Some(settings),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert!(published.https_redirect);
    assert_eq!(published.hsts.unwrap().max_age, 31_536_000);

    for (body, field) in [
        (
            json!({"hsts": {"max_age": 3600, "preload": true}}),
            "hsts.preload",
        ),
        (json!({"hsts": {"max_age": 70000000}}), "hsts.max_age"),
    ] {
        assert_refused(
            &api.patch("/api/v1/domains/brand.example", &body),
            400,
            "invalid_hsts",
            Some(field),
        );
    }
    for body in [
        json!({"hsts": {"max_age": -1}}),
        json!({"hsts": {"max_age": 60, "extra": 1}}),
        json!({"https_redirect": "yes"}),
    ] {
        assert_eq!(
            api.patch("/api/v1/domains/brand.example", &body).status,
            400,
            "{body}"
        );
    }
    assert_eq!(ok(api.get("/api/v1/domains/brand.example")), patched);

    let cleared = ok(api.patch(
        "/api/v1/domains/brand.example",
        &json!({"https_redirect": false, "hsts": null}),
    ));
    assert_eq!(cleared["https_redirect"], false);
    assert!(cleared["hsts"].is_null());
}

#[test]
fn a_removed_domain_takes_its_links_settings_and_certificate_off_engines() {
    let test = TestControl::start();
    let api = test.client();
    ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    ok(api.patch(
        "/api/v1/domains/brand.example",
        &json!({"root_url": "https://brand.example.org/", "https_redirect": true}),
    ));
    let pem = certificate(&["brand.example"], 2099);
    ok(api.put("/api/v1/domains/brand.example/certificate", &upload(&pem)));
    for code in ["one", "two", "three"] {
        ok(api.post(
            "/api/v1/links",
            &json!({"url": "https://example.com/", "domain": "brand.example", "code": code}),
        ));
    }
    // A deleted link still holds its code: it counts.
    let links = ok(api.get("/api/v1/links?domain=brand.example"));
    let id = links["links"][0]["id"].as_u64().unwrap();
    ok(api.delete(&format!("/api/v1/links/{id}")));

    let refused = api.delete("/api/v1/domains/brand.example");
    assert_refused(&refused, 409, "domain_has_links", None);
    assert!(refused.text.contains("3 links"), "{}", refused.text);
    assert_refused(
        &api.delete("/api/v1/domains/brand.example?purge=1"),
        400,
        "invalid_query",
        None,
    );
    assert_refused(
        &api.delete("/api/v1/domains/nowhere.example"),
        404,
        "domain_not_found",
        None,
    );
    assert_refused(
        &api.delete("/api/v1/domains/localhost"),
        409,
        "default_domain",
        None,
    );
    // Another workspace does not see the domain.
    let owner = test.owner_client();
    let other = ok(owner.post("/api/v1/workspaces", &json!({"name": "Other"})));
    let other_id = other["id"].as_str().unwrap();
    ok(owner.post(&format!("/api/v1/workspaces/{other_id}/switch"), &json!({})));
    assert_refused(
        &owner.delete("/api/v1/domains/brand.example?purge_links=true"),
        404,
        "domain_not_found",
        None,
    );
    let before = test
        .control()
        .store()
        .changes_after(0, 10_000)
        .unwrap()
        .len();

    let removed = ok(api.delete("/api/v1/domains/Brand.Example?purge_links=true"));
    assert_eq!(
        removed,
        json!({"domain": "brand.example", "links_purged": 3, "certificate_revocation_queued": false})
    );
    assert_refused(
        &api.get("/api/v1/domains/brand.example"),
        404,
        "domain_not_found",
        None,
    );
    assert_eq!(
        ok(api.get("/api/v1/links?domain=brand.example"))["links"],
        json!([])
    );
    // Engines are told: three purges, the certificate withdrawn, settings
    // emptied. An uploaded certificate is not the authority's to revoke.
    let changes = test.control().store().changes_after(0, 10_000).unwrap();
    let new: Vec<_> = changes[before..].iter().map(|c| c.op.clone()).collect();
    assert_eq!(new.len(), 5, "{new:?}");
    assert!(
        new[..3]
            .iter()
            .all(|op| matches!(op, ChangeOp::Purge { key } if key.domain == "brand.example"))
    );
    assert_eq!(
        new[3],
        ChangeOp::Tls {
            change: TlsChange::Certificate {
                name: "brand.example".into(),
                pem: None,
            }
        }
    );
    assert!(
        matches!(&new[4], ChangeOp::Domain { settings } if settings.domain == "brand.example" && settings.is_empty())
    );
    assert!(test.control().store().revocations().unwrap().is_empty());

    // The name is free again: registered anew, without certificate or settings.
    let again = ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    assert!(again["certificate"].is_null());
    assert!(again["root_url"].is_null());
    assert_eq!(again["https_redirect"], false);
}

#[test]
fn a_verified_domain_waiting_for_its_certificate_shows_pending() {
    // An authority nobody will reach: the issuer's first round is an hour away.
    let test = TestControl::start_with(
        |c| {
            c.acme.directory_url = "https://127.0.0.1:9/dir".into();
            c.acme.check_interval = std::time::Duration::from_secs(3600);
        },
        std::sync::Arc::new(ricochet_model::bus::LocalBus::new()),
    );
    let api = test.client();
    let created = ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    assert_eq!(
        created["certificate"],
        json!({
            "status": "pending", "source": null, "names": [], "not_before": null,
            "not_after": null, "issuer": null, "serial": null, "updated_at": null,
            "last_error": null, "next_attempt_at": null
        })
    );
    // A local name is never ordered: nothing pending for it.
    assert!(ok(api.get("/api/v1/domains/localhost"))["certificate"].is_null());
    // An uploaded certificate is what is served, valid.
    let pem = certificate(&["brand.example"], 2099);
    let served = ok(api.put("/api/v1/domains/brand.example/certificate", &upload(&pem)));
    assert_eq!(served["certificate"]["status"], "valid");
    assert_eq!(served["certificate"]["source"], "uploaded");
}
