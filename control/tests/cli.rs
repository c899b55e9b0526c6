//! The `ricochet-control` command: first start prints the bootstrap key,
//! `keys create|list|revoke`, `import` with bad rows, `export`, `--check-config`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ricochet_control::test_util::{ApiClient, free_port};

fn control(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ricochet-control"));
    command.arg("--data-dir").arg(dir);
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_prints_the_bootstrap_key_once_and_keys_are_managed_offline() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = control(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut key = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.trim().starts_with("rk_") {
            key = Some(line.trim().to_owned());
            break;
        }
    }
    let key = key.expect("the bootstrap key is printed");
    let api = ApiClient::new(&format!("http://127.0.0.1:{port}"), Some(&key));
    assert_eq!(api.get("/api/v1/links").status, 200);
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());

    let (ok, stdout, stderr) =
        run(control(dir.path()).args(["keys", "create", "--name", "ci", "--scope", "links:read"]));
    assert!(ok, "{stderr}");
    let token = stdout.trim().to_owned();
    assert!(token.starts_with("rk_"), "{stdout}");
    let (ok, listing, _) = run(control(dir.path()).args(["keys", "list"]));
    assert!(ok);
    assert!(
        listing.contains("bootstrap admin")
            && listing.contains("ci")
            && listing.contains("links:read"),
        "{listing}"
    );
    assert!(!listing.contains(&token[16..]), "secrets are never listed");
    let id = &token[3..15];
    let (ok, _, _) = run(control(dir.path()).args(["keys", "revoke", id]));
    assert!(ok);
    assert!(
        run(control(dir.path()).args(["keys", "list"]))
            .1
            .contains("revoked")
    );
    let (ok, _, stderr) =
        run(control(dir.path()).args(["keys", "create", "--name", "x", "--scope", "everything"]));
    assert!(!ok && stderr.contains("unknown scope"), "{stderr}");
    let (ok, _, _) = run(control(dir.path()).args(["keys", "revoke", "nope"]));
    assert!(!ok);

    // A second start prints no new key.
    let mut again = control(dir.path())
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first_line = BufReader::new(again.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    assert!(first_line.contains("API on"), "{first_line}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    Command::new("kill")
        .args(["-TERM", &again.id().to_string()])
        .status()
        .unwrap();
    assert!(again.wait().unwrap().success());
}

#[test]
fn import_reports_bad_rows_and_export_writes_every_link() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("links.csv");
    std::fs::write(
        &file,
        "url,code,status,title,tags\n\
         https://e.com/1,one,301,First,a|b\n\
         javascript:alert(1),two,,,\n\
         https://e.com/3,one,,,\n\
         https://e.com/4,,,,\n\
         https://e.com/5,five,abc,,\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run(control(&dir.path().join("store"))
        .args(["import"])
        .arg(&file));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("imported 2 links"), "{stdout}");
    assert!(stdout.contains("3 rows rejected"), "{stdout}");
    assert!(
        stdout.contains("line 3:") && stdout.contains("line 4:") && stdout.contains("line 6:"),
        "{stdout}"
    );

    let out = dir.path().join("out.jsonl");
    let (ok, _, stderr) = run(control(&dir.path().join("store"))
        .args(["export", "--format", "jsonl", "--output"])
        .arg(&out));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("exported 1 domains and 2 links"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "domain");
    assert_eq!(lines[0]["domain"], "localhost");
    let first = &lines[1];
    assert_eq!(first["kind"], "link");
    assert_eq!(first["code"], "one");
    assert_eq!(first["status"], 301);
    assert_eq!(first["state"], "active");
    assert_eq!(first["tags"], serde_json::json!(["a", "b"]));
    let (ok, csv, _) = run(control(&dir.path().join("store")).args(["export"]));
    assert!(ok);
    assert!(
        csv.starts_with(
            "kind,domain,code,url,status,state,expires_at,forward_query,tags,title,created_at,\
             rules,variants,fallback_url,card,ios,android,max_clicks,password_hash,root_url,not_found_url,\
             https_redirect,hsts\n"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
}

#[test]
fn check_config() {
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/control.toml");
    let (ok, stdout, _) = run(Command::new(env!("CARGO_BIN_EXE_ricochet-control")).args([
        "--config",
        reference,
        "--check-config",
    ]));
    assert!(ok);
    assert!(stdout.contains("listen = \"127.0.0.1:8081\""), "{stdout}");
    let (ok, _, stderr) = run(Command::new(env!("CARGO_BIN_EXE_ricochet-control")).args([
        "--check-config",
        "--bus",
        "http://nope",
    ]));
    assert!(!ok && stderr.contains("bus.url"), "{stderr}");
}
