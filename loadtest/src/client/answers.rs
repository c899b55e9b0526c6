//! Reading: answers parsed as they arrive, each judged against its key and
//! recorded; the end of a connection's stream.

use std::io::ErrorKind as IoErrorKind;
use std::time::Instant;

use super::{Abandon, Conn, Ctx, MAX_READ_BUFFER, Reading, micros};
use crate::check::judge;
use crate::response::{BodyState, Head, parse_head};
use crate::stats::ErrorKind;
use crate::transport::Transport;

impl<T: Transport> Ctx<'_, T> {
    pub(super) fn on_readable(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) {
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
                    // raises a new edge. Not over TLS: rustls may hold more
                    // plaintext, the socket more records; read on until
                    // WouldBlock.
                    if T::SHORT_READ_DRAINS && n < space {
                        return;
                    }
                }
                Err(e) if e.kind() == IoErrorKind::WouldBlock => return,
                Err(e) if e.kind() == IoErrorKind::Interrupted => {}
                Err(_) => return self.drop_connection(conn, Abandon::All(ErrorKind::Closed), now),
            }
        }
    }

    fn on_eof(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) {
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
    fn parse(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) -> bool {
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
                    // A HEAD request's answer has no body.
                    let head_request = conn.in_flight.front().is_some_and(|f| f.draw.head);
                    let head = match parse_head(data, head_request) {
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
                    let draw = front.draw;
                    conn.verdict = judge(self.keys, draw.pick, &head, self.unknown_status);
                    // A link that forwards the query answers with it appended.
                    if conn.verdict == Err(ErrorKind::WrongTarget)
                        && let Some(location) = head.location
                        && let Some(plain) = without_query(location, self.maker.query(draw.shape))
                    {
                        let forwarded = Head {
                            location: Some(plain),
                            ..head
                        };
                        conn.verdict = judge(self.keys, draw.pick, &forwarded, self.unknown_status);
                    }
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
                    if conn.requests >= self.plan.requests_per_connection
                        && conn.in_flight.is_empty()
                    {
                        // Its last answer: a new connection takes over at once.
                        self.close(conn, now);
                        return false;
                    }
                }
            }
        }
    }

    /// Records the response at the front of the connection.
    fn complete(&mut self, index: usize, conn: &mut Conn<T>, now: Instant) {
        let Some(request) = conn.in_flight.pop_front() else {
            return;
        };
        self.in_flight -= 1;
        let second = self.second(now);
        let latency = micros(now.saturating_duration_since(request.intended));
        self.max_latency_us = self.max_latency_us.max(latency);
        self.rec.response(conn.status, latency, second);
        self.rec
            .service
            .saturating_record(micros(now.saturating_duration_since(request.sent)).max(1));
        match std::mem::replace(&mut conn.verdict, Ok(0)) {
            Ok(destination) => self.rec.correct(destination),
            Err(kind) => self.rec.error(kind, 1, second),
        }
        conn.failures = 0;
        self.make_ready(index, conn);
    }
}

/// `location` without a forwarded `query` (`?a=1` of the request, appended
/// as `?a=1` or `&a=1`); `None` when it does not end with it.
fn without_query<'a>(location: &'a [u8], query: &[u8]) -> Option<&'a [u8]> {
    let parameters = query.strip_prefix(b"?")?;
    let rest = location.strip_suffix(parameters)?;
    rest.strip_suffix(b"?").or_else(|| rest.strip_suffix(b"&"))
}

#[cfg(test)]
mod tests {
    use super::without_query;

    #[test]
    fn a_forwarded_query_is_taken_off() {
        fn plain<'a>(location: &'a str, query: &str) -> Option<&'a [u8]> {
            without_query(location.as_bytes(), query.as_bytes())
        }
        assert_eq!(plain("https://a/?u=1", "?u=1"), Some(&b"https://a/"[..]));
        assert_eq!(
            plain("https://a/?x=2&u=1", "?u=1"),
            Some(&b"https://a/?x=2"[..])
        );
        assert_eq!(plain("https://a/", "?u=1"), None);
        assert_eq!(plain("https://a/xu=1", "?u=1"), None);
        assert_eq!(plain("https://a/?u=1", ""), None);
    }
}
