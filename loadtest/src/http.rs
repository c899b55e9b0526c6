//! A small blocking HTTP/1.1 client for everything outside the measured
//! path: control-plane API calls, readiness checks and probes, over plain
//! HTTP or TLS (certificates not verified, as on the measured path).
//! Keep-alive, never follows redirects, answers read with `response`.

use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::error::{Error, Result};
use crate::response::{Body, BodyState, parse_head};
use crate::transport;

/// An `http://host:port/path` or `https://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https`: TLS.
    pub tls: bool,
    /// `host:port` as written (the Host header).
    pub authority: String,
    pub host: String,
    /// As written, else 80 (http) or 443 (https).
    pub port: u16,
    /// Path with a leading slash, without a trailing one.
    pub path: String,
}

impl Url {
    /// Parses an `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Self> {
        let bad = |message: &str| Error::Url {
            url: url.to_owned(),
            message: message.to_owned(),
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(bad(
                "expected http://host:port[/path] or https://host:port[/path]",
            ));
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
            _ => (authority, if tls { 443 } else { 80 }),
        };
        Ok(Self {
            tls,
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
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority, self.path)
    }
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

/// A connection, plain or TLS.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.read(buf),
            Self::Tls(stream) => match stream.read(buf) {
                // Closed without close_notify: the end of the stream.
                Err(e) if e.kind() == IoErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(stream) => stream.write(buf),
            Self::Tls(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(stream) => stream.flush(),
            Self::Tls(stream) => stream.flush(),
        }
    }
}

/// One keep-alive connection to one server, reopened when it breaks.
#[derive(Debug)]
pub struct HttpClient {
    base: Url,
    addr: SocketAddr,
    /// https: the TLS configuration (no session resumption).
    tls: Option<Arc<ClientConfig>>,
    stream: Option<Stream>,
    buf: Vec<u8>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(base: &Url, timeout: Duration) -> Result<Self> {
        let tls = match base.tls {
            false => None,
            true => Some(transport::client_config(false).map_err(|e| Error::Url {
                url: base.to_string(),
                message: format!("cannot configure TLS: {e}"),
            })?),
        };
        Ok(Self {
            addr: base.resolve()?,
            base: base.clone(),
            tls,
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
            let stream = match self.tls.clone() {
                None => Stream::Plain(stream),
                Some(config) => {
                    // The server name is the Host this request carries.
                    let host = headers
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
                        .map_or_else(|| self.base.host.clone(), |(_, value)| (*value).to_owned());
                    self.handshake(path, config, &host, stream)?
                }
            };
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

    /// A TLS connection whose handshake is complete.
    fn handshake(
        &mut self,
        path: &str,
        config: Arc<ClientConfig>,
        host: &str,
        mut socket: TcpStream,
    ) -> Result<Stream> {
        let name = transport::server_name(host).map_err(|e| self.fail(path, e))?;
        let mut session = ClientConnection::new(config, name)
            .map_err(|e| self.fail(path, format!("cannot start TLS: {e}")))?;
        while session.is_handshaking() {
            if let Err(e) = session.complete_io(&mut socket) {
                return Err(self.fail(path, format!("TLS handshake failed: {e}")));
            }
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(session, socket))))
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
        let https = Url::parse("https://x").unwrap();
        assert!(https.tls && !url.tls);
        assert_eq!((https.host.as_str(), https.port), ("x", 443));
        assert_eq!(https.to_string(), "https://x");
        let https = Url::parse("https://127.0.0.1:8443/").unwrap();
        assert_eq!(
            (https.port, https.authority.as_str()),
            (8443, "127.0.0.1:8443")
        );
        assert!(Url::parse("ftp://x").is_err());
    }
}
