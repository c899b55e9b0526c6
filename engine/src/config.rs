//! The engine's configuration: one struct, defaults in code, loaded from an
//! optional TOML file, then `RICOCHET_ENGINE_<SECTION>__<KEY>` environment
//! variables, then command-line flags; `validate()` runs after all of them.
//! `config/engine.toml` is the commented reference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides, e.g. `RICOCHET_ENGINE_SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "RICOCHET_ENGINE_";

/// Upper bound of the 301/308 `Cache-Control` max-age: one week.
pub const MAX_PERMANENT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub storage: StorageConfig,
    pub redirect: RedirectConfig,
    pub sync: SyncConfig,
    pub clicks: ClicksConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClicksConfig {
    /// Capture clicks (GET redirects that are not prefetches).
    pub enabled: bool,
    /// This engine's name in click rows; empty means the id generated at
    /// first start and kept in `storage.data_dir/node-id`.
    pub node: String,
    /// A MaxMind-format database (GeoIP2 or DB-IP lite) for country and city;
    /// empty for none.
    pub geoip_database: PathBuf,
    pub collect_geo: bool,
    pub collect_user_agent: bool,
    pub collect_referrer: bool,
    /// Behind a proxy or load balancer: take the client address from the
    /// last entry of `X-Forwarded-For`. Leave off when clients reach the
    /// engine directly (they could forge the header).
    pub trust_forwarded_for: bool,
    /// Events each shard's channel holds; over it clicks are dropped (and counted).
    pub channel_capacity: usize,
    /// Niceness (0-19) of the click threads whose work comes in bursts (the
    /// window writer, which also builds closed windows into rows, and the
    /// embedded store's rollups): above 0 they yield the CPU to the request
    /// workers whenever both want it. The per-shard actors, which must keep
    /// up with every request, stay at the workers' priority.
    pub thread_nice: u8,
    /// Time after a window ends before it is closed and written.
    #[serde(with = "humantime_serde")]
    pub window_grace: Duration,
    /// Rows one shard's window may become before it is written in parts
    /// (each part its own idempotent batch; 0: no cap). Bounds the memory
    /// of click windows: see docs/CLICKS.md, "Memory and the window cap".
    pub max_window_rows: usize,
    /// Where closed windows go: the embedded store, the control plane this
    /// engine follows, or ScyllaDB.
    pub store: ricochet_clickstore::ClickStoreConfig,
}

impl Default for ClicksConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            node: String::new(),
            geoip_database: PathBuf::new(),
            collect_geo: true,
            collect_user_agent: true,
            collect_referrer: true,
            trust_forwarded_for: false,
            channel_capacity: 65_536,
            thread_nice: 19,
            window_grace: Duration::from_secs(2),
            max_window_rows: crate::clicks::window::DEFAULT_MAX_ROWS,
            store: ricochet_clickstore::ClickStoreConfig::default(),
        }
    }
}

impl ClicksConfig {
    /// The role the click store is opened in.
    pub fn store_role(sync: &SyncConfig) -> ricochet_clickstore::config::Role {
        ricochet_clickstore::config::Role::Engine {
            follows_control: !sync.control_url.is_empty(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncConfig {
    /// Control plane to follow (e.g. `http://control:8081`); empty for a
    /// standalone engine whose links come from `import`.
    pub control_url: String,
    /// Update bus: `redis://host:port/`; empty to rely on polling alone.
    pub bus: String,
    /// Redis channel of change messages.
    pub channel: String,
    /// Token for the control plane's `/internal/v1/changes`.
    pub cluster_token: String,
    /// Catch up from the change log at least this often.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            control_url: String::new(),
            bus: String::new(),
            channel: ricochet_model::bus::DEFAULT_CHANNEL.to_owned(),
            cluster_token: String::new(),
            poll_interval: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the redirect listener; every worker binds it with SO_REUSEPORT.
    pub listen: SocketAddr,
    /// Worker (shard) count; 0 means one per available core.
    pub workers: usize,
    /// Open connections allowed across all workers.
    pub max_connections: usize,
    /// Largest request head in bytes; larger heads get 431.
    pub max_header_bytes: usize,
    /// Time to send a complete request head once started.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// Time an idle keep-alive connection stays open.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Listen backlog of each worker's socket.
    pub backlog: u32,
    /// Address of the HTTPS listener (every worker binds it with
    /// SO_REUSEPORT); unset: no HTTPS. Certificates arrive through the
    /// change log.
    pub tls_listen: Option<SocketAddr>,
    /// Time a client has to finish a TLS handshake.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// What a handshake naming no domain with a certificate gets:
    /// `default` (the default certificate, when one is set) or `refuse`.
    pub unknown_sni: crate::tls::UnknownSni,
    /// The port redirects from HTTP to HTTPS name (domains with
    /// `https_redirect`): where clients reach the HTTPS listener.
    pub https_port: u16,
    /// A PEM certificate chain (leaf first) served as the default
    /// certificate, read at start, for engines without a control plane; a
    /// default certificate from the control plane replaces it. Needs
    /// `tls_private_key`.
    pub tls_certificate: Option<PathBuf>,
    /// The PEM private key of `tls_certificate`.
    pub tls_private_key: Option<PathBuf>,
    /// Per-client limits (`[server.clients]`), off by default.
    pub clients: ClientsConfig,
}

/// Limits per client address, shared by every worker: open connections and
/// requests per second. A client is the socket's peer address (IPv6: its
/// `ipv6_prefix`), never `X-Forwarded-For`. 0 turns a limit off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientsConfig {
    /// Open connections one client may have; over it, a new connection gets
    /// 429 (plain HTTP) or is closed (HTTPS). 0: no limit.
    pub max_connections: u32,
    /// Requests per second one client may make, on average; over it, 429
    /// with `Retry-After` and the connection is closed. 0: no limit.
    pub requests_per_second: u32,
    /// Requests a client may make at once above the rate (the bucket's size).
    pub burst: u32,
    /// IPv6 clients are grouped by this prefix length (one /64 is usually
    /// one subscriber); IPv4 clients by their whole address.
    pub ipv6_prefix: u8,
}

impl Default for ClientsConfig {
    fn default() -> Self {
        Self {
            max_connections: 0,
            requests_per_second: 0,
            burst: 100,
            ipv6_prefix: 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener (`/healthz`, `/readyz`, `/metrics`).
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory of the engine's fjall store.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectConfig {
    /// Domain whose links answer requests whose Host has no links; empty for none.
    pub default_domain: String,
    /// `Cache-Control: max-age` of 301 and 308 answers (at most one week).
    #[serde(with = "humantime_serde")]
    pub permanent_max_age: Duration,
    /// Secret A/B-test cookies are signed with; every engine of a cluster
    /// needs the same. Empty: the cluster token, else a secret generated at
    /// first start and kept in the data directory.
    pub cookie_secret: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            workers: 0,
            max_connections: 65_536,
            max_header_bytes: 8 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            backlog: 4096,
            tls_listen: None,
            handshake_timeout: Duration::from_secs(10),
            unknown_sni: crate::tls::UnknownSni::Default,
            https_port: 443,
            tls_certificate: None,
            tls_private_key: None,
            clients: ClientsConfig::default(),
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data/engine"),
        }
    }
}

impl Default for RedirectConfig {
    fn default() -> Self {
        Self {
            default_domain: "localhost".to_owned(),
            permanent_max_age: Duration::from_secs(3600),
            cookie_secret: String::new(),
        }
    }
}

impl EngineConfig {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        ricochet_model::startup::load_config(EngineConfig::default(), file, ENV_PREFIX)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.server.max_connections == 0 {
            problems.push("server.max_connections must be at least 1".to_owned());
        }
        if !(512..=1024 * 1024).contains(&self.server.max_header_bytes) {
            problems.push("server.max_header_bytes must be between 512 and 1048576".to_owned());
        }
        if self.server.header_timeout.is_zero()
            || self.server.idle_timeout.is_zero()
            || self.server.handshake_timeout.is_zero()
        {
            problems.push(
                "server.header_timeout, server.idle_timeout and server.handshake_timeout must be above 0"
                    .to_owned(),
            );
        }
        if self
            .server
            .tls_listen
            .is_some_and(|tls| tls == self.server.listen && tls.port() != 0)
        {
            problems.push("server.tls_listen must differ from server.listen".to_owned());
        }
        match (&self.server.tls_certificate, &self.server.tls_private_key) {
            (Some(_), None) | (None, Some(_)) => problems
                .push("server.tls_certificate and server.tls_private_key go together".to_owned()),
            (Some(_), Some(_)) if self.server.tls_listen.is_none() => problems.push(
                "server.tls_certificate needs server.tls_listen (the HTTPS listener)".to_owned(),
            ),
            _ => {}
        }
        if self.server.clients.burst == 0 {
            problems.push("server.clients.burst must be at least 1".to_owned());
        }
        if !(1..=128).contains(&self.server.clients.ipv6_prefix) {
            problems.push("server.clients.ipv6_prefix must be between 1 and 128".to_owned());
        }
        if self.server.workers > 1024 {
            problems.push("server.workers must be at most 1024".to_owned());
        }
        if self.redirect.permanent_max_age > MAX_PERMANENT_MAX_AGE {
            problems.push("redirect.permanent_max_age must be at most 7 days".to_owned());
        }
        if !self.redirect.default_domain.is_empty() {
            match ricochet_model::normalize_domain(&self.redirect.default_domain) {
                Ok(normalized) if normalized == self.redirect.default_domain => {}
                Ok(normalized) => problems.push(format!(
                    "redirect.default_domain must be normalized: write {normalized:?}"
                )),
                Err(err) => problems.push(format!("redirect.default_domain: {err}")),
            }
        }
        if !self.sync.bus.is_empty() && !self.sync.bus.starts_with("redis://") {
            problems.push("sync.bus must be empty or a redis:// URL".to_owned());
        }
        if !self.sync.bus.is_empty() && self.sync.control_url.is_empty() {
            problems.push("sync.bus needs sync.control_url to catch up from".to_owned());
        }
        let url = &self.sync.control_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            problems.push("sync.control_url must be an http:// or https:// URL".to_owned());
        }
        if self.clicks.thread_nice > 19 {
            problems.push("clicks.thread_nice must be 0 to 19".to_owned());
        }
        if self.clicks.channel_capacity == 0 {
            problems.push("clicks.channel_capacity must be above 0".to_owned());
        }
        if self.clicks.node.len() > 64
            || !self
                .clicks
                .node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            problems
                .push("clicks.node must be at most 64 letters, digits, '-', '_' or '.'".to_owned());
        }
        if let Err(problem) = self.clicks.store.validate("clicks.store").and_then(|()| {
            self.clicks
                .store
                .resolve(ClicksConfig::store_role(&self.sync), "clicks.store")
        }) {
            problems.push(problem);
        }
        if self.clicks.window_grace > Duration::from_secs(60) {
            problems.push("clicks.window_grace must be at most 60s".to_owned());
        }
        if (1..1_000).contains(&self.clicks.max_window_rows) {
            problems.push("clicks.max_window_rows must be 0 (no cap) or at least 1000".to_owned());
        }
        if !self.clicks.geoip_database.as_os_str().is_empty()
            && !self.clicks.geoip_database.is_file()
        {
            problems.push(format!(
                "clicks.geoip_database {} is not a readable file",
                self.clicks.geoip_database.display()
            ));
        }
        if self.sync.poll_interval.is_zero() {
            problems.push("sync.poll_interval must be above 0".to_owned());
        }
        if self.admin.listen == self.server.listen && self.admin.listen.port() != 0 {
            problems.push("admin.listen and server.listen must differ".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// The number of workers to run.
    pub fn worker_count(&self) -> usize {
        if self.server.workers > 0 {
            return self.server.workers;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// The default domain, if any.
    pub fn default_domain(&self) -> Option<&str> {
        Some(self.redirect.default_domain.as_str()).filter(|d| !d.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        EngineConfig::default().validate().unwrap();
    }

    #[test]
    fn reference_file_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/engine.toml");
        let loaded = EngineConfig::load(Some(&path)).unwrap();
        assert_eq!(loaded, EngineConfig::default());
    }

    #[test]
    fn bad_values_are_reported() {
        let mut config = EngineConfig::default();
        config.server.max_connections = 0;
        config.redirect.default_domain = "Bad Domain".into();
        let err = config.validate().unwrap_err();
        assert!(err.contains("max_connections"), "{err}");
        assert!(err.contains("default_domain"), "{err}");
    }

    #[test]
    fn bad_client_limits_are_reported() {
        let mut config = EngineConfig::default();
        config.server.clients.burst = 0;
        config.server.clients.ipv6_prefix = 129;
        let err = config.validate().unwrap_err();
        assert!(err.contains("server.clients.burst"), "{err}");
        assert!(err.contains("server.clients.ipv6_prefix"), "{err}");
    }

    #[test]
    // figment's `Jail` fixes the closure's error type.
    #[allow(clippy::result_large_err)]
    fn client_limits_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("RICOCHET_ENGINE_SERVER__CLIENTS__MAX_CONNECTIONS", "8");
            jail.set_env("RICOCHET_ENGINE_SERVER__CLIENTS__REQUESTS_PER_SECOND", "50");
            let config = EngineConfig::load(None).unwrap();
            assert_eq!(config.server.clients.max_connections, 8);
            assert_eq!(config.server.clients.requests_per_second, 50);
            assert_eq!(config.server.clients.burst, 100);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n").unwrap();
        let err = EngineConfig::load(Some(&path)).unwrap_err();
        assert!(err.contains("lisen"), "{err}");
    }
}
