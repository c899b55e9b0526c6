//! Link behaviour over real sockets: targeting rules of every condition
//! type, `ios`/`android`, A/B splits with their signed cookies, crawler
//! cards, fallbacks and the 410 page, edits and restarts, and the
//! `destination` analytics dimension.

use std::collections::HashMap;
use std::time::Duration;

use ricochet_engine::clicks::{ClickReader, FjallSink};
use ricochet_engine::test_util::{Client, Response, TestEngine, geo_database, link};
use ricochet_model::behaviour::{Card, Condition, Device, Os, Rule, Schedule, Variant};
use ricochet_model::clicks::Dimension;
use ricochet_model::{LinkRecord, LinkState, RedirectStatus, now_millis};

const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const ANDROID: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const WINDOWS_FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0";
const MAC_CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const SLACKBOT: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
const TWITTERBOT: &str = "Twitterbot/1.0";

type Headers<'a> = &'a [(&'a str, &'a str)];

fn request(client: &mut Client, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    client.send(text.as_bytes());
    client.read_response(method == "HEAD").unwrap()
}

fn get(engine: &TestEngine, path: &str, headers: &[(&str, &str)]) -> Response {
    request(&mut Client::connect(engine.addr()), "GET", path, headers)
}

fn location(response: &Response) -> String {
    response.header("location").unwrap_or_default()
}

fn rule(url: &str, conditions: Vec<Condition>) -> Rule {
    Rule {
        url: url.into(),
        conditions,
        variants: Vec::new(),
    }
}

fn split(weights: &[(u8, &str)]) -> Vec<Variant> {
    weights
        .iter()
        .map(|&(weight, url)| Variant {
            url: url.into(),
            weight,
        })
        .collect()
}

fn with_geo(dir: &std::path::Path) -> TestEngine {
    let geo = dir.join("test.mmdb");
    std::fs::write(
        &geo,
        geo_database(
            false,
            &[
                ("127.0.0.0/8", "NL", "Amsterdam"),
                ("203.0.113.0/24", "FR", "Paris"),
            ],
        ),
    )
    .unwrap();
    TestEngine::start_with(|c| {
        c.clicks.geoip_database = geo.clone();
        c.clicks.trust_forwarded_for = true;
        c.clicks.node = "test-node".into();
    })
}

#[test]
fn rules_of_every_type_first_match_wins() {
    let dir = tempfile::tempdir().unwrap();
    let engine = with_geo(dir.path());
    let now = now_millis();
    let mut record = link("localhost", "spring", "https://example.com/default");
    record.extensions.rules = vec![
        rule(
            "https://example.com/past",
            vec![Condition::Before(now - 60_000)],
        ),
        rule(
            "https://example.com/ref-mail",
            vec![Condition::QueryParam {
                key: "ref".into(),
                value: "mail".into(),
            }],
        ),
        rule(
            "https://example.com/preview",
            vec![Condition::ValuelessQueryParam {
                key: "preview".into(),
            }],
        ),
        rule(
            "https://example.com/any-src",
            vec![Condition::AnyValueQueryParam { key: "src".into() }],
        ),
        rule(
            "https://example.com/office",
            vec![Condition::Ip("198.51.100.0/24".into())],
        ),
        rule(
            "https://example.com/v6",
            vec![Condition::Ip("2001:db8::/32".into())],
        ),
        rule(
            "https://example.com/paris",
            vec![
                Condition::Country("FR".into()),
                Condition::City("paris".into()),
            ],
        ),
        rule(
            "https://example.com/iphone",
            vec![Condition::Os(Os::Ios), Condition::Device(Device::Mobile)],
        ),
        rule(
            "https://example.com/firefox",
            vec![Condition::Browser("firefox".into())],
        ),
        rule(
            "https://example.com/fr",
            vec![Condition::Language("fr".into())],
        ),
        rule(
            "https://example.com/en",
            vec![Condition::Language("en".into())],
        ),
        rule(
            "https://example.com/future",
            vec![Condition::After(now + 3_600_000)],
        ),
        rule(
            "https://example.com/always",
            vec![
                Condition::After(now - 60_000),
                Condition::Schedule(Schedule {
                    timezone: "Asia/Tokyo".into(),
                    days: 0x7f,
                    from: 0,
                    to: 24 * 60,
                }),
                Condition::Country("NL".into()),
                Condition::Device(Device::Desktop),
            ],
        ),
    ];
    engine.upsert(record);

    let cases: &[(&str, Headers, &str)] = &[
        ("/spring?ref=mail", &[], "ref-mail"),
        ("/spring?ref=web", &[("User-Agent", MAC_CHROME)], "always"),
        ("/spring?preview", &[], "preview"),
        ("/spring?preview=", &[], "preview"),
        ("/spring?preview=1", &[], "default"),
        ("/spring?src=x&a=b", &[], "any-src"),
        ("/spring?src", &[], "any-src"),
        ("/spring", &[("X-Forwarded-For", "198.51.100.77")], "office"),
        ("/spring", &[("X-Forwarded-For", "2001:db8::5")], "v6"),
        ("/spring", &[("X-Forwarded-For", "203.0.113.9")], "paris"),
        ("/spring", &[("User-Agent", IPHONE)], "iphone"),
        ("/spring", &[("User-Agent", WINDOWS_FIREFOX)], "firefox"),
        (
            "/spring",
            &[("Accept-Language", "de, fr-CA;q=0.8, en;q=0.5")],
            "fr",
        ),
        (
            "/spring",
            &[("Accept-Language", "en-GB;q=0.9, fr;q=0.8")],
            "en",
        ),
        ("/spring", &[("Accept-Language", "de")], "default"),
        // The schedule is all day in Tokyo, the country NL (127.0.0.1), the device desktop.
        ("/spring", &[("User-Agent", MAC_CHROME)], "always"),
        ("/spring", &[("User-Agent", ANDROID)], "default"),
    ];
    for (path, headers, expected) in cases {
        let response = get(&engine, path, headers);
        assert_eq!(response.status, 302, "{path} {headers:?}");
        assert_eq!(
            location(&response),
            format!("https://example.com/{expected}"),
            "{path} {headers:?}"
        );
        assert_eq!(
            response.header("cache-control").as_deref(),
            Some("private, no-cache"),
            "an answer that varies is not shared"
        );
    }
}

#[test]
fn ios_and_android_come_before_rules_and_forwarding_applies_to_the_chosen_url() {
    let engine = TestEngine::start();
    let mut record = link("localhost", "app", "https://example.com/web");
    record.forward_query = true;
    record.extensions.ios = Some("https://apps.example/ios?app=1".into());
    record.extensions.android = Some("https://play.example/android".into());
    record.extensions.rules = vec![rule(
        "https://example.com/mobile",
        vec![Condition::Device(Device::Mobile)],
    )];
    engine.upsert(record);
    let ios = get(&engine, "/app?x=1", &[("User-Agent", IPHONE)]);
    assert_eq!(location(&ios), "https://apps.example/ios?app=1&x=1");
    let android = get(&engine, "/app", &[("User-Agent", ANDROID)]);
    assert_eq!(location(&android), "https://play.example/android");
    let desktop = get(&engine, "/app?x=1", &[("User-Agent", MAC_CHROME)]);
    assert_eq!(location(&desktop), "https://example.com/web?x=1");
}

#[test]
fn splits_follow_weights_and_stick_through_a_signed_cookie() {
    let engine = TestEngine::start_with(|c| c.clicks.trust_forwarded_for = true);
    let mut record = link("localhost", "ab", "https://example.com/");
    record.status = RedirectStatus::MovedPermanently;
    record.extensions.variants = split(&[(30, "https://a.example/"), (70, "https://b.example/")]);
    engine.upsert(record);

    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut cookies: HashMap<String, String> = HashMap::new();
    for n in 0..1_000u32 {
        let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
        let response = get(&engine, "/ab", &[("X-Forwarded-For", &ip)]);
        assert_eq!(response.status, 301);
        assert_eq!(
            response.header("cache-control").as_deref(),
            Some("private, no-cache"),
            "a split is never cached, even when permanent"
        );
        let set_cookie = response
            .header("set-cookie")
            .expect("a new visitor gets a cookie");
        assert!(
            set_cookie.ends_with("; Path=/ab; Max-Age=2592000; HttpOnly; SameSite=Lax"),
            "{set_cookie}"
        );
        let pair = set_cookie.split(';').next().unwrap().to_owned();
        let destination = location(&response);
        *seen.entry(destination.clone()).or_default() += 1;
        cookies.insert(destination, pair);
    }
    let a = seen["https://a.example/"];
    assert!(
        (230..370).contains(&a),
        "30 % of 1000 within noise: {seen:?}"
    );

    // The cookie wins over the address hash, and is not set again.
    for (destination, pair) in &cookies {
        for n in 0..20 {
            let ip = format!("172.16.0.{n}");
            let response = get(
                &engine,
                "/ab",
                &[
                    ("X-Forwarded-For", &ip),
                    ("Cookie", &format!("x=1; {pair}")),
                ],
            );
            assert_eq!(&location(&response), destination);
            assert_eq!(response.header("set-cookie"), None);
        }
    }
    // A forged or stale cookie is ignored: the visitor gets a pick and a new cookie.
    for forged in [
        "rc_ab=0",
        "rc_ab=AAAAAAAAAAAAAAAA",
        "rc_ab=https://evil.example/",
    ] {
        let response = get(&engine, "/ab", &[("Cookie", forged)]);
        assert!(
            ["https://a.example/", "https://b.example/"].contains(&location(&response).as_str())
        );
        assert!(response.header("set-cookie").is_some(), "{forged}");
    }
}

#[test]
fn a_split_inside_a_rule_and_cookies_survive_a_restart() {
    let mut engine = TestEngine::start();
    let mut record = link("localhost", "r", "https://example.com/");
    record.extensions.rules = vec![Rule {
        url: "https://example.com/unused".into(),
        conditions: vec![Condition::Os(Os::Ios)],
        variants: split(&[
            (50, "https://ios-a.example/"),
            (50, "https://ios-b.example/"),
        ]),
    }];
    engine.upsert(record);
    let first = get(&engine, "/r", &[("User-Agent", IPHONE)]);
    let cookie = first.header("set-cookie").unwrap();
    assert!(cookie.starts_with("rc_ab_r0="), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let desktop = get(&engine, "/r", &[("User-Agent", MAC_CHROME)]);
    assert_eq!(location(&desktop), "https://example.com/");
    assert_eq!(desktop.header("set-cookie"), None);

    engine.restart();
    let again = get(&engine, "/r", &[("User-Agent", IPHONE), ("Cookie", &pair)]);
    assert_eq!(
        location(&again),
        location(&first),
        "the kept secret signs the same"
    );
    assert_eq!(again.header("set-cookie"), None);
}

#[test]
fn crawlers_get_the_card_and_everyone_else_the_redirect() {
    let engine = TestEngine::start();
    let mut record = link("localhost", "card", "https://example.com/?a=1&b=2");
    record.title = Some("Link title".into());
    record.extensions.card = Some(Card {
        title: Some("</title><script>alert('x')</script>".into()),
        description: Some("\"><img src=x onerror=alert(1)>".into()),
        image: Some("https://img.example/card.png".into()),
    });
    engine.upsert(record);
    for bot in [SLACKBOT, TWITTERBOT] {
        let response = get(&engine, "/card", &[("User-Agent", bot)]);
        assert_eq!(response.status, 200, "{bot}");
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/html; charset=utf-8")
        );
        assert!(response.header("content-security-policy").is_some());
        let page = response.text();
        assert!(
            !page.contains("<script>") && !page.contains("<img"),
            "{page}"
        );
        assert!(page.contains("property=\"og:image\" content=\"https://img.example/card.png\""));
        assert!(page.contains("&lt;/title&gt;&lt;script&gt;"), "{page}");
        assert!(
            page.contains("url=https://example.com/?a=1&amp;b=2"),
            "{page}"
        );
    }
    let mut client = Client::connect(engine.addr());
    let head = request(&mut client, "HEAD", "/card", &[("User-Agent", SLACKBOT)]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for human in [IPHONE, MAC_CHROME, "curl/8.5.0", ""] {
        let response = get(&engine, "/card", &[("User-Agent", human)]);
        assert_eq!(response.status, 302, "{human}");
        assert_eq!(location(&response), "https://example.com/?a=1&b=2");
    }
}

#[test]
fn gone_links_fall_back_or_answer_an_html_410() {
    let engine = TestEngine::start();
    let mut expired = link("localhost", "old", "https://example.com/");
    expired.expires_at = Some(now_millis() - 1_000);
    expired.extensions.fallback_url = Some("https://example.com/gone".into());
    engine.upsert(expired);
    let mut disabled = link("localhost", "off", "https://example.com/");
    disabled.state = LinkState::Disabled;
    disabled.extensions.fallback_url = Some("https://example.com/off".into());
    engine.upsert(disabled);
    let mut plain = link("localhost", "plain", "https://example.com/");
    plain.state = LinkState::Deleted;
    engine.upsert(plain);

    let old = get(&engine, "/old?x=1", &[]);
    assert_eq!(old.status, 302);
    assert_eq!(location(&old), "https://example.com/gone");
    assert_eq!(old.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        location(&get(&engine, "/off", &[])),
        "https://example.com/off"
    );
    let gone = get(&engine, "/plain", &[]);
    assert_eq!(gone.status, 410);
    assert_eq!(
        gone.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(gone.text().contains("no longer available"));
}

#[test]
fn edits_replace_and_remove_plans() {
    let engine = TestEngine::start();
    let mut record = link("localhost", "e", "https://example.com/plain");
    record.extensions.rules = vec![rule(
        "https://example.com/ios",
        vec![Condition::Os(Os::Ios)],
    )];
    engine.upsert(record.clone());
    assert_eq!(engine.metric("ricochet_engine_links_planned").unwrap(), 1.0);
    assert_eq!(
        location(&get(&engine, "/e", &[("User-Agent", IPHONE)])),
        "https://example.com/ios"
    );
    record.extensions = Default::default();
    engine.upsert(record);
    assert_eq!(engine.metric("ricochet_engine_links_planned").unwrap(), 0.0);
    let plain = get(&engine, "/e", &[("User-Agent", IPHONE)]);
    assert_eq!(location(&plain), "https://example.com/plain");
    assert_eq!(plain.header("cache-control"), None);

    let mut again = link("localhost", "p", "https://example.com/");
    again.extensions.ios = Some("https://apps.example/".into());
    engine.upsert(again);
    assert_eq!(engine.metric("ricochet_engine_links_planned").unwrap(), 1.0);
    engine.purge("localhost", "p");
    assert_eq!(engine.metric("ricochet_engine_links_planned").unwrap(), 0.0);
    assert_eq!(get(&engine, "/p", &[]).status, 404);
}

#[test]
fn clicks_are_counted_by_destination() {
    let dir = tempfile::tempdir().unwrap();
    let mut engine = with_geo(dir.path());
    let mut record = link("localhost", "d", "https://example.com/");
    record.extensions.rules = vec![rule(
        "https://example.com/ios",
        vec![Condition::Os(Os::Ios)],
    )];
    record.extensions.variants = split(&[(50, "https://a.example/"), (50, "https://b.example/")]);
    let record: LinkRecord = {
        let version = engine.upsert(record.clone());
        assert!(version > 0);
        record
    };
    let started = now_millis();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for n in 0..40u32 {
        let ip = format!("10.0.0.{n}");
        let ua = if n % 4 == 0 { IPHONE } else { MAC_CHROME };
        let response = get(
            &engine,
            "/d",
            &[("X-Forwarded-For", &ip), ("User-Agent", ua)],
        );
        let label = match location(&response).as_str() {
            "https://example.com/ios" => "rules[0]",
            "https://a.example/" => "variants[0]",
            "https://b.example/" => "variants[1]",
            other => panic!("unexpected {other}"),
        };
        *expected.entry(label.to_owned()).or_default() += 1;
    }
    // A plain link gets no destination rows.
    let plain = engine.add("localhost", "plainclicks", "https://example.com/");
    assert_eq!(get(&engine, "/plainclicks", &[]).status, 302);
    std::thread::sleep(Duration::from_millis(100));
    engine.stop();

    let store = FjallSink::open(&engine.data_dir().join("clicks")).unwrap();
    let until = now_millis() + 20_000;
    let rows = store
        .breakdown(record.id, started - 20_000, until, Dimension::Destination)
        .unwrap();
    let got: HashMap<String, u64> = rows.into_iter().map(|(v, c)| (v, c.humans)).collect();
    assert_eq!(got, expected);
    assert_eq!(expected["rules[0]"], 10);
    let plain_rows = store
        .breakdown(plain.id, started - 20_000, until, Dimension::Destination)
        .unwrap();
    assert!(plain_rows.is_empty(), "{plain_rows:?}");
}

fn password_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"test-salt-16byte").unwrap();
    hasher
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn post_form(client: &mut Client, path: &str, body: &str, headers: &[(&str, &str)]) -> Response {
    let mut text = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    client.send(text.as_bytes());
    client.read_response(false).unwrap()
}

#[test]
fn password_links_ask_then_let_in_with_a_pass() {
    let engine = TestEngine::start_with(|c| c.clicks.trust_forwarded_for = true);
    let mut record = link("localhost", "secret", "https://example.com/private");
    record.extensions.password_hash = Some(password_hash("open sesame"));
    engine.upsert(record);
    engine.add("localhost", "open", "https://example.com/open");

    let form = get(&engine, "/secret", &[]);
    assert_eq!(form.status, 200);
    assert_eq!(form.header("location"), None);
    assert_eq!(form.header("cache-control").as_deref(), Some("no-store"));
    let page = form.text();
    assert!(page.contains("<form method=\"post\">") && page.contains("type=\"password\""));
    assert!(
        !page.contains("example.com/private"),
        "the form does not leak the destination"
    );

    let mut client = Client::connect(engine.addr());
    let wrong = post_form(&mut client, "/secret", "password=nope", &[]);
    assert_eq!(wrong.status, 403);
    assert!(wrong.text().contains("not right"));
    assert_eq!(wrong.header("set-cookie"), None);
    let empty = post_form(&mut client, "/secret", "other=1", &[]);
    assert_eq!(empty.status, 400);

    let right = post_form(&mut client, "/secret?ref=mail", "password=open+sesame", &[]);
    assert_eq!(right.status, 303);
    assert_eq!(location(&right), "/secret?ref=mail");
    let pass = right.header("set-cookie").expect("a pass");
    assert!(
        pass.contains("; Path=/secret; Max-Age=3600; HttpOnly; SameSite=Lax"),
        "{pass}"
    );
    let pair = pass.split(';').next().unwrap().to_owned();
    let through = request(&mut client, "GET", "/secret", &[("Cookie", &pair)]);
    assert_eq!(through.status, 302);
    assert_eq!(location(&through), "https://example.com/private");
    let tampered = pair.replace('.', ".A");
    assert_eq!(
        get(&engine, "/secret", &[("Cookie", &tampered)]).status,
        200
    );

    // Answers stay in order when a check is awaited between pipelined requests.
    let body = "password=open+sesame";
    let pipelined = format!(
        "GET /open HTTP/1.1\r\nHost: localhost\r\n\r\n\
         POST /secret HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}\
         GET /open HTTP/1.1\r\nHost: localhost\r\n\r\n",
        body.len()
    );
    let mut client = Client::connect(engine.addr());
    client.send(pipelined.as_bytes());
    let statuses: Vec<u16> = (0..3)
        .map(|_| client.read_response(false).unwrap().status)
        .collect();
    assert_eq!(statuses, [302, 303, 302]);

    // POST elsewhere is not allowed.
    let mut client = Client::connect(engine.addr());
    let other = post_form(&mut client, "/open", "password=x", &[]);
    assert_eq!(other.status, 405);
}

#[test]
fn password_attempts_are_limited_per_client_and_link() {
    let engine = TestEngine::start_with(|c| c.clicks.trust_forwarded_for = true);
    let mut record = link("localhost", "locked", "https://example.com/");
    record.extensions.password_hash = Some(password_hash("right"));
    engine.upsert(record);
    let mut client = Client::connect(engine.addr());
    let from = [("X-Forwarded-For", "198.51.100.1")];
    let statuses: Vec<u16> = (0..12)
        .map(|_| post_form(&mut client, "/locked", "password=wrong", &from).status)
        .collect();
    assert_eq!(&statuses[..10], &[403; 10]);
    assert_eq!(&statuses[10..], &[429, 429]);
    let limited = post_form(&mut client, "/locked", "password=right", &from);
    assert_eq!(limited.status, 429, "even the right password waits");
    assert_eq!(limited.header("retry-after").as_deref(), Some("60"));
    let other = post_form(
        &mut client,
        "/locked",
        "password=right",
        &[("X-Forwarded-For", "198.51.100.2")],
    );
    assert_eq!(other.status, 303, "another client is not limited");
}
