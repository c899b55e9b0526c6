//! `GET /api/v1/events` over a real socket: Server-Sent Events of the
//! caller's workspace only, live, resumable with `Last-Event-ID` over the
//! history kept, narrowed by `types`, `link.clicked` only with the analytics
//! scope; the event log written with the changes survives a restart.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ricochet_control::test_util::{ApiClient, TestControl};
use serde_json::{Value, json};

/// One received Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: Option<String>,
    event: String,
    data: Value,
}

/// A stream read line by line over a raw socket (chunked encoding).
struct Stream {
    reader: BufReader<TcpStream>,
    status: u16,
}

impl Stream {
    fn open(test: &TestControl, key: &str, query: &str, last_event_id: Option<&str>) -> Self {
        let mut socket = TcpStream::connect(test.control().addr()).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let resume = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        write!(
            socket,
            "GET /api/v1/events{query} HTTP/1.1\r\nHost: control\r\nAuthorization: Bearer {key}\r\n\
             Accept: text/event-stream\r\n{resume}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(socket);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut status_line = String::new();
        while status_line.is_empty() && Instant::now() < deadline {
            let _ = reader.read_line(&mut status_line);
        }
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Headers.
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(_) if line == "\r\n" => break,
                Ok(0) => break,
                Ok(_) => {}
                Err(_) if Instant::now() < deadline => {}
                Err(_) => break,
            }
        }
        Self { reader, status }
    }

    /// The events that arrive within `wait` (chunk-size lines skipped).
    fn read(&mut self, wait: Duration) -> Vec<Sse> {
        let deadline = Instant::now() + wait;
        let mut events = Vec::new();
        let mut current: (Option<String>, Option<String>, Option<String>) = (None, None, None);
        let mut line = String::new();
        while Instant::now() < deadline {
            match self.reader.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) if line.ends_with('\n') => {
                    let text = line.trim_end_matches(['\r', '\n']).to_owned();
                    line.clear();
                    if let Some(id) = text.strip_prefix("id: ") {
                        current.0 = Some(id.to_owned());
                    } else if let Some(event) = text.strip_prefix("event: ") {
                        current.1 = Some(event.to_owned());
                    } else if let Some(data) = text.strip_prefix("data: ") {
                        current.2 = Some(data.to_owned());
                    } else if text.is_empty()
                        && let (Some(event), Some(data)) = (current.1.take(), current.2.take())
                    {
                        events.push(Sse {
                            id: current.0.take(),
                            event,
                            data: serde_json::from_str(&data).expect("JSON data"),
                        });
                    }
                }
                Ok(_) | Err(_) => {}
            }
        }
        events
    }

    /// Reads until `count` events arrived or 10 s passed.
    fn wait_for(&mut self, count: usize) -> Vec<Sse> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut events = Vec::new();
        while events.len() < count && Instant::now() < deadline {
            events.extend(self.read(Duration::from_millis(300)));
        }
        events
    }
}

fn create(api: &ApiClient, code: &str) -> Value {
    let created = api.post(
        "/api/v1/links",
        &json!({"url": format!("https://example.com/{code}"), "code": code}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    created.body
}

#[test]
fn the_stream_sends_live_events_and_resumes_after_the_last_event_id() {
    let test = TestControl::start();
    let api = test.client();
    let mut stream = Stream::open(&test, &test.admin_key, "", None);
    assert_eq!(stream.status, 200);
    create(&api, "live-one");
    let first = stream.wait_for(1);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].event, "link.created");
    assert_eq!(first[0].data["type"], "link.created");
    assert_eq!(first[0].data["data"]["link"]["code"], "live-one");
    let id = first[0].id.clone().unwrap();
    assert_eq!(first[0].data["id"], id.as_str());
    drop(stream);

    // Missed while disconnected: sent first on reconnection, in order.
    let second = create(&api, "missed-two");
    assert_eq!(
        api.patch(
            &format!("/api/v1/links/{}", second["id"]),
            &json!({"title": "edited"})
        )
        .status,
        200
    );
    let mut resumed = Stream::open(&test, &test.admin_key, "", Some(&id));
    let missed = resumed.wait_for(2);
    let kinds: Vec<_> = missed.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["link.created", "link.updated"], "{missed:?}");
    assert_eq!(missed[1].data["data"]["link"]["title"], "edited");
    // …then live ones.
    create(&api, "live-three");
    let live = resumed.wait_for(1);
    assert_eq!(live[0].data["data"]["link"]["code"], "live-three");

    // The same through the query parameter, narrowed by type.
    let mut narrowed = Stream::open(
        &test,
        &test.admin_key,
        &format!("?types=link.updated&last_event_id={id}"),
        None,
    );
    let only = narrowed.wait_for(1);
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0].event, "link.updated");
    assert!(narrowed.read(Duration::from_millis(500)).is_empty());
}

#[test]
fn the_stream_carries_the_callers_workspace_only_and_clicks_need_analytics() {
    let test = TestControl::start();
    let api = test.client();
    let owner = test.owner_client();
    let other = owner.post("/api/v1/workspaces", &json!({"name": "Elsewhere"}));
    assert_eq!(other.status, 201, "{}", other.text);
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        owner
            .post(&format!("/api/v1/workspaces/{other_id}/switch"), &json!({}))
            .status,
        200
    );
    let other_key = owner.post(
        "/api/v1/keys",
        &json!({"name": "reader", "scopes": ["links:read"]}),
    );
    assert_eq!(other_key.status, 201, "{}", other_key.text);
    let other_key = other_key.body["token"].as_str().unwrap().to_owned();

    let mut theirs = Stream::open(&test, &other_key, "", Some("evt_0"));
    assert_eq!(theirs.status, 200);
    create(&api, "not-theirs");
    assert!(
        theirs.read(Duration::from_millis(1500)).is_empty(),
        "another workspace's events leaked"
    );

    // Without analytics:read, click events are refused when asked for.
    let refused = Stream::open(&test, &other_key, "?types=link.clicked", None);
    assert_eq!(refused.status, 403);
    let bad_type = Stream::open(&test, &other_key, "?types=link.nope", None);
    assert_eq!(bad_type.status, 400);
    let bad_id = Stream::open(&test, &other_key, "", Some("yesterday"));
    assert_eq!(bad_id.status, 400);
    let anonymous = ApiClient::new(&test.base_url(), None).get("/api/v1/events");
    assert_eq!(anonymous.status, 401);
}

#[test]
fn the_history_survives_a_restart_and_says_when_it_was_pruned() {
    let mut test = TestControl::start();
    let api = test.client();
    let first = create(&api, "before-restart");
    test.control.take().unwrap().shutdown();
    let control = ricochet_control::ControlPlane::start(test.config.clone(), test.bus.clone())
        .expect("restarts");
    test.control = Some(control);
    let mut stream = Stream::open(&test, &test.admin_key, "", Some("evt_0"));
    let events = stream.wait_for(1);
    assert_eq!(events[0].event, "link.created", "{events:?}");
    assert_eq!(events[0].data["data"]["link"]["id"], first["id"]);
    let first_seq: u64 = events[0].id.as_ref().unwrap()["evt_".len()..]
        .parse()
        .unwrap();
    let metrics = ApiClient::new(&test.base_url(), None).get("/metrics");
    assert!(
        metrics.text.contains("ricochet_control_event_streams 1"),
        "{}",
        metrics.text
    );
    drop(stream);

    // Older events pruned: a client resuming before them is told.
    let api = test.client();
    create(&api, "after-restart");
    let store = test.control().store();
    assert_eq!(store.prune_events(first_seq).unwrap(), 1);
    let mut stream = Stream::open(&test, &test.admin_key, "", Some("evt_0"));
    let events = stream.wait_for(2);
    assert_eq!(events[0].event, "history_truncated", "{events:?}");
    assert_eq!(
        events[0].data["oldest_event_id"],
        format!("evt_{}", first_seq + 1)
    );
    assert_eq!(events[1].data["data"]["link"]["code"], "after-restart");
}
