//! Response framing: status line, `Date`, headers, `Content-Length`,
//! `Connection`, and a body unless the request was HEAD.

use super::clock::BatchClock;

/// Reason phrase of the statuses the engine sends.
pub fn status_reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

fn status_line(status: u16) -> &'static [u8] {
    match status {
        200 => b"HTTP/1.1 200 OK\r\n",
        301 => b"HTTP/1.1 301 Moved Permanently\r\n",
        302 => b"HTTP/1.1 302 Found\r\n",
        303 => b"HTTP/1.1 303 See Other\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        307 => b"HTTP/1.1 307 Temporary Redirect\r\n",
        308 => b"HTTP/1.1 308 Permanent Redirect\r\n",
        400 => b"HTTP/1.1 400 Bad Request\r\n",
        403 => b"HTTP/1.1 403 Forbidden\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        405 => b"HTTP/1.1 405 Method Not Allowed\r\n",
        408 => b"HTTP/1.1 408 Request Timeout\r\n",
        410 => b"HTTP/1.1 410 Gone\r\n",
        413 => b"HTTP/1.1 413 Content Too Large\r\n",
        429 => b"HTTP/1.1 429 Too Many Requests\r\n",
        431 => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        451 => b"HTTP/1.1 451 Unavailable For Legal Reasons\r\n",
        503 => b"HTTP/1.1 503 Service Unavailable\r\n",
        505 => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        _ => b"HTTP/1.1 500 Internal Server Error\r\n",
    }
}

/// How the connection continues after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// HTTP/1.1 keep-alive (the default, no header).
    KeepAlive,
    /// HTTP/1.0 client that asked for keep-alive.
    KeepAliveHttp10,
    Close,
}

/// Appends one response to the connection's output buffer.
pub struct ResponseWriter<'a> {
    out: &'a mut Vec<u8>,
    clock: &'a BatchClock,
    head_only: bool,
    persistence: Persistence,
    /// A header line (CRLF included) every response carries, e.g. HSTS.
    line: &'a [u8],
}

impl<'a> ResponseWriter<'a> {
    pub(crate) fn new(
        out: &'a mut Vec<u8>,
        clock: &'a BatchClock,
        head_only: bool,
        persistence: Persistence,
    ) -> Self {
        Self {
            out,
            clock,
            head_only,
            persistence,
            line: b"",
        }
    }

    /// The writer with a header line (CRLF included) the response will
    /// carry after `Date`.
    #[inline]
    pub fn with_line<'b>(self, line: &'b [u8]) -> ResponseWriter<'b>
    where
        'a: 'b,
    {
        ResponseWriter {
            out: self.out,
            clock: self.clock,
            head_only: self.head_only,
            persistence: self.persistence,
            line,
        }
    }

    /// A writer for a response that ends the connection (errors outside a request).
    pub fn close_after(out: &'a mut Vec<u8>, clock: &'a BatchClock) -> Self {
        Self::new(out, clock, false, Persistence::Close)
    }

    /// The batch's clock (for expiry checks).
    #[inline]
    pub fn clock(&self) -> &BatchClock {
        self.clock
    }

    /// Starts the response: status line and `Date`.
    #[inline]
    pub fn start(self, status: u16) -> HeadWriter<'a> {
        self.out.extend_from_slice(status_line(status));
        self.out.extend_from_slice(b"Date: ");
        self.out.extend_from_slice(&self.clock.date);
        self.out.extend_from_slice(b"\r\n");
        if !self.line.is_empty() {
            self.out.extend_from_slice(self.line);
        }
        HeadWriter {
            out: self.out,
            head_only: self.head_only,
            persistence: self.persistence,
        }
    }

    /// A complete plain-text response.
    pub fn text(self, status: u16, body: &str) -> u16 {
        self.start(status)
            .header(b"Content-Type", b"text/plain; charset=utf-8")
            .finish(body.as_bytes());
        status
    }
}

/// Writes headers, then ends the head and writes the body.
pub struct HeadWriter<'a> {
    out: &'a mut Vec<u8>,
    head_only: bool,
    persistence: Persistence,
}

impl HeadWriter<'_> {
    /// Appends a header. `value` must not contain CR or LF: callers pass
    /// constants or values validated when they were stored.
    #[inline]
    pub fn header(self, name: &[u8], value: &[u8]) -> Self {
        debug_assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n'));
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// Appends a header whose value is a number (e.g. `Retry-After`).
    #[inline]
    pub fn header_number(self, name: &[u8], value: u64) -> Self {
        let mut digits = itoa_buffer();
        let digits = format_len(value as usize, &mut digits);
        self.header(name, digits)
    }

    /// Appends a whole pre-rendered header line, CRLF included.
    #[inline]
    pub fn raw_line(self, line: &[u8]) -> Self {
        self.out.extend_from_slice(line);
        self
    }

    /// The output buffer, for headers assembled from parts (CR and LF excluded).
    #[inline]
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.out
    }

    /// Ends the head of an answer without content (a 304) that stands for
    /// a body of `length` bytes: its `Content-Length` (RFC 9110 8.6), no body.
    #[inline]
    pub fn finish_without_body(mut self, length: usize) {
        self.head_only = true;
        self.finish_with_length(length, b"");
    }

    /// Ends the head with `Content-Length` (and `Connection` when needed) and
    /// appends the body unless the request was HEAD.
    #[inline]
    pub fn finish(self, body: &[u8]) {
        self.finish_with_length(body.len(), body);
    }

    #[inline]
    fn finish_with_length(self, length: usize, body: &[u8]) {
        let mut digits = itoa_buffer();
        let digits = format_len(length, &mut digits);
        self.out.extend_from_slice(b"Content-Length: ");
        self.out.extend_from_slice(digits);
        self.out.extend_from_slice(match self.persistence {
            Persistence::KeepAlive => b"\r\n\r\n".as_slice(),
            Persistence::KeepAliveHttp10 => b"\r\nConnection: keep-alive\r\n\r\n",
            Persistence::Close => b"\r\nConnection: close\r\n\r\n",
        });
        if !self.head_only {
            self.out.extend_from_slice(body);
        }
    }
}

fn itoa_buffer() -> [u8; 20] {
    [0; 20]
}

fn format_len(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> BatchClock {
        BatchClock {
            now_ms: 0,
            date: *b"Thu, 01 Jan 1970 00:00:00 GMT",
        }
    }

    #[test]
    fn frames_a_response() {
        let mut out = Vec::new();
        let clock = clock();
        ResponseWriter::new(&mut out, &clock, false, Persistence::Close).text(404, "not found\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 404 Not Found\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 10\r\n\
             Connection: close\r\n\r\nnot found\n"
        );
    }

    #[test]
    fn head_has_length_but_no_body() {
        let mut out = Vec::new();
        let clock = clock();
        ResponseWriter::new(&mut out, &clock, true, Persistence::KeepAlive).text(200, "ok");
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("Content-Length: 2\r\n\r\n"), "{text}");
    }

    #[test]
    fn every_status_sent_has_its_own_line() {
        for status in [
            200, 301, 302, 303, 307, 308, 400, 403, 404, 405, 408, 410, 413, 429, 431, 503, 505,
        ] {
            let line = String::from_utf8(status_line(status).to_vec()).unwrap();
            assert!(line.starts_with(&format!("HTTP/1.1 {status} ")), "{line}");
            assert!(
                line.ends_with(&format!("{}\r\n", status_reason(status))),
                "{line}"
            );
        }
    }

    #[test]
    fn lengths() {
        let mut buf = itoa_buffer();
        assert_eq!(format_len(0, &mut buf), b"0");
        assert_eq!(format_len(1234567, &mut buf), b"1234567");
    }
}
