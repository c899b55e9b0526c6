//! The denylist over the API (real HTTP, real store): operators block hosts
//! through the API and files; creates, edits and bulk creates naming a
//! blocked destination (in any field) are refused naming that field; links
//! already pointing there are marked blocked through the change log and
//! unmarked when the host leaves the lists; only admins of the default
//! workspace manage the list.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl};
use ricochet_model::bus::LocalBus;
use serde_json::{Value, json};

fn create(api: &ApiClient, body: Value) -> ApiResponse {
    api.post("/api/v1/links", &body)
}

fn assert_refused(response: &ApiResponse, field: &str) {
    assert_eq!(response.status, 400, "{}", response.text);
    assert_eq!(
        response.error_code(),
        "destination_blocked",
        "{}",
        response.text
    );
    assert_eq!(response.body["error"]["field"], field, "{}", response.text);
}

/// The changes engines read after `version`.
fn changes_after(test: &TestControl, version: u64) -> Vec<Value> {
    let engine = ApiClient::new(&test.base_url(), Some(test.control().cluster_token()));
    let page = engine.get(&format!("/internal/v1/changes?after={version}"));
    assert_eq!(page.status, 200, "{}", page.text);
    page.body["changes"].as_array().unwrap().clone()
}

fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

#[test]
fn a_host_blocked_through_the_api_refuses_new_destinations_and_blocks_existing_links() {
    let test = TestControl::start();
    let api = test.client();
    let direct = create(
        &api,
        json!({"url": "https://cdn.bad.example/x", "code": "direct"}),
    );
    assert_eq!(direct.status, 201, "{}", direct.text);
    let by_rule = create(
        &api,
        json!({"url": "https://ok.example/", "code": "byrule",
               "android": "https://bad.example/app"}),
    );
    assert_eq!(by_rule.status, 201, "{}", by_rule.text);
    let good = create(
        &api,
        json!({"url": "https://good.example/", "code": "good"}),
    );
    assert_eq!(good.body["blocked"], Value::Null, "{}", good.text);
    let link = |response: &ApiResponse| format!("/api/v1/links/{}", response.body["id"]);

    let version = test.control().store().latest_version();
    let added = api.post(
        "/api/v1/denylist",
        &json!({"host": "Bad.Example", "reason": "credential phishing"}),
    );
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.body["host"]["host"], "bad.example");
    assert_eq!(added.body["host"]["source"], "api");
    assert_eq!(added.body["links_blocked"], 2, "{}", added.text);
    let blocked = api.get(&link(&direct));
    assert_eq!(
        blocked.body["blocked"],
        json!({"host": "cdn.bad.example", "source": "api", "reason": "credential phishing"})
    );
    assert_eq!(
        api.get(&link(&by_rule)).body["blocked"]["host"],
        "bad.example"
    );
    assert_eq!(api.get(&link(&good)).body["blocked"], Value::Null);
    // Engines learn it from the change log.
    let changes = changes_after(&test, version);
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes
            .iter()
            .all(|c| c["op"] == "upsert" && c["link"]["extensions"]["blocked"]["source"] == "api")
    );

    // Every field that names a destination refuses it.
    assert_refused(
        &create(&api, json!({"url": "https://www.bad.example/"})),
        "url",
    );
    assert_refused(
        &create(
            &api,
            json!({"url": "https://ok.example/", "rules": [{"url": "https://bad.example/fr",
                   "conditions": [{"type": "language", "value": "fr"}]}]}),
        ),
        "rules[0].url",
    );
    assert_refused(
        &api.patch(&link(&good), &json!({"url": "https://bad.example/"})),
        "url",
    );
    assert_refused(
        &api.patch(
            &link(&good),
            &json!({"fallback_url": "https://bad.example/gone"}),
        ),
        "fallback_url",
    );
    assert_refused(
        &api.patch(
            &link(&good),
            &json!({"variants": [{"url": "https://a.example/", "weight": 50},
                                 {"url": "https://x.bad.example/", "weight": 50}]}),
        ),
        "variants[1].url",
    );
    let bulk = api.post(
        "/api/v1/links/bulk",
        &json!([{"url": "https://fine.example/"}, {"url": "https://bad.example/b"}]),
    );
    assert_eq!(bulk.body["created"], 1, "{}", bulk.text);
    assert_eq!(
        bulk.body["items"][1]["error"]["code"],
        "destination_blocked"
    );
    assert_eq!(bulk.body["items"][1]["error"]["field"], "url");
    // Hosts that only look alike are not blocked.
    assert_eq!(
        create(&api, json!({"url": "https://notbad.example/"})).status,
        201
    );

    // The console shows it on the link's page and in the list.
    let console = test.owner_client();
    let page = console.get(&format!("/console/links/{}", direct.body["id"]));
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("id=\"link-blocked\""), "{}", page.text);
    assert!(
        page.text
            .contains("cdn.bad.example is on the denylist (credential phishing)"),
        "{}",
        page.text
    );
    let list = console.get("/console/links");
    assert!(list.text.contains(">blocked</span>"), "{}", list.text);

    // A blocked link can still be edited; it stays blocked until its
    // destination leaves the list.
    let titled = api.patch(&link(&direct), &json!({"title": "old promo"}));
    assert_eq!(titled.status, 200, "{}", titled.text);
    assert_eq!(titled.body["blocked"]["host"], "cdn.bad.example");
    let moved = api.patch(&link(&direct), &json!({"url": "https://good.example/new"}));
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.body["blocked"], Value::Null);

    // The list, a check, and the metrics.
    let listed = api.get("/api/v1/denylist");
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.body["hosts"][0]["host"], "bad.example");
    assert_eq!(listed.body["hosts"][0]["reason"], "credential phishing");
    assert_eq!(listed.body["links_blocked"], 1, "{}", listed.text);
    let checked = api.get("/api/v1/denylist/check?url=https%3A%2F%2Fa.bad.example%2Fp");
    assert_eq!(
        checked.body["blocked"]["host"], "a.bad.example",
        "{}",
        checked.text
    );
    let clean = api.get("/api/v1/denylist/check?url=https%3A%2F%2Fgood.example%2F");
    assert_eq!(clean.body["blocked"], Value::Null, "{}", clean.text);
    let metrics = ApiClient::new(&test.base_url(), None).get("/metrics");
    assert!(
        metrics.text.contains("ricochet_control_links_blocked 1\n"),
        "{}",
        metrics.text
    );

    // Unblocking restores every link it blocked.
    let removed = api.delete("/api/v1/denylist/bad.example");
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(removed.body["links_unblocked"], 1, "{}", removed.text);
    assert_eq!(api.get(&link(&by_rule)).body["blocked"], Value::Null);
    assert_eq!(api.delete("/api/v1/denylist/bad.example").status, 404);
    assert_eq!(
        create(&api, json!({"url": "https://bad.example/"})).status,
        201
    );
}

#[test]
fn bad_entries_are_refused_naming_the_field() {
    let test = TestControl::start();
    let api = test.client();
    for (body, field, code) in [
        (
            json!({"host": "https://bad.example/x"}),
            "host",
            "invalid_host",
        ),
        (json!({"host": ""}), "host", "invalid_host"),
        (
            json!({"host": "bad.example", "reason": "x".repeat(201)}),
            "reason",
            "invalid_reason",
        ),
        (
            json!({"host": "bad.example", "reason": "a\u{7}b"}),
            "reason",
            "invalid_reason",
        ),
    ] {
        let refused = api.post("/api/v1/denylist", &body);
        assert_eq!(refused.status, 400, "{body}: {}", refused.text);
        assert_eq!(refused.error_code(), code, "{}", refused.text);
        assert_eq!(refused.body["error"]["field"], field, "{}", refused.text);
    }
    let unknown = api.post(
        "/api/v1/denylist",
        &json!({"host": "a.example", "color": 1}),
    );
    assert_eq!(unknown.status, 400, "{}", unknown.text);
    // Addresses are listed as URLs write them.
    let address = api.post("/api/v1/denylist", &json!({"host": "2001:DB8::7"}));
    assert_eq!(address.status, 201, "{}", address.text);
    assert_eq!(address.body["host"]["host"], "[2001:db8::7]");
    assert_refused(
        &create(&api, json!({"url": "http://[2001:db8::7]:8080/"})),
        "url",
    );
    assert_eq!(
        api.get("/api/v1/denylist").body["hosts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn only_admins_of_the_default_workspace_manage_the_denylist() {
    let test = TestControl::start();
    let api = test.client();
    let reader = api.post(
        "/api/v1/keys",
        &json!({"name": "reader", "scopes": ["links:read", "links:write"]}),
    );
    assert_eq!(reader.status, 201, "{}", reader.text);
    let reader = api.with_key(reader.body["token"].as_str());
    assert_eq!(reader.get("/api/v1/denylist").status, 403);
    assert_eq!(
        reader
            .post("/api/v1/denylist", &json!({"host": "bad.example"}))
            .status,
        403
    );

    let owner = test.owner_client();
    let other = owner.post("/api/v1/workspaces", &json!({"name": "Tenant"}));
    let id = other.body["id"].as_str().unwrap().to_owned();
    let switched = owner.post(&format!("/api/v1/workspaces/{id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    for response in [
        owner.get("/api/v1/denylist"),
        owner.post("/api/v1/denylist", &json!({"host": "bad.example"})),
        owner.delete("/api/v1/denylist/bad.example"),
    ] {
        assert_eq!(response.status, 403, "{}", response.text);
        assert_eq!(response.error_code(), "not_operator");
    }
    assert_eq!(
        api.get("/api/v1/denylist").body["hosts"],
        json!([]),
        "nothing was listed"
    );
}

#[test]
fn the_hosts_file_and_threat_list_are_read_refreshed_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts.txt");
    let threats = dir.path().join("urlhaus.csv");
    std::fs::write(&hosts, "# blocked by ops\nspam.example  reported spam\n").unwrap();
    std::fs::write(
        &threats,
        "# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
         \"1\",\"2026-12-01 00:00:00\",\"http://files.example/a.exe\",\"online\",\"\",\"malware_download\",\"exe\",\"\",\"r\"\n",
    )
    .unwrap();
    let (file, list) = (hosts.clone(), threats.clone());
    let test = TestControl::start_with(
        move |c| {
            c.denylist.file = file.display().to_string();
            c.denylist.threat_list = list.display().to_string();
            c.denylist.refresh_interval = Duration::from_millis(100);
        },
        Arc::new(LocalBus::new()),
    );
    let api = test.client();
    assert_refused(
        &create(&api, json!({"url": "https://mail.spam.example/"})),
        "url",
    );
    let threat = create(&api, json!({"url": "http://files.example/a.exe"}));
    assert_refused(&threat, "url");
    assert!(threat.text.contains("threat list"), "{}", threat.text);
    // The threat list names URLs: the rest of the host is fine.
    assert_eq!(
        create(&api, json!({"url": "http://files.example/readme"})).status,
        201
    );
    let later = create(
        &api,
        json!({"url": "https://later.example/", "code": "later"}),
    );
    assert_eq!(later.status, 201, "{}", later.text);
    let path = format!("/api/v1/links/{}", later.body["id"]);

    let listed = api.get("/api/v1/denylist");
    assert_eq!(
        listed.body["hosts"][0]["host"], "spam.example",
        "{}",
        listed.text
    );
    assert_eq!(listed.body["hosts"][0]["source"], "file");
    let files = listed.body["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{}", listed.text);
    assert_eq!(files[0]["entries"], 1);
    assert_eq!(files[1]["source"], "threat_list");
    assert_eq!(files[1]["entries"], 1);
    // A file's entry is removed in the file.
    let in_file = api.delete("/api/v1/denylist/spam.example");
    assert_eq!(in_file.status, 409, "{}", in_file.text);
    assert_eq!(in_file.error_code(), "listed_in_file");

    // A host added to the file blocks its links at the next refresh.
    std::fs::write(
        &hosts,
        "# blocked by ops\nspam.example  reported spam\nlater.example # takedown 17\n",
    )
    .unwrap();
    assert!(
        eventually(|| api.get(&path).body["blocked"]["source"] == "file"),
        "{}",
        api.get(&path).text
    );
    assert_eq!(api.get(&path).body["blocked"]["reason"], "takedown 17");
    // An unreadable file keeps what it listed; taking the line out unblocks.
    std::fs::remove_file(&hosts).unwrap();
    assert!(eventually(|| {
        api.get("/api/v1/denylist").body["files"][0]["error"].is_string()
    }));
    assert_eq!(api.get(&path).body["blocked"]["source"], "file");
    std::fs::write(&hosts, "spam.example\n").unwrap();
    assert!(
        eventually(|| api.get(&path).body["blocked"].is_null()),
        "{}",
        api.get(&path).text
    );
}
