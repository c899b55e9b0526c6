//! `POST /internal/v1/clicks`: windows shipped by engines (through the real
//! `ControlSink` over HTTP) land in the control plane's click store, once per
//! (node, shard, window) however often they are sent; bad windows, tokens and
//! content types are refused with the status that tells the engine whether to
//! retry or dead-letter; `/metrics` counts what came in.

use ricochet_clickstore::control::{CONTENT_TYPE, encode_batch};
use ricochet_clickstore::{ClickSink, ControlSink, SinkError};
use ricochet_control::test_util::{ApiClient, TestControl};
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow, window_start};

fn window(node: &str, at: i64, link: u64, count: u64) -> WindowBatch {
    let row = |dimension, value: &str| WindowRow {
        link_id: link,
        window_start: at,
        dimension,
        value: value.to_owned(),
        bot: false,
        count,
    };
    WindowBatch {
        node: node.to_owned(),
        shard: 0,
        window_start: at,
        rows: vec![row(Dimension::Total, ""), row(Dimension::Country, "NL")],
    }
}

fn total(api: &ApiClient, id: u64) -> u64 {
    let response = api.get(&format!(
        "/api/v1/links/{id}/analytics/series?interval=1d&from=2026-01-01T00:00:00Z"
    ));
    assert_eq!(response.status, 200, "{}", response.text);
    response.body["total"]["humans"].as_u64().unwrap()
}

fn post(control: &TestControl, token: &str, content_type: &str, body: Vec<u8>) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .post(format!("{}/internal/v1/clicks", control.base_url()))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", content_type)
        .send(&body[..])
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn shipped_windows_are_kept_once_and_bad_ones_are_refused() {
    let control = TestControl::start();
    let api = control.client();
    let created = api.post(
        "/api/v1/links",
        &serde_json::json!({"url": "https://example.com/", "code": "ship"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_u64().unwrap();
    let token = control.control().cluster_token().to_owned();
    let sink = ControlSink::new(&control.base_url(), &token);
    let at = window_start(ricochet_model::now_millis() - 60_000);

    // Two engines; one window sent twice (a retry), one re-flushed larger.
    sink.write(&window("engine-a", at, id, 3)).unwrap();
    sink.write(&window("engine-a", at, id, 3)).unwrap();
    sink.write(&window("engine-b", at, id, 2)).unwrap();
    sink.write(&window("engine-b", at, id, 4)).unwrap();
    assert_eq!(total(&api, id), 7, "3 from a, 4 from b: retries replace");
    let breakdown = api.get(&format!(
        "/api/v1/links/{id}/analytics/breakdown?dimension=country&from=2026-01-01T00:00:00Z"
    ));
    assert_eq!(
        breakdown.body["values"][0]["value"], "NL",
        "{}",
        breakdown.text
    );

    // A wrong token may be fixed: the engine keeps the window and retries.
    let wrong = ControlSink::new(&control.base_url(), "not-the-token");
    assert!(matches!(
        wrong.write(&window("engine-a", at, id, 1)),
        Err(SinkError::Unavailable(_))
    ));
    // An inconsistent window never will: the engine dead-letters it.
    let mut misplaced = window("engine-c", at, id, 1);
    misplaced.rows[0].window_start = at + 10_000;
    match sink.write(&misplaced) {
        Err(SinkError::Failed(message)) => assert!(message.contains("400"), "{message}"),
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    // A control plane that is not there: retry later.
    let gone = ControlSink::new("http://127.0.0.1:9", &token);
    assert!(matches!(
        gone.write(&window("engine-a", at, id, 1)),
        Err(SinkError::Unavailable(_))
    ));
    assert_eq!(total(&api, id), 7, "nothing refused was stored");

    let body = encode_batch(&window("engine-d", at, id, 1));
    assert_eq!(
        post(&control, &token, "application/json", body.clone()),
        415
    );
    assert_eq!(post(&control, "", CONTENT_TYPE, body.clone()), 401);
    assert_eq!(post(&control, &token, CONTENT_TYPE, vec![1, 0xff]), 400);
    assert_eq!(post(&control, &token, CONTENT_TYPE, body), 204);
    assert_eq!(total(&api, id), 8);

    let metrics = ApiClient::new(&control.base_url(), None).get("/metrics");
    assert_eq!(metrics.status, 200);
    for line in [
        "ricochet_control_click_windows_received_total 5",
        "ricochet_control_click_rows_received_total 10",
    ] {
        assert!(metrics.text.contains(line), "{line} in\n{}", metrics.text);
    }
}
