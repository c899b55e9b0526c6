//! The control plane's intake of shipped click windows: starts the
//! `ricochet-control` binary pinned to one CPU, posts pre-encoded windows to
//! `POST /internal/v1/clicks` one after another (as engines' writer threads
//! do), and reads the control plane's CPU time from /proc: while taking the
//! windows in, and again once its background rollups are done.
//!
//! Each window holds `--links` distinct links with one click each (a total
//! and a country row per link: uniform traffic, the most rows per click).
//!
//! Run (client on CPU 1, control plane on CPU 0):
//! `cargo build --release -p ricochet-control -p ricochet-benches && taskset -c 1 target/release/click-intake`

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use ricochet_clickstore::control::{CONTENT_TYPE, encode_batch};
use ricochet_model::clicks::{Dimension, WINDOW_MILLIS, WindowBatch, WindowRow};

/// Start of the first window (2026-11-24T00:00:00Z).
const START: i64 = 1_795_478_400_000;
const COUNTRIES: [&str; 8] = ["DE", "FR", "US", "NL", "GB", "JP", "BR", "IN"];
const TOKEN: &str = "click-intake-bench-token";

#[derive(Debug, Parser)]
struct Args {
    /// The control plane binary.
    #[arg(long, default_value = "target/release/ricochet-control")]
    control_bin: PathBuf,
    /// CPU the control plane is pinned to.
    #[arg(long, default_value_t = 0)]
    server_cpu: usize,
    /// Windows to ship (each a different 10 s).
    #[arg(long, default_value_t = 60)]
    windows: u64,
    /// Distinct links, one click each, per window.
    #[arg(long, default_value_t = 100_000)]
    links: u64,
    /// Links the windows draw from.
    #[arg(long, default_value_t = 1_000_000)]
    link_space: u64,
}

fn window(index: u64, args: &Args) -> WindowBatch {
    let at = START + index as i64 * WINDOW_MILLIS;
    let first = index * args.links % args.link_space;
    let mut links: Vec<u64> = (0..args.links)
        .map(|i| (first + i * 7) % args.link_space + 1)
        .collect();
    links.sort_unstable();
    links.dedup();
    let rows = links
        .iter()
        .flat_map(|&link| {
            let country = COUNTRIES[(link % COUNTRIES.len() as u64) as usize];
            [(Dimension::Total, ""), (Dimension::Country, country)].map(|(dimension, value)| {
                WindowRow {
                    link_id: link,
                    window_start: at,
                    dimension,
                    value: value.to_owned(),
                    bot: false,
                    count: 1,
                }
            })
        })
        .collect();
    WindowBatch {
        node: "bench-engine".to_owned(),
        shard: 0,
        window_start: at,
        rows,
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("unreadable /proc stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let mut control = Command::new("taskset")
        .arg("-c")
        .arg(args.server_cpu.to_string())
        .arg(&args.control_bin)
        .env(
            "RICOCHET_CONTROL_SERVER__LISTEN",
            format!("127.0.0.1:{port}"),
        )
        .env("RICOCHET_CONTROL_SERVER__WORKERS", "1")
        .env("RICOCHET_CONTROL_STORAGE__DATA_DIR", dir.path())
        .env("RICOCHET_CONTROL_BUS__CLUSTER_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", args.control_bin.display()))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.get(format!("{base}/healthz")).call().is_err() {
        if Instant::now() > deadline {
            bail!("the control plane did not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("encoding {} windows of {} links", args.windows, args.links);
    let bodies: Vec<(usize, Vec<u8>)> = (0..args.windows)
        .map(|i| {
            let batch = window(i, &args);
            (batch.rows.len(), encode_batch(&batch))
        })
        .collect();
    let rows: usize = bodies.iter().map(|(rows, _)| rows).sum();
    let bytes: usize = bodies.iter().map(|(_, body)| body.len()).sum();
    let clicks = rows / 2;

    let pid = control.id();
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    for (_, body) in &bodies {
        let status = agent
            .post(format!("{base}/internal/v1/clicks"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .header("Content-Type", CONTENT_TYPE)
            .send(&body[..])?
            .status();
        if status.as_u16() != 204 {
            bail!("the control plane answered {status}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_intake = cpu_seconds(pid)? - cpu_before;
    // Rollups run in the background (every 5 s, 20 s after a bucket ends);
    // wait until the process has been idle for 3 s in a row.
    let mut last = cpu_seconds(pid)?;
    let mut idle = 0;
    let settle_deadline = Instant::now() + Duration::from_secs(600);
    while idle < 3 && Instant::now() < settle_deadline {
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_seconds(pid)?;
        idle = if now - last < 0.02 { idle + 1 } else { 0 };
        last = now;
    }
    let cpu_total = last - cpu_before;
    let _ = control.kill();
    let _ = control.wait();

    let per_million = |cpu: f64| cpu / clicks as f64 * 1e6;
    println!(
        "windows {} · rows {rows} · clicks {clicks} · {:.1} MB encoded ({:.1} bytes/row)",
        args.windows,
        bytes as f64 / 1e6,
        bytes as f64 / rows as f64
    );
    println!(
        "intake: {elapsed:.2} s wall, {:.0} rows/s, {:.0} windows/s",
        rows as f64 / elapsed,
        args.windows as f64 / elapsed
    );
    println!(
        "control plane CPU: {cpu_intake:.2} s taking windows in ({:.2} s per million clicks), \
         {cpu_total:.2} s with rollups ({:.2} s per million clicks)",
        per_million(cpu_intake),
        per_million(cpu_total)
    );
    Ok(())
}
