//! Ricochet's control plane: the operators' REST API over the source of truth
//! (a fjall store with a versioned change log), and the publisher that sends
//! every change to engines over the update bus.
//!
//! - [`config`]: the control plane's configuration.
//! - [`store`]: records, code index, change log, domains, keys, idempotency.
//! - [`service`]: link and domain operations as atomic store transactions,
//!   with domain inputs and errors.
//! - [`keys`]: API keys and scopes.
//! - [`accounts`]: users, passwords and sign-in sessions.
//! - [`workspaces`]: workspaces, members and roles, invitations, soft deletion.
//! - [`mailer`]: invitation mail over SMTP, when configured.
//! - [`fetch`]: fetching user-given URLs safely (public addresses only,
//!   time and size limits), for card metadata and webhooks.
//! - [`events`]: what happened, logged with the changes: link, domain,
//!   certificate and click events.
//! - [`webhooks`]: workspaces' endpoints, signed deliveries with retries.
//! - [`pages`]: link-in-bio pages, rendered into records engines serve.
//! - [`cards`]: a link's card read from its destination's page at creation.
//! - [`qr`]: QR codes of short links (SVG or PNG of an exact size), for the
//!   API and the console.
//! - [`api`]: the actix-web routes, authentication, errors, OpenAPI.
//! - [`console`]: the operators' web console (server-rendered pages).
//! - [`publisher`]: changes and heartbeats onto the bus.

pub mod accounts;
pub mod acme;
pub mod api;
pub mod cards;
pub mod config;
pub mod console;
pub mod denylist;
pub mod dns;
pub mod events;
pub mod fetch;
pub mod keys;
pub mod mailer;
pub mod pages;
pub mod publisher;
pub mod qr;
pub mod service;
pub mod store;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod transfer;
pub mod webhooks;
pub mod workspaces;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use actix_web::{App, HttpServer, web};
use ricochet_clickstore::ClickStore;
use ricochet_clickstore::config::Role;
use ricochet_model::bus::{ChangeSource, LocalBus, RedisBus, UpdateBus};
use thiserror::Error;

use accounts::{Accounts, OwnerCredentials, SessionSettings};
pub use config::ControlConfig;
use keys::{IssuedKey, KeyRing};
use service::{LinkService, LinkSettings};
use store::{ControlStore, StoreError};
use workspaces::{WorkspaceSettings, Workspaces};

#[derive(Debug, Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot create the first owner: {0}")]
    Owner(#[from] accounts::AccountError),
    #[error("cannot prepare workspaces: {0}")]
    Workspaces(#[from] workspaces::WorkspaceError),
    #[error(transparent)]
    Clicks(#[from] ricochet_clickstore::store::OpenError),
    #[error("cannot start: {0}")]
    Io(#[from] std::io::Error),
}

/// The bus the configuration names: Redis, or the in-process bus.
pub fn bus_from_config(config: &ControlConfig) -> Result<Arc<dyn UpdateBus>, StartError> {
    if config.bus.url.is_empty() {
        return Ok(Arc::new(LocalBus::new()));
    }
    RedisBus::new(&config.bus.url, &config.bus.channel)
        .map(|bus| Arc::new(bus) as Arc<dyn UpdateBus>)
        .map_err(|e| StartError::Config(format!("bus.url: {e}")))
}

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A running control plane.
pub struct ControlPlane {
    addr: SocketAddr,
    store: Arc<ControlStore>,
    bus: Arc<dyn UpdateBus>,
    cluster_token: String,
    bootstrap_key: Option<IssuedKey>,
    first_owner: Option<OwnerCredentials>,
    server: actix_web::dev::ServerHandle,
    click_store: ClickStore,
    intake: Arc<api::intake::IntakeStats>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Opens the store and the click store, registers the default domain,
    /// creates the bootstrap admin key and the first owner on first start (the
    /// owner also on the first start of a store without users), and serves the
    /// API on its own threads.
    pub fn start(config: ControlConfig, bus: Arc<dyn UpdateBus>) -> Result<Self, StartError> {
        config.validate().map_err(StartError::Config)?;
        let store = Arc::new(ControlStore::open(&config.storage.data_dir)?);
        let click_subscribers = Arc::new(events::clicks::ClickSubscribers::default());
        let click_store = ClickStore::open(
            &config.clicks,
            Role::ControlPlane,
            "clicks",
            &config.storage.data_dir,
            None,
        )?
        .wrap_sink(|inner| {
            Arc::new(events::clicks::ClickTap::new(
                inner,
                store.clone(),
                click_subscribers.clone(),
            ))
        });
        let now = ricochet_model::now_millis();
        let links = &config.links;
        let mut service = LinkService::new(
            store.clone(),
            LinkSettings::new(
                &links.default_domain,
                links.code_length,
                links.max_bulk,
                &links.reserved_codes,
            )
            .with_dns_verification(config.domains.verification == config::VerificationMode::Dns)
            .with_acme(!config.acme.directory_url.is_empty())
            .with_short_url_base(&links.short_url_base),
        );
        if links.fetch_card_metadata {
            service = service.with_cards(cards::CardFetcher::new(fetch::Fetcher::new(
                fetch::FetchPolicy {
                    allow_private: links.fetch_allow_private,
                    timeout: links.fetch_timeout,
                    ..fetch::FetchPolicy::default()
                },
            )));
        }
        let denylist = Arc::new(denylist::Denylist::new(
            store.clone(),
            config.denylist.settings(),
        )?);
        service = service.with_denylist(denylist.clone());
        service
            .register_default_domain(now)
            .map_err(|e| StartError::Config(e.to_string()))?;
        let bootstrap_key = KeyRing::new(&store).bootstrap(now)?;
        let accounts = Accounts::new(
            store.clone(),
            SessionSettings {
                idle_timeout_ms: millis(config.accounts.session_idle_timeout),
                absolute_timeout_ms: millis(config.accounts.session_absolute_timeout),
            },
        );
        let first_owner = accounts.bootstrap_owner(&config.accounts.first_owner_email, now)?;
        let workspaces = Workspaces::new(
            store.clone(),
            WorkspaceSettings {
                invitation_ttl_ms: millis(config.accounts.invitation_ttl),
                deletion_retention_ms: millis(config.accounts.workspace_retention),
            },
        );
        workspaces.ensure_default(now)?;
        workspaces.sweep(now)?;
        accounts::password::warm_up();
        let cluster_token = store.cluster_token(&config.bus.cluster_token)?;

        let (sender, receiver) = std::sync::mpsc::channel();
        store.publish_to(sender);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = vec![publisher::spawn(
            store.clone(),
            bus.clone(),
            receiver,
            config.bus.heartbeat_interval,
            stop.clone(),
        )?];
        threads.push(spawn_sweeper(workspaces.clone(), stop.clone())?);
        let webhook_settings = config.webhooks.settings();
        let webhooks = webhooks::Webhooks::new(
            store.clone(),
            webhook_settings.clone(),
            fetch::Fetcher::new(webhook_settings.policy.clone()),
            click_subscribers.clone(),
        )?;
        let webhook_stats = Arc::new(webhooks::dispatch::WebhookStats::default());
        threads.extend(webhooks::dispatch::spawn(
            webhooks.clone(),
            webhook_stats.clone(),
            stop.clone(),
        )?);
        threads.push(spawn_events(
            events::clicks::ClickEvents::new(
                store.clone(),
                click_subscribers.clone(),
                click_store.reader().cloned(),
                config.webhooks.clicked_links_per_window,
            ),
            events::expiry::Expiries::new(store.clone()),
            stop.clone(),
        )?);
        threads.push(spawn_denylist(
            denylist,
            config.denylist.refresh_interval,
            stop.clone(),
        )?);
        let dns: Arc<dyn service::TxtLookup> = Arc::new(
            dns::DnsLookup::new(
                config.domains.dns_server.parse().ok(),
                config.domains.dns_timeout,
            )
            .map_err(StartError::Config)?,
        );
        if !config.acme.directory_url.is_empty() {
            let issuer = acme::Issuer::new(
                store.clone(),
                acme::AcmeSettings {
                    directory_url: config.acme.directory_url.clone(),
                    root_certificate: (!config.acme.root_certificate.is_empty())
                        .then(|| config.acme.root_certificate.clone().into()),
                    contact: config.acme.contact.clone(),
                    challenge: config.acme.challenge,
                    challenge_delay: config.acme.challenge_delay,
                },
                &links.default_domain,
            )
            .map_err(StartError::Config)?;
            threads.push(spawn_issuer(
                issuer,
                config.acme.check_interval,
                stop.clone(),
            )?);
        }
        if config.domains.verification == config::VerificationMode::Dns {
            threads.push(spawn_domain_checker(
                service.clone(),
                dns.clone(),
                config.domains.check_interval,
                stop.clone(),
            )?);
        }

        let listener = std::net::TcpListener::bind(config.server.listen).map_err(|source| {
            StartError::Bind {
                addr: config.server.listen,
                source,
            }
        })?;
        let addr = listener.local_addr()?;
        let click_source: api::ClickSource = Arc::default();
        if let Some(reader) = click_store.reader() {
            let _ = click_source.set(reader.clone());
        }
        let intake = Arc::new(api::intake::IntakeStats::default());
        let pages = pages::PageService::new(service.clone());
        let state = web::Data::new(api::AppState {
            service,
            pages,
            workspaces,
            console_url: match config.accounts.console_url.trim_end_matches('/') {
                "" => console::PREFIX.to_owned(),
                base => base.to_owned(),
            },
            mailer: mailer::Mailer::new(&config.accounts.smtp_url, &config.accounts.smtp_from)
                .map_err(StartError::Config)?,
            limits: api::auth::RateLimits::new(
                config.rate_limit.requests_per_second,
                config.rate_limit.burst,
            ),
            accounts,
            sign_in_limits: api::auth::SignInLimits::new(
                config.accounts.sign_in_per_account_per_minute,
                config.accounts.sign_in_per_address_per_minute,
            ),
            behind_https: config.accounts.behind_https,
            cluster_token: cluster_token.clone(),
            max_body_bytes: config.server.max_body_bytes,
            clicks: click_source,
            click_sink: click_store.sink().clone(),
            intake: intake.clone(),
            openapi: api::openapi::render(links.max_bulk),
            dns: dns.clone(),
            webhooks,
            webhook_stats,
            click_subscribers,
            event_streams: Default::default(),
        });
        let workers = match config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let (handle_sender, handle_receiver) = std::sync::mpsc::channel();
        threads.push(
            std::thread::Builder::new()
                .name("ricochet-control-http".into())
                .spawn(move || {
                    let system = actix_web::rt::System::new();
                    let result = system.block_on(async move {
                        let server = HttpServer::new(move || {
                            App::new()
                                .app_data(state.clone())
                                .configure(console::configure)
                                .configure(api::configure)
                        })
                        .workers(workers)
                        .disable_signals()
                        .shutdown_timeout(5)
                        .listen(listener)?
                        .run();
                        let _ = handle_sender.send(server.handle());
                        server.await
                    });
                    if let Err(error) = result {
                        tracing::error!(%error, "control plane HTTP server failed");
                    }
                })?,
        );
        let server = handle_receiver
            .recv()
            .map_err(|_| StartError::Io(std::io::Error::other("the HTTP server did not start")))?;
        Ok(Self {
            addr,
            store,
            bus,
            cluster_token,
            bootstrap_key,
            first_owner,
            server,
            click_store,
            intake,
            stop,
            threads,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn store(&self) -> &Arc<ControlStore> {
        &self.store
    }

    pub fn bus(&self) -> &Arc<dyn UpdateBus> {
        &self.bus
    }

    /// Token engines use for `/internal/v1/changes`.
    pub fn cluster_token(&self) -> &str {
        &self.cluster_token
    }

    /// The admin key created at first start (shown once).
    pub fn bootstrap_key(&self) -> Option<&IssuedKey> {
        self.bootstrap_key.as_ref()
    }

    /// The first owner's email and generated password, when this start
    /// created them (shown once).
    pub fn first_owner(&self) -> Option<&OwnerCredentials> {
        self.first_owner.as_ref()
    }

    /// The click store engines' windows are kept in and analytics read
    /// (the all-in-one binary hands it to its engine).
    pub fn click_store(&self) -> &ClickStore {
        &self.click_store
    }

    /// What `POST /internal/v1/clicks` has taken in since start.
    pub fn click_intake(&self) -> &api::intake::IntakeStats {
        &self.intake
    }

    /// The change log, read in process.
    pub fn change_source(&self) -> Arc<dyn ChangeSource> {
        Arc::new(publisher::StoreChangeSource(self.store.clone()))
    }

    /// Stops serving, stops the publisher and flushes the store.
    pub fn shutdown(mut self) {
        self.stop_all();
    }

    fn stop_all(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        let server = self.server.clone();
        let _ = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(server.stop(true));
        })
        .join();
        self.stop.store(true, Ordering::Release);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        if let Err(error) = self.store.persist() {
            tracing::warn!(%error, "could not flush the control store");
        }
        if let Err(error) = self.click_store.persist() {
            tracing::warn!(%error, "could not flush the click store");
        }
    }
}

/// A thread named `name` that runs `work` every `interval` until `stop`
/// (checked five times a second, so shutdown never waits on it).
fn spawn_periodic(
    name: &str,
    interval: std::time::Duration,
    stop: Arc<AtomicBool>,
    work: impl FnMut() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || every(interval, &stop, work))
}

/// Runs `work` every `interval` until `stop` (checked five times a second).
fn every(interval: std::time::Duration, stop: &AtomicBool, mut work: impl FnMut()) {
    const TICK: std::time::Duration = std::time::Duration::from_millis(200);
    let mut waited = std::time::Duration::ZERO;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(TICK.min(interval));
        waited += TICK.min(interval);
        if waited < interval {
            continue;
        }
        waited = std::time::Duration::ZERO;
        work();
    }
}

/// Makes settled click windows into `link.clicked` events and logs
/// `link.expired` for links whose time passed, every second.
fn spawn_events(
    clicks: events::clicks::ClickEvents,
    mut expiries: events::expiry::Expiries,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    let second = std::time::Duration::from_secs(1);
    spawn_periodic("ricochet-control-events", second, stop, move || {
        let now = ricochet_model::now_millis();
        if let Err(error) = clicks.run_once(now) {
            tracing::warn!(%error, "could not make click events");
        }
        if let Err(error) = expiries.run_once(now) {
            tracing::warn!(%error, "could not log link expiries");
        }
    })
}

/// Purges deleted workspaces once their retention is over, checking hourly.
fn spawn_sweeper(workspaces: Workspaces, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
    let hourly = std::time::Duration::from_secs(3600);
    spawn_periodic("ricochet-control-sweeper", hourly, stop, move || {
        if let Err(error) = workspaces.sweep(ricochet_model::now_millis()) {
            tracing::warn!(%error, "could not purge deleted workspaces");
        }
    })
}

/// Applies the denylist to the links once at start (the files or the links
/// may have changed while the control plane was down), then rereads its
/// files every `interval` and applies them when they changed.
fn spawn_denylist(
    denylist: Arc<denylist::Denylist>,
    interval: std::time::Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ricochet-control-denylist".into())
        .spawn(move || {
            if let Err(error) = denylist.sweep() {
                tracing::warn!(%error, "could not apply the denylist to the links");
            }
            every(interval, &stop, || {
                if let Err(error) = denylist.refresh() {
                    tracing::warn!(%error, "could not apply the denylist to the links");
                }
            });
        })
}

/// Orders certificates of verified domains due one, and revokes those of
/// removed domains, every `interval`.
fn spawn_issuer(
    issuer: acme::Issuer,
    interval: std::time::Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    spawn_periodic("ricochet-control-acme", interval, stop, move || {
        if let Err(error) = issuer.run_once(ricochet_model::now_millis()) {
            tracing::warn!(%error, "could not order certificates");
        }
        if let Err(error) = issuer.revoke_pending(ricochet_model::now_millis()) {
            tracing::warn!(%error, "could not revoke certificates of removed domains");
        }
    })
}

/// Checks domains due a verification check (pending ones with backoff,
/// verified ones daily) every `interval`.
fn spawn_domain_checker(
    service: LinkService,
    dns: Arc<dyn service::TxtLookup>,
    interval: std::time::Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    spawn_periodic(
        "ricochet-control-domains",
        interval,
        stop,
        move || match service.check_due_domains(dns.as_ref(), ricochet_model::now_millis()) {
            Ok(0) => {}
            Ok(checked) => tracing::info!(checked, "checked domains' verification records"),
            Err(error) => tracing::warn!(%error, "could not check domains' verification records"),
        },
    )
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop_all();
    }
}
