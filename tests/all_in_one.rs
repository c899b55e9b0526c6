//! The all-in-one `ricochet` binary, as a new user runs it: it starts on
//! embedded defaults, prints where to point curl, and the printed demo link
//! redirects for a real HTTP client (curl, which does not follow redirects
//! unless asked); the printed API and admin key create links the engine
//! serves at once. A second start reuses the stores.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `ricochet` on `dir` and returns it with the printed lines by label.
fn start(dir: &std::path::Path) -> (Child, HashMap<String, String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ricochet"))
        .args(["--data-dir", dir.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--api-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = HashMap::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
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
    (child, printed)
}

fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (test.sh installs it)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

#[test]
fn starts_prints_a_working_demo_link_and_restarts_on_its_store() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..2 {
        let (child, printed) = start(dir.path());
        let try_it = printed.get("Try it").expect("a curl command is printed");
        let url = try_it.strip_prefix("curl -i ").expect("curl -i URL");
        let text = curl(&["-i", url]);
        assert!(
            text.starts_with("HTTP/1.1 302 Found\r\n"),
            "round {round}: {text}"
        );
        assert!(
            text.contains("Location: https://example.com/?from=ricochet\r\n"),
            "{text}"
        );
        let forwarded = curl(&["-i", &format!("{url}?utm_source=readme")]);
        assert!(
            forwarded
                .contains("Location: https://example.com/?from=ricochet&utm_source=readme\r\n"),
            "{forwarded}"
        );
        assert_eq!(curl(&[printed.get("Health").unwrap()]), "ready\n");
        // The printed owner credentials sign in, and stay in a private file.
        let sign_in = printed
            .get("Sign in")
            .expect("the owner's credentials are printed");
        let (email, rest) = sign_in.split_once(" / ").unwrap();
        let password = rest.split_whitespace().next().unwrap();
        assert!(rest.contains("owner-credentials.txt"), "{sign_in}");
        let credentials = dir.path().join("owner-credentials.txt");
        let kept = std::fs::read_to_string(&credentials).unwrap();
        assert!(kept.contains(&format!("password: {password}\n")), "{kept}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&credentials)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let api = printed
            .get("API")
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap();
        let body = serde_json::json!({"email": email, "password": password}).to_string();
        let signed_in = curl(&[
            "-i",
            &format!("{api}/auth/sign-in"),
            "-H",
            "Content-Type: application/json",
            "-d",
            &body,
        ]);
        assert!(signed_in.starts_with("HTTP/1.1 200 OK\r\n"), "{signed_in}");
        assert!(signed_in.contains("ricochet_session="), "{signed_in}");
        let metrics = curl(&[printed.get("Metrics").unwrap()]);
        assert!(
            metrics.contains("\nricochet_engine_links 1\n"),
            "one demo link: {metrics}"
        );
        stop(child);
    }
}
