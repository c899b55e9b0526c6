//! Starting and stopping an engine: the admin port first (so `/readyz` can say
//! 503), the table loaded from fjall, then one worker per core, each with its
//! own SO_REUSEPORT listener and current-thread event loop. Workers share only
//! the read-only link table; each owns its counters.
//!
//! - [`Engine`] (this file): start and stop.
//! - `loader`: loads the table, then starts workers and the subscriber.
//! - `worker`: a shard's listeners (HTTP, HTTPS) and accept loop.
//! - `admin`: the admin port's accept loop.
//! - `clients`: per-client limits (connections, requests per second).
//! - `sync`: the bus and change source to follow.

mod admin;
pub mod clients;
mod loader;
mod sync;
mod worker;

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ricochet_clickstore::ClickStore;
use thiserror::Error;
use tokio::sync::watch;

pub use self::clients::ClientLimits;
pub use self::sync::SyncSource;
use crate::admin::AdminHandler;
use crate::behaviour::CookieKey;
use crate::behaviour::password::Verifier;
use crate::clicks::{ClickParts, ClickPipeline, ClickReader, ClickStats, open_geo, start_clicks};
use crate::config::EngineConfig;
use crate::http::ConnectionLimits;
use crate::intake::ChangeIntake;
use crate::limits::{LimitCounter, start_counter};
use crate::redirect::RedirectSettings;
use crate::stats::{EngineStats, WorkerStats};
use crate::store::{LinkStore, StoreError};
use crate::table::LinkTable;

#[derive(Debug, Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Hooks into start-up.
#[derive(Default)]
pub struct StartOptions {
    /// Runs on the loader thread before the table is loaded.
    pub before_load: Option<Box<dyn FnOnce() + Send>>,
    /// Follow this bus and change source instead of what `sync` configures
    /// (the all-in-one binary passes its in-process bus here).
    pub sync: Option<SyncSource>,
    /// Write click windows here instead of the store `clicks.store` names
    /// (the all-in-one binary passes its control plane's store).
    pub click_store: Option<ClickStore>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions").finish_non_exhaustive()
    }
}

/// A running engine.
pub struct Engine {
    redirect_addr: SocketAddr,
    tls_addr: Option<SocketAddr>,
    admin_addr: SocketAddr,
    intake: Arc<ChangeIntake>,
    stats: Arc<EngineStats>,
    shutdown: watch::Sender<bool>,
    subscriber_stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    clicks: Option<ClickPipeline>,
    click_store: Option<ClickStore>,
    counter: Arc<dyn LimitCounter>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("redirect_addr", &self.redirect_addr)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Validates `config`, binds both ports, and starts loading the table in
    /// the background; workers start accepting once it is loaded.
    pub fn start(config: EngineConfig) -> Result<Self, StartError> {
        Self::start_with(config, StartOptions::default())
    }

    /// [`Engine::start`] with hooks (tests use them to hold the loader).
    pub fn start_with(config: EngineConfig, options: StartOptions) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        std::fs::create_dir_all(&config.storage.data_dir).map_err(|source| {
            StartError::Store(StoreError::Open {
                path: config.storage.data_dir.display().to_string(),
                source: source.into(),
            })
        })?;
        let store = LinkStore::open(&config.storage.data_dir)?;
        let cookie_key = CookieKey::for_engine(
            &config.redirect.cookie_secret,
            &config.sync.cluster_token,
            &config.storage.data_dir,
        )
        .map_err(|e| {
            StartError::Config(format!(
                "cannot keep the cookie secret in {}: {e}",
                config.storage.data_dir.display()
            ))
        })?;
        let table = Arc::new(LinkTable::new(config.default_domain()).with_cookie_key(cookie_key));
        let geo = open_geo(&config)?;
        // Compiling the user-agent rules takes a while: done now, beside the load.
        crate::behaviour::agent::warm_up();
        let stats = Arc::new(EngineStats::default());
        let counter = start_counter(&config.sync, &store).map_err(StartError::Config)?;
        let intake = Arc::new(ChangeIntake::new(store, table.clone(), stats.clone())?);
        // A default certificate from files goes in first: one from the
        // change log, loaded next, replaces it.
        if let Some(change) = certificate_from_files(&config.server)? {
            let compiled = crate::tls::CompiledTls::compile(&change)
                .map_err(|e| StartError::Config(format!("server.tls_certificate: {e}")))?;
            table.tls().apply([compiled]);
        }

        let workers = config.worker_count();
        let (clicks, click_store) =
            match start_clicks(&config, workers, options.click_store, geo.clone())? {
                Some(ClickParts { pipeline, store }) => (Some(pipeline), Some(store)),
                None => (None, None),
            };
        let listeners =
            worker::bind_reuseport(config.server.listen, workers, config.server.backlog)?;
        let redirect_addr = local_addr(&listeners[0], config.server.listen)?;
        let (tls_listeners, tls_addr) = match config.server.tls_listen {
            None => (Vec::new(), None),
            Some(addr) => {
                let bound = worker::bind_reuseport(addr, workers, config.server.backlog)?;
                let tls_addr = local_addr(&bound[0], addr)?;
                let server_config =
                    crate::tls::server_config(table.tls().clone(), config.server.unknown_sni)
                        .map_err(|e| StartError::Config(format!("cannot set up TLS: {e}")))?;
                let acceptor = crate::tls::TlsAcceptor::from(server_config);
                let listeners = bound
                    .into_iter()
                    .map(|listener| worker::TlsListener {
                        listener,
                        acceptor: acceptor.clone(),
                        handshake_timeout: config.server.handshake_timeout,
                    })
                    .collect();
                (listeners, Some(tls_addr))
            }
        };
        let admin_listener =
            StdListener::bind(config.admin.listen).map_err(|source| StartError::Bind {
                addr: config.admin.listen,
                source,
            })?;
        let admin_addr = local_addr(&admin_listener, config.admin.listen)?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let worker_stats: Arc<[Arc<WorkerStats>]> = (0..workers)
            .map(|_| Arc::new(WorkerStats::default()))
            .collect();
        let mut threads = Vec::new();
        let clients = ClientLimits::from_config(&config.server.clients);
        if let Some(requests) = clients.requests.clone() {
            let forget_rx = shutdown_rx.clone();
            threads.push(spawn_thread("ricochet-clients", move || {
                clients::forget_idle_clients(requests, forget_rx)
            })?);
        }

        let admin = AdminHandler::new(stats.clone(), worker_stats.clone(), table.clone())
            .with_clients(clients.clone())
            .with_clicks(
                clicks.as_ref().map(|p| p.stats().clone()),
                clicks.as_ref().map(|p| p.sink().stats().clone()),
            )
            .with_click_store(
                click_store
                    .as_ref()
                    .and_then(|s| s.embedded_store().cloned()),
            );
        let admin_rx = shutdown_rx.clone();
        threads.push(spawn_thread("ricochet-admin", move || {
            admin::run_admin(admin_listener, admin, admin_rx)
        })?);

        let sync = match options.sync {
            Some(sync) => Some(sync),
            None => sync::sync_from_config(&config)?,
        };
        let subscriber_stop = Arc::new(AtomicBool::new(false));
        let loader = loader::Loader {
            intake: intake.clone(),
            table,
            stats: stats.clone(),
            worker_stats,
            listeners,
            tls_listeners,
            click_senders: clicks
                .as_ref()
                .map(|pipeline| (0..workers).map(|shard| pipeline.sender(shard)).collect()),
            settings: Arc::new(
                RedirectSettings::new(config.redirect.permanent_max_age.as_secs())
                    .trusting_forwarded_for(config.clicks.trust_forwarded_for)
                    .with_https_port(config.server.https_port)
                    .with_geo(geo)
                    .with_verifier(Some(Verifier::start().map_err(StartError::Thread)?))
                    .with_counter(Some(counter.clone())),
            ),
            limits: ConnectionLimits {
                max_header_bytes: config.server.max_header_bytes,
                header_timeout: config.server.header_timeout,
                idle_timeout: config.server.idle_timeout,
                request_rate: clients.requests.clone(),
            },
            max_connections_per_worker: config.server.max_connections.div_ceil(workers),
            client_connections: clients.connections.clone(),
            shutdown: shutdown_rx,
            sync,
            poll_interval: config.sync.poll_interval,
            subscriber_stop: subscriber_stop.clone(),
            before_load: options.before_load,
        };
        threads.push(spawn_thread("ricochet-load", move || loader.run())?);

        Ok(Self {
            redirect_addr,
            tls_addr,
            admin_addr,
            intake,
            stats,
            shutdown,
            subscriber_stop,
            threads,
            clicks,
            click_store,
            counter,
        })
    }

    /// Address of the redirect listener.
    pub fn redirect_addr(&self) -> SocketAddr {
        self.redirect_addr
    }

    /// Address of the HTTPS listener, when one is configured.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Address of the admin listener.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The change intake: the one way changes reach this engine.
    pub fn intake(&self) -> &Arc<ChangeIntake> {
        &self.intake
    }

    pub fn stats(&self) -> &Arc<EngineStats> {
        &self.stats
    }

    /// Where this engine's clicks can be read (None when capture is off or
    /// windows are shipped to the control plane).
    pub fn click_reader(&self) -> Option<Arc<dyn ClickReader>> {
        self.click_store.as_ref()?.reader().cloned()
    }

    /// The counter of links with a click limit.
    pub fn click_limits(&self) -> &Arc<dyn LimitCounter> {
        &self.counter
    }

    /// Counters of the click pipeline.
    pub fn click_stats(&self) -> Option<&Arc<ClickStats>> {
        self.clicks.as_ref().map(|p| p.stats())
    }

    pub fn is_ready(&self) -> bool {
        self.stats.ready.load(Ordering::Acquire)
    }

    /// Waits until the table is loaded and workers accept, or `timeout` passes.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.is_ready() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Stops accepting, closes connections, flushes the store and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.subscriber_stop.store(true, Ordering::Release);
        let _ = self.shutdown.send(true);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        // Workers are gone, so are their senders: actors flush open windows.
        if let Some(clicks) = self.clicks.take() {
            clicks.shutdown();
        }
        if let Some(store) = &self.click_store {
            let _ = store.persist();
        }
        // Workers are gone: no take is waiting.
        self.counter.stop();
        if let Err(error) = self.intake.store().flush() {
            tracing::warn!(%error, "could not flush the link store at shutdown");
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

fn local_addr(listener: &StdListener, configured: SocketAddr) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: configured,
        source,
    })
}

fn spawn_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> Result<JoinHandle<()>, StartError> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map_err(StartError::Thread)
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// The default certificate named by `server.tls_certificate` and
/// `server.tls_private_key`, read from their files.
fn certificate_from_files(
    server: &crate::config::ServerConfig,
) -> Result<Option<ricochet_model::tls::TlsChange>, StartError> {
    let (Some(chain), Some(key)) = (&server.tls_certificate, &server.tls_private_key) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path, field: &str| {
        std::fs::read_to_string(path).map_err(|e| {
            StartError::Config(format!(
                "server.{field}: cannot read {}: {e}",
                path.display()
            ))
        })
    };
    Ok(Some(ricochet_model::tls::TlsChange::Certificate {
        name: ricochet_model::tls::DEFAULT_CERTIFICATE.to_owned(),
        pem: Some(ricochet_model::tls::CertificatePem {
            chain: read(chain, "tls_certificate")?,
            key: read(key, "tls_private_key")?,
        }),
    }))
}
