//! `ricochet`: the whole system in one process: the control plane (REST API,
//! fjall store, change log) and a redirect engine following it over the
//! in-process bus, each configured as its own binary is (file, environment,
//! flags), on embedded defaults without either. Creates a demo link on first start.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use ricochet_control::service::{LinkService, LinkSettings, NewLink};
use ricochet_control::store::DEFAULT_WORKSPACE;
use ricochet_control::{ControlConfig, ControlPlane};
use ricochet_engine::{Engine, EngineConfig, StartOptions, SyncSource};
use ricochet_model::bus::{LocalBus, UpdateBus};
use ricochet_model::startup::load_config;
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
    about = "Ricochet all-in-one: the control plane and a redirect engine in one process"
)]
struct Cli {
    /// Engine configuration file (see config/engine.toml); embedded defaults without one.
    #[arg(long, env = "RICOCHET_ENGINE_CONFIG")]
    engine_config: Option<PathBuf>,
    /// Control plane configuration file (see config/control.toml); embedded defaults without one.
    #[arg(long, env = "RICOCHET_CONTROL_CONFIG")]
    control_config: Option<PathBuf>,
    /// Data directory: the control store in DIR/control, the engine store in
    /// DIR/engine (storage.data_dir of each). Default: data.
    #[arg(long, env = "RICOCHET_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Redirect listener (engine server.listen). Default: 127.0.0.1:8080.
    #[arg(long, env = "RICOCHET_LISTEN")]
    listen: Option<SocketAddr>,
    /// Control plane API listener (control server.listen). Default: 127.0.0.1:8081.
    #[arg(long, env = "RICOCHET_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// Engine admin listener: /healthz, /readyz, /metrics (engine admin.listen).
    /// Default: 127.0.0.1:9090.
    #[arg(long, env = "RICOCHET_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Validate both configurations, print them, and exit.
    #[arg(long)]
    check_config: bool,
}

/// The two parts' configurations: embedded defaults (the engine listening on
/// loopback only), then each part's file and `RICOCHET_ENGINE_*` /
/// `RICOCHET_CONTROL_*` environment variables, then the flags. The engine's
/// default domain is the control plane's.
fn load_configs(cli: &Cli) -> anyhow::Result<(EngineConfig, ControlConfig)> {
    let mut engine_defaults = EngineConfig::default();
    engine_defaults.server.listen = SocketAddr::from(([127, 0, 0, 1], 8080));
    let mut engine: EngineConfig = load_config(
        engine_defaults,
        cli.engine_config.as_deref(),
        ricochet_engine::config::ENV_PREFIX,
    )
    .map_err(|e| anyhow::anyhow!("invalid engine configuration: {e}"))?;
    let mut control: ControlConfig = load_config(
        ControlConfig::default(),
        cli.control_config.as_deref(),
        ricochet_control::config::ENV_PREFIX,
    )
    .map_err(|e| anyhow::anyhow!("invalid control plane configuration: {e}"))?;
    if let Some(dir) = &cli.data_dir {
        engine.storage.data_dir = dir.join("engine");
        control.storage.data_dir = dir.join("control");
    }
    if let Some(listen) = cli.listen {
        engine.server.listen = listen;
    }
    if let Some(listen) = cli.admin_listen {
        engine.admin.listen = listen;
    }
    if let Some(listen) = cli.api_listen {
        control.server.listen = listen;
    }
    engine.redirect.default_domain = control.links.default_domain.clone();
    // Short links on the default domain are reached at the engine's own
    // address here (the console shows them and QR codes carry them).
    if control.links.short_url_base.is_empty() && engine.server.listen.port() != 0 {
        control.links.short_url_base = format!("http://{}", display_addr(engine.server.listen));
    }
    engine
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid engine configuration: {e}"))?;
    control
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid control plane configuration: {e}"))?;
    Ok((engine, control))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ricochet_model::startup::init_tracing();
    let (engine_config, control_config) = load_configs(&cli)?;
    if cli.check_config {
        println!(
            "# engine (config/engine.toml)\n{}\n# control plane (config/control.toml)\n{}",
            toml::to_string_pretty(&engine_config)?,
            toml::to_string_pretty(&control_config.redacted())?
        );
        eprintln!("configuration is valid");
        return Ok(());
    }
    // Before anything is printed, so a signal sent on seeing the output is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;

    adopt_engine_clicks(&engine_config, &control_config)?;
    let bus: std::sync::Arc<dyn UpdateBus> = std::sync::Arc::new(LocalBus::new());
    let control = ControlPlane::start(control_config.clone(), bus.clone())
        .context("cannot start the control plane")?;
    let root = data_root(&control_config)?;
    let admin_key = remember_admin_key(&root, &control)?;
    let owner = remember_owner(&root, &control)?;

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
    let https = engine
        .tls_addr()
        .map(|addr| {
            format!(
                "\x20 HTTPS:          https://{}  (certificates: PUT /api/v1/domains/{{domain}}/certificate, docs/HTTPS.md)\n",
                display_addr(addr)
            )
        })
        .unwrap_or_default();
    // Written in one go, ignoring a closed stdout: losing the banner must not stop the server.
    let banner = format!(
        "Ricochet is running (all-in-one, embedded defaults; Ctrl-C stops it).\n\n\
         \x20 Demo redirect:  http://{redirect}/{DEMO_CODE}  ->  {DEMO_URL}\n\
         \x20 Try it:         curl -i http://{redirect}/{DEMO_CODE}\n\
         \x20 In a browser:   http://{redirect}/{DEMO_CODE}\n\
         {https}\
         \x20 Console:        http://{api}/console/sign-in  (sign in as below)\n\
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
fn adopt_engine_clicks(engine: &EngineConfig, control: &ControlConfig) -> anyhow::Result<()> {
    let old = engine.storage.data_dir.join("clicks");
    let new = control.storage.data_dir.join("clicks");
    if !old.is_dir() || new.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(&control.storage.data_dir)?;
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

/// Where the all-in-one keeps the files it shows on every start (the admin
/// key, the first owner's credentials): beside the control store, `data/` by
/// default.
fn data_root(config: &ControlConfig) -> anyhow::Result<PathBuf> {
    let dir = config
        .storage
        .data_dir
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The admin key: created at first start and kept beside the control store
/// (`data/admin-key.txt` by default) so the all-in-one can show it on every start.
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
        .create(DEFAULT_WORKSPACE, &input, now_millis())
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
