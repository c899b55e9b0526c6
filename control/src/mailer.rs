//! Invitation mail over SMTP (`accounts.smtp_url`), when it is configured.
//! `smtp://host:port` speaks plain SMTP (add `?tls=required` for STARTTLS),
//! `smtps://host:port` implicit TLS; `user:password@` in the URL logs in.
//! Sending runs on the caller's (blocking) thread with a 10-second timeout;
//! an invitation is created whether or not its mail goes out.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{Message, SmtpTransport, Transport};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends mail through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the URL's credentials.
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// One invitation to mail.
#[derive(Debug, Clone)]
pub struct InvitationMail<'a> {
    pub to: &'a str,
    pub workspace: &'a str,
    /// The inviter's display name, when a user invited.
    pub inviter: Option<&'a str>,
    pub role: &'a str,
    pub link: &'a str,
    /// RFC 3339.
    pub expires_at: &'a str,
}

impl Mailer {
    /// The mailer `url` and `from` describe; `None` when `url` is empty.
    pub fn new(url: &str, from: &str) -> Result<Option<Self>, String> {
        if url.is_empty() {
            return Ok(None);
        }
        let from: Mailbox = from
            .parse()
            .map_err(|e| format!("accounts.smtp_from {from:?}: {e}"))?;
        let transport = SmtpTransport::from_url(url)
            // The error may repeat the URL, credentials included: leave it out.
            .map_err(|_| "accounts.smtp_url is not a valid smtp:// or smtps:// URL".to_owned())?
            .timeout(Some(TIMEOUT))
            .build();
        Ok(Some(Self { transport, from }))
    }

    /// Mails an invitation link.
    pub fn send_invitation(&self, mail: &InvitationMail<'_>) -> Result<(), String> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| format!("cannot mail {}: {e}", mail.to))?;
        let who = mail.inviter.unwrap_or("An administrator");
        let body = format!(
            "{who} invited you to join the workspace \"{workspace}\" on Ricochet as {role}.\n\n\
             Accept the invitation here (it works once, until {expires}):\n\n  {link}\n\n\
             If you did not expect this, ignore this message.\n",
            workspace = mail.workspace,
            role = mail.role,
            expires = mail.expires_at,
            link = mail.link,
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(format!("Join {} on Ricochet", mail.workspace))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|e| format!("the SMTP server refused or did not answer: {e}"))
    }
}
