//! Card metadata over the API (real HTTP, real store, a real page server):
//! with `links.fetch_card_metadata` on, a link created without a card gets
//! the card its destination's page declares, decoded and clipped; a given
//! card is never replaced; a refused or failed fetch creates the link
//! without a card; with private addresses not allowed, loopback and cloud
//! metadata destinations are never connected to.

use std::sync::Arc;
use std::time::Duration;

use ricochet_control::test_util::pages::{PageServer, Reply};
use ricochet_control::test_util::{ApiClient, TestControl, free_port};
use ricochet_model::bus::LocalBus;
use serde_json::{Value, json};

/// A page with Open Graph tags and hostile values: character references,
/// markup in the title, a fake tag inside a script, white space runs, a
/// description far over the limit, a relative image with an escaped `&`.
fn hostile_page() -> String {
    format!(
        r#"<!doctype html><html><head>
        <script>var tag = '<meta property="og:title" content="from a script">';</script>
        <title>Fallback title</title>
        <meta property="og:title" content="Caf&eacute; &amp; &lt;script&gt;alert(1)&lt;/script&gt;
            	 Deals &#x1F389;">
        <meta property="og:description" content="{}">
        <meta property="og:image" content="/img/spring.png?v=1&amp;size=large">
        </head><body><h1>Spring</h1></body></html>"#,
        "Lorem&nbsp;ipsum dolor\n".repeat(100)
    )
}

fn pages() -> PageServer {
    PageServer::start("127.0.0.1", |path| {
        match path.split('?').next().unwrap_or_default() {
            "/spring" | "/given" | "/retry" => Reply::html(hostile_page()),
            "/plain" => Reply::html(
                "<html><head><title> Plain\n page </title>\
                 <meta name=description content='Only the &quot;basics&quot;'></head></html>",
            ),
            "/long" => Reply::html(format!("<title>{}</title>", "Title ".repeat(100))),
            "/empty" => Reply::html("<p>Nothing to show</p>"),
            "/image.png" => Reply::Page {
                status: 200,
                content_type: "image/png".into(),
                body: br#"<meta property="og:title" content="not html">"#.to_vec(),
            },
            "/missing" => Reply::Page {
                status: 404,
                content_type: "text/html".into(),
                body: br#"<meta property="og:title" content="Not found">"#.to_vec(),
            },
            "/stall" => Reply::Stall,
            _ => Reply::html("<title>Other</title>"),
        }
    })
}

/// A control plane with card fetching on; its default domain is not
/// `localhost`, so destinations on `localhost` are not short links.
fn control(allow_private: bool) -> TestControl {
    TestControl::start_with(
        |config| {
            config.links.default_domain = "sho.rt".into();
            config.links.fetch_card_metadata = true;
            config.links.fetch_allow_private = allow_private;
            config.links.fetch_timeout = Duration::from_millis(1500);
        },
        Arc::new(LocalBus::new()),
    )
}

fn create(api: &ApiClient, body: Value) -> Value {
    let answer = api.post("/api/v1/links", &body);
    assert_eq!(answer.status, 201, "{body}: {}", answer.text);
    answer.body
}

#[test]
fn a_link_created_without_a_card_gets_its_pages_card_decoded_and_clipped() {
    let server = pages();
    let test = control(true);
    let api = test.client();

    let link = create(
        &api,
        json!({"url": server.url("/spring"), "utm": {"source": "news"}}),
    );
    let card = &link["card"];
    assert_eq!(
        card["title"], "Café & <script>alert(1)</script> Deals 🎉",
        "{card}"
    );
    let description = card["description"].as_str().unwrap();
    assert!(description.len() <= 1000, "{}", description.len());
    assert!(
        description.starts_with("Lorem ipsum dolor Lorem"),
        "{description}"
    );
    assert!(
        description.ends_with('…') && !description.contains('\n'),
        "{description}"
    );
    assert_eq!(
        card["image"],
        server.url("/img/spring.png?v=1&size=large"),
        "resolved against the page"
    );
    // The page is fetched without the UTM fields (not a campaign visit),
    // once, and only the page (never its image).
    assert_eq!(server.paths(), ["/spring"]);
    assert!(link["url"].as_str().unwrap().contains("utm_source=news"));

    // GET shows what was stored.
    let stored = api.get(&format!("/api/v1/links/{}", link["id"]));
    assert_eq!(stored.body["card"], *card);

    // Fallbacks: <title> and meta description.
    let plain = create(&api, json!({"url": server.url("/plain")}));
    assert_eq!(
        plain["card"],
        json!({"title": "Plain page", "description": "Only the \"basics\"", "image": null})
    );
    let long = create(&api, json!({"url": server.url("/long")}));
    let title = long["card"]["title"].as_str().unwrap();
    assert!(title.len() <= 300 && title.ends_with('…'), "{title}");
}

#[test]
fn a_given_card_is_kept_and_its_destination_not_fetched() {
    let server = pages();
    let test = control(true);
    let api = test.client();
    let link = create(
        &api,
        json!({"url": server.url("/given"), "card": {"description": "Mine"}}),
    );
    assert_eq!(
        link["card"],
        json!({"title": null, "description": "Mine", "image": null})
    );
    // An invalid card is refused as always, without a fetch.
    let refused = api.post(
        "/api/v1/links",
        &json!({"url": server.url("/given"), "card": {"colour": "red"}}),
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert_eq!(refused.body["error"]["field"], "card.colour");
    // PATCH never fetches.
    let patched = api.patch(
        &format!("/api/v1/links/{}", link["id"]),
        &json!({"card": null, "url": server.url("/spring")}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.body["card"], Value::Null);
    assert_eq!(server.connections(), 0);
}

#[test]
fn a_fetch_that_finds_nothing_or_fails_creates_the_link_without_a_card() {
    let server = pages();
    let test = control(true);
    let api = test.client();
    let closed = format!("http://127.0.0.1:{}/", free_port());
    for url in [
        server.url("/empty"),
        server.url("/image.png"),
        server.url("/missing"),
        server.url("/stall"),
        closed,
    ] {
        let link = create(&api, json!({"url": url}));
        assert_eq!(link["card"], Value::Null, "{url}");
    }
    assert_eq!(
        server.paths(),
        ["/empty", "/image.png", "/missing", "/stall"]
    );
}

#[test]
fn bulk_creates_fetch_each_item_without_a_card() {
    let server = pages();
    let test = control(true);
    let api = test.client();
    let answer = api.post(
        "/api/v1/links/bulk",
        &json!([
            {"url": server.url("/plain")},
            {"url": server.url("/given"), "card": {"title": "Given"}},
            {"url": server.url("/empty")},
            {"url": "not a url"},
            {"url": server.url("/spring")}
        ]),
    );
    assert_eq!(answer.status, 200, "{}", answer.text);
    let items = answer.body["items"].as_array().unwrap();
    assert_eq!(answer.body["created"], 4, "{}", answer.text);
    assert_eq!(items[0]["link"]["card"]["title"], "Plain page");
    assert_eq!(items[1]["link"]["card"]["title"], "Given");
    assert_eq!(items[2]["link"]["card"], Value::Null);
    assert_eq!(items[3]["status"], 400);
    assert!(
        items[4]["link"]["card"]["title"]
            .as_str()
            .unwrap()
            .starts_with("Café")
    );
    let mut paths = server.paths();
    paths.sort();
    assert_eq!(paths, ["/empty", "/plain", "/spring"]);
}

#[test]
fn an_idempotent_retry_does_not_fetch_again() {
    let server = pages();
    let test = control(true);
    let api = test.client();
    let body = serde_json::to_vec(&json!({"url": server.url("/retry")})).unwrap();
    let send = || {
        api.send(
            "POST",
            "/api/v1/links",
            Some(("application/json", &body)),
            &[("Idempotency-Key", "card-retry")],
        )
    };
    let first = send();
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.body["card"]["title"].is_string());
    let again = send();
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(server.paths(), ["/retry"]);
}

#[test]
fn without_private_addresses_loopback_and_metadata_destinations_are_never_connected_to() {
    let server = pages();
    let test = control(false);
    let api = test.client();
    let port = server.addr().port();
    for url in [
        server.url("/spring"),
        format!("http://localhost:{port}/spring"),
        format!("http://[::ffff:127.0.0.1]:{port}/spring"),
        // Refused before any connection: never reached on this machine.
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let link = create(&api, json!({"url": url}));
        assert_eq!(link["card"], Value::Null, "{url}");
    }
    assert_eq!(
        server.connections(),
        0,
        "the local server was never reached"
    );
}

#[test]
fn card_fetching_is_off_by_default() {
    let server = pages();
    let test = TestControl::start_with(
        |config| {
            config.links.default_domain = "sho.rt".into();
            config.links.fetch_allow_private = true;
        },
        Arc::new(LocalBus::new()),
    );
    let link = create(&test.client(), json!({"url": server.url("/spring")}));
    assert_eq!(link["card"], Value::Null);
    assert_eq!(server.connections(), 0);
}
