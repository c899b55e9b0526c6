//! One shard: its SO_REUSEPORT listeners (plain HTTP, and HTTPS when
//! configured) and the accept loop on a current-thread event loop, with the
//! per-worker connection cap shared by both and the per-client cap
//! (`clients.rs`) shared by all workers.

use std::cell::Cell;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::clients::ConnectionCounts;
use super::{StartError, current_thread_runtime};
use crate::http::{ConnectionLimits, serve_connection};
use crate::redirect::RedirectHandler;
use crate::stats::WorkerStats;
use crate::tls::{ACME_TLS_ALPN, TlsAcceptor};

/// Binds `count` listeners on one address with SO_REUSEPORT. When the port is
/// 0, the first bind picks it and the others join it.
pub(super) fn bind_reuseport(
    addr: SocketAddr,
    count: usize,
    backlog: u32,
) -> Result<Vec<StdListener>, StartError> {
    let mut bound = addr;
    let mut listeners = Vec::with_capacity(count);
    for _ in 0..count {
        let bind_error = |source| StartError::Bind { addr, source };
        let socket = Socket::new(
            Domain::for_address(bound),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(bind_error)?;
        socket.set_reuse_address(true).map_err(bind_error)?;
        socket.set_reuse_port(true).map_err(bind_error)?;
        socket.set_nonblocking(true).map_err(bind_error)?;
        socket.bind(&bound.into()).map_err(bind_error)?;
        socket
            .listen(backlog.min(i32::MAX as u32) as i32)
            .map_err(bind_error)?;
        let listener = StdListener::from(socket);
        bound = listener.local_addr().map_err(bind_error)?;
        listeners.push(listener);
    }
    Ok(listeners)
}

/// One shard: a listener, an event loop, its counters.
pub(super) struct Worker {
    pub(super) handler: RedirectHandler,
    pub(super) stats: Arc<WorkerStats>,
    pub(super) limits: ConnectionLimits,
    pub(super) max_connections: usize,
    /// Open connections per client, across workers (`None`: no per-client cap).
    pub(super) client_connections: Option<Arc<ConnectionCounts>>,
    pub(super) shutdown: watch::Receiver<bool>,
}

/// A shard's HTTPS listener and what its handshakes need.
pub(super) struct TlsListener {
    pub(super) listener: StdListener,
    pub(super) acceptor: TlsAcceptor,
    pub(super) handshake_timeout: Duration,
}

impl Worker {
    pub(super) fn run(self, listener: StdListener, tls: Option<TlsListener>) {
        let runtime = current_thread_runtime();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, self.accept_loop(listener, tls));
    }

    async fn accept_loop(mut self, listener: StdListener, tls: Option<TlsListener>) {
        let registered = TcpListener::from_std(listener).and_then(|plain| {
            let tls = tls
                .map(|tls| {
                    let listener = TcpListener::from_std(tls.listener)?;
                    Ok::<_, std::io::Error>((listener, tls.acceptor, tls.handshake_timeout))
                })
                .transpose()?;
            Ok((plain, tls))
        });
        let (listener, tls) = match registered {
            Ok(listeners) => listeners,
            Err(error) => {
                tracing::error!(%error, "worker cannot register its listeners");
                return;
            }
        };
        let limits = Rc::new(self.limits.clone());
        let open = Rc::new(Cell::new(0usize));
        // Answers to refused connections, written in place.
        let mut refusal = Vec::with_capacity(256);
        loop {
            let (accepted, secure) = tokio::select! {
                _ = self.shutdown.changed() => return,
                accepted = listener.accept() => (accepted, false),
                accepted = accept_tls(tls.as_ref().map(|(l, _, _)| l)) => (accepted, true),
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or similar: back off briefly.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            WorkerStats::bump(&self.stats.connections_accepted);
            if open.get() >= self.max_connections {
                WorkerStats::bump(&self.stats.connections_rejected);
                // A plain client gets a 503; a TLS one is closed at once
                // rather than given a handshake the cap is there to spare.
                if !secure {
                    refuse(stream, 503, "too many connections\n", &mut refusal);
                }
                continue;
            }
            let client = match &self.client_connections {
                None => None,
                Some(counts) => match counts.open(peer.ip()) {
                    Some(counted) => Some(counted),
                    None => {
                        WorkerStats::bump(&self.stats.client_connections_refused);
                        if !secure {
                            refuse(
                                stream,
                                429,
                                "too many connections from your address\n",
                                &mut refusal,
                            );
                        }
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            open.set(open.get() + 1);
            let mut handler = self.handler.clone();
            let stats = self.stats.clone();
            let limits = limits.clone();
            let open = open.clone();
            let handshake = match (&tls, secure) {
                (Some((_, acceptor, timeout)), true) => Some((acceptor.clone(), *timeout)),
                _ => None,
            };
            tokio::task::spawn_local(async move {
                let peer = Some(peer.ip());
                match handshake {
                    None => {
                        serve_connection(stream, peer, false, &mut handler, &*stats, &limits).await
                    }
                    Some((acceptor, timeout)) => {
                        serve_tls(
                            stream,
                            peer,
                            acceptor,
                            timeout,
                            &mut handler,
                            &stats,
                            &limits,
                        )
                        .await
                    }
                }
                drop(client);
                open.set(open.get() - 1);
                WorkerStats::bump(&stats.connections_closed);
            });
        }
    }
}

/// The next connection on the HTTPS listener; never, without one.
async fn accept_tls(
    listener: Option<&TcpListener>,
) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Completes the handshake within `timeout`, then serves the connection as
/// a plain one is served. A TLS-ALPN-01 validation ends with its handshake.
async fn serve_tls(
    stream: TcpStream,
    peer: Option<std::net::IpAddr>,
    acceptor: TlsAcceptor,
    timeout: Duration,
    handler: &mut RedirectHandler,
    stats: &WorkerStats,
    limits: &ConnectionLimits,
) {
    use tokio::io::AsyncWriteExt;
    let mut tls = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(_)) => {
            WorkerStats::bump(&stats.tls_handshake_failures);
            return;
        }
        Err(_elapsed) => {
            WorkerStats::bump(&stats.tls_handshake_timeouts);
            return;
        }
    };
    WorkerStats::bump(&stats.tls_handshakes);
    if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
        let _ = tokio::time::timeout(Duration::from_secs(1), tls.shutdown()).await;
        return;
    }
    serve_connection(tls, peer, true, handler, stats, limits).await;
}

/// Answers a connection refused at accept (a cap) with `status` and closes
/// it: one non-blocking write (a new socket's buffer has room for it) and no
/// task, so refusing a client that reconnects as fast as it can stays cheap.
fn refuse(stream: TcpStream, status: u16, body: &str, out: &mut Vec<u8>) {
    let clock = crate::http::Clock::batch();
    out.clear();
    crate::http::ResponseWriter::close_after(out, &clock).text(status, body);
    let _ = stream.try_write(out);
}
