//! `ricochet-engine`: runs a redirect engine, imports links into its store, or
//! checks its configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ricochet_engine::import::{ImportFormat, ImportOptions, import_file};
use ricochet_engine::intake::ChangeIntake;
use ricochet_engine::stats::EngineStats;
use ricochet_engine::store::LinkStore;
use ricochet_engine::{Engine, EngineConfig, LinkTable};

/// mimalloc: about 15 bytes less per link than glibc's allocator (papaya's
/// small per-entry boxes) and faster table loads; see docs/PERFORMANCE.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "ricochet-engine",
    version,
    about = "Ricochet's redirect engine"
)]
struct Cli {
    /// Configuration file (see config/engine.toml); defaults apply without one.
    #[arg(long, global = true, env = "RICOCHET_ENGINE_CONFIG")]
    config: Option<PathBuf>,
    /// Redirect listener address (server.listen).
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// Admin listener address (admin.listen).
    #[arg(long, global = true)]
    admin_listen: Option<SocketAddr>,
    /// HTTPS listener address (server.tls_listen).
    #[arg(long, global = true)]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain served as the default certificate
    /// (server.tls_certificate; with --tls-private-key).
    #[arg(long, global = true)]
    tls_certificate: Option<PathBuf>,
    /// PEM private key of --tls-certificate (server.tls_private_key).
    #[arg(long, global = true)]
    tls_private_key: Option<PathBuf>,
    /// Store directory (storage.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Worker count, 0 for one per core (server.workers).
    #[arg(long, global = true)]
    workers: Option<usize>,
    /// Domain serving hosts without links; "" for none (redirect.default_domain).
    #[arg(long, global = true)]
    default_domain: Option<String>,
    /// Control plane to follow, e.g. http://control:8081 (sync.control_url).
    #[arg(long, global = true)]
    control_url: Option<String>,
    /// Update bus, redis://host:port/ (sync.bus).
    #[arg(long, global = true)]
    bus: Option<String>,
    /// Token for the control plane's change log (sync.cluster_token).
    #[arg(
        long,
        global = true,
        env = "RICOCHET_CLUSTER_TOKEN",
        hide_env_values = true
    )]
    cluster_token: Option<String>,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve redirects (the default).
    Run,
    /// Bulk-load links from a CSV or JSON Lines file (columns: domain, code,
    /// url, optional status) into the store. Run it while the engine is stopped.
    Import {
        file: PathBuf,
        /// File format; guessed from the extension when omitted.
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// Write every rejected row (line and reason) to this file.
        #[arg(long)]
        rejects: Option<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ricochet_model::startup::init_tracing();
    let config = load_config(&cli)?;
    if cli.check_config {
        println!("{}", toml::to_string_pretty(&config)?);
        eprintln!("configuration is valid");
        return Ok(());
    }
    match cli.command {
        None | Some(Command::Run) => run(config),
        Some(Command::Import {
            file,
            format,
            rejects,
            quiet,
        }) => import(config, &file, format, rejects, quiet),
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<EngineConfig> {
    let mut config = EngineConfig::load(cli.config.as_deref())
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    if let Some(listen) = cli.listen {
        config.server.listen = listen;
    }
    if let Some(listen) = cli.admin_listen {
        config.admin.listen = listen;
    }
    if let Some(listen) = cli.tls_listen {
        config.server.tls_listen = Some(listen);
    }
    if let Some(path) = &cli.tls_certificate {
        config.server.tls_certificate = Some(path.clone());
    }
    if let Some(path) = &cli.tls_private_key {
        config.server.tls_private_key = Some(path.clone());
    }
    if let Some(dir) = &cli.data_dir {
        config.storage.data_dir = dir.clone();
    }
    if let Some(workers) = cli.workers {
        config.server.workers = workers;
    }
    if let Some(domain) = &cli.default_domain {
        config.redirect.default_domain = domain.clone();
    }
    if let Some(url) = &cli.control_url {
        config.sync.control_url = url.clone();
    }
    if let Some(bus) = &cli.bus {
        config.sync.bus = bus.clone();
    }
    if let Some(token) = &cli.cluster_token {
        config.sync.cluster_token = token.clone();
    }
    if let Err(problems) = config.validate() {
        bail!("invalid configuration: {problems}");
    }
    Ok(config)
}

fn run(config: EngineConfig) -> anyhow::Result<()> {
    let workers = config.worker_count();
    // Before anything is printed, so a signal sent on seeing the output is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let engine = Engine::start(config)?;
    let https = engine
        .tls_addr()
        .map(|addr| format!(", HTTPS on https://{addr}"))
        .unwrap_or_default();
    eprintln!(
        "ricochet-engine: redirects on http://{} ({workers} workers){https}, admin on http://{}",
        engine.redirect_addr(),
        engine.admin_addr()
    );
    signals.forever().next();
    eprintln!("ricochet-engine: shutting down");
    engine.shutdown();
    Ok(())
}

fn import(
    config: EngineConfig,
    file: &std::path::Path,
    format: Option<ImportFormat>,
    rejects: Option<PathBuf>,
    quiet: bool,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.storage.data_dir)?;
    let store = LinkStore::open(&config.storage.data_dir)
        .context("cannot open the store (is an engine running on it?)")?;
    let table = std::sync::Arc::new(LinkTable::new(None));
    let intake = ChangeIntake::new(store, table, std::sync::Arc::new(EngineStats::default()))?;
    let started = Instant::now();
    let options = ImportOptions {
        format,
        default_domain: config.default_domain().map(str::to_owned),
        progress: !quiet,
        serving: false,
    };
    let summary = import_file(&intake, file, &options)?;
    let elapsed = started.elapsed();
    let total = summary.created + summary.updated;
    println!(
        "imported {total} links ({} new, {} updated) in {:.1}s; {} rows rejected; last version {}",
        summary.created,
        summary.updated,
        elapsed.as_secs_f64(),
        summary.rejections.len(),
        summary.last_applied
    );
    for rejection in summary.rejections.iter().take(20) {
        println!("  line {}: {}", rejection.line, rejection.reason);
    }
    if summary.rejections.len() > 20 {
        println!("  … and {} more", summary.rejections.len() - 20);
    }
    if let Some(path) = rejects {
        let mut text = String::new();
        for rejection in &summary.rejections {
            text.push_str(&format!("{}\t{}\n", rejection.line, rejection.reason));
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("rejected rows written to {}", path.display());
    }
    Ok(())
}
