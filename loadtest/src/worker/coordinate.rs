//! The coordinator: one phase on several workers. Each gets an equal share
//! of the rate, connections and requests; all start at one instant; their
//! histograms are merged exactly (`Histogram::add`, never averaged
//! percentiles) and their counts summed. A worker that cannot be reached,
//! fails, dies or falls silent is named in the result and its whole share
//! is counted as `not_sent`.

use std::io::{BufReader, ErrorKind as IoErrorKind};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use super::protocol::{Command, Message, Order, receive, send};
use super::serve::unix_now_ns;
use crate::error::{Error, Result};
use crate::hlog::LatencyIntervals;
use crate::procstat;
use crate::run::{LoadSpec, RunResult, RunSpec, WorkerShare, server_use, summarize};
use crate::schedule::{Mode, Timetable};
use crate::stats::{ErrorKind, LiveCounters, Progress, Recorder};

const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// How long workers may take to prepare (a large key file travels and is parsed).
const READY_WAIT: Duration = Duration::from_secs(120);
/// Between the start being sent and the phase starting.
const LEAD: Duration = Duration::from_millis(300);
/// A worker silent this long mid-phase (it reports four times a second)
/// is lost.
const SILENCE: Duration = Duration::from_secs(5);

/// A worker the phase was given to.
struct Assigned {
    address: String,
    load: LoadSpec,
    /// Requests of its share (open loop, or a closed loop with a cap).
    planned: u64,
    stream: Option<TcpStream>,
    input: Option<BufReader<TcpStream>>,
    lost: Option<String>,
}

/// Worker `index` of `count`'s share of `total` (the first ones get the rest).
fn share(total: u64, count: usize, index: usize) -> u64 {
    let count = count as u64;
    total / count + u64::from((index as u64) < total % count)
}

/// Each worker's load: equal shares of rate, connections and requests.
fn split(load: &LoadSpec, count: usize, index: usize) -> LoadSpec {
    let mut part = load.clone();
    part.workers.clear();
    part.cpus.clear();
    if let Mode::Open { rate } = load.mode {
        part.mode = Mode::Open {
            rate: rate / count as f64,
        };
    }
    part.connections = (share(load.connections as u64, count, index) as usize).max(load.threads);
    part.max_requests = load.max_requests.map(|m| share(m, count, index));
    part
}

/// Requests the share is due to send: what is counted as not sent when the
/// worker is lost. A closed loop without a cap has no fixed share (0).
fn planned(load: &LoadSpec) -> u64 {
    match load.mode {
        Mode::Open { rate } => (0..load.threads)
            .map(|thread| {
                let cap = load.max_requests.map(|m| share(m, load.threads, thread));
                Timetable::new(
                    Instant::now(),
                    rate / load.threads as f64,
                    thread as f64 / load.threads as f64,
                    load.duration,
                    cap,
                )
                .limit()
            })
            .sum(),
        Mode::Closed => load.max_requests.unwrap_or(0),
    }
}

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let addr: SocketAddr = address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("resolves to no address"))?;
    let stream = TcpStream::connect_timeout(&addr, CONNECT_WAIT)?;
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(CONNECT_WAIT))?;
    Ok(stream)
}

/// Runs `spec` on the workers of its load.
pub fn coordinate(
    spec: &RunSpec,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<RunResult> {
    let load = &spec.load;
    let count = load.workers.len();
    let first_interval_ns = match load.mode {
        Mode::Open { rate } => 1e9 / rate,
        Mode::Closed => 0.0,
    };
    let mut workers: Vec<Assigned> = load
        .workers
        .iter()
        .enumerate()
        .map(|(index, address)| {
            let part = split(load, count, index);
            Assigned {
                address: address.clone(),
                planned: planned(&part),
                load: part,
                stream: None,
                input: None,
                lost: None,
            }
        })
        .collect();
    // Orders out, then every answer in: preparing goes on in parallel.
    for (index, worker) in workers.iter_mut().enumerate() {
        // Workers' requests interleave: worker i starts i / rate later.
        let offset = (index as f64 * first_interval_ns) as u64;
        let order = Order::new(spec, worker.load.clone(), index, offset);
        let prepared = connect(&worker.address).and_then(|mut stream| {
            send(&mut stream, &Command::Prepare(Box::new(order)))?;
            stream.set_read_timeout(Some(READY_WAIT))?;
            let input = BufReader::new(stream.try_clone()?);
            Ok((stream, input))
        });
        match prepared {
            Ok((stream, input)) => {
                worker.stream = Some(stream);
                worker.input = Some(input);
            }
            Err(e) => worker.lost = Some(format!("cannot be reached: {e}")),
        }
    }
    let mut buffer = Vec::new();
    for worker in workers.iter_mut() {
        let Some(input) = worker.input.as_mut() else {
            continue;
        };
        buffer.clear();
        worker.lost = match receive::<Message>(input, &mut buffer) {
            Ok(Some(Message::Ready)) => None,
            Ok(Some(Message::Failed { message })) => Some(format!("refused the phase: {message}")),
            Ok(Some(other)) => Some(format!("answered {other:?} instead of ready")),
            Ok(None) => Some("closed the connection before it was ready".into()),
            Err(e) => Some(format!("was not ready: {e}")),
        };
    }
    if workers.iter().all(|w| w.lost.is_some()) {
        let reasons: Vec<String> = workers
            .iter()
            .map(|w| format!("{} {}", w.address, w.lost.as_deref().unwrap_or_default()))
            .collect();
        return Err(Error::Invalid(format!(
            "no worker took the phase: {}",
            reasons.join("; ")
        )));
    }
    let server_before = spec.server_pid.and_then(procstat::tree_cpu);
    let at_unix_ns = unix_now_ns() + LEAD.as_nanos() as u64;
    let start = Instant::now() + LEAD;
    for worker in workers.iter_mut().filter(|w| w.lost.is_none()) {
        if let Some(stream) = worker.stream.as_mut()
            && let Err(e) = send(stream, &Command::Start { at_unix_ns })
        {
            worker.lost = Some(format!("cannot be started: {e}"));
        }
    }
    let live: Vec<LiveCounters> = (0..count).map(|_| LiveCounters::default()).collect();
    let done: Vec<AtomicBool> = (0..count).map(|_| AtomicBool::new(false)).collect();
    let last_end = start + load.duration + load.grace.min(load.timeout) + SILENCE;
    let outcomes: Vec<std::result::Result<Recorder, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter_mut()
            .enumerate()
            .map(|(index, worker)| {
                let (live, done) = (&live[index], &done[index]);
                scope.spawn(move || {
                    let outcome = match worker.lost.take() {
                        Some(reason) => Err(reason),
                        None => follow(worker, live, stop, last_end),
                    };
                    done.store(true, Ordering::Relaxed);
                    outcome
                })
            })
            .collect();
        let mut last_responses = 0;
        let mut last_at = Instant::now();
        while !done.iter().all(|d| d.load(Ordering::Relaxed)) {
            std::thread::sleep(Duration::from_millis(250));
            let now = Instant::now();
            let mut progress = Progress {
                elapsed_s: now.saturating_duration_since(start).as_secs_f64(),
                duration_s: load.duration.as_secs_f64(),
                ..Progress::default()
            };
            let mut max_us = 0;
            for counters in &live {
                progress.responses += counters.responses.load(Ordering::Relaxed);
                progress.errors += counters.errors.load(Ordering::Relaxed);
                progress.in_flight += counters.in_flight.load(Ordering::Relaxed);
                max_us = max_us.max(counters.max_latency_us.swap(0, Ordering::Relaxed));
            }
            progress.max_latency_ms = max_us as f64 / 1000.0;
            let dt = now.saturating_duration_since(last_at).as_secs_f64();
            progress.rate = progress.responses.saturating_sub(last_responses) as f64 / dt.max(1e-9);
            last_responses = progress.responses;
            last_at = now;
            on_progress(&progress);
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("its coordinating thread panicked".into()))
            })
            .collect()
    });
    let mut total = Recorder::new();
    let mut shares = Vec::with_capacity(count);
    let mut lost_share = 0;
    for (worker, outcome) in workers.iter().zip(outcomes) {
        let rate = match worker.load.mode {
            Mode::Open { rate } => Some(rate),
            Mode::Closed => None,
        };
        match outcome {
            Ok(recorder) => {
                shares.push(WorkerShare {
                    address: worker.address.clone(),
                    rate,
                    sent: recorder.sent,
                    responses: recorder.responses,
                    not_sent: recorder.errors_of(ErrorKind::NotSent),
                    lost: None,
                });
                merge_exactly(&mut total, &recorder)?;
            }
            Err(reason) => {
                eprintln!(
                    "worker {} lost: {reason}; its share ({} requests) counts as not sent",
                    worker.address, worker.planned
                );
                lost_share += worker.planned;
                shares.push(WorkerShare {
                    address: worker.address.clone(),
                    rate,
                    sent: 0,
                    responses: 0,
                    not_sent: worker.planned,
                    lost: Some(reason),
                });
            }
        }
    }
    let last_second = (load.duration.as_secs() as usize).saturating_sub(1);
    if lost_share > 0 {
        total.error(ErrorKind::NotSent, lost_share, last_second);
    }
    let elapsed = match total.elapsed_ns {
        0 => load.duration,
        ns => Duration::from_nanos(ns),
    };
    let server = server_use(spec, server_before.as_ref(), &total, elapsed, stop);
    let mut result = summarize(spec, &total, elapsed, server);
    result.intervals = LatencyIntervals {
        started: Some(SystemTime::UNIX_EPOCH + Duration::from_nanos(at_unix_ns)),
        seconds: std::mem::take(&mut total.intervals).finish(),
    };
    let reporting = shares.iter().filter(|s| s.lost.is_none()).count();
    result.generator.threads = load.threads * reporting;
    result.generator.busy =
        result.generator.cpu_s / (result.elapsed_s * result.generator.threads.max(1) as f64);
    result.workers = shares;
    Ok(result)
}

/// Adds a worker's counts; the histograms must merge without loss.
fn merge_exactly(total: &mut Recorder, worker: &Recorder) -> Result<()> {
    total
        .merge_histograms(worker)
        .map_err(|what| Error::Invalid(format!("a worker's {what}")))?;
    total.merge_counts(worker);
    Ok(())
}

/// Reads a started worker's messages until its counts arrive; `Err` with
/// why it was lost.
fn follow(
    worker: &mut Assigned,
    live: &LiveCounters,
    stop: &AtomicBool,
    last_end: Instant,
) -> std::result::Result<Recorder, String> {
    let (Some(stream), Some(input)) = (worker.stream.as_mut(), worker.input.as_mut()) else {
        return Err("was never connected".into());
    };
    let _ = input
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(250)));
    let mut buffer = Vec::new();
    let mut heard = Instant::now();
    let mut stop_sent = false;
    let mut heard_responses = 0;
    let outcome = loop {
        if stop.load(Ordering::Relaxed) && !stop_sent {
            stop_sent = true;
            let _ = send(stream, &Command::Stop);
        }
        let now = Instant::now();
        if now.saturating_duration_since(heard) > SILENCE {
            break Err(format!(
                "fell silent for {} s mid-phase (after {} answers)",
                SILENCE.as_secs(),
                heard_responses
            ));
        }
        if now > last_end + SILENCE * 2 {
            break Err("did not finish in time".into());
        }
        match receive::<Message>(input, &mut buffer) {
            Ok(Some(Message::Progress(p))) => {
                heard = Instant::now();
                heard_responses = p.responses;
                live.publish(p.responses, p.errors, p.in_flight, p.max_latency_us);
            }
            Ok(Some(Message::Done(counts))) => {
                break counts.to_recorder().map_err(|e| e.to_string());
            }
            Ok(Some(Message::Failed { message })) => break Err(format!("failed: {message}")),
            Ok(Some(Message::Ready)) => heard = Instant::now(),
            Ok(None) => {
                break Err(format!(
                    "closed the connection mid-phase (died?) after {} answers",
                    heard_responses
                ));
            }
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {}
            Err(e) => break Err(format!("broke the connection mid-phase: {e}")),
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_load() {
        let load = LoadSpec {
            mode: Mode::Open { rate: 3000.0 },
            connections: 10,
            threads: 2,
            max_requests: Some(7),
            duration: Duration::from_secs(2),
            workers: vec!["a:1".into(), "b:1".into(), "c:1".into()],
            ..LoadSpec::default()
        };
        let parts: Vec<LoadSpec> = (0..3).map(|i| split(&load, 3, i)).collect();
        assert_eq!(
            parts.iter().map(|p| p.connections).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!(parts.iter().filter_map(|p| p.max_requests).sum::<u64>(), 7);
        assert!(parts.iter().all(|p| p.mode == Mode::Open { rate: 1000.0 }));
        assert!(parts.iter().all(|p| p.workers.is_empty()));
        let uncapped = LoadSpec {
            max_requests: None,
            ..parts[0].clone()
        };
        assert_eq!(planned(&uncapped), 2000);
        assert_eq!(planned(&parts[0]), 3);
    }

    #[test]
    fn a_worker_refuses_an_order_it_cannot_read() {
        use std::io::Write;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| super::super::serve(&listener, &[], &stop, &mut |_| {}));
            let mut stream = connect(&address).unwrap();
            stream
                .write_all(b"{\"prepare\": {\"protocol\": 9}}\n")
                .unwrap();
            stream.set_read_timeout(Some(READY_WAIT)).unwrap();
            let mut input = BufReader::new(stream);
            let answer = receive::<Message>(&mut input, &mut Vec::new()).unwrap();
            let Some(Message::Failed { message }) = answer else {
                panic!("{answer:?}");
            };
            assert!(message.starts_with("cannot read the order: "), "{message}");
            stop.store(true, Ordering::Relaxed);
        });
    }

    #[test]
    fn histograms_merge_into_the_distribution_of_every_request() {
        let (mut fast, mut slow) = (Recorder::new(), Recorder::new());
        for _ in 0..1000 {
            fast.response(301, 100, 0);
            slow.response(301, 10_000, 1);
        }
        let mut total = Recorder::new();
        merge_exactly(&mut total, &fast).unwrap();
        merge_exactly(&mut total, &slow).unwrap();
        assert_eq!(total.latency.len(), 2000);
        assert_eq!(total.responses, 2000);
        assert_eq!(total.per_second, [1000, 1000]);
        // Half the requests took 100 µs and half 10 ms: no request took the
        // 5 ms an average of the two medians would claim.
        let near = |q: f64, us: u64| {
            total
                .latency
                .equivalent(total.latency.value_at_quantile(q), us)
        };
        assert!(near(0.25, 100) && near(0.75, 10_000));
        assert!(near(0.5, 100), "{}", total.latency.value_at_quantile(0.5));
        // Per second, too: second 0 holds the fast worker's answers, second 1
        // the slow one's, and a second both answered in adds up.
        let mut late = Recorder::new();
        late.response(301, 500, 1);
        merge_exactly(&mut total, &late).unwrap();
        let seconds: Vec<(usize, u64, u64)> = std::mem::take(&mut total.intervals)
            .finish()
            .iter()
            .map(|s| {
                let h = crate::hlog::decode(&s.encoded).unwrap();
                (s.second, h.len(), h.max())
            })
            .collect();
        assert_eq!(seconds.len(), 2);
        assert_eq!((seconds[0].0, seconds[0].1), (0, 1000));
        assert_eq!((seconds[1].0, seconds[1].1), (1, 1001));
        assert!(seconds[0].2 < 200 && seconds[1].2 >= 10_000, "{seconds:?}");
    }
}
