//! The control plane's configuration: defaults in code, an optional TOML file,
//! `RICOCHET_CONTROL_<SECTION>__<KEY>` environment variables, then flags;
//! `validate()` after all of them. `config/control.toml` is the reference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides, e.g. `RICOCHET_CONTROL_SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "RICOCHET_CONTROL_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub links: LinksConfig,
    pub bus: BusConfig,
    pub rate_limit: RateLimitConfig,
    pub analytics: AnalyticsConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// ScyllaDB nodes (`host:port`) the engines write clicks to; the analytics
    /// API reads them. Empty: analytics are served only by the all-in-one
    /// binary, from its embedded store.
    pub scylla_nodes: Vec<String>,
    pub scylla_keyspace: String,
    pub scylla_replication_factor: u32,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        Self {
            scylla_nodes: Vec::new(),
            scylla_keyspace: "ricochet".to_owned(),
            scylla_replication_factor: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the REST API.
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory of the control plane's fjall store.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Domain that always exists and is used when a request names none.
    pub default_domain: String,
    /// Length of random codes (62-character alphabet).
    pub code_length: usize,
    /// Most items in one `POST /links/bulk` call.
    pub max_bulk: usize,
    /// Codes nobody may take, on top of the built-in list.
    pub reserved_codes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `redis://host:port/` to publish on Redis; empty for the in-process bus.
    pub url: String,
    /// Redis channel of change messages.
    pub channel: String,
    /// Token engines present to `/internal/v1/changes`. Empty: one is
    /// generated at first start and kept in the store.
    pub cluster_token: String,
    /// Interval of heartbeats carrying the latest version.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second allowed per API key.
    pub requests_per_second: u32,
    /// Requests a key may make in a burst.
    pub burst: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            workers: 0,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data/control"),
        }
    }
}

impl Default for LinksConfig {
    fn default() -> Self {
        Self {
            default_domain: "localhost".to_owned(),
            code_length: 7,
            max_bulk: 1000,
            reserved_codes: Vec::new(),
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            channel: ricochet_model::bus::DEFAULT_CHANNEL.to_owned(),
            cluster_token: String::new(),
            heartbeat_interval: Duration::from_secs(1),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            burst: 200,
        }
    }
}

impl ControlConfig {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        ricochet_model::startup::load_config(ControlConfig::default(), file, ENV_PREFIX)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if !(4..=64).contains(&self.links.code_length) {
            problems.push("links.code_length must be between 4 and 64".to_owned());
        }
        if !(1..=100_000).contains(&self.links.max_bulk) {
            problems.push("links.max_bulk must be between 1 and 100000".to_owned());
        }
        match ricochet_model::normalize_domain(&self.links.default_domain) {
            Ok(normalized) if normalized == self.links.default_domain => {}
            Ok(normalized) => problems.push(format!(
                "links.default_domain must be normalized: write {normalized:?}"
            )),
            Err(err) => problems.push(format!("links.default_domain: {err}")),
        }
        if !self.bus.url.is_empty() && !self.bus.url.starts_with("redis://") {
            problems.push("bus.url must be empty or a redis:// URL".to_owned());
        }
        if self.bus.heartbeat_interval.is_zero() {
            problems.push("bus.heartbeat_interval must be above 0".to_owned());
        }
        if self.rate_limit.requests_per_second == 0 || self.rate_limit.burst == 0 {
            problems.push("rate_limit.requests_per_second and burst must be above 0".to_owned());
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("server.max_body_bytes must be at least 1024".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_file_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/control.toml");
        let loaded = ControlConfig::load(Some(&path)).unwrap();
        assert_eq!(loaded, ControlConfig::default());
        loaded.validate().unwrap();
    }

    #[test]
    fn bad_values_are_reported() {
        let mut config = ControlConfig::default();
        config.links.code_length = 2;
        config.bus.url = "http://nope".into();
        let err = config.validate().unwrap_err();
        assert!(
            err.contains("code_length") && err.contains("bus.url"),
            "{err}"
        );
    }
}
