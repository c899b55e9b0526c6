//! The browser harness against a real headless Chromium: it reads the control
//! plane's `/healthz`, sets and deletes cookies, fills and submits a form, takes a
//! screenshot the size of the window and downloads a file.

use std::fmt::Write as _;
use std::time::Duration;

use ricochet_control::test_util::TestControl;
use ricochet_control::test_util::browser::{Browser, BrowserOptions, Cookie, Url};
use serde_json::json;

const CSV: &str = "code,url\nspring,https://example.com/spring\n";

/// A page with a form that greets by name and colour, and a CSV download.
fn form_page() -> String {
    let html = format!(
        r#"<!doctype html><title>harness</title>
<form id="greet" onsubmit="event.preventDefault();
  document.getElementById('greeting').textContent =
    'Hello, ' + this.name.value + ' (' + this.colour.value + ')';">
  <input id="name" name="name" value="placeholder">
  <select id="colour" name="colour">
    <option value="red">Red</option><option value="green">Green</option>
  </select>
  <button type="submit">Greet</button>
</form>
<p id="greeting"></p>
<a id="export" download="links.csv" href="data:text/csv;charset=utf-8,{}">Export</a>"#,
        percent_encode(CSV)
    );
    format!("data:text/html;charset=utf-8,{}", percent_encode(&html))
}

fn percent_encode(text: &str) -> String {
    text.bytes().fold(String::new(), |mut out, byte| {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            write!(out, "%{byte:02X}").unwrap();
        }
        out
    })
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "{} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let number = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (number(16), number(20))
}

#[tokio::test]
async fn chromium_reads_the_control_plane_fills_a_form_and_downloads() -> anyhow::Result<()> {
    let test = TestControl::start();
    let browser = Browser::start_with(BrowserOptions {
        width: 900,
        height: 700,
        ..BrowserOptions::default()
    })
    .await?;

    let healthz = format!("{}/healthz", test.base_url());
    browser.goto(&healthz).await?;
    assert_eq!(browser.text("body").await?.trim(), "ok");
    browser
        .execute("history.pushState(null, '', '?checked=1');", Vec::new())
        .await?;
    let url = browser.wait_for_url("checked=1").await?;
    assert_eq!(url.as_str(), format!("{healthz}?checked=1"));
    browser
        .wait_for_url(|url: &Url| url.path() == "/healthz")
        .await?;

    browser
        .add_cookie(Cookie::new("ricochet_session", "forged"))
        .await?;
    let cookie = browser.cookie("ricochet_session").await?;
    assert_eq!(cookie.as_ref().map(Cookie::value), Some("forged"));
    browser.delete_cookie("ricochet_session").await?;
    assert!(browser.cookie("ricochet_session").await?.is_none());
    browser.add_cookie(Cookie::new("theme", "dark")).await?;
    let expired = Cookie::parse("theme=dark; Expires=Thu, 01 Jan 1970 00:00:01 GMT")?;
    browser.add_cookie(expired.into_owned()).await?;
    assert!(browser.cookie("theme").await?.is_none());

    browser.goto(&form_page()).await?;
    browser.wait_for("#greet").await?;
    browser.fill("#name", "Ada").await?;
    browser.select("#colour", "green").await?;
    browser.click("button[type=submit]").await?;
    let greeting = browser
        .wait_for_text("#greeting", "Hello, Ada (green)")
        .await?;
    assert_eq!(greeting, "Hello, Ada (green)");
    assert!(browser.current_url().await?.as_str().starts_with("data:"));
    assert_eq!(
        browser.attr("#export", "download").await?.as_deref(),
        Some("links.csv")
    );
    let title = browser
        .execute("return document.title + arguments[0];", vec![json!("!")])
        .await?;
    assert_eq!(title, json!("harness!"));

    assert_eq!(browser.viewport().await?, (900, 700));
    browser.set_window_size(640, 480).await?;
    let shots = tempfile::tempdir()?;
    let shot = shots.path().join("form.png");
    browser.screenshot_to(&shot).await?;
    assert_eq!(png_size(&std::fs::read(&shot)?), (640, 480));

    browser.click("#export").await?;
    let csv = browser
        .downloaded("links.csv", Duration::from_secs(10))
        .await?;
    assert_eq!(csv, CSV.as_bytes());

    browser.close().await
}
