//! Webhooks end to end (real control plane, real store, a real HTTP receiver
//! on loopback, allowed by `webhooks.allow_private`): endpoints validated and
//! SSRF-checked; link, click and expiry events delivered signed; failures
//! retried, dead-lettered and redelivered; failing endpoints disabled; a
//! restart with deliveries pending loses none and sends none twice.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ricochet_clickstore::{ClickSink, ControlSink};
use ricochet_control::ControlConfig;
use ricochet_control::test_util::pages::{PageServer, ReceivedRequest, Reply};
use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_control::webhooks::signing::verify;
use ricochet_model::bus::LocalBus;
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow, window_start};
use serde_json::{Value, json};

fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// A receiver answering 200 while `up`, else 503.
fn receiver_at(addr: SocketAddr, up: Arc<AtomicBool>) -> PageServer {
    PageServer::start_at(addr, move |_| {
        if up.load(Ordering::Acquire) {
            Reply::Page {
                status: 200,
                content_type: "text/plain".into(),
                body: b"ok".to_vec(),
            }
        } else {
            Reply::Page {
                status: 503,
                content_type: "text/plain".into(),
                body: b"down".to_vec(),
            }
        }
    })
}

fn receiver(up: bool) -> (PageServer, Arc<AtomicBool>) {
    let flag = Arc::new(AtomicBool::new(up));
    (
        receiver_at("127.0.0.1:0".parse().unwrap(), flag.clone()),
        flag,
    )
}

fn start(configure: impl FnOnce(&mut ControlConfig)) -> TestControl {
    TestControl::start_with(
        |config| {
            config.webhooks.allow_private = true;
            config.webhooks.retry_delays = vec![Duration::from_millis(100); 3];
            configure(config);
        },
        Arc::new(LocalBus::new()),
    )
}

fn add_endpoint(api: &ApiClient, url: &str, events: Value) -> (String, String) {
    let created = api.post("/api/v1/webhooks", &json!({"url": url, "events": events}));
    assert_eq!(created.status, 201, "{}", created.text);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    (created.body["id"].as_str().unwrap().to_owned(), secret)
}

/// Every request's body as JSON, in arrival order.
fn bodies(server: &PageServer) -> Vec<Value> {
    server
        .requests()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON body"))
        .collect()
}

fn of_type(server: &PageServer, kind: &str) -> Vec<Value> {
    bodies(server)
        .into_iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

fn assert_signed(request: &ReceivedRequest, secret: &str) {
    let header = request
        .header("ricochet-signature")
        .expect("a signature header");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(
        verify(secret, header, &request.body, now, 300),
        Ok(()),
        "{header}"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        request.header("ricochet-event-id"),
        body["id"].as_str(),
        "{body}"
    );
    assert_eq!(request.header("ricochet-event-type"), body["type"].as_str());
    assert_eq!(request.header("content-type"), Some("application/json"));
}

#[test]
fn endpoints_are_validated_and_private_addresses_refused_by_default() {
    let test = TestControl::start();
    let api = test.client();
    for (body, code, field) in [
        (
            json!({"url": "ftp://hooks.example/x", "events": ["*"]}),
            "invalid_url",
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["*"]}),
            "invalid_url",
            "url",
        ),
        (
            json!({"url": "https://user:pw@hooks.example/x", "events": ["*"]}),
            "invalid_url",
            "url",
        ),
        (
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
            "url_not_public",
            "url",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["*"]}),
            "url_not_public",
            "url",
        ),
        (
            json!({"url": "http://[::1]:9/hook", "events": ["link.created"]}),
            "url_not_public",
            "url",
        ),
        (
            json!({"url": "https://93.184.216.34/hook", "events": []}),
            "invalid_events",
            "events",
        ),
        (
            json!({"url": "https://93.184.216.34/hook", "events": ["link.exploded"]}),
            "invalid_events",
            "events",
        ),
        (
            json!({"url": "https://93.184.216.34/hook", "events": ["*"], "description": "a\u{0}b"}),
            "invalid_description",
            "description",
        ),
    ] {
        let answer = api.post("/api/v1/webhooks", &body);
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        assert_eq!(answer.error_code(), code, "{body}: {}", answer.text);
        assert_eq!(answer.body["error"]["field"], field, "{}", answer.text);
    }
    let unknown_field = api.post(
        "/api/v1/webhooks",
        &json!({"url": "https://93.184.216.34/", "events": ["*"], "secret": "mine"}),
    );
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.text);

    // A public address is taken; its secret is shown once.
    let (id, _) = add_endpoint(&api, "https://93.184.216.34/hook", json!(["*"]));
    let read = api.get(&format!("/api/v1/webhooks/{id}"));
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(read.body.get("secret").is_none(), "{}", read.text);
    assert_eq!(read.body["events"].as_array().unwrap().len(), 10);
    let listed = api.get("/api/v1/webhooks");
    assert_eq!(listed.body["webhooks"].as_array().unwrap().len(), 1);
    assert!(listed.body["webhooks"][0].get("secret").is_none());

    // Edits are checked the same way.
    let private = api.patch(
        &format!("/api/v1/webhooks/{id}"),
        &json!({"url": "http://10.0.0.7/hook"}),
    );
    assert_eq!(private.error_code(), "url_not_public", "{}", private.text);
    assert_eq!(
        api.get(&format!("/api/v1/webhooks/{id}")).body["url"],
        "https://93.184.216.34/hook"
    );
    assert_eq!(api.get("/api/v1/webhooks/wh_nope").status, 404);
    assert_eq!(api.delete(&format!("/api/v1/webhooks/{id}")).status, 204);
    assert_eq!(api.get(&format!("/api/v1/webhooks/{id}")).status, 404);
}

#[test]
fn allow_private_opens_private_ranges_but_never_link_local() {
    let test = start(|_| {});
    let api = test.client();
    add_endpoint(&api, "http://127.0.0.1:9/hook", json!(["link.created"]));
    let metadata = api.post(
        "/api/v1/webhooks",
        &json!({"url": "http://169.254.169.254/", "events": ["*"]}),
    );
    assert_eq!(metadata.error_code(), "url_not_public", "{}", metadata.text);
}

#[test]
fn link_changes_are_delivered_signed_with_the_link_as_the_api_shows_it() {
    let (server, _) = receiver(true);
    let test = start(|_| {});
    let api = test.client();
    let (endpoint, secret) = add_endpoint(
        &api,
        &server.url("/links"),
        json!(["link.created", "link.updated", "link.deleted"]),
    );
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/a", "code": "hooked", "title": "<b>T</b>"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let link = format!("/api/v1/links/{}", created.body["id"]);
    assert_eq!(
        api.patch(&link, &json!({"url": "https://example.com/b"}))
            .status,
        200
    );
    assert_eq!(api.delete(&link).status, 200);

    let links_path = |server: &PageServer| {
        server
            .requests()
            .into_iter()
            .filter(|r| r.path == "/links")
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(10), || links_path(&server).len() >= 3),
        "{:?}",
        server.paths()
    );
    std::thread::sleep(Duration::from_millis(500));
    let requests = links_path(&server);
    assert_eq!(requests.len(), 3, "one delivery per change");
    let mut types = Vec::new();
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_signed(request, &secret);
        let event: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(event["workspace"], "default");
        assert!(event["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(event["data"]["link"]["code"], "hooked");
        assert_eq!(event["data"]["link"]["title"], "<b>T</b>");
        types.push(event["type"].as_str().unwrap().to_owned());
    }
    types.sort();
    assert_eq!(types, ["link.created", "link.deleted", "link.updated"]);
    let updated = requests
        .iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|e| e["type"] == "link.updated")
        .unwrap();
    assert_eq!(updated["data"]["link"]["url"], "https://example.com/b");

    // The delivery log shows each with its status and latency.
    let log = api.get(&format!("/api/v1/webhooks/{endpoint}/deliveries"));
    assert_eq!(log.status, 200, "{}", log.text);
    let deliveries = log.body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 3, "{}", log.text);
    for delivery in deliveries {
        assert_eq!(delivery["state"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["log"][0]["status"], 200);
        assert!(delivery["log"][0]["latency_ms"].is_u64());
    }
    let one = api.get(&format!(
        "/api/v1/webhook-deliveries/{}",
        deliveries[0]["id"].as_str().unwrap()
    ));
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["payload"]["id"], deliveries[0]["event_id"]);
}

#[test]
fn failed_deliveries_are_retried_then_dead_lettered_and_can_be_redelivered() {
    let (server, up) = receiver(false);
    let test = start(|_| {});
    let api = test.client();
    let (endpoint, secret) = add_endpoint(&api, &server.url("/hook"), json!(["link.created"]));
    let created = api.post("/api/v1/links", &json!({"url": "https://example.com/r"}));
    assert_eq!(created.status, 201);

    // One attempt and three retries, then the dead-letter list.
    let dead = || {
        let list = api.get("/api/v1/webhook-deliveries?state=dead");
        assert_eq!(list.status, 200, "{}", list.text);
        list.body["deliveries"].as_array().unwrap().clone()
    };
    assert!(
        eventually(Duration::from_secs(10), || dead().len() == 1),
        "{:?}",
        server.paths()
    );
    let delivery = dead()[0].clone();
    assert_eq!(delivery["attempts"], 4, "{delivery}");
    assert_eq!(delivery["webhook_id"], endpoint.as_str());
    let log = delivery["log"].as_array().unwrap();
    assert_eq!(log.len(), 4);
    assert!(log.iter().all(|attempt| attempt["status"] == 503));
    assert!(log[0]["error"].as_str().unwrap().contains("503"));
    let received = server.requests();
    assert_eq!(received.len(), 4);
    let ids: Vec<_> = received
        .iter()
        .map(|r| r.header("ricochet-event-id").unwrap().to_owned())
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same event: {ids:?}"
    );
    let redeliver = format!(
        "/api/v1/webhook-deliveries/{}/redeliver",
        delivery["id"].as_str().unwrap()
    );
    let redelivered = api.post(&redeliver, &json!({}));
    assert_eq!(redelivered.status, 202, "{}", redelivered.text);
    assert_eq!(redelivered.body["state"], "pending");
    // Pending again (its new round takes some 300 ms to fail): it is not
    // redelivered twice.
    let again = api.post(&redeliver, &json!({}));
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.error_code(), "delivery_pending");
    up.store(true, Ordering::Release);
    let path = format!(
        "/api/v1/webhook-deliveries/{}",
        delivery["id"].as_str().unwrap()
    );
    assert!(
        eventually(Duration::from_secs(10), || api.get(&path).body["state"]
            == "delivered"),
        "{}",
        api.get(&path).text
    );
    let last = server.requests().pop().unwrap();
    assert_signed(&last, &secret);
    assert_eq!(last.header("ricochet-event-id").unwrap(), ids[0]);
    assert!(dead().is_empty());
    assert_eq!(
        api.get("/api/v1/webhook-deliveries?state=bogus")
            .error_code(),
        "invalid_state"
    );
}

#[test]
fn an_endpoint_failing_for_disable_after_is_disabled_and_can_be_enabled() {
    let (server, _) = receiver(false);
    let test = start(|config| {
        config.webhooks.retry_delays = vec![Duration::from_millis(200); 10];
        config.webhooks.disable_after = Duration::from_millis(600);
    });
    let api = test.client();
    let (endpoint, _) = add_endpoint(&api, &server.url("/hook"), json!(["link.created"]));
    assert_eq!(
        api.post("/api/v1/links", &json!({"url": "https://example.com/d"}))
            .status,
        201
    );
    let path = format!("/api/v1/webhooks/{endpoint}");
    assert!(
        eventually(Duration::from_secs(10), || api.get(&path).body["enabled"]
            == false),
        "{}",
        api.get(&path).text
    );
    let disabled = api.get(&path);
    assert!(
        disabled.body["disabled_at"].is_string(),
        "{}",
        disabled.text
    );
    assert!(
        disabled.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{}",
        disabled.text
    );
    assert!(disabled.body["failing_since"].is_string());
    let metrics = ApiClient::new(&test.base_url(), None).get("/metrics");
    assert!(
        metrics
            .text
            .contains("ricochet_control_webhook_endpoints_disabled_total 1"),
        "{}",
        metrics.text
    );
    // Events while disabled are not delivered to it.
    let before = server.requests().len();
    assert_eq!(
        api.post("/api/v1/links", &json!({"url": "https://example.com/e"}))
            .status,
        201
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(server.requests().len(), before);

    let enabled = api.patch(&path, &json!({"enabled": true}));
    assert_eq!(enabled.status, 200, "{}", enabled.text);
    assert_eq!(enabled.body["enabled"], true);
    assert_eq!(enabled.body["disabled_at"], Value::Null);
    assert_eq!(enabled.body["failing_since"], Value::Null);
}

#[test]
fn test_events_go_to_one_endpoint_and_a_rotated_secret_signs_from_then_on() {
    let (server, _) = receiver(true);
    let test = start(|_| {});
    let api = test.client();
    let (endpoint, secret) = add_endpoint(&api, &server.url("/a"), json!(["link.deleted"]));
    let (_, _) = add_endpoint(&api, &server.url("/b"), json!(["*"]));
    let sent = api.post(&format!("/api/v1/webhooks/{endpoint}/test"), &json!({}));
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert_eq!(sent.body["event_type"], "webhook.test");
    assert!(eventually(Duration::from_secs(10), || server
        .requests()
        .len()
        == 1));
    std::thread::sleep(Duration::from_millis(400));
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{:?}", server.paths());
    assert_eq!(requests[0].path, "/a");
    assert_signed(&requests[0], &secret);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["data"]["endpoint_id"], endpoint.as_str());

    let rotated = api.post(&format!("/api/v1/webhooks/{endpoint}/secret"), &json!({}));
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.body["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_eq!(
        api.post(&format!("/api/v1/webhooks/{endpoint}/test"), &json!({}))
            .status,
        202
    );
    assert!(eventually(Duration::from_secs(10), || server
        .requests()
        .len()
        == 2));
    let second = server.requests().pop().unwrap();
    assert_signed(&second, &new_secret);
    let header = second.header("ricochet-signature").unwrap();
    assert!(verify(&secret, header, &second.body, 0, i64::MAX).is_err());
}

#[test]
fn a_restart_with_deliveries_pending_loses_none_and_sends_none_twice() {
    let up = Arc::new(AtomicBool::new(true));
    let server = receiver_at("127.0.0.1:0".parse().unwrap(), up.clone());
    let addr = server.addr();
    let mut test = start(|config| {
        config.webhooks.retry_delays = vec![Duration::from_millis(300); 10];
    });
    let api = test.client();
    add_endpoint(
        &api,
        &format!("http://{addr}/hook"),
        json!(["link.created", "link.updated"]),
    );
    // The receiver goes away; changes go on.
    drop(server);
    let mut codes = Vec::new();
    for n in 0..5 {
        let created = api.post(
            "/api/v1/links",
            &json!({"url": format!("https://example.com/{n}"), "code": format!("restart{n}")}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
        codes.push(format!("restart{n}"));
    }
    let pending = || {
        api.get("/api/v1/webhook-deliveries?state=pending").body["deliveries"]
            .as_array()
            .map_or(0, Vec::len)
    };
    assert!(eventually(Duration::from_secs(10), || pending() == 5));
    // A change made just before the stop, maybe not fanned out yet.
    let last = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/last", "code": "restartlast"}),
    );
    assert_eq!(last.status, 201);
    codes.push("restartlast".into());
    test.control.take().unwrap().shutdown();

    let control = ricochet_control::ControlPlane::start(test.config.clone(), test.bus.clone())
        .expect("restarts");
    test.control = Some(control);
    let server = receiver_at(addr, up);
    assert!(
        eventually(Duration::from_secs(15), || of_type(&server, "link.created")
            .len()
            >= 6),
        "{:?}",
        bodies(&server)
    );
    std::thread::sleep(Duration::from_millis(700));
    let events = of_type(&server, "link.created");
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for event in &events {
        *by_id
            .entry(event["id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert!(by_id.values().all(|&n| n == 1), "{by_id:?}");
    let mut received: Vec<String> = events
        .iter()
        .map(|e| e["data"]["link"]["code"].as_str().unwrap().to_owned())
        .collect();
    received.sort();
    codes.sort();
    assert_eq!(received, codes);
}

fn window(link: u64, at: i64, humans: u64, country: &str) -> WindowBatch {
    let row = |dimension, value: &str, count| WindowRow {
        link_id: link,
        window_start: at,
        dimension,
        value: value.to_owned(),
        bot: false,
        count,
    };
    WindowBatch {
        node: "engine-a".into(),
        shard: 0,
        window_start: at,
        rows: vec![
            row(Dimension::Total, "", humans),
            row(Dimension::Country, country, humans),
        ],
    }
}

#[test]
fn closed_windows_become_one_clicked_event_per_window_and_limits_expire_links() {
    let (server, _) = receiver(true);
    // One link per window in full; the others summed.
    let test = start(|config| config.webhooks.clicked_links_per_window = 1);
    let api = test.client();
    add_endpoint(
        &api,
        &server.url("/clicks"),
        json!(["link.clicked", "link.expired"]),
    );
    let plain = api.post("/api/v1/links", &json!({"url": "https://example.com/p"}));
    let limited = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/l", "max_clicks": 5}),
    );
    let (plain, limited) = (
        plain.body["id"].as_u64().unwrap(),
        limited.body["id"].as_u64().unwrap(),
    );
    // Shipped as an engine ships them, for a window that closed a minute ago.
    let at = window_start(ricochet_model::now_millis() - 60_000);
    let sink = ControlSink::new(&test.base_url(), test.control().cluster_token());
    let mut shard_a = window(plain, at, 3, "FR");
    shard_a.rows.extend(window(limited, at, 5, "US").rows);
    let mut shard_b = window(plain, at, 2, "US");
    shard_b.shard = 1;
    sink.write(&shard_a).unwrap();
    sink.write(&shard_b).unwrap();
    // An engine's retry of the same window.
    sink.write(&shard_a).unwrap();

    assert!(
        eventually(Duration::from_secs(10), || !of_type(
            &server,
            "link.clicked"
        )
        .is_empty()
            && !of_type(&server, "link.expired").is_empty()),
        "{:?}",
        bodies(&server)
    );
    std::thread::sleep(Duration::from_millis(2500));
    let clicked = of_type(&server, "link.clicked");
    assert_eq!(clicked.len(), 1, "{clicked:?}");
    let data = &clicked[0]["data"];
    assert_eq!(
        data["window_end"].as_str().unwrap().len(),
        data["window_start"].as_str().unwrap().len()
    );
    let links = data["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{data}");
    // Both have 5 clicks: the older link comes first.
    assert_eq!(links[0]["link_id"], plain, "{data}");
    assert_eq!(links[0]["humans"], 5, "shards add up: {data}");
    assert_eq!(
        links[0]["breakdowns"]["country"],
        json!([{"value": "FR", "humans": 3, "bots": 0}, {"value": "US", "humans": 2, "bots": 0}])
    );
    assert_eq!(
        data["other_links"],
        json!({"links": 1, "humans": 5, "bots": 0}),
        "{data}"
    );
    let expired = of_type(&server, "link.expired");
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["data"]["reason"], "click_limit");
    assert_eq!(expired[0]["data"]["link"]["id"], limited);

    // The same window again later is not counted again.
    sink.write(&shard_b).unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(of_type(&server, "link.clicked").len(), 1);
}

#[test]
fn a_link_whose_time_passes_gets_one_expired_event() {
    let (server, _) = receiver(true);
    let test = start(|_| {});
    let api = test.client();
    add_endpoint(&api, &server.url("/expiry"), json!(["link.expired"]));
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/soon",
                "expires_at": soon.format(&time::format_description::well_known::Rfc3339).unwrap()}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        eventually(Duration::from_secs(10), || !of_type(
            &server,
            "link.expired"
        )
        .is_empty()),
        "{:?}",
        bodies(&server)
    );
    std::thread::sleep(Duration::from_millis(1500));
    let expired = of_type(&server, "link.expired");
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["data"]["reason"], "time");
    assert_eq!(expired[0]["data"]["link"]["id"], created.body["id"]);
}

#[test]
fn another_workspaces_endpoints_and_deliveries_are_not_found() {
    let test = start(|_| {});
    let owner = test.owner_client();
    let api = test.client();
    let (endpoint, _) = add_endpoint(&api, "http://127.0.0.1:9/hook", json!(["*"]));
    let workspace = owner.post("/api/v1/workspaces", &json!({"name": "Other"}));
    assert_eq!(workspace.status, 201, "{}", workspace.text);
    let other_id = workspace.body["id"].as_str().unwrap();
    let switched = owner.post(&format!("/api/v1/workspaces/{other_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    assert_eq!(
        owner.get(&format!("/api/v1/webhooks/{endpoint}")).status,
        404
    );
    assert_eq!(
        owner
            .post(&format!("/api/v1/webhooks/{endpoint}/test"), &json!({}))
            .status,
        404
    );
    assert_eq!(
        owner.get("/api/v1/webhooks").body["webhooks"],
        json!([]),
        "other workspaces' endpoints are not listed"
    );
}

/// A form post of the console, with the session's CSRF token.
fn form_post(console: &ApiClient, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut body = form_urlencoded::Serializer::new(String::new());
    body.append_pair("csrf_token", console.csrf.as_deref().unwrap());
    for (name, value) in fields {
        body.append_pair(name, value);
    }
    let body = body.finish();
    let answer = console.send(
        "POST",
        path,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
        &[],
    );
    (answer.status, answer.text)
}

#[test]
fn the_console_adds_tests_pauses_and_removes_endpoints() {
    let test = TestControl::start();
    let console = test.owner_client();
    let page = console.get("/console/webhooks");
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("No endpoints yet."), "{}", page.text);
    assert!(
        page.text
            .contains("href=\"/console/webhooks\" aria-current=\"page\"")
    );

    // A private address is refused next to its field; nothing is kept.
    let (status, text) = form_post(
        &console,
        "/console/webhooks",
        &[
            ("url", "http://127.0.0.1:9/hook"),
            ("events", "link.created"),
        ],
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("id=\"webhook-url-error\""), "{text}");
    assert!(text.contains("value=\"http://127.0.0.1:9/hook\""), "{text}");
    let (status, text) = form_post(
        &console,
        "/console/webhooks",
        &[("url", "https://93.184.216.34/hook")],
    );
    assert_eq!(status, 400, "no event chosen: {text}");
    assert!(text.contains("id=\"webhook-events-error\""), "{text}");

    let (status, text) = form_post(
        &console,
        "/console/webhooks",
        &[
            ("url", "https://93.184.216.34/hook"),
            ("description", "<script>alert(1)</script>"),
            ("events", "link.created"),
            ("events", "link.deleted"),
        ],
    );
    assert_eq!(status, 201, "{text}");
    assert!(text.contains("id=\"new-secret\">whsec_"), "{text}");
    assert!(!text.contains("<script>alert(1)"), "escaped: {text}");
    assert!(
        text.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "{text}"
    );
    assert!(text.contains("link.created, link.deleted"), "{text}");
    let id = text
        .split("/console/webhooks/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    assert!(id.starts_with("wh_"), "{id}");
    // The secret is shown once: not on the list afterwards.
    let listed = console.get("/console/webhooks");
    assert!(!listed.text.contains("whsec_"), "{}", listed.text);

    // Actions answer 303 to the list with a notice.
    let act = |action: &str, notice: &str| {
        let answer = console.without_redirects().send(
            "POST",
            &format!("/console/webhooks/{id}/{action}"),
            Some((
                "application/x-www-form-urlencoded",
                format!("csrf_token={}", console.csrf.as_deref().unwrap()).as_bytes(),
            )),
            &[],
        );
        assert_eq!(answer.status, 303, "{action}: {}", answer.text);
        assert_eq!(
            answer.header("location"),
            Some(format!("/console/webhooks?notice={notice}").as_str())
        );
        console
            .get(&format!("/console/webhooks?notice={notice}"))
            .text
    };
    let paused = act("pause", "webhook-saved");
    assert!(paused.contains(">paused<"), "{paused}");
    assert!(paused.contains("Endpoint saved."), "{paused}");
    let api = test.client();
    assert_eq!(
        api.get(&format!("/api/v1/webhooks/{id}")).body["enabled"],
        false
    );
    let resumed = act("resume", "webhook-saved");
    assert!(resumed.contains(">active<"), "{resumed}");
    let tested = act("test", "webhook-test-sent");
    assert!(tested.contains("Test event sent"), "{tested}");
    assert!(tested.contains(">webhook.test<"), "{tested}");
    let (status, _) = form_post(&console, &format!("/console/webhooks/{id}/explode"), &[]);
    assert_eq!(status, 404);

    let removed = act("delete", "webhook-removed");
    assert!(removed.contains("Endpoint removed."), "{removed}");
    assert!(removed.contains("No endpoints yet."), "{removed}");
    assert_eq!(api.get(&format!("/api/v1/webhooks/{id}")).status, 404);
    let (status, _) = form_post(&console, &format!("/console/webhooks/{id}/test"), &[]);
    assert_eq!(status, 404);
}

#[test]
fn an_endpoint_that_never_answers_does_not_hold_up_the_others() {
    // Two workers: the stalled endpoint may hold one of them.
    let stalled = PageServer::start("127.0.0.1", |_| Reply::Stall);
    let (server, _) = receiver(true);
    let test = start(|config| {
        config.webhooks.workers = 2;
        config.webhooks.timeout = Duration::from_secs(5);
    });
    let api = test.client();
    add_endpoint(&api, &stalled.url("/slow"), json!(["link.created"]));
    add_endpoint(&api, &server.url("/fast"), json!(["link.created"]));
    for n in 0..6 {
        let created = api.post(
            "/api/v1/links",
            &json!({"url": format!("https://example.com/s{n}")}),
        );
        assert_eq!(created.status, 201);
    }
    // Well before the stalled deliveries time out, the other endpoint has
    // every one of its deliveries.
    assert!(
        eventually(Duration::from_secs(3), || server.requests().len() == 6),
        "{:?}",
        server.paths()
    );
    assert!(stalled.connections() >= 1);
}

#[test]
fn several_hanging_endpoints_cannot_hold_every_worker() {
    // Six endpoints that never answer, two slots each: twelve, more than
    // the eight workers. Once their first attempts time out they are
    // struggling and share half the workers; the healthy endpoint has the
    // other half. Without that share, each worker freed by a timeout takes
    // another hanging delivery as often as a healthy one, and the healthy
    // endpoint's 200 deliveries crawl at a few per timeout.
    let stalled = PageServer::start("127.0.0.1", |_| Reply::Stall);
    let (server, _) = receiver(true);
    let test = start(|config| {
        config.webhooks.workers = 8;
        config.webhooks.timeout = Duration::from_secs(2);
        config.rate_limit.requests_per_second = 1_000_000;
        config.rate_limit.burst = 1_000_000;
    });
    let api = test.client();
    for n in 0..6 {
        add_endpoint(
            &api,
            &stalled.url(&format!("/hang{n}")),
            json!(["link.created"]),
        );
    }
    add_endpoint(&api, &server.url("/fast"), json!(["link.created"]));
    let links: Vec<Value> = (0..200)
        .map(|n| json!({"url": format!("https://example.com/h{n}")}))
        .collect();
    for chunk in links.chunks(100) {
        let created = api.post("/api/v1/links/bulk", &json!(chunk));
        assert_eq!(created.status, 200, "{}", created.text);
    }
    assert!(
        eventually(Duration::from_secs(30), || server.requests().len() == 200),
        "{} of 200 delivered",
        server.requests().len()
    );
}

#[test]
fn a_backlog_at_stalled_endpoints_does_not_stand_in_front_of_the_others() {
    // Two endpoints that never answer build up hundreds of pending
    // deliveries, more than any one pass hands out; the healthy endpoint
    // still gets each of its own at once, and faster than one a tick.
    let stalled = PageServer::start("127.0.0.1", |_| Reply::Stall);
    let (server, _) = receiver(true);
    let test = start(|config| {
        config.webhooks.workers = 8;
        config.webhooks.timeout = Duration::from_secs(20);
        config.rate_limit.requests_per_second = 1_000_000;
        config.rate_limit.burst = 1_000_000;
    });
    let api = test.client();
    for path in ["/a", "/b"] {
        add_endpoint(&api, &stalled.url(path), json!(["link.created"]));
    }
    add_endpoint(&api, &server.url("/fast"), json!(["link.created"]));
    let links: Vec<Value> = (0..300)
        .map(|n| json!({"url": format!("https://example.com/b{n}")}))
        .collect();
    for chunk in links.chunks(100) {
        let created = api.post("/api/v1/links/bulk", &json!(chunk));
        assert_eq!(created.status, 200, "{}", created.text);
    }
    // 300 deliveries at two slots an endpoint, refilled as attempts end:
    // handed out once per 200 ms tick behind the stalled endpoints'
    // backlog, they would take at least 30 s.
    assert!(
        eventually(Duration::from_secs(15), || server.requests().len() == 300),
        "{} of 300 delivered",
        server.requests().len()
    );
}
