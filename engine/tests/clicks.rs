//! Click capture end to end over real HTTP: redirects with real user-agent
//! strings, referrers and UTM parameters from a client whose address the
//! test GeoIP database covers produce exactly the expected counts per
//! dimension, humans and bots apart; HEAD, prefetches and misses are not clicks.

use std::time::Duration;

use ricochet_engine::clicks::{ClickReader, Counts, FjallSink, Interval};
use ricochet_engine::test_util::{Client, TestEngine, geo_database};
use ricochet_model::clicks::Dimension;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const SLACKBOT: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
const FACEBOOK: &str = "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)";

fn click(client: &mut Client, path: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    client.send(request.as_bytes());
    client.read_response(false).unwrap().status
}

#[test]
fn clicks_are_counted_exactly_per_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let geo = dir.path().join("test.mmdb");
    std::fs::write(
        &geo,
        geo_database(false, &[("127.0.0.0/8", "NL", "Amsterdam")]),
    )
    .unwrap();
    let mut engine = TestEngine::start_with(|c| {
        c.clicks.geoip_database = geo.clone();
        c.clicks.node = "test-node".into();
    });
    let link = engine.add("localhost", "go", "https://example.com/");
    let mut client = Client::connect(engine.addr());
    let started = ricochet_model::now_millis();

    for _ in 0..3 {
        assert_eq!(
            click(
                &mut client,
                "/go?utm_source=newsletter&utm_medium=email",
                &[
                    ("User-Agent", CHROME),
                    ("Referer", "https://www.news.example/post")
                ]
            ),
            302
        );
    }
    for _ in 0..2 {
        assert_eq!(
            click(
                &mut client,
                "/go",
                &[("User-Agent", IPHONE), ("Referer", "https://t.co/abc")]
            ),
            302
        );
    }
    assert_eq!(
        click(
            &mut client,
            "/go?utm_campaign=spring",
            &[("User-Agent", FIREFOX)]
        ),
        302
    );
    for bot in [GOOGLEBOT, SLACKBOT, FACEBOOK] {
        assert_eq!(click(&mut client, "/go", &[("User-Agent", bot)]), 302);
    }
    // Not clicks: HEAD, prefetches, unknown codes.
    client.send(b"HEAD /go HTTP/1.1\r\nHost: localhost\r\nUser-Agent: x\r\n\r\n");
    assert_eq!(client.read_response(true).unwrap().status, 302);
    assert_eq!(
        click(
            &mut client,
            "/go",
            &[("User-Agent", CHROME), ("Sec-Purpose", "prefetch")]
        ),
        302
    );
    assert_eq!(
        click(
            &mut client,
            "/go",
            &[("User-Agent", CHROME), ("Purpose", "prefetch")]
        ),
        302
    );
    assert_eq!(
        click(&mut client, "/missing", &[("User-Agent", CHROME)]),
        404
    );
    // Garbage in the captured fields is clipped or ignored, never a lost click.
    let huge_ua = "A".repeat(20_000);
    let mut raw = Client::connect(engine.addr());
    assert_eq!(
        click(
            &mut raw,
            "/go?utm_source=%FF%00",
            &[("User-Agent", "\u{1F980}"), ("Referer", "not a url")]
        ),
        302
    );
    drop(raw);
    let mut big = Client::connect(engine.addr());
    big.send(
        format!(
            "GET /go HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {}\r\n\r\n",
            &huge_ua[..7000]
        )
        .as_bytes(),
    );
    assert_eq!(big.read_response(false).unwrap().status, 302);

    // Shutting down flushes every open window.
    drop(client);
    drop(big);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(engine.metric("ricochet_clicks_dropped_total"), Some(0.0));
    engine.stop();

    let store = FjallSink::open(&engine.data_dir().join("clicks")).unwrap();
    let until = ricochet_model::now_millis() + 20_000;
    let total: Counts = store
        .series(link.id, started - 20_000, until, Interval::Hour)
        .unwrap()
        .into_iter()
        .fold(Counts::default(), |mut sum, (_, c)| {
            sum.humans += c.humans;
            sum.bots += c.bots;
            sum
        });
    // Humans: 3 Chrome + 2 iPhone + 1 Firefox; the emoji and the long "A…" UA
    // are unknown agents, counted as humans; bots: Googlebot, Slackbot, Facebook.
    assert_eq!(total, Counts { humans: 8, bots: 3 });
    let breakdown = |dimension| {
        store
            .breakdown(link.id, started - 20_000, until, dimension)
            .unwrap()
            .into_iter()
            .map(|(value, counts)| (value, counts.humans, counts.bots))
            .collect::<Vec<_>>()
    };
    assert_eq!(breakdown(Dimension::Country), vec![("NL".to_owned(), 8, 3)]);
    assert_eq!(
        breakdown(Dimension::City),
        vec![("Amsterdam".to_owned(), 8, 3)]
    );
    assert_eq!(
        breakdown(Dimension::Referrer),
        vec![("news.example".to_owned(), 3, 0), ("t.co".to_owned(), 2, 0)]
    );
    assert_eq!(
        breakdown(Dimension::UtmSource),
        vec![("newsletter".to_owned(), 3, 0)]
    );
    assert_eq!(
        breakdown(Dimension::UtmMedium),
        vec![("email".to_owned(), 3, 0)]
    );
    assert_eq!(
        breakdown(Dimension::UtmCampaign),
        vec![("spring".to_owned(), 1, 0)]
    );
    let devices = breakdown(Dimension::Device);
    assert_eq!(
        devices,
        vec![
            ("desktop".to_owned(), 6, 0),
            ("mobile".to_owned(), 2, 0),
            ("bot".to_owned(), 0, 3),
        ]
    );
    let browsers = breakdown(Dimension::Browser);
    assert_eq!(
        browsers.iter().find(|(b, _, _)| b == "Chrome").map(|b| b.1),
        Some(3)
    );
    assert_eq!(
        browsers
            .iter()
            .find(|(b, _, _)| b == "Mobile Safari")
            .map(|b| b.1),
        Some(2)
    );
    assert_eq!(
        browsers
            .iter()
            .find(|(b, _, _)| b == "Firefox")
            .map(|b| b.1),
        Some(1)
    );
    let top = store.top_links(started - 20_000, until, 5).unwrap();
    assert_eq!(top, vec![(link.id, Counts { humans: 8, bots: 3 })]);
}

#[test]
fn capture_can_be_turned_off() {
    let mut engine = TestEngine::start_with(|c| c.clicks.enabled = false);
    engine.add("localhost", "go", "https://example.com/");
    assert_eq!(engine.get("/go", "localhost").status, 302);
    assert_eq!(engine.metric("ricochet_clicks_captured_total"), Some(0.0));
    engine.stop();
    assert!(!engine.data_dir().join("clicks").exists());
}

/// SIGTERM while clicks are being made: every answered click is in the store
/// after the engine exits (open windows are flushed on the way out).
#[test]
fn sigterm_under_load_loses_no_click() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("engine");
    let links = dir.path().join("links.csv");
    std::fs::write(
        &links,
        "domain,code,url\nlocalhost,t,https://example.com/\n",
    )
    .unwrap();
    let engine = env!("CARGO_BIN_EXE_ricochet-engine");
    let imported = Command::new(engine)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "import",
            "--quiet",
            links.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(imported.status.success());
    let mut child = Command::new(engine)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--admin-listen", "127.0.0.1:0", "--workers", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines
            .next()
            .expect("the engine prints its address")
            .unwrap();
        if let Some(rest) = line.split("redirects on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // Four clients click until the engine goes away; count what was answered.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let answered = answered.clone();
            std::thread::spawn(move || {
                let Ok(stream) = std::net::TcpStream::connect(addr) else {
                    return;
                };
                let mut client = Client::connect(stream.peer_addr().unwrap());
                drop(stream);
                loop {
                    client.send(
                        format!(
                            "GET /t HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {CHROME}\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    match client.read_response(false) {
                        Ok(response) if response.status == 302 => {
                            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success(), "clean exit on SIGTERM");
    for client in clients {
        client.join().unwrap();
    }
    let answered = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert!(answered > 100, "the load ran: {answered}");

    let store = FjallSink::open(&data.join("clicks")).unwrap();
    let now = ricochet_model::now_millis();
    let counted: u64 = store
        .series(1, now - 3_600_000, now + 60_000, Interval::Hour)
        .unwrap()
        .iter()
        .map(|(_, c)| c.humans)
        .sum();
    // Nothing answered is lost. A request the engine handled as it stopped
    // may have been counted without its answer reaching the client: at most
    // one per connection.
    assert!(
        (answered..=answered + 4).contains(&counted),
        "answered {answered}, stored {counted}"
    );
}

#[test]
fn behind_a_proxy_the_client_address_comes_from_x_forwarded_for() {
    let dir = tempfile::tempdir().unwrap();
    let geo = dir.path().join("test.mmdb");
    std::fs::write(
        &geo,
        geo_database(
            true,
            &[
                ("198.51.100.0/24", "JP", "Tokyo"),
                ("127.0.0.0/8", "NL", "Amsterdam"),
            ],
        ),
    )
    .unwrap();
    for trusted in [true, false] {
        let mut engine = TestEngine::start_with(|c| {
            c.clicks.geoip_database = geo.clone();
            c.clicks.trust_forwarded_for = trusted;
        });
        let link = engine.add("localhost", "xf", "https://example.com/");
        let started = ricochet_model::now_millis();
        let mut client = Client::connect(engine.addr());
        assert_eq!(
            click(
                &mut client,
                "/xf",
                &[
                    ("User-Agent", CHROME),
                    ("X-Forwarded-For", "10.9.9.9, 198.51.100.7")
                ]
            ),
            302
        );
        drop(client);
        engine.stop();
        let store = FjallSink::open(&engine.data_dir().join("clicks")).unwrap();
        let countries = store
            .breakdown(
                link.id,
                started - 20_000,
                started + 60_000,
                Dimension::Country,
            )
            .unwrap();
        let expected = if trusted { "JP" } else { "NL" };
        assert_eq!(
            countries,
            vec![(expected.to_owned(), Counts { humans: 1, bots: 0 })],
            "trusted: {trusted}"
        );
    }
}

/// `kill -9` while clicks are made: windows flushed before the kill survive
/// (the store reopens), and at most the open windows (about 10 s plus the
/// grace period) are lost.
#[test]
fn kill_9_loses_at_most_the_open_windows() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("engine");
    let links = dir.path().join("links.csv");
    std::fs::write(
        &links,
        "domain,code,url\nlocalhost,k,https://example.com/\n",
    )
    .unwrap();
    let engine = env!("CARGO_BIN_EXE_ricochet-engine");
    let imported = Command::new(engine)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "import",
            "--quiet",
            links.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(imported.status.success());
    let mut child = Command::new(engine)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--admin-listen", "127.0.0.1:0", "--workers", "1"])
        .env("RICOCHET_ENGINE_CLICKS__WINDOW_GRACE", "500ms")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr: std::net::SocketAddr = loop {
        let line = lines
            .next()
            .expect("the engine prints its address")
            .unwrap();
        if let Some(rest) = line.split("redirects on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    // Click steadily, remembering when each answered click happened.
    let times = Arc::new(Mutex::new(Vec::<i64>::new()));
    let stop = Arc::new(AtomicU64::new(0));
    let clicker = {
        let (times, stop) = (times.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut client = Client::connect(addr);
            while stop.load(Ordering::SeqCst) == 0 {
                client.send(
                    format!("GET /k HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {CHROME}\r\n\r\n")
                        .as_bytes(),
                );
                match client.read_response(false) {
                    Ok(response) if response.status == 302 => {
                        times.lock().unwrap().push(ricochet_model::now_millis());
                    }
                    _ => return,
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(13_000));
    child.kill().unwrap();
    let killed_at = ricochet_model::now_millis();
    child.wait().unwrap();
    stop.store(1, Ordering::SeqCst);
    clicker.join().unwrap();

    let times = times.lock().unwrap();
    let store = FjallSink::open(&data.join("clicks")).unwrap();
    let stored: u64 = store
        .series(1, killed_at - 3_600_000, killed_at + 60_000, Interval::Hour)
        .unwrap()
        .iter()
        .map(|(_, c)| c.humans)
        .sum();
    // Windows closed at least grace + a margin before the kill were flushed.
    let surely_flushed = ricochet_model::clicks::window_start(killed_at - 1_500);
    let before = times.iter().filter(|&&t| t < surely_flushed - 10).count() as u64;
    assert!(before > 0, "the run was long enough for a window to close");
    assert!(
        stored >= before,
        "stored {stored} < {before} clicks of closed windows"
    );
    assert!(
        stored <= times.len() as u64,
        "stored {stored} > answered {}",
        times.len()
    );
}

#[test]
fn with_its_click_store_unreachable_an_engine_starts_serves_and_spills() {
    // A ScyllaDB contact point where nothing listens: the cluster is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let engine = TestEngine::start_with(|c| {
        c.clicks.store.scylla_nodes = vec![closed.to_string()];
        c.clicks.window_grace = Duration::from_millis(100);
    });
    engine.add("localhost", "down", "https://example.com/down");
    let mut client = Client::connect(engine.addr());
    for _ in 0..3 {
        assert_eq!(
            click(&mut client, "/down", &[]),
            302,
            "redirects are served"
        );
    }
    let spilled = ricochet_engine::test_util::eventually(Duration::from_secs(20), || {
        engine.metric("ricochet_click_windows_spilled_total") >= Some(1.0)
    });
    assert!(spilled, "the closed window waits in the spill queue");
    assert!(engine.metric("ricochet_click_windows_queued") >= Some(1.0));
    assert_eq!(
        engine.metric("ricochet_click_windows_dead_lettered_total"),
        Some(0.0),
        "an unreachable store is retried, not dead-lettered"
    );
}

/// A window past `clicks.max_window_rows` is written in parts: every click
/// still counts once, per link and per dimension, and the split is reported.
#[test]
fn a_window_over_its_cap_is_written_in_parts_and_loses_no_click() {
    let mut engine = TestEngine::start_with(|c| {
        c.clicks.node = "test-node".into();
        c.clicks.max_window_rows = 1_000;
    });
    // 600 links clicked by Chrome: 4 rows each (total, device, browser,
    // OS), 2,400 rows in the first round, which takes well under 10 s: one
    // window holds at least 1,200 of them, over the cap.
    let links: Vec<_> = (0..600)
        .map(|i| engine.add("localhost", &format!("l{i}"), "https://example.com/"))
        .collect();
    let mut client = Client::connect(engine.addr());
    let started = ricochet_model::now_millis();
    for round in 0..3 {
        for (i, _) in links
            .iter()
            .enumerate()
            .filter(|(i, _)| round == 0 || i % 2 == 0)
        {
            let path = format!("/l{i}");
            assert_eq!(click(&mut client, &path, &[("User-Agent", CHROME)]), 302);
        }
    }
    drop(client);
    assert!(
        ricochet_engine::test_util::eventually(Duration::from_secs(30), || {
            engine.metric("ricochet_click_window_splits_total") >= Some(1.0)
        }),
        "a split is reported"
    );
    assert_eq!(
        engine.metric("ricochet_click_window_rows_max"),
        Some(1_000.0)
    );
    engine.stop();

    let store = FjallSink::open(&engine.data_dir().join("clicks")).unwrap();
    let until = ricochet_model::now_millis() + 20_000;
    for (i, link) in links.iter().enumerate() {
        let expected = if i % 2 == 0 { 3 } else { 1 };
        let total: u64 = (store.series(link.id, started - 20_000, until, Interval::Hour))
            .unwrap()
            .iter()
            .map(|(_, c)| c.humans + c.bots)
            .sum();
        assert_eq!(total, expected, "link {i}");
        let browsers =
            (store.breakdown(link.id, started - 20_000, until, Dimension::Browser)).unwrap();
        assert_eq!(
            browsers
                .iter()
                .map(|(b, c)| (b.as_str(), c.humans))
                .collect::<Vec<_>>(),
            vec![("Chrome", expected)],
            "link {i}"
        );
    }
}
