//! The all-in-one `ricochet` takes the configuration of both services: each
//! part's file (`--engine-config`, `--control-config`), their
//! `RICOCHET_ENGINE_*` / `RICOCHET_CONTROL_*` environment variables, and its
//! own flags on top; `--check-config` prints both. A GeoIP database given only
//! through the engine's environment variable puts a click's country in the
//! analytics API.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ricochet_control::test_util::ApiClient;
use ricochet_engine::test_util::{eventually, exchange, geo_database};
use serde_json::json;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn ricochet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ricochet"));
    // Settings of the machine running the tests must not leak in.
    for (name, _) in std::env::vars() {
        if name.starts_with("RICOCHET_") {
            command.env_remove(name);
        }
    }
    command
}

/// Stops the child when dropped, so a failed assertion leaves no server behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` and returns it with the lines of its banner by label.
fn start(mut command: Command) -> (Running, HashMap<String, String>) {
    let mut child = Running(
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut printed = HashMap::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((label, value)) = line.trim().split_once(':')
            && !value.is_empty()
        {
            printed.insert(label.trim().to_owned(), value.trim().to_owned());
        }
        if printed.contains_key("Metrics") {
            break;
        }
    }
    assert!(printed.contains_key("Metrics"), "no banner: {printed:?}");
    (child, printed)
}

/// `http://127.0.0.1:8080/demo` → the socket address.
fn address_in(url: &str) -> SocketAddr {
    let rest = url.strip_prefix("http://").unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn check_config_prints_both_parts_with_files_environment_and_flags_layered() {
    let dir = tempfile::tempdir().unwrap();
    let engine = write(
        &dir.path().join("engine.toml"),
        "[server]\nworkers = 3\nlisten = \"127.0.0.1:7000\"\n",
    );
    let control = write(
        &dir.path().join("control.toml"),
        "[links]\ndefault_domain = \"go.example\"\ncode_length = 8\n",
    );
    let output = ricochet()
        .args(["--engine-config", &engine, "--control-config", &control])
        .args(["--listen", "127.0.0.1:7001", "--check-config"])
        .env("RICOCHET_CONTROL_LINKS__CODE_LENGTH", "9")
        .env("RICOCHET_ENGINE_CLICKS__WINDOW_GRACE", "500ms")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "workers = 3",                     // engine file
        "listen = \"127.0.0.1:7001\"",     // flag over the engine file
        "window_grace = \"500ms\"",        // engine environment
        "code_length = 9",                 // control environment over its file
        "default_domain = \"go.example\"", // control file, and the engine follows it
        "listen = \"127.0.0.1:8081\"",     // control default
    ] {
        assert!(stdout.contains(expected), "{expected}: {stdout}");
    }
    assert_eq!(stdout.matches("default_domain = \"go.example\"").count(), 2);

    // The configuration file named by the environment variable of each service
    // works too, and a bad value is refused with the part it belongs to.
    let output = ricochet()
        .arg("--check-config")
        .env("RICOCHET_ENGINE_CONFIG", &engine)
        .env("RICOCHET_ENGINE_CLICKS__GEOIP_DATABASE", "/no/such.mmdb")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("invalid engine configuration") && stderr.contains("geoip_database"),
        "{stderr}"
    );
    let output = ricochet()
        .args(["--check-config", "--control-config", &control])
        .env("RICOCHET_CONTROL_SERVER__LISTN", "127.0.0.1:1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("listn"), "{stderr}");
}

#[test]
fn a_geoip_database_from_the_engine_environment_gives_clicks_their_country() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("geo.mmdb");
    std::fs::write(
        &database,
        geo_database(false, &[("203.0.113.0/24", "NZ", "Wellington")]),
    )
    .unwrap();
    let mut command = ricochet();
    command
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--api-listen", "127.0.0.1:0"])
        .env("RICOCHET_ENGINE_CLICKS__GEOIP_DATABASE", &database)
        .env("RICOCHET_ENGINE_CLICKS__TRUST_FORWARDED_FOR", "true");
    let (_running, printed) = start(command);
    let redirect = address_in(printed["Demo redirect"].split_whitespace().next().unwrap());
    let api_base = printed["API"].split_whitespace().next().unwrap().to_owned();
    let api = ApiClient::new(
        api_base.strip_suffix("/api/v1").unwrap(),
        Some(&printed["Admin API key"]),
    );
    let links = api.get("/api/v1/links?q=demo");
    assert_eq!(links.status, 200, "{}", links.text);
    let id = links.body["links"][0]["id"].as_u64().unwrap();

    let response = exchange(
        redirect,
        format!(
            "GET /demo HTTP/1.1\r\nHost: localhost\r\nUser-Agent: {CHROME}\r\n\
             X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(response.status, 302);

    // The click is written when its 10-second window closes (plus grace).
    let path = format!("/api/v1/links/{id}/analytics/breakdown?dimension=country");
    let expected = json!([{"value": "NZ", "humans": 1, "bots": 0}]);
    let seen = eventually(Duration::from_secs(40), || {
        api.get(&path).body["values"] == expected
    });
    assert!(seen, "{}", api.get(&path).text);
}
