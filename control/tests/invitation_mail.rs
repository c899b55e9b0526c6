//! Invitation mail over real SMTP: with `accounts.smtp_url` set, an
//! invitation's link also goes to the invited address through a real SMTP
//! server (aiosmtpd from the test venv, on a free port), and the link in the
//! mail is the one that accepts the invitation; an unreachable server leaves
//! the invitation standing and says why it was not mailed.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ricochet_control::test_util::{ApiClient, TestControl, free_port, venv_tool};
use ricochet_model::bus::LocalBus;
use serde_json::json;

/// aiosmtpd printing every message it receives to a file.
struct SmtpServer {
    child: Child,
    port: u16,
    output: tempfile::NamedTempFile,
}

impl SmtpServer {
    fn start() -> Self {
        let port = free_port();
        let output = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(venv_tool("aiosmtpd"))
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::from(output.reopen().unwrap()))
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            port,
            output,
        }
    }

    /// What the server printed, once it holds `needle`; quoted-printable
    /// soft line breaks (long links are wrapped) are joined, as a mail
    /// client would.
    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut raw = String::new();
            self.output
                .reopen()
                .unwrap()
                .read_to_string(&mut raw)
                .unwrap();
            let text = raw.replace("=\r\n", "").replace("=\n", "");
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "no mail with {needle:?}: {text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn control_mailing_to(smtp_url: String) -> TestControl {
    TestControl::start_with(
        move |config| {
            config.accounts.smtp_url = smtp_url;
            config.accounts.smtp_from = "Ricochet <invites@ricochet.test>".into();
            config.accounts.console_url = "https://console.ricochet.test/".into();
        },
        Arc::new(LocalBus::new()),
    )
}

#[test]
fn an_invitation_is_mailed_with_the_link_that_accepts_it() {
    let smtp = SmtpServer::start();
    let test = control_mailing_to(format!("smtp://127.0.0.1:{}", smtp.port));
    let owner = test.owner_client();
    let invited = owner.post(
        "/api/v1/workspaces/default/invitations",
        &json!({"email": "teammate@example.com", "role": "member"}),
    );
    assert_eq!(invited.status, 201, "{}", invited.text);
    assert_eq!(invited.body["mailed"], true, "{}", invited.text);
    assert!(invited.body["mail_error"].is_null());
    let token = invited.body["token"].as_str().unwrap();
    let link = format!("https://console.ricochet.test/invite#{token}");
    assert_eq!(invited.body["url"], link.as_str());

    let mail = smtp.wait_for(token);
    for expected in [
        "From: Ricochet <invites@ricochet.test>",
        "To: teammate@example.com",
        "Subject: Join Default on Ricochet",
        "as member",
        &link,
    ] {
        assert!(mail.contains(expected), "{expected:?} missing from {mail}");
    }
    // The token in the mail is the one that accepts the invitation.
    let mailed_token = mail
        .split("invite#")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let accepted = ApiClient::new(&test.base_url(), None).post(
        "/api/v1/invitations/accept",
        &json!({"token": mailed_token, "display_name": "Teammate", "password": "orchard-velvet-93"}),
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.body["workspace"]["role"], "member");
}

#[test]
fn an_unreachable_smtp_server_leaves_the_invitation_standing() {
    let closed = free_port();
    let test = control_mailing_to(format!("smtp://127.0.0.1:{closed}"));
    let owner = test.owner_client();
    let invited = owner.post(
        "/api/v1/workspaces/default/invitations",
        &json!({"email": "teammate@example.com", "role": "viewer"}),
    );
    assert_eq!(invited.status, 201, "{}", invited.text);
    assert_eq!(invited.body["mailed"], false);
    assert!(
        invited.body["mail_error"]
            .as_str()
            .is_some_and(|e| e.contains("SMTP")),
        "{}",
        invited.text
    );
    let pending = owner.get("/api/v1/workspaces/default/invitations");
    assert_eq!(pending.body["invitations"].as_array().unwrap().len(), 1);
}

#[test]
fn smtp_settings_are_checked_at_start() {
    let mut config = ricochet_control::ControlConfig::default();
    config.accounts.smtp_url = "ftp://mail.example".into();
    let problems = config.validate().unwrap_err();
    assert!(problems.contains("accounts.smtp_url"), "{problems}");
    config.accounts.smtp_url = "smtp://127.0.0.1:25".into();
    let problems = config.validate().unwrap_err();
    assert!(problems.contains("accounts.console_url"), "{problems}");
    config.accounts.console_url = "https://console.example".into();
    config.accounts.smtp_from = "not a mailbox".into();
    let problems = config.validate().unwrap_err();
    assert!(problems.contains("accounts.smtp_from"), "{problems}");
    config.accounts.smtp_from = "Ricochet <r@example.com>".into();
    config.validate().unwrap();
}
