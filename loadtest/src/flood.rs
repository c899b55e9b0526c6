//! Wrong passwords under load: while a phase's main load runs, POST wrong
//! passwords to one password-protected link at a fixed rate, each from one
//! of `addresses` client addresses (in `X-Forwarded-For`), and count the
//! engine's answers: 403 (checked by Argon2 and wrong), 429 (the client's
//! attempts on the link used up), 503 (the verifier's queue full).
//!
//! The engine answers a connection's requests one at a time and awaits a
//! password check before it reads the connection's next request, so an
//! attempt pipelined behind another would reach the engine only when the
//! one before it is answered. Each connection therefore carries one attempt
//! at a time: a due attempt goes to an idle connection, or to a new one up
//! to `connections`; when every connection is busy it is not sent (and
//! counted). The suite creates the link itself: one more row in the
//! `{links_jsonl}` import file, with an Argon2id hash made here with the
//! control plane's parameters.

use std::collections::BTreeMap;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::procstat;
use crate::response::{BodyState, parse_head};
use crate::run::Latency;
use crate::stats::{ErrorKind, HISTOGRAM_MAX_US};

/// Code of the protected link unless the suite names another.
pub const DEFAULT_CODE: &str = "flood-pw";
/// The link's password (the flood never sends it).
pub const RIGHT_PASSWORD: &str = "ricochet-loadtest-right-password";
/// Attempts per second unless configured otherwise.
pub const DEFAULT_RATE: f64 = 200.0;
/// Most connections the flood opens unless configured otherwise: the
/// verifier's queue (64) waiting plus room for the answers coming back.
pub const DEFAULT_CONNECTIONS: usize = 128;
/// Distinct client addresses unless configured otherwise: at 200 attempts
/// a second each address tries about twice a minute, under the engine's
/// limit of 10, so nearly every attempt reaches Argon2.
pub const DEFAULT_ADDRESSES: u32 = 1000;
/// Client addresses come from 198.18.0.0/15 (RFC 2544, benchmarking).
pub const MAX_ADDRESSES: u32 = 1 << 17;
/// Most connections a flood may open.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Argon2id parameters of the control plane's link passwords
/// (`control/src/service/access.rs`): 8 MiB, 2 passes, 1 lane.
pub const ARGON2_MEMORY_KIB: u32 = 8_192;
pub const ARGON2_ITERATIONS: u32 = 2;
pub const ARGON2_PARALLELISM: u32 = 1;
/// Name of the engine's verifier thread (`engine/src/behaviour/password.rs`).
pub const VERIFIER_THREAD: &str = "ricochet-password";

const READ_CHUNK: usize = 16 * 1024;
/// Longest wait in the event loop while draining answers.
const TICK: Duration = Duration::from_millis(10);

/// The suite's `[flood]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodSpec {
    /// Attempts per second.
    pub rate: f64,
    /// Most connections open at once (each carries one attempt at a time).
    pub connections: usize,
    /// Distinct client addresses the attempts cycle through.
    pub addresses: u32,
    /// Code of the protected link (on the default domain).
    pub code: String,
    /// An attempt without an answer after this long counts as a timeout;
    /// after the phase's load, answers are awaited at most this long.
    pub timeout: Duration,
    /// Phases the flood runs in; empty: every phase.
    pub phases: Vec<String>,
}

impl Default for FloodSpec {
    fn default() -> Self {
        Self {
            rate: DEFAULT_RATE,
            connections: DEFAULT_CONNECTIONS,
            addresses: DEFAULT_ADDRESSES,
            code: DEFAULT_CODE.to_owned(),
            timeout: Duration::from_secs(5),
            phases: Vec::new(),
        }
    }
}

impl FloodSpec {
    /// Whether the flood runs during phase `name`.
    pub fn applies_to(&self, name: &str) -> bool {
        self.phases.is_empty() || self.phases.iter().any(|p| p == name)
    }
}

/// What a flood sent and how the engine answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FloodResult {
    /// The protected link's code.
    pub code: String,
    /// Attempts per second asked for.
    pub target_rate: f64,
    pub addresses: u32,
    /// Connections opened (reconnections included).
    pub connections_opened: u64,
    /// From the first due attempt to the end of sending.
    pub elapsed_s: f64,
    /// Attempts sent.
    pub sent: u64,
    /// Attempts sent per second: the flood's achieved rate.
    pub rate: f64,
    pub answered: u64,
    /// Checked and wrong.
    pub answers_403: u64,
    /// The client's attempts on the link used up.
    pub answers_429: u64,
    /// The verifier's queue was full (or the check timed out).
    pub answers_503: u64,
    /// Any other status (a 2xx or 3xx would mean a wrong password passed).
    pub answers_other: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub other_statuses: BTreeMap<u16, u64>,
    /// Attempts without an answer (connect, closed, timeout, malformed).
    pub errors: u64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub error_kinds: BTreeMap<String, u64>,
    /// Attempts due while every connection had one in flight.
    pub not_sent: u64,
    /// From sending an attempt to its answer.
    pub latency_ms: Latency,
    /// CPU time of the engine's verifier thread over the phase (when the
    /// target's process is known).
    pub verifier_cpu_s: Option<f64>,
    /// The target's CPU per main-load response without the verifier
    /// thread's: the workers' (and the rest's) cost per redirect.
    pub server_cpu_per_request_without_verifier_us: Option<f64>,
}

/// Client address `index` (0-based), in 198.18.0.0/15.
pub fn client_address(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + index % MAX_ADDRESSES)
}

/// The Argon2id PHC string of `password` with the control plane's
/// parameters and a random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let params = Params::new(
        ARGON2_MEMORY_KIB,
        ARGON2_ITERATIONS,
        ARGON2_PARALLELISM,
        None,
    )
    .map_err(|e| Error::Invalid(format!("Argon2 parameters: {e}")))?;
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| Error::Invalid(format!("Argon2 salt: {e}")))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| Error::Invalid(format!("cannot hash the flood link's password: {e}")))
}

/// The protected link as a JSON line the engine imports: `code` on the
/// default domain, redirecting (302) once the right password is given.
pub fn link_line(code: &str) -> Result<String> {
    let row = serde_json::json!({
        "code": code,
        "url": format!("https://www.example.com/loadtest/{code}"),
        "status": 302,
        "password_hash": hash_password(RIGHT_PASSWORD)?,
    });
    Ok(row.to_string())
}

/// Appends the protected link to a JSON Lines import file.
pub fn append_link(path: &Path, code: &str) -> Result<()> {
    let line = link_line(code)?;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    writeln!(file, "{line}").map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

/// CPU time (ns) of the threads named `name` in `pid`'s process tree.
/// Linux keeps 15 bytes of a thread's name. `None` when there are none.
pub fn named_threads_cpu_ns(pid: u32, name: &str) -> Option<u64> {
    let wanted = &name.as_bytes()[..name.len().min(15)];
    let mut total = None;
    for process in procstat::process_tree(pid) {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{process}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(comm) = std::fs::read(task.path().join("comm")) else {
                continue;
            };
            if comm.trim_ascii_end() != wanted {
                continue;
            }
            let ns = std::fs::read_to_string(task.path().join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
            if let Some(ns) = ns {
                *total.get_or_insert(0) += ns;
            }
        }
    }
    total
}

/// One attempt's request.
fn attempt(code: &str, host: &str, address: Ipv4Addr, index: u64) -> Vec<u8> {
    let body = format!("password=wrong-{index}");
    format!(
        "POST /{code} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: ricochet-loadtest flood\r\n\
         X-Forwarded-For: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// An open connection and its one attempt in flight, if any.
struct Conn {
    stream: TcpStream,
    out: Vec<u8>,
    written: usize,
    buf: Vec<u8>,
    /// When the attempt in flight was sent.
    sent_at: Option<Instant>,
}

/// What reading a connection gave.
enum Got {
    Nothing,
    Answer { status: u16, close: bool },
    Failed(ErrorKind),
}

impl Conn {
    /// Writes what is left of the attempt; `false` when the connection broke.
    fn flush(&mut self) -> bool {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return false,
                Ok(n) => self.written += n,
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what arrived and, when a whole answer is there, returns it.
    fn read(&mut self) -> Got {
        let mut chunk = [0u8; READ_CHUNK];
        let mut eof = false;
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == IoErrorKind::WouldBlock => break,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if self.sent_at.is_none() {
            // Nothing asked: whatever came is not an answer to count.
            self.buf.clear();
            return if eof {
                Got::Failed(ErrorKind::Closed)
            } else {
                Got::Nothing
            };
        }
        let head = match parse_head(&self.buf, false) {
            Ok(Some(head)) => (head.status, head.close, head.head_len, head.body),
            Ok(None) if eof => return Got::Failed(ErrorKind::Closed),
            Ok(None) => return Got::Nothing,
            Err(_) => return Got::Failed(ErrorKind::Malformed),
        };
        let (status, close, head_len, body) = head;
        let mut state = BodyState::start(body);
        match state.advance(&self.buf[head_len..]) {
            Ok((used, true)) => {
                self.buf.drain(..head_len + used);
                Got::Answer {
                    status,
                    close: close || eof,
                }
            }
            Ok((_, false)) if eof => match body {
                crate::response::Body::UntilClose => {
                    self.buf.clear();
                    Got::Answer {
                        status,
                        close: true,
                    }
                }
                _ => Got::Failed(ErrorKind::Closed),
            },
            Ok((_, false)) => Got::Nothing,
            Err(_) => Got::Failed(ErrorKind::Malformed),
        }
    }
}

/// Counts while the flood runs.
struct Tally {
    result: FloodResult,
    latency: Histogram<u64>,
}

impl Tally {
    fn error(&mut self, kind: ErrorKind) {
        self.result.errors += 1;
        *self
            .result
            .error_kinds
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
    }

    fn answer(&mut self, status: u16, took: Duration) {
        self.result.answered += 1;
        match status {
            403 => self.result.answers_403 += 1,
            429 => self.result.answers_429 += 1,
            503 => self.result.answers_503 += 1,
            other => {
                self.result.answers_other += 1;
                *self.result.other_statuses.entry(other).or_default() += 1;
            }
        }
        self.latency
            .saturating_record((took.as_micros() as u64).max(1));
    }
}

/// Sends wrong passwords for `spec.code` to `addr` (with `Host: host`) at
/// `spec.rate` until `deadline` (or `stop`), then awaits the answers still
/// out for at most `spec.timeout`.
pub fn run_flood(
    addr: SocketAddr,
    host: &str,
    spec: &FloodSpec,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<FloodResult> {
    if !(spec.rate > 0.0 && spec.rate.is_finite()) || spec.connections == 0 || spec.addresses == 0 {
        return Err(Error::Invalid(format!(
            "a flood needs a positive rate, connections and addresses, not {spec:?}"
        )));
    }
    let mut poll = Poll::new().map_err(|e| Error::io("cannot create the flood's poll", e))?;
    let mut events = Events::with_capacity(256);
    let mut slots: Vec<Option<Conn>> = (0..spec.connections).map(|_| None).collect();
    let mut tally = Tally {
        result: FloodResult {
            code: spec.code.clone(),
            target_rate: spec.rate,
            addresses: spec.addresses,
            ..FloodResult::default()
        },
        latency: Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3)
            .expect("valid histogram bounds"),
    };
    let connect_timeout = spec.timeout.min(Duration::from_secs(2));
    let interval = Duration::from_secs_f64(1.0 / spec.rate);
    let start = Instant::now();
    let mut next = 0u64;
    let mut cursor = 0usize;
    let mut sending_ended: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let sending = now < deadline && !stop.load(Ordering::Relaxed);
        if !sending && sending_ended.is_none() {
            sending_ended = Some(now.min(deadline).max(start));
        }
        // Send what is due.
        while sending && start + interval.mul_f64(next as f64) <= now {
            let index = next;
            next += 1;
            let request = attempt(
                &spec.code,
                host,
                client_address((index % u64::from(spec.addresses)) as u32),
                index,
            );
            // An idle open connection first (round-robin), else a new one.
            let len = slots.len();
            let idle = (0..len)
                .map(|i| (cursor + i) % len)
                .find(|&i| slots[i].as_ref().is_some_and(|c| c.sent_at.is_none()));
            let slot = match idle {
                Some(i) => i,
                None => match slots.iter().position(Option::is_none) {
                    None => {
                        tally.result.not_sent += 1;
                        continue;
                    }
                    Some(i) => match connect(addr, connect_timeout, &poll, i) {
                        Ok(stream) => {
                            tally.result.connections_opened += 1;
                            slots[i] = Some(Conn {
                                stream,
                                out: Vec::new(),
                                written: 0,
                                buf: Vec::new(),
                                sent_at: None,
                            });
                            i
                        }
                        Err(_) => {
                            tally.error(ErrorKind::Connect);
                            continue;
                        }
                    },
                },
            };
            cursor = (slot + 1) % len;
            let conn = slots[slot].as_mut().expect("the slot holds a connection");
            conn.out = request;
            conn.written = 0;
            conn.buf.clear();
            conn.sent_at = Some(Instant::now());
            tally.result.sent += 1;
            if !conn.flush() {
                tally.error(ErrorKind::Closed);
                drop_slot(&mut slots, slot, &poll);
            }
        }
        let in_flight = slots
            .iter()
            .flatten()
            .filter(|c| c.sent_at.is_some())
            .count();
        if !sending {
            let drained = in_flight == 0;
            let gave_up = stop.load(Ordering::Relaxed) || now >= deadline.max(start) + spec.timeout;
            if drained || gave_up {
                for _ in 0..in_flight {
                    tally.error(ErrorKind::Timeout);
                }
                break;
            }
        }
        // Attempts out too long.
        for i in 0..slots.len() {
            if slots[i]
                .as_ref()
                .and_then(|c| c.sent_at)
                .is_some_and(|sent| now.saturating_duration_since(sent) >= spec.timeout)
            {
                tally.error(ErrorKind::Timeout);
                drop_slot(&mut slots, i, &poll);
            }
        }
        let wait = if sending {
            (start + interval.mul_f64(next as f64))
                .saturating_duration_since(Instant::now())
                .min(TICK)
        } else {
            TICK
        };
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == IoErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("the flood's poll failed", e)),
        }
        for event in events.iter() {
            let i = event.token().0;
            let Some(conn) = slots.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if event.is_writable() && !conn.flush() {
                if conn.sent_at.is_some() {
                    tally.error(ErrorKind::Closed);
                }
                drop_slot(&mut slots, i, &poll);
                continue;
            }
            if !(event.is_readable() || event.is_read_closed() || event.is_error()) {
                continue;
            }
            let had_attempt = conn.sent_at;
            match conn.read() {
                Got::Nothing => {}
                Got::Answer { status, close } => {
                    conn.sent_at = None;
                    if let Some(sent) = had_attempt {
                        tally.answer(status, sent.elapsed());
                    }
                    if close {
                        drop_slot(&mut slots, i, &poll);
                    }
                }
                Got::Failed(kind) => {
                    if had_attempt.is_some() {
                        tally.error(kind);
                    }
                    drop_slot(&mut slots, i, &poll);
                }
            }
        }
    }
    for i in 0..slots.len() {
        drop_slot(&mut slots, i, &poll);
    }
    let mut result = tally.result;
    let elapsed = sending_ended
        .unwrap_or_else(Instant::now)
        .saturating_duration_since(start)
        .as_secs_f64();
    result.elapsed_s = elapsed;
    result.rate = if elapsed > 0.0 {
        result.sent as f64 / elapsed
    } else {
        0.0
    };
    result.latency_ms = Latency::from_histogram(&tally.latency);
    Ok(result)
}

/// A new keep-alive connection registered as slot `index`.
fn connect(addr: SocketAddr, timeout: Duration, poll: &Poll, index: usize) -> Result<TcpStream> {
    let stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| Error::io(format!("cannot connect to {addr}"), e))?;
    let _ = stream.set_nodelay(true);
    stream
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make a socket non-blocking", e))?;
    let mut stream = TcpStream::from_std(stream);
    poll.registry()
        .register(
            &mut stream,
            Token(index),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| Error::io("cannot register a socket", e))?;
    Ok(stream)
}

fn drop_slot(slots: &mut [Option<Conn>], index: usize, poll: &Poll) {
    if let Some(mut conn) = slots[index].take() {
        let _ = poll.registry().deregister(&mut conn.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{PasswordHash, PasswordVerifier};

    #[test]
    fn addresses_are_distinct_benchmark_addresses() {
        assert_eq!(client_address(0), Ipv4Addr::new(198, 18, 0, 0));
        assert_eq!(client_address(257), Ipv4Addr::new(198, 18, 1, 1));
        assert_eq!(
            client_address(MAX_ADDRESSES - 1),
            Ipv4Addr::new(198, 19, 255, 255)
        );
        let distinct: std::collections::HashSet<_> = (0..1000).map(client_address).collect();
        assert_eq!(distinct.len(), 1000);
    }

    #[test]
    fn the_link_carries_an_argon2id_hash_of_the_right_password() {
        let line = link_line("flood-pw").unwrap();
        let row: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(row["code"], "flood-pw");
        assert_eq!(row["status"], 302);
        let hash = row["password_hash"].as_str().unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=2,p=1$"), "{hash}");
        let parsed = PasswordHash::new(hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(RIGHT_PASSWORD.as_bytes(), &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong-0", &parsed)
                .is_err()
        );
    }

    #[test]
    fn an_attempt_is_a_form_post_from_its_address() {
        let text =
            String::from_utf8(attempt("flood-pw", "localhost", client_address(3), 7)).unwrap();
        assert!(text.starts_with("POST /flood-pw HTTP/1.1\r\nHost: localhost\r\n"));
        assert!(text.contains("\r\nX-Forwarded-For: 198.18.0.3\r\n"));
        assert!(text.contains("\r\nContent-Type: application/x-www-form-urlencoded\r\n"));
        assert!(text.ends_with("\r\nContent-Length: 16\r\n\r\npassword=wrong-7"));
    }
}
