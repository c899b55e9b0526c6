//! Link passwords and click limits over the API (real HTTP, real store):
//! `password` is taken on create, bulk and patch and kept only as an
//! Argon2id hash, which engines receive in the change log and links show
//! only as `password_protected`; `max_clicks` is set, shown and removed;
//! bad values are answered 400 naming their field; neither the answers,
//! the change log text nor the control plane's log ever hold a password.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use ricochet_control::api::types::{CreateLink, PatchLink};
use ricochet_control::service::{LinkChanges, NewLink};
use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use serde_json::{Value, json};

const PASSWORD: &str = "marigold-gate-77";
const OTHER_PASSWORD: &str = "juniper-door-12";

/// The changes after `version` that the engines read, and their text.
fn changes_after(test: &TestControl, version: u64) -> (Vec<Value>, String) {
    let engine = ApiClient::new(&test.base_url(), Some(test.control().cluster_token()));
    let page = engine.get(&format!("/internal/v1/changes?after={version}"));
    assert_eq!(page.status, 200, "{}", page.text);
    (page.body["changes"].as_array().unwrap().clone(), page.text)
}

/// Whether `password` matches `hash` the way engines check it.
fn verifies(password: &str, hash: &str) -> bool {
    let parsed = PasswordHash::new(hash).unwrap();
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Asserts no password and no hash is in an answer.
fn assert_hidden(response: &ApiResponse) {
    for secret in [PASSWORD, OTHER_PASSWORD, "$argon2"] {
        assert!(
            !response.text.contains(secret),
            "{secret} in {}",
            response.text
        );
    }
}

fn assert_refused(response: &ApiResponse, code: &str, field: &str, what: &str) {
    assert_eq!(response.status, 400, "{what}: {}", response.text);
    assert_eq!(response.error_code(), code, "{what}: {}", response.text);
    assert_eq!(
        response.body["error"]["field"], field,
        "{what}: {}",
        response.text
    );
    assert_hidden(response);
}

#[test]
fn a_password_is_kept_as_an_argon2id_hash_engines_receive_and_never_shown() {
    let test = TestControl::start();
    let api = test.client();
    let before = test.control().store().latest_version();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/vault", "code": "vault", "password": PASSWORD}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["password_protected"], true);
    assert_eq!(created.body["max_clicks"], Value::Null);
    for field in ["password", "password_hash"] {
        assert!(created.body.get(field).is_none(), "{}", created.text);
    }
    assert_hidden(&created);
    let path = format!("/api/v1/links/{}", created.body["id"]);
    let fetched = api.get(&path);
    assert_eq!(fetched.body, created.body);
    assert_hidden(&api.get("/api/v1/links"));

    // Engines get the hash, salted, with the parameters the docs state.
    let (changes, text) = changes_after(&test, before);
    assert!(!text.contains(PASSWORD), "{text}");
    let hash = changes[0]["link"]["extensions"]["password_hash"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(hash.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"), "{hash}");
    assert!(verifies(PASSWORD, &hash));
    assert!(!verifies(OTHER_PASSWORD, &hash));

    // An edit that leaves it out keeps it.
    let version = test.control().store().latest_version();
    let titled = api.patch(&path, &json!({"title": "still locked"}));
    assert_eq!(titled.body["password_protected"], true, "{}", titled.text);
    let (changes, _) = changes_after(&test, version);
    assert_eq!(changes[0]["link"]["extensions"]["password_hash"], hash);

    // A new password replaces it with a new hash.
    let version = test.control().store().latest_version();
    let changed = api.patch(&path, &json!({"password": OTHER_PASSWORD}));
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_hidden(&changed);
    let (changes, _) = changes_after(&test, version);
    let new_hash = changes[0]["link"]["extensions"]["password_hash"]
        .as_str()
        .unwrap();
    assert_ne!(new_hash, hash);
    assert!(verifies(OTHER_PASSWORD, new_hash) && !verifies(PASSWORD, new_hash));

    // `null` removes the protection.
    let version = test.control().store().latest_version();
    let opened = api.patch(&path, &json!({"password": null}));
    assert_eq!(opened.status, 200, "{}", opened.text);
    assert_eq!(opened.body["password_protected"], false);
    let (changes, _) = changes_after(&test, version);
    assert_eq!(
        changes[0]["link"]["extensions"]["password_hash"],
        Value::Null
    );

    // On create, `null` is no password; the same password hashes differently.
    let unset = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/open", "password": null}),
    );
    assert_eq!(unset.body["password_protected"], false, "{}", unset.text);
    let bulk = api.post(
        "/api/v1/links/bulk",
        &json!([{"url": "https://example.com/b1", "password": PASSWORD},
                {"url": "https://example.com/b2", "password": PASSWORD, "max_clicks": 2}]),
    );
    assert_eq!(bulk.body["created"], 2, "{}", bulk.text);
    assert_hidden(&bulk);
    let items = &bulk.body["items"];
    assert_eq!(items[0]["link"]["password_protected"], true);
    assert_eq!(items[1]["link"]["max_clicks"], 2);
    let version = test.control().store().latest_version();
    let (changes, _) = changes_after(&test, version - 2);
    let hashes: Vec<&str> = changes
        .iter()
        .map(|c| c["link"]["extensions"]["password_hash"].as_str().unwrap())
        .collect();
    assert_eq!(hashes.len(), 2);
    assert_ne!(hashes[0], hashes[1], "a random salt each");
    assert!(hashes.iter().all(|hash| verifies(PASSWORD, hash)));
}

#[test]
fn max_clicks_is_set_shown_and_removed() {
    let test = TestControl::start();
    let api = test.client();
    let before = test.control().store().latest_version();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/once", "max_clicks": 1}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.body["max_clicks"], 1);
    assert_eq!(created.body["password_protected"], false);
    let (changes, _) = changes_after(&test, before);
    assert_eq!(changes[0]["link"]["extensions"]["click_limit"], 1);

    let path = format!("/api/v1/links/{}", created.body["id"]);
    let raised = api.patch(&path, &json!({"max_clicks": 1_000_000_000_000u64}));
    assert_eq!(
        raised.body["max_clicks"], 1_000_000_000_000u64,
        "{}",
        raised.text
    );
    let kept = api.patch(&path, &json!({"title": "t"}));
    assert_eq!(kept.body["max_clicks"], 1_000_000_000_000u64);
    let version = test.control().store().latest_version();
    let removed = api.patch(&path, &json!({"max_clicks": null}));
    assert_eq!(removed.body["max_clicks"], Value::Null, "{}", removed.text);
    let (changes, _) = changes_after(&test, version);
    assert_eq!(changes[0]["link"]["extensions"]["click_limit"], Value::Null);
    assert_eq!(api.get(&path).body, removed.body);
}

#[test]
fn bad_values_are_refused_at_their_field_and_store_nothing() {
    let test = TestControl::start();
    let api = test.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/kept", "password": PASSWORD, "max_clicks": 5}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/api/v1/links/{}", created.body["id"]);
    let before = test.control().store().latest_version();
    let long = format!("{PASSWORD}{}", "x".repeat(129 - PASSWORD.len()));
    let cases = [
        (json!({"password": ""}), "invalid_password", "password"),
        (json!({"password": long}), "invalid_password", "password"),
        (
            json!({"password": format!("{PASSWORD}\n")}),
            "invalid_password",
            "password",
        ),
        (
            json!({"password": format!("{PASSWORD}\u{7f}")}),
            "invalid_password",
            "password",
        ),
        (json!({"password": 77}), "invalid_password", "password"),
        (
            json!({"password": [PASSWORD]}),
            "invalid_password",
            "password",
        ),
        (json!({"max_clicks": 0}), "invalid_max_clicks", "max_clicks"),
        (
            json!({"max_clicks": -1}),
            "invalid_max_clicks",
            "max_clicks",
        ),
        (
            json!({"max_clicks": 1_000_000_000_001u64}),
            "invalid_max_clicks",
            "max_clicks",
        ),
        (
            json!({"max_clicks": 2.5}),
            "invalid_max_clicks",
            "max_clicks",
        ),
        (
            json!({"max_clicks": "10"}),
            "invalid_max_clicks",
            "max_clicks",
        ),
        // The API never takes a hash.
        (
            json!({"password_hash": "$argon2id$v=19$m=8192,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"}),
            "invalid_field",
            "password_hash",
        ),
    ];
    for (fields, code, field) in cases {
        let what = fields.to_string();
        let mut body = json!({"url": "https://example.com/new"});
        let mut patch = json!({"title": "changed"});
        for (name, value) in fields.as_object().unwrap() {
            body[name] = value.clone();
            patch[name] = value.clone();
        }
        assert_refused(&api.post("/api/v1/links", &body), code, field, &what);
        assert_refused(&api.patch(&path, &patch), code, field, &what);
        let bulk = api.post(
            "/api/v1/links/bulk",
            &json!([{"url": "https://example.com/fine"}, body]),
        );
        if code == "invalid_field" {
            assert_refused(&bulk, code, field, &what);
            continue;
        }
        // Each item alone: nothing of a refused bulk call is kept below.
        assert_eq!(bulk.body["created"], 1, "{what}: {}", bulk.text);
        let item = &bulk.body["items"][1];
        assert_eq!(
            (&item["error"]["code"], &item["error"]["field"]),
            (&json!(code), &json!(field)),
            "{what}"
        );
        assert_hidden(&bulk);
        let fine = bulk.body["items"][0]["link"]["id"].as_u64().unwrap();
        assert_eq!(
            api.delete(&format!("/api/v1/links/{fine}")).status,
            200,
            "{what}"
        );
    }
    // Only the bulk calls' good items and their deletions were written.
    let link = api.get(&path);
    assert_eq!(link.body, created.body, "the link is as it was");
    assert!(test.control().store().latest_version() > before);
}

#[test]
fn a_retried_create_matches_without_storing_a_fast_hash_of_the_password() {
    let test = TestControl::start();
    let api = test.client();
    let send = |password: &str| {
        let body = serde_json::to_vec(
            &json!({"url": "https://example.com/retry", "code": "retry", "password": password}),
        )
        .unwrap();
        api.send(
            "POST",
            "/api/v1/links",
            Some(("application/json", &body)),
            &[("Idempotency-Key", "retry-1")],
        )
    };
    let first = send(PASSWORD);
    assert_eq!(first.status, 201, "{}", first.text);
    assert_hidden(&first);
    let again = send(PASSWORD);
    assert_eq!((again.status, &again.body), (201, &first.body));
    let other = send(OTHER_PASSWORD);
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.error_code(), "idempotency_key_reused");
    assert_hidden(&other);
}

#[test]
fn debug_of_request_and_service_inputs_is_redacted() {
    let body = json!({"url": "https://example.com/", "password": PASSWORD, "max_clicks": 3});
    let create: CreateLink = serde_json::from_value(body.clone()).unwrap();
    let patch: PatchLink = serde_json::from_value(body).unwrap();
    let shown = format!("{create:?} {patch:?}");
    let new_link = NewLink::from(create);
    let changes = LinkChanges::from(patch);
    let shown = format!("{shown} {new_link:?} {changes:#?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert_eq!(shown.matches("<redacted>").count(), 4, "{shown}");
}

/// Every tracing event and span field, formatted, from any thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<String>>);

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut text = self.0.lock().unwrap();
        let _ = write!(text, "span {} ", span.metadata().name());
        span.record(&mut Fields(&mut text));
        text.push('\n');
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut text = self.0.lock().unwrap();
        values.record(&mut Fields(&mut text));
        text.push('\n');
    }

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut text = self.0.lock().unwrap();
        let _ = write!(
            text,
            "{} {} ",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut text));
        text.push('\n');
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// The log of this test binary's control planes, at every level.
fn captured() -> &'static Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.clone()).expect("the only subscriber");
        capture
    })
}

#[test]
fn the_control_planes_log_never_holds_a_password() {
    let capture = captured();
    tracing::info!(marker = "capture-works", "start");
    let test = TestControl::start();
    let api = test.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/logged", "password": PASSWORD}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let path = format!("/api/v1/links/{}", created.body["id"]);
    api.patch(&path, &json!({"password": OTHER_PASSWORD}));
    api.patch(&path, &json!({"password": format!("{OTHER_PASSWORD}\t")}));
    api.post(
        "/api/v1/links/bulk",
        &json!([{"url": "https://example.com/b", "password": PASSWORD},
                {"url": "https://example.com/c", "password": ""}]),
    );
    let body =
        serde_json::to_vec(&json!({"url": "https://example.com/i", "password": PASSWORD})).unwrap();
    for _ in 0..2 {
        api.send(
            "POST",
            "/api/v1/links",
            Some(("application/json", &body)),
            &[("Idempotency-Key", "logged")],
        );
    }
    // A body that is not JSON, with a password in it.
    api.send(
        "POST",
        "/api/v1/links",
        Some((
            "application/json",
            format!("{{\"password\": \"{PASSWORD}\"").as_bytes(),
        )),
        &[],
    );
    drop(test);
    let text = capture.0.lock().unwrap().clone();
    // Our own event and the HTTP server's, from its threads.
    assert!(text.contains("capture-works"), "{text}");
    assert!(text.contains("actix_server"), "{text}");
    for secret in [PASSWORD, OTHER_PASSWORD] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
}

#[test]
fn the_openapi_document_describes_both_fields_with_their_limits() {
    let test = TestControl::start();
    let document = ApiClient::new(&test.base_url(), None).get("/api/v1/openapi.json");
    assert_eq!(document.status, 200);
    let schemas = &document.body["components"]["schemas"];
    for body in ["CreateLink", "PatchLink"] {
        let password = &schemas[body]["properties"]["password"];
        assert_eq!(password["writeOnly"], true, "{body}");
        assert_eq!(password["format"], "password", "{body}");
        assert_eq!(
            (
                password["minLength"].as_u64(),
                password["maxLength"].as_u64()
            ),
            (Some(1), Some(128)),
            "{body}"
        );
        assert!(
            password["description"]
                .as_str()
                .unwrap()
                .contains("m = 8192 KiB, t = 2, p = 1"),
            "{body}"
        );
        let max_clicks = &schemas[body]["properties"]["max_clicks"];
        assert_eq!(max_clicks["type"], json!(["integer", "null"]), "{body}");
        assert_eq!(
            (
                max_clicks["minimum"].as_u64(),
                max_clicks["maximum"].as_u64()
            ),
            (Some(1), Some(1_000_000_000_000)),
            "{body}"
        );
        assert!(schemas[body]["properties"].get("password_hash").is_none());
    }
    let view = &schemas["LinkView"]["properties"];
    assert_eq!(view["password_protected"]["type"], "boolean");
    assert_eq!(view["password_protected"]["readOnly"], true);
    assert_eq!(view["max_clicks"]["minimum"], 1);
    for hidden in ["password", "password_hash"] {
        assert!(view.get(hidden).is_none(), "{hidden}");
    }
    let required: Vec<&str> = schemas["LinkView"]["required"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(required.contains(&"password_protected"), "{required:?}");
}
