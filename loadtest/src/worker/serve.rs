//! The worker: takes one phase at a time from a coordinator, prepares it,
//! runs it with the ordinary generator threads from the common start
//! instant, reports progress and sends back its counts and histograms.

use std::io::{BufReader, ErrorKind as IoErrorKind};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::protocol::{Command, Counts, Message, WorkerProgress, receive, send};
use crate::error::{Error, Result};
use crate::run::record;

/// How long a worker waits for an order, and then for the start.
const ORDER_WAIT: Duration = Duration::from_secs(120);
/// A coordinator silent this long mid-phase is not waited for.
const WRITE_WAIT: Duration = Duration::from_secs(5);
/// Latest start a worker accepts (a clock far off is a mistake).
const LONGEST_LEAD: Duration = Duration::from_secs(60);

/// Serves coordinators on `listener`, one phase at a time, until `stop`.
/// `cpus` pins the generator threads. `log` gets a line per phase.
pub fn serve(
    listener: &TcpListener,
    cpus: &[usize],
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make the listener non-blocking", e))?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let outcome = stream
                    .set_nonblocking(false)
                    .map_err(|e| Error::io("cannot set up the connection", e))
                    .and_then(|()| serve_phase(stream, cpus, stop, log));
                if let Err(e) = outcome {
                    log(&format!("phase from {peer} failed: {e}"));
                }
            }
            Err(e) if e.kind() == IoErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == IoErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("accept failed", e)),
        }
    }
    Ok(())
}

/// Unix time in nanoseconds.
pub fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The local instant of a Unix time (now, for one already past).
fn instant_of(unix_ns: u64) -> Instant {
    let ahead = unix_ns.saturating_sub(unix_now_ns());
    Instant::now() + Duration::from_nanos(ahead).min(LONGEST_LEAD)
}

fn serve_phase(
    stream: TcpStream,
    cpus: &[usize],
    stop: &AtomicBool,
    log: &mut dyn FnMut(&str),
) -> Result<()> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |e| Error::io(what, e)
    };
    stream
        .set_read_timeout(Some(ORDER_WAIT))
        .map_err(io("cannot set a timeout"))?;
    stream
        .set_write_timeout(Some(WRITE_WAIT))
        .map_err(io("cannot set a timeout"))?;
    let _ = stream.set_nodelay(true);
    let mut out = stream.try_clone().map_err(io("cannot clone the socket"))?;
    let mut input = BufReader::new(stream.try_clone().map_err(io("cannot clone the socket"))?);
    let mut buffer = Vec::new();
    let order = match receive::<Command>(&mut input, &mut buffer) {
        Ok(Some(Command::Prepare(order))) => order,
        Ok(Some(other)) => return Err(Error::Invalid(format!("expected an order, not {other:?}"))),
        Ok(None) => return Ok(()),
        Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
            return Err(io("no order")(e));
        }
        Err(e) => {
            // Most likely another version of the tool: say why.
            let message = format!("cannot read the order: {e}");
            let _ = send(
                &mut out,
                &Message::Failed {
                    message: message.clone(),
                },
            );
            return Err(Error::Invalid(message));
        }
    };
    let spec = match order.run_spec(cpus) {
        Ok(spec) => spec,
        Err(e) => {
            let _ = send(
                &mut out,
                &Message::Failed {
                    message: e.to_string(),
                },
            );
            return Err(e);
        }
    };
    send(&mut out, &Message::Ready).map_err(io("cannot answer"))?;
    let at_unix_ns = match receive::<Command>(&mut input, &mut buffer) {
        Ok(Some(Command::Start { at_unix_ns })) => at_unix_ns,
        Ok(Some(_) | None) => return Ok(()),
        Err(e) => return Err(io("no start")(e)),
    };
    let start = instant_of(at_unix_ns) + Duration::from_nanos(order.start_offset_ns);
    log(&format!(
        "{} {} #{}: {} for {:?} against {}",
        order.target,
        order.phase,
        order.round,
        spec.load.mode_label(),
        spec.load.duration,
        order.addr
    ));
    // A stop from the coordinator, or its connection gone, ends the phase.
    let run_stop = AtomicBool::new(false);
    let finished = AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let _ = input
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)));
            while !finished.load(Ordering::Relaxed) {
                match receive::<Command>(&mut input, &mut buffer) {
                    Ok(Some(Command::Stop)) | Ok(None) => break,
                    Ok(Some(_)) => {}
                    Err(e)
                        if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {}
                    Err(_) => break,
                }
            }
            run_stop.store(true, Ordering::Relaxed);
        });
        let result = record(&spec, start, &run_stop, &mut |progress| {
            if stop.load(Ordering::Relaxed) {
                run_stop.store(true, Ordering::Relaxed);
            }
            let message = Message::Progress(WorkerProgress {
                responses: progress.responses,
                errors: progress.errors,
                in_flight: progress.in_flight,
                max_latency_us: (progress.max_latency_ms * 1000.0) as u64,
            });
            if send(&mut out, &message).is_err() {
                run_stop.store(true, Ordering::Relaxed);
            }
        });
        let answer = match result.and_then(|recorder| Counts::from_recorder(&recorder)) {
            Ok(counts) => {
                log(&format!(
                    "  {} sent, {} answered",
                    counts.sent, counts.responses
                ));
                Message::Done(Box::new(counts))
            }
            Err(e) => Message::Failed {
                message: e.to_string(),
            },
        };
        let sent = send(&mut out, &answer);
        finished.store(true, Ordering::Relaxed);
        let _ = out.shutdown(Shutdown::Write);
        sent
    });
    result.map_err(io("cannot send the counts"))
}
