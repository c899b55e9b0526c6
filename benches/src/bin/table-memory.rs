//! Resident memory per link of the link table, and the engine's start-up load
//! time from fjall. Run each measurement in its own process so RSS is clean:
//! `cargo run --release -p ricochet-benches --bin table-memory -- --links 1000000 --map papaya`
//! (`--map dashmap`, `--load-from-fjall`, `--features mimalloc`: see `--help`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use ricochet_benches::dash::{DashTable, HeapEstimate};
use ricochet_benches::data;
use ricochet_benches::memory::{self, ALLOCATOR, resident_bytes};
use ricochet_engine::stats::EngineStats;
use ricochet_engine::store::LinkStore;
use ricochet_engine::table::LinkEntry;
use ricochet_engine::{ChangeIntake, LinkTable};
use ricochet_model::{Change, ChangeOp};

/// Changes per `ChangeIntake::apply` call when writing the store.
const BATCH: u64 = 10_000;
const PROGRESS_EVERY: u64 = 1_000_000;

/// Measures resident memory per link of a link table built in memory, or the
/// time and memory of the engine's start-up load from a fjall store.
#[derive(Debug, Parser)]
#[command(name = "table-memory")]
struct Args {
    /// Number of links (60-byte URLs, 7-character codes, one domain).
    #[arg(long, default_value_t = 1_000_000)]
    links: u64,
    /// Map to build in memory (ignored with --load-from-fjall: the engine
    /// loads into its papaya table).
    #[arg(long, value_enum, default_value_t = MapKind::Papaya)]
    map: MapKind,
    /// Write the links through `ChangeIntake` into a fjall store, then time a
    /// fresh `ChangeIntake::load_table` in a new process.
    #[arg(long)]
    load_from_fjall: bool,
    /// Store directory for --load-from-fjall. Kept afterwards; a store that
    /// already holds exactly --links links is loaded without rewriting it.
    /// Default: a temporary directory, removed at the end.
    #[arg(long)]
    fjall_dir: Option<PathBuf>,
    /// Internal: only load the store in --fjall-dir (the measured process).
    #[arg(long, hide = true, requires = "fjall_dir")]
    load_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MapKind {
    Papaya,
    Dashmap,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.links == 0 {
        bail!("--links must be at least 1");
    }
    match (args.load_only, args.load_from_fjall, &args.fjall_dir) {
        (true, _, Some(dir)) => load(dir, args.links),
        (false, true, _) => write_then_load(&args),
        _ => build(args.map, args.links),
    }
}

/// Builds the map in memory and reports RSS and heap estimate per link.
fn build(map: MapKind, links: u64) -> anyhow::Result<()> {
    let before = resident_bytes();
    let started = Instant::now();
    let n = links as usize;
    let mut entry_bytes = 0usize;
    // The maps stay alive until after the last reading.
    let (papaya, dash);
    let estimate = match map {
        MapKind::Papaya => {
            papaya = LinkTable::with_capacity(None, n);
            for i in 0..links {
                let record = data::record(i);
                entry_bytes += LinkEntry::new(0, &record).heap_size();
                papaya.upsert(&record);
                progress("built", i + 1, links, started);
            }
            memory::papaya_estimate(n, papaya.len(), entry_bytes)
        }
        MapKind::Dashmap => {
            dash = DashTable::with_capacity(n);
            for i in 0..links {
                dash.upsert(0, &data::record(i));
                progress("built", i + 1, links, started);
            }
            dash.heap_estimate()
        }
    };
    let elapsed = started.elapsed();
    let after = resident_bytes();
    let map = match map {
        MapKind::Papaya => "papaya",
        MapKind::Dashmap => "dashmap",
    };
    report_memory(map, links, before, after, Some(estimate));
    println!(
        "  build: {:.1}s ({:.0} links/s, record generation and URL validation included)",
        elapsed.as_secs_f64(),
        links as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

fn report_memory(what: &str, links: u64, before: u64, after: u64, estimate: Option<HeapEstimate>) {
    let per_link = after.saturating_sub(before) as f64 / links as f64;
    println!(
        "{what} allocator={ALLOCATOR} links={links} rss_before={:.1}MiB rss_after={:.1}MiB \
         rss_per_link={per_link:.1}B peak_rss={:.1}MiB",
        mib(before),
        mib(after),
        mib(memory::peak_resident_bytes())
    );
    if let Some(estimate) = estimate {
        let per = |bytes: usize| bytes as f64 / links as f64;
        println!(
            "  heap estimate per link: {:.1}B = slots {:.1}B + nodes {:.1}B + entries {:.1}B \
             (requested bytes, allocator overhead excluded)",
            per(estimate.total()),
            per(estimate.slot_bytes),
            per(estimate.node_bytes),
            per(estimate.entry_bytes)
        );
    }
}

/// Writes the store (unless it already holds the links), then measures the
/// load in a child process whose RSS owes nothing to the writing.
fn write_then_load(args: &Args) -> anyhow::Result<()> {
    let temporary;
    let dir = match &args.fjall_dir {
        Some(dir) => dir.as_path(),
        None => {
            temporary = tempfile::Builder::new()
                .prefix("ricochet-table-memory-")
                .tempdir()?;
            temporary.path()
        }
    };
    write_store(dir, args.links)?;
    let status = Command::new(std::env::current_exe()?)
        .arg("--load-only")
        .arg("--links")
        .arg(args.links.to_string())
        .arg("--fjall-dir")
        .arg(dir)
        .status()
        .context("cannot start the load process")?;
    if !status.success() {
        bail!("the load process failed: {status}");
    }
    Ok(())
}

fn write_store(dir: &Path, links: u64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let store = LinkStore::open(dir)?;
    let intake = ChangeIntake::new(
        store,
        Arc::new(LinkTable::new(None)),
        Arc::new(EngineStats::default()),
    )?;
    let mut version = intake.last_applied();
    if version == links {
        eprintln!("reusing the store in {} ({links} links)", dir.display());
        return Ok(());
    }
    if version != 0 {
        bail!(
            "{} holds {version} changes, not {links}: use an empty directory",
            dir.display()
        );
    }
    let started = Instant::now();
    let mut changes = Vec::with_capacity(BATCH as usize);
    for first in (0..links).step_by(BATCH as usize) {
        changes.clear();
        for i in first..(first + BATCH).min(links) {
            version += 1;
            let mut link = data::record(i);
            link.version = version;
            changes.push(Change {
                version,
                op: ChangeOp::Upsert { link },
            });
        }
        intake.apply(&changes)?;
        progress("written", version, links, started);
    }
    let flushing = Instant::now();
    intake.store().flush()?;
    let written = started.elapsed();
    eprintln!(
        "wrote {links} links through ChangeIntake in {:.1}s ({:.0} links/s, flush {:.1}s); \
         store {:.1}MiB on disk",
        written.as_secs_f64(),
        links as f64 / written.as_secs_f64(),
        flushing.elapsed().as_secs_f64(),
        mib(dir_size(dir))
    );
    Ok(())
}

/// The measured start-up: open the store, load it into a new table.
fn load(dir: &Path, links: u64) -> anyhow::Result<()> {
    let before = resident_bytes();
    let opening = Instant::now();
    let store = LinkStore::open(dir)?;
    let opened = opening.elapsed();
    let table = Arc::new(LinkTable::new(None));
    let intake = ChangeIntake::new(store, table.clone(), Arc::new(EngineStats::default()))?;
    let loading = Instant::now();
    let loaded = intake.load_table()?;
    let load_time = loading.elapsed();
    let after = resident_bytes();
    if loaded.links != links || table.len() as u64 != links {
        bail!(
            "loaded {} links ({} errors), table holds {}, expected {links}",
            loaded.links,
            loaded.errors,
            table.len()
        );
    }
    report_memory("fjall-load", links, before, after, None);
    println!(
        "  open: {:.2}s, load_table: {:.2}s ({:.0} links/s), errors: {}",
        opened.as_secs_f64(),
        load_time.as_secs_f64(),
        links as f64 / load_time.as_secs_f64(),
        loaded.errors
    );
    Ok(())
}

fn progress(what: &str, done: u64, total: u64, started: Instant) {
    if done.is_multiple_of(PROGRESS_EVERY) && done < total {
        let elapsed = started.elapsed().max(Duration::from_millis(1));
        eprintln!(
            "  {what} {done}/{total} links ({:.0}%, {:.0} links/s)",
            done as f64 * 100.0 / total as f64,
            done as f64 / elapsed.as_secs_f64()
        );
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            _ => entry.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
