//! Signing in over real HTTP: the first owner signs in and out, bad
//! credentials get one answer, weak passwords are refused, sign-in is
//! throttled, the session cookie's attributes, CSRF on every change made with
//! the cookie, session listing and revocation taking effect at once, password
//! changes ending other sessions, and no secret in any answer or the change log.

use std::sync::Arc;

use ricochet_control::service::{LinkService, LinkSettings};
use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use ricochet_control::transfer::{self, Format};
use ricochet_model::bus::LocalBus;
use serde_json::{Value, json};

fn assert_error(response: &ApiResponse, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text);
    assert_eq!(response.error_code(), code, "{}", response.text);
    assert!(
        response.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        response.text
    );
    assert!(
        response.body["error"].get("field").is_some(),
        "{}",
        response.text
    );
}

fn anonymous(test: &TestControl) -> ApiClient {
    ApiClient::new(&test.base_url(), None)
}

fn sign_in(test: &TestControl, email: &str, password: &str) -> ApiResponse {
    anonymous(test).post(
        "/api/v1/auth/sign-in",
        &json!({"email": email, "password": password}),
    )
}

#[test]
fn the_first_owner_signs_in_and_out_with_a_safe_cookie() {
    let test = TestControl::start();
    assert_eq!(test.owner_email, "owner@ricochet.local");
    assert!(test.owner_password.len() >= 12);

    let answer = sign_in(&test, "Owner@Ricochet.Local", &test.owner_password);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["user"]["email"], "owner@ricochet.local");
    assert_eq!(answer.body["session"]["current"], true);
    assert!(answer.body["csrf_token"].as_str().unwrap().len() >= 32);
    let cookie = answer.header("set-cookie").expect("a session cookie");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=2592000"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let token = answer.session_cookie().unwrap().to_owned();
    assert!(token.len() >= 43, "{token}");

    let over_https = anonymous(&test).send(
        "POST",
        "/api/v1/auth/sign-in",
        Some((
            "application/json",
            json!({"email": test.owner_email, "password": test.owner_password})
                .to_string()
                .as_bytes(),
        )),
        &[("X-Forwarded-Proto", "https")],
    );
    assert_eq!(over_https.status, 200, "{}", over_https.text);
    assert!(
        over_https
            .header("set-cookie")
            .unwrap()
            .contains("; Secure")
    );

    let owner = anonymous(&test).signed_in(&answer);
    let current = owner.get("/api/v1/auth/session");
    assert_eq!(current.status, 200, "{}", current.text);
    assert_eq!(current.body["user"]["email"], "owner@ricochet.local");
    assert_eq!(current.body["csrf_token"], answer.body["csrf_token"]);

    let signed_out = owner.post("/api/v1/auth/sign-out", &json!({}));
    assert_eq!(signed_out.status, 204, "{}", signed_out.text);
    assert!(
        signed_out
            .header("set-cookie")
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_error(&owner.get("/api/v1/auth/session"), 401, "invalid_session");
    assert_error(&owner.get("/api/v1/links"), 401, "invalid_session");
}

#[test]
fn behind_https_makes_the_cookie_secure() {
    let test = TestControl::start_with(
        |config| config.accounts.behind_https = true,
        Arc::new(LocalBus::new()),
    );
    let answer = sign_in(&test, &test.owner_email, &test.owner_password);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.header("set-cookie").unwrap().contains("; Secure"));
}

#[test]
fn wrong_passwords_and_unknown_emails_get_one_answer() {
    let test = TestControl::start();
    let wrong = sign_in(&test, &test.owner_email, "not the password at all");
    assert_error(&wrong, 401, "invalid_credentials");
    let unknown = sign_in(&test, "nobody@example.com", &test.owner_password);
    assert_error(&unknown, 401, "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.session_cookie().is_none() && unknown.session_cookie().is_none());

    let invalid = sign_in(&test, "not an email", "whatever it is");
    assert_error(&invalid, 400, "invalid_email");
    assert_eq!(invalid.body["error"]["field"], "email");
    let extra = anonymous(&test).post(
        "/api/v1/auth/sign-in",
        &json!({"email": test.owner_email, "password": test.owner_password, "admin": true}),
    );
    assert_error(&extra, 400, "invalid_field");
}

#[test]
fn weak_new_passwords_are_refused_with_a_reason() {
    let test = TestControl::start();
    let owner = test.owner_client();
    for (weak, reason) in [
        ("short", "at least 12 characters"),
        ("Password1234", "most common passwords"),
        ("qwertyuiop123", "most common passwords"),
        ("aaaaaaaaaaaaaaaa", "too easy to guess"),
    ] {
        let answer = owner.post(
            "/api/v1/auth/password",
            &json!({"current_password": test.owner_password, "new_password": weak}),
        );
        assert_error(&answer, 400, "weak_password");
        assert_eq!(answer.body["error"]["field"], "new_password");
        let message = answer.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{weak}: {message}");
        assert!(!message.contains(weak), "the password is never echoed");
    }
    let wrong = owner.post(
        "/api/v1/auth/password",
        &json!({"current_password": "not my password", "new_password": "tangerine-ladder-41"}),
    );
    assert_error(&wrong, 400, "wrong_password");
    assert_eq!(wrong.body["error"]["field"], "current_password");
    // The old password still works: nothing was changed.
    assert_eq!(
        sign_in(&test, &test.owner_email, &test.owner_password).status,
        200
    );
}

#[test]
fn sign_in_is_throttled_per_account_and_per_address() {
    let test = TestControl::start_with(
        |config| {
            config.accounts.sign_in_per_account_per_minute = 3;
            config.accounts.sign_in_per_address_per_minute = 5;
        },
        Arc::new(LocalBus::new()),
    );
    for _ in 0..3 {
        assert_error(
            &sign_in(&test, &test.owner_email, "wrong password!"),
            401,
            "invalid_credentials",
        );
    }
    let throttled = sign_in(&test, &test.owner_email, &test.owner_password);
    assert_error(&throttled, 429, "too_many_sign_ins");
    let retry: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // Another account from the same address: one more attempt, then the
    // address is over its limit too.
    assert_error(
        &sign_in(&test, "other@example.com", "wrong password!"),
        401,
        "invalid_credentials",
    );
    assert_error(
        &sign_in(&test, "third@example.com", "wrong password!"),
        429,
        "too_many_sign_ins",
    );
}

#[test]
fn changes_made_with_the_cookie_need_the_csrf_token() {
    let test = TestControl::start();
    let owner = test.owner_client();
    let link = json!({"url": "https://example.com/csrf"});
    let count = |api: &ApiClient| {
        api.get("/api/v1/links").body["links"]
            .as_array()
            .unwrap()
            .len()
    };

    let missing = owner.with_csrf(None).post("/api/v1/links", &link);
    assert_error(&missing, 403, "csrf_token_missing");
    assert_eq!(missing.body["error"]["field"], "X-CSRF-Token");
    let wrong = owner
        .with_csrf(Some("0".repeat(64).as_str()))
        .post("/api/v1/links", &link);
    assert_error(&wrong, 403, "csrf_token_invalid");
    assert_eq!(
        count(&owner.with_csrf(None)),
        0,
        "a refused request stores nothing"
    );

    let created = owner.post("/api/v1/links", &link);
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_u64().unwrap();
    let patched = owner.patch(&format!("/api/v1/links/{id}"), &json!({"title": "t"}));
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_error(
        &owner.with_csrf(None).delete(&format!("/api/v1/links/{id}")),
        403,
        "csrf_token_missing",
    );
    assert_error(
        &owner
            .with_csrf(None)
            .post("/api/v1/auth/sign-out", &json!({})),
        403,
        "csrf_token_missing",
    );
    // Reads need no token, and API keys are unaffected.
    assert_eq!(
        owner
            .with_csrf(None)
            .get(&format!("/api/v1/links/{id}"))
            .status,
        200
    );
    assert_eq!(test.client().post("/api/v1/links", &link).status, 201);
    assert_eq!(count(&test.client()), 2);
}

#[test]
fn sessions_are_listed_and_revoked_at_once() {
    let test = TestControl::start();
    let first = test.owner_client();
    let second = test.owner_client();
    let listing = first.get("/api/v1/auth/sessions");
    assert_eq!(listing.status, 200, "{}", listing.text);
    let sessions = listing.body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{}", listing.text);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    assert_eq!(sessions[0]["client_address"], "127.0.0.1");
    let second_id = second.get("/api/v1/auth/session").body["session"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    assert_error(
        &first
            .with_csrf(None)
            .delete(&format!("/api/v1/auth/sessions/{second_id}")),
        403,
        "csrf_token_missing",
    );
    let revoked = first.delete(&format!("/api/v1/auth/sessions/{second_id}"));
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert_error(&second.get("/api/v1/auth/session"), 401, "invalid_session");
    assert_error(&second.get("/api/v1/links"), 401, "invalid_session");
    assert_error(
        &first.delete(&format!("/api/v1/auth/sessions/{second_id}")),
        404,
        "not_found",
    );
    assert_eq!(first.get("/api/v1/auth/session").status, 200);

    // API keys have no session.
    assert_error(
        &test.client().get("/api/v1/auth/sessions"),
        401,
        "not_signed_in",
    );
    assert_error(
        &anonymous(&test).get("/api/v1/auth/session"),
        401,
        "not_signed_in",
    );
}

#[test]
fn a_password_change_ends_the_other_sessions() {
    let test = TestControl::start();
    let here = test.owner_client();
    let elsewhere = test.owner_client();
    let changed = here.post(
        "/api/v1/auth/password",
        &json!({"current_password": test.owner_password, "new_password": "tangerine-ladder-41"}),
    );
    assert_eq!(changed.status, 204, "{}", changed.text);
    assert_error(
        &elsewhere.get("/api/v1/auth/session"),
        401,
        "invalid_session",
    );
    assert_eq!(here.get("/api/v1/auth/session").status, 200);
    assert_eq!(
        here.get("/api/v1/auth/sessions").body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_error(
        &sign_in(&test, &test.owner_email, &test.owner_password),
        401,
        "invalid_credentials",
    );
    assert_eq!(
        sign_in(&test, &test.owner_email, "tangerine-ladder-41").status,
        200
    );
}

#[test]
fn no_password_hash_or_token_in_answers_exports_or_the_change_log() {
    let test = TestControl::start();
    let answer = sign_in(&test, &test.owner_email, &test.owner_password);
    let owner = anonymous(&test).signed_in(&answer);
    let token = answer.session_cookie().unwrap().to_owned();
    let store = test.control().store();
    let user = store.user_by_email(&test.owner_email).unwrap().unwrap();
    let session_id = answer.body["session"]["id"].as_str().unwrap();
    let session = store.session(session_id).unwrap().unwrap();
    let secret = token.split_once('.').unwrap().1.to_owned();

    let mut seen: Vec<String> = vec![answer.text.clone()];
    let created = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/s", "title": "s"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    for path in [
        "/api/v1/auth/session",
        "/api/v1/auth/sessions",
        "/api/v1/links",
    ] {
        let response = owner.get(path);
        assert_eq!(response.status, 200, "{path}");
        seen.push(response.text);
    }
    let changes = ApiClient::new(&test.base_url(), Some(test.control().cluster_token()))
        .get("/internal/v1/changes?after=0");
    assert_eq!(changes.status, 200, "{}", changes.text);
    seen.push(changes.text);
    let log = store.changes_after(0, 1000).unwrap();
    assert!(!log.is_empty());
    seen.push(format!("{log:?}"));
    let service = LinkService::new(store.clone(), LinkSettings::new("localhost", 7, 1000, &[]));
    let mut exported = Vec::new();
    transfer::export(&service, None, &mut exported, Format::Jsonl).unwrap();
    seen.push(String::from_utf8(exported).unwrap());
    // What a log line of the records would show.
    seen.push(format!("{user:?} {session:?}"));
    let document = anonymous(&test).get("/api/v1/openapi.json");
    seen.push(document.text);

    for text in &seen {
        for secret in [
            test.owner_password.as_str(),
            user.password_hash.as_str(),
            &user.password_hash[user.password_hash.rfind('$').unwrap() + 1..],
            token.as_str(),
            secret.as_str(),
            session.secret_hash.as_str(),
        ] {
            assert!(!text.contains(secret), "a secret leaked into {text}");
        }
    }
    let value: Value = serde_json::from_str(&seen[0]).unwrap();
    assert!(value["user"].get("password_hash").is_none());
}

#[test]
fn a_store_written_before_accounts_gets_its_owner_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ricochet_control::ControlConfig::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.workers = 1;
    config.storage.data_dir = dir.path().join("control");
    config.accounts.first_owner_email = "Boss@Example.com".into();
    {
        // What a release without accounts leaves: a key and a link, no user.
        let store = Arc::new(
            ricochet_control::store::ControlStore::open(&config.storage.data_dir).unwrap(),
        );
        ricochet_control::keys::KeyRing::new(&store)
            .bootstrap(1)
            .unwrap()
            .unwrap();
        store
            .add_domain("localhost", ricochet_control::store::DEFAULT_WORKSPACE, 1)
            .unwrap();
        let service = LinkService::new(store.clone(), LinkSettings::new("localhost", 7, 1000, &[]));
        let link = ricochet_control::service::NewLink {
            url: "https://example.com/old".into(),
            ..Default::default()
        };
        service
            .create(ricochet_control::store::DEFAULT_WORKSPACE, &link, 1)
            .unwrap();
        store.persist().unwrap();
    }
    let control =
        ricochet_control::ControlPlane::start(config.clone(), Arc::new(LocalBus::new())).unwrap();
    assert!(control.bootstrap_key().is_none(), "the old key is kept");
    let owner = control.first_owner().expect("an owner is created").clone();
    assert_eq!(owner.email, "boss@example.com");
    let api = ApiClient::new(&format!("http://{}", control.addr()), None);
    let answer = api.post(
        "/api/v1/auth/sign-in",
        &json!({"email": owner.email, "password": owner.password}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let links = api.signed_in(&answer).get("/api/v1/links");
    assert_eq!(
        links.body["links"].as_array().unwrap().len(),
        1,
        "{}",
        links.text
    );
    control.shutdown();

    let again = ricochet_control::ControlPlane::start(config, Arc::new(LocalBus::new())).unwrap();
    assert!(again.first_owner().is_none(), "created once");
    again.shutdown();
}
