//! The connection driver: one generator thread's event loop (mio, edge
//! triggered) over its keep-alive connections, plain or TLS, with
//! pipelining, timeouts, reconnects (after every `requests_per_connection`
//! requests too) and a check of every answer against its key.
//!
//! Per request it makes one `write` and one `read` at most (fewer when
//! pipelining), never re-registers a socket, and does not allocate. The loop
//! is generic over the transport: plain TCP compiles to direct socket calls.
//!
//! Here the plan and the event loop; `connection` (connect, handshake,
//! timeouts, close), `requests` (issuing and writing), `answers` (reading,
//! parsing, judging).

use std::collections::VecDeque;
use std::io::ErrorKind as IoErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};

use crate::check::Verdict;
use crate::error::{Error, Result};
use crate::keys::KeySet;
use crate::procstat;
use crate::response::BodyState;
use crate::schedule::Timetable;
use crate::stats::{ErrorKind, LiveCounters, Recorder};
use crate::traffic::{Draw, RequestMaker};
use crate::transport::{TlsClient, TlsConnection, Transport};

mod answers;
mod connection;
mod requests;

const READ_BUFFER: usize = 32 * 1024;
const MAX_READ_BUFFER: usize = 1024 * 1024;
/// Timeouts and reconnects are checked this often.
const MAINTENANCE: Duration = Duration::from_millis(5);
const PUBLISH_EVERY: Duration = Duration::from_millis(50);
const CONNECTION_BITS: usize = 20;

/// What one generator thread does.
#[derive(Debug, Clone)]
pub struct ThreadPlan {
    pub addr: SocketAddr,
    pub connections: usize,
    /// Requests in flight per connection (1: no pipelining).
    pub depth: usize,
    /// Open loop: this thread's timetable; closed loop: `None`.
    pub timetable: Option<Timetable>,
    /// Closed loop: stop after this many requests.
    pub max_requests: Option<u64>,
    pub start: Instant,
    /// No request is sent after this.
    pub deadline: Instant,
    /// Answers still missing at this time count as timeouts.
    pub hard_end: Instant,
    pub timeout: Duration,
    /// Number of generator threads (sequential key order).
    pub stride: u64,
    /// Requests a connection carries before it is closed and a new one
    /// opened (`u64::MAX`: kept alive for the whole run).
    pub requests_per_connection: u64,
    /// Local addresses connections are made from, in turn; empty: the OS picks.
    pub source: Vec<IpAddr>,
    /// TLS (an https target): the thread's client configuration and server
    /// name; `None`: plain HTTP.
    pub tls: Option<TlsClient>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down {
        retry_at: Instant,
    },
    Connecting {
        since: Instant,
    },
    /// TCP is up; the TLS handshake goes on (since the connect began).
    Handshaking {
        since: Instant,
    },
    Open,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: Instant,
    sent: Instant,
    /// Its key, method and mix shape, to judge the answer.
    draw: Draw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Head,
    Body(BodyState),
}

#[derive(Debug)]
struct Conn<T> {
    stream: Option<T>,
    state: State,
    generation: usize,
    out: Vec<u8>,
    out_pos: usize,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    in_flight: VecDeque<InFlight>,
    reading: Reading,
    /// Verdict and status of the response whose body is being read.
    verdict: Verdict,
    status: u16,
    close_after: bool,
    /// Requests sent on the current connection.
    requests: u64,
    failures: u32,
    queued: bool,
    dirty: bool,
}

impl<T> Conn<T> {
    fn new(depth: usize, now: Instant) -> Self {
        Self {
            stream: None,
            state: State::Down { retry_at: now },
            generation: 0,
            out: Vec::with_capacity(512 * depth),
            out_pos: 0,
            buf: vec![0; READ_BUFFER],
            start: 0,
            end: 0,
            in_flight: VecDeque::with_capacity(depth),
            reading: Reading::Head,
            verdict: Ok(0),
            status: 0,
            close_after: false,
            requests: 0,
            failures: 0,
            queued: false,
            dirty: false,
        }
    }
}

/// Why a connection is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abandon {
    /// Count every request in flight as this kind.
    All(ErrorKind),
    /// Count the first request as this kind, the others as `Closed`.
    First(ErrorKind),
    /// The server announced the close: no error unless requests were left.
    Announced,
}

/// Everything but the connections, so both can be borrowed at once.
struct Ctx<'a, T: Transport> {
    plan: &'a ThreadPlan,
    setup: &'a T::Setup,
    keys: &'a KeySet,
    maker: RequestMaker,
    rec: Recorder,
    registry: &'a mio::Registry,
    sent: u64,
    limit: u64,
    in_flight: u64,
    stopping: bool,
    ready: VecDeque<usize>,
    dirty: Vec<usize>,
    max_latency_us: u64,
    unknown_status: u16,
    /// A connection closed and may reconnect at once.
    reconnect_pending: bool,
}

/// Runs one generator thread until the plan's end; returns its counts.
pub fn drive(
    plan: &ThreadPlan,
    keys: &KeySet,
    maker: RequestMaker,
    live: &LiveCounters,
    stop: &AtomicBool,
) -> Result<Recorder> {
    match &plan.tls {
        None => drive_over::<TcpStream>(plan, &(), keys, maker, live, stop),
        Some(tls) => drive_over::<TlsConnection>(plan, tls, keys, maker, live, stop),
    }
}

fn drive_over<T: Transport>(
    plan: &ThreadPlan,
    setup: &T::Setup,
    keys: &KeySet,
    maker: RequestMaker,
    live: &LiveCounters,
    stop: &AtomicBool,
) -> Result<Recorder> {
    if plan.connections == 0 || plan.connections >= 1 << CONNECTION_BITS {
        return Err(Error::Invalid(format!(
            "connections per thread must be between 1 and {}",
            (1 << CONNECTION_BITS) - 1
        )));
    }
    let cpu_start = procstat::thread_cpu_ns();
    let mut poll = Poll::new().map_err(|e| Error::io("cannot create a poller", e))?;
    let mut events = Events::with_capacity(1024);
    let depth = plan.depth.max(1);
    let now = Instant::now();
    let mut conns: Vec<Conn<T>> = (0..plan.connections)
        .map(|_| Conn::new(depth, now))
        .collect();
    let limit = match &plan.timetable {
        Some(t) => t.limit(),
        None => plan.max_requests.unwrap_or(u64::MAX),
    };
    let unknown_status = maker.unknown_status();
    let registry = poll
        .registry()
        .try_clone()
        .map_err(|e| Error::io("cannot clone the poll registry", e))?;
    let mut ctx = Ctx {
        plan,
        setup,
        keys,
        maker,
        rec: Recorder::new(),
        registry: &registry,
        sent: 0,
        limit,
        in_flight: 0,
        stopping: false,
        ready: VecDeque::with_capacity(plan.connections),
        dirty: Vec::with_capacity(plan.connections),
        max_latency_us: 0,
        unknown_status,
        reconnect_pending: false,
    };
    let mut next_maintenance = now;
    let mut next_publish = now + PUBLISH_EVERY;
    let mut interrupted = false;
    loop {
        let now = Instant::now();
        if !ctx.stopping && (now >= plan.deadline || ctx.sent >= ctx.limit) {
            // Open loop: requests due before the deadline that the loop had
            // not reached yet still leave (late, and measured from when they
            // were due); only those with no free connection count as not sent.
            if plan.timetable.is_some() {
                ctx.issue(&mut conns, now);
                ctx.flush(&mut conns, now);
            }
            ctx.stopping = true;
        }
        if ctx.stopping && ctx.in_flight == 0 {
            break;
        }
        if now >= plan.hard_end {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        if now >= next_maintenance || ctx.reconnect_pending {
            ctx.reconnect_pending = false;
            for (index, conn) in conns.iter_mut().enumerate() {
                ctx.maintain(index, conn, now);
            }
            next_maintenance = now + MAINTENANCE;
        }
        ctx.issue(&mut conns, now);
        ctx.flush(&mut conns, now);
        if now >= next_publish {
            live.publish(
                ctx.rec.responses,
                ctx.rec.errors.iter().sum(),
                ctx.in_flight,
                ctx.max_latency_us,
            );
            ctx.max_latency_us = 0;
            next_publish = now + PUBLISH_EVERY;
        }
        let wait = ctx.wait(now, next_maintenance);
        if wait.is_zero() && ctx.in_flight == 0 {
            // Nothing to read: sleep to the next due request rather than spin.
            let until = ctx.next_wake(now, next_maintenance);
            std::thread::sleep(until.saturating_duration_since(now));
            continue;
        }
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() == IoErrorKind::Interrupted {
                continue;
            }
            return Err(Error::io("poll failed", e));
        }
        let now = Instant::now();
        for event in events.iter() {
            let token = event.token().0;
            let index = token & ((1 << CONNECTION_BITS) - 1);
            let Some(conn) = conns.get_mut(index) else {
                continue;
            };
            if conn.generation != token >> CONNECTION_BITS || conn.stream.is_none() {
                continue;
            }
            match conn.state {
                State::Connecting { .. } => {
                    ctx.finish_connect(index, conn, event.is_error(), now);
                    continue;
                }
                State::Handshaking { .. } => {
                    ctx.handshake(index, conn, now);
                    continue;
                }
                State::Open | State::Down { .. } => {}
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                ctx.on_readable(index, conn, now);
            }
            // Over TLS, records rustls holds go out on writable edges too.
            if event.is_writable()
                && conn
                    .stream
                    .as_ref()
                    .is_some_and(|stream| conn.out_pos < conn.out.len() || stream.has_pending())
            {
                ctx.write(index, conn, now);
            }
        }
    }
    // Whatever is still in flight did not get an answer in time.
    let now = Instant::now();
    ctx.rec.elapsed_ns = now.saturating_duration_since(plan.start).as_nanos() as u64;
    let second = ctx.second(now);
    let leftover: u64 = conns.iter().map(|c| c.in_flight.len() as u64).sum();
    let kind = if interrupted {
        ErrorKind::Closed
    } else {
        ErrorKind::Timeout
    };
    ctx.rec.error(kind, leftover, second);
    if plan.timetable.is_some() && !interrupted && ctx.sent < ctx.limit {
        ctx.rec
            .error(ErrorKind::NotSent, ctx.limit - ctx.sent, second);
    }
    for conn in &mut conns {
        if let Some(mut stream) = conn.stream.take() {
            let _ = registry.deregister(stream.socket_mut());
        }
    }
    ctx.rec.sent = ctx.sent;
    if let (Some(a), Some(b)) = (cpu_start, procstat::thread_cpu_ns()) {
        ctx.rec.cpu_ns = b.saturating_sub(a);
    }
    live.publish(
        ctx.rec.responses,
        ctx.rec.errors.iter().sum(),
        0,
        ctx.max_latency_us,
    );
    Ok(ctx.rec)
}

fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let ms = 10u64 << failures.min(7).saturating_sub(1);
    Duration::from_millis(ms.min(1000))
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

impl<T: Transport> Ctx<'_, T> {
    fn second(&self, now: Instant) -> usize {
        now.saturating_duration_since(self.plan.start).as_secs() as usize
    }

    fn depth(&self) -> usize {
        self.plan.depth.max(1)
    }

    /// How long the poll may sleep: until the next due request, the next
    /// maintenance or the end. Sub-millisecond waits spin (epoll rounds up to
    /// whole milliseconds, which would send open-loop requests late) unless
    /// nothing is in flight, when the caller sleeps instead.
    fn wait(&self, now: Instant, next_maintenance: Instant) -> Duration {
        let wait = self
            .next_wake(now, next_maintenance)
            .saturating_duration_since(now);
        if wait < Duration::from_millis(1) {
            Duration::ZERO
        } else {
            Duration::from_millis(wait.as_millis() as u64)
        }
    }

    /// The next moment the loop has something to do without I/O.
    fn next_wake(&self, now: Instant, next_maintenance: Instant) -> Instant {
        let mut until = next_maintenance;
        if self.stopping {
            until = until.min(self.plan.hard_end);
        } else {
            until = until.min(self.plan.deadline);
            if let Some(table) = &self.plan.timetable
                && self.sent < self.limit
                && self.sent >= table.due(now)
            {
                until = until.min(table.intended(self.sent));
            }
        }
        until
    }
}
