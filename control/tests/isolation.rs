//! Workspace isolation over real HTTP: callers of workspace B (an admin key of
//! B, a user who belongs to B only, and an owner of both switched to B) walk
//! every operation of the OpenAPI document (read from the server, so routes
//! added later are walked too) with workspace A's ids. Every route naming one
//! of A's resources answers 404, exactly as for an id that does not exist;
//! every list answers 2xx without any trace of A; and afterwards A's links,
//! domain, keys, invitation, members, analytics and workspace read exactly as
//! before. B can neither create links on A's domain nor register it.

use std::collections::BTreeSet;
use std::sync::Arc;

use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use ricochet_model::bus::LocalBus;
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow, window_start};
use serde_json::{Value, json};

/// Operations of the document that are not walked: none names a resource of
/// a workspace or acts in one. (`/api/v1/openapi.json`, `/healthz`,
/// `/metrics` and `/internal/v1/*` are not in the document at all.)
const SKIPPED: &[(&str, &str, &str)] = &[
    (
        "GET",
        "/api/v1/events",
        "a stream that does not end; tests/events.rs checks it carries the caller's workspace only",
    ),
    ("POST", "/api/v1/auth/sign-in", "anonymous; opens a session"),
    (
        "POST",
        "/api/v1/auth/sign-out",
        "ends the caller's own session",
    ),
    ("GET", "/api/v1/auth/session", "the caller's own session"),
    ("GET", "/api/v1/auth/sessions", "the caller's own sessions"),
    (
        "DELETE",
        "/api/v1/auth/sessions/{id}",
        "the caller's own sessions (user-scoped, not workspace-scoped)",
    ),
    ("POST", "/api/v1/auth/password", "the caller's own password"),
    ("PATCH", "/api/v1/auth/user", "the caller's own profile"),
    (
        "POST",
        "/api/v1/invitations/preview",
        "anonymous, by invitation token",
    ),
    (
        "POST",
        "/api/v1/invitations/accept",
        "anonymous or self, by invitation token",
    ),
    (
        "GET",
        "/api/v1/denylist",
        "the installation's, not a workspace's: 403 for other workspaces (tests/denylist.rs)",
    ),
    (
        "POST",
        "/api/v1/denylist",
        "the installation's, not a workspace's: 403 for other workspaces (tests/denylist.rs)",
    ),
    (
        "GET",
        "/api/v1/denylist/check",
        "the installation's, not a workspace's: 403 for other workspaces (tests/denylist.rs)",
    ),
    (
        "DELETE",
        "/api/v1/denylist/{host}",
        "the installation's, not a workspace's: 403 for other workspaces (tests/denylist.rs)",
    ),
];

/// List routes the walk must meet (a floor, to catch a walk that walks nothing).
const EXPECTED_LISTS: &[&str] = &[
    "/api/v1/links",
    "/api/v1/domains",
    "/api/v1/analytics/top-links",
    "/api/v1/analytics/overview",
    "/api/v1/keys",
    "/api/v1/workspaces",
    "/api/v1/webhooks",
    "/api/v1/webhook-deliveries",
    "/api/v1/pages",
];

const MEMBER_PASSWORD: &str = "orchard-velvet-93";
const B_USER_PASSWORD: &str = "lantern-meadow-57";

/// What workspace A holds.
struct WorkspaceA {
    id: String,
    name: String,
    link_ids: Vec<u64>,
    domain: String,
    key_id: String,
    key_token: String,
    invitation_id: String,
    webhook_id: String,
    delivery_id: String,
    page_id: u64,
    member_id: String,
    member_email: String,
    /// Strings that must never appear in anything B is answered.
    markers: Vec<String>,
}

/// A caller of workspace B.
struct Walker {
    name: &'static str,
    client: ApiClient,
    /// An API key: routes for sessions only answer it 401 before any lookup.
    by_key: bool,
    /// Also a member of A, so `/workspaces/{A}…` is theirs to use: it walks
    /// only the routes that act in the session's current workspace.
    member_of_a: bool,
}

struct World {
    test: TestControl,
    /// The bootstrap admin key, in A.
    a_admin: ApiClient,
    /// The first owner, signed in, acting in A.
    a_owner: ApiClient,
    /// A's member, signed in.
    a_member: ApiClient,
    a: WorkspaceA,
    b_id: String,
    walkers: Vec<Walker>,
}

fn created(response: &ApiResponse, what: &str) -> Value {
    assert!(
        (200..300).contains(&response.status),
        "{what}: {} {}",
        response.status,
        response.text
    );
    response.body.clone()
}

/// A client carrying the session an invitation's acceptance opened.
fn accepted_session(base: &str, accepted: &ApiResponse) -> ApiClient {
    let mut client = ApiClient::new(base, None);
    client.session = Some(
        accepted
            .session_cookie()
            .expect("accepting opens a session")
            .to_owned(),
    );
    client.csrf = accepted.body["session"]["csrf_token"]
        .as_str()
        .map(str::to_owned);
    client
}

/// Invites `email` into `workspace` as `role` and accepts as a new user.
fn join(
    base: &str,
    inviter: &ApiClient,
    workspace: &str,
    email: &str,
    role: &str,
    password: &str,
) -> ApiResponse {
    let invitation = inviter.post(
        &format!("/api/v1/workspaces/{workspace}/invitations"),
        &json!({"email": email, "role": role}),
    );
    let token = created(&invitation, "invitation")["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let accepted = ApiClient::new(base, None).post(
        "/api/v1/invitations/accept",
        &json!({"token": token, "display_name": email, "password": password}),
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.body["workspace"]["id"], workspace);
    accepted
}

/// Writes clicks for `links` into the control plane's click store.
fn record_clicks(test: &TestControl, links: &[u64]) {
    let window = window_start(ricochet_model::now_millis() - 60_000);
    let rows = links
        .iter()
        .flat_map(|&link| {
            [(Dimension::Total, ""), (Dimension::Country, "FR")].map(|(dimension, value)| {
                WindowRow {
                    link_id: link,
                    window_start: window,
                    dimension,
                    value: value.to_owned(),
                    bot: false,
                    count: 3,
                }
            })
        })
        .collect();
    let batch = WindowBatch {
        node: "isolation".to_owned(),
        shard: 0,
        window_start: window,
        rows,
    };
    test.control().click_store().sink().write(&batch).unwrap();
}

/// Workspace A (the default one) full of things, workspace B, and B's callers.
fn world() -> World {
    let test = TestControl::start_with(
        |config| {
            config.rate_limit.requests_per_second = 1_000_000;
            config.rate_limit.burst = 1_000_000;
        },
        Arc::new(LocalBus::new()),
    );
    let base = test.base_url();
    let a_admin = test.client();
    let a_owner = test.owner_client();

    let listed = a_admin.get("/api/v1/workspaces");
    let workspaces = created(&listed, "A's workspaces")["workspaces"].clone();
    assert_eq!(workspaces.as_array().unwrap().len(), 1, "{}", listed.text);
    let a_id = workspaces[0]["id"].as_str().unwrap().to_owned();
    let a_name = workspaces[0]["name"].as_str().unwrap().to_owned();
    let session = a_owner.get("/api/v1/auth/session");
    assert_eq!(session.body["workspace"]["id"], a_id, "{}", session.text);

    // B, and the owner's second session switched to it.
    let b = a_owner.post("/api/v1/workspaces", &json!({"name": "B"}));
    let b_id = created(&b, "workspace B")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(b_id, a_id);
    let owner_in_b = test.owner_client();
    let switched = owner_in_b.post(&format!("/api/v1/workspaces/{b_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    assert_eq!(switched.body["workspace"]["id"], b_id);
    let b_key = owner_in_b.post(
        "/api/v1/keys",
        &json!({"name": "b-admin", "scopes": ["admin"]}),
    );
    let b_key = ApiClient::new(
        &base,
        Some(created(&b_key, "B's admin key")["token"].as_str().unwrap()),
    );
    let b_user = join(
        &base,
        &owner_in_b,
        &b_id,
        "b-owner@example.com",
        "owner",
        B_USER_PASSWORD,
    );
    let b_user = accepted_session(&base, &b_user);
    for client in [&b_key, &b_user] {
        let mine = client.get("/api/v1/workspaces");
        assert_eq!(mine.status, 200, "{}", mine.text);
        assert_eq!(mine.body["workspaces"][0]["id"], b_id, "{}", mine.text);
    }

    // A's domain, links, key, pending invitation and member.
    let domain = a_admin.post("/api/v1/domains", &json!({"domain": "a.example"}));
    let domain = created(&domain, "A's domain")["domain"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut link_ids = Vec::new();
    let mut markers = vec![domain.clone()];
    for (code, on) in [
        ("alpha-secret-1", Some("a.example")),
        ("alpha-secret-2", None),
    ] {
        let mut body = json!({
            "url": format!("https://a-private.example/{code}"),
            "code": code,
            "title": format!("A's {code}"),
            "tags": ["a-tag"],
        });
        if let Some(on) = on {
            body["domain"] = json!(on);
        }
        let link = created(&a_admin.post("/api/v1/links", &body), "A's link");
        link_ids.push(link["id"].as_u64().unwrap());
        for field in ["code", "url", "title"] {
            markers.push(link[field].as_str().unwrap().to_owned());
        }
    }
    // A's link-in-bio page, showing A's first link.
    let page = a_admin.post(
        "/api/v1/pages",
        &json!({"handle": "alpha-page", "title": "A's bio page", "bio": "A's private bio",
                "items": [{"type": "link", "link_id": link_ids[0], "label": "A's button"}]}),
    );
    let page_id = created(&page, "A's page")["id"].as_u64().unwrap();
    markers.extend(
        [
            "alpha-page",
            "A's bio page",
            "A's private bio",
            "A's button",
        ]
        .map(str::to_owned),
    );
    let key = a_admin.post(
        "/api/v1/keys",
        &json!({"name": "a-reader", "scopes": ["links:read"]}),
    );
    let key = created(&key, "A's key");
    let key_id = key["key"]["id"].as_str().unwrap().to_owned();
    let key_token = key["token"].as_str().unwrap().to_owned();
    let invitation = a_admin.post(
        &format!("/api/v1/workspaces/{a_id}/invitations"),
        &json!({"email": "x@example.com", "role": "member"}),
    );
    let invitation_id = created(&invitation, "A's invitation")["invitation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A webhook endpoint at a public address (never reached here) and the
    // delivery of a test event to it.
    let webhook = a_admin.post(
        "/api/v1/webhooks",
        &json!({"url": "https://93.184.216.34/a-private-hook", "events": ["*"],
                "description": "A's hook"}),
    );
    let webhook_id = created(&webhook, "A's webhook")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let test_event = a_admin.post(&format!("/api/v1/webhooks/{webhook_id}/test"), &json!({}));
    assert_eq!(test_event.status, 202, "{}", test_event.text);
    let delivery_id = test_event.body["id"].as_str().unwrap().to_owned();
    let member_email = "a-member@example.com".to_owned();
    let member = join(
        &base,
        &a_admin,
        &a_id,
        &member_email,
        "member",
        MEMBER_PASSWORD,
    );
    let member_id = member.body["session"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_member = accepted_session(&base, &member);
    record_clicks(&test, &link_ids);
    markers.extend([
        a_id.clone(),
        a_name.clone(),
        key_id.clone(),
        "a-reader".to_owned(),
        invitation_id.clone(),
        "x@example.com".to_owned(),
        webhook_id.clone(),
        delivery_id.clone(),
        "https://93.184.216.34/a-private-hook".to_owned(),
        "A's hook".to_owned(),
        member_id.clone(),
        member_email.clone(),
    ]);

    let walkers = vec![
        Walker {
            name: "B's admin key",
            client: b_key,
            by_key: true,
            member_of_a: false,
        },
        Walker {
            name: "B's owner (a member of B only)",
            client: b_user,
            by_key: false,
            member_of_a: false,
        },
        Walker {
            name: "A's owner switched to B",
            client: owner_in_b,
            by_key: false,
            member_of_a: true,
        },
    ];
    World {
        test,
        a_admin,
        a_owner,
        a_member,
        a: WorkspaceA {
            id: a_id,
            name: a_name,
            link_ids,
            domain,
            key_id,
            key_token,
            invitation_id,
            webhook_id,
            delivery_id,
            page_id,
            member_id,
            member_email,
            markers,
        },
        b_id,
        walkers,
    }
}

/// One operation of the OpenAPI document.
struct Operation {
    method: String,
    path: String,
    spec: Value,
}

fn operations(document: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, spec) in item.as_object().unwrap() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.push(Operation {
                    method: method.to_uppercase(),
                    path: path.clone(),
                    spec: spec.clone(),
                });
            }
        }
    }
    out
}

fn skipped(operation: &Operation) -> bool {
    SKIPPED
        .iter()
        .any(|(method, path, _)| *method == operation.method && *path == operation.path)
}

/// Whether an API key may call the operation (else only a session may).
fn takes_api_key(operation: &Operation) -> bool {
    operation.spec["security"]
        .as_array()
        .is_some_and(|schemes| schemes.iter().any(|s| s.get("api_key").is_some()))
}

/// The path's parameters, in order.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// What A's ids are for each path parameter; panics for a parameter nobody
/// taught this test, so a new kind of route cannot pass unwalked.
fn a_values(a: &WorkspaceA, path: &str, param: &str) -> Vec<String> {
    match param {
        "id" if path.starts_with("/api/v1/links/") => {
            a.link_ids.iter().map(u64::to_string).collect()
        }
        "id" if path.starts_with("/api/v1/workspaces/") => vec![a.id.clone()],
        "id" if path.starts_with("/api/v1/keys/") => vec![a.key_id.clone()],
        "id" if path.starts_with("/api/v1/webhooks/") => vec![a.webhook_id.clone()],
        "id" if path.starts_with("/api/v1/webhook-deliveries/") => vec![a.delivery_id.clone()],
        "id" if path.starts_with("/api/v1/pages/") => vec![a.page_id.to_string()],
        "domain" => vec![a.domain.clone()],
        "user_id" => vec![a.member_id.clone()],
        "invitation_id" => vec![a.invitation_id.clone()],
        _ => panic!("{path}: no id of workspace A for {{{param}}}; teach a_values"),
    }
}

/// An id of the same kind that exists nowhere.
fn missing_value(path: &str, param: &str) -> String {
    if param == "id" && (path.starts_with("/api/v1/links/") || path.starts_with("/api/v1/pages/")) {
        "987654321".to_owned()
    } else {
        format!("no-such-{}", param.replace('_', "-"))
    }
}

/// Every way to fill `path` with A's ids (one per link for link routes).
fn fill_with_a(a: &WorkspaceA, path: &str) -> Vec<String> {
    let mut filled = vec![path.to_owned()];
    for param in path_params(path) {
        let values = a_values(a, path, param);
        filled = filled
            .iter()
            .flat_map(|p| {
                values
                    .iter()
                    .map(move |v| p.replacen(&format!("{{{param}}}"), v, 1))
            })
            .collect();
    }
    filled
}

fn fill_with_missing(path: &str) -> String {
    path_params(path)
        .into_iter()
        .fold(path.to_owned(), |p, param| {
            p.replacen(&format!("{{{param}}}"), &missing_value(path, param), 1)
        })
}

/// `?name=value` for the operation's required query parameters.
fn required_query(operation: &Operation) -> String {
    let pairs: Vec<String> = operation.spec["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let value = match sample(&Value::Null, &p["schema"]) {
                Value::String(s) => s,
                other => other.to_string(),
            };
            format!("{}={value}", p["name"].as_str().unwrap())
        })
        .collect();
    if pairs.is_empty() {
        String::new()
    } else {
        format!("?{}", pairs.join("&"))
    }
}

/// A plausible value for a schema, from its examples and enums: an object
/// gets its required properties, or, with none required, those with an
/// example (so a patch changes something).
fn sample(document: &Value, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return sample(document, &document["components"]["schemas"][name]);
    }
    if let Some(example) = schema.get("example") {
        return example.clone();
    }
    if let Some(example) = schema["examples"].get(0) {
        return example.clone();
    }
    if let Some(first) = schema["enum"]
        .as_array()
        .and_then(|values| values.iter().find(|v| !v.is_null()))
    {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").cloned(),
        other => Some(other.clone()),
    };
    match kind.as_ref().and_then(Value::as_str) {
        Some("array") => json!([sample(document, &schema["items"])]),
        Some("object") => {
            let properties = schema["properties"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let required: Vec<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let chosen = properties.iter().filter(|(name, property)| {
                if required.is_empty() {
                    property.get("example").is_some() || property.get("examples").is_some()
                } else {
                    required.contains(&name.as_str())
                }
            });
            Value::Object(
                chosen
                    .map(|(name, property)| (name.clone(), sample(document, property)))
                    .collect(),
            )
        }
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        _ => json!("x"),
    }
}

fn request_body(document: &Value, operation: &Operation) -> Option<Vec<u8>> {
    let schema = &operation.spec["requestBody"]["content"]["application/json"]["schema"];
    (!schema.is_null()).then(|| serde_json::to_vec(&sample(document, schema)).unwrap())
}

/// A response body cut short for failure messages.
fn short(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn call(client: &ApiClient, method: &str, path: &str, body: Option<&[u8]>) -> ApiResponse {
    client.send(method, path, body.map(|b| ("application/json", b)), &[])
}

/// Checks the one error shape; says what is wrong otherwise.
fn error_shape(response: &ApiResponse) -> Result<(), String> {
    let error = &response.body["error"];
    let fine = error["code"].as_str().is_some_and(|c| !c.is_empty())
        && error["message"].as_str().is_some_and(|m| !m.is_empty())
        && error.get("field").is_some();
    if fine {
        Ok(())
    } else {
        Err(format!(
            "not the JSON error shape: {}",
            short(&response.text)
        ))
    }
}

/// The markers of A (and A's link ids, as `id` or `link_id`) found in `body`.
fn leaks(body: &Value, a: &WorkspaceA) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![(None::<String>, body)];
    while let Some((key, value)) = stack.pop() {
        match value {
            Value::String(s) if a.markers.contains(s) => found.push(s.clone()),
            Value::Number(n)
                if matches!(key.as_deref(), Some("id" | "link_id"))
                    && n.as_u64().is_some_and(|id| a.link_ids.contains(&id)) =>
            {
                found.push(format!("link id {n}"));
            }
            Value::Array(items) => stack.extend(items.iter().map(|v| (key.clone(), v))),
            Value::Object(fields) => stack.extend(fields.iter().map(|(k, v)| (Some(k.clone()), v))),
            _ => {}
        }
    }
    found
}

/// How a walk went.
#[derive(Default)]
struct Walk {
    failures: Vec<String>,
    /// Requests answered 404 for one of A's ids.
    not_found: usize,
    /// (walker, path) of the lists read.
    lists: BTreeSet<(String, String)>,
}

impl Walk {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }
}

/// A route naming A's resources: 404 in the error shape, as for an id that
/// exists nowhere (a key on a route for sessions only gets 401 before any
/// lookup).
fn walk_named(
    walk: &mut Walk,
    walker: &Walker,
    operation: &Operation,
    a: &WorkspaceA,
    body: Option<&[u8]>,
) {
    let method = operation.method.as_str();
    let query = required_query(operation);
    let missing = call(
        &walker.client,
        method,
        &format!("{}{query}", fill_with_missing(&operation.path)),
        body,
    );
    for path in fill_with_a(a, &operation.path) {
        let path = format!("{path}{query}");
        let answer = call(&walker.client, method, &path, body);
        let label = format!("{} {method} {path}", walker.name);
        if let Err(e) = error_shape(&answer) {
            walk.failures.push(format!("{label}: {e}"));
        }
        if walker.by_key && !takes_api_key(operation) {
            walk.check(
                answer.status == 401 && answer.error_code() == "not_signed_in",
                || {
                    format!(
                        "{label}: for sessions only, expected 401 not_signed_in, got {} {}",
                        answer.status,
                        short(&answer.text)
                    )
                },
            );
            continue;
        }
        walk.check(answer.status == 404, || {
            format!(
                "{label}: expected 404, got {} {}",
                answer.status,
                short(&answer.text)
            )
        });
        walk.check(
            answer.status == missing.status && answer.error_code() == missing.error_code(),
            || {
                format!(
                    "{label}: answered {} {} but a missing id gets {} {}",
                    answer.status,
                    answer.error_code(),
                    missing.status,
                    missing.error_code()
                )
            },
        );
        if answer.status == 404 {
            walk.not_found += 1;
        }
        if method == "GET" {
            let head = walker.client.send("HEAD", &path, None, &[]);
            walk.check(head.status == 404 && head.text.is_empty(), || {
                format!(
                    "{} HEAD {path}: expected a bare 404, got {} {}",
                    walker.name,
                    head.status,
                    short(&head.text)
                )
            });
        }
    }
}

/// A route naming nothing: it acts in B. Lists answer 2xx; nothing answered
/// carries a trace of A.
fn walk_unnamed(
    walk: &mut Walk,
    walker: &Walker,
    operation: &Operation,
    a: &WorkspaceA,
    body: Option<&[u8]>,
) {
    let method = operation.method.as_str();
    let path = format!("{}{}", operation.path, required_query(operation));
    let answer = call(&walker.client, method, &path, body);
    let label = format!("{} {method} {path}", walker.name);
    let found = leaks(&answer.body, a);
    walk.check(found.is_empty(), || {
        format!("{label}: answers A's {found:?}: {}", short(&answer.text))
    });
    walk.check(answer.status < 500, || {
        format!("{label}: {} {}", answer.status, short(&answer.text))
    });
    if walker.by_key && !takes_api_key(operation) {
        walk.check(answer.status == 401, || {
            format!(
                "{label}: for sessions only, expected 401, got {} {}",
                answer.status,
                short(&answer.text)
            )
        });
    } else if method == "GET" {
        walk.check((200..300).contains(&answer.status), || {
            format!(
                "{label}: expected 2xx, got {} {}",
                answer.status,
                short(&answer.text)
            )
        });
        walk.lists
            .insert((walker.name.to_owned(), operation.path.clone()));
    }
}

/// What A's callers read of A, to compare before and after the walk.
fn snapshot(world: &World) -> Vec<(String, Value)> {
    let a = &world.a;
    let mut paths = vec![
        "/api/v1/links?limit=1000".to_owned(),
        "/api/v1/domains".to_owned(),
        "/api/v1/keys".to_owned(),
        "/api/v1/analytics/overview".to_owned(),
        "/api/v1/analytics/top-links".to_owned(),
        format!("/api/v1/workspaces/{}", a.id),
        format!("/api/v1/workspaces/{}/members", a.id),
        format!("/api/v1/workspaces/{}/invitations", a.id),
    ];
    paths.push(format!("/api/v1/pages/{}", a.page_id));
    for id in &a.link_ids {
        paths.push(format!("/api/v1/links/{id}"));
        paths.push(format!(
            "/api/v1/links/{id}/analytics/breakdown?dimension=country"
        ));
    }
    let mut out: Vec<(String, Value)> = paths
        .into_iter()
        .map(|path| {
            let answer = world.a_admin.get(&path);
            assert_eq!(answer.status, 200, "A reads {path}: {}", answer.text);
            (format!("A's admin key: {path}"), answer.body)
        })
        .collect();
    let workspaces = world.a_owner.get("/api/v1/workspaces");
    assert_eq!(workspaces.status, 200, "{}", workspaces.text);
    let a_entry = workspaces.body["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["id"] == a.id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    out.push(("A's owner: A in GET /api/v1/workspaces".to_owned(), a_entry));
    out
}

/// The part of a snapshot read at a path ending with `suffix`.
fn part<'a>(snapshot: &'a [(String, Value)], suffix: &str) -> &'a Value {
    &snapshot
        .iter()
        .find(|(what, _)| what.ends_with(suffix))
        .unwrap_or_else(|| panic!("no {suffix} in the snapshot"))
        .1
}

#[test]
fn every_route_answers_404_for_another_workspaces_ids_and_lists_nothing_of_it() {
    let world = world();
    let a = &world.a;
    let document = ApiClient::new(&world.test.base_url(), None).get("/api/v1/openapi.json");
    assert_eq!(document.status, 200, "{}", document.text);
    let document = document.body;
    let operations = operations(&document);
    for (method, path, reason) in SKIPPED {
        assert!(
            operations
                .iter()
                .any(|o| o.method == *method && o.path == *path),
            "{method} {path} is skipped ({reason}) but no longer documented"
        );
    }

    // A reads every resource the walk names (so a 404 to B is about B).
    for operation in operations.iter().filter(|o| o.method == "GET") {
        if skipped(operation) || path_params(&operation.path).is_empty() {
            continue;
        }
        for path in fill_with_a(a, &operation.path) {
            let path = format!("{path}{}", required_query(operation));
            let answer = world.a_admin.get(&path);
            assert_eq!(answer.status, 200, "A reads {path}: {}", answer.text);
        }
    }
    let before = snapshot(&world);
    let overview = part(&before, "/analytics/overview");
    assert_eq!(
        overview["links_with_clicks"],
        a.link_ids.len(),
        "{overview}"
    );
    let members = part(&before, "/members");
    assert!(members.to_string().contains(&a.member_id), "{members}");
    let invitations = part(&before, "/invitations");
    assert!(
        invitations.to_string().contains(&a.invitation_id),
        "{invitations}"
    );

    let mut walk = Walk::default();
    let mut walked = 0;
    for walker in &world.walkers {
        for operation in &operations {
            if skipped(operation)
                || (walker.member_of_a && operation.path.starts_with("/api/v1/workspaces"))
            {
                continue;
            }
            walked += 1;
            let body = request_body(&document, operation);
            if path_params(&operation.path).is_empty() {
                walk_unnamed(&mut walk, walker, operation, a, body.as_deref());
            } else {
                walk_named(&mut walk, walker, operation, a, body.as_deref());
            }
        }
    }
    assert!(
        walk.failures.is_empty(),
        "{} failures over {walked} walked operations:\n{}",
        walk.failures.len(),
        walk.failures.join("\n")
    );
    assert!(walk.not_found > 0);
    for list in EXPECTED_LISTS {
        assert!(
            walk.lists
                .contains(&("B's admin key".to_owned(), (*list).to_owned())),
            "the walk did not read {list}: {:?}",
            walk.lists
        );
    }

    // A is as it was, and its key and member still work.
    let after = snapshot(&world);
    for ((what, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(was, is, "{what} changed");
    }
    let a_key = ApiClient::new(&world.test.base_url(), Some(&a.key_token));
    let read = a_key.get("/api/v1/links");
    assert_eq!(read.status, 200, "A's key: {}", read.text);
    assert_eq!(
        read.body["links"].as_array().unwrap().len(),
        a.link_ids.len()
    );
    let session = world.a_member.get("/api/v1/auth/session");
    assert_eq!(session.status, 200, "{}", session.text);
    assert_eq!(session.body["workspace"]["id"], a.id.as_str());
    assert_eq!(session.body["workspace"]["role"], "member");
    assert_eq!(session.body["user"]["email"], a.member_email.as_str());
    let named = world.a_admin.get(&format!("/api/v1/workspaces/{}", a.id));
    assert_eq!(named.body["name"], a.name.as_str(), "{}", named.text);
    assert!(named.body["deleted_at"].is_null(), "{}", named.text);
    let b = world
        .a_owner
        .get(&format!("/api/v1/workspaces/{}", world.b_id));
    assert_eq!(b.body["name"], "B", "{}", b.text);
}

#[test]
fn another_workspace_can_neither_use_nor_register_a_domain() {
    let world = world();
    let a = &world.a;
    for walker in &world.walkers {
        let on_a = walker.client.post(
            "/api/v1/links",
            &json!({"url": "https://b.example/", "domain": a.domain}),
        );
        assert_eq!(on_a.status, 422, "{}: {}", walker.name, on_a.text);
        assert_eq!(on_a.error_code(), "unknown_domain", "{}", on_a.text);
        error_shape(&on_a).unwrap();
        let nowhere = walker.client.post(
            "/api/v1/links",
            &json!({"url": "https://b.example/", "domain": "never-registered.example"}),
        );
        assert_eq!(
            (nowhere.status, nowhere.error_code()),
            (on_a.status, on_a.error_code()),
            "A's domain is answered as one never registered: {}",
            nowhere.text
        );
        let bulk = walker.client.post(
            "/api/v1/links/bulk",
            &json!([{"url": "https://b.example/", "domain": a.domain}]),
        );
        assert_eq!(bulk.status, 200, "{}", bulk.text);
        assert_eq!(bulk.body["created"], 0, "{}", bulk.text);
        assert_eq!(bulk.body["items"][0]["status"], 422, "{}", bulk.text);

        let register = walker
            .client
            .post("/api/v1/domains", &json!({"domain": a.domain}));
        assert_eq!(register.status, 409, "{}: {}", walker.name, register.text);
        assert_eq!(register.error_code(), "domain_exists", "{}", register.text);

        let domains = walker.client.get("/api/v1/domains");
        assert_eq!(domains.status, 200, "{}", domains.text);
        assert!(leaks(&domains.body, a).is_empty(), "{}", domains.text);
    }
    // A's domain still belongs to A, with only A's link on it.
    let links = world
        .a_admin
        .get(&format!("/api/v1/links?domain={}", a.domain));
    assert_eq!(links.status, 200, "{}", links.text);
    let links = links.body["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:?}");
    assert_eq!(links[0]["id"], a.link_ids[0]);
    let fine = world.a_admin.post(
        "/api/v1/links",
        &json!({"url": "https://a-private.example/more", "domain": a.domain}),
    );
    assert_eq!(fine.status, 201, "{}", fine.text);
}
