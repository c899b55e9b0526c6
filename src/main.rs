//! `ricochet`: the whole system in one process on embedded defaults: the
//! redirect engine on a fjall store, seeded with a demo link on first start.
//! The control plane joins this process when it lands.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use ricochet_engine::{Engine, EngineConfig};
use ricochet_model::{Change, ChangeOp, LinkRecord, now_millis};

/// Code of the demo link created on first start.
const DEMO_CODE: &str = "demo";
const DEMO_URL: &str = "https://example.com/?from=ricochet";

#[derive(Debug, Parser)]
#[command(
    name = "ricochet",
    version,
    about = "Ricochet all-in-one on embedded defaults"
)]
struct Cli {
    /// Data directory (the engine's store lives in DATA_DIR/engine).
    #[arg(long, default_value = "data", env = "RICOCHET_DATA_DIR")]
    data_dir: PathBuf,
    /// Redirect listener.
    #[arg(long, default_value = "127.0.0.1:8080", env = "RICOCHET_LISTEN")]
    listen: SocketAddr,
    /// Admin listener (/healthz, /readyz, /metrics).
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

    let mut config = EngineConfig::default();
    config.server.listen = cli.listen;
    config.admin.listen = cli.admin_listen;
    config.storage.data_dir = cli.data_dir.join("engine");
    // Before anything is printed, so a signal sent on seeing the output is handled.
    let signal = ShutdownSignal::install()?;
    let engine = Engine::start(config).context("cannot start the engine")?;
    if !engine.wait_ready(std::time::Duration::from_secs(600)) {
        anyhow::bail!("the engine did not finish loading its links");
    }
    seed_demo_link(&engine)?;

    let redirect = display_addr(engine.redirect_addr());
    let admin = display_addr(engine.admin_addr());
    // Written in one go, ignoring a closed stdout: losing the banner must not stop the server.
    let banner = format!(
        "Ricochet is running (all-in-one, embedded defaults; Ctrl-C stops it).\n\n\
         \x20 Demo redirect:  http://{redirect}/{DEMO_CODE}  ->  {DEMO_URL}\n\
         \x20 Try it:         curl -i http://{redirect}/{DEMO_CODE}\n\
         \x20 In a browser:   http://{redirect}/{DEMO_CODE}\n\
         \x20 Health:         http://{admin}/readyz\n\
         \x20 Metrics:        http://{admin}/metrics\n\
         \x20 Add links:      ricochet-engine import FILE.csv  (columns domain,code,url[,status])\n"
    );
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{banner}").and_then(|()| stdout.flush());
    drop(stdout);

    signal.wait();
    eprintln!("ricochet: stopping");
    engine.shutdown();
    Ok(())
}

/// Creates the demo link once, on the default domain.
fn seed_demo_link(engine: &Engine) -> anyhow::Result<()> {
    let intake = engine.intake();
    let domain = EngineConfig::default().redirect.default_domain;
    let key = ricochet_model::LinkKey::new(&domain, DEMO_CODE)?;
    if intake.store().get(&key)?.is_some() {
        return Ok(());
    }
    let version = intake.last_applied() + 1;
    let mut link = LinkRecord::new(version, &domain, DEMO_CODE, DEMO_URL, now_millis())?;
    link.title = Some("Ricochet demo link".into());
    link.forward_query = true;
    link.version = version;
    intake.apply(&[Change {
        version,
        op: ChangeOp::Upsert { link },
    }])?;
    Ok(())
}

fn display_addr(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Listens for Ctrl-C and SIGTERM from now on; `wait` blocks until one arrives.
struct ShutdownSignal {
    runtime: tokio::runtime::Runtime,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (terminate, interrupt) = runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            Ok::<_, std::io::Error>((
                signal(SignalKind::terminate())?,
                signal(SignalKind::interrupt())?,
            ))
        })?;
        Ok(Self {
            runtime,
            terminate,
            interrupt,
        })
    }

    fn wait(mut self) {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        });
    }
}
