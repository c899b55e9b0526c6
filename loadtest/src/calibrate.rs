//! The generator's own ceiling: one generator thread against the built-in
//! fixed-response server (each on its own CPU when given), closed loop and
//! pipelined, optionally next to `wrk` on the same core. Saved to a file so
//! every later report states it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fixed_server::FixedServer;
use crate::keys::KeySet;
use crate::report::utc_now;
use crate::run::{LoadSpec, RunSpec, run};
use crate::schedule::Mode;
use crate::stats::Progress;
use crate::traffic::TrafficShape;
use crate::visitors::Visitors;

/// Where `calibrate` saves its result and reports look for it.
pub const DEFAULT_CEILING_FILE: &str = "loadtest-results/ceiling.json";

/// What the generator reaches on this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ceiling {
    pub measured_at: String,
    /// Closed loop, one thread, depth 1.
    pub rate: f64,
    pub connections: usize,
    /// CPU share of the generator thread during that run (1.0 = saturated).
    pub generator_busy: f64,
    /// CPU share of the fixed server (near 1.0: the server, not the
    /// generator, was the limit and the ceiling is higher).
    pub server_busy: f64,
    /// Closed loop, one thread, pipelined.
    pub pipelined_rate: f64,
    pub pipeline_depth: usize,
    /// `wrk -t1` with the same connections against the same server.
    pub wrk_rate: Option<f64>,
    pub generator_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
    /// "plain" or "varied" visitors (files saved before this field: plain).
    #[serde(default = "plain")]
    pub visitors: String,
}

fn plain() -> String {
    "plain".into()
}

/// How to calibrate.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    pub duration: Duration,
    pub connections: usize,
    pub pipeline_depth: usize,
    pub generator_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
    /// Also run wrk (found on PATH) for comparison.
    pub wrk: bool,
    /// Who the generator's requests come from (varied visitors make larger
    /// requests and cost the generator a little more).
    pub visitors: Visitors,
}

impl Default for CalibrateOptions {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(10),
            connections: 64,
            pipeline_depth: 16,
            generator_cpu: None,
            server_cpu: None,
            wrk: false,
            visitors: Visitors::Plain,
        }
    }
}

/// Measures the ceiling; `progress` gets a label and the live figures.
pub fn calibrate(
    options: &CalibrateOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&str, &Progress),
) -> Result<Ceiling> {
    let keys = Arc::new(KeySet::parse("calibrate\n", "calibration keys")?);
    let mut measure = |depth: usize, label: &str| -> Result<(f64, f64, f64)> {
        let server = FixedServer::start(options.server_cpu)?;
        let spec = RunSpec {
            target: "fixed-response".into(),
            phase: label.into(),
            round: 1,
            addr: server.addr(),
            host: "localhost".into(),
            tls: false,
            load: LoadSpec {
                mode: Mode::Closed,
                connections: options.connections,
                threads: 1,
                depth,
                duration: options.duration,
                cpus: options.generator_cpu.into_iter().collect(),
                ..LoadSpec::default()
            },
            shape: TrafficShape {
                visitors: options.visitors.clone(),
                ..TrafficShape::default()
            },
            keys: keys.clone(),
            server_pid: None,
        };
        let result = run(&spec, stop, &mut |p| progress(label, p))?;
        let stats = server.stop();
        if result.error_total > 0 {
            return Err(Error::Invalid(format!(
                "calibration run had errors: {:?}",
                result.errors
            )));
        }
        Ok((
            result.throughput,
            result.generator.busy,
            stats.cpu_ns as f64 / 1e9 / result.elapsed_s,
        ))
    };
    let (rate, generator_busy, server_busy) = measure(1, "depth 1")?;
    let (pipelined_rate, _, _) = measure(options.pipeline_depth, "pipelined")?;
    let wrk_rate = if options.wrk {
        Some(run_wrk(options)?)
    } else {
        None
    };
    Ok(Ceiling {
        measured_at: utc_now(),
        rate,
        connections: options.connections,
        generator_busy,
        server_busy,
        pipelined_rate,
        pipeline_depth: options.pipeline_depth,
        wrk_rate,
        generator_cpu: options.generator_cpu,
        server_cpu: options.server_cpu,
        visitors: options.visitors.name().into(),
    })
}

/// wrk -t1 against a fresh fixed-response server, on the generator's CPU.
fn run_wrk(options: &CalibrateOptions) -> Result<f64> {
    let server = FixedServer::start(options.server_cpu)?;
    let url = format!("http://{}/calibrate", server.addr());
    let seconds = options.duration.as_secs().max(1).to_string();
    let connections = options.connections.to_string();
    let mut command = match options.generator_cpu {
        Some(cpu) => {
            let mut c = std::process::Command::new("taskset");
            c.args(["-c", &cpu.to_string(), "wrk"]);
            c
        }
        None => std::process::Command::new("wrk"),
    };
    command.args(["-t1", "-c", &connections, "-d", &seconds, &url]);
    let output = command
        .output()
        .map_err(|e| Error::io("cannot run wrk (is it installed? apt-get install wrk)", e))?;
    drop(server);
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk_rate(&text).ok_or_else(|| {
        Error::Invalid(format!(
            "cannot find \"Requests/sec:\" in wrk's output:\n{text}{}",
            String::from_utf8_lossy(&output.stderr)
        ))
    })
}

/// The `Requests/sec:` figure of wrk's output.
pub fn parse_wrk_rate(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Reads a saved ceiling; `None` when there is none or it does not parse.
pub fn load(path: &Path) -> Option<Ceiling> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Saves a ceiling for later reports.
pub fn save(path: &Path, ceiling: &Ceiling) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    }
    let text = serde_json::to_string_pretty(ceiling).unwrap_or_default();
    std::fs::write(path, text).map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn wrk_output() {
        let text = "Running 10s test\n  1 threads\nRequests/sec:  94912.33\nTransfer/sec: 10MB\n";
        assert_eq!(super::parse_wrk_rate(text), Some(94912.33));
    }
}
