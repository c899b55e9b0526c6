//! `ricochet`: the whole system in one process on embedded defaults: the
//! control plane (REST API, fjall store, change log) and a redirect engine
//! following it over the in-process bus. Creates a demo link on first start.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use ricochet_control::service::{LinkService, LinkSettings, NewLink};
use ricochet_control::{ControlConfig, ControlPlane};
use ricochet_engine::{Engine, EngineConfig, StartOptions, SyncSource};
use ricochet_model::bus::{LocalBus, UpdateBus};
use ricochet_model::{LinkKey, now_millis};

/// Code of the demo link created on first start.
const DEMO_CODE: &str = "demo";
const DEMO_URL: &str = "https://example.com/?from=ricochet";
/// File in the data directory holding the first admin key.
const ADMIN_KEY_FILE: &str = "admin-key.txt";
/// File in the data directory holding the first owner's email and password.
const OWNER_FILE: &str = "owner-credentials.txt";

/// mimalloc: about 15 bytes less per link than glibc's allocator (papaya's
/// small per-entry boxes) and faster table loads; see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "ricochet",
    version,
    about = "Ricochet all-in-one on embedded defaults"
)]
struct Cli {
    /// Data directory (control/ and engine/ stores live in it).
    #[arg(long, default_value = "data", env = "RICOCHET_DATA_DIR")]
    data_dir: PathBuf,
    /// Redirect listener.
    #[arg(long, default_value = "127.0.0.1:8080", env = "RICOCHET_LISTEN")]
    listen: SocketAddr,
    /// Control plane API listener.
    #[arg(long, default_value = "127.0.0.1:8081", env = "RICOCHET_API_LISTEN")]
    api_listen: SocketAddr,
    /// Engine admin listener (/healthz, /readyz, /metrics).
    #[arg(long, default_value = "127.0.0.1:9090", env = "RICOCHET_ADMIN_LISTEN")]
    admin_listen: SocketAddr,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    // Before anything is printed, so a signal sent on seeing the output is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;

    let mut control_config = ControlConfig::default();
    control_config.server.listen = cli.api_listen;
    control_config.storage.data_dir = cli.data_dir.join("control");
    adopt_engine_clicks(&cli.data_dir)?;
    let bus: std::sync::Arc<dyn UpdateBus> = std::sync::Arc::new(LocalBus::new());
    let control = ControlPlane::start(control_config.clone(), bus.clone())
        .context("cannot start the control plane")?;
    let admin_key = remember_admin_key(&cli.data_dir, &control)?;
    let owner = remember_owner(&cli.data_dir, &control)?;

    let mut engine_config = EngineConfig::default();
    engine_config.server.listen = cli.listen;
    engine_config.admin.listen = cli.admin_listen;
    engine_config.storage.data_dir = cli.data_dir.join("engine");
    engine_config.redirect.default_domain = control_config.links.default_domain.clone();
    let engine = Engine::start_with(
        engine_config,
        StartOptions {
            sync: Some(SyncSource {
                bus,
                changes: control.change_source(),
            }),
            click_store: Some(control.click_store().clone()),
            ..StartOptions::default()
        },
    )
    .context("cannot start the engine")?;
    if !engine.wait_ready(Duration::from_secs(600)) {
        anyhow::bail!("the engine did not finish loading its links");
    }
    seed_demo_link(&control, &control_config)?;
    wait_until_served(&engine, &control_config.links.default_domain);

    let redirect = display_addr(engine.redirect_addr());
    let admin = display_addr(engine.admin_addr());
    let api = display_addr(control.addr());
    // Written in one go, ignoring a closed stdout: losing the banner must not stop the server.
    let banner = format!(
        "Ricochet is running (all-in-one, embedded defaults; Ctrl-C stops it).\n\n\
         \x20 Demo redirect:  http://{redirect}/{DEMO_CODE}  ->  {DEMO_URL}\n\
         \x20 Try it:         curl -i http://{redirect}/{DEMO_CODE}\n\
         \x20 In a browser:   http://{redirect}/{DEMO_CODE}\n\
         \x20 API:            http://{api}/api/v1  (OpenAPI document: http://{api}/api/v1/openapi.json)\n\
         \x20 Sign in:        {owner}\n\
         \x20 Admin API key:  {admin_key}\n\
         \x20 Create a link:  curl -s http://{api}/api/v1/links -H 'Authorization: Bearer {admin_key}' -H 'Content-Type: application/json' -d '{{\"url\":\"https://example.org/\"}}'\n\
         \x20 Analytics:      curl -s 'http://{api}/api/v1/links/1/analytics/series?interval=1m' -H 'Authorization: Bearer {admin_key}'\n\
         \x20 Health:         http://{admin}/readyz\n\
         \x20 Metrics:        http://{admin}/metrics\n"
    );
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{banner}").and_then(|()| stdout.flush());
    drop(stdout);

    signals.forever().next();
    eprintln!("ricochet: stopping");
    engine.shutdown();
    control.shutdown();
    Ok(())
}

/// Before this layout the all-in-one's engine kept the click store in
/// `engine/clicks`; the control plane keeps it now, in `control/clicks`.
/// Moves an older store there once, so no analytics are lost on upgrade.
fn adopt_engine_clicks(data_dir: &Path) -> anyhow::Result<()> {
    let old = data_dir.join("engine").join("clicks");
    let new = data_dir.join("control").join("clicks");
    if !old.is_dir() || new.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir.join("control"))?;
    std::fs::rename(&old, &new).with_context(|| {
        format!(
            "cannot move the click store from {} to {}",
            old.display(),
            new.display()
        )
    })?;
    tracing::info!(from = %old.display(), to = %new.display(), "moved the click store to the control plane");
    Ok(())
}

/// The admin key: created at first start and kept in the data directory so the
/// all-in-one can show it on every start.
fn remember_admin_key(data_dir: &Path, control: &ControlPlane) -> anyhow::Result<String> {
    let path = data_dir.join(ADMIN_KEY_FILE);
    if let Some(key) = control.bootstrap_key() {
        write_private(&path, &format!("{}\n", key.token))?;
        return Ok(key.token.clone());
    }
    Ok(std::fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|_| format!("(created at first start; see {})", path.display())))
}

/// Writes `text` to `path`, readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The first owner's credentials for the banner: created at first start (or
/// the first start of a data directory without users) and kept in the data
/// directory, like the admin key.
fn remember_owner(data_dir: &Path, control: &ControlPlane) -> anyhow::Result<String> {
    let path = data_dir.join(OWNER_FILE);
    if let Some(owner) = control.first_owner() {
        write_private(
            &path,
            &format!(
                "Ricochet's first owner (created at first start; sign in with POST /api/v1/auth/sign-in).\n\
                 email: {}\npassword: {}\n",
                owner.email, owner.password
            ),
        )?;
        return Ok(format!(
            "{} / {}  (kept in {})",
            owner.email,
            owner.password,
            path.display()
        ));
    }
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name).map(str::trim))
            .map(str::to_owned)
    };
    Ok(match (field("email:"), field("password:")) {
        (Some(email), Some(password)) => {
            format!("{email} / {password}  (kept in {})", path.display())
        }
        _ => format!(
            "the first owner (created at first start; see {})",
            path.display()
        ),
    })
}

/// Creates the demo link once, through the control plane.
fn seed_demo_link(control: &ControlPlane, config: &ControlConfig) -> anyhow::Result<()> {
    let domain = &config.links.default_domain;
    let key = LinkKey::new(domain, DEMO_CODE)?;
    if control.store().id_for_key(&key)?.is_some() {
        return Ok(());
    }
    let links = &config.links;
    let service = LinkService::new(
        control.store().clone(),
        LinkSettings::new(
            domain,
            links.code_length,
            links.max_bulk,
            &links.reserved_codes,
        ),
    );
    let input = NewLink {
        url: DEMO_URL.into(),
        code: Some(DEMO_CODE.into()),
        forward_query: true,
        title: Some("Ricochet demo link".into()),
        tags: vec!["demo".into()],
        ..NewLink::default()
    };
    service
        .create(&input, now_millis())
        .map_err(|e| anyhow::anyhow!("cannot create the demo link: {e}"))?;
    Ok(())
}

/// Waits (briefly) until the engine serves the demo link.
fn wait_until_served(engine: &Engine, domain: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if engine
            .intake()
            .table()
            .get_record_parts(domain, DEMO_CODE)
            .is_some()
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn display_addr(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}
