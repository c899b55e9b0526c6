//! What a generator thread counts: the latency histogram, responses by
//! status, errors by kind, per-second throughput; merged after a run. Also
//! the shared counters behind the live progress line.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::hlog::IntervalRecorder;

/// Latencies are recorded in microseconds, 1 µs to one hour, 3 digits.
pub const HISTOGRAM_MAX_US: u64 = 3_600_000_000;

/// Why a request did not get a correct answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A connection attempt failed (refused, unreachable, timed out);
    /// counted per attempt, not per request.
    Connect,
    /// A TLS handshake failed (an alert, a protocol error, the server
    /// closing or not finishing it within the timeout); counted per
    /// attempt, not per request: no request is sent before the handshake
    /// is complete.
    Tls,
    /// The connection closed or broke with the request in flight.
    Closed,
    /// No answer within the request timeout.
    Timeout,
    /// The answer was not valid HTTP/1.1.
    Malformed,
    /// A redirect whose `Location` is not the key's target.
    WrongTarget,
    /// A redirect without a `Location`.
    MissingLocation,
    /// A status other than the expected one (e.g. 404 for a known key).
    WrongStatus,
    /// Open loop: due but never sent, because no connection could take it
    /// before the run ended.
    NotSent,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        Self::Connect,
        Self::Tls,
        Self::Closed,
        Self::Timeout,
        Self::Malformed,
        Self::WrongTarget,
        Self::MissingLocation,
        Self::WrongStatus,
        Self::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Closed => "closed",
            Self::Timeout => "timeout",
            Self::Malformed => "malformed",
            Self::WrongTarget => "wrong_target",
            Self::MissingLocation => "missing_location",
            Self::WrongStatus => "wrong_status",
            Self::NotSent => "not_sent",
        }
    }

    /// Whether the error is about a request (counted against requests sent).
    pub fn is_per_request(self) -> bool {
        !matches!(self, Self::Connect | Self::Tls)
    }
}

/// One thread's counts; merged into a run's.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Response latency in µs: from the intended send time (open loop) or the
    /// actual send time (closed loop) to the end of the response.
    pub latency: Histogram<u64>,
    /// The same latencies, one histogram per second (for `.hlog` files).
    pub intervals: IntervalRecorder,
    /// Open loop: how late requests were sent after their intended time, µs.
    pub send_lag: Histogram<u64>,
    /// From when each request was actually sent to the end of its response,
    /// µs (wrk's uncorrected latency): `latency` without the generator's
    /// lateness.
    pub service: Histogram<u64>,
    /// Responses by status code (index = status).
    pub statuses: Vec<u64>,
    pub errors: [u64; ErrorKind::ALL.len()],
    pub sent: u64,
    /// Responses read, correct or not.
    pub responses: u64,
    /// Correct answers (expected status and target).
    pub ok: u64,
    /// Connections established (TCP).
    pub connections_opened: u64,
    /// TLS handshakes completed, and of those how many resumed a session.
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    /// Correct answers by the key's target they went to: index 0 the key's
    /// own, i + 1 its behaviour's destination i.
    pub destinations: Vec<u64>,
    /// Responses per second of the run.
    pub per_second: Vec<u64>,
    /// Errors per second of the run.
    pub errors_per_second: Vec<u64>,
    /// Generator thread CPU time, ns.
    pub cpu_ns: u64,
    /// From the run's start to the end of the thread's event loop, ns.
    pub elapsed_ns: u64,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        let histogram =
            || Histogram::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("valid histogram bounds");
        Self {
            latency: histogram(),
            intervals: IntervalRecorder::new(),
            send_lag: histogram(),
            service: histogram(),
            statuses: vec![0; 600],
            errors: [0; ErrorKind::ALL.len()],
            sent: 0,
            responses: 0,
            ok: 0,
            connections_opened: 0,
            tls_handshakes: 0,
            tls_resumed: 0,
            destinations: Vec::new(),
            per_second: Vec::new(),
            errors_per_second: Vec::new(),
            cpu_ns: 0,
            elapsed_ns: 0,
        }
    }

    pub fn error(&mut self, kind: ErrorKind, count: u64, second: usize) {
        self.errors[kind as usize] += count;
        bump(&mut self.errors_per_second, second, count);
    }

    pub fn response(&mut self, status: u16, latency_us: u64, second: usize) {
        self.responses += 1;
        if let Some(slot) = self.statuses.get_mut(status as usize) {
            *slot += 1;
        }
        self.latency.saturating_record(latency_us.max(1));
        self.intervals.record(second, latency_us);
        bump(&mut self.per_second, second, 1);
    }

    /// A correct answer that went to the key's target `destination`
    /// (see `destinations`).
    #[inline]
    pub fn correct(&mut self, destination: usize) {
        self.ok += 1;
        bump(&mut self.destinations, destination, 1);
    }

    /// A completed TLS handshake.
    pub fn tls_handshake(&mut self, resumed: bool) {
        self.tls_handshakes += 1;
        self.tls_resumed += u64::from(resumed);
    }

    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors[kind as usize]
    }

    /// Adds another thread's counts.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.merge_histograms(other);
        self.merge_counts(other);
    }

    /// Adds `other`'s histograms (and its seconds); which of them would not
    /// merge, if any (the others are added all the same).
    pub fn merge_histograms(&mut self, other: &Recorder) -> std::result::Result<(), String> {
        let mut failed = Ok(());
        for (mine, theirs, name) in [
            (&mut self.latency, &other.latency, "latencies"),
            (&mut self.send_lag, &other.send_lag, "send lags"),
            (&mut self.service, &other.service, "service times"),
        ] {
            if let Err(e) = mine.add(theirs) {
                failed = Err(format!("{name} do not merge: {e:?}"));
            }
        }
        self.intervals.merge(&other.intervals);
        failed
    }

    /// Adds everything of `other` but its histograms.
    pub fn merge_counts(&mut self, other: &Recorder) {
        for (a, b) in self.statuses.iter_mut().zip(&other.statuses) {
            *a += b;
        }
        for (a, b) in self.errors.iter_mut().zip(&other.errors) {
            *a += b;
        }
        self.sent += other.sent;
        self.responses += other.responses;
        self.ok += other.ok;
        self.connections_opened += other.connections_opened;
        self.tls_handshakes += other.tls_handshakes;
        self.tls_resumed += other.tls_resumed;
        for (destination, n) in other.destinations.iter().enumerate() {
            bump(&mut self.destinations, destination, *n);
        }
        for (second, n) in other.per_second.iter().enumerate() {
            bump(&mut self.per_second, second, *n);
        }
        for (second, n) in other.errors_per_second.iter().enumerate() {
            bump(&mut self.errors_per_second, second, *n);
        }
        self.cpu_ns += other.cpu_ns;
        self.elapsed_ns = self.elapsed_ns.max(other.elapsed_ns);
    }
}

#[inline]
fn bump(series: &mut Vec<u64>, index: usize, count: u64) {
    if series.len() <= index {
        series.resize(index + 1, 0);
    }
    series[index] += count;
}

/// Live counters of one generator thread, read by the progress line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct LiveCounters {
    pub responses: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    /// Largest latency (µs) since the progress line last read it.
    pub max_latency_us: AtomicU64,
}

impl LiveCounters {
    pub fn publish(&self, responses: u64, errors: u64, in_flight: u64, max_latency_us: u64) {
        self.responses.store(responses, Ordering::Relaxed);
        self.errors.store(errors, Ordering::Relaxed);
        self.in_flight.store(in_flight, Ordering::Relaxed);
        self.max_latency_us
            .fetch_max(max_latency_us, Ordering::Relaxed);
    }
}

/// What the progress line shows, summed over threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub elapsed_s: f64,
    pub duration_s: f64,
    pub responses: u64,
    /// Responses per second since the previous progress report.
    pub rate: f64,
    pub errors: u64,
    pub in_flight: u64,
    pub max_latency_ms: f64,
}
