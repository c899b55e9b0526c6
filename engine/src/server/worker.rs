//! One shard: its SO_REUSEPORT listener and the accept loop on a
//! current-thread event loop, with the per-worker connection cap.

use std::cell::Cell;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::{StartError, current_thread_runtime};
use crate::http::{ConnectionLimits, serve_connection};
use crate::redirect::RedirectHandler;
use crate::stats::WorkerStats;

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
    pub(super) shutdown: watch::Receiver<bool>,
}

impl Worker {
    pub(super) fn run(self, listener: StdListener) {
        let runtime = current_thread_runtime();
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, self.accept_loop(listener));
    }

    async fn accept_loop(mut self, listener: StdListener) {
        let listener = match TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                tracing::error!(%error, "worker cannot register its listener");
                return;
            }
        };
        let limits = Rc::new(self.limits.clone());
        let open = Rc::new(Cell::new(0usize));
        loop {
            let accepted = tokio::select! {
                _ = self.shutdown.changed() => return,
                accepted = listener.accept() => accepted,
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
                tokio::task::spawn_local(reject_overload(stream));
                continue;
            }
            let _ = stream.set_nodelay(true);
            open.set(open.get() + 1);
            let mut handler = self.handler.clone();
            let stats = self.stats.clone();
            let limits = limits.clone();
            let open = open.clone();
            tokio::task::spawn_local(async move {
                serve_connection(stream, Some(peer.ip()), &mut handler, &*stats, &limits).await;
                open.set(open.get() - 1);
                WorkerStats::bump(&stats.connections_closed);
            });
        }
    }
}

async fn reject_overload(mut stream: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let clock = crate::http::Clock::batch();
    let mut out = Vec::new();
    crate::http::ResponseWriter::close_after(&mut out, &clock).text(503, "too many connections\n");
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
    let _ = stream.shutdown().await;
}
