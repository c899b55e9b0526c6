//! The web console end to end in headless Chromium (WebDriver): an operator
//! signs in, creates a tagged link, finds it by search, follows it through a
//! real engine and sees the click in the chart, downloads its QR code and
//! decodes it back to the short URL, adds a domain and reads its DNS record,
//! creates and revokes an API key, and invites a member who accepts and, as
//! a viewer, is refused what viewers may not do. Hostile names are shown as
//! text, and forged forms, ended sessions and other workspaces' records get
//! clear refusals. The activity page follows the workspace's events live.
//! A link-in-bio page is built in the editor, its preview following the
//! form as one types; its forms are guarded and what it shows is escaped.

use std::time::Duration;

use anyhow::Context as _;
use ricochet_control::config::VerificationMode;
use ricochet_control::test_util::browser::{Browser, BrowserOptions, Cookie};
use ricochet_control::test_util::{ApiClient, ApiResponse, TestControl, free_port};
use ricochet_engine::test_util::{TestEngine, eventually};
use ricochet_model::bus::LocalBus;
use serde_json::json;

/// A desktop browser's user agent: headless Chromium's own counts as a bot.
const DESKTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       Chrome/131.0.0.0 Safari/537.36";

/// A control plane whose short links on the default domain are reached at
/// an engine following it, shipping clicks to it.
struct Stack {
    control: TestControl,
    engine: TestEngine,
    browser: Browser,
}

impl Stack {
    async fn start() -> anyhow::Result<Self> {
        let port = free_port();
        let control = TestControl::start_with(
            |c| {
                c.links.short_url_base = format!("http://127.0.0.1:{port}");
                // Domains are proven by a DNS record; no look-up is made here.
                c.domains.verification = VerificationMode::Dns;
                c.domains.dns_server = format!("127.0.0.1:{}", free_port());
                c.domains.dns_timeout = Duration::from_millis(200);
            },
            std::sync::Arc::new(LocalBus::new()),
        );
        let engine = TestEngine::start_with(|c| {
            c.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
            c.sync.control_url = control.base_url();
            c.sync.cluster_token = control.control().cluster_token().to_owned();
            c.sync.poll_interval = Duration::from_millis(50);
            c.clicks.window_grace = Duration::from_millis(200);
        });
        let browser = Browser::start_with(BrowserOptions {
            user_agent: Some(DESKTOP.to_owned()),
            ..BrowserOptions::default()
        })
        .await?;
        Ok(Self {
            control,
            engine,
            browser,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.control.base_url())
    }

    async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<()> {
        self.browser.goto(&self.url("/console/sign-in")).await?;
        self.browser.fill("#email", email).await?;
        self.browser.fill("#password", password).await?;
        self.browser
            .click("form[action='/console/sign-in'] button")
            .await?;
        self.browser.wait_for_url("/console/links").await?;
        Ok(())
    }

    async fn sign_in_as_owner(&self) -> anyhow::Result<()> {
        let (email, password) = (
            self.control.owner_email.clone(),
            self.control.owner_password.clone(),
        );
        self.sign_in(&email, &password).await
    }

    /// Submits the form of `button`, accepting its confirmation.
    async fn confirm_click(&self, button: &str) -> anyhow::Result<()> {
        self.browser
            .execute("window.confirm = () => true;", vec![])
            .await?;
        self.browser.click(button).await
    }
}

/// The text of the one QR code in a PNG.
fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .expect("a PNG")
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("the code reads").1
}

#[tokio::test]
async fn an_operator_runs_the_console_end_to_end() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let browser = &stack.browser;

    // Signed out, the console sends people to sign in, then back.
    browser.goto(&stack.url("/console/links")).await?;
    browser.wait_for_url("/console/sign-in").await?;
    stack.sign_in_as_owner().await?;

    // A link with tags.
    browser.click("a[href='/console/links/new']").await?;
    browser.wait_for("#url").await?;
    let destination = stack.url("/healthz");
    browser.fill("#url", &destination).await?;
    browser.fill("#code", "spring-sale").await?;
    browser.fill("#tags", "launch, spring").await?;
    browser.click("#link-form button[type=submit]").await?;
    let page = browser.wait_for_url("notice=link-created").await?;
    let id: u64 = page
        .path_segments()
        .and_then(|mut s| s.nth(2))
        .and_then(|s| s.parse().ok())
        .context("the link's page")?;
    let short_url = browser.text("#short-url").await?;
    assert_eq!(
        short_url,
        format!("http://{}/spring-sale", stack.engine.addr())
    );

    // Found by search, and not by another word.
    browser.goto(&stack.url("/console/links")).await?;
    browser.fill("#q", "spring").await?;
    browser.click("form[role=search] button").await?;
    browser.wait_for_text("table.links", "spring-sale").await?;
    assert!(browser.text("table.links").await?.contains("launch"));
    browser.fill("#q", "autumn").await?;
    browser.click("form[role=search] button").await?;
    browser.wait_for_text("main", "No links match").await?;

    // Following the short link goes through the engine to the destination.
    assert!(eventually(Duration::from_secs(5), || stack
        .engine
        .get("/spring-sale", "localhost")
        .status
        == 302));
    browser.goto(&short_url).await?;
    browser.wait_for_text("body", "ok").await?;
    assert_eq!(browser.current_url().await?.as_str(), destination);

    // The click arrives in the chart: one human, drawn as a bar. The engine
    // check above sent no user agent: a bot. The two may have been answered
    // by different workers, whose windows are written one after the other.
    let link_page = stack.url(&format!("/console/links/{id}?range=1h"));
    let (mut humans, mut bots) = (String::new(), String::new());
    for _ in 0..60 {
        browser.goto(&link_page).await?;
        humans = browser.text("#clicks-humans").await?;
        bots = browser.text("#clicks-bots").await?;
        if humans == "1" && bots == "1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(humans, "1", "the click reached the chart");
    assert_eq!(bots, "1", "the engine check reached the chart as a bot");
    let bars = browser
        .execute(
            "return [...document.querySelectorAll('.chart svg rect title')].map(t => t.textContent);",
            vec![],
        )
        .await?;
    let bars: Vec<String> = serde_json::from_value(bars)?;
    assert_eq!(bars.len(), 2, "{bars:?}");
    assert!(bars[0].ends_with(": 1 humans"), "{bars:?}");
    assert!(bars[1].ends_with(": 1 bots"), "{bars:?}");
    assert!(
        browser.text("main").await?.contains("Browser"),
        "a breakdown by browser"
    );

    // The QR code, downloaded as PNG, reads back as the short URL.
    browser.select("#qr-format", "png").await?;
    browser.select("#qr-size", "512").await?;
    browser.click("#qr-download").await?;
    let png = browser
        .downloaded("spring-sale.png", Duration::from_secs(10))
        .await?;
    assert_eq!(decode_qr(&png), short_url);

    // A domain and the exact DNS record to create.
    browser.goto(&stack.url("/console/domains")).await?;
    browser.fill("#domain", "Go.Example.TEST").await?;
    browser
        .click("form[action='/console/domains'] button")
        .await?;
    browser
        .wait_for_url("/console/domains/go.example.test")
        .await?;
    assert_eq!(browser.text("#verification-status").await?, "pending");
    assert_eq!(
        browser.text("#dns-record-name").await?,
        "_ricochet-challenge.go.example.test"
    );
    let api = stack.control.client();
    let domain = api.get("/api/v1/domains/go.example.test");
    assert_eq!(
        browser.text("#dns-record-value").await?,
        domain.body["verification"]["record"]["value"]
            .as_str()
            .unwrap()
    );

    // An API key: its secret shown once, working, then revoked.
    browser.goto(&stack.url("/console/keys")).await?;
    browser.fill("#key-name", "CI").await?;
    browser
        .click("form[action='/console/keys'] button[type=submit]")
        .await?;
    let token = browser.text("#new-key").await?;
    assert!(token.starts_with("rk_"), "{token}");
    let with_key = ApiClient::new(&stack.control.base_url(), Some(&token));
    assert_eq!(with_key.get("/api/v1/links").status, 200);
    browser.goto(&stack.url("/console/keys")).await?;
    assert!(
        !browser.text("main").await?.contains(&token),
        "shown only once"
    );
    stack
        .confirm_click("#keys form[action$='/revoke'] button")
        .await?;
    browser.wait_for_url("notice=key-revoked").await?;
    assert_eq!(with_key.get("/api/v1/links").status, 401);

    // An invitation as a viewer, accepted by a new user.
    browser.goto(&stack.url("/console/members")).await?;
    browser.fill("#invite-email", "viewer@example.test").await?;
    browser.select("#invite-role", "viewer").await?;
    browser
        .click("form[action='/console/members/invite'] button")
        .await?;
    let invitation = browser.text("#invitation-url").await?;
    assert!(
        invitation.starts_with("/console/invite#inv_"),
        "{invitation}"
    );
    browser
        .click("form[action='/console/sign-out'] button")
        .await?;
    browser.wait_for_url("/console/sign-in").await?;
    browser.goto(&stack.url(&invitation)).await?;
    browser.fill("#display_name", "Vera Viewer").await?;
    browser.fill("#password", "Vr7-lantern-quartz-91").await?;
    browser
        .click("form[action='/console/invite'] button")
        .await?;
    browser.wait_for_url("notice=invitation-accepted").await?;
    assert!(browser.text("main").await?.contains("spring-sale"));

    // What a viewer may not do: no buttons, and refusals when asked anyway.
    assert!(!browser.exists("a[href='/console/links/new']").await?);
    assert!(!browser.exists("input[name=id]").await?, "no bulk actions");
    browser.goto(&stack.url("/console/links/new")).await?;
    browser.wait_for_text("h1", "Not allowed").await?;
    browser.goto(&stack.url("/console/keys")).await?;
    browser.wait_for_text("h1", "Not allowed").await?;
    browser
        .goto(&stack.url(&format!("/console/links/{id}/edit")))
        .await?;
    browser.wait_for_text("h1", "Not allowed").await?;
    browser.goto(&stack.url("/console/members")).await?;
    assert!(!browser.exists("#invite-email").await?);
    assert!(browser.text("#members").await?.contains("Vera Viewer"));
    Ok(())
}

#[tokio::test]
async fn hostile_input_is_shown_as_text_and_bad_requests_are_refused_clearly() -> anyhow::Result<()>
{
    let stack = Stack::start().await?;
    let browser = &stack.browser;
    let owner = stack.control.owner_client();
    let hostile = "<img src=x onerror=\"window.pwned=1\"><b id=pwned>x</b>";
    let created = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/", "code": "hostile", "title": hostile,
                "tags": ["<script>window.pwned=2</script>"]}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let workspace = owner.get("/api/v1/auth/session").body["workspace"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let renamed = owner.patch(
        &format!("/api/v1/workspaces/{workspace}"),
        &json!({"name": "<i id=pwned>Acme</i>"}),
    );
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let invited = owner.post(
        &format!("/api/v1/workspaces/{workspace}/invitations"),
        &json!({"email": "mallory@example.test", "role": "member"}),
    );
    assert_eq!(invited.status, 201, "{}", invited.text);
    let accepted = ApiClient::new(&stack.control.base_url(), None).post(
        "/api/v1/invitations/accept",
        &json!({"token": invited.body["token"], "display_name": "<svg onload=window.pwned=3>",
                "password": "Vr7-lantern-quartz-91"}),
    );
    assert_eq!(accepted.status, 200, "{}", accepted.text);

    stack.sign_in_as_owner().await?;
    let id = created.body["id"].as_u64().unwrap();
    for path in [
        "/console/links".to_owned(),
        format!("/console/links/{id}"),
        format!("/console/links/{id}/edit"),
        "/console/members".to_owned(),
        "/console/settings".to_owned(),
    ] {
        browser.goto(&stack.url(&path)).await?;
        browser.wait_for("main").await?;
        let injected = browser
            .execute(
                "return [window.pwned === undefined, document.getElementById('pwned') === null];",
                vec![],
            )
            .await?;
        assert_eq!(injected, json!([true, true]), "markup ran on {path}");
    }
    browser.goto(&stack.url("/console/links")).await?;
    assert!(browser.text("table.links").await?.contains(hostile));
    assert!(
        browser
            .text("#workspace-switch")
            .await?
            .contains("<i id=pwned>Acme</i>")
    );

    // Errors next to their fields, with the form kept.
    browser.goto(&stack.url("/console/links/new")).await?;
    browser.fill("#url", "not a url").await?;
    browser.fill("#title", "kept").await?;
    browser.click("#link-form button[type=submit]").await?;
    let error = browser.wait_for("#url-error").await?;
    assert!(error.text().await?.contains("URL"));
    assert_eq!(
        browser.attr("#url", "aria-invalid").await?.as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.attr("#title", "value").await?.as_deref(),
        Some("kept")
    );
    browser.fill("#url", "https://example.com/").await?;
    browser.fill("#code", "hostile").await?;
    browser.click("#link-form button[type=submit]").await?;
    browser.wait_for("#code-error").await?;
    browser.fill("#code", "").await?;
    browser.fill("#rules", "[{").await?;
    browser.click("#link-form button[type=submit]").await?;
    browser
        .wait_for_text("#rules-error", "not valid JSON")
        .await?;
    browser
        .fill("#rules", r#"[{"conditions":[{"field":"country","op":"in","value":["XX1"]}],"url":"https://example.com/"}]"#)
        .await?;
    browser.click("#link-form button[type=submit]").await?;
    browser.wait_for("#rules-error").await?;

    // A forged CSRF token is refused and changes nothing.
    browser.goto(&stack.url("/console/links/new")).await?;
    browser
        .execute(
            "document.querySelector('#link-form input[name=csrf_token]').value = 'forged';",
            vec![],
        )
        .await?;
    browser.fill("#url", "https://example.com/forged").await?;
    browser.fill("#code", "forged").await?;
    browser.click("#link-form button[type=submit]").await?;
    browser
        .wait_for_text("main", "stale or did not come from this console")
        .await?;
    assert_eq!(
        owner.get("/api/v1/links?q=forged").body["links"],
        json!([]),
        "nothing was created"
    );

    // Another workspace's link is answered as one that does not exist.
    let other = owner.post("/api/v1/workspaces", &json!({"name": "Other"}));
    assert_eq!(other.status, 201, "{}", other.text);
    let other_id = other.body["id"].as_str().unwrap();
    let key = owner.post(
        "/api/v1/keys",
        &json!({"name": "setup", "scopes": ["admin"]}),
    );
    assert_eq!(key.status, 201, "{}", key.text);
    let switched = owner.post(&format!("/api/v1/workspaces/{other_id}/switch"), &json!({}));
    assert_eq!(switched.status, 200, "{}", switched.text);
    let foreign = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/other", "code": "elsewhere"}),
    );
    assert_eq!(foreign.status, 201, "{}", foreign.text);
    browser
        .goto(&stack.url(&format!(
            "/console/links/{}",
            foreign.body["id"].as_u64().unwrap()
        )))
        .await?;
    // The browser's session still acts in the first workspace.
    browser.wait_for_text("h1", "Not found").await?;

    // A forged session cookie, then a deleted one: back to sign in.
    browser.delete_cookie("ricochet_session").await?;
    browser
        .add_cookie(Cookie::new("ricochet_session", "forged.value"))
        .await?;
    browser.goto(&stack.url("/console/links")).await?;
    browser.wait_for_url("expired=1").await?;
    browser
        .wait_for_text("main", "Your session has ended")
        .await?;
    browser.delete_cookie("ricochet_session").await?;
    browser.goto(&stack.url("/console/domains")).await?;
    let url = browser.wait_for_url("/console/sign-in").await?;
    assert!(url.as_str().contains("next=%2Fconsole%2Fdomains"), "{url}");
    Ok(())
}

/// Every form control has a label, and a phone-sized screen needs no
/// sideways scrolling. With `RICOCHET_SCREENSHOT_DIR` set, the main pages
/// are saved there at desktop and phone widths (docs/screenshots).
#[tokio::test]
async fn pages_are_labelled_fit_a_phone_and_can_be_captured() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let browser = &stack.browser;
    let owner = stack.control.owner_client();
    let mut links = Vec::new();
    for (code, title, tags) in [
        ("spring", "Spring sale", json!(["launch", "spring"])),
        ("guide", "Documentation", json!(["docs"])),
        ("jobs", "We are hiring", json!([])),
    ] {
        let created = owner.post(
            "/api/v1/links",
            &json!({"url": format!("https://example.com/{code}?utm_source=newsletter"),
                    "code": code, "title": title, "tags": tags}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
        links.push(created.body["id"].clone());
    }
    let domain = owner.post("/api/v1/domains", &json!({"domain": "go.example.com"}));
    assert_eq!(domain.status, 201, "{}", domain.text);
    let bio_page = owner.post(
        "/api/v1/pages",
        &json!({"handle": "ada", "title": "Ada Lovelace", "bio": "Analyst of engines.",
                "socials": [{"network": "github", "url": "https://github.com/ada"}],
                "items": [{"type": "header", "text": "Reading"},
                          {"type": "link", "link_id": links[1], "label": "The documentation, in full detail"},
                          {"type": "link", "link_id": links[0]}]}),
    );
    assert_eq!(bio_page.status, 201, "{}", bio_page.text);
    let bio_page = bio_page.body["id"].as_u64().unwrap();
    stack.sign_in_as_owner().await?;
    let pages = [
        ("links", "/console/links".to_owned()),
        ("link", "/console/links/2".to_owned()),
        ("new-link", "/console/links/new".to_owned()),
        ("domain", "/console/domains/go.example.com".to_owned()),
        ("members", "/console/members".to_owned()),
        ("keys", "/console/keys".to_owned()),
        ("analytics", "/console/analytics".to_owned()),
        ("settings", "/console/settings".to_owned()),
        ("pages", "/console/pages".to_owned()),
        ("page-editor", format!("/console/pages/{bio_page}/edit")),
    ];
    let target = std::env::var_os("RICOCHET_SCREENSHOT_DIR").map(std::path::PathBuf::from);
    for (width, height, device) in [(1280, 800, "desktop"), (390, 844, "phone")] {
        browser.set_window_size(width, height).await?;
        for (name, path) in &pages {
            browser.goto(&stack.url(path)).await?;
            browser.wait_for("main").await?;
            let unlabelled = browser
                .execute(
                    "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                       .filter(e => !e.hidden && e.labels.length === 0 && !e.getAttribute('aria-label'))
                       .map(e => e.id || e.name);",
                    vec![],
                )
                .await?;
            assert_eq!(unlabelled, json!([]), "controls without a label on {path}");
            let overflow = browser
                .execute(
                    "return document.documentElement.scrollWidth - window.innerWidth;",
                    vec![],
                )
                .await?;
            assert!(
                overflow.as_i64().unwrap_or(1) <= 0,
                "{path} scrolls sideways by {overflow} px at {width} px"
            );
            let png = browser.screenshot().await?;
            assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
            if let Some(dir) = &target {
                std::fs::create_dir_all(dir)?;
                std::fs::write(dir.join(format!("{name}-{device}.png")), &png)?;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_activity_page_follows_the_workspaces_events_live() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let browser = &stack.browser;
    let owner = stack.control.owner_client();
    let before = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/before", "code": "before-page"}),
    );
    assert_eq!(before.status, 201, "{}", before.text);
    stack.sign_in_as_owner().await?;
    browser.goto(&stack.url("/console/activity")).await?;
    // The history, rendered by the server.
    let first = browser.text("#activity li").await?;
    assert!(
        first.contains("link.created") && first.contains("before-page"),
        "{first}"
    );
    browser.wait_for("#activity-state:not([hidden])").await?;
    // Live: a change made elsewhere shows at the top.
    let live = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/live", "code": "live-one"}),
    );
    assert_eq!(live.status, 201, "{}", live.text);
    let top = browser
        .wait_for_text("#activity li:first-child", "live-one")
        .await?;
    assert!(top.starts_with("link.created"), "{top}");
    assert!(
        top.contains("/live-one \u{2192} https://example.com/live"),
        "{top}"
    );
    let deleted = owner.delete(&format!("/api/v1/links/{}", live.body["id"]));
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let top = browser
        .wait_for_text("#activity li:first-child", "link.deleted")
        .await?;
    assert!(top.contains("live-one"), "{top}");
    // Three events listed: the one before, and the two live ones.
    assert_eq!(browser.texts("#activity li").await?.len(), 3);
    Ok(())
}

/// Percent-encodes `text` for a form body.
fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Posts a console form as a browser without script would.
fn post_form(client: &ApiClient, path: &str, fields: &[(&str, &str)]) -> ApiResponse {
    let body = fields
        .iter()
        .map(|(name, value)| format!("{}={}", form_encode(name), form_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    client.send(
        "POST",
        path,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
        &[],
    )
}

/// The `srcdoc` of the editor's preview frame once it contains `needle`.
async fn wait_for_preview(browser: &Browser, needle: &str) -> anyhow::Result<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let srcdoc = browser
            .attr("#page-preview", "srcdoc")
            .await?
            .unwrap_or_default();
        if srcdoc.contains(needle) {
            return Ok(srcdoc);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "the preview never showed {needle:?}: {srcdoc}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_page_is_built_in_the_editor_with_a_live_preview() -> anyhow::Result<()> {
    let stack = Stack::start().await?;
    let browser = &stack.browser;
    let owner = stack.control.owner_client();
    let mut links = Vec::new();
    for (code, title) in [("guide", "Documentation"), ("shop", "Shop")] {
        let created = owner.post(
            "/api/v1/links",
            &json!({"url": format!("https://example.com/{code}"), "code": code, "title": title}),
        );
        assert_eq!(created.status, 201, "{}", created.text);
        links.push(created.body["id"].as_u64().unwrap());
    }
    let (docs, shop) = (links[0], links[1]);
    stack.sign_in_as_owner().await?;

    // A new page from the list, then its editor.
    browser.click("a[href='/console/pages']").await?;
    browser.fill("#handle", "ada").await?;
    browser.fill("#page-title", "Ada").await?;
    browser.click("#new-page button[type=submit]").await?;
    let editor = browser.wait_for_url("notice=page-created").await?;
    let id: u64 = editor
        .path_segments()
        .and_then(|mut s| s.nth(2))
        .and_then(|s| s.parse().ok())
        .context("the page's editor")?;
    assert!(editor.path().ends_with("/edit"), "{editor}");

    // Two links and a heading, put in order by their positions.
    browser.select("#item_0_link", &docs.to_string()).await?;
    browser.fill("#item_0_label", "Read the docs").await?;
    browser.fill("#item_0_position", "3").await?;
    browser.select("#item_1_type", "header").await?;
    browser.fill("#item_1_label", "Elsewhere").await?;
    browser.fill("#item_1_position", "1").await?;
    browser.select("#item_2_link", &shop.to_string()).await?;
    browser.fill("#item_2_position", "2").await?;
    browser.click("#save-page").await?;
    browser.wait_for_url("notice=page-saved").await?;
    browser.wait_for_text("main", "Page saved.").await?;
    let page = owner.get(&format!("/api/v1/pages/{id}"));
    assert_eq!(page.status, 200, "{}", page.text);
    let items = page.body["items"].as_array().context("items")?;
    let stored: Vec<_> = items
        .iter()
        .map(|i| {
            (
                i["type"].clone(),
                i["link_id"].clone(),
                i["label"].clone(),
                i["text"].clone(),
            )
        })
        .collect();
    assert_eq!(
        stored,
        [
            (
                json!("header"),
                json!(null),
                json!(null),
                json!("Elsewhere")
            ),
            (json!("link"), json!(shop), json!(null), json!(null)),
            (
                json!("link"),
                json!(docs),
                json!("Read the docs"),
                json!(null)
            ),
        ]
    );
    // The editor shows them in that order, with empty rows for more.
    assert_eq!(
        browser.attr("#item_0_label", "value").await?.as_deref(),
        Some("Elsewhere")
    );
    assert!(browser.exists("#item_5_link").await?);
    assert!(!browser.exists("#item_6_link").await?);

    // Typing updates the preview, which renders with the page's own styles;
    // nothing is saved.
    wait_for_preview(browser, "<h1>Ada</h1>").await?;
    browser.fill("#title", "Ada Lovelace").await?;
    let srcdoc = wait_for_preview(browser, "<h1>Ada Lovelace</h1>").await?;
    assert!(srcdoc.contains("Read the docs"), "{srcdoc}");
    browser.client().enter_frame(0).await?;
    assert_eq!(browser.text("h1").await?, "Ada Lovelace");
    assert_eq!(
        browser.texts(".items li").await?,
        ["Elsewhere", "Shop", "Read the docs"]
    );
    let width = browser
        .wait_for("main")
        .await?
        .css_value("max-width")
        .await?;
    assert_eq!(width, "576px", "the page's inline stylesheet applies");
    browser.client().enter_parent_frame().await?;
    let stored = owner.get(&format!("/api/v1/pages/{id}"));
    assert_eq!(stored.body["title"], "Ada");

    // The Preview button (the way without script) fills the frame too.
    browser
        .execute(
            "document.getElementById('title').value = 'Set without events';",
            vec![],
        )
        .await?;
    browser.click("#preview-page").await?;
    browser.client().enter_frame(0).await?;
    browser.wait_for_text("h1", "Set without events").await?;
    browser.client().enter_parent_frame().await?;

    // A bad value: the preview says which field, and saving puts the error
    // next to it, keeps what was typed and stores nothing.
    browser.fill("#title", "Ada Lovelace").await?;
    browser.fill("#avatar_url", "javascript:x").await?;
    wait_for_preview(browser, "Avatar image URL: must be an http(s) URL").await?;
    browser.click("#save-page").await?;
    let error = browser.wait_for("#avatar_url-error").await?;
    assert!(error.text().await?.contains("http(s) URL"));
    assert_eq!(
        browser
            .attr("#avatar_url", "aria-invalid")
            .await?
            .as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.attr("#avatar_url", "value").await?.as_deref(),
        Some("javascript:x")
    );
    assert_eq!(
        browser.attr("#title", "value").await?.as_deref(),
        Some("Ada Lovelace")
    );
    let stored = owner.get(&format!("/api/v1/pages/{id}"));
    assert_eq!(stored.body["title"], "Ada");
    assert_eq!(stored.body["avatar_url"], json!(null));

    // The page is served, and listed with its address.
    browser.goto(&stack.url("/console/pages")).await?;
    let listed = browser.text("#pages").await?;
    assert!(
        listed.contains(&format!("http://{}/ada", stack.engine.addr())),
        "{listed}"
    );
    assert!(listed.contains("live"), "{listed}");
    Ok(())
}

#[tokio::test]
async fn the_page_editor_escapes_what_it_shows_and_guards_its_forms() -> anyhow::Result<()> {
    let control = TestControl::start();
    let owner = control.owner_client().without_redirects();
    let csrf = owner.csrf.clone().context("a CSRF token")?;
    let link = owner.post(
        "/api/v1/links",
        &json!({"url": "https://example.com/a", "code": "a-link", "title": "A link"}),
    );
    assert_eq!(link.status, 201, "{}", link.text);
    let link_id = link.body["id"].as_u64().unwrap().to_string();
    let hostile = "\"><script>alert(1)</script>";
    let created = owner.post(
        "/api/v1/pages",
        &json!({"handle": "ada", "title": hostile, "avatar_url": "https://img.example/ada.png"}),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.body["id"].as_u64().unwrap();
    let stored = || owner.get(&format!("/api/v1/pages/{id}")).body;

    // The hostile title is text in the list, the editor and its preview.
    for path in [
        "/console/pages".to_owned(),
        format!("/console/pages/{id}/edit"),
    ] {
        let answer = owner.get(&path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text);
        assert!(
            answer
                .text
                .contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{path}: {}",
            answer.text
        );
        assert!(!answer.text.contains("<script>alert(1)"), "{path}");
    }
    let editor = owner.get(&format!("/console/pages/{id}/edit"));
    let policy = editor.header("content-security-policy").unwrap_or("");
    assert!(policy.contains("frame-src 'self'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    // The stored page, rendered into the frame's srcdoc (escaped twice).
    assert!(
        editor.text.contains("&#38;lt;script&#38;gt;alert(1)"),
        "{}",
        editor.text
    );

    // The preview: the page the form describes, sandboxed, stored nowhere.
    let preview = format!("/console/pages/{id}/preview");
    fn fields<'a>(csrf: &'a str, avatar: &'a str, link: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("csrf_token", csrf),
            ("title", "Preview <b>title</b>"),
            ("avatar_url", avatar),
            ("theme_preset", "ocean"),
            ("theme_appearance", "dark"),
            ("item_0_id", ""),
            ("item_0_type", "link"),
            ("item_0_link", link),
            ("item_0_label", "Read it"),
            ("item_0_position", "1"),
        ]
    }
    let form = fields(&csrf, "", &link_id);
    let answer = post_form(&owner, &preview, &form);
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(
        answer
            .header("content-type")
            .unwrap_or("")
            .starts_with("text/html")
    );
    assert_eq!(
        answer.header("content-security-policy"),
        Some(
            "default-src 'none'; style-src 'unsafe-inline'; img-src http: https:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox"
        )
    );
    assert_eq!(answer.header("x-frame-options"), Some("SAMEORIGIN"));
    assert!(
        answer
            .text
            .contains("<h1>Preview &lt;b&gt;title&lt;/b&gt;</h1>"),
        "{}",
        answer.text
    );
    assert!(answer.text.contains(">Read it</a>"), "{}", answer.text);
    assert_eq!(stored()["title"], hostile, "a preview stores nothing");
    // Refused without the session's CSRF token, or with another one.
    for token in ["", "forged"] {
        let form = fields(token, "", &link_id);
        let refused = post_form(&owner.with_csrf(None), &preview, &form);
        assert_eq!(refused.status, 403, "{token:?}: {}", refused.text);
        assert!(
            refused
                .text
                .contains("stale or did not come from this console")
        );
    }
    let signed_out = ApiClient::new(&control.base_url(), None).without_redirects();
    let refused = post_form(&signed_out, &preview, &fields(&csrf, "", &link_id));
    assert_eq!(refused.status, 303);
    // A bad value answers 400 naming the field, escaped, for the frame.
    let form = fields(&csrf, "javascript:<x>", &link_id);
    let refused = post_form(&owner, &preview, &form);
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused
            .text
            .contains("Avatar image URL: must be an http(s) URL"),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains("<x>"), "{}", refused.text);
    assert!(
        refused
            .header("content-security-policy")
            .is_some_and(|p| p.ends_with("sandbox"))
    );

    // Saving a bad value: the error next to its field (on the row it came
    // from), what was typed kept, nothing stored.
    let edit = format!("/console/pages/{id}/edit");
    let form = fields(&csrf, "javascript:x", &link_id);
    let refused = post_form(&owner, &edit, &form);
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused
            .text
            .contains(r#"aria-invalid="true" aria-describedby="avatar_url-error""#)
    );
    assert!(
        refused
            .text
            .contains(r#"<p class="field-error" id="avatar_url-error">"#)
    );
    assert!(refused.text.contains(r#"value="javascript:x""#));
    let long = "h".repeat(101);
    let refused = post_form(
        &owner,
        &edit,
        &[
            ("csrf_token", &csrf),
            ("title", "Ada"),
            ("item_0_type", "header"),
            ("item_0_label", "Fine"),
            ("item_0_position", "2"),
            ("item_1_type", "header"),
            ("item_1_label", &long),
            ("item_1_position", "1"),
        ],
    );
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused
            .text
            .contains(r#"<p class="field-error" id="item_1_label-error">"#),
        "{}",
        refused.text
    );
    assert!(!refused.text.contains(r#"id="item_0_label-error""#));
    let page = stored();
    assert_eq!(page["title"], hostile);
    assert_eq!(page["avatar_url"], "https://img.example/ada.png");
    assert_eq!(page["items"], json!([]));
    let refused = post_form(&owner, &edit, &[("title", "No token")]);
    assert_eq!(refused.status, 403);
    assert_eq!(stored()["title"], hostile);

    // A good save redirects to the editor with a notice.
    let saved = post_form(
        &owner,
        &edit,
        &[
            ("csrf_token", &csrf),
            ("title", "Ada"),
            ("avatar_url", "https://img.example/ada.png"),
            ("social_github", "https://github.com/ada"),
            ("social_email", "ada@example.org"),
            ("custom_colors", "on"),
            ("color_background", "#000000"),
            ("color_text", "#ffffff"),
            ("color_button", "#112233"),
            ("color_button_text", "#ffffff"),
            ("item_0_type", "link"),
            ("item_0_link", &link_id),
            ("item_0_position", "1"),
            ("item_0_from", "2030-01-31T18:00"),
        ],
    );
    assert_eq!(saved.status, 303, "{}", saved.text);
    let location = format!("{edit}?notice=page-saved");
    assert_eq!(saved.header("location"), Some(location.as_str()));
    let page = stored();
    assert_eq!(page["title"], "Ada");
    assert_eq!(page["theme"]["colors"]["button"], "#112233");
    assert_eq!(
        page["socials"],
        json!([{"network": "github", "url": "https://github.com/ada"},
               {"network": "email", "url": "mailto:ada@example.org"}])
    );
    assert_eq!(page["items"][0]["visible_from"], "2030-01-31T18:00:00Z");
    let editor = owner.get(&format!("{edit}?notice=page-saved"));
    assert!(editor.text.contains("Page saved."));
    assert!(editor.text.contains(r#"value="2030-01-31T18:00""#));

    // The QR code of its address, and removal (asked with the token only).
    let qr = owner.get(&format!("/console/pages/{id}/qr"));
    assert_eq!(qr.status, 200, "{}", qr.text);
    assert_eq!(qr.header("content-type"), Some("image/svg+xml"));
    assert!(qr.text.contains("<svg"), "{}", qr.text);
    let remove = format!("/console/pages/{id}/delete");
    assert_eq!(post_form(&owner, &remove, &[]).status, 403);
    assert_eq!(owner.get(&format!("/api/v1/pages/{id}")).status, 200);
    let removed = post_form(&owner, &remove, &[("csrf_token", &csrf)]);
    assert_eq!(removed.status, 303, "{}", removed.text);
    assert_eq!(
        removed.header("location"),
        Some("/console/pages?notice=page-removed")
    );
    assert_eq!(owner.get(&format!("/api/v1/pages/{id}")).status, 404);
    let list = owner.get("/console/pages?notice=page-removed");
    assert!(list.text.contains("Page removed."));
    assert!(list.text.contains("No pages yet."));
    Ok(())
}
