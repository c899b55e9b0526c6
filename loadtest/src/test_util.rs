//! Test helpers (feature `test-util`): a small HTTP/1.1 server on 127.0.0.1:0
//! with configurable answers (redirects, wrong targets, garbage, silence), a
//! one-off stall of every connection, and exact counts of what it served.

use std::collections::{BTreeMap, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server answers one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A redirect with this status and `Location`.
    Redirect { status: u16, location: String },
    /// The same redirect with a chunked (empty) body.
    ChunkedRedirect { status: u16, location: String },
    /// Bytes that are not HTTP, then the connection stays open.
    Garbage,
    /// Closes the connection without answering.
    Close,
    /// Never answers (the connection stays open).
    Silence,
}

#[derive(Debug, Default)]
struct Shared {
    routes: HashMap<String, Answer>,
    connections: AtomicU64,
    requests: AtomicU64,
    statuses: Mutex<BTreeMap<u16, u64>>,
    paths: Mutex<HashMap<String, u64>>,
    /// Stall every connection for `.1` once request number `.0` arrives.
    stall: Option<(u64, Duration)>,
    pause_until: Mutex<Option<Instant>>,
    stop: AtomicBool,
}

/// Builds a [`TestServer`].
#[derive(Debug, Default)]
pub struct TestServerBuilder {
    routes: HashMap<String, Answer>,
    stall: Option<(u64, Duration)>,
}

impl TestServerBuilder {
    /// `path` (with its leading slash) answers `status` with `location`.
    pub fn redirect(mut self, path: &str, status: u16, location: &str) -> Self {
        self.routes.insert(
            path.to_owned(),
            Answer::Redirect {
                status,
                location: location.to_owned(),
            },
        );
        self
    }

    pub fn answer(mut self, path: &str, answer: Answer) -> Self {
        self.routes.insert(path.to_owned(), answer);
        self
    }

    /// Every connection pauses for `pause` once the `after`-th request arrives.
    pub fn stall_after(mut self, after: u64, pause: Duration) -> Self {
        self.stall = Some((after, pause));
        self
    }

    pub fn start(self) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            routes: self.routes,
            stall: self.stall,
            ..Shared::default()
        });
        let accept_shared = shared.clone();
        std::thread::spawn(move || accept_loop(listener, accept_shared));
        TestServer { addr, shared }
    }
}

/// A running test server; stops when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Requests read so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Answers sent, by status.
    pub fn statuses(&self) -> BTreeMap<u16, u64> {
        self.shared.statuses.lock().expect("statuses").clone()
    }

    /// Requests per path.
    pub fn path_count(&self, path: &str) -> u64 {
        self.shared
            .paths
            .lock()
            .expect("paths")
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let mut input: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut silent = false;
    while !shared.stop.load(Ordering::SeqCst) {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        if silent {
            continue;
        }
        input.extend_from_slice(&chunk[..n]);
        let mut output = Vec::new();
        let mut used = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            let n = match request.parse(&input[used..]) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => break,
                Err(_) => return,
            };
            let path = request.path.unwrap_or("/").to_owned();
            used += n;
            let number = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
            *shared
                .paths
                .lock()
                .expect("paths")
                .entry(path.clone())
                .or_default() += 1;
            if let Some((after, pause)) = shared.stall
                && number == after
            {
                *shared.pause_until.lock().expect("pause") = Some(Instant::now() + pause);
            }
            let pause_until = *shared.pause_until.lock().expect("pause");
            if let Some(until) = pause_until {
                let now = Instant::now();
                if until > now {
                    // Answer what is ready first, then stall like the others.
                    if !output.is_empty() {
                        let _ = stream.write_all(&output);
                        output.clear();
                    }
                    std::thread::sleep(until - now);
                }
            }
            let status = match shared.routes.get(&path) {
                Some(Answer::Redirect { status, location }) => {
                    output.extend_from_slice(
                        format!(
                            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    *status
                }
                Some(Answer::ChunkedRedirect { status, location }) => {
                    output.extend_from_slice(
                        format!(
                            "HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nmoved\r\n0\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    *status
                }
                Some(Answer::Garbage) => {
                    output.extend_from_slice(b"this is not HTTP\r\n\r\n");
                    0
                }
                Some(Answer::Close) => {
                    let _ = stream.write_all(&output);
                    return;
                }
                Some(Answer::Silence) => {
                    let _ = stream.write_all(&output);
                    silent = true;
                    break;
                }
                None => {
                    output.extend_from_slice(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found",
                    );
                    404
                }
            };
            if status != 0 {
                *shared
                    .statuses
                    .lock()
                    .expect("statuses")
                    .entry(status)
                    .or_default() += 1;
            }
        }
        input.drain(..used);
        if !output.is_empty() && stream.write_all(&output).is_err() {
            return;
        }
    }
}
