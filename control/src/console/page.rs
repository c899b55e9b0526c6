//! What every console page shares: the layout's context (user, workspace,
//! switcher, CSRF token, notice), rendering with the console's security
//! headers, redirects after a form, and the notices they carry.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use super::session::Console;
use crate::keys::Scope;

/// Headers of every page: no caching of signed-in pages, no framing, only
/// the console's own scripts and styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'; connect-src 'self'";

/// The layout's context.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The page's title (escaped by the template).
    pub title: String,
    /// The navigation entry to mark as current.
    pub section: &'static str,
    /// Empty on pages for signed-out visitors.
    pub user_name: String,
    pub user_email: String,
    pub workspace_id: String,
    pub workspace_name: String,
    pub role: String,
    pub workspaces: Vec<WorkspaceChoice>,
    pub csrf: String,
    /// A message about the last action, shown once.
    pub notice: Option<String>,
    /// The user may manage members and API keys.
    pub can_admin: bool,
    /// The user may create and edit links and domains.
    pub can_write: bool,
}

/// A workspace in the switcher.
#[derive(Debug, Clone)]
pub struct WorkspaceChoice {
    pub id: String,
    pub name: String,
    pub role: String,
    pub current: bool,
}

impl Layout {
    /// The layout of a signed-in page.
    pub fn of(console: &Console, title: impl Into<String>, section: &'static str) -> Self {
        Self {
            title: title.into(),
            section,
            user_name: console.user.display_name.clone(),
            user_email: console.user.email.clone(),
            workspace_id: console.caller.workspace.id.clone(),
            workspace_name: console.caller.workspace.name.clone(),
            role: console.caller.role.as_str().to_owned(),
            workspaces: console
                .workspaces
                .iter()
                .map(|(workspace, role)| WorkspaceChoice {
                    id: workspace.id.clone(),
                    name: workspace.name.clone(),
                    role: role.as_str().to_owned(),
                    current: workspace.id == console.caller.workspace.id,
                })
                .collect(),
            csrf: console.csrf.clone(),
            notice: None,
            can_admin: console.caller.allows(Scope::Admin),
            can_write: console.caller.allows(Scope::LinksWrite),
        }
    }

    /// The layout of a page for signed-out visitors.
    pub fn public(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            ..Self::default()
        }
    }

    /// This layout with the notice a redirect asked for (`?notice=`).
    pub fn with_notice(mut self, code: Option<&str>) -> Self {
        self.notice = code.and_then(notice).map(str::to_owned);
        self
    }
}

/// The text of a notice code. Only known codes show anything, so a crafted
/// URL cannot put words in the console's mouth.
pub fn notice(code: &str) -> Option<&'static str> {
    Some(match code {
        "link-created" => "Link created.",
        "link-saved" => "Link saved.",
        "page-created" => "Page created: add its items below.",
        "page-saved" => "Page saved.",
        "page-removed" => "Page removed.",
        "links-updated" => "Links updated.",
        "domain-added" => "Domain added. Create the DNS record below, then verify.",
        "domain-verified" => "Domain verified.",
        "domain-check-failed" => "The record was not found yet; DNS changes can take a while.",
        "domain-removed" => "Domain removed.",
        "key-revoked" => "API key revoked.",
        "webhook-saved" => "Endpoint saved.",
        "webhook-removed" => "Endpoint removed.",
        "webhook-test-sent" => "Test event sent: it shows under recent deliveries.",
        "delivery-redelivered" => "Delivery sent again.",
        "member-updated" => "Member updated.",
        "member-removed" => "Member removed.",
        "invitation-revoked" => "Invitation revoked.",
        "settings-saved" => "Settings saved.",
        "password-changed" => "Password changed; your other sessions were ended.",
        "session-ended" => "Session ended.",
        "workspace-switched" => "Switched workspace.",
        "workspace-created" => "Workspace created.",
        "invitation-accepted" => "Invitation accepted: welcome to the workspace.",
        "signed-out" => "Signed out.",
        _ => return None,
    })
}

/// Renders `template` as an HTML page with `status`.
pub fn render(status: u16, template: &impl Template) -> HttpResponse {
    match template.render() {
        Ok(body) => html(status, body),
        Err(error) => {
            tracing::error!(%error, "console template failed");
            html(
                500,
                "<!doctype html><title>Error</title><p>Internal error.</p>".to_owned(),
            )
        }
    }
}

/// An HTML response with the console's headers.
pub fn html(status: u16, body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .body(body)
}

/// 303 to `location` (after a form).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

/// Percent-encodes `text` for a query value.
pub fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A date (milliseconds since the epoch) as people read it, in UTC.
pub fn date_time(millis: i64) -> String {
    let at = crate::api::types::to_datetime(millis);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}
