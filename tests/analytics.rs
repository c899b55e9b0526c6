//! The analytics API end to end: an engine following a control plane captures
//! clicks over real HTTP; the control plane's analytics routes report exactly
//! those clicks (humans and bots apart) within 15 seconds, and refuse bad
//! ranges, intervals, dimensions and links with the JSON error shape. The
//! engine ships its closed windows to the control plane, which keeps them.

use std::time::Duration;

use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_engine::test_util::{Client, TestEngine, eventually};
use serde_json::json;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const TWITTERBOT: &str = "Twitterbot/1.0";

fn setup() -> (TestControl, TestEngine, ApiClient, u64) {
    let control = TestControl::start();
    let engine = TestEngine::start_with(|c| {
        c.sync.control_url = control.base_url();
        c.sync.cluster_token = control.control().cluster_token().to_owned();
        c.sync.poll_interval = Duration::from_millis(50);
        c.clicks.window_grace = Duration::from_millis(200);
    });
    assert!(
        engine.engine().click_reader().is_none(),
        "an engine following a control plane ships its windows there"
    );
    let api = control.client();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/", "code": "an"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_u64().unwrap();
    assert!(eventually(Duration::from_secs(5), || engine
        .get("/an", "localhost")
        .status
        == 302));
    (control, engine, api, id)
}

fn clicks(engine: &TestEngine, user_agent: &str, count: usize, query: &str) {
    let mut client = Client::connect(engine.addr());
    for _ in 0..count {
        client.send(
            format!(
                "GET /an{query} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {user_agent}\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(client.read_response(false).unwrap().status, 302);
    }
}

#[test]
fn a_click_shows_in_analytics_within_15_seconds() {
    let (_control, engine, api, id) = setup();
    // The request `setup` made to check propagation had no user agent: a bot.
    clicks(&engine, CHROME, 2, "");
    let path = format!("/api/v1/links/{id}/analytics/series?interval=1m");
    let visible = eventually(Duration::from_secs(15), || {
        api.get(&path).body["total"] == json!({"humans": 2, "bots": 1})
    });
    assert!(visible, "{}", api.get(&path).body["total"]);
}

#[test]
fn series_breakdown_top_links_and_overview_report_exact_counts() {
    let (_control, mut engine, api, id) = setup();
    clicks(&engine, CHROME, 4, "?utm_source=mail");
    clicks(&engine, TWITTERBOT, 2, "");
    // Stopping flushes every open window.
    engine.stop();

    let series = api.get(&format!("/api/v1/links/{id}/analytics/series?interval=1h"));
    assert_eq!(series.status, 200, "{}", series.text);
    // The setup check made one click with no user agent: counted as a bot.
    assert_eq!(series.body["total"], json!({"humans": 4, "bots": 3}));
    let points = series.body["points"].as_array().unwrap();
    assert!(
        points.len() >= 24,
        "a bucket per hour of the default 24-hour range"
    );

    let by_device = api.get(&format!(
        "/api/v1/links/{id}/analytics/breakdown?dimension=device"
    ));
    assert_eq!(by_device.status, 200, "{}", by_device.text);
    assert_eq!(
        by_device.body["values"],
        json!([{"value": "desktop", "humans": 4, "bots": 0}, {"value": "bot", "humans": 0, "bots": 3}])
    );
    let by_source = api.get(&format!(
        "/api/v1/links/{id}/analytics/breakdown?dimension=utm_source"
    ));
    assert_eq!(
        by_source.body["values"],
        json!([{"value": "mail", "humans": 4, "bots": 0}])
    );

    let top = api.get("/api/v1/analytics/top-links?limit=5");
    assert_eq!(top.status, 200, "{}", top.text);
    assert_eq!(top.body["links"][0]["link_id"], id);
    assert_eq!(top.body["links"][0]["code"], "an");
    assert_eq!(top.body["links"][0]["humans"], 4);

    let overview = api.get("/api/v1/analytics/overview");
    assert_eq!(overview.body["total"], json!({"humans": 4, "bots": 3}));
    assert_eq!(overview.body["links_with_clicks"], 1);

    // Bad input: the JSON error shape, 4xx.
    let cases = [
        (
            format!("/api/v1/links/{id}/analytics/series?interval=5m"),
            400,
            "invalid_interval",
        ),
        (
            format!(
                "/api/v1/links/{id}/analytics/series?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"
            ),
            400,
            "invalid_range",
        ),
        (
            format!(
                "/api/v1/links/{id}/analytics/series?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z"
            ),
            400,
            "invalid_range",
        ),
        (
            format!(
                "/api/v1/links/{id}/analytics/series?interval=10s&from=2025-01-01T00:00:00Z&to=2025-12-01T00:00:00Z"
            ),
            400,
            "invalid_range",
        ),
        (
            format!("/api/v1/links/{id}/analytics/series?from=yesterday"),
            400,
            "invalid_query",
        ),
        (
            format!("/api/v1/links/{id}/analytics/breakdown?dimension=shoe_size"),
            400,
            "invalid_dimension",
        ),
        (
            format!("/api/v1/links/{id}/analytics/breakdown"),
            400,
            "invalid_dimension",
        ),
        (
            "/api/v1/links/999/analytics/series".to_owned(),
            404,
            "not_found",
        ),
        (
            "/api/v1/analytics/top-links?limit=0".to_owned(),
            400,
            "invalid_limit",
        ),
    ];
    for (path, status, code) in cases {
        let response = api.get(&path);
        assert_eq!(
            (response.status, response.error_code()),
            (status, code),
            "{path}: {}",
            response.text
        );
    }
    // The scope is required.
    let ring = ricochet_control::keys::KeyRing::new(_control.control().store());
    let reader = ring
        .create(
            ricochet_control::store::DEFAULT_WORKSPACE,
            None,
            "links only",
            &[ricochet_control::keys::Scope::LinksRead],
            0,
        )
        .unwrap();
    let limited = api
        .with_key(Some(&reader.token))
        .get("/api/v1/analytics/overview");
    assert_eq!(
        (limited.status, limited.error_code()),
        (403, "insufficient_scope")
    );
}

#[test]
fn with_scylladb_unreachable_the_control_plane_starts_and_analytics_answer_503() {
    // Nothing listens on this port: the cluster is down at start.
    let port = ricochet_control::test_util::free_port();
    let control = TestControl::start_with(
        |c| {
            c.clicks.scylla_nodes = vec![format!("127.0.0.1:{port}")];
        },
        std::sync::Arc::new(ricochet_model::bus::LocalBus::new()),
    );
    let response = control.client().get("/api/v1/analytics/overview");
    assert_eq!(
        (response.status, response.error_code()),
        (503, "analytics_unavailable")
    );
}
