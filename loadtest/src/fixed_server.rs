//! A fixed-response HTTP/1.1 server (one mio event loop on one thread,
//! optionally pinned): the yardstick for the generator's own ceiling. Every
//! request, pipelined or not, gets the same 301.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

use crate::error::{Error, Result};
use crate::procstat;

/// The answer to every request.
pub const FIXED_RESPONSE: &[u8] =
    b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://www.example.com/\r\nContent-Length: 0\r\n\r\n";

const LISTENER: Token = Token(usize::MAX);

/// A running fixed-response server.
#[derive(Debug)]
pub struct FixedServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    cpu_ns: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

/// What the server did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedServerStats {
    pub requests: u64,
    pub cpu_ns: u64,
}

struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    written: usize,
}

impl FixedServer {
    /// Listens on 127.0.0.1 (a free port); `cpu` pins the server thread.
    pub fn start(cpu: Option<usize>) -> Result<Self> {
        Self::start_on("127.0.0.1:0".parse().expect("loopback address"), cpu)
    }

    /// Listens on `addr`.
    pub fn start_on(addr: SocketAddr, cpu: Option<usize>) -> Result<Self> {
        let mut listener = TcpListener::bind(addr)
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the server address", e))?;
        let poll = Poll::new().map_err(|e| Error::io("cannot create a poller", e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::io("cannot register the listener", e))?;
        let core = match cpu {
            None => None,
            Some(cpu) => Some(
                core_affinity::get_core_ids()
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.id == cpu)
                    .ok_or_else(|| Error::Invalid(format!("no CPU {cpu} on this machine")))?,
            ),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let cpu_ns = Arc::new(AtomicU64::new(0));
        let handle = std::thread::Builder::new()
            .name("fixed-server".into())
            .spawn({
                let (stop, requests, cpu_ns) = (stop.clone(), requests.clone(), cpu_ns.clone());
                move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    let start = procstat::thread_cpu_ns().unwrap_or(0);
                    serve(poll, listener, &stop, &requests);
                    let end = procstat::thread_cpu_ns().unwrap_or(start);
                    cpu_ns.store(end.saturating_sub(start), Ordering::Relaxed);
                }
            })
            .map_err(|e| Error::io("cannot start the fixed-response server", e))?;
        Ok(Self {
            addr,
            stop,
            requests,
            cpu_ns,
            handle: Some(handle),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops the server; returns its counts and CPU time.
    pub fn stop(mut self) -> FixedServerStats {
        self.shutdown();
        FixedServerStats {
            requests: self.requests(),
            cpu_ns: self.cpu_ns.load(Ordering::Relaxed),
        }
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn serve(mut poll: Poll, listener: TcpListener, stop: &AtomicBool, requests: &AtomicU64) {
    let mut events = Events::with_capacity(1024);
    let mut connections: HashMap<usize, Connection> = HashMap::new();
    let mut next_token = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    let mut answered = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if poll
            .poll(&mut events, Some(Duration::from_millis(20)))
            .is_err()
        {
            continue;
        }
        for event in events.iter() {
            if event.token() == LISTENER {
                while let Ok((mut stream, _)) = listener.accept() {
                    let token = next_token;
                    next_token += 1;
                    let _ = stream.set_nodelay(true);
                    if poll
                        .registry()
                        .register(
                            &mut stream,
                            Token(token),
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .is_ok()
                    {
                        connections.insert(
                            token,
                            Connection {
                                stream,
                                input: Vec::with_capacity(4096),
                                output: Vec::with_capacity(4096),
                                written: 0,
                            },
                        );
                    }
                }
                continue;
            }
            let token = event.token().0;
            let Some(conn) = connections.get_mut(&token) else {
                continue;
            };
            let mut alive = true;
            if event.is_readable() || event.is_read_closed() {
                loop {
                    match conn.stream.read(&mut chunk) {
                        Ok(0) => {
                            alive = false;
                            break;
                        }
                        Ok(n) => {
                            conn.input.extend_from_slice(&chunk[..n]);
                            answered += answer_all(conn);
                            if n < chunk.len() {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            alive = false;
                            break;
                        }
                    }
                }
            }
            if alive {
                while conn.written < conn.output.len() {
                    match conn.stream.write(&conn.output[conn.written..]) {
                        Ok(0) => {
                            alive = false;
                            break;
                        }
                        Ok(n) => conn.written += n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            alive = false;
                            break;
                        }
                    }
                }
                if conn.written == conn.output.len() {
                    conn.output.clear();
                    conn.written = 0;
                }
            }
            if !alive && let Some(mut conn) = connections.remove(&token) {
                let _ = poll.registry().deregister(&mut conn.stream);
            }
        }
        requests.store(answered, Ordering::Relaxed);
    }
}

/// Answers every complete request in the connection's input.
fn answer_all(conn: &mut Connection) -> u64 {
    let mut used = 0;
    let mut count = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&conn.input[used..]) {
            Ok(httparse::Status::Complete(n)) => {
                used += n;
                count += 1;
                conn.output.extend_from_slice(FIXED_RESPONSE);
            }
            Ok(httparse::Status::Partial) => break,
            Err(_) => {
                used = conn.input.len();
                break;
            }
        }
    }
    conn.input.drain(..used);
    count
}
