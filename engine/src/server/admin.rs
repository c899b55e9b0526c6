//! The admin port's accept loop (`/healthz`, `/readyz`, `/metrics`) on its
//! own thread and event loop.

use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use super::current_thread_runtime;
use crate::admin::AdminHandler;
use crate::http::{ConnectionLimits, serve_connection};
use crate::stats::WorkerStats;

pub(super) fn run_admin(
    listener: StdListener,
    handler: AdminHandler,
    mut shutdown: watch::Receiver<bool>,
) {
    let runtime = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let _ = listener.set_nonblocking(true);
        let Ok(listener) = TcpListener::from_std(listener) else {
            tracing::error!("admin listener cannot be registered");
            return;
        };
        let stats = Rc::new(WorkerStats::default());
        let limits = Rc::new(ConnectionLimits::default());
        loop {
            let accepted = tokio::select! {
                _ = shutdown.changed() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let mut handler = handler.clone();
            let stats = stats.clone();
            let limits = limits.clone();
            tokio::task::spawn_local(async move {
                serve_connection(stream, None, false, &mut handler, &*stats, &limits).await;
            });
        }
    });
}
