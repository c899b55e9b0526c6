//! The `ricochet-engine` command: import from CSV and JSON Lines with good and
//! bad rows (and a control-plane export with every field), then serve what was
//! imported; `--check-config`.

use std::process::Command;

use ricochet_engine::test_util::{Client, TestEngine};

fn engine_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ricochet-engine"))
}

fn import(data_dir: &std::path::Path, file: &std::path::Path, extra: &[&str]) -> (bool, String) {
    let output = engine_command()
        .arg("--data-dir")
        .arg(data_dir)
        .arg("import")
        .arg("--quiet")
        .args(extra)
        .arg(file)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn csv_import_applies_good_rows_and_reports_bad_ones() {
    let mut engine = TestEngine::start();
    engine.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    std::fs::write(
        &file,
        "domain,code,url,status\n\
         localhost,a,https://example.com/a,301\n\
         brand.example,b,https://example.com/b\n\
         ,c,https://example.com/c,308\n\
         localhost,bad code,https://example.com/\n\
         localhost,js,javascript:alert(1)\n\
         localhost,st,https://example.com/,299\n\
         localhost,nn,https://example.com/,abc\n\
         localhost,short\n\
         localhost,crlf,https://example.com/%0d%0aX:y\n\
         \"localhost\",\"q\",\"https://example.com/q?x=1,2\"\n",
    )
    .unwrap();
    let rejects = dir.path().join("rejects.tsv");
    let (ok, output) = import(
        engine.data_dir(),
        &file,
        &["--rejects", rejects.to_str().unwrap()],
    );
    assert!(ok, "{output}");
    assert!(
        output.contains("imported 4 links (4 new, 0 updated)"),
        "{output}"
    );
    assert!(output.contains("6 rows rejected"), "{output}");
    for line in [
        "line 5:", "line 6:", "line 7:", "line 8:", "line 9:", "line 10:",
    ] {
        assert!(output.contains(line), "{line} missing in {output}");
    }
    assert!(output.contains("scheme must be http or https"), "{output}");
    assert!(output.contains("not 299"), "{output}");
    let rejected = std::fs::read_to_string(&rejects).unwrap();
    assert_eq!(rejected.lines().count(), 6, "{rejected}");

    engine.restart();
    let response = engine.get("/a", "localhost");
    assert_eq!(
        (response.status, response.header("location").as_deref()),
        (301, Some("https://example.com/a"))
    );
    assert_eq!(engine.get("/b", "brand.example").status, 302);
    assert_eq!(
        engine.get("/c", "localhost").status,
        308,
        "empty domain means the default domain"
    );
    assert_eq!(
        engine.get("/q", "localhost").header("location").as_deref(),
        Some("https://example.com/q?x=1,2")
    );
    for code in ["js", "st", "nn", "crlf"] {
        assert_eq!(
            engine.get(&format!("/{code}"), "localhost").status,
            404,
            "{code}"
        );
    }
}

#[test]
fn jsonl_import_and_reimport_updates_in_place() {
    let mut engine = TestEngine::start();
    engine.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.jsonl");
    std::fs::write(
        &file,
        "{\"domain\":\"localhost\",\"code\":\"j1\",\"url\":\"https://example.com/1\"}\n\
         \n\
         {\"domain\":\"localhost\",\"code\":\"j2\",\"url\":\"https://example.com/2\",\"status\":307}\n\
         {\"domain\":\"localhost\",\"code\":\"j3\",\"url\":\"https://example.com/3\",\"colour\":\"red\"}\n\
         {not json}\n\
         {\"domain\":\"localhost\",\"code\":\"j4\"}\n",
    )
    .unwrap();
    let (ok, output) = import(engine.data_dir(), &file, &[]);
    assert!(ok, "{output}");
    assert!(
        output.contains("imported 2 links (2 new, 0 updated)"),
        "{output}"
    );
    assert!(output.contains("3 rows rejected"), "{output}");
    assert!(
        output.contains("line 4: invalid JSON row: unknown field `colour`"),
        "{output}"
    );
    assert!(output.contains("line 5:"), "{output}");
    assert!(output.contains("line 6:"), "{output}");

    std::fs::write(
        &file,
        "{\"domain\":\"localhost\",\"code\":\"j1\",\"url\":\"https://example.com/new\",\"status\":308}\n",
    )
    .unwrap();
    let (ok, output) = import(engine.data_dir(), &file, &[]);
    assert!(ok, "{output}");
    assert!(
        output.contains("imported 1 links (0 new, 1 updated)"),
        "{output}"
    );

    engine.restart();
    let response = engine.get("/j1", "localhost");
    assert_eq!(
        (response.status, response.header("location").as_deref()),
        (308, Some("https://example.com/new"))
    );
    assert_eq!(engine.get("/j2", "localhost").status, 307);
    assert_eq!(engine.engine().intake().last_applied(), 3);
}

#[test]
fn csv_headers_may_order_and_omit_columns() {
    let mut engine = TestEngine::start();
    engine.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    std::fs::write(
        &file,
        "URL,Title,Code\n\
         https://example.com/h1,First,h1\n\
         https://example.com/h2,Second,h2\n\
         https://example.com/h3,,\n",
    )
    .unwrap();
    let (ok, output) = import(engine.data_dir(), &file, &[]);
    assert!(ok, "{output}");
    assert!(output.contains("imported 2 links"), "{output}");
    assert!(output.contains("line 4: code must be"), "{output}");
    engine.restart();
    assert_eq!(
        engine.get("/h2", "localhost").header("location").as_deref(),
        Some("https://example.com/h2")
    );
}

#[test]
fn import_of_a_missing_or_unknown_file_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, output) = import(dir.path(), &dir.path().join("nope.csv"), &[]);
    assert!(!ok);
    assert!(output.contains("cannot read"), "{output}");
    let odd = dir.path().join("links.txt");
    std::fs::write(&odd, "x").unwrap();
    let (ok, output) = import(dir.path(), &odd, &[]);
    assert!(!ok);
    assert!(output.contains("--format"), "{output}");
}

#[test]
fn check_config_validates_files_environment_and_flags() {
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/engine.toml");
    let output = engine_command()
        .args(["--config", reference, "--check-config"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("listen = \"0.0.0.0:8080\""));

    let output = engine_command()
        .args(["--check-config", "--listen", "127.0.0.1:7000"])
        .env("RICOCHET_ENGINE_SERVER__MAX_HEADER_BYTES", "4096")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("listen = \"127.0.0.1:7000\""), "{printed}");
    assert!(printed.contains("max_header_bytes = 4096"), "{printed}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[server]\nworkers = \"many\"\n").unwrap();
    let output = engine_command()
        .args(["--config", bad.to_str().unwrap(), "--check-config"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("workers"));

    let output = engine_command()
        .args(["--check-config"])
        .env("RICOCHET_ENGINE_REDIRECT__PERMANENT_MAX_AGE", "30days")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("permanent_max_age"));
}

#[test]
fn a_control_plane_export_imports_with_every_field() {
    let mut engine = TestEngine::start();
    engine.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.csv");
    std::fs::write(
        &file,
        "kind,domain,code,url,status,state,expires_at,forward_query,tags,title,created_at\n\
         domain,go.example,,,,,,,,,2026-11-25T00:00:00.123Z\n\
         link,go.example,live,https://example.com/live,308,active,,true,a|b,'=1+1,2026-11-25T10:00:00.123Z\n\
         link,go.example,off,https://example.com/off,302,disabled,,false,,,2026-11-25T10:00:01Z\n\
         link,go.example,old,https://example.com/old,302,active,2020-01-01T00:00:00Z,false,,,2019-01-01T00:00:00Z\n\
         link,go.example,bad,https://example.com/bad,302,paused,,false,,,\n",
    )
    .unwrap();
    let (ok, output) = import(engine.data_dir(), &file, &[]);
    assert!(ok, "{output}");
    assert!(output.contains("imported 3 links"), "{output}");
    assert!(output.contains("line 6: state \"paused\""), "{output}");
    engine.restart();
    let live = engine.get("/live?utm=x", "go.example");
    assert_eq!(
        (live.status, live.header("location").as_deref()),
        (308, Some("https://example.com/live?utm=x"))
    );
    assert_eq!(engine.get("/off", "go.example").status, 410);
    assert_eq!(engine.get("/old", "go.example").status, 410);
}

#[test]
fn imports_carry_rules_variants_and_app_links_and_refuse_bad_ones_by_path() {
    let mut engine = TestEngine::start();
    engine.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.jsonl");
    std::fs::write(
        &file,
        [
            serde_json::json!({
                "domain": "go.example", "code": "r", "url": "https://example.com/",
                "ios": "https://apps.example/",
                "rules": [{"url": "https://example.com/fr",
                           "conditions": [{"type": "language", "value": "fr"}]}],
                "fallback_url": "https://example.com/gone",
            }),
            serde_json::json!({
                "domain": "go.example", "code": "bad", "url": "https://example.com/",
                "rules": [{"url": "https://example.com/",
                           "conditions": [{"type": "os", "value": "beos"}]}],
            }),
        ]
        .map(|row| format!("{row}\n"))
        .concat(),
    )
    .unwrap();
    let (ok, output) = import(engine.data_dir(), &file, &[]);
    assert!(ok, "{output}");
    assert!(output.contains("imported 1 link"), "{output}");
    assert!(
        output.contains("line 2: rules[0].conditions[0].value"),
        "{output}"
    );
    engine.restart();
    let mut client = Client::connect(engine.addr());
    client.send(b"GET /r HTTP/1.1\r\nHost: go.example\r\nAccept-Language: fr-FR\r\n\r\n");
    let french = client.read_response(false).unwrap();
    assert_eq!(
        french.header("location").as_deref(),
        Some("https://example.com/fr")
    );
    client.send(b"GET /r HTTP/1.1\r\nHost: go.example\r\nUser-Agent: Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1\r\n\r\n");
    let iphone = client.read_response(false).unwrap();
    assert_eq!(
        iphone.header("location").as_deref(),
        Some("https://apps.example/")
    );
}

#[test]
fn import_sets_the_settings_of_domain_rows() {
    let mut engine = TestEngine::start();
    engine.stop();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.jsonl");
    std::fs::write(
        &file,
        "{\"kind\":\"domain\",\"domain\":\"Brand.Example\",\"root_url\":\"https://www.brand.example\",\"not_found_url\":\"https://www.brand.example/404\"}\n\
         {\"kind\":\"domain\",\"domain\":\"plain.example\"}\n\
         {\"kind\":\"domain\",\"domain\":\"bad.example\",\"root_url\":\"javascript:alert(1)\"}\n\
         {\"domain\":\"brand.example\",\"code\":\"b1\",\"url\":\"https://example.com/1\"}\n",
    )
    .unwrap();
    let (ok, output) = import(engine.data_dir(), &file, &[]);
    assert!(ok, "{output}");
    assert!(
        output.contains("imported 1 links (1 new, 0 updated)"),
        "{output}"
    );
    assert!(output.contains("1 rows rejected"), "{output}");
    assert!(output.contains("line 3: root_url:"), "{output}");

    engine.restart();
    let root = engine.get("/", "brand.example");
    assert_eq!(
        (root.status, root.header("location").as_deref()),
        (302, Some("https://www.brand.example/"))
    );
    let missing = engine.get("/nope", "brand.example");
    assert_eq!(
        missing.header("location").as_deref(),
        Some("https://www.brand.example/404")
    );
    assert_eq!(engine.get("/b1", "brand.example").status, 302);
    assert_eq!(engine.get("/", "bad.example").status, 404);
}
