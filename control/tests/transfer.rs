//! `ricochet-control export` then `import` into a fresh store gives back every
//! domain and every field of every link (active, disabled, deleted, expired;
//! with and without tags, title, expiry, query forwarding; custom and
//! internationalized domains; titles and tags a spreadsheet would run as
//! formulas; rules with every condition type, variants, fallback URLs, cards,
//! ios and android; click limits and password hashes, never a password;
//! domain settings), in CSV and in JSON Lines.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use ricochet_control::api::types::{CreateLink, PatchLink};
use ricochet_control::service::PasswordInput;
use ricochet_control::service::{DomainChanges, LinkService, LinkSettings};
use ricochet_control::store::{ControlStore, DEFAULT_WORKSPACE};
use ricochet_model::{LinkExtensions, LinkRecord, LinkState};
use serde_json::json;
use time::OffsetDateTime;

/// The password of the `behaves` link, which no export may hold.
const PASSWORD: &str = "tulip-export-31";

/// 2026-11-25T10:00:00.123Z: creation times with milliseconds.
const T0: i64 = 1_795_600_800_123;
const HOUR: i64 = 3_600_000;

fn at(millis: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap()
}

fn link(url: &str) -> CreateLink {
    CreateLink {
        url: url.into(),
        domain: None,
        code: None,
        status: None,
        expires_at: None,
        forward_query: None,
        title: None,
        tags: None,
        utm: None,
        rules: None,
        variants: None,
        fallback_url: None,
        card: None,
        ios: None,
        android: None,
        password: None,
        max_clicks: None,
    }
}

/// A store holding links in every state and shape.
fn fill(dir: &Path) {
    let store = Arc::new(ControlStore::open(dir).unwrap());
    store
        .add_domain("localhost", DEFAULT_WORKSPACE, T0 - 10 * HOUR)
        .unwrap();
    store
        .add_domain("go.example.com", DEFAULT_WORKSPACE, T0 - 9 * HOUR)
        .unwrap();
    store
        .add_domain("xn--bcher-kva.example", DEFAULT_WORKSPACE, T0 - 8 * HOUR)
        .unwrap();
    let service = LinkService::new(store.clone(), LinkSettings::new("localhost", 7, 1000, &[]));
    service
        .update_domain(
            DEFAULT_WORKSPACE,
            "go.example.com",
            &DomainChanges {
                root_url: Some(Some("https://www.example.com/go".into())),
                not_found_url: Some(Some("https://www.example.com/=missing".into())),
                default_status: Some(308),
                https_redirect: Some(true),
                hsts: Some(Some(ricochet_model::domain::Hsts {
                    max_age: 600,
                    include_subdomains: true,
                    preload: false,
                })),
            },
            T0 - 9 * HOUR,
        )
        .unwrap();
    service
        .update_domain(
            DEFAULT_WORKSPACE,
            "localhost",
            &DomainChanges {
                not_found_url: Some(Some("https://www.example.com/".into())),
                ..DomainChanges::default()
            },
            T0 - 9 * HOUR,
        )
        .unwrap();
    // A link whose expiry has passed since it was made (a new link cannot
    // be made expired).
    service
        .create(
            DEFAULT_WORKSPACE,
            &CreateLink {
                code: Some("expired".into()),
                expires_at: Some(at(T0 - HOUR)),
                status: Some(307),
                title: Some("+1 and -1".into()),
                ..link("https://example.org/expired")
            }
            .into(),
            T0 - 2 * HOUR,
        )
        .unwrap();
    let mut now = T0;
    let mut create = |input: CreateLink| {
        now += 1_001;
        service
            .create(DEFAULT_WORKSPACE, &input.into(), now)
            .unwrap()
    };
    let everything = create(CreateLink {
        domain: Some("go.example.com".into()),
        code: Some("launch".into()),
        status: Some(308),
        expires_at: Some(at(T0 + 1000 * HOUR)),
        forward_query: Some(true),
        title: Some("=HYPERLINK(\"https://evil.example/\",\"click\")".into()),
        tags: Some(vec!["spring".into(), "a|b".into(), "-minus".into()]),
        ..link("https://example.org/launch?a=1,2&b=\"q\"")
    });
    let plain = create(link("https://example.org/plain"));
    create(CreateLink {
        domain: Some("xn--bcher-kva.example".into()),
        code: Some("buch".into()),
        title: Some("  spaces kept, commas, \"quotes\"\nand a new line ".into()),
        tags: Some(vec!["@at".into(), "+plus".into(), "'quote".into()]),
        ..link("https://example.org/b%C3%BCcher")
    });
    let disabled = create(CreateLink {
        code: Some("off".into()),
        status: Some(301),
        title: Some("@SUM(1+1)".into()),
        ..link("https://example.org/off")
    });
    let deleted = create(CreateLink {
        code: Some("gone".into()),
        title: Some("\ttab first".into()),
        ..link("https://example.org/gone")
    });
    create(CreateLink {
        domain: Some("go.example.com".into()),
        code: Some("launch-2".into()),
        forward_query: Some(false),
        tags: Some(vec![]),
        ..link("https://example.org/other")
    });
    // Every behaviour field, every condition type, and text a spreadsheet
    // would run as a formula inside the JSON cells.
    let behaves = create(CreateLink {
        code: Some("behaves".into()),
        rules: Some(json!([
            {"url": "https://example.org/mobile", "conditions": [
                {"type": "device", "value": "mobile"}, {"type": "os", "value": "android"},
                {"type": "browser", "value": "=Firefox"}, {"type": "language", "value": "pt-BR"},
                {"type": "country", "value": "br"}, {"type": "city", "value": "São Paulo"}]},
            {"url": "https://example.org/mail", "conditions": [
                {"type": "query-param", "key": "ref", "value": "-mail"},
                {"type": "query-param", "key": "empty", "value": ""},
                {"type": "any-value-query-param", "key": "utm_source"},
                {"type": "valueless-query-param", "key": "preview"},
                {"type": "ip", "value": "2001:db8::/32"}],
             "variants": [{"url": "https://example.org/mail-a", "weight": 25},
                          {"url": "https://example.org/mail-b", "weight": 75}]},
            {"url": "https://example.org/sale", "conditions": [
                {"type": "after", "value": "2026-12-24T18:00:00.250+01:00"},
                {"type": "before", "value": "2027-01-01T00:00:00Z"},
                {"type": "schedule", "value": {"timezone": "Europe/Paris", "days": ["fri", "sat"],
                                               "from": "22:00", "to": "06:00"}}]}
        ])),
        variants: Some(json!([
            {"url": "https://example.org/a", "weight": 34},
            {"url": "https://example.org/b", "weight": 33},
            {"url": "https://example.org/c", "weight": 33}
        ])),
        fallback_url: Some(json!("https://example.org/gone")),
        card: Some(
            json!({"title": "=SUM(1,2)", "description": "+plus, \"quoted\"\nsecond line",
                          "image": "https://img.example/card.png"}),
        ),
        ios: Some(json!("https://apps.example/app?id=1")),
        android: Some(json!("https://play.example/store?id=1")),
        password: Some(PasswordInput::new(PASSWORD)),
        max_clicks: Some(json!(250)),
        ..link("https://example.org/behaves")
    });
    create(CreateLink {
        code: Some("limited".into()),
        max_clicks: Some(json!(1)),
        ..link("https://example.org/limited")
    });
    create(CreateLink {
        code: Some("card-only".into()),
        card: Some(json!({"title": "@title only"})),
        ios: Some(json!("https://apps.example/only")),
        ..link("https://example.org/card-only")
    });
    let patch = PatchLink {
        state: Some(LinkState::Disabled),
        ..PatchLink::default()
    };
    service
        .update(DEFAULT_WORKSPACE, disabled.id, &patch.into(), T0 + HOUR)
        .unwrap();
    service
        .delete(DEFAULT_WORKSPACE, deleted.id, T0 + 2 * HOUR)
        .unwrap();
    assert!(everything.forward_query && plain.code.len() == 7);
    assert_eq!(behaves.extensions.rules.len(), 3);
    assert_eq!(behaves.extensions.rules[0].conditions.len(), 6);
    assert!(behaves.extensions.password_hash.is_some());
    store.persist().unwrap();
}

/// Every field export promises to keep, per link; and the domains.
type Snapshot = (Vec<LinkFields>, Vec<(String, i64, DomainFields)>);
/// root_url, not_found_url, default_status.
type DomainFields = (Option<String>, Option<String>, u16);
type LinkFields = (
    String,
    String,
    String,
    u16,
    LinkState,
    Option<i64>,
    bool,
    Vec<String>,
    Option<String>,
    i64,
    LinkExtensions,
);

fn snapshot(dir: &Path) -> Snapshot {
    let store = ControlStore::open(dir).unwrap();
    let mut links = Vec::new();
    store
        .for_each_link(|link: LinkRecord| {
            links.push((
                link.domain,
                link.code,
                link.url,
                link.status.code(),
                link.state,
                link.expires_at,
                link.forward_query,
                link.tags,
                link.title,
                link.created_at,
                link.extensions,
            ));
            true
        })
        .unwrap();
    links.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let domains = store
        .domains()
        .unwrap()
        .into_iter()
        .map(|(name, record)| {
            let settings = (
                record.root_url,
                record.not_found_url,
                record.default_status.code(),
            );
            (name, record.created_at, settings)
        })
        .collect();
    (links, domains)
}

fn control(dir: &Path, args: &[&str], file: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_ricochet-control"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn round_trip(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    fill(&source);
    let before = snapshot(&source);
    assert_eq!(before.0.len(), 10);
    let behaves = before.0.iter().find(|link| link.1 == "behaves").unwrap();
    assert!(
        !behaves.10.rules.is_empty()
            && behaves.10.variants.len() == 3
            && behaves.10.card.is_some()
            && behaves.10.fallback_url.is_some()
            && behaves.10.ios.is_some()
            && behaves.10.android.is_some()
            && behaves.10.click_limit == Some(250)
            && behaves.10.password_hash.is_some(),
        "{:?}",
        behaves.10
    );
    let hash = behaves.10.password_hash.clone().unwrap();
    assert_eq!(before.1.len(), 3);

    let file = dir.path().join(format!("links.{format}"));
    control(&source, &["export", "--format", format, "--output"], &file);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&hash), "the hash is exported: {text}");
    assert!(!text.contains(PASSWORD), "never the password");
    if format == "csv" {
        assert!(
            text.contains(",\"'=HYPERLINK("),
            "formulas are escaped: {text}"
        );
        assert!(text.contains(",'@SUM(1+1),"), "{text}");
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with(
                ",created_at,rules,variants,fallback_url,card,ios,android,max_clicks,password_hash,\
                 root_url,not_found_url,https_redirect,hsts"
            ),
            "{header}"
        );
        for start in ["=", "+", "-", "@", "\t"] {
            assert!(
                !text.contains(&format!(",{start}")) && !text.contains(&format!(",\"{start}")),
                "{start:?}: {text}"
            );
        }
    }

    let target = dir.path().join("target");
    let stdout = control(&target, &["import"], &file);
    assert!(
        stdout.contains("imported 10 links and 3 domains") && stdout.contains("0 rows rejected"),
        "{stdout}"
    );
    assert_eq!(snapshot(&target), before);

    // Importing the same file again refuses every link (their codes are
    // taken) and registers no domain, line by line.
    let stdout = control(&target, &["import"], &file);
    assert!(
        stdout.contains("imported 0 links and 0 domains") && stdout.contains("10 rows rejected"),
        "{stdout}"
    );
    assert!(stdout.contains("is already taken"), "{stdout}");
    assert_eq!(snapshot(&target), before);
}

#[test]
fn csv_transfer_round_trip_keeps_every_field() {
    round_trip("csv");
}

#[test]
fn jsonl_transfer_round_trip_keeps_every_field() {
    round_trip("jsonl");
}

#[test]
fn transfer_import_reads_older_formats_and_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("old.csv");
    std::fs::write(
        &csv,
        "localhost,one,https://example.com/1\n\
         ,two,https://example.com/2,301\n\
         localhost,three,https://example.com/3,999\n\
         nowhere.example,four,https://example.com/4\n\
         only,two\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    let stdout = control(&store, &["import"], &csv);
    assert!(stdout.contains("imported 2 links"), "{stdout}");
    assert!(stdout.contains("3 rows rejected"), "{stdout}");
    for line in ["line 3:", "line 4:", "line 5:"] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }

    let jsonl = dir.path().join("old.jsonl");
    std::fs::write(
        &jsonl,
        "{\"domain\":\"localhost\",\"code\":\"five\",\"url\":\"https://example.com/5\",\"status\":307}\n\
         {\"url\":\"https://example.com/6\",\"tags\":[\"x\"],\"title\":\"api body\"}\n\
         {\"kind\":\"domain\",\"domain\":\"Go.Example.com\"}\n\
         {\"domain\":\"go.example.com\",\"code\":\"seven\",\"url\":\"https://example.com/7\",\"state\":\"deleted\"}\n\
         {\"url\":\"https://example.com/8\",\"state\":\"paused\"}\n\
         not json\n",
    )
    .unwrap();
    let stdout = control(&store, &["import"], &jsonl);
    assert!(
        stdout.contains("imported 3 links and 1 domains") && stdout.contains("2 rows rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 5:") && stdout.contains("line 6:"),
        "{stdout}"
    );
    let (links, domains) = snapshot(&store);
    assert_eq!(links.len(), 5);
    assert!(domains.iter().any(|(name, _, _)| name == "go.example.com"));
    let seven = links.iter().find(|l| l.1 == "seven").unwrap();
    assert_eq!(seven.4, LinkState::Deleted);
    let five = links.iter().find(|l| l.1 == "five").unwrap();
    assert_eq!(five.3, 307);
}

#[test]
fn import_validates_behaviour_as_the_api_does() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("behaviour.csv");
    let rules = |condition: &str| {
        format!(
            "\"[{{\"\"url\"\":\"\"https://example.com/r\"\",\"\"conditions\"\":[{condition}]}}]\""
        )
    };
    let os = |value: &str| format!("{{\"\"type\"\":\"\"os\"\",\"\"value\"\":\"\"{value}\"\"}}");
    std::fs::write(
        &csv,
        format!(
            "code,url,rules,variants,card,ios\n\
             good,https://example.com/1,{},,,https://apps.example/1\n\
             badrule,https://example.com/2,{},,,\n\
             loop,https://example.com/3,,,,http://localhost/x\n\
             badsplit,https://example.com/4,,\"[{{\"\"url\"\":\"\"https://example.com/a\"\",\"\"weight\"\":60}}]\",,\n\
             notjson,https://example.com/5,,,{{title,\n",
            rules(&os("ios")),
            rules(&os("amiga")),
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let stdout = control(&store, &["import"], &csv);
    assert!(
        stdout.contains("imported 1 links") && stdout.contains("4 rows rejected"),
        "{stdout}"
    );
    for expected in [
        "line 3: rules[0].conditions[0].value: ",
        "line 4: ios is on localhost",
        "line 5: variants: ",
        "line 6: card is not JSON",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    let store = ControlStore::open(&store).unwrap();
    let mut links = Vec::new();
    store
        .for_each_link(|link: LinkRecord| {
            links.push(link);
            true
        })
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].code, "good");
    assert_eq!(links[0].extensions.rules[0].url, "https://example.com/r");
    assert_eq!(
        links[0].extensions.ios.as_deref(),
        Some("https://apps.example/1")
    );
}

#[test]
fn import_takes_click_limits_and_argon2_hashes_only() {
    let hash = ricochet_control::service::access::hash_password("open sesame");
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("access.jsonl");
    let line = |code: &str, extra: &str| {
        format!("{{\"code\":\"{code}\",\"url\":\"https://example.com/{code}\"{extra}}}\n")
    };
    let lines = [
        line(
            "locked",
            &format!(",\"password_hash\":\"{hash}\",\"max_clicks\":3"),
        ),
        line("plain", ",\"password_hash\":\"open sesame\""),
        line(
            "bcrypt",
            ",\"password_hash\":\"$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW\"",
        ),
        line("zero", ",\"max_clicks\":0"),
        line("huge", ",\"max_clicks\":1000000000001"),
        line("negative", ",\"max_clicks\":-4"),
        line("password", ",\"password\":\"open sesame\""),
    ];
    std::fs::write(&jsonl, lines.concat()).unwrap();
    let store = dir.path().join("store");
    let stdout = control(&store, &["import"], &jsonl);
    assert!(
        stdout.contains("imported 1 links") && stdout.contains("6 rows rejected"),
        "{stdout}"
    );
    for expected in [
        "line 2: password_hash: not an Argon2 PHC string",
        "line 3: password_hash: not an Argon2 PHC string",
        "line 4: max_clicks must be a whole number from 1 to 1000000000000",
        "line 5: max_clicks must be",
        "line 6: max_clicks -4 is not a whole number",
        "line 7: invalid JSON row: unknown field `password`",
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert!(!stdout.contains("sesame"), "{stdout}");

    let csv = dir.path().join("access.csv");
    std::fs::write(
        &csv,
        format!(
            "code,url,max_clicks,password_hash\n\
             csvlocked,https://example.com/c,10,\"{hash}\"\n\
             csvbad,https://example.com/d,,\"{}\"\n",
            &hash[..hash.len() - 2]
        ),
    )
    .unwrap();
    let stdout = control(&store, &["import"], &csv);
    assert!(
        stdout.contains("imported 1 links")
            && stdout.contains("line 3: password_hash: not an Argon2"),
        "{stdout}"
    );
    let store = ControlStore::open(&store).unwrap();
    let mut links = Vec::new();
    store
        .for_each_link(|link: LinkRecord| {
            links.push((link.code, link.extensions));
            true
        })
        .unwrap();
    links.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(links.len(), 2);
    for ((code, extensions), limit) in links.iter().zip([10, 3]) {
        assert_eq!(extensions.click_limit, Some(limit), "{code}");
        assert_eq!(
            extensions.password_hash.as_deref(),
            Some(hash.as_str()),
            "{code}"
        );
    }
}
