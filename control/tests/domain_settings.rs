//! Domain settings over the API (real HTTP, real store): root and
//! unknown-code destinations and the default status are read, patched and
//! cleared; bad values are refused naming their field with nothing stored;
//! only the workspace owning a domain changes its settings (the default
//! domain's belong to the default workspace); new links take the domain's
//! default status; each accepted edit is one change in the engines' log.

use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use ricochet_model::{ChangeOp, DomainSettings, RedirectStatus};
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
    match field {
        Some(field) => assert_eq!(response.body["error"]["field"], field, "{}", response.text),
        None => assert!(
            response.body["error"]["field"].is_null(),
            "{}",
            response.text
        ),
    }
}

/// The domain changes in the log, oldest first.
fn domain_changes(test: &TestControl) -> Vec<DomainSettings> {
    test.control()
        .store()
        .changes_after(0, 10_000)
        .unwrap()
        .into_iter()
        .filter_map(|change| match change.op {
            ChangeOp::Domain { settings } => Some(settings),
            _ => None,
        })
        .collect()
}

#[test]
fn settings_are_read_patched_cleared_and_published() {
    let test = TestControl::start();
    let api = test.client();
    let created = ok(api.post("/api/v1/domains", &json!({"domain": "Brand.Example"})));
    assert_eq!(created["domain"], "brand.example");
    assert!(created["root_url"].is_null());
    assert!(created["not_found_url"].is_null());
    assert_eq!(created["default_status"], 302);
    assert_eq!(created["owned"], true);
    assert_eq!(created["is_default"], false);

    let patched = ok(api.patch(
        "/api/v1/domains/brand.example",
        &json!({"root_url": "https://www.brand.example", "not_found_url": "https://www.brand.example/404",
                "default_status": 301}),
    ));
    // Destinations are stored normalized.
    assert_eq!(patched["root_url"], "https://www.brand.example/");
    assert_eq!(patched["not_found_url"], "https://www.brand.example/404");
    assert_eq!(patched["default_status"], 301);
    assert_eq!(ok(api.get("/api/v1/domains/Brand.Example.")), patched);
    let listed = ok(api.get("/api/v1/domains"));
    let brand = listed["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "brand.example")
        .unwrap();
    assert_eq!(brand, &patched);

    // New links on it take its default status unless they give one.
    let link = ok(api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/a", "domain": "brand.example"}),
    ));
    assert_eq!(link["status"], 301);
    let link = ok(api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/b", "domain": "brand.example", "status": 307}),
    ));
    assert_eq!(link["status"], 307);
    let default_domain = ok(api.post("/api/v1/links", &json!({"url": "https://example.com/c"})));
    assert_eq!(default_domain["status"], 302);

    // Absent fields stay; null clears a destination.
    let cleared = ok(api.patch("/api/v1/domains/brand.example", &json!({"root_url": null})));
    assert!(cleared["root_url"].is_null());
    assert_eq!(cleared["not_found_url"], "https://www.brand.example/404");
    assert_eq!(cleared["default_status"], 301);

    let changes = domain_changes(&test);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(changes[0].domain, "brand.example");
    assert_eq!(
        changes[0].root_url.as_deref(),
        Some("https://www.brand.example/")
    );
    assert_eq!(changes[0].default_status, RedirectStatus::MovedPermanently);
    assert_eq!(changes[1].root_url, None);
    assert_eq!(
        changes[1].not_found_url.as_deref(),
        Some("https://www.brand.example/404")
    );
    // An empty patch changes nothing and publishes nothing.
    assert_eq!(
        ok(api.patch("/api/v1/domains/brand.example", &json!({}))),
        cleared
    );
    assert_eq!(domain_changes(&test).len(), 2);
}

#[test]
fn bad_settings_are_refused_with_their_field_and_nothing_stored() {
    let test = TestControl::start();
    let api = test.client();
    ok(api.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    let path = "/api/v1/domains/brand.example";
    let cases = [
        (json!({"root_url": "javascript:alert(1)"}), "root_url"),
        (json!({"root_url": "https://example.com/\u{0}"}), "root_url"),
        (
            json!({"not_found_url": "ftp://example.com/"}),
            "not_found_url",
        ),
        (
            json!({"not_found_url": "https://example.com/%0d%0aSet-Cookie:x"}),
            "not_found_url",
        ),
        (
            json!({"root_url": "https://ok.example/", "default_status": 200}),
            "default_status",
        ),
    ];
    for (body, field) in cases {
        let answer = api.patch(path, &body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(
            answer.body["error"]["field"], field,
            "{body}: {}",
            answer.text
        );
    }
    // A destination on a short domain of this installation could loop.
    for (body, field) in [
        (json!({"root_url": "https://brand.example/x"}), "root_url"),
        (
            json!({"not_found_url": "http://localhost/x"}),
            "not_found_url",
        ),
    ] {
        assert_refused(
            &api.patch(path, &body),
            400,
            "destination_is_short_link",
            Some(field),
        );
    }
    let unknown = api.patch(path, &json!({"root": "https://ok.example/"}));
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    let after = ok(api.get(path));
    assert!(after["root_url"].is_null(), "{after}");
    assert_eq!(after["default_status"], 302);
    assert!(domain_changes(&test).is_empty());

    assert_refused(
        &api.patch("/api/v1/domains/never.example", &json!({"root_url": null})),
        404,
        "domain_not_found",
        None,
    );
    assert_refused(
        &api.get("/api/v1/domains/bad..domain"),
        404,
        "domain_not_found",
        None,
    );
}

#[test]
fn only_the_owning_workspace_changes_a_domains_settings() {
    let test = TestControl::start();
    let admin = test.client();
    ok(admin.post("/api/v1/domains", &json!({"domain": "brand.example"})));
    // The default domain belongs to the default workspace, which the admin
    // key acts in.
    let default = ok(admin.patch(
        "/api/v1/domains/localhost",
        &json!({"not_found_url": "https://www.example.com/"}),
    ));
    assert_eq!(default["is_default"], true);
    assert_eq!(default["owned"], true);

    // A second workspace sees the default domain but may not change it, and
    // does not see the first workspace's domain at all.
    let owner = test.owner_client();
    let other = ok(owner.post("/api/v1/workspaces", &json!({"name": "Other"})));
    let id = other["id"].as_str().unwrap();
    ok(owner.post(&format!("/api/v1/workspaces/{id}/switch"), &json!({})));
    let seen = ok(owner.get("/api/v1/domains/localhost"));
    assert_eq!(seen["owned"], false);
    assert_eq!(seen["not_found_url"], "https://www.example.com/");
    assert_refused(
        &owner.patch("/api/v1/domains/localhost", &json!({"root_url": null})),
        403,
        "domain_not_owned",
        None,
    );
    for answer in [
        owner.get("/api/v1/domains/brand.example"),
        owner.patch("/api/v1/domains/brand.example", &json!({"root_url": null})),
    ] {
        assert_refused(&answer, 404, "domain_not_found", None);
    }
    let listed = ok(owner.get("/api/v1/domains"));
    let names: Vec<&str> = listed["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["localhost"]);
    // Its own domain is its own to set.
    ok(owner.post("/api/v1/domains", &json!({"domain": "other.example"})));
    let own = ok(owner.patch(
        "/api/v1/domains/other.example",
        &json!({"root_url": "https://www.other.example/"}),
    ));
    assert_eq!(own["owned"], true);
    assert_eq!(domain_changes(&test).len(), 2);

    // A read-only key cannot patch.
    let key = ok(admin.post(
        "/api/v1/keys",
        &json!({"name": "reader", "scopes": ["links:read"]}),
    ));
    let reader = ApiClient::new(&test.base_url(), key["token"].as_str());
    assert_eq!(reader.get("/api/v1/domains/brand.example").status, 200);
    assert_refused(
        &reader.patch("/api/v1/domains/brand.example", &json!({"root_url": null})),
        403,
        "insufficient_scope",
        None,
    );
}
