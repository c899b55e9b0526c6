//! A small blocking HTTP/1.1 client for everything outside the measured
//! path: control-plane API calls, readiness checks and probes. Keep-alive,
//! never follows redirects, answers read with `response`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::response::{Body, BodyState, parse_head};

/// An `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `host:port` as written (the Host header).
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// Path with a leading slash, without a trailing one.
    pub path: String,
}

impl Url {
    /// Parses a plain-HTTP URL (`https` is refused: the load tester speaks
    /// clear-text HTTP/1.1 only).
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |message: &str| Error::Url {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(bad("https is not supported; point the tool at plain HTTP"));
        } else {
            return Err(bad("expected http://host:port[/path]"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                let port = port.parse().map_err(|_| bad("bad port"))?;
                (host, port)
            }
            _ => (authority, 80),
        };
        Ok(Self {
            authority: authority.to_owned(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    /// The first address the host resolves to.
    pub fn resolve(&self) -> Result<SocketAddr> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| Error::Url {
                url: self.to_string(),
                message: format!("cannot resolve: {e}"),
            })?
            .next()
            .ok_or_else(|| Error::Url {
                url: self.to_string(),
                message: "resolves to no address".into(),
            })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority, self.path)
    }
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// One keep-alive connection to one server, reopened when it breaks.
#[derive(Debug)]
pub struct HttpClient {
    base: Url,
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(base: &Url, timeout: Duration) -> Result<Self> {
        Ok(Self {
            addr: base.resolve()?,
            base: base.clone(),
            stream: None,
            buf: Vec::with_capacity(16 * 1024),
            timeout,
        })
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Sends one request; a broken kept-alive connection is retried once on
    /// a new one. `path` is appended to the base URL's path.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        let reused = self.stream.is_some();
        match self.try_request(method, path, headers, body) {
            Ok(response) => Ok(response),
            Err(_) if reused => {
                self.stream = None;
                self.try_request(method, path, headers, body)
            }
            Err(e) => Err(e),
        }
    }

    fn fail(&mut self, path: &str, message: String) -> Error {
        self.stream = None;
        Error::Http {
            url: format!("{}{path}", self.base),
            message,
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_timeout(&self.addr, self.timeout)
                .map_err(|e| self.fail(path, format!("cannot connect: {e}")))?;
            let _ = stream.set_nodelay(true);
            let _ = stream.set_read_timeout(Some(self.timeout));
            let _ = stream.set_write_timeout(Some(self.timeout));
            self.stream = Some(stream);
        }
        let mut target = format!("{}{path}", self.base.path);
        if target.is_empty() {
            target.push('/');
        }
        let mut request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ricochet-loadtest\r\n",
            self.base.authority
        );
        let mut has_host = false;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("host") {
                has_host = true;
            }
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        if has_host {
            // A caller-given Host replaces the default one.
            let default = format!("Host: {}\r\n", self.base.authority);
            request = request.replacen(&default, "", 1);
        }
        if !body.is_empty() || method == "POST" || method == "PATCH" || method == "PUT" {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        let written = self.stream.as_mut().map(|s| s.write_all(&bytes));
        if let Some(Err(e)) = written {
            return Err(self.fail(path, format!("cannot send: {e}")));
        }
        self.read_response(path, method == "HEAD")
    }

    fn read_more(&mut self, path: &str) -> Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let read = match self.stream.as_mut() {
            Some(stream) => stream.read(&mut chunk),
            None => return Err(self.fail(path, "connection lost".into())),
        };
        match read {
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Err(self.fail(path, format!("no answer within {:?}", self.timeout)))
            }
            Err(e) => Err(self.fail(path, format!("cannot read: {e}"))),
        }
    }

    fn read_response(&mut self, path: &str, head_request: bool) -> Result<Response> {
        self.buf.clear();
        let (status, location, close, head_len, body) = loop {
            match parse_head(&self.buf, head_request) {
                Ok(Some(head)) => {
                    break (
                        head.status,
                        head.location
                            .map(|l| String::from_utf8_lossy(l).into_owned()),
                        head.close,
                        head.head_len,
                        head.body,
                    );
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(path, format!("malformed response: {e}"))),
            }
            if self.read_more(path)? == 0 {
                return Err(self.fail(path, "connection closed before a response".into()));
            }
        };
        let mut state = BodyState::start(body);
        let mut pos = head_len;
        let mut content = Vec::new();
        loop {
            let (used, done) = state
                .advance(&self.buf[pos..])
                .map_err(|e| self.fail(path, format!("malformed body: {e}")))?;
            if !matches!(body, Body::Chunked) {
                content.extend_from_slice(&self.buf[pos..pos + used]);
            }
            pos += used;
            if done {
                break;
            }
            if self.read_more(path)? == 0 {
                if body == Body::UntilClose {
                    break;
                }
                return Err(self.fail(path, "connection closed in the middle of a body".into()));
            }
        }
        if close {
            self.stream = None;
        }
        Ok(Response {
            status,
            location,
            body: content,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("http://127.0.0.1:8081/api/v1/").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 8081, "/api/v1")
        );
        assert_eq!(Url::parse("http://example.org").unwrap().port, 80);
        assert!(Url::parse("https://x").is_err());
        assert!(Url::parse("ftp://x").is_err());
    }
}
