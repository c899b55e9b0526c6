//! Start-up time and memory of an engine holding many certificates:
//! `cargo run --release -p ricochet-benches --bin tls-certificates -- --certificates 10000`
//! writes that many ECDSA P-256 certificates (one domain each) into an engine
//! store through `ChangeIntake`, then times a fresh `load_table` in a new
//! process (parse and install included) and reports resident memory per
//! certificate; with `--engine target/release/ricochet-engine` it also starts
//! the engine binary on the store and times start-up until an HTTPS handshake
//! for the last domain succeeds, against the same binary on an empty store.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use ricochet_benches::memory::{ALLOCATOR, resident_bytes};
use ricochet_engine::stats::EngineStats;
use ricochet_engine::store::LinkStore;
use ricochet_engine::{ChangeIntake, LinkTable};
use ricochet_model::tls::{CertificatePem, TlsChange};
use ricochet_model::{Change, ChangeOp};

/// Certificates per `ChangeIntake::apply` call when writing the store.
const BATCH: usize = 1_000;

#[derive(Debug, Parser)]
#[command(name = "tls-certificates")]
struct Args {
    /// Number of certificates (domains `site0.example` …).
    #[arg(long, default_value_t = 10_000)]
    certificates: usize,
    /// Store directory (reused when it already holds the certificates);
    /// default: a temporary directory.
    #[arg(long)]
    store: Option<PathBuf>,
    /// An engine binary to start on the store (and on an empty one) and time
    /// until it serves HTTPS for the last domain.
    #[arg(long)]
    engine: Option<PathBuf>,
    /// CPUs the engine binary is pinned to (taskset list), e.g. "0".
    #[arg(long, default_value = "0")]
    engine_cpus: String,
    #[arg(long, hide = true)]
    load_only: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.certificates == 0 {
        bail!("--certificates must be at least 1");
    }
    let temporary;
    let dir = match &args.store {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("ricochet-tls-certificates-")
                .tempdir()?;
            temporary.path().join("store")
        }
    };
    if args.load_only {
        return load(&dir, args.certificates);
    }
    write_store(&dir, args.certificates)?;
    let status = Command::new(std::env::current_exe()?)
        .args(["--load-only", "--certificates"])
        .arg(args.certificates.to_string())
        .arg("--store")
        .arg(&dir)
        .status()
        .context("cannot start the load process")?;
    if !status.success() {
        bail!("the load process failed: {status}");
    }
    if let Some(engine) = &args.engine {
        let empty = tempfile::Builder::new()
            .prefix("ricochet-tls-empty-")
            .tempdir()?;
        let baseline = start_engine(engine, empty.path(), &args.engine_cpus, None)?;
        let loaded = start_engine(
            engine,
            &dir,
            &args.engine_cpus,
            Some(&domain(args.certificates - 1)),
        )?;
        let per_certificate =
            loaded.rss.saturating_sub(baseline.rss) as f64 / args.certificates as f64;
        println!(
            "engine binary: empty store ready in {:.2}s, rss {:.1}MiB; {} certificates: \
             serving HTTPS in {:.2}s, rss {:.1}MiB ({per_certificate:.0}B a certificate)",
            baseline.ready.as_secs_f64(),
            mib(baseline.rss),
            args.certificates,
            loaded.ready.as_secs_f64(),
            mib(loaded.rss),
        );
    }
    Ok(())
}

fn domain(index: usize) -> String {
    format!("site{index}.example")
}

/// A self-signed ECDSA P-256 certificate for `name`, as an ACME authority
/// would issue one (leaf only).
fn certificate(name: &str) -> anyhow::Result<CertificatePem> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let certificate = rcgen::CertificateParams::new(vec![name.to_owned()])?.self_signed(&key)?;
    Ok(CertificatePem {
        chain: certificate.pem(),
        key: key.serialize_pem(),
    })
}

fn write_store(dir: &Path, count: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let intake = ChangeIntake::new(
        LinkStore::open(dir)?,
        Arc::new(LinkTable::new(None)),
        Arc::new(EngineStats::default()),
    )?;
    let mut version = intake.last_applied();
    if version == count as u64 {
        eprintln!(
            "reusing the store in {} ({count} certificates)",
            dir.display()
        );
        return Ok(());
    }
    if version != 0 {
        bail!(
            "{} holds {version} changes, not {count}: use an empty directory",
            dir.display()
        );
    }
    let started = Instant::now();
    let mut changes = Vec::with_capacity(BATCH);
    for first in (0..count).step_by(BATCH) {
        changes.clear();
        for index in first..(first + BATCH).min(count) {
            version += 1;
            let name = domain(index);
            changes.push(Change {
                version,
                op: ChangeOp::Tls {
                    change: TlsChange::Certificate {
                        pem: Some(certificate(&name)?),
                        name,
                    },
                },
            });
        }
        intake.apply(&changes)?;
        eprintln!("  written {version}/{count} certificates");
    }
    intake.store().flush()?;
    eprintln!(
        "wrote {count} certificates through ChangeIntake in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn load(dir: &Path, count: usize) -> anyhow::Result<()> {
    let before_open = resident_bytes();
    let store = LinkStore::open(dir)?;
    let table = Arc::new(LinkTable::new(None));
    let intake = ChangeIntake::new(store, table.clone(), Arc::new(EngineStats::default()))?;
    let before = resident_bytes();
    let loading = Instant::now();
    let loaded = intake.load_table()?;
    let load_time = loading.elapsed();
    let after = resident_bytes();
    let served = table.tls().current().certificates();
    if served != count || loaded.errors != 0 {
        bail!(
            "serving {served} certificates ({} errors), expected {count}",
            loaded.errors
        );
    }
    println!(
        "load_table allocator={ALLOCATOR} certificates={count}: {:.3}s ({:.0} a second, \
         {:.0}us each); rss {:.1}MiB before open, {:.1}MiB before load, {:.1}MiB after \
         ({:.0}B a certificate)",
        load_time.as_secs_f64(),
        count as f64 / load_time.as_secs_f64(),
        load_time.as_secs_f64() * 1e6 / count as f64,
        mib(before_open),
        mib(before),
        mib(after),
        after.saturating_sub(before) as f64 / count as f64,
    );
    Ok(())
}

/// An engine binary's start: time until ready and its resident memory then.
struct Started {
    ready: Duration,
    rss: u64,
}

/// Starts `engine` on `store` with an HTTPS listener and waits until it
/// serves: `/readyz`, and a handshake naming `domain` when given.
fn start_engine(
    engine: &Path,
    store: &Path,
    cpus: &str,
    domain: Option<&str>,
) -> anyhow::Result<Started> {
    let port = |()| -> anyhow::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let (http, admin, https) = (port(())?, port(())?, port(())?);
    let started = Instant::now();
    let mut child = Command::new("taskset")
        .args(["-c", cpus])
        .arg(engine)
        .args(["--workers", "1", "--listen"])
        .arg(format!("127.0.0.1:{http}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{admin}"))
        .arg("--tls-listen")
        .arg(format!("127.0.0.1:{https}"))
        .arg("--data-dir")
        .arg(store)
        .env("RICOCHET_ENGINE_CLICKS__ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the engine (is taskset installed?)")?;
    let result = wait_until_serving(&mut child, admin, https, domain, started);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn wait_until_serving(
    child: &mut Child,
    admin: u16,
    https: u16,
    domain: Option<&str>,
    started: Instant,
) -> anyhow::Result<Started> {
    let deadline = started + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the engine exited: {status}");
        }
        if Instant::now() > deadline {
            bail!("the engine did not serve within 120 s");
        }
        if curl(&format!("http://127.0.0.1:{admin}/readyz"), None)?
            && domain.is_none_or(|domain| {
                curl(
                    &format!("https://{domain}:{https}/"),
                    Some(&format!("{domain}:{https}:127.0.0.1")),
                )
                .unwrap_or(false)
            })
        {
            let ready = started.elapsed();
            return Ok(Started {
                ready,
                rss: process_rss(child.id()),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether `url` answers (any HTTP status; certificates not verified).
fn curl(url: &str, resolve: Option<&str>) -> anyhow::Result<bool> {
    let mut command = Command::new("curl");
    command.args(["-sk", "-o", "/dev/null", "--max-time", "2"]);
    if let Some(resolve) = resolve {
        command.args(["--resolve", resolve]);
    }
    let status = command
        .arg(url)
        .status()
        .context("cannot run curl (apt-get install curl)")?;
    Ok(status.success())
}

/// Resident memory of the process `pid` (taskset execs the engine in place).
fn process_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(0, |kib| kib * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
