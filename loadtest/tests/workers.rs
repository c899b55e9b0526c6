//! Several generators for one phase: workers (threads of this process, and
//! real worker processes over loopback) against the fixed-response server.
//! Merged counts are the sum of the workers' counts, two workers at 2R see
//! the distribution one worker at 2R sees, and a worker killed mid-phase is
//! reported with its share counted as not sent.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{load, run_once};
use ricochet_loadtest::fixed_server::FixedServer;
use ricochet_loadtest::suite::Suite;
use ricochet_loadtest::worker::{self, LocalWorkers};
use ricochet_loadtest::{LoadSpec, Mode, RunResult, TrafficShape};

/// Bare codes: any redirect is a correct answer (the fixed server sends one
/// 301 to every request).
const KEYS: &str = "abc\ndef\n";

/// A worker serving on a thread of this process until dropped.
struct ThreadWorker {
    address: String,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ThreadWorker {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = std::thread::spawn({
            let stop = stop.clone();
            move || worker::serve(&listener, &[], &stop, &mut |_| {}).unwrap()
        });
        Self {
            address,
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for ThreadWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn open_loop(rate: f64, duration_ms: u64, workers: &[&str]) -> LoadSpec {
    let mut spec = load(8, duration_ms);
    spec.mode = Mode::Open { rate };
    spec.workers = workers.iter().map(|w| w.to_string()).collect();
    spec
}

/// Larger over smaller, figures below `floor` counting as `floor`: 1 for
/// figures alike. (A loaded test machine stalls a thread now and then; a
/// floor keeps a few milliseconds of that from reading as another shape.)
fn ratio(a: f64, b: f64, floor: f64) -> f64 {
    let (a, b) = (a.max(floor), b.max(floor));
    a.max(b) / a.min(b)
}

fn assert_accounted(result: &RunResult) {
    let sent: u64 = result.workers.iter().map(|w| w.sent).sum();
    let responses: u64 = result.workers.iter().map(|w| w.responses).sum();
    assert_eq!(result.sent, sent, "{:?}", result.workers);
    assert_eq!(result.responses, responses, "{:?}", result.workers);
}

#[test]
fn two_workers_at_2r_merge_into_what_one_worker_at_2r_sees() {
    let server = FixedServer::start(None).unwrap();
    let (a, b, c) = (
        ThreadWorker::start(),
        ThreadWorker::start(),
        ThreadWorker::start(),
    );
    let two = run_once(
        server.addr(),
        KEYS,
        open_loop(2000.0, 2000, &[&a.address, &b.address]),
        TrafficShape::default(),
    );
    let one = run_once(
        server.addr(),
        KEYS,
        open_loop(2000.0, 2000, &[&c.address]),
        TrafficShape::default(),
    );
    for result in [&two, &one] {
        assert_eq!(result.error_total, 0, "{:?}", result.errors);
        assert!(
            result.workers.iter().all(|w| w.lost.is_none()),
            "{:?}",
            result.workers
        );
        assert_accounted(result);
        // The open loop's timetable: 2,000/s for 2 s, whoever sends it.
        assert_eq!(result.sent, 4000);
        assert_eq!(result.responses, 4000);
    }
    assert_eq!(two.workers.len(), 2);
    assert!(
        two.workers
            .iter()
            .all(|w| w.rate == Some(1000.0) && w.sent == 2000)
    );
    assert_eq!(one.workers[0].rate, Some(2000.0));
    assert_eq!(server.requests(), 8000);
    // The same shape: the median and p99 of the merged histogram within an
    // order of magnitude of one worker's (no timing is asserted: below 1 ms
    // and 10 ms they count as equal).
    assert!(
        ratio(two.latency_ms.p50, one.latency_ms.p50, 1.0) < 10.0,
        "{:?} {:?}",
        two.latency_ms,
        one.latency_ms
    );
    assert!(
        ratio(two.latency_ms.p99, one.latency_ms.p99, 10.0) < 10.0,
        "{:?} {:?}",
        two.latency_ms,
        one.latency_ms
    );
    assert!(two.latency_ms.p50 <= two.latency_ms.p99 && two.latency_ms.p99 <= two.latency_ms.max);
    let per_second: u64 = two.per_second.iter().sum();
    assert_eq!(per_second, two.responses);
    // The merged run's interval log: every answer in one of its seconds,
    // from the instant the workers started.
    for result in [&two, &one] {
        let seconds = &result.intervals.seconds;
        assert!(seconds.len() >= 2, "{} seconds", seconds.len());
        let counted: u64 = seconds
            .iter()
            .map(|s| ricochet_loadtest::hlog::decode(&s.encoded).unwrap().len())
            .sum();
        assert_eq!(counted, result.responses);
        assert!(result.intervals.started.is_some());
        // From each request's actual send: never longer than from its
        // intended send, so no percentile of it is either.
        let service = result
            .service_ms
            .as_ref()
            .expect("an open loop's service times");
        let latency = &result.latency_ms;
        for (s, l) in [
            (service.p50, latency.p50),
            (service.p99, latency.p99),
            (service.max, latency.max),
        ] {
            assert!(s <= l, "{service:?} {latency:?}");
        }
    }
}

#[test]
fn closed_loop_requests_are_split_exactly() {
    let server = FixedServer::start(None).unwrap();
    let (a, b) = (ThreadWorker::start(), ThreadWorker::start());
    let mut spec = load(3, 30_000);
    spec.max_requests = Some(1001);
    spec.workers = vec![a.address.clone(), b.address.clone()];
    let result = run_once(server.addr(), KEYS, spec, TrafficShape::default());
    assert_eq!(result.error_total, 0, "{:?}", result.errors);
    assert_eq!(
        (result.sent, result.responses, result.ok),
        (1001, 1001, 1001)
    );
    let sent: Vec<u64> = result.workers.iter().map(|w| w.sent).collect();
    assert_eq!(sent, [501, 500]);
    assert_eq!(server.requests(), 1001);
}

#[test]
fn a_worker_that_cannot_be_reached_is_named_and_its_share_not_sent() {
    let server = FixedServer::start(None).unwrap();
    let a = ThreadWorker::start();
    let nobody = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let result = run_once(
        server.addr(),
        KEYS,
        open_loop(1000.0, 1000, &[&a.address, &nobody]),
        TrafficShape::default(),
    );
    let [reached, lost] = &result.workers[..] else {
        panic!("{:?}", result.workers);
    };
    assert!(reached.lost.is_none());
    assert_eq!(reached.responses, 500);
    assert_eq!(lost.address, nobody);
    assert!(
        lost.lost.as_deref().unwrap().contains("cannot be reached"),
        "{lost:?}"
    );
    assert_eq!(lost.not_sent, 500);
    assert_eq!(result.errors.get("not_sent"), Some(&500));
    assert_eq!(result.responses, 500);
}

#[test]
fn a_worker_killed_mid_phase_is_reported() {
    let server = FixedServer::start(None).unwrap();
    let mut workers =
        LocalWorkers::spawn(env!("CARGO_BIN_EXE_ricochet-loadtest").as_ref(), 2, &[]).unwrap();
    let addresses = workers.addresses().to_vec();
    let addr = server.addr();
    let phase = std::thread::spawn(move || {
        let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let mut spec = open_loop(1000.0, 4000, &refs);
        spec.timeout = Duration::from_secs(1);
        run_once(addr, KEYS, spec, TrafficShape::default())
    });
    // Once both workers are sending, kill one.
    let give_up = Instant::now() + Duration::from_secs(30);
    while server.requests() < 300 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(server.requests() >= 300, "the phase never started");
    workers.kill(1).unwrap();
    let result = phase.join().unwrap();
    let [alive, killed] = &result.workers[..] else {
        panic!("{:?}", result.workers);
    };
    assert!(alive.lost.is_none(), "{alive:?}");
    assert_eq!(alive.sent, 2000);
    let reason = killed
        .lost
        .as_deref()
        .expect("the killed worker is reported");
    assert!(reason.contains("mid-phase"), "{reason}");
    assert_eq!(
        (killed.sent, killed.responses, killed.not_sent),
        (0, 0, 2000)
    );
    // Its share is in the books as not sent; nothing of it is merged.
    assert_eq!(
        result.errors.get("not_sent").copied(),
        Some(2000 + alive.not_sent)
    );
    assert_eq!(result.responses, alive.responses);
    drop(workers);
}

#[test]
fn a_worker_that_falls_silent_mid_phase_is_reported() {
    let server = FixedServer::start(None).unwrap();
    let workers =
        LocalWorkers::spawn(env!("CARGO_BIN_EXE_ricochet-loadtest").as_ref(), 2, &[]).unwrap();
    let addresses = workers.addresses().to_vec();
    let addr = server.addr();
    let phase = std::thread::spawn(move || {
        let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        run_once(
            addr,
            KEYS,
            open_loop(1000.0, 3000, &refs),
            TrafficShape::default(),
        )
    });
    let give_up = Instant::now() + Duration::from_secs(30);
    while server.requests() < 300 && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Stopped, not dead: its connection stays open and says nothing.
    let stopped = Command::new("kill")
        .args(["-STOP", &workers.pids()[0].to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let result = phase.join().unwrap();
    let [silent, alive] = &result.workers[..] else {
        panic!("{:?}", result.workers);
    };
    let reason = silent
        .lost
        .as_deref()
        .expect("the silent worker is reported");
    assert!(reason.contains("fell silent"), "{reason}");
    assert_eq!(silent.not_sent, 1500);
    assert!(alive.lost.is_none(), "{alive:?}");
    assert_eq!(result.responses, alive.responses);
    assert_eq!(
        result.errors.get("not_sent").copied(),
        Some(1500 + alive.not_sent)
    );
    drop(workers);
}

#[test]
fn run_spawns_pinned_local_workers_from_the_command_line() {
    let server = FixedServer::start(None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, KEYS).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_ricochet-loadtest"))
        .args(["run", &format!("http://{}", server.addr())])
        .args(["--keys", keys.to_str().unwrap()])
        .args(["--rate", "400", "--duration", "1s", "--spawn-workers", "2"])
        .args(["--json", "--quiet", "--out", "none"])
        .args(["--ceiling", dir.path().join("none.json").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let run = &report["runs"][0];
    let workers = run["workers"].as_array().expect("workers in the report");
    assert_eq!(workers.len(), 2, "{run}");
    let responses: u64 = workers
        .iter()
        .map(|w| w["responses"].as_u64().unwrap())
        .sum();
    assert_eq!(run["responses"].as_u64(), Some(responses));
    assert_eq!(run["sent"].as_u64(), Some(400));
    assert_eq!(run["error_total"].as_u64(), Some(0), "{run}");
    assert!(workers.iter().all(|w| w.get("lost").is_none()), "{run}");
}

#[test]
fn suites_give_phases_their_workers() {
    let server = FixedServer::start(None).unwrap();
    let (a, b) = (ThreadWorker::start(), ThreadWorker::start());
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, KEYS).unwrap();
    let text = format!(
        "[keys]\nfile = \"{keys}\"\n\n[load]\nmode = \"open\"\nrate = 400\nduration = \"1s\"\nconnections = 4\nworkers = [\"{a}\", \"{b}\"]\n\n[[phase]]\nname = \"here\"\nworkers = []\n\n[[phase]]\nname = \"spread\"\n\n[[target]]\nname = \"fixed\"\nurl = \"http://{addr}\"\n",
        keys = keys.display(),
        a = a.address,
        b = b.address,
        addr = server.addr(),
    );
    let suite = Suite::parse(&text, "s.toml").unwrap();
    assert!(suite.phases[0].load.workers.is_empty());
    assert_eq!(
        suite.phases[1].load.workers,
        [a.address.clone(), b.address.clone()]
    );
    let report = common::execute_in(dir.path(), &suite).unwrap();
    let [here, spread] = &report.runs[..] else {
        panic!("{:?}", report.runs);
    };
    assert!(here.workers.is_empty());
    assert_eq!(spread.workers.len(), 2);
    for run in [here, spread] {
        assert_eq!(
            (run.sent, run.responses, run.error_total),
            (400, 400, 0),
            "{run:?}"
        );
    }
    assert_accounted(spread);

    let err = Suite::parse(
        "[keys]\ngenerate = 10\n[load]\nworkers = [\"nowhere\"]\n",
        "s.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("s.toml:4:1: [load] workers: \"nowhere\" is not a worker address"),
        "{err}"
    );
}
