//! Propagation end to end: a real redis-server on a free port, the control
//! plane publishing on it, and two engines following it over HTTP and Redis.
//! Edits reach both engines; killing Redis or an engine while edits are made
//! loses nothing: both engines converge to exactly the control plane's table.
//! Deleting a workspace makes its links answer 410 on every engine until it
//! is restored, and its purge removes them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ricochet_control::test_util::{ApiClient, RedisServer, TestControl};
use ricochet_engine::test_util::{TestEngine, eventually};
use ricochet_model::bus::{RedisBus, UpdateBus};
use serde_json::json;

type Table = BTreeMap<(String, String), (String, u16, String, u64)>;

struct Cluster {
    redis: RedisServer,
    control: TestControl,
    engines: Vec<TestEngine>,
}

impl Cluster {
    fn start() -> Self {
        let redis = RedisServer::start();
        let bus: Arc<dyn UpdateBus> =
            Arc::new(RedisBus::new(&redis.url(), "test:changes").unwrap());
        let control = TestControl::start_with(
            |c| {
                c.bus.url = redis.url();
                c.bus.channel = "test:changes".into();
                c.rate_limit.requests_per_second = 1_000_000;
                c.rate_limit.burst = 1_000_000;
            },
            bus,
        );
        let engines = (0..2)
            .map(|_| {
                TestEngine::start_with(|c| {
                    c.sync.control_url = control.base_url();
                    c.sync.bus = redis.url();
                    c.sync.channel = "test:changes".into();
                    c.sync.cluster_token = control.control().cluster_token().to_owned();
                    // Long enough that only the bus and its gap detection can explain
                    // convergence within the tests' timeouts.
                    c.sync.poll_interval = Duration::from_secs(600);
                })
            })
            .collect();
        Self {
            redis,
            control,
            engines,
        }
    }

    fn api(&self) -> ApiClient {
        self.control.client()
    }

    fn control_table(&self) -> Table {
        let mut table = Table::new();
        self.control
            .control()
            .store()
            .for_each_link(|l| {
                table.insert(
                    (l.domain.clone(), l.code.clone()),
                    (
                        l.url.clone(),
                        l.status.code(),
                        l.state.as_str().to_owned(),
                        l.version,
                    ),
                );
                true
            })
            .unwrap();
        table
    }

    /// Waits until every running engine holds exactly the control plane's table.
    fn converge(&self, timeout: Duration) {
        let expected = self.control_table();
        for (index, engine) in self.engines.iter().enumerate() {
            let converged = eventually(timeout, || engine_table(engine) == expected);
            assert!(
                converged,
                "engine {index} did not converge: {} links, control has {}",
                engine_table(engine).len(),
                expected.len()
            );
        }
    }
}

fn engine_table(engine: &TestEngine) -> Table {
    let mut table = Table::new();
    engine
        .engine()
        .intake()
        .store()
        .for_each_record(|record| {
            let l = record.unwrap();
            table.insert(
                (l.domain.clone(), l.code.clone()),
                (
                    l.url.clone(),
                    l.status.code(),
                    l.state.as_str().to_owned(),
                    l.version,
                ),
            );
        })
        .unwrap();
    table
}

fn location(engine: &TestEngine, code: &str) -> (u16, Option<String>) {
    let response = engine.get(&format!("/{code}"), "localhost");
    (response.status, response.header("location"))
}

#[test]
fn create_update_delete_and_bulk_reach_both_engines() {
    let cluster = Cluster::start();
    let api = cluster.api();
    let created = api.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/v1", "code": "p"}),
    );
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_u64().unwrap();
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || location(engine, "p")
            == (302, Some("https://e.com/v1".into()))));
    }
    api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"url": "https://e.com/v2", "status": 301}),
    );
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || location(engine, "p")
            == (301, Some("https://e.com/v2".into()))));
    }
    api.delete(&format!("/api/v1/links/{id}"));
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || location(engine, "p")
            .0
            == 410));
    }
    let bulk: Vec<_> = (0..50)
        .map(|i| json!({"url": format!("https://e.com/b{i}"), "code": format!("b{i}")}))
        .collect();
    assert_eq!(
        api.post("/api/v1/links/bulk", &json!(bulk)).body["created"],
        50
    );
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || location(
            engine, "b49"
        )
        .0 == 302));
    }
    cluster.converge(Duration::from_secs(10));
    for engine in &cluster.engines {
        assert_eq!(
            engine.metric("ricochet_engine_catch_up_failures_total"),
            Some(0.0)
        );
    }
}

#[test]
fn killing_redis_during_1000_changes_loses_nothing() {
    let mut cluster = Cluster::start();
    let api = cluster.api();
    let mut ids = Vec::new();
    let change = |i: usize, ids: &mut Vec<u64>| {
        if i % 4 == 3 && !ids.is_empty() {
            let id = ids[i % ids.len()];
            let response = api.patch(
                &format!("/api/v1/links/{id}"),
                &json!({"url": format!("https://e.com/edit{i}")}),
            );
            assert_eq!(response.status, 200, "{}", response.text);
        } else {
            let response = api.post(
                "/api/v1/links",
                &json!({"url": format!("https://e.com/{i}")}),
            );
            assert_eq!(response.status, 201, "{}", response.text);
            ids.push(response.body["id"].as_u64().unwrap());
        }
    };
    for i in 0..300 {
        change(i, &mut ids);
    }
    cluster.redis.kill();
    for i in 300..700 {
        change(i, &mut ids);
    }
    cluster.redis.restart();
    for i in 700..1000 {
        change(i, &mut ids);
    }
    assert_eq!(cluster.control.control().store().latest_version(), 1000);
    cluster.converge(Duration::from_secs(30));
    for engine in &cluster.engines {
        // The first connection, then at least one after Redis came back.
        let reconnects = engine
            .metric("ricochet_engine_bus_reconnects_total")
            .unwrap();
        assert!(
            reconnects >= 2.0,
            "the subscriber reconnected: {reconnects}"
        );
    }
}

#[test]
fn a_restarted_engine_catches_up_on_what_it_missed() {
    let mut cluster = Cluster::start();
    let api = cluster.api();
    for i in 0..100 {
        api.post(
            "/api/v1/links",
            &json!({"url": format!("https://e.com/{i}"), "code": format!("k{i}")}),
        );
    }
    cluster.converge(Duration::from_secs(10));
    cluster.engines[1].stop();
    for i in 100..300 {
        api.post(
            "/api/v1/links",
            &json!({"url": format!("https://e.com/{i}"), "code": format!("k{i}")}),
        );
    }
    let first = api.get("/api/v1/links?q=k0&sort=code&limit=1").body["links"][0]["id"]
        .as_u64()
        .unwrap();
    api.delete(&format!("/api/v1/links/{first}"));
    cluster.engines[1].restart();
    cluster.converge(Duration::from_secs(15));
    assert_eq!(location(&cluster.engines[1], "k299").0, 302);
    assert_eq!(location(&cluster.engines[1], "k0").0, 410);
}

#[test]
fn a_deleted_workspace_answers_410_until_restored_and_its_purge_reaches_engines() {
    let cluster = Cluster::start();
    let owner = cluster.control.owner_client();
    let created = owner.post("/api/v1/workspaces", &json!({"name": "Campaign"}));
    let workspace = created.body["id"].as_str().unwrap().to_owned();
    owner.post(
        &format!("/api/v1/workspaces/{workspace}/switch"),
        &json!({}),
    );
    let link = owner.post(
        "/api/v1/links",
        &json!({"url": "https://e.com/campaign", "code": "camp"}),
    );
    assert_eq!(link.status, 201, "{}", link.text);
    let answers = |expected: u16| {
        for engine in &cluster.engines {
            assert!(
                eventually(Duration::from_secs(5), || location(engine, "camp").0
                    == expected),
                "expected {expected}, engine answers {:?}",
                location(engine, "camp")
            );
        }
    };
    answers(302);

    let deleted = owner.delete(&format!("/api/v1/workspaces/{workspace}"));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    answers(410);
    let restored = owner.post(
        &format!("/api/v1/workspaces/{workspace}/restore"),
        &json!({}),
    );
    assert_eq!(restored.status, 200, "{}", restored.text);
    answers(302);

    // Past the retention, the sweep purges the link from every engine.
    owner.delete(&format!("/api/v1/workspaces/{workspace}"));
    answers(410);
    let workspaces = ricochet_control::workspaces::Workspaces::new(
        cluster.control.control().store().clone(),
        ricochet_control::workspaces::WorkspaceSettings::default(),
    );
    let later = ricochet_model::now_millis() + 31 * 86_400_000;
    assert_eq!(workspaces.sweep(later).unwrap(), vec![workspace]);
    answers(404);
    cluster.converge(Duration::from_secs(10));
}

/// One request with extra headers (and a body for POST) to an engine.
fn ask(
    engine: &TestEngine,
    method: &str,
    code: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> ricochet_engine::test_util::Response {
    let mut request = format!("{method} /{code} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut client = ricochet_engine::test_util::Client::connect(engine.addr());
    client.send(request.as_bytes());
    client.read_response(method == "HEAD").unwrap()
}

#[test]
fn rules_cards_and_passwords_set_over_the_api_are_served_by_every_engine() {
    let cluster = Cluster::start();
    let api = cluster.api();
    let created = api.post(
        "/api/v1/links",
        &json!({
            "url": "https://e.com/default", "code": "spring", "title": "Spring <sale>",
            "rules": [{"url": "https://e.com/fr", "conditions": [{"type": "language", "value": "fr"}]}],
            "ios": "https://apps.e.com/ios",
            "card": {"description": "Everything \"half\" price"},
            "fallback_url": "https://e.com/over",
        }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let id = created.body["id"].as_u64().unwrap();
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || {
            ask(
                engine,
                "GET",
                "spring",
                &[("Accept-Language", "fr-FR, en;q=0.5")],
                "",
            )
            .header("location")
            .as_deref()
                == Some("https://e.com/fr")
        }));
        let ios = ask(engine, "GET", "spring", &[("User-Agent", iphone)], "");
        assert_eq!(
            ios.header("location").as_deref(),
            Some("https://apps.e.com/ios")
        );
        let card = ask(
            engine,
            "GET",
            "spring",
            &[("User-Agent", "Twitterbot/1.0")],
            "",
        );
        assert_eq!(card.status, 200);
        let page = card.text();
        assert!(
            page.contains("<title>Spring &lt;sale&gt;</title>"),
            "{page}"
        );
        assert!(
            page.contains("content=\"Everything &quot;half&quot; price\""),
            "{page}"
        );
        assert_eq!(
            location(engine, "spring").1.as_deref(),
            Some("https://e.com/default")
        );
    }

    // A password, then a disabled link with its fallback.
    let patched = api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"password": "tulips in may"}),
    );
    assert_eq!(patched.status, 200, "{:?}", patched.body);
    assert_eq!(patched.body["password_protected"], true);
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || location(
            engine, "spring"
        )
        .0 == 200));
        let wrong = ask(engine, "POST", "spring", &[], "password=roses");
        assert_eq!(wrong.status, 403);
        let right = ask(engine, "POST", "spring", &[], "password=tulips+in+may");
        assert_eq!(right.status, 303);
        let pass = right.header("set-cookie").unwrap();
        let pair = pass.split(';').next().unwrap();
        let through = ask(engine, "GET", "spring", &[("Cookie", pair)], "");
        assert_eq!(
            through.header("location").as_deref(),
            Some("https://e.com/default")
        );
    }
    api.patch(
        &format!("/api/v1/links/{id}"),
        &json!({"state": "disabled"}),
    );
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || location(
            engine, "spring"
        ) == (
            302,
            Some("https://e.com/over".into())
        )));
    }
    cluster.converge(Duration::from_secs(10));
}

#[test]
fn domain_settings_set_over_the_api_reach_every_engine_and_a_restarted_one() {
    let mut cluster = Cluster::start();
    let api = cluster.api();
    let redirect = |engine: &TestEngine, path: &str, host: &str| {
        let answer = engine.get(path, host);
        (answer.status, answer.header("location"))
    };
    let to = |url: &str| (302, Some(url.to_owned()));
    assert_eq!(
        api.post("/api/v1/domains", &json!({"domain": "brand.example"}))
            .status,
        201
    );
    let patched = api.patch(
        "/api/v1/domains/brand.example",
        &json!({"root_url": "https://www.brand.example/", "not_found_url": "https://www.brand.example/404"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    let patched = api.patch(
        "/api/v1/domains/localhost",
        &json!({"root_url": "https://www.example.com/"}),
    );
    assert_eq!(patched.status, 200, "{}", patched.text);
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(5), || {
            redirect(engine, "/", "brand.example") == to("https://www.brand.example/")
        }));
        assert_eq!(
            redirect(engine, "/missing", "brand.example"),
            to("https://www.brand.example/404")
        );
        assert!(eventually(Duration::from_secs(5), || {
            redirect(engine, "/", "localhost") == to("https://www.example.com/")
        }));
        assert_eq!(redirect(engine, "/missing", "localhost").0, 404);
    }

    // An engine that was down when the settings changed catches up.
    cluster.engines[1].stop();
    let cleared = api.patch(
        "/api/v1/domains/brand.example",
        &json!({"root_url": null, "not_found_url": "https://www.brand.example/lost"}),
    );
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    cluster.engines[1].restart();
    for engine in &cluster.engines {
        assert!(eventually(Duration::from_secs(10), || {
            redirect(engine, "/nope", "brand.example") == to("https://www.brand.example/lost")
        }));
        assert_eq!(redirect(engine, "/", "brand.example").0, 404);
    }
    cluster.converge(Duration::from_secs(10));
}

#[test]
fn a_blocked_host_stops_its_links_on_every_engine_until_unblocked() {
    let cluster = Cluster::start();
    let api = cluster.api();
    for (code, url) in [
        ("promo", "https://shop.bad.example/deal"),
        ("fine", "https://good.example/"),
    ] {
        let created = api.post("/api/v1/links", &json!({"url": url, "code": code}));
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let answers = |code: &str, expected: u16| {
        for engine in &cluster.engines {
            assert!(
                eventually(Duration::from_secs(5), || location(engine, code).0
                    == expected),
                "{code}: expected {expected}, engine answers {:?}",
                location(engine, code)
            );
        }
    };
    answers("promo", 302);

    let blocked = api.post(
        "/api/v1/denylist",
        &json!({"host": "bad.example", "reason": "phishing <kit>"}),
    );
    assert_eq!(blocked.status, 201, "{}", blocked.text);
    answers("promo", 451);
    answers("fine", 302);
    for engine in &cluster.engines {
        let page = ask(engine, "GET", "promo", &[], "");
        let text = String::from_utf8_lossy(&page.body).into_owned();
        assert!(text.contains("This link is blocked"), "{text}");
        assert!(text.contains("shop.bad.example"), "{text}");
        assert!(text.contains("phishing &lt;kit&gt;"), "{text}");
        assert!(
            !text.contains("/deal"),
            "the destination is not shown: {text}"
        );
        assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
        // Crawlers get the page too, not a card.
        let crawler = ask(
            engine,
            "GET",
            "promo",
            &[("User-Agent", "Slackbot-LinkExpanding 1.0")],
            "",
        );
        assert_eq!(crawler.status, 451);
    }
    let metrics = cluster.engines[0].admin_get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics.body);
    let counted = metrics
        .lines()
        .find_map(|line| line.strip_prefix("ricochet_engine_blocked_total "))
        .and_then(|value| value.trim().parse::<u64>().ok());
    assert!(counted >= Some(2), "{metrics}");

    let unblocked = api.delete("/api/v1/denylist/bad.example");
    assert_eq!(unblocked.status, 200, "{}", unblocked.text);
    assert_eq!(unblocked.body["links_unblocked"], 1);
    answers("promo", 302);
    cluster.converge(Duration::from_secs(10));
}
