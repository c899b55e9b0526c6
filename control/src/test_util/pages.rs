//! A web server on a loopback address for fetch tests ([`PageServer`]): it
//! answers each request with the [`Reply`] a closure picks for its path,
//! and records every connection and request, so a test can prove that a
//! refused destination was never connected to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a [`PageServer`] answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A complete answer with a `Content-Length`.
    Page {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// Reads the request and never answers (until the server stops).
    Stall,
    /// Sends the headers of a `total`-byte body and its first bytes, then
    /// sends nothing more (until the server stops).
    StallBody { first: Vec<u8>, total: usize },
}

impl Reply {
    /// `200` with `text/html; charset=utf-8`.
    pub fn html(body: impl Into<String>) -> Self {
        Self::Page {
            status: 200,
            content_type: "text/html; charset=utf-8".into(),
            body: body.into().into_bytes(),
        }
    }

    /// A `302` to `location`.
    pub fn redirect(location: impl Into<String>) -> Self {
        Self::Redirect {
            status: 302,
            location: location.into(),
        }
    }
}

/// One request a [`PageServer`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRequest {
    pub method: String,
    /// The request target (`/page?x=1`).
    pub path: String,
    /// Names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Answer = dyn Fn(&str) -> Reply + Send + Sync;

struct Shared {
    connections: AtomicUsize,
    requests: Mutex<Vec<ReceivedRequest>>,
    stop: AtomicBool,
}

/// An HTTP/1.1 server on `ip`:0, one thread per connection, `Connection:
/// close` after every answer.
pub struct PageServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for PageServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl PageServer {
    /// Listens on `ip` (a loopback address such as `127.0.0.1` or
    /// `127.0.0.2`) and answers each request with `answer(path)`.
    pub fn start(ip: &str, answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let ip: IpAddr = ip.parse().expect("an IP address");
        Self::start_at(SocketAddr::new(ip, 0), answer)
    }

    /// Listens on `addr` (a loopback address; port 0 picks one), e.g. the
    /// address of a server stopped earlier, to bring it back.
    pub fn start_at(
        addr: SocketAddr,
        answer: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> Self {
        assert!(
            addr.ip().is_loopback(),
            "test servers listen on loopback only"
        );
        let listener = TcpListener::bind(addr).expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(Shared {
            connections: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let answer: Arc<Answer> = Arc::new(answer);
        let accept = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("test-page-server".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if shared.stop.load(Ordering::Acquire) {
                            return;
                        }
                        let Ok(stream) = stream else { continue };
                        shared.connections.fetch_add(1, Ordering::AcqRel);
                        let shared = shared.clone();
                        let answer = answer.clone();
                        std::thread::spawn(move || serve(stream, &shared, &*answer));
                    }
                })
                .expect("spawn the accept thread")
        };
        Self {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<ip>:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Acquire)
    }

    /// Requests read so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.requests.lock().expect("requests").clone()
    }

    /// The paths of the requests read so far.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared, answer: &Answer) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let Some(request) = read_request(stream) else {
        return;
    };
    let reply = answer(&request.path);
    shared.requests.lock().expect("requests").push(request);
    let written = match reply {
        Reply::Page {
            status,
            content_type,
            body,
        } => write!(
            writer,
            "HTTP/1.1 {status} Answer\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .and_then(|()| writer.write_all(&body)),
        Reply::Redirect { status, location } => write!(
            writer,
            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        ),
        Reply::Stall => {
            hold(shared);
            Ok(())
        }
        Reply::StallBody { first, total } => {
            let sent = write!(
                writer,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {total}\r\n\r\n"
            )
            .and_then(|()| writer.write_all(&first))
            .and_then(|()| writer.flush());
            hold(shared);
            sent
        }
    };
    let _ = written.and_then(|()| writer.flush());
}

/// Keeps a connection open without a word until the server stops.
fn hold(shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_request(stream: TcpStream) -> Option<ReceivedRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(ReceivedRequest {
        method,
        path,
        headers,
        body,
    })
}
