//! One measured run against one target: starts the generator threads (each
//! with its own event loop, optionally pinned to a CPU), reports progress,
//! merges their counts and turns them into a `RunResult`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::{ThreadPlan, drive};
use crate::error::{Error, Result};
use crate::flood::FloodResult;
use crate::hlog::LatencyIntervals;
use crate::keys::KeySet;
use crate::procstat;
use crate::schedule::{Mode, Timetable};
use crate::stats::{ErrorKind, LiveCounters, Progress, Recorder};
use crate::traffic::{RequestMaker, TrafficShape};
use crate::transport::TlsClient;

/// How hard and how long to push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadSpec {
    #[serde(flatten)]
    pub mode: Mode,
    pub connections: usize,
    pub threads: usize,
    /// Requests in flight per connection (pipelining when above 1).
    pub depth: usize,
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// A request without an answer after this long is a timeout; also the
    /// connect timeout.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// After the duration, answers are awaited this long at most.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    /// Closed loop: stop after this many requests (exact counts).
    pub max_requests: Option<u64>,
    /// Pin generator thread i to CPU `cpus[i % len]`.
    pub cpus: Vec<usize>,
    /// After the load, wait this long and then until the target's process
    /// is idle (at most `IDLE_WAIT`) before reading its CPU time, so work it
    /// defers (a click engine writing its last window, rolling up minutes)
    /// counts with the run that caused it. Zero: read it when the load ends.
    #[serde(with = "humantime_serde")]
    pub settle: Duration,
    /// Requests a connection carries before it is closed and a new one
    /// opened; `None`: kept alive for the whole run. `Some(1)` measures
    /// connection set-up: a new TCP connection (and, over https, a new TLS
    /// handshake) for every request.
    pub requests_per_connection: Option<u64>,
    /// https targets: whether a thread's connections resume each other's
    /// TLS sessions (a shared session store); when false, every handshake
    /// is a full one (no session kept or offered).
    pub tls_resumption: bool,
    /// Local addresses connections are made from, in turn (connection `i`
    /// from `source[i % len]`; e.g. 127.0.0.2: on Linux all of 127.0.0.0/8
    /// is loopback), so the server sees other clients; empty: the address
    /// the OS picks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source: Vec<IpAddr>,
    /// Worker addresses (`ricochet-loadtest worker`): the phase starts on
    /// all of them at one instant, each with an equal share of the rate,
    /// connections and requests, and their histograms are merged. Empty:
    /// this process generates the load.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<String>,
}

/// Most workers one phase may run on.
pub const MAX_WORKERS: usize = 256;

/// Longest wait for the target to go idle after `settle`.
pub const IDLE_WAIT: Duration = Duration::from_secs(180);
/// The target is idle when it used at most this much CPU over `IDLE_STEP`.
const IDLE_CPU: Duration = Duration::from_millis(10);
const IDLE_STEP: Duration = Duration::from_secs(1);

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            mode: Mode::Closed,
            connections: 64,
            threads: 1,
            depth: 1,
            duration: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            grace: Duration::from_secs(2),
            max_requests: None,
            cpus: Vec::new(),
            settle: Duration::ZERO,
            requests_per_connection: None,
            tls_resumption: false,
            source: Vec::new(),
            workers: Vec::new(),
        }
    }
}

impl LoadSpec {
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Invalid(m));
        if self.threads == 0 {
            return bad("threads must be at least 1".into());
        }
        if self.connections < self.threads {
            return bad(format!(
                "connections ({}) must be at least the number of threads ({})",
                self.connections, self.threads
            ));
        }
        if self.depth == 0 || self.depth > 1024 {
            return bad(format!(
                "depth must be between 1 and 1024, not {}",
                self.depth
            ));
        }
        if self.duration.is_zero() {
            return bad("duration must be positive".into());
        }
        if self.timeout.is_zero() {
            return bad("timeout must be positive".into());
        }
        if let Mode::Open { rate } = self.mode
            && !(rate > 0.0 && rate.is_finite())
        {
            return bad(format!("the open loop needs a positive rate, not {rate}"));
        }
        if self.workers.len() > MAX_WORKERS {
            return bad(format!("at most {MAX_WORKERS} workers"));
        }
        if self.requests_per_connection == Some(0) {
            return bad(
                "requests_per_connection must be at least 1 (leave it out to keep connections alive)"
                    .into(),
            );
        }
        Ok(())
    }

    /// Short description: "open 20000/s" or "closed".
    pub fn mode_label(&self) -> String {
        match self.mode {
            Mode::Closed => "closed".into(),
            Mode::Open { rate } => format!("open {}/s", rate),
        }
    }
}

/// One run's inputs.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub target: String,
    pub phase: String,
    pub round: usize,
    pub addr: SocketAddr,
    /// Host header of keys on the default domain; over TLS also the server
    /// name of every handshake (without its port; none for an IP address).
    pub host: String,
    /// Speak TLS (an https:// target); certificates are not verified.
    pub tls: bool,
    pub load: LoadSpec,
    pub shape: TrafficShape,
    pub keys: Arc<KeySet>,
    /// Process whose CPU and memory are measured (with its descendants).
    pub server_pid: Option<u32>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Latency {
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        }
    }
}

/// The generator's own cost, to show it was not the bottleneck.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GeneratorUse {
    pub threads: usize,
    pub cpu_s: f64,
    /// CPU time over (threads × elapsed): near 1.0 means the generator was
    /// saturated and the figures are a lower bound of the server's.
    pub busy: f64,
    pub cpu_per_request_us: f64,
}

/// The target's cost, measured from /proc when its process is known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ServerUse {
    pub cpu_s: f64,
    /// CPU time over elapsed time (1.0 = one core).
    pub cores: f64,
    pub cpu_per_request_us: f64,
    /// Of `cpu_per_request_us`, what the target used after the load ended
    /// (non-zero only with `settle`).
    pub deferred_cpu_per_request_us: f64,
    pub rss_mb: f64,
}

/// Propagation of control-plane edits to the engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PropagationResult {
    pub edits: u64,
    /// Edits whose new target was never served within the timeout.
    pub not_propagated: u64,
    /// Failed API calls.
    pub api_errors: u64,
    pub latency_ms: Latency,
}

/// What a restart under load cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RestartResult {
    /// Seconds into the run when the stop signal was sent.
    pub stopped_at_s: f64,
    /// Stop signal to process exit.
    pub stop_ms: f64,
    /// New process spawned to its readiness URL answering 200.
    pub start_to_ready_ms: Option<f64>,
    /// New process spawned to the first correct redirect.
    pub start_to_serving_ms: Option<f64>,
    /// Stop signal to the first correct redirect of the new process.
    pub unavailable_ms: Option<f64>,
    /// Errors of the run by kind (all of them happen around the restart
    /// unless the target is failing anyway).
    pub errors: BTreeMap<String, u64>,
}

/// Correct answers that went to one target of the links (runs on links
/// with behaviour).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationCount {
    /// A destination of the links' rules or variants, or [`OWN_URL`].
    pub destination: String,
    pub answers: u64,
}

/// How [`DestinationCount`] names each link's own URL.
pub const OWN_URL: &str = "(the link's own URL)";

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub target: String,
    pub phase: String,
    pub round: usize,
    pub load: LoadSpec,
    pub elapsed_s: f64,
    pub sent: u64,
    pub responses: u64,
    /// Responses with the expected status and target.
    pub ok: u64,
    /// Connections the generator established.
    pub connections_opened: u64,
    /// TLS handshakes completed (https targets), and of those how many
    /// resumed a session; failed ones are `tls` errors.
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    /// Of those, how many went to each target the links' behaviour can
    /// choose (empty for links without behaviour).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub destinations: Vec<DestinationCount>,
    /// Responses per second.
    pub throughput: f64,
    pub latency_ms: Latency,
    /// Open loop: how late requests left after their intended time.
    pub send_lag_ms: Option<Latency>,
    /// Open loop: from when each request actually left to its answer (wrk's
    /// uncorrected latency): the server's and the network's part of
    /// `latency_ms`, without the generator's lateness. Never a substitute
    /// for `latency_ms` (a server that stalls also delays later sends).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ms: Option<Latency>,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub error_total: u64,
    /// Responses in each second of the run.
    pub per_second: Vec<u64>,
    pub errors_per_second: Vec<u64>,
    /// (percentile, latency ms) from p0 to p99.999 and the max, for plots.
    pub percentiles: Vec<(f64, f64)>,
    pub generator: GeneratorUse,
    pub server: Option<ServerUse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<PropagationResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartResult>,
    /// Wrong passwords sent beside the load (`[flood]`) and their answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flood: Option<FloodResult>,
    /// Latencies per second of the run, for the `.hlog` files (not in JSON).
    #[serde(skip)]
    pub intervals: LatencyIntervals,
    /// Each worker's part when the phase ran on several (`workers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerShare>,
}

/// What one worker of a phase did. A worker lost mid-phase contributes no
/// latencies; its whole share is counted as `not_sent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerShare {
    pub address: String,
    /// Its part of the open loop's rate.
    pub rate: Option<f64>,
    pub sent: u64,
    pub responses: u64,
    /// Requests of its share counted as `not_sent` because it was lost.
    pub not_sent: u64,
    /// Why it was lost (it died, stopped answering or failed); `None`
    /// when it reported its counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<String>,
}

/// Connections of thread `index` when `total` are spread over `threads`.
fn share(total: u64, threads: usize, index: usize) -> u64 {
    let threads = threads as u64;
    total / threads + u64::from((index as u64) < total % threads)
}

/// Runs `spec`, calling `on_progress` about four times a second. With
/// `workers` in the load, the phase runs on them instead (`worker`).
pub fn run(
    spec: &RunSpec,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<RunResult> {
    spec.load.validate()?;
    spec.shape.validate()?;
    if !spec.load.workers.is_empty() {
        return crate::worker::coordinate(spec, stop, on_progress);
    }
    let server_before = spec.server_pid.and_then(procstat::tree_cpu);
    let start = Instant::now() + Duration::from_millis(5);
    let started = SystemTime::now() + Duration::from_millis(5);
    let mut total = record(spec, start, stop, on_progress)?;
    let intervals = LatencyIntervals {
        started: Some(started),
        seconds: std::mem::take(&mut total.intervals).finish(),
    };
    let elapsed = Duration::from_nanos(total.elapsed_ns.max(1));
    let server = server_use(spec, server_before.as_ref(), &total, elapsed, stop);
    let mut result = summarize(spec, &total, elapsed, server);
    result.intervals = intervals;
    Ok(result)
}

/// Runs the generator threads of `spec` from `start` (an instant shared
/// with other workers, or just ahead) and returns their merged counts.
pub fn record(
    spec: &RunSpec,
    start: Instant,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Recorder> {
    spec.load.validate()?;
    spec.shape.validate()?;
    let load = &spec.load;
    let deadline = start + load.duration;
    let hard_end = deadline + load.grace.min(load.timeout);
    let live: Vec<LiveCounters> = (0..load.threads).map(|_| LiveCounters::default()).collect();
    let core_ids = core_affinity::get_core_ids().unwrap_or_default();
    let mut plans = Vec::with_capacity(load.threads);
    for thread in 0..load.threads {
        let timetable = match load.mode {
            Mode::Closed => None,
            Mode::Open { rate } => Some(Timetable::new(
                start,
                rate / load.threads as f64,
                thread as f64 / load.threads as f64,
                load.duration,
                load.max_requests.map(|m| share(m, load.threads, thread)),
            )),
        };
        let plan = ThreadPlan {
            addr: spec.addr,
            connections: share(load.connections as u64, load.threads, thread) as usize,
            depth: load.depth,
            timetable,
            max_requests: load.max_requests.map(|m| share(m, load.threads, thread)),
            start,
            deadline,
            hard_end,
            timeout: load.timeout,
            stride: load.threads as u64,
            requests_per_connection: load.requests_per_connection.unwrap_or(u64::MAX),
            source: load.source.clone(),
            // Each thread its own configuration: with resumption, its
            // connections share one session store.
            tls: match spec.tls {
                false => None,
                true => Some(
                    TlsClient::new(&spec.host, load.tls_resumption)
                        .map_err(|e| Error::Invalid(format!("host {:?}: {e}", spec.host)))?,
                ),
            },
        };
        let maker = RequestMaker::new(&spec.shape, &spec.keys, &spec.host, thread)?;
        let core = match load.cpus.get(thread % load.cpus.len().max(1)) {
            None => None,
            Some(&cpu) => Some(
                core_ids
                    .iter()
                    .find(|id| id.id == cpu)
                    .copied()
                    .ok_or_else(|| Error::Invalid(format!("no CPU {cpu} on this machine")))?,
            ),
        };
        plans.push((plan, maker, core));
    }
    let keys: &KeySet = &spec.keys;
    let live = &live;
    let recorders = std::thread::scope(|scope| -> Result<Vec<Result<Recorder>>> {
        let mut handles = Vec::with_capacity(load.threads);
        for (thread, (plan, maker, core)) in plans.into_iter().enumerate() {
            let handle = std::thread::Builder::new()
                .name(format!("loadgen-{thread}"))
                .spawn_scoped(scope, move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    drive(&plan, keys, maker, &live[thread], stop)
                })
                .map_err(|e| Error::io("cannot start a generator thread", e))?;
            handles.push(handle);
        }
        // Progress until every thread is done.
        let mut last_responses = 0u64;
        let mut last_at = Instant::now();
        while handles.iter().any(|h| !h.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
            let now = Instant::now();
            if now.saturating_duration_since(last_at) < Duration::from_millis(250) {
                continue;
            }
            let mut progress = Progress {
                elapsed_s: now.saturating_duration_since(start).as_secs_f64(),
                duration_s: load.duration.as_secs_f64(),
                ..Progress::default()
            };
            let mut max_us = 0;
            for counters in live.iter() {
                progress.responses += counters.responses.load(Ordering::Relaxed);
                progress.errors += counters.errors.load(Ordering::Relaxed);
                progress.in_flight += counters.in_flight.load(Ordering::Relaxed);
                max_us = max_us.max(counters.max_latency_us.swap(0, Ordering::Relaxed));
            }
            progress.max_latency_ms = max_us as f64 / 1000.0;
            let dt = now.saturating_duration_since(last_at).as_secs_f64();
            if dt > 0.0 {
                progress.rate = progress.responses.saturating_sub(last_responses) as f64 / dt;
            }
            last_responses = progress.responses;
            last_at = now;
            on_progress(&progress);
        }
        Ok(handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("a generator thread panicked".into())))
            })
            .collect())
    })?;
    let mut total = Recorder::new();
    for recorder in recorders {
        total.merge(&recorder?);
    }
    Ok(total)
}

/// The target's CPU and memory over a run that used `total` requests and
/// `elapsed`, from its CPU time `before` (none without a process to watch).
pub(crate) fn server_use(
    spec: &RunSpec,
    before: Option<&procstat::CpuSnapshot>,
    total: &Recorder,
    elapsed: Duration,
    stop: &AtomicBool,
) -> Option<ServerUse> {
    let pid = spec.server_pid?;
    let at_end = procstat::tree_cpu(pid)?;
    let after = match spec.load.settle.is_zero() {
        true => at_end.clone(),
        false => settle(pid, spec.load.settle, stop).unwrap_or_else(|| at_end.clone()),
    };
    let per_request = |ns: u64| ns as f64 / 1000.0 / total.responses.max(1) as f64;
    let cpu_ns = after.since(before?);
    Some(ServerUse {
        cpu_s: cpu_ns as f64 / 1e9,
        // Over the load's time: what the target needs per second of it.
        cores: cpu_ns as f64 / elapsed.as_nanos().max(1) as f64,
        cpu_per_request_us: per_request(cpu_ns),
        deferred_cpu_per_request_us: per_request(after.since(&at_end)),
        rss_mb: procstat::tree_rss_bytes(pid).unwrap_or(0) as f64 / (1024.0 * 1024.0),
    })
}

/// Waits `settle`, then until `pid` (with its descendants) is idle, at most
/// `IDLE_WAIT`; returns its CPU time then. Ends early when `stop` is set.
fn settle(pid: u32, settle: Duration, stop: &AtomicBool) -> Option<procstat::CpuSnapshot> {
    let nap = |time: Duration| {
        let until = Instant::now() + time;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50).min(time));
        }
    };
    nap(settle);
    let give_up = Instant::now() + IDLE_WAIT;
    let mut last = procstat::tree_cpu(pid)?;
    while Instant::now() < give_up && !stop.load(Ordering::Relaxed) {
        nap(IDLE_STEP);
        let now = procstat::tree_cpu(pid)?;
        if now.since(&last) <= IDLE_CPU.as_nanos() as u64 {
            return Some(now);
        }
        last = now;
    }
    procstat::tree_cpu(pid)
}

pub(crate) fn summarize(
    spec: &RunSpec,
    total: &Recorder,
    elapsed: Duration,
    server: Option<ServerUse>,
) -> RunResult {
    let elapsed_s = elapsed.as_secs_f64().max(1e-9);
    let statuses = total
        .statuses
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(status, n)| (status as u16, *n))
        .collect();
    let errors: BTreeMap<String, u64> = ErrorKind::ALL
        .iter()
        .filter(|k| total.errors_of(**k) > 0)
        .map(|k| (k.as_str().to_owned(), total.errors_of(*k)))
        .collect();
    let open = matches!(spec.load.mode, Mode::Open { .. });
    let threads = spec.load.threads;
    RunResult {
        target: spec.target.clone(),
        phase: spec.phase.clone(),
        round: spec.round,
        load: spec.load.clone(),
        elapsed_s,
        sent: total.sent,
        responses: total.responses,
        ok: total.ok,
        connections_opened: total.connections_opened,
        tls_handshakes: total.tls_handshakes,
        tls_resumed: total.tls_resumed,
        destinations: destination_counts(&spec.keys, &total.destinations),
        throughput: total.responses as f64 / elapsed_s,
        latency_ms: Latency::from_histogram(&total.latency),
        send_lag_ms: open.then(|| Latency::from_histogram(&total.send_lag)),
        service_ms: open.then(|| Latency::from_histogram(&total.service)),
        statuses,
        error_total: total.errors.iter().sum(),
        errors,
        per_second: total.per_second.clone(),
        errors_per_second: total.errors_per_second.clone(),
        percentiles: percentile_curve(&total.latency),
        generator: GeneratorUse {
            threads,
            cpu_s: total.cpu_ns as f64 / 1e9,
            busy: total.cpu_ns as f64 / 1e9 / (elapsed_s * threads as f64),
            cpu_per_request_us: total.cpu_ns as f64 / 1000.0 / total.responses.max(1) as f64,
        },
        server,
        propagation: None,
        restart: None,
        flood: None,
        intervals: LatencyIntervals::default(),
        workers: Vec::new(),
    }
}

/// Answers by destination, when the keys carry a behaviour.
fn destination_counts(keys: &KeySet, counts: &[u64]) -> Vec<DestinationCount> {
    let Some(behaviour) = keys.behaviour() else {
        return Vec::new();
    };
    std::iter::once(OWN_URL)
        .chain(behaviour.destinations().iter().map(String::as_str))
        .enumerate()
        .map(|(index, destination)| DestinationCount {
            destination: destination.to_owned(),
            answers: counts.get(index).copied().unwrap_or(0),
        })
        .collect()
}

/// Latency at percentiles spaced evenly on a log scale of 1/(1-p).
fn percentile_curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(f64, f64)> = (0..=50)
        .map(|step| {
            let q = 1.0 - 10f64.powf(-(step as f64) / 10.0);
            (q * 100.0, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect();
    points.push((100.0, h.max() as f64 / 1000.0));
    points
}
