//! One connection's life: read, parse every complete request in the buffer
//! (pipelining), answer them in order in one write, and enforce the limits:
//! header size (431), malformed input (400 and close), the header timeout for
//! stalled partial requests, the idle timeout between requests, and the
//! client's request rate when one is set (429 and close).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, timeout_at};

use super::clock::{BatchClock, Clock};
use super::response::{Persistence, ResponseWriter};
use super::{ConnectionObserver, Deferred, Handled, Handler, Method, Request};
use crate::server::clients::{RequestRate, RetryAfter};

/// Most header lines accepted in one request.
const MAX_HEADERS: usize = 64;

/// Limits applied to every connection.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request head once it started one.
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection is kept open.
    pub idle_timeout: Duration,
    /// Requests per second per client (`server.clients`); `None`: no limit.
    pub request_rate: Option<Arc<RequestRate>>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: 8 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_rate: None,
        }
    }
}

/// Why a request could not be answered by the handler.
enum Refusal {
    BadRequest,
    TooLarge,
    BodyTooLarge,
}

/// Serves one connection until the client closes it, a limit closes it, or an
/// I/O error ends it. `stream` is a TCP stream, or a TLS stream over one
/// (`secure`), whose handshake is done.
pub async fn serve_connection<S, H, O>(
    mut stream: S,
    peer: Option<std::net::IpAddr>,
    secure: bool,
    handler: &mut H,
    observer: &O,
    limits: &ConnectionLimits,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    H: Handler,
    O: ConnectionObserver,
{
    // The buffer holds at most one oversized head plus what arrived after it.
    let capacity = (limits.max_header_bytes + 1).max(4096) * 2;
    let mut buf = vec![0u8; capacity];
    let mut filled = 0usize;
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    // When the pending partial request started; `None` when the buffer is empty.
    let mut pending_since: Option<Instant> = None;

    loop {
        let clock = Clock::batch();
        let mut consumed = 0usize;
        let mut close = false;
        while consumed < filled {
            match parse_one(
                &buf[consumed..filled],
                peer,
                secure,
                limits,
                &clock,
                &mut out,
                handler,
            ) {
                Parsed::Answered {
                    length,
                    status,
                    keep_alive,
                } => {
                    observer.response(status);
                    consumed += length;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Parsed::Deferred {
                    length,
                    keep_alive,
                    head_only,
                    persistence,
                    work,
                } => {
                    // Answers before it go out first; it takes its place in order.
                    if !out.is_empty() {
                        let deadline = Instant::now() + limits.idle_timeout;
                        match timeout_at(deadline, stream.write_all(&out)).await {
                            Ok(Ok(())) => out.clear(),
                            _ => return,
                        }
                    }
                    let deadline = Instant::now() + limits.header_timeout;
                    let Ok(answer) = timeout_at(deadline, work).await else {
                        let clock = Clock::batch();
                        ResponseWriter::new(&mut out, &clock, head_only, Persistence::Close)
                            .text(503, "try again later\n");
                        observer.response(503);
                        close = true;
                        break;
                    };
                    let clock = Clock::batch();
                    let status = answer(ResponseWriter::new(
                        &mut out,
                        &clock,
                        head_only,
                        persistence,
                    ));
                    observer.response(status);
                    consumed += length;
                    if !keep_alive {
                        close = true;
                        break;
                    }
                }
                Parsed::Limited {
                    retry_after,
                    head_only,
                } => {
                    observer.request_limited();
                    ResponseWriter::new(&mut out, &clock, head_only, Persistence::Close)
                        .start(429)
                        .header_number(b"Retry-After", u64::from(retry_after.0))
                        .header(b"Content-Type", b"text/plain; charset=utf-8")
                        .finish(b"too many requests from your address\n");
                    observer.response(429);
                    close = true;
                    break;
                }
                Parsed::Partial => {
                    if filled - consumed > limits.max_header_bytes {
                        refuse(Refusal::TooLarge, &clock, &mut out, observer);
                        close = true;
                    }
                    break;
                }
                Parsed::Refused(refusal) => {
                    refuse(refusal, &clock, &mut out, observer);
                    close = true;
                    break;
                }
            }
        }

        if !out.is_empty() {
            let deadline = Instant::now() + limits.idle_timeout;
            match timeout_at(deadline, stream.write_all(&out)).await {
                Ok(Ok(())) => out.clear(),
                _ => return,
            }
        }
        if close {
            let _ = stream.shutdown().await;
            return;
        }

        buf.copy_within(consumed..filled, 0);
        filled -= consumed;
        if consumed > 0 || filled == 0 {
            pending_since = None;
        }
        let deadline = if filled == 0 {
            Instant::now() + limits.idle_timeout
        } else {
            *pending_since.get_or_insert_with(Instant::now) + limits.header_timeout
        };
        if filled == buf.len() {
            // Cannot happen: a full buffer is over the header limit and was refused.
            return;
        }
        match timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => {
                if filled == 0 {
                    pending_since = Some(Instant::now());
                }
                filled += n;
            }
            Err(_elapsed) => {
                if filled == 0 {
                    observer.idle_timeout();
                } else {
                    observer.header_timeout();
                    let clock = Clock::batch();
                    ResponseWriter::new(&mut out, &clock, false, Persistence::Close)
                        .text(408, "request timeout\n");
                    observer.response(408);
                    let _ = timeout_at(
                        Instant::now() + Duration::from_secs(1),
                        stream.write_all(&out),
                    )
                    .await;
                }
                let _ = stream.shutdown().await;
                return;
            }
        }
    }
}

enum Parsed {
    Answered {
        length: usize,
        status: u16,
        keep_alive: bool,
    },
    /// The handler deferred its answer: await `work`, then write it.
    Deferred {
        length: usize,
        keep_alive: bool,
        head_only: bool,
        persistence: Persistence,
        work: Deferred,
    },
    /// Over the client's request rate: 429, then close.
    Limited {
        retry_after: RetryAfter,
        head_only: bool,
    },
    Partial,
    Refused(Refusal),
}

fn refuse<O: ConnectionObserver>(
    refusal: Refusal,
    clock: &BatchClock,
    out: &mut Vec<u8>,
    observer: &O,
) {
    let (status, body) = match refusal {
        Refusal::BadRequest => (400, "bad request\n"),
        Refusal::TooLarge => (431, "request header fields too large\n"),
        Refusal::BodyTooLarge => (413, "request body too large\n"),
    };
    if status == 400 {
        observer.bad_request();
    }
    ResponseWriter::new(out, clock, false, Persistence::Close).text(status, body);
    observer.response(status);
}

/// Parses and answers the first request in `input`.
fn parse_one<H: Handler>(
    input: &[u8],
    peer: Option<std::net::IpAddr>,
    secure: bool,
    limits: &ConnectionLimits,
    clock: &BatchClock,
    out: &mut Vec<u8>,
    handler: &mut H,
) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_length = match parsed.parse(input) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Refused(Refusal::TooLarge),
        Err(_) => return Parsed::Refused(Refusal::BadRequest),
    };
    if head_length > limits.max_header_bytes {
        return Parsed::Refused(Refusal::TooLarge);
    }
    let version = parsed.version.unwrap_or(1);
    let method = match parsed.method.unwrap_or("") {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        _ => Method::Other,
    };

    let mut host_header: Option<&[u8]> = None;
    let mut hosts = 0;
    let mut content_length: Option<usize> = None;
    let mut close = version == 0;
    let mut prefetch = false;
    let empty: &[u8] = b"";
    let (mut user_agent, mut referer, mut accept_language, mut forwarded_for, mut cookie) =
        (empty, empty, empty, empty, empty);
    let (mut if_none_match, mut accept_encoding) = (empty, empty);
    for header in parsed.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"user-agent") {
            user_agent = header.value;
        } else if name.eq_ignore_ascii_case(b"referer") {
            referer = header.value;
        } else if name.eq_ignore_ascii_case(b"accept-language") {
            accept_language = header.value;
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            forwarded_for = header.value;
        } else if name.eq_ignore_ascii_case(b"cookie") {
            cookie = header.value;
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            host_header = Some(header.value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in header.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == 0 {
                    close = false;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let Some(length) = parse_decimal(header.value) else {
                return Parsed::Refused(Refusal::BadRequest);
            };
            if content_length.is_some_and(|seen| seen != length) {
                return Parsed::Refused(Refusal::BadRequest);
            }
            content_length = Some(length);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Request bodies have no meaning here; refusing chunked bodies
            // closes the door on request smuggling.
            return Parsed::Refused(Refusal::BadRequest);
        } else if name.eq_ignore_ascii_case(b"sec-purpose") || name.eq_ignore_ascii_case(b"purpose")
        {
            prefetch |= contains_ignore_case(header.value, b"prefetch")
                || contains_ignore_case(header.value, b"prerender");
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            accept_encoding = header.value;
        } else if name.eq_ignore_ascii_case(b"if-none-match") {
            if_none_match = header.value;
        }
    }
    // RFC 9112 3.2: HTTP/1.1 requests carry exactly one valid Host.
    if hosts > 1 || (hosts == 0 && version == 1) {
        return Parsed::Refused(Refusal::BadRequest);
    }
    if let Some(host) = host_header
        && !host.iter().all(|&b| is_host_byte(b))
    {
        return Parsed::Refused(Refusal::BadRequest);
    }

    let body = content_length.unwrap_or(0);
    if body > limits.max_header_bytes {
        return Parsed::Refused(Refusal::BodyTooLarge);
    }
    if input.len() < head_length + body {
        return Parsed::Partial;
    }

    let Some((host, target)) = split_target(parsed.path.unwrap_or("").as_bytes(), host_header)
    else {
        return Parsed::Refused(Refusal::BadRequest);
    };
    if let Some(rate) = &limits.request_rate
        && let Some(peer) = peer
        && let Err(retry_after) = rate.admit(peer)
    {
        return Parsed::Limited {
            retry_after,
            head_only: method == Method::Head,
        };
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(at) => (&target[..at], &target[at + 1..]),
        None => (target, &b""[..]),
    };
    let request = Request {
        method,
        path,
        query,
        host,
        prefetch,
        user_agent,
        referer,
        accept_language,
        cookie,
        forwarded_for,
        if_none_match,
        accept_encoding,
        peer,
        secure,
        body: &input[head_length..head_length + body],
    };
    let persistence = match (close, version) {
        (true, _) => Persistence::Close,
        (false, 0) => Persistence::KeepAliveHttp10,
        (false, _) => Persistence::KeepAlive,
    };
    let head_only = method == Method::Head;
    let writer = ResponseWriter::new(out, clock, head_only, persistence);
    match handler.handle(&request, writer) {
        Handled::Answered(status) => Parsed::Answered {
            length: head_length + body,
            status,
            keep_alive: !close,
        },
        Handled::Deferred(work) => Parsed::Deferred {
            length: head_length + body,
            keep_alive: !close,
            head_only,
            persistence,
            work,
        },
    }
}

/// Splits the request target into the host it names (absolute form) or the
/// Host header, and the origin-form path with query.
fn split_target<'a>(
    target: &'a [u8],
    host: Option<&'a [u8]>,
) -> Option<(Option<&'a [u8]>, &'a [u8])> {
    if target.first() == Some(&b'/') {
        return Some((host, target));
    }
    let rest = strip_prefix_ignore_case(target, b"http://")
        .or_else(|| strip_prefix_ignore_case(target, b"https://"))?;
    let end = rest
        .iter()
        .position(|&b| b == b'/' || b == b'?')
        .unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.is_empty() || authority.contains(&b'@') {
        return None;
    }
    Some((Some(authority), if path.is_empty() { b"/" } else { path }))
}

fn strip_prefix_ignore_case<'a>(input: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if input.len() >= prefix.len() && input[..prefix.len()].eq_ignore_ascii_case(prefix) {
        Some(&input[prefix.len()..])
    } else {
        None
    }
}

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[inline]
fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
}

fn parse_decimal(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0usize, |n, &d| n * 10 + (d - b'0') as usize),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            split_target(b"/abc?x=1", Some(b"h")),
            Some((Some(&b"h"[..]), &b"/abc?x=1"[..]))
        );
        assert_eq!(
            split_target(b"http://Go.Example:80/abc", Some(b"h")),
            Some((Some(&b"Go.Example:80"[..]), &b"/abc"[..]))
        );
        assert_eq!(
            split_target(b"https://go.example", None),
            Some((Some(&b"go.example"[..]), &b"/"[..]))
        );
        assert_eq!(split_target(b"*", None), None);
        assert_eq!(split_target(b"http://u@h/", None), None);
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b" 42 "), Some(42));
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"99999999999999999999"), None);
    }
}
