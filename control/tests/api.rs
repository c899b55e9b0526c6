//! The operators' API over real HTTP: links, domains, pagination, idempotency,
//! bulk, scopes, rate limits, the OpenAPI document, the change log, and every
//! bad-input case answered in the one JSON error shape with nothing stored.

use std::sync::Arc;
use std::time::Duration;

use ricochet_control::keys::{KeyRing, Scope};
use ricochet_control::store::DEFAULT_WORKSPACE;
use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_model::bus::LocalBus;
use serde_json::{Value, json};

fn assert_error(response: &ricochet_control::test_util::ApiResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.error_code(), code, "{}", response.text);
    assert!(
        response.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(
        response.body["error"].get("field").is_some(),
        "field is always present"
    );
}

#[test]
fn create_with_random_and_custom_codes() {
    let test = TestControl::start();
    let api = test.client();
    let random = api.post("/api/v1/links", &json!({"url": "https://example.com/a"}));
    assert_eq!(random.status, 201, "{}", random.text);
    let code = random.body["code"].as_str().unwrap();
    assert_eq!(code.len(), 7);
    assert!(code.chars().all(|c| c.is_ascii_alphanumeric()), "{code}");
    assert_eq!(random.body["domain"], "localhost");
    assert_eq!(random.body["status"], 302);
    assert_eq!(random.body["state"], "active");

    let custom = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/b", "code": "my-slug", "status": 301,
                "title": "B", "tags": ["x", "y"], "forward_query": true,
                "expires_at": "2030-01-01T00:00:00Z"}),
    );
    assert_eq!(custom.status, 201, "{}", custom.text);
    assert_eq!(custom.body["code"], "my-slug");
    assert_eq!(custom.body["status"], 301);
    assert_eq!(custom.body["tags"], json!(["x", "y"]));
    assert_eq!(custom.body["expires_at"], "2030-01-01T00:00:00Z");

    let taken = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/c", "code": "my-slug"}),
    );
    assert_error(&taken, 409, "code_taken");
    assert_eq!(taken.body["error"]["field"], "code");

    for reserved in ["api", "Admin", "healthz"] {
        let response = api.post(
            "/api/v1/links",
            &json!({"url": "https://example.com/", "code": reserved}),
        );
        assert_error(&response, 400, "reserved_code");
    }

    let id = custom.body["id"].as_u64().unwrap();
    let fetched = api.get(&format!("/api/v1/links/{id}"));
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.body["url"], "https://example.com/b");
}

#[test]
fn codes_are_unique_per_domain_not_globally() {
    let test = TestControl::start();
    let api = test.client();
    assert_eq!(
        api.post("/api/v1/domains", &json!({"domain": "Brand.Example"}))
            .status,
        201
    );
    assert_error(
        &api.post("/api/v1/domains", &json!({"domain": "brand.example"})),
        409,
        "domain_exists",
    );
    let a = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/1", "code": "same"}),
    );
    let b = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/2", "code": "same", "domain": "brand.example"}),
    );
    assert_eq!((a.status, b.status), (201, 201));
    let unknown = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/", "domain": "nope.example"}),
    );
    assert_error(&unknown, 422, "unknown_domain");
    let domains = api.get("/api/v1/domains");
    let names: Vec<&str> = domains.body["domains"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["brand.example", "localhost"]);
}

#[test]
fn bad_input_gets_a_json_error_and_stores_nothing() {
    let test = TestControl::start();
    let api = test.client();
    let before = test.control().store().latest_version();
    let long = format!("https://example.com/{}", "a".repeat(5000));
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"url": "javascript:alert(1)"}), 400, "invalid_url"),
        (json!({"url": "data:text/html,hi"}), 400, "invalid_url"),
        (json!({"url": "file:///etc/passwd"}), 400, "invalid_url"),
        (json!({"url": "/relative"}), 400, "invalid_url"),
        (
            json!({"url": "https://e.com/\r\nSet-Cookie: a=b"}),
            400,
            "invalid_url",
        ),
        (
            json!({"url": "https://e.com/%0d%0aSet-Cookie:a"}),
            400,
            "invalid_url",
        ),
        (json!({"url": "https://e.com/\u{7}"}), 400, "invalid_url"),
        (json!({"url": long}), 400, "invalid_url"),
        (
            json!({"url": "https://e.com/", "code": "bad slug"}),
            400,
            "invalid_code",
        ),
        (
            json!({"url": "https://e.com/", "code": "x".repeat(65)}),
            400,
            "invalid_code",
        ),
        (
            json!({"url": "https://e.com/", "status": 200}),
            400,
            "invalid_status",
        ),
        (
            json!({"url": "https://e.com/", "domain": "bad domain"}),
            400,
            "invalid_domain",
        ),
        (
            json!({"url": "https://e.com/", "tags": [""]}),
            400,
            "invalid_tags",
        ),
        (
            json!({"url": "https://e.com/", "surprise": 1}),
            400,
            "invalid_field",
        ),
        (json!({"code": "nourl"}), 400, "invalid_field"),
        (json!({"url": 7}), 400, "invalid_field"),
        (
            json!({"url": "https://e.com/", "expires_at": "tomorrow"}),
            400,
            "invalid_field",
        ),
    ];
    for (body, status, code) in cases {
        let response = api.post("/api/v1/links", &body);
        assert_error(&response, status, code);
    }
    let surprise = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/", "surprise": 1}),
    );
    assert_eq!(surprise.body["error"]["field"], "surprise");

    let malformed = api.send(
        "POST",
        "/api/v1/links",
        Some(("application/json", b"{\"url\":")),
        &[],
    );
    assert_error(&malformed, 400, "invalid_json");
    let wrong_type = api.send(
        "POST",
        "/api/v1/links",
        Some(("text/plain", b"{\"url\":\"https://e.com/\"}")),
        &[],
    );
    assert_error(&wrong_type, 415, "unsupported_media_type");
    let no_type = api.send(
        "POST",
        "/api/v1/links",
        Some(("", b"{\"url\":\"https://e.com/\"}")),
        &[],
    );
    assert_error(&no_type, 415, "unsupported_media_type");
    let huge = vec![b' '; 5 * 1024 * 1024];
    let too_big = api.send(
        "POST",
        "/api/v1/links",
        Some(("application/json", &huge)),
        &[],
    );
    assert_error(&too_big, 413, "payload_too_large");

    assert_error(
        &api.get("/api/v1/links?cursor=garbage"),
        400,
        "invalid_cursor",
    );
    assert_error(&api.get("/api/v1/links?sort=sideways"), 400, "invalid_sort");
    assert_error(&api.get("/api/v1/links?limit=0"), 400, "invalid_limit");
    assert_error(&api.get("/api/v1/links?state=odd"), 400, "invalid_state");
    assert_error(&api.get("/api/v1/links?bogus=1"), 400, "invalid_query");
    assert_error(&api.get("/api/v1/links/abc"), 404, "not_found");
    assert_error(&api.get("/api/v1/links/999"), 404, "not_found");
    assert_error(&api.get("/api/v1/nothing"), 404, "not_found");
    assert_error(
        &api.patch("/api/v1/links/999", &json!({"title": "x"})),
        404,
        "not_found",
    );

    assert_eq!(
        test.control().store().latest_version(),
        before,
        "nothing was stored"
    );
    assert_eq!(api.get("/api/v1/links").body["links"], json!([]));
}

#[test]
fn patch_edits_every_field_and_delete_is_soft() {
    let test = TestControl::start();
    let api = test.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/1", "title": "T", "expires_at": "2031-01-01T00:00:00Z"}),
    );
    let id = created.body["id"].as_u64().unwrap();
    let version = created.body["version"].as_u64().unwrap();
    let patched = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"url": "https://e.com/2", "status": 308, "state": "disabled", "expires_at": null,
                "title": null, "tags": ["new"], "forward_query": true}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["url"], "https://e.com/2");
    assert_eq!(patched.body["status"], 308);
    assert_eq!(patched.body["state"], "disabled");
    assert_eq!(patched.body["expires_at"], Value::Null);
    assert_eq!(patched.body["title"], Value::Null);
    assert_eq!(patched.body["tags"], json!(["new"]));
    assert_eq!(patched.body["forward_query"], true);
    assert!(patched.body["version"].as_u64().unwrap() > version);

    assert_error(
        &api.patch(&format!("/api/v1/links/{id}"), &json!({"code": "x"})),
        400,
        "invalid_field",
    );
    assert_error(
        &api.patch(&format!("/api/v1/links/{id}"), &json!({"url": "ftp://x/"})),
        400,
        "invalid_url",
    );
    assert_error(
        &api.patch(&format!("/api/v1/links/{id}"), &json!({"state": "gone"})),
        400,
        "invalid_field",
    );

    let deleted = api.delete(&format!("/api/v1/links/{id}"));
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["state"], "deleted");
    assert_eq!(
        api.get(&format!("/api/v1/links/{id}")).body["state"],
        "deleted"
    );
    assert_eq!(
        api.delete(&format!("/api/v1/links/{id}")).status,
        200,
        "deleting twice is fine"
    );
}

#[test]
fn restore_brings_a_deleted_link_back_as_a_new_version() {
    let test = TestControl::start();
    let api = test.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/r", "code": "back"}),
    );
    let id = created.body["id"].as_u64().unwrap();
    let deleted = api.delete(&format!("/api/v1/links/{id}"));
    let deleted_version = deleted.body["version"].as_u64().unwrap();

    let restored = api.post(&format!("/api/v1/links/{id}/restore"), &json!({}));
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.body["state"], "active");
    assert_eq!(restored.body["code"], "back");
    let version = restored.body["version"].as_u64().unwrap();
    assert!(version > deleted_version);
    assert_eq!(
        test.control().store().latest_version(),
        version,
        "the restore is a change in the log"
    );
    let changes = test
        .control()
        .store()
        .changes_after(deleted_version, 10)
        .unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        api.get(&format!("/api/v1/links/{id}")).body["state"],
        "active"
    );

    let again = api.send("POST", &format!("/api/v1/links/{id}/restore"), None, &[]);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.body["version"], version,
        "restoring a live link changes nothing"
    );
    assert_error(
        &api.send("POST", "/api/v1/links/999/restore", None, &[]),
        404,
        "not_found",
    );
    let reader = KeyRing::new(test.control().store())
        .create(DEFAULT_WORKSPACE, None, "reader", &[Scope::LinksRead], 0)
        .unwrap();
    assert_error(
        &api.with_key(Some(&reader.token)).send(
            "POST",
            &format!("/api/v1/links/{id}/restore"),
            None,
            &[],
        ),
        403,
        "insufficient_scope",
    );
}

#[test]
fn listing_pages_filters_searches_and_sorts() {
    let test = TestControl::start();
    let api = test.client();
    api.post("/api/v1/domains", &json!({"domain": "b.example"}));
    for i in 0..25 {
        let domain = if i % 5 == 0 { "b.example" } else { "localhost" };
        let tags = if i % 2 == 0 {
            json!(["even"])
        } else {
            json!([])
        };
        let response = api.post(
            "/api/v1/links",
            &json!({"url": format!("https://e.com/{i}"), "code": format!("c{i:02}"), "domain": domain,
                    "tags": tags, "title": format!("Title {i}")}),
        );
        assert_eq!(response.status, 201);
    }
    let id3 = api.get("/api/v1/links?q=c03").body["links"][0]["id"]
        .as_u64()
        .unwrap();
    api.patch(
        &format!("/api/v1/links/{id3}"),
        &json!({"state": "disabled"}),
    );

    // Pages of 10 visit every link once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/links?limit=10&cursor={c}"),
            None => "/api/v1/links?limit=10".to_owned(),
        };
        let page = api.get(&path);
        assert_eq!(page.status, 200);
        for link in page.body["links"].as_array().unwrap() {
            seen.push(link["code"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("c{i:02}")).collect();
    assert_eq!(seen, expected);

    let codes = |path: &str| -> Vec<String> {
        api.get(path).body["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        codes("/api/v1/links?domain=b.example&sort=created"),
        ["c00", "c05", "c10", "c15", "c20"]
    );
    assert_eq!(
        codes("/api/v1/links?tag=even&limit=3&sort=created"),
        ["c00", "c02", "c04"]
    );
    assert_eq!(codes("/api/v1/links?state=disabled"), ["c03"]);
    assert_eq!(codes("/api/v1/links?q=title%2012"), ["c12"]);
    assert_eq!(codes("/api/v1/links?q=E.COM/24"), ["c24"]);
    let by_code = codes("/api/v1/links?sort=code&limit=3");
    assert_eq!(
        by_code,
        ["c00", "c05", "c10"],
        "b.example sorts before localhost"
    );
    let page = api.get("/api/v1/links?sort=code&limit=3");
    let next = page.body["next_cursor"].as_str().unwrap();
    assert_eq!(
        codes(&format!("/api/v1/links?sort=code&limit=3&cursor={next}")),
        ["c15", "c20", "c01"]
    );
}

/// A search that matches little of a large workspace answers a page after
/// examining `MAX_EXAMINED` links, with a cursor that goes on from there:
/// following it finds every match, each once.
#[test]
fn a_rare_search_answers_in_bounded_pages_and_finds_every_match() {
    let test = TestControl::start();
    let api = test.client();
    let total = ricochet_control::store::MAX_EXAMINED + 1_000;
    let needle = |i: usize| i == 0 || i == total - 1;
    for chunk in (0..total).collect::<Vec<_>>().chunks(1_000) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let title = if needle(i) { "needle" } else { "hay" };
                json!({"url": format!("https://e.com/{i}"), "title": title})
            })
            .collect();
        let created = api.post("/api/v1/links/bulk", &json!(items));
        assert_eq!(created.body["created"], chunk.len(), "{}", created.text);
    }
    let first = api.get("/api/v1/links?q=needle&limit=10");
    assert_eq!(first.status, 200, "{}", first.text);
    let titles = |page: &ricochet_control::test_util::ApiResponse| -> Vec<String> {
        page.body["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["url"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(titles(&first), [format!("https://e.com/{}", total - 1)]);
    let mut cursor = first.body["next_cursor"]
        .as_str()
        .expect("the page stopped early, with a cursor")
        .to_owned();
    let mut found = titles(&first);
    let mut pages = 1;
    loop {
        let page = api.get(&format!("/api/v1/links?q=needle&limit=10&cursor={cursor}"));
        assert_eq!(page.status, 200, "{}", page.text);
        found.extend(titles(&page));
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        found,
        [
            format!("https://e.com/{}", total - 1),
            "https://e.com/0".to_owned()
        ]
    );
    assert!((2..=3).contains(&pages), "{pages} pages");
}

#[test]
fn idempotency_key_returns_the_first_result() {
    let test = TestControl::start();
    let api = test.client();
    let body = serde_json::to_vec(&json!({"url": "https://e.com/once"})).unwrap();
    let send = |body: &[u8], key: &str| {
        api.send(
            "POST",
            "/api/v1/links",
            Some(("application/json", body)),
            &[("Idempotency-Key", key)],
        )
    };
    let first = send(&body, "k-1");
    let second = send(&body, "k-1");
    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(first.body, second.body, "a retry returns the first link");
    assert_eq!(
        api.get("/api/v1/links").body["links"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let other = serde_json::to_vec(&json!({"url": "https://e.com/other"})).unwrap();
    assert_error(&send(&other, "k-1"), 422, "idempotency_key_reused");
    assert_eq!(send(&body, "k-2").status, 201);
    assert_eq!(
        api.get("/api/v1/links").body["links"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn bulk_reports_each_item_and_applies_the_good_ones() {
    let test = TestControl::start_with(|c| c.links.max_bulk = 5, Arc::new(LocalBus::new()));
    let api = test.client();
    let response = api.post(
        "/api/v1/links/bulk",
        &json!([
            {"url": "https://e.com/1", "code": "b1"},
            {"url": "javascript:x", "code": "b2"},
            {"url": "https://e.com/3", "code": "b1"},
            {"url": "https://e.com/4"},
            {"url": "https://e.com/5", "code": "api"}
        ]),
    );
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.body["created"], 2);
    assert_eq!(response.body["failed"], 3);
    let statuses: Vec<u64> = response.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 400, 409, 201, 400]);
    assert_eq!(response.body["items"][1]["error"]["code"], "invalid_url");
    assert_eq!(
        api.get("/api/v1/links").body["links"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let six: Vec<Value> = (0..6)
        .map(|i| json!({"url": format!("https://e.com/{i}")}))
        .collect();
    assert_error(
        &api.post("/api/v1/links/bulk", &json!(six)),
        413,
        "too_many_items",
    );
    assert_error(
        &api.post("/api/v1/links/bulk", &json!({"url": "https://e.com/"})),
        400,
        "invalid_field",
    );
}

#[test]
fn keys_and_scopes() {
    let test = TestControl::start();
    let store = test.control().store();
    let ring = KeyRing::new(store);
    let reader = ring
        .create(DEFAULT_WORKSPACE, None, "reader", &[Scope::LinksRead], 0)
        .unwrap();
    let writer = ring
        .create(
            DEFAULT_WORKSPACE,
            None,
            "writer",
            &[Scope::LinksWrite, Scope::LinksRead],
            0,
        )
        .unwrap();
    let base = test.base_url();
    let body = json!({"url": "https://e.com/"});

    assert_error(
        &ApiClient::new(&base, None).get("/api/v1/links"),
        401,
        "missing_api_key",
    );
    assert_error(
        &ApiClient::new(&base, Some("rk_nope")).get("/api/v1/links"),
        401,
        "invalid_api_key",
    );
    let reading = ApiClient::new(&base, Some(&reader.token));
    assert_eq!(reading.get("/api/v1/links").status, 200);
    assert_error(
        &reading.post("/api/v1/links", &body),
        403,
        "insufficient_scope",
    );
    assert_error(
        &reading.post("/api/v1/domains", &json!({"domain": "x.example"})),
        403,
        "insufficient_scope",
    );
    let writing = ApiClient::new(&base, Some(&writer.token));
    assert_eq!(writing.post("/api/v1/links", &body).status, 201);
    let via_header = writing.with_key(None).send(
        "GET",
        "/api/v1/links",
        None,
        &[("X-Api-Key", &writer.token)],
    );
    assert_eq!(via_header.status, 200);

    ring.revoke(None, &writer.record.id, 1).unwrap();
    assert_error(&writing.get("/api/v1/links"), 401, "invalid_api_key");
    assert!(
        !store
            .api_key(&reader.record.id)
            .unwrap()
            .unwrap()
            .secret_hash
            .contains(&reader.token[16..])
    );
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let test = TestControl::start_with(
        |c| {
            c.rate_limit.requests_per_second = 1;
            c.rate_limit.burst = 3;
        },
        Arc::new(LocalBus::new()),
    );
    let api = test.client();
    let statuses: Vec<u16> = (0..5).map(|_| api.get("/api/v1/links").status).collect();
    assert_eq!(&statuses[..3], [200, 200, 200]);
    let limited = api.get("/api/v1/links");
    assert_error(&limited, 429, "rate_limited");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Another key has its own bucket.
    let other = KeyRing::new(test.control().store())
        .create(DEFAULT_WORKSPACE, None, "other", &[Scope::LinksRead], 0)
        .unwrap();
    assert_eq!(
        api.with_key(Some(&other.token)).get("/api/v1/links").status,
        200
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(api.get("/api/v1/links").status, 200, "the bucket refills");
}

#[test]
fn openapi_document_describes_the_handlers() {
    let test = TestControl::start();
    let document = ApiClient::new(&test.base_url(), None).get("/api/v1/openapi.json");
    assert_eq!(document.status, 200);
    assert!(document.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = document.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/links", "post"),
        ("/api/v1/links", "get"),
        ("/api/v1/links/{id}", "get"),
        ("/api/v1/links/{id}", "patch"),
        ("/api/v1/links/{id}", "delete"),
        ("/api/v1/links/bulk", "post"),
        ("/api/v1/domains", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path}"
        );
    }
    let create = &document.body["components"]["schemas"]["CreateLink"];
    assert!(create["properties"]["url"].is_object(), "{create}");
    assert_eq!(create["properties"]["url"]["format"], "uri");
    assert_eq!(
        create["properties"]["status"]["enum"],
        json!([301, 302, 307, 308, null])
    );
    assert_eq!(create["properties"]["code"]["maxLength"], 64);
    assert!(paths.contains_key("/api/v1/links/{id}/restore"));

    // Query parameters are in the query, and each operation lists its own.
    let parameters = |path: &str| -> Vec<(String, String)> {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let name = p["name"].as_str().unwrap().to_owned();
                (name, p["in"].as_str().unwrap().to_owned())
            })
            .collect()
    };
    let query = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), "query".to_owned()))
            .collect()
    };
    let mut series = vec![("id".to_owned(), "path".to_owned())];
    series.extend(query(&["from", "to", "interval"]));
    assert_eq!(parameters("/api/v1/links/{id}/analytics/series"), series);
    assert_eq!(
        parameters("/api/v1/analytics/top-links"),
        query(&["from", "to", "limit"])
    );
    assert_eq!(
        parameters("/api/v1/analytics/overview"),
        query(&["from", "to"])
    );
    let breakdown = &paths["/api/v1/links/{id}/analytics/breakdown"]["get"]["parameters"];
    assert_eq!(breakdown[3]["name"], "dimension");
    assert_eq!(breakdown[3]["required"], true);
    assert_eq!(breakdown[3]["schema"]["enum"].as_array().unwrap().len(), 10);

    // Every operation documents the errors every operation can answer.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            for status in ["401", "403", "429", "500"] {
                assert!(
                    operation["responses"].get(status).is_some(),
                    "{method} {path} {status}"
                );
            }
        }
    }
    let create_responses = &paths["/api/v1/links"]["post"]["responses"];
    for status in ["201", "400", "409", "413", "415", "422"] {
        assert!(create_responses.get(status).is_some(), "{status}");
    }
}

#[test]
fn head_answers_like_get_and_other_methods_get_405_with_allow() {
    let test = TestControl::start();
    let api = test.client();
    let created = api.post("/api/v1/links", &json!({"url": "https://e.com/h"}));
    let id = created.body["id"].as_u64().unwrap();
    for path in [
        format!("/api/v1/links/{id}"),
        "/api/v1/links?limit=5".to_owned(),
        "/api/v1/domains".to_owned(),
        "/api/v1/openapi.json".to_owned(),
        "/api/v1/links/999".to_owned(),
    ] {
        let get = api.get(&path);
        let head = api.send("HEAD", &path, None, &[]);
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(head.text, "", "{path}: HEAD has no body");
        for header in ["content-type", "content-length"] {
            assert_eq!(head.header(header), get.header(header), "{path} {header}");
        }
    }

    for (method, path, allow) in [
        ("PUT", "/api/v1/links".to_owned(), "POST, GET, HEAD"),
        ("GET", "/api/v1/links/bulk".to_owned(), "POST"),
        (
            "POST",
            format!("/api/v1/links/{id}"),
            "GET, HEAD, PATCH, DELETE",
        ),
        ("DELETE", "/api/v1/domains".to_owned(), "POST, GET, HEAD"),
        ("GET", format!("/api/v1/links/{id}/restore"), "POST"),
        ("POST", "/api/v1/openapi.json".to_owned(), "GET, HEAD"),
    ] {
        let response = api.send(method, &path, None, &[]);
        assert_error(&response, 405, "method_not_allowed");
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
    }
    assert_error(&api.get("/api/v1/nothing"), 404, "not_found");
    assert_error(
        &api.send("PUT", "/api/v1/nothing", None, &[]),
        404,
        "not_found",
    );
}

#[test]
fn the_change_log_needs_the_cluster_token_and_pages_in_order() {
    let test = TestControl::start();
    let api = test.client();
    for i in 0..5 {
        api.post(
            "/api/v1/links",
            &json!({"url": format!("https://e.com/{i}")}),
        );
    }
    let base = test.base_url();
    let anonymous = ApiClient::new(&base, None).get("/internal/v1/changes?after=0");
    assert_error(&anonymous, 401, "invalid_cluster_token");
    assert_error(
        &api.get("/internal/v1/changes?after=0"),
        401,
        "invalid_cluster_token",
    );
    let engine = ApiClient::new(&base, Some(test.control().cluster_token()));
    let page = engine.get("/internal/v1/changes?after=2&limit=2");
    assert_eq!(page.status, 200, "{}", page.text);
    let versions: Vec<u64> = page.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 4]);
    assert_eq!(page.body["latest_version"], 5);
    assert_eq!(page.body["changes"][0]["op"], "upsert");
    assert_error(&engine.get("/internal/v1/changes"), 400, "invalid_query");
    assert_error(
        &engine.get("/internal/v1/changes?after=0&limit=0"),
        400,
        "invalid_limit",
    );
}

#[test]
fn garbage_never_gets_anything_but_a_json_4xx() {
    let test = TestControl::start_with(
        |c| {
            c.rate_limit.requests_per_second = 100_000;
            c.rate_limit.burst = 100_000;
        },
        Arc::new(LocalBus::new()),
    );
    let api = test.client();
    let created = api.post("/api/v1/links", &json!({"url": "https://e.com/"}));
    let id = created.body["id"].as_u64().unwrap();
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seeds: [&[u8]; 6] = [
        b"{\"url\":",
        b"[{\"url\":\"https://e.com/\"},",
        b"{\"url\":\"https://e.com/\",\"tags\":[",
        b"{\"expires_at\":\"",
        b"null",
        b"",
    ];
    let routes = [
        ("POST", "/api/v1/links".to_owned()),
        ("POST", "/api/v1/links/bulk".to_owned()),
        ("PATCH", format!("/api/v1/links/{id}")),
        ("POST", "/api/v1/domains".to_owned()),
    ];
    for round in 0..120 {
        let mut body = seeds[round % seeds.len()].to_vec();
        let extra = (next() % 64) as usize;
        body.extend((0..extra).map(|_| (next() & 0xff) as u8));
        let (method, path) = &routes[round % routes.len()];
        let response = api.send(method, path, Some(("application/json", &body)), &[]);
        assert!(
            (400..500).contains(&response.status),
            "{method} {path} {body:?}: {} {}",
            response.status,
            response.text
        );
        assert!(!response.error_code().is_empty(), "{}", response.text);
    }
    let after = api.get(&format!("/api/v1/links/{id}"));
    assert_eq!(after.body["url"], "https://e.com/", "nothing was changed");
}

#[test]
fn past_expiries_and_destinations_on_short_domains_are_refused() {
    let test = TestControl::start();
    let api = test.client();
    assert_eq!(
        api.post("/api/v1/domains", &json!({"domain": "go.example.com"}))
            .status,
        201
    );
    let field = |response: &ricochet_control::test_util::ApiResponse| {
        response.body["error"]["field"].clone()
    };

    let past = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/", "expires_at": "2001-01-01T00:00:00Z"}),
    );
    assert_error(&past, 400, "invalid_expires_at");
    assert_eq!(field(&past), "expires_at");
    for destination in [
        "https://go.example.com/other",
        "http://GO.EXAMPLE.COM:8080/x",
        "http://localhost/demo",
    ] {
        let looped = api.post("/api/v1/links", &json!({"url": destination}));
        assert_error(&looped, 400, "destination_is_short_link");
        assert_eq!(field(&looped), "url");
    }
    // A host that merely ends like a short domain is someone else's.
    let elsewhere = api.post(
        "/api/v1/links",
        &json!({"url": "https://notgo.example.com/", "code": "ok"}),
    );
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.text);
    let id = elsewhere.body["id"].as_u64().unwrap();

    let patched = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"url": "https://go.example.com/loop"}),
    );
    assert_error(&patched, 400, "destination_is_short_link");
    let patched = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"expires_at": "2001-01-01T00:00:00Z", "title": "half"}),
    );
    assert_error(&patched, 400, "invalid_expires_at");
    let unchanged = api.get(&format!("/api/v1/links/{id}"));
    assert_eq!(unchanged.body["url"], "https://notgo.example.com/");
    assert_eq!(unchanged.body["title"], Value::Null, "nothing half-applied");
    assert_eq!(unchanged.body["version"], elsewhere.body["version"]);

    let bulk = api.post(
        "/api/v1/links/bulk",
        &json!([
            {"url": "https://e.com/fine"},
            {"url": "https://go.example.com/"},
            {"url": "https://e.com/", "expires_at": "2001-01-01T00:00:00Z"}
        ]),
    );
    assert_eq!(bulk.body["created"], 1, "{}", bulk.text);
    assert_eq!(
        bulk.body["items"][1]["error"]["code"],
        "destination_is_short_link"
    );
    assert_eq!(bulk.body["items"][2]["error"]["code"], "invalid_expires_at");
    // A future expiry is fine.
    assert_eq!(
        api.post(
            "/api/v1/links",
            &json!({"url": "https://e.com/", "expires_at": "2099-01-01T00:00:00Z"}),
        )
        .status,
        201
    );
}

#[test]
fn utm_fields_are_merged_into_the_destination() {
    let test = TestControl::start();
    let api = test.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/p?a=1,2&utm_source=old#top", "code": "utm",
                "utm": {"source": "news letter", "medium": "email", "campaign": "spring&co"}}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.body["url"],
        "https://e.com/p?a=1,2&utm_source=news+letter&utm_medium=email&utm_campaign=spring%26co#top"
    );
    assert_eq!(
        created.body["utm"],
        json!({"source": "news letter", "medium": "email", "campaign": "spring&co",
               "term": null, "content": null})
    );
    let id = created.body["id"].as_u64().unwrap();

    // null removes one, a value sets one, absent fields stay.
    let patched = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"utm": {"medium": null, "term": "shoes"}}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.body["url"],
        "https://e.com/p?a=1,2&utm_source=news+letter&utm_campaign=spring%26co&utm_term=shoes#top"
    );
    // A new destination with UTM fields in the same request: the fields win.
    let replaced = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"url": "https://e.com/new?utm_source=page", "utm": {"source": "ad"}}),
    );
    assert_eq!(replaced.body["url"], "https://e.com/new?utm_source=ad");
    assert_eq!(replaced.body["utm"]["source"], "ad");
    assert_eq!(replaced.body["utm"]["term"], Value::Null);

    for (utm, field) in [
        (json!({"campaign": ""}), "utm.campaign"),
        (json!({"content": "a\nb"}), "utm.content"),
        (json!({"term": "x".repeat(201)}), "utm.term"),
    ] {
        let refused = api.post(
            "/api/v1/links",
            &json!({"url": "https://e.com/", "utm": utm}),
        );
        assert_error(&refused, 400, "invalid_utm");
        assert_eq!(refused.body["error"]["field"], field);
    }
    let unknown = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/", "utm": {"id": "x"}}),
    );
    assert_error(&unknown, 400, "invalid_field");
    let unchanged = api.get(&format!("/api/v1/links/{id}"));
    assert_eq!(unchanged.body["url"], "https://e.com/new?utm_source=ad");
}
