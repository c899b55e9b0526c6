//! A real headless Chromium for the web console's end-to-end tests: chromedriver
//! on a free port, a WebDriver session through fantoccini, helpers that poll (never
//! sleep) with bounded waits, and a download directory tests read files from.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The cookie type of [`Browser::cookie`] and [`Browser::add_cookie`]:
/// `Cookie::new("name", "value")`, or `Cookie::parse("name=value; Max-Age=0")`.
pub use fantoccini::cookies::Cookie;
pub use url::Url;

/// How long chromedriver may take to answer `/status` as ready.
const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long Chromium may take to start and open the session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// The viewport and how long helpers wait.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The page's `innerWidth` and `innerHeight` (the window is larger).
    pub width: u32,
    pub height: u32,
    /// How long every waiting helper (and a page load) may take.
    pub timeout: Duration,
    /// The `User-Agent` to send instead of headless Chromium's own (which
    /// bot detection rightly counts as a bot).
    pub user_agent: Option<String>,
}

impl Default for BrowserOptions {
    fn default() -> Self {
        Self {
            width: 1280,
            height: 800,
            timeout: Duration::from_secs(10),
            user_agent: None,
        }
    }
}

/// Headless Chromium driven through its own chromedriver. Both stop when this
/// is dropped (or [`Browser::close`]d); the profile and downloads are temporary.
///
/// Binaries: `RICOCHET_CHROMIUM` and `RICOCHET_CHROMEDRIVER` when set, else
/// `chromium` and `chromedriver` on `PATH` (`scripts/install-test-deps.sh`).
pub struct Browser {
    /// Always `Some` until `close` takes it.
    client: Option<Client>,
    /// The WebDriver session to end on drop, until `close` has ended it.
    session: Option<String>,
    driver: Child,
    driver_url: String,
    /// Holds `profile/`, `downloads/`, `chromedriver.out` (its stdout and
    /// stderr) and `chromedriver.log` (its log, with Chromium's stderr).
    dir: TempDir,
    timeout: Duration,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("driver_url", &self.driver_url)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// What a condition a helper waits for tells the next poll.
enum Pending {
    /// Not yet: try again; the observation goes into the timeout error.
    Retry(String),
    /// Waiting cannot help (a bad selector, a lost session).
    Fatal(anyhow::Error),
}

impl From<CmdError> for Pending {
    fn from(error: CmdError) -> Self {
        let transient = error.is_no_such_element()
            || error.is_stale_element_reference()
            || error.is_element_not_interactable()
            || error.is_invalid_element_state()
            || matches!(&error, CmdError::Standard(e) if e.error == ErrorStatus::ElementClickIntercepted);
        if transient {
            Pending::Retry(first_line(&error.to_string()).to_owned())
        } else {
            Pending::Fatal(error.into())
        }
    }
}

/// What [`Browser::wait_for_url`] waits for: a `&str` the URL contains, or a
/// predicate on the [`Url`].
pub trait UrlCondition {
    fn holds(&self, url: &Url) -> bool;
    /// For the timeout error.
    fn describe(&self) -> String;
}

impl UrlCondition for &str {
    fn holds(&self, url: &Url) -> bool {
        url.as_str().contains(*self)
    }

    fn describe(&self) -> String {
        format!("a URL containing {self:?}")
    }
}

impl<F: Fn(&Url) -> bool> UrlCondition for F {
    fn holds(&self, url: &Url) -> bool {
        self(url)
    }

    fn describe(&self) -> String {
        "a URL the predicate accepts".to_owned()
    }
}

impl Browser {
    /// A 1280x800 viewport, 10 s waits.
    pub async fn start() -> Result<Self> {
        Self::start_with(BrowserOptions::default()).await
    }

    /// Starts chromedriver (on a port it picks and prints, so no race for a
    /// free one), waits for its `/status`, and opens a session.
    pub async fn start_with(options: BrowserOptions) -> Result<Self> {
        let chromium = binary("RICOCHET_CHROMIUM", "chromium")?;
        let chromedriver = binary("RICOCHET_CHROMEDRIVER", "chromedriver")?;
        let dir = tempfile::Builder::new()
            .prefix("ricochet-browser-")
            .tempdir()
            .context("temporary directory for the browser")?;
        for sub in ["profile", "downloads"] {
            std::fs::create_dir(dir.path().join(sub))
                .with_context(|| format!("creating {}", dir.path().join(sub).display()))?;
        }
        let output = File::create(dir.path().join("chromedriver.out"))
            .context("creating chromedriver.out")?;
        let driver = Command::new(&chromedriver)
            .arg("--port=0")
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .arg("--enable-chrome-logs")
            .stdin(Stdio::null())
            .stdout(output.try_clone().context("chromedriver.out")?)
            .stderr(output)
            .spawn()
            .with_context(|| format!("cannot run {}", chromedriver.display()))?;
        // From here on, dropping `browser` kills chromedriver.
        let mut browser = Self {
            client: None,
            session: None,
            driver,
            driver_url: String::new(),
            dir,
            timeout: options.timeout,
        };
        browser.driver_url = browser.await_driver().await?;
        browser.open_session(&chromium, &options).await?;
        Ok(browser)
    }

    /// Polls chromedriver's log for its port, then `/status` until ready.
    async fn await_driver(&mut self) -> Result<String> {
        let deadline = Instant::now() + DRIVER_READY_TIMEOUT;
        let mut last = "no port printed yet".to_owned();
        loop {
            if let Some(status) = self.driver.try_wait().context("chromedriver's status")? {
                bail!(
                    "chromedriver exited ({status}) before it was ready; its log:\n{}",
                    self.driver_log()
                );
            }
            let output = std::fs::read_to_string(self.dir.path().join("chromedriver.out"));
            if let Some(port) = printed_port(&output.unwrap_or_default()) {
                let url = format!("http://127.0.0.1:{port}");
                match driver_ready(url.clone()).await {
                    Ok(()) => return Ok(url),
                    Err(error) => last = format!("{error:#}"),
                }
            }
            if Instant::now() >= deadline {
                bail!(
                    "chromedriver was not ready after {DRIVER_READY_TIMEOUT:?} (last: {last}); its log:\n{}",
                    self.driver_log()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn open_session(&mut self, chromium: &Path, options: &BrowserOptions) -> Result<()> {
        let profile = self.dir.path().join("profile");
        let timeout_ms = u64::try_from(options.timeout.as_millis()).unwrap_or(u64::MAX);
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={},{}", options.width, options.height),
            format!("--user-data-dir={}", profile.display()),
        ];
        if let Some(agent) = &options.user_agent {
            args.push(format!("--user-agent={agent}"));
        }
        let capabilities = json!({
            "browserName": "chrome",
            "timeouts": {"pageLoad": timeout_ms, "script": timeout_ms, "implicit": 0},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": args,
                "prefs": {
                    "download.default_directory": self.downloads_dir(),
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                },
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let mut builder = ClientBuilder::new(HttpConnector::new());
        builder.capabilities(Capabilities::from(capabilities));
        let client =
            match tokio::time::timeout(SESSION_TIMEOUT, builder.connect(&self.driver_url)).await {
                Ok(Ok(client)) => client,
                Ok(Err(error)) => bail!(
                    "chromedriver could not start {} ({error}); its log:\n{}",
                    chromium.display(),
                    self.driver_log()
                ),
                Err(_) => bail!(
                    "chromedriver did not open a session within {SESSION_TIMEOUT:?}; its log:\n{}",
                    self.driver_log()
                ),
            };
        self.session = client.session_id().await.context("the session id")?;
        self.client = Some(client);
        self.set_window_size(options.width, options.height).await
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("open until close()")
    }

    /// Where downloads land.
    pub fn downloads_dir(&self) -> PathBuf {
        self.dir.path().join("downloads")
    }

    /// chromedriver's output so far, then the last lines of its log (which
    /// holds Chromium's command line and stderr).
    pub fn driver_log(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        let mut text = read("chromedriver.out").unwrap_or_default();
        let log = read("chromedriver.log").unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        if !tail.is_empty() {
            text.push_str("… chromedriver.log ends:\n");
        }
        for line in tail {
            text.push_str(&shortened(line));
            text.push('\n');
        }
        text
    }

    /// How long the waiting helpers wait from now on (page loads keep the
    /// start's timeout).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Calls `attempt` until it succeeds, fails for good, or the timeout
    /// passes; the error names `what` was awaited, the page and the last observation.
    async fn poll<T>(
        &self,
        what: &str,
        mut attempt: impl AsyncFnMut(&Client) -> Result<T, Pending>,
    ) -> Result<T> {
        let client = self.client();
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = match attempt(client).await {
                Ok(value) => return Ok(value),
                Err(Pending::Fatal(error)) => return Err(error.context(format!("awaiting {what}"))),
                Err(Pending::Retry(last)) => last,
            };
            if Instant::now() >= deadline {
                let page = client.current_url().await.map_or_else(
                    |e| format!("an unknown page ({e})"),
                    |url| shortened(url.as_str()),
                );
                bail!(
                    "timed out after {:?} awaiting {what} on {page} (last: {last})",
                    self.timeout
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Loads `url` and waits for its load event (bounded by the timeout).
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client()
            .goto(url)
            .await
            .with_context(|| format!("loading {}", shortened(url)))
    }

    /// The first element matching `css` once it is displayed.
    pub async fn wait_for(&self, css: &str) -> Result<Element> {
        self.poll(&format!("`{css}` to be displayed"), async |client| {
            let element = client.find(Locator::Css(css)).await?;
            if element.is_displayed().await? {
                Ok(element)
            } else {
                Err(Pending::Retry("present but not displayed".to_owned()))
            }
        })
        .await
    }

    /// Waits until no element matches `css`.
    pub async fn wait_gone(&self, css: &str) -> Result<()> {
        self.poll(&format!("`{css}` to be gone"), async |client| match client
            .find_all(Locator::Css(css))
            .await?
            .len()
        {
            0 => Ok(()),
            n => Err(Pending::Retry(format!("{n} still present"))),
        })
        .await
    }

    /// Whether an element matches `css` now (no waiting).
    pub async fn exists(&self, css: &str) -> Result<bool> {
        let found = self.client().find_all(Locator::Css(css)).await;
        Ok(!found
            .with_context(|| format!("finding `{css}`"))?
            .is_empty())
    }

    /// Clicks the first element matching `css` once it can be clicked.
    pub async fn click(&self, css: &str) -> Result<()> {
        self.poll(&format!("`{css}` to be clicked"), async |client| {
            client.find(Locator::Css(css)).await?.click().await?;
            Ok(())
        })
        .await
    }

    /// Clears the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        self.poll(&format!("`{css}` to be filled"), async |client| {
            let field = client.find(Locator::Css(css)).await?;
            field.clear().await?;
            field.send_keys(text).await?;
            Ok(())
        })
        .await
    }

    /// Picks the option with `value` in the `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) -> Result<()> {
        self.poll(&format!("`{css}` to select {value:?}"), async |client| {
            let select = client.find(Locator::Css(css)).await?;
            select.select_by_value(value).await?;
            match select.prop("value").await? {
                Some(chosen) if chosen == value => Ok(()),
                chosen => Err(Pending::Retry(format!("value is {chosen:?}"))),
            }
        })
        .await
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> Result<String> {
        self.poll(&format!("`{css}` to read its text"), async |client| {
            Ok(client.find(Locator::Css(css)).await?.text().await?)
        })
        .await
    }

    /// The rendered texts of every element matching `css` now (no waiting:
    /// [`Browser::wait_for`] one first).
    pub async fn texts(&self, css: &str) -> Result<Vec<String>> {
        let mut texts = Vec::new();
        let elements = self.client().find_all(Locator::Css(css)).await;
        for element in elements.with_context(|| format!("finding `{css}`"))? {
            texts.push(element.text().await.with_context(|| format!("`{css}`"))?);
        }
        Ok(texts)
    }

    /// An attribute of the first element matching `css` (`None` when unset).
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>> {
        self.poll(&format!("`{css}` to read `{name}`"), async |client| {
            Ok(client.find(Locator::Css(css)).await?.attr(name).await?)
        })
        .await
    }

    pub async fn current_url(&self) -> Result<Url> {
        self.client().current_url().await.context("the current URL")
    }

    /// Waits until the text of the element matching `css` contains `needle`;
    /// returns the whole text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> Result<String> {
        self.poll(&format!("`{css}` to contain {needle:?}"), async |client| {
            let text = client.find(Locator::Css(css)).await?.text().await?;
            if text.contains(needle) {
                Ok(text)
            } else {
                Err(Pending::Retry(format!("its text was {text:?}")))
            }
        })
        .await
    }

    /// Waits until the current URL meets `condition` (a substring or a
    /// predicate); returns it.
    pub async fn wait_for_url(&self, condition: impl UrlCondition) -> Result<Url> {
        self.poll(&condition.describe(), async |client| {
            let url = client.current_url().await?;
            if condition.holds(&url) {
                Ok(url)
            } else {
                Err(Pending::Retry(format!(
                    "the URL was {}",
                    shortened(url.as_str())
                )))
            }
        })
        .await
    }

    /// Runs `script` as a function body (`arguments[0]`, …; `return` a value).
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.client()
            .execute(script, args)
            .await
            .with_context(|| format!("running {script:?}"))
    }

    /// Sizes the window so that the page's viewport (`innerWidth` x
    /// `innerHeight`: what layouts and screenshots see) is `width` x `height`;
    /// headless Chromium's window has a frame around it.
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<()> {
        let client = self.client();
        let context = || format!("sizing the viewport to {width}x{height}");
        client
            .set_window_size(width, height)
            .await
            .with_context(context)?;
        let (inner_width, inner_height) = self.viewport().await?;
        if (inner_width, inner_height) == (width, height) {
            return Ok(());
        }
        let outer_width = width + width.saturating_sub(inner_width);
        let outer_height = height + height.saturating_sub(inner_height);
        client
            .set_window_size(outer_width, outer_height)
            .await
            .with_context(context)?;
        let viewport = self.viewport().await?;
        ensure!(
            viewport == (width, height),
            "{}: a {outer_width}x{outer_height} window has a {}x{} viewport",
            context(),
            viewport.0,
            viewport.1
        );
        Ok(())
    }

    /// The page's `innerWidth` and `innerHeight`.
    pub async fn viewport(&self) -> Result<(u32, u32)> {
        let size = self
            .execute("return [innerWidth, innerHeight];", Vec::new())
            .await?;
        let side = |i: usize| size[i].as_u64().and_then(|n| u32::try_from(n).ok());
        side(0)
            .zip(side(1))
            .with_context(|| format!("the viewport's size from {size}"))
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        self.client()
            .screenshot()
            .await
            .context("taking a screenshot")
    }

    /// Writes a PNG of the viewport to `path` (creating its folder).
    pub async fn screenshot_to(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let png = self.screenshot().await?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// The cookie `name` the current page can see, if any.
    pub async fn cookie(&self, name: &str) -> Result<Option<Cookie<'static>>> {
        let cookies = self.client().get_all_cookies().await;
        Ok(cookies
            .context("reading cookies")?
            .into_iter()
            .find(|cookie| cookie.name() == name))
    }

    /// Sets a cookie for the current page's site (go there first). Unset
    /// attributes default to the page's host, `Path=/` and `SameSite=Lax`
    /// (chromedriver refuses a null domain, Chromium `SameSite=None` without `Secure`).
    pub async fn add_cookie(&self, mut cookie: Cookie<'static>) -> Result<()> {
        let name = cookie.name().to_owned();
        if cookie.domain().is_none() {
            let page = self.current_url().await?;
            let host = page
                .host_str()
                .with_context(|| format!("cookie {name} needs a page with a host, not {page}"))?;
            cookie.set_domain(host.to_owned());
        }
        if cookie.path().is_none() {
            cookie.set_path("/");
        }
        if cookie.same_site().is_none() {
            let lax = Cookie::parse("_=_; SameSite=Lax")
                .ok()
                .and_then(|c| c.same_site());
            cookie.set_same_site(lax);
        }
        self.client()
            .add_cookie(cookie)
            .await
            .with_context(|| format!("adding cookie {name}"))
    }

    pub async fn delete_cookie(&self, name: &str) -> Result<()> {
        self.client()
            .delete_cookie(name)
            .await
            .with_context(|| format!("deleting cookie {name}"))
    }

    /// The bytes of the finished download `name` (Chromium writes to
    /// `*.crdownload` and renames when done), waiting up to `timeout`.
    pub async fn downloaded(&self, name: &str, timeout: Duration) -> Result<Vec<u8>> {
        let dir = self.downloads_dir();
        let path = dir.join(name);
        let deadline = Instant::now() + timeout;
        loop {
            match std::fs::read(&path) {
                Ok(bytes) => return Ok(bytes),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(anyhow!(error).context(format!("reading {name}"))),
            }
            if Instant::now() >= deadline {
                let mut present: Vec<String> = std::fs::read_dir(&dir)
                    .map(|entries| {
                        entries
                            .filter_map(|entry| entry.ok())
                            .map(|entry| entry.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                present.sort();
                bail!(
                    "timed out after {timeout:?} awaiting the download {name:?} in {} (present: {present:?})",
                    dir.display()
                );
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn close(mut self) -> Result<()> {
        let client = self.client.take().expect("open until close()");
        client
            .close()
            .await
            .context("closing the WebDriver session")?;
        self.session = None;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Without `close`, end the session here so chromedriver quits Chromium:
        // dropping the client only schedules that on a runtime that may be ending.
        if let Some(session) = self.session.take() {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into();
            let _ = agent
                .delete(format!("{}/session/{session}", self.driver_url))
                .call();
        }
        self.client = None;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `variable` when set, else `name` on `PATH`.
fn binary(variable: &str, name: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "{variable}={} is not a file (unset it to use {name} from PATH; \
             scripts/install-test-deps.sh installs it)",
            path.display()
        );
        return Ok(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            anyhow!(
                "{name} is not on PATH: run scripts/install-test-deps.sh (it installs \
                 Debian's chromium and chromium-driver), or set {variable} to its path"
            )
        })
}

/// The port in chromedriver's "… started successfully on port N."
fn printed_port(log: &str) -> Option<u16> {
    let rest = log.split("started successfully on port ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Whether chromedriver's `/status` says it is ready.
async fn driver_ready(base: String) -> Result<()> {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .build()
            .into();
        let status: Value = agent
            .get(format!("{base}/status"))
            .call()?
            .body_mut()
            .read_json()?;
        ensure!(
            status["value"]["ready"] == true,
            "/status answered {status}"
        );
        Ok(())
    })
    .await?
}

/// `text` cut short: a `data:` URL or a log line would fill the screen.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(160) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}
