//! `ricochet-control`: serves the control plane, manages API keys, and imports
//! or exports links.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use ricochet_control::keys::{KeyRing, Scope};
use ricochet_control::service::{LinkService, LinkSettings};
use ricochet_control::store::{ControlStore, DEFAULT_WORKSPACE};
use ricochet_control::transfer::{self, Format};
use ricochet_control::{ControlConfig, ControlPlane, bus_from_config};

/// mimalloc, as in the engine: glibc's allocator spent about a third of a
/// 10M-link import in malloc and free (docs/PERFORMANCE.md, "Imports").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "ricochet-control", version, about = "Ricochet's control plane")]
struct Cli {
    /// Configuration file (see config/control.toml).
    #[arg(long, global = true, env = "RICOCHET_CONTROL_CONFIG")]
    config: Option<PathBuf>,
    /// API listener address (server.listen).
    #[arg(long, global = true)]
    listen: Option<SocketAddr>,
    /// Store directory (storage.data_dir).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Update bus: redis://host:port/ (bus.url).
    #[arg(long, global = true)]
    bus: Option<String>,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Manage API keys (run while the control plane is stopped).
    Keys {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Print the token engines use for /internal/v1/changes.
    ClusterToken,
    /// Import domains and links from CSV or JSON Lines: an `export` file, a
    /// CSV whose header names url (and any of domain, code, status, state,
    /// expires_at, forward_query, tags, title, created_at), positional
    /// domain,code,url[,status] rows, or API create bodies.
    Import {
        file: PathBuf,
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Workspace id the links and domains go to.
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
    },
    /// Export domains and links, every field, as CSV or JSON Lines: those of
    /// one workspace, or of every workspace when --workspace is omitted.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        /// Workspace id to export.
        #[arg(long)]
        workspace: Option<String>,
        /// Output file; standard output when omitted.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Create a key and print it (once).
    Create {
        #[arg(long)]
        name: String,
        /// Workspace id the key acts in.
        #[arg(long, default_value = DEFAULT_WORKSPACE)]
        workspace: String,
        /// Scopes: links:read, links:write, analytics:read, domains:write, admin.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List keys of every workspace (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ricochet_model::startup::init_tracing();
    let mut config = ControlConfig::load(cli.config.as_deref())
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    if let Some(listen) = cli.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = &cli.data_dir {
        config.storage.data_dir = dir.clone();
    }
    if let Some(bus) = &cli.bus {
        config.bus.url = bus.clone();
    }
    if let Err(problems) = config.validate() {
        bail!("invalid configuration: {problems}");
    }
    if cli.check_config {
        println!("{}", toml::to_string_pretty(&config.redacted())?);
        eprintln!("configuration is valid");
        return Ok(());
    }
    match cli.command {
        None | Some(Command::Serve) => serve(config),
        Some(Command::Keys { action }) => keys(&config, action),
        Some(Command::ClusterToken) => {
            let store = open_store(&config)?;
            println!("{}", store.cluster_token(&config.bus.cluster_token)?);
            Ok(())
        }
        Some(Command::Import {
            file,
            format,
            workspace,
        }) => import(&config, &file, format, &workspace),
        Some(Command::Export {
            format,
            workspace,
            output,
        }) => export(&config, format, workspace.as_deref(), output),
    }
}

fn open_store(config: &ControlConfig) -> anyhow::Result<ControlStore> {
    ControlStore::open(&config.storage.data_dir)
        .context("cannot open the control store (is the control plane running on it?)")
}

fn serve(config: ControlConfig) -> anyhow::Result<()> {
    // Before anything is printed, so a signal sent on seeing the output is handled.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let bus = bus_from_config(&config)?;
    let bus_name = if config.bus.url.is_empty() {
        "in-process bus".to_owned()
    } else {
        config.bus.url.clone()
    };
    let control = ControlPlane::start(config, bus)?;
    let mut banner = format!(
        "ricochet-control: API on http://{addr}/api/v1, publishing on {bus_name}\n\
         Console: http://{addr}/console/sign-in\n",
        addr = control.addr()
    );
    if let Some(key) = control.bootstrap_key() {
        banner.push_str(&format!(
            "Bootstrap admin API key (shown once, keep it safe):\n  {}\n",
            key.token
        ));
    }
    if let Some(owner) = control.first_owner() {
        banner.push_str(&format!(
            "First owner (shown once, keep it safe; change the password after signing in):\n  \
             email {}\n  password {}\n",
            owner.email, owner.password
        ));
    }
    // One write, and a reader that went away (a closed pipe) does not stop the server.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(banner.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    signals.forever().next();
    eprintln!("ricochet-control: shutting down");
    control.shutdown();
    Ok(())
}

fn keys(config: &ControlConfig, action: KeyAction) -> anyhow::Result<()> {
    let store = open_store(config)?;
    let ring = KeyRing::new(&store);
    let now = ricochet_model::now_millis();
    match action {
        KeyAction::Create {
            name,
            workspace,
            scopes,
        } => {
            if store.workspace(&workspace)?.is_none() && workspace != DEFAULT_WORKSPACE {
                bail!("no workspace with id {workspace:?}");
            }
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s).with_context(|| format!("unknown scope {s:?}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let issued = ring.create(&workspace, None, &name, &scopes, now)?;
            println!("{}", issued.token);
            eprintln!(
                "key {} created; the token above is shown only once",
                issued.record.id
            );
        }
        KeyAction::List => {
            println!(
                "{:<14} {:<14} {:<24} {:<40} state",
                "id", "workspace", "name", "scopes"
            );
            for key in store.api_keys()? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<14} {:<14} {:<24} {:<40} {state}",
                    key.id,
                    key.workspace_id,
                    key.name,
                    key.scopes.join(",")
                );
            }
        }
        KeyAction::Revoke { id } => {
            if ring.revoke(None, &id, now)?.is_none() {
                bail!("no key with id {id:?}");
            }
            println!("key {id} revoked");
        }
    }
    store.persist()?;
    Ok(())
}

/// The link service on the store. The default domain is registered here for
/// export; an import registers it itself, after the file's domain rows had a
/// chance to bring it with its original creation time.
fn service(config: &ControlConfig, register_default_domain: bool) -> anyhow::Result<LinkService> {
    let store = Arc::new(open_store(config)?);
    let links = &config.links;
    let service = LinkService::new(
        store,
        LinkSettings::new(
            &links.default_domain,
            links.code_length,
            links.max_bulk,
            &links.reserved_codes,
        ),
    );
    if register_default_domain {
        service.register_default_domain(ricochet_model::now_millis())?;
    }
    Ok(service)
}

fn import(
    config: &ControlConfig,
    file: &std::path::Path,
    format: Option<Format>,
    workspace: &str,
) -> anyhow::Result<()> {
    let format = format
        .or_else(|| Format::from_path(file))
        .context("cannot tell the file format; name it .csv or .jsonl, or pass --format")?;
    let service = service(config, false)?;
    if service.store().workspace(workspace)?.is_none() && workspace != DEFAULT_WORKSPACE {
        bail!("no workspace with id {workspace:?}");
    }
    let started = std::time::Instant::now();
    let report =
        transfer::import(&service, workspace, file, format, true).map_err(anyhow::Error::msg)?;
    service.store().persist()?;
    println!(
        "imported {} links and {} domains in {:.1}s; {} rows rejected",
        report.created,
        report.domains,
        started.elapsed().as_secs_f64(),
        report.errors.len()
    );
    for error in report.errors.iter().take(20) {
        println!("  line {}: {}", error.line, error.reason);
    }
    if report.errors.len() > 20 {
        println!("  … and {} more", report.errors.len() - 20);
    }
    Ok(())
}

fn export(
    config: &ControlConfig,
    format: Format,
    workspace: Option<&str>,
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    let service = service(config, true)?;
    let count = match &output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
            transfer::export(&service, workspace, &mut file, format).map_err(anyhow::Error::msg)?
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            transfer::export(&service, workspace, &mut lock, format).map_err(anyhow::Error::msg)?
        }
    };
    eprintln!(
        "exported {} domains and {} links",
        count.domains, count.links
    );
    Ok(())
}
