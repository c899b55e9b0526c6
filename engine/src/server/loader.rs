//! The loader thread: loads the link table from fjall, starts one worker per
//! listener, marks the engine ready, then follows the change source until
//! shutdown.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::clients::ConnectionCounts;
use super::worker::{TlsListener, Worker};
use super::{SyncSource, spawn_thread};
use crate::clicks::ClickSender;
use crate::http::ConnectionLimits;
use crate::intake::ChangeIntake;
use crate::redirect::{RedirectHandler, RedirectSettings};
use crate::stats::{EngineStats, WorkerStats};
use crate::subscriber::{Subscriber, SubscriberSettings};
use crate::table::LinkTable;

/// Everything the loader hands on to workers and the subscriber.
pub(super) struct Loader {
    pub intake: Arc<ChangeIntake>,
    pub table: Arc<LinkTable>,
    pub stats: Arc<EngineStats>,
    pub worker_stats: Arc<[Arc<WorkerStats>]>,
    pub listeners: Vec<StdListener>,
    /// Each worker's HTTPS listener, when one is configured.
    pub tls_listeners: Vec<TlsListener>,
    pub click_senders: Option<Vec<ClickSender>>,
    pub settings: Arc<RedirectSettings>,
    pub limits: ConnectionLimits,
    pub max_connections_per_worker: usize,
    /// Open connections per client, when `server.clients.max_connections` is set.
    pub client_connections: Option<Arc<ConnectionCounts>>,
    pub shutdown: watch::Receiver<bool>,
    pub sync: Option<SyncSource>,
    pub poll_interval: Duration,
    pub subscriber_stop: Arc<AtomicBool>,
    pub before_load: Option<Box<dyn FnOnce() + Send>>,
}

impl Loader {
    pub fn run(mut self) {
        if let Some(hook) = self.before_load.take() {
            hook();
        }
        if !self.load() {
            return;
        }
        let workers = self.start_workers();
        self.stats.ready.store(true, Ordering::Release);
        let subscriber = self.start_subscriber();
        if let Some(subscriber) = subscriber {
            let _ = subscriber.join();
        }
        for worker in workers {
            let _ = worker.join();
        }
    }

    /// Loads the table; false when it cannot be (the engine then never serves).
    fn load(&self) -> bool {
        let started = Instant::now();
        match self.intake.load_table() {
            Ok(loaded) => tracing::info!(
                links = loaded.links,
                errors = loaded.errors,
                last_applied = loaded.last_applied,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "link table loaded"
            ),
            Err(error) => {
                tracing::error!(%error, "cannot load the link table; not serving");
                return false;
            }
        }
        self.stats
            .load_millis
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        true
    }

    fn start_workers(&mut self) -> Vec<JoinHandle<()>> {
        let mut workers = Vec::new();
        let mut tls_listeners = std::mem::take(&mut self.tls_listeners).into_iter();
        for (index, listener) in std::mem::take(&mut self.listeners).into_iter().enumerate() {
            let tls = tls_listeners.next();
            let clicks = self
                .click_senders
                .as_ref()
                .map(|senders| senders[index].clone());
            let worker = Worker {
                handler: RedirectHandler::new(self.table.clone(), self.settings.clone(), clicks),
                stats: self.worker_stats[index].clone(),
                limits: self.limits.clone(),
                max_connections: self.max_connections_per_worker,
                client_connections: self.client_connections.clone(),
                shutdown: self.shutdown.clone(),
            };
            match spawn_thread(&format!("ricochet-worker-{index}"), move || {
                worker.run(listener, tls)
            }) {
                Ok(handle) => workers.push(handle),
                Err(error) => tracing::error!(%error, "cannot start a worker"),
            }
        }
        workers
    }

    fn start_subscriber(&mut self) -> Option<JoinHandle<()>> {
        let sync = self.sync.take()?;
        let follower = Subscriber::new(
            self.intake.clone(),
            sync.changes,
            sync.bus.subscribe(),
            self.stats.clone(),
            SubscriberSettings {
                poll_interval: self.poll_interval,
            },
        );
        match follower.spawn(self.subscriber_stop.clone()) {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::error!(%error, "cannot start the subscriber");
                None
            }
        }
    }
}
