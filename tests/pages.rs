//! Link-in-bio pages end to end: pages created through the control plane's
//! API reach an engine through the change log and are served from its
//! memory as a whole escaped document (hostile names and bios included);
//! handles share the namespace of link codes; edits, reorders and changes to
//! the links a page shows render it again; a scheduled item appears on time;
//! views and item clicks show in the page's analytics; deleting a page frees
//! its handle. Bad input is refused naming the field.

use std::time::Duration;

use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_engine::test_util::{Client, Response, TestEngine, eventually};
use serde_json::{Value, json};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";

fn setup() -> (TestControl, TestEngine, ApiClient) {
    let control = TestControl::start();
    let engine = TestEngine::start_with(|c| {
        c.sync.control_url = control.base_url();
        c.sync.cluster_token = control.control().cluster_token().to_owned();
        c.sync.poll_interval = Duration::from_millis(50);
        c.clicks.window_grace = Duration::from_millis(200);
    });
    let api = control.client();
    (control, engine, api)
}

fn link(api: &ApiClient, code: &str, title: Option<&str>) -> u64 {
    let mut body = json!({"url": format!("https://example.com/{code}"), "code": code});
    if let Some(title) = title {
        body["title"] = json!(title);
    }
    let created = api.post("/api/v1/links", &body);
    assert_eq!(created.status, 201, "{}", created.text);
    created.body["id"].as_u64().unwrap()
}

fn visit(engine: &TestEngine, path: &str) -> Response {
    let mut client = Client::connect(engine.addr());
    client.send(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {FIREFOX}\r\n\r\n")
            .as_bytes(),
    );
    client.read_response(false).unwrap()
}

/// Waits until the engine's page at `path` contains `needle`; the page.
fn page_with(engine: &TestEngine, path: &str, needle: &str) -> String {
    let mut last = String::new();
    let found = eventually(Duration::from_secs(10), || {
        last = visit(engine, path).text();
        last.contains(needle)
    });
    assert!(found, "{path} never showed {needle:?}: {last}");
    last
}

#[test]
fn pages_are_served_by_engines_and_follow_their_links() {
    let (_control, engine, api) = setup();
    let blog = link(&api, "blog", Some("My blog"));
    let talk = link(&api, "talk", None);
    let created = api.post(
        "/api/v1/pages",
        &json!({
            "handle": "ada",
            "title": "Ada Lovelace",
            "bio": "Engineer.\nWrites about engines.",
            "avatar_url": "https://img.example/ada.png",
            "theme": {"preset": "ocean", "appearance": "dark"},
            "socials": [
                {"network": "github", "url": "https://github.com/ada"},
                {"network": "email", "url": "ada@example.org"}
            ],
            "items": [
                {"type": "header", "text": "Writing"},
                {"type": "link", "link_id": blog},
                {"type": "link", "link_id": talk, "label": "My talk"}
            ]
        }),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let page = &created.body;
    let id = page["id"].as_u64().unwrap();
    assert_eq!(page["handle"], "ada");
    assert_eq!(page["live"], true);
    assert!(page["url"].as_str().unwrap().ends_with("/ada"), "{page}");
    assert_eq!(page["socials"][1]["url"], "mailto:ada@example.org");
    let item_ids: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(item_ids.len(), 3);

    let html = page_with(&engine, "/ada", "Ada Lovelace");
    assert!(html.len() < 15_000, "{} bytes", html.len());
    for expected in [
        "<title>Ada Lovelace</title>",
        "Writing",
        "href=\"/blog\"",
        ">My blog<",
        "href=\"/talk\"",
        ">My talk<",
        "property=\"og:title\" content=\"Ada Lovelace\"",
        "https://img.example/ada.png",
        "mailto:ada@example.org",
        "https://github.com/ada",
    ] {
        assert!(html.contains(expected), "{expected:?} missing: {html}");
    }
    assert!(!html.contains("<script"), "{html}");
    let answer = visit(&engine, "/ada");
    assert_eq!(answer.status, 200);
    assert!(answer.header("etag").is_some());
    assert!(
        answer
            .header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    // The page's items are the links themselves: a click on one redirects.
    assert_eq!(visit(&engine, "/blog").status, 302);

    // A link's new title is its item's new label, without touching the page.
    let renamed = api.patch(
        &format!("/api/v1/links/{blog}"),
        &json!({"title": "Notes & essays"}),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    page_with(&engine, "/ada", ">Notes &amp; essays<");
    // A deleted link leaves the page; restored, it comes back.
    assert_eq!(
        api.delete(&format!("/api/v1/links/{talk}")).status,
        200,
        "soft delete"
    );
    assert!(eventually(Duration::from_secs(10), || !visit(
        &engine, "/ada"
    )
    .text()
    .contains("My talk")));
    api.post(&format!("/api/v1/links/{talk}/restore"), &json!({}));
    page_with(&engine, "/ada", "My talk");

    // One call reorders the items.
    let order = [&item_ids[2], &item_ids[0], &item_ids[1]];
    let reordered = api.post(
        &format!("/api/v1/pages/{id}/reorder"),
        &json!({"item_ids": order}),
    );
    assert_eq!(reordered.status, 200, "{}", reordered.text);
    assert_eq!(reordered.body["items"][0]["id"], item_ids[2].as_str());
    let mut html = String::new();
    let talk_first = eventually(Duration::from_secs(10), || {
        html = visit(&engine, "/ada").text();
        matches!((html.find("My talk"), html.find("Writing")), (Some(t), Some(w)) if t < w)
    });
    assert!(talk_first, "{html}");
    for bad in [
        json!({"item_ids": [&item_ids[0], &item_ids[1]]}),
        json!({"item_ids": [&item_ids[0], &item_ids[0], &item_ids[1]]}),
        json!({"item_ids": [&item_ids[0], &item_ids[1], "nope"]}),
    ] {
        let refused = api.post(&format!("/api/v1/pages/{id}/reorder"), &bad);
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(refused.body["error"]["field"], "item_ids");
    }

    // An edit: absent fields stay, items keep their ids.
    let mut items = reordered.body["items"].clone();
    items[0]["label"] = json!("The talk");
    let edited = api.patch(
        &format!("/api/v1/pages/{id}"),
        &json!({"title": "Ada L.", "bio": null, "items": items}),
    );
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.body["bio"], Value::Null);
    assert_eq!(edited.body["theme"]["preset"], "ocean");
    assert_eq!(edited.body["items"][0]["id"], item_ids[2].as_str());
    let html = page_with(&engine, "/ada", ">The talk<");
    assert!(!html.contains("Writes about engines"), "{html}");

    // The page is not a link: neither listed nor editable as one.
    let links = api.get("/api/v1/links");
    assert!(
        links.body["links"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["code"] != "ada"),
        "{}",
        links.text
    );
    assert_eq!(api.get(&format!("/api/v1/links/{id}")).status, 404);
    assert_eq!(
        api.patch(
            &format!("/api/v1/links/{id}"),
            &json!({"url": "https://evil.example/"})
        )
        .status,
        404
    );
    let listed = api.get("/api/v1/pages");
    assert_eq!(listed.body["pages"][0]["id"], id);

    // A QR code of the page's URL.
    let qr = api.get(&format!("/api/v1/pages/{id}/qr"));
    assert_eq!(qr.status, 200);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));

    // Deleted, the page is gone from engines and its handle is free.
    assert_eq!(api.delete(&format!("/api/v1/pages/{id}")).status, 204);
    assert!(eventually(Duration::from_secs(10), || visit(
        &engine, "/ada"
    )
    .status
        == 404));
    assert_eq!(api.get(&format!("/api/v1/pages/{id}")).status, 404);
    link(&api, "ada", None);
    assert!(eventually(Duration::from_secs(10), || visit(
        &engine, "/ada"
    )
    .status
        == 302));
    // The links it showed stay.
    assert_eq!(api.get(&format!("/api/v1/links/{blog}")).status, 200);
}

#[test]
fn hostile_text_is_escaped_in_the_served_page() {
    let (_control, engine, api) = setup();
    let hostile = "\"><script>alert(1)</script><img src=x onerror=alert(2)>";
    let id = link(&api, "x1", Some(hostile));
    let created = api.post(
        "/api/v1/pages",
        &json!({
            "handle": "evil",
            "title": hostile,
            "bio": format!("</style>{hostile}"),
            "items": [
                {"type": "header", "text": hostile},
                {"type": "link", "link_id": id},
                {"type": "link", "link_id": id, "label": "<b>bold</b> & \"quoted\""}
            ],
            "card": {"title": hostile, "description": hostile}
        }),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let html = page_with(&engine, "/evil", "&lt;script&gt;");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<b>bold</b>"), "{html}");
    assert!(html.contains("&lt;b&gt;bold&lt;/b&gt; &amp;"), "{html}");
    assert_eq!(html.matches("</style>").count(), 1, "{html}");
}

#[test]
fn handles_share_the_namespace_of_codes_and_bad_input_names_its_field() {
    let (_control, _engine, api) = setup();
    let id = link(&api, "taken", None);
    let refused = |body: Value, status: u16, field: &str| {
        let answer = api.post("/api/v1/pages", &body);
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        assert_eq!(answer.body["error"]["field"], field, "{}", answer.text);
        answer.body["error"]["code"].as_str().unwrap().to_owned()
    };
    let page = |handle: &str| json!({"handle": handle, "title": "T"});
    assert_eq!(refused(page("taken"), 409, "handle"), "handle_taken");
    assert_eq!(refused(page("admin"), 400, "handle"), "reserved_handle");
    refused(page("no/slash"), 400, "handle");
    refused(page(""), 400, "handle");
    refused(json!({"handle": "p", "title": "   "}), 400, "title");
    refused(
        json!({"handle": "p", "title": "T", "domain": "nope.example"}),
        422,
        "domain",
    );
    refused(
        json!({"handle": "p", "title": "T", "avatar_url": "javascript:alert(1)"}),
        400,
        "avatar_url",
    );
    refused(
        json!({"handle": "p", "title": "T", "socials": [{"network": "myspace", "url": "https://x.example"}]}),
        400,
        "socials[0].network",
    );
    refused(
        json!({"handle": "p", "title": "T", "items": [{"type": "link"}]}),
        400,
        "items[0].link_id",
    );
    refused(
        json!({"handle": "p", "title": "T", "items": [{"type": "video", "link_id": id}]}),
        400,
        "items[0].type",
    );
    refused(
        json!({"handle": "p", "title": "T", "items": [{"type": "link", "link_id": 999999}]}),
        400,
        "items[0].link_id",
    );
    refused(
        json!({"handle": "p", "title": "T", "items": [{"type": "link", "link_id": id,
            "visible_from": "2030-01-02T00:00:00Z", "visible_until": "2030-01-01T00:00:00Z"}]}),
        400,
        "items[0]",
    );
    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"type": "header", "text": "h"}))
        .collect();
    refused(
        json!({"handle": "p", "title": "T", "items": too_many}),
        400,
        "items",
    );
    refused(
        json!({"handle": "p", "title": "T", "theme": {"colors": {"background": "#fff", "text": "red", "button": "#000", "button_text": "#fff"}}}),
        400,
        "theme.colors.text",
    );
    // Nothing refused was stored.
    assert_eq!(api.get("/api/v1/pages").body["pages"], json!([]));

    // A page's handle is taken for links too.
    let created = api.post("/api/v1/pages", &page("mine"));
    assert_eq!(created.status, 201, "{}", created.text);
    let clash = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/", "code": "mine"}),
    );
    assert_eq!(clash.status, 409, "{}", clash.text);
    let unknown = api.patch("/api/v1/pages/424242", &json!({"title": "x"}));
    assert_eq!(unknown.status, 404, "{}", unknown.text);
}

#[test]
fn scheduled_items_show_on_time_and_views_and_clicks_are_counted() {
    let (_control, mut engine, api) = setup();
    let sale = link(&api, "sale", Some("Spring sale"));
    let home = link(&api, "home", Some("Home"));
    let from = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let from = from
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let created = api.post(
        "/api/v1/pages",
        &json!({
            "handle": "shop",
            "title": "Shop",
            "items": [
                {"type": "link", "link_id": home},
                {"type": "link", "link_id": sale, "visible_from": from}
            ]
        }),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_u64().unwrap();
    let early = page_with(&engine, "/shop", "Home");
    assert!(
        !early.contains("Spring sale"),
        "shown before its time: {early}"
    );
    // No edit is made: the item appears at its instant.
    page_with(&engine, "/shop", "Spring sale");

    // Views and clicks: the page was visited at least twice above; two
    // more views and three clicks on the home item.
    for _ in 0..2 {
        visit(&engine, "/shop");
    }
    for _ in 0..3 {
        assert_eq!(visit(&engine, "/home").status, 302);
    }
    engine.stop();
    let path = format!("/api/v1/pages/{id}/analytics");
    let mut analytics = Value::Null;
    assert!(eventually(Duration::from_secs(15), || {
        analytics = api.get(&path).body;
        analytics["items"][0]["clicks"]["humans"] == 3
    }));
    let views = analytics["views"]["humans"].as_u64().unwrap();
    assert!(views >= 4, "{analytics}");
    assert_eq!(analytics["items"][0]["link_id"], home);
    assert_eq!(analytics["items"][1]["clicks"]["humans"], 0);
    let rate = analytics["items"][0]["click_through_rate"]
        .as_f64()
        .unwrap();
    assert!((rate - 3.0 / views as f64).abs() < 1e-9, "{analytics}");
    assert!((analytics["click_through_rate"].as_f64().unwrap() - rate).abs() < 1e-9);
}

#[test]
fn a_domain_dedicated_to_a_page_serves_it_at_its_root() {
    let (_control, engine, api) = setup();
    let domain = api.post("/api/v1/domains", &json!({"domain": "bio.example"}));
    assert_eq!(domain.status, 201, "{}", domain.text);
    let root = |host: &str| {
        let mut client = Client::connect(engine.addr());
        client.get("/", host)
    };
    let first = api.post(
        "/api/v1/pages",
        &json!({"handle": "first", "domain": "bio.example", "title": "First", "at_root": true}),
    );
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["at_root"], true);
    let first_id = first.body["id"].as_u64().unwrap();
    assert!(eventually(Duration::from_secs(10), || root("bio.example")
        .text()
        .contains("<title>First</title>")));

    // Another page takes the root; the first leaves it.
    let second = api.post(
        "/api/v1/pages",
        &json!({"handle": "second", "domain": "bio.example", "title": "Second", "at_root": true}),
    );
    assert_eq!(second.status, 201, "{}", second.text);
    let second_id = second.body["id"].as_u64().unwrap();
    assert!(eventually(Duration::from_secs(10), || root("bio.example")
        .text()
        .contains("<title>Second</title>")));
    assert_eq!(
        api.get(&format!("/api/v1/pages/{first_id}")).body["at_root"],
        false
    );
    // Both keep their handles.
    let mut client = Client::connect(engine.addr());
    assert_eq!(client.get("/first", "bio.example").status, 200);

    // Off the root (or deleted), the root is the domain's 404 again.
    let off = api.patch(
        &format!("/api/v1/pages/{second_id}"),
        &json!({"at_root": false}),
    );
    assert_eq!(off.status, 200, "{}", off.text);
    assert!(eventually(Duration::from_secs(10), || root("bio.example")
        .status
        == 404));
    api.patch(
        &format!("/api/v1/pages/{first_id}"),
        &json!({"at_root": true}),
    );
    assert!(eventually(Duration::from_secs(10), || root("bio.example")
        .status
        == 200));
    assert_eq!(api.delete(&format!("/api/v1/pages/{first_id}")).status, 204);
    assert!(eventually(Duration::from_secs(10), || root("bio.example")
        .status
        == 404));
}
