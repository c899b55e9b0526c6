//! A connection's life: connect, TLS handshake, timeouts, close, and a new
//! connection after a failure (with backoff) or after its last request.

use std::io::ErrorKind as IoErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Token};

use super::{Abandon, CONNECTION_BITS, Conn, Ctx, Reading, State, backoff};
use crate::stats::ErrorKind;
use crate::transport::{Handshake, Transport};

impl<T: Transport> Ctx<'_, T> {
    /// Reconnects, connect and handshake timeouts, and request timeouts.
    pub(super) fn maintain(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) {
        match conn.state {
            State::Down { retry_at } => {
                if !self.stopping && now >= retry_at {
                    self.connect(index, conn, now);
                }
            }
            State::Connecting { since } => {
                if now.saturating_duration_since(since) >= self.plan.timeout {
                    self.attempt_failed(conn, ErrorKind::Connect, now);
                }
            }
            State::Handshaking { since } => {
                if now.saturating_duration_since(since) >= self.plan.timeout {
                    self.attempt_failed(conn, ErrorKind::Tls, now);
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

    fn connect(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) {
        let source = match self.plan.source.len() {
            0 => None,
            len => Some(self.plan.source[index % len]),
        };
        let opened = connect_from(self.plan.addr, source).and_then(|s| T::open(s, self.setup));
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(_) => return self.attempt_failed(conn, ErrorKind::Connect, now),
        };
        conn.generation = (conn.generation + 1) & 0x7ff;
        let token = Token(conn.generation << CONNECTION_BITS | index);
        if self
            .registry
            .register(
                stream.socket_mut(),
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_err()
        {
            return self.attempt_failed(conn, ErrorKind::Connect, now);
        }
        conn.stream = Some(stream);
        conn.state = State::Connecting { since: now };
    }

    pub(super) fn finish_connect(
        &mut self,
        index: usize,
        conn: &mut Conn<T>,
        error_flag: bool,
        now: Instant,
    ) {
        let (Some(stream), State::Connecting { since }) = (conn.stream.as_ref(), conn.state) else {
            return;
        };
        let socket = stream.socket();
        let failed = error_flag || matches!(socket.take_error(), Ok(Some(_)) | Err(_));
        if failed {
            return self.attempt_failed(conn, ErrorKind::Connect, now);
        }
        match socket.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == IoErrorKind::NotConnected => return,
            Err(_) => return self.attempt_failed(conn, ErrorKind::Connect, now),
        }
        let _ = socket.set_nodelay(true);
        self.rec.connections_opened += 1;
        if T::HANDSHAKE {
            conn.state = State::Handshaking { since };
            return self.handshake(index, conn, now);
        }
        conn.state = State::Open;
        self.make_ready(index, conn);
    }

    /// Moves a TLS handshake on; the connection takes requests once it is
    /// complete. A failed or timed-out handshake counts once, as `tls`.
    pub(super) fn handshake(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) {
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        match stream.handshake() {
            Ok(None) => {}
            Ok(Some(kind)) => {
                self.rec.tls_handshake(kind == Handshake::Resumed);
                conn.state = State::Open;
                self.make_ready(index, conn);
            }
            Err(_) => self.attempt_failed(conn, ErrorKind::Tls, now),
        }
    }

    /// A connection attempt failed before it could take requests.
    fn attempt_failed(&mut self, conn: &mut Conn<T>, kind: ErrorKind, now: Instant) {
        let second = self.second(now);
        self.rec.error(kind, 1, second);
        conn.failures = conn.failures.saturating_add(1);
        self.close(conn, now);
    }

    /// Closes the socket and schedules a reconnect after the backoff.
    pub(super) fn close(&mut self, conn: &mut Conn<T>, now: Instant) {
        if let Some(mut stream) = conn.stream.take() {
            stream.close();
            let _ = self.registry.deregister(stream.socket_mut());
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
        conn.requests = 0;
    }

    pub(super) fn drop_connection(&mut self, conn: &mut Conn<T>, why: Abandon, now: Instant) {
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

    pub(super) fn make_ready(&mut self, index: usize, conn: &mut Conn<T>) {
        if !conn.queued
            && conn.state == State::Open
            && !conn.close_after
            && conn.requests < self.plan.requests_per_connection
        {
            conn.queued = true;
            self.ready.push_back(index);
        }
    }
}

/// Starts a non-blocking connect to `addr`, from `source` when given (bound
/// first, the port left to the OS).
fn connect_from(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr);
    };
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(error) => return Err(error),
    }
    Ok(TcpStream::from_std(socket.into()))
}
