//! Starting and stopping an engine: the admin port first (so `/readyz` can say
//! 503), the table loaded from fjall, then one worker per core, each with its
//! own SO_REUSEPORT listener and current-thread event loop. Workers share only
//! the read-only link table; each owns its counters.

use std::cell::Cell;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::admin::AdminHandler;
use crate::clicks::enrich::{EnrichSettings, GeoDatabase};
use crate::clicks::fjall_sink::Retention;
use crate::clicks::spill::SpillingSink;
use crate::clicks::{
    ClickPipeline, ClickReader, ClickSender, ClickSink, ClickStats, FjallSink, PipelineSettings,
    Replication, ScyllaSink, SinkError,
};
use crate::config::EngineConfig;
use crate::http::{ConnectionLimits, serve_connection};
use crate::intake::ChangeIntake;
use crate::redirect::{RedirectHandler, RedirectSettings};
use crate::stats::{EngineStats, WorkerStats};
use crate::store::{LinkStore, StoreError};
use crate::subscriber::{HttpChangeSource, Subscriber, SubscriberSettings};
use crate::table::LinkTable;
use ricochet_model::bus::{ChangeSource, LocalBus, RedisBus, UpdateBus};

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
}

/// Where an engine takes its changes from.
#[derive(Clone)]
pub struct SyncSource {
    pub bus: Arc<dyn UpdateBus>,
    pub changes: Arc<dyn ChangeSource>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions").finish_non_exhaustive()
    }
}

/// A running engine.
pub struct Engine {
    redirect_addr: SocketAddr,
    admin_addr: SocketAddr,
    intake: Arc<ChangeIntake>,
    stats: Arc<EngineStats>,
    shutdown: watch::Sender<bool>,
    subscriber_stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    clicks: Option<ClickPipeline>,
    click_store: Option<Arc<FjallSink>>,
    click_reader: Option<Arc<dyn ClickReader>>,
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
        let table = Arc::new(LinkTable::new(config.default_domain()));
        let stats = Arc::new(EngineStats::default());
        let intake = Arc::new(ChangeIntake::new(store, table.clone(), stats.clone())?);

        let workers = config.worker_count();
        let (clicks, click_store, click_reader) = start_clicks(&config, workers)?;
        let click_senders: Option<Vec<ClickSender>> = clicks
            .as_ref()
            .map(|pipeline| (0..workers).map(|shard| pipeline.sender(shard)).collect());
        let listeners = bind_reuseport(config.server.listen, workers, config.server.backlog)?;
        let redirect_addr = listeners[0]
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: config.server.listen,
                source,
            })?;
        let admin_listener =
            StdListener::bind(config.admin.listen).map_err(|source| StartError::Bind {
                addr: config.admin.listen,
                source,
            })?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                addr: config.admin.listen,
                source,
            })?;

        let (shutdown, shutdown_rx) = watch::channel(false);
        let worker_stats: Arc<[Arc<WorkerStats>]> = (0..workers)
            .map(|_| Arc::new(WorkerStats::default()))
            .collect();
        let mut threads = Vec::new();

        let admin = AdminHandler::new(stats.clone(), worker_stats.clone(), table.clone())
            .with_clicks(
                clicks.as_ref().map(|p| p.stats().clone()),
                clicks.as_ref().map(|p| p.sink().stats().clone()),
            )
            .with_click_store(click_store.clone());
        let admin_rx = shutdown_rx.clone();
        threads.push(spawn_thread("ricochet-admin", move || {
            run_admin(admin_listener, admin, admin_rx)
        })?);

        let settings = Arc::new(
            RedirectSettings::new(config.redirect.permanent_max_age.as_secs())
                .trusting_forwarded_for(config.clicks.trust_forwarded_for),
        );
        let limits = ConnectionLimits {
            max_header_bytes: config.server.max_header_bytes,
            header_timeout: config.server.header_timeout,
            idle_timeout: config.server.idle_timeout,
        };
        let per_worker_cap = config.server.max_connections.div_ceil(workers);
        let loader_intake = intake.clone();
        let loader_stats = stats.clone();
        let before_load = options.before_load;
        let sync = match options.sync {
            Some(sync) => Some(sync),
            None => sync_from_config(&config)?,
        };
        let subscriber_stop = Arc::new(AtomicBool::new(false));
        let stop = subscriber_stop.clone();
        let poll_interval = config.sync.poll_interval;
        let sync_intake = intake.clone();
        threads.push(spawn_thread("ricochet-load", move || {
            if let Some(hook) = before_load {
                hook();
            }
            let started = Instant::now();
            match loader_intake.load_table() {
                Ok(loaded) => tracing::info!(
                    links = loaded.links,
                    errors = loaded.errors,
                    last_applied = loaded.last_applied,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "link table loaded"
                ),
                Err(error) => {
                    tracing::error!(%error, "cannot load the link table; not serving");
                    return;
                }
            }
            loader_stats
                .load_millis
                .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            let mut workers = Vec::new();
            let click_senders = click_senders;
            for (index, listener) in listeners.into_iter().enumerate() {
                let clicks = click_senders.as_ref().map(|senders| senders[index].clone());
                let worker = Worker {
                    handler: RedirectHandler::new(table.clone(), settings.clone(), clicks),
                    stats: worker_stats[index].clone(),
                    limits: limits.clone(),
                    max_connections: per_worker_cap,
                    shutdown: shutdown_rx.clone(),
                };
                let name = format!("ricochet-worker-{index}");
                match spawn_thread(&name, move || worker.run(listener)) {
                    Ok(handle) => workers.push(handle),
                    Err(error) => tracing::error!(%error, "cannot start a worker"),
                }
            }
            loader_stats.ready.store(true, Ordering::Release);
            let mut subscriber = None;
            if let Some(sync) = sync {
                let settings = SubscriberSettings { poll_interval };
                let follower = Subscriber::new(
                    sync_intake,
                    sync.changes,
                    sync.bus.subscribe(),
                    loader_stats.clone(),
                    settings,
                );
                match follower.spawn(stop) {
                    Ok(handle) => subscriber = Some(handle),
                    Err(error) => tracing::error!(%error, "cannot start the subscriber"),
                }
            }
            if let Some(subscriber) = subscriber {
                let _ = subscriber.join();
            }
            for worker in workers {
                let _ = worker.join();
            }
        })?);

        Ok(Self {
            redirect_addr,
            admin_addr,
            intake,
            stats,
            shutdown,
            subscriber_stop,
            threads,
            clicks,
            click_store,
            click_reader,
        })
    }

    /// Address of the redirect listener.
    pub fn redirect_addr(&self) -> SocketAddr {
        self.redirect_addr
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

    /// The embedded click store, for the analytics API (None when capture is off).
    pub fn click_reader(&self) -> Option<Arc<dyn ClickReader>> {
        self.click_reader.clone()
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

/// What [`start_clicks`] sets up.
type ClickParts = (
    Option<ClickPipeline>,
    Option<Arc<FjallSink>>,
    Option<Arc<dyn ClickReader>>,
);

/// The click pipeline and its store (embedded, or ScyllaDB when nodes are
/// configured), when capture is on.
fn start_clicks(config: &EngineConfig, workers: usize) -> Result<ClickParts, StartError> {
    let clicks = &config.clicks;
    if !clicks.enabled {
        return Ok((None, None, None));
    }
    let sink_error = |e: SinkError| StartError::Config(format!("click store: {e}"));
    let data = &config.storage.data_dir;
    let (sink, reader, embedded): (Arc<dyn ClickSink>, Arc<dyn ClickReader>, _) =
        if clicks.scylla_nodes.is_empty() {
            let store = Arc::new(FjallSink::open(&data.join("clicks")).map_err(sink_error)?);
            (store.clone(), store.clone(), Some(store))
        } else {
            let replication = Replication::Simple {
                factor: clicks.scylla_replication_factor.max(1),
            };
            let store = Arc::new(
                ScyllaSink::connect(&clicks.scylla_nodes, &clicks.scylla_keyspace, replication)
                    .map_err(sink_error)?,
            );
            (store.clone(), store, None)
        };
    let spilling = Arc::new(
        SpillingSink::open(sink, &data.join("clicks-spill"), clicks.spill_capacity)
            .map_err(sink_error)?,
    );
    let geo = if clicks.geoip_database.as_os_str().is_empty() {
        None
    } else {
        Some(Arc::new(
            GeoDatabase::open(&clicks.geoip_database)
                .map_err(|e| StartError::Config(format!("clicks.geoip_database: {e}")))?,
        ))
    };
    let settings = PipelineSettings {
        node: clicks.node_name(),
        channel_capacity: clicks.channel_capacity,
        grace: clicks.window_grace,
        enrich: EnrichSettings {
            geo: clicks.collect_geo,
            user_agent: clicks.collect_user_agent,
            referrer: clicks.collect_referrer,
        },
    };
    let pipeline =
        ClickPipeline::start(&settings, workers, geo, spilling).map_err(StartError::Thread)?;
    if let Some(store) = &embedded {
        spawn_maintenance(store.clone(), clicks.retention())?;
    }
    Ok((Some(pipeline), embedded, Some(reader)))
}

/// Keeps the embedded click store tidy on its own thread: rolls finished
/// windows up into minutes, hours and days every few seconds, and prunes each
/// level to its retention once an hour (and at start). The thread ends with
/// the store.
fn spawn_maintenance(store: Arc<FjallSink>, retention: Retention) -> Result<(), StartError> {
    const ROLL_UP_EVERY: Duration = Duration::from_secs(5);
    const PRUNE_EVERY: Duration = Duration::from_secs(3600);
    let weak = Arc::downgrade(&store);
    drop(store);
    spawn_thread("ricochet-clicks-rollup", move || {
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            let Some(store) = weak.upgrade() else { return };
            let now = ricochet_model::now_millis();
            match store.roll_up(now) {
                Ok(0) => {}
                Ok(rolled) => tracing::debug!(rolled, "rolled up click buckets"),
                Err(error) => tracing::warn!(%error, "rolling up clicks failed"),
            }
            if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                match store.prune(&retention, now) {
                    Ok(0) => {}
                    Ok(removed) => {
                        tracing::info!(removed, "pruned click rows past their retention")
                    }
                    Err(error) => tracing::warn!(%error, "pruning click rows failed"),
                }
            }
            drop(store);
            std::thread::sleep(ROLL_UP_EVERY);
        }
    })?;
    Ok(())
}

/// The bus and change source `sync` configures, if any.
fn sync_from_config(config: &EngineConfig) -> Result<Option<SyncSource>, StartError> {
    let sync = &config.sync;
    if sync.control_url.is_empty() {
        return Ok(None);
    }
    let changes: Arc<dyn ChangeSource> = Arc::new(HttpChangeSource::new(
        &sync.control_url,
        &sync.cluster_token,
    ));
    let bus: Arc<dyn UpdateBus> = if sync.bus.is_empty() {
        Arc::new(LocalBus::new())
    } else {
        Arc::new(
            RedisBus::new(&sync.bus, &sync.channel)
                .map_err(|e| StartError::Config(format!("sync.bus: {e}")))?,
        )
    };
    Ok(Some(SyncSource { bus, changes }))
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

/// Binds `count` listeners on one address with SO_REUSEPORT. When the port is
/// 0, the first bind picks it and the others join it.
fn bind_reuseport(
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

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

/// One shard: a listener, an event loop, its counters.
struct Worker {
    handler: RedirectHandler,
    stats: Arc<WorkerStats>,
    limits: ConnectionLimits,
    max_connections: usize,
    shutdown: watch::Receiver<bool>,
}

impl Worker {
    fn run(self, listener: StdListener) {
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

fn run_admin(listener: StdListener, handler: AdminHandler, mut shutdown: watch::Receiver<bool>) {
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
                serve_connection(stream, None, &mut handler, &*stats, &limits).await;
            });
        }
    });
}
