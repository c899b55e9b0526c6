//! The connection driver: one generator thread's event loop (mio, edge
//! triggered) over its keep-alive connections, with pipelining, timeouts,
//! reconnects and a check of every answer against its key.
//!
//! Per request it makes one `write` and one `read` at most (fewer when
//! pipelining), never re-registers a socket, and does not allocate.

use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::check::{Verdict, judge};
use crate::error::{Error, Result};
use crate::keys::KeySet;
use crate::procstat;
use crate::response::{BodyState, parse_head};
use crate::schedule::Timetable;
use crate::stats::{ErrorKind, LiveCounters, Recorder};
use crate::traffic::{Method, Pick, RequestMaker};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Down { retry_at: Instant },
    Connecting { since: Instant },
    Open,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: Instant,
    sent: Instant,
    pick: Pick,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    Head,
    Body(BodyState),
}

#[derive(Debug)]
struct Conn {
    stream: Option<TcpStream>,
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
    failures: u32,
    queued: bool,
    dirty: bool,
}

impl Conn {
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
struct Ctx<'a> {
    plan: &'a ThreadPlan,
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
    head_requests: bool,
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
    let mut conns: Vec<Conn> = (0..plan.connections)
        .map(|_| Conn::new(depth, now))
        .collect();
    let limit = match &plan.timetable {
        Some(t) => t.limit(),
        None => plan.max_requests.unwrap_or(u64::MAX),
    };
    let head_requests = maker.method() == Method::Head;
    let unknown_status = maker.unknown_status();
    let registry = poll
        .registry()
        .try_clone()
        .map_err(|e| Error::io("cannot clone the poll registry", e))?;
    let mut ctx = Ctx {
        plan,
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
        head_requests,
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
            if let State::Connecting { .. } = conn.state {
                ctx.finish_connect(index, conn, event.is_error(), now);
                continue;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                ctx.on_readable(index, conn, now);
            }
            if event.is_writable() && conn.stream.is_some() && conn.out_pos < conn.out.len() {
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
            let _ = registry.deregister(&mut stream);
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

impl Ctx<'_> {
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

    /// Reconnects, connect timeouts and request timeouts.
    fn maintain(&mut self, index: usize, conn: &mut Conn, now: Instant) {
        match conn.state {
            State::Down { retry_at } => {
                if !self.stopping && now >= retry_at {
                    self.connect(index, conn, now);
                }
            }
            State::Connecting { since } => {
                if now.saturating_duration_since(since) >= self.plan.timeout {
                    self.connect_failed(conn, now);
                }
            }
            State::Open => {
                if let Some(front) = conn.in_flight.front()
                    && now.saturating_duration_since(front.sent) >= self.plan.timeout
                {
                    self.drop_connection(conn, Abandon::All(ErrorKind::Timeout), now);
                }
            }
        }
    }

    fn connect(&mut self, index: usize, conn: &mut Conn, now: Instant) {
        let mut stream = match TcpStream::connect(self.plan.addr) {
            Ok(stream) => stream,
            Err(_) => return self.connect_failed(conn, now),
        };
        conn.generation = (conn.generation + 1) & 0x7ff;
        let token = Token(conn.generation << CONNECTION_BITS | index);
        if self
            .registry
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .is_err()
        {
            return self.connect_failed(conn, now);
        }
        conn.stream = Some(stream);
        conn.state = State::Connecting { since: now };
    }

    fn finish_connect(&mut self, index: usize, conn: &mut Conn, error_flag: bool, now: Instant) {
        let Some(stream) = conn.stream.as_ref() else {
            return;
        };
        let failed = error_flag || matches!(stream.take_error(), Ok(Some(_)) | Err(_));
        if failed {
            return self.connect_failed(conn, now);
        }
        match stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == IoErrorKind::NotConnected => return,
            Err(_) => return self.connect_failed(conn, now),
        }
        let _ = stream.set_nodelay(true);
        conn.state = State::Open;
        self.make_ready(index, conn);
    }

    fn connect_failed(&mut self, conn: &mut Conn, now: Instant) {
        let second = self.second(now);
        self.rec.error(ErrorKind::Connect, 1, second);
        conn.failures = conn.failures.saturating_add(1);
        self.close(conn, now);
    }

    /// Closes the socket and schedules a reconnect after the backoff.
    fn close(&mut self, conn: &mut Conn, now: Instant) {
        if let Some(mut stream) = conn.stream.take() {
            let _ = self.registry.deregister(&mut stream);
        }
        let retry_at = now + backoff(conn.failures);
        conn.state = State::Down { retry_at };
        if retry_at <= now {
            self.reconnect_pending = true;
        }
        conn.out.clear();
        conn.out_pos = 0;
        conn.start = 0;
        conn.end = 0;
        conn.reading = Reading::Head;
        conn.verdict = Ok(0);
        conn.close_after = false;
    }

    fn drop_connection(&mut self, conn: &mut Conn, why: Abandon, now: Instant) {
        let count = conn.in_flight.len() as u64;
        let second = self.second(now);
        match why {
            Abandon::All(kind) => self.rec.error(kind, count, second),
            Abandon::First(kind) => {
                if count > 0 {
                    self.rec.error(kind, 1, second);
                    self.rec.error(ErrorKind::Closed, count - 1, second);
                } else {
                    self.rec.error(kind, 1, second);
                }
            }
            Abandon::Announced => self.rec.error(ErrorKind::Closed, count, second),
        }
        if !matches!(why, Abandon::Announced) {
            conn.failures = conn.failures.saturating_add(1);
        }
        self.in_flight -= count;
        conn.in_flight.clear();
        self.close(conn, now);
    }

    fn make_ready(&mut self, index: usize, conn: &mut Conn) {
        if !conn.queued && conn.state == State::Open && !conn.close_after {
            conn.queued = true;
            self.ready.push_back(index);
        }
    }

    /// Puts due requests on connections with room.
    fn issue(&mut self, conns: &mut [Conn], now: Instant) {
        if self.stopping {
            return;
        }
        let allowed = match &self.plan.timetable {
            Some(table) => table.due(now),
            None => self.limit,
        };
        let depth = self.depth();
        let open_loop = self.plan.timetable.is_some();
        while self.sent < allowed {
            let Some(&index) = self.ready.front() else {
                break;
            };
            let conn = &mut conns[index];
            if conn.state != State::Open || conn.close_after || conn.in_flight.len() >= depth {
                self.ready.pop_front();
                conn.queued = false;
                continue;
            }
            let intended = match &self.plan.timetable {
                Some(table) => table.intended(self.sent),
                None => now,
            };
            let (pick, bot) = self.maker.pick(self.plan.stride);
            self.maker.render(self.keys, pick, bot, &mut conn.out);
            conn.in_flight.push_back(InFlight {
                intended,
                sent: now,
                pick,
            });
            if open_loop {
                self.rec
                    .send_lag
                    .saturating_record(micros(now.saturating_duration_since(intended)).max(1));
            }
            self.sent += 1;
            self.in_flight += 1;
            if !conn.dirty {
                conn.dirty = true;
                self.dirty.push(index);
            }
            if conn.in_flight.len() >= depth {
                self.ready.pop_front();
                conn.queued = false;
            } else if open_loop {
                // Spread open-loop requests over connections.
                self.ready.pop_front();
                self.ready.push_back(index);
            }
        }
    }

    fn flush(&mut self, conns: &mut [Conn], now: Instant) {
        let dirty = std::mem::take(&mut self.dirty);
        for &index in &dirty {
            let conn = &mut conns[index];
            conn.dirty = false;
            if conn.stream.is_some() {
                self.write(index, conn, now);
            }
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    fn write(&mut self, _index: usize, conn: &mut Conn, now: Instant) {
        while conn.out_pos < conn.out.len() {
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            match stream.write(&conn.out[conn.out_pos..]) {
                Ok(0) => return self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
                Ok(n) => conn.out_pos += n,
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => return self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
            }
        }
        conn.out.clear();
        conn.out_pos = 0;
    }

    fn on_readable(&mut self, index: usize, conn: &mut Conn, now: Instant) {
        loop {
            if conn.end == conn.buf.len() {
                if conn.start > 0 {
                    conn.buf.copy_within(conn.start..conn.end, 0);
                    conn.end -= conn.start;
                    conn.start = 0;
                } else if conn.buf.len() < MAX_READ_BUFFER {
                    let larger = conn.buf.len() * 2;
                    conn.buf.resize(larger, 0);
                } else {
                    return self.drop_connection(conn, Abandon::First(ErrorKind::Malformed), now);
                }
            }
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            let space = conn.buf.len() - conn.end;
            match stream.read(&mut conn.buf[conn.end..]) {
                Ok(0) => return self.on_eof(index, conn, now),
                Ok(n) => {
                    conn.end += n;
                    if !self.parse(index, conn, now) {
                        return;
                    }
                    // A short read drained the socket; the next arrival
                    // raises a new edge.
                    if n < space {
                        return;
                    }
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => return self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
            }
        }
    }

    fn on_eof(&mut self, index: usize, conn: &mut Conn, now: Instant) {
        if conn.reading == Reading::Body(BodyState::UntilClose) && !conn.in_flight.is_empty() {
            conn.reading = Reading::Head;
            self.complete(index, conn, now);
        }
        let why = if conn.close_after {
            Abandon::Announced
        } else {
            Abandon::All(ErrorKind::Closed)
        };
        if conn.in_flight.is_empty() {
            // An idle keep-alive connection closed by the server: reconnect.
            let failures = conn.failures;
            self.close(conn, now);
            conn.failures = failures;
            return;
        }
        self.drop_connection(conn, why, now);
    }

    /// Reads every complete response in the buffer. False when the
    /// connection was dropped.
    fn parse(&mut self, index: usize, conn: &mut Conn, now: Instant) -> bool {
        loop {
            // A body may be complete with no bytes (Content-Length: 0).
            if conn.start == conn.end && conn.reading == Reading::Head {
                conn.start = 0;
                conn.end = 0;
                return true;
            }
            match conn.reading {
                Reading::Head => {
                    let data = &conn.buf[conn.start..conn.end];
                    let head = match parse_head(data, self.head_requests) {
                        Ok(Some(head)) => head,
                        Ok(None) => return true,
                        Err(_) => {
                            self.drop_connection(conn, Abandon::First(ErrorKind::Malformed), now);
                            return false;
                        }
                    };
                    let Some(front) = conn.in_flight.front() else {
                        // An answer nobody asked for.
                        self.drop_connection(conn, Abandon::First(ErrorKind::Malformed), now);
                        return false;
                    };
                    conn.verdict = judge(self.keys, front.pick, &head, self.unknown_status);
                    conn.status = head.status;
                    conn.close_after = head.close;
                    conn.start += head.head_len;
                    conn.reading = Reading::Body(BodyState::start(head.body));
                }
                Reading::Body(mut state) => {
                    let advanced = state.advance(&conn.buf[conn.start..conn.end]);
                    let Ok((used, done)) = advanced else {
                        self.drop_connection(conn, Abandon::First(ErrorKind::Malformed), now);
                        return false;
                    };
                    conn.start += used;
                    conn.reading = Reading::Body(state);
                    if !done {
                        if conn.start == conn.end {
                            conn.start = 0;
                            conn.end = 0;
                        }
                        return true;
                    }
                    conn.reading = Reading::Head;
                    self.complete(index, conn, now);
                    if conn.close_after {
                        self.drop_connection(conn, Abandon::Announced, now);
                        return false;
                    }
                }
            }
        }
    }

    /// Records the response at the front of the connection.
    fn complete(&mut self, index: usize, conn: &mut Conn, now: Instant) {
        let Some(request) = conn.in_flight.pop_front() else {
            return;
        };
        self.in_flight -= 1;
        let second = self.second(now);
        let latency = micros(now.saturating_duration_since(request.intended));
        self.max_latency_us = self.max_latency_us.max(latency);
        self.rec.response(conn.status, latency, second);
        match std::mem::replace(&mut conn.verdict, Ok(0)) {
            Ok(destination) => self.rec.correct(destination),
            Err(kind) => self.rec.error(kind, 1, second),
        }
        conn.failures = 0;
        self.make_ready(index, conn);
    }
}
