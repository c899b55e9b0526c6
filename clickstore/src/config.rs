//! One configuration of the click store, shared by engines (`[clicks.store]`
//! in `engine.toml`) and the control plane (`[clicks]` in `control.toml`):
//! which backend keeps the windows, and that backend's settings.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fjall::Retention;
use crate::scylla::Replication;

/// Where closed windows are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// ScyllaDB when `scylla_nodes` is set; otherwise an engine that follows a
    /// control plane ships its windows there, and anything else keeps them in
    /// its embedded store.
    #[default]
    Auto,
    /// The embedded fjall store in the data directory.
    Embedded,
    /// Engines only: ship windows to the control plane they follow, which
    /// keeps them in its own click store.
    Control,
    /// ScyllaDB (or Cassandra) at `scylla_nodes`.
    Scylla,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Embedded => "embedded",
            Self::Control => "control",
            Self::Scylla => "scylla",
        }
    }
}

/// Who opens the store, which decides what `auto` means and what is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An engine; `follows_control` when it has a control plane URL.
    Engine { follows_control: bool },
    /// The control plane, which keeps what engines ship.
    ControlPlane,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickStoreConfig {
    pub backend: Backend,
    /// Closed windows an engine keeps on disk while its store is unreachable.
    pub spill_capacity: u64,
    /// How long the embedded store keeps each granularity; "0s" keeps forever.
    #[serde(with = "humantime_serde")]
    pub retention_10s: Duration,
    #[serde(with = "humantime_serde")]
    pub retention_1m: Duration,
    #[serde(with = "humantime_serde")]
    pub retention_1h: Duration,
    #[serde(with = "humantime_serde")]
    pub retention_1d: Duration,
    /// ScyllaDB contact points (`host:port`).
    pub scylla_nodes: Vec<String>,
    pub scylla_keyspace: String,
    /// Replication factor of the keyspace when Ricochet creates it.
    pub scylla_replication_factor: u32,
    /// Niceness of the embedded store's rollup thread; set by the engine
    /// from `clicks.thread_nice`, not read from files.
    #[serde(skip)]
    pub thread_nice: u8,
}

impl Default for ClickStoreConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Auto,
            spill_capacity: 100_000,
            retention_10s: Duration::from_secs(7 * 86_400),
            retention_1m: Duration::from_secs(31 * 86_400),
            retention_1h: Duration::from_secs(400 * 86_400),
            retention_1d: Duration::ZERO,
            scylla_nodes: Vec::new(),
            scylla_keyspace: "ricochet".to_owned(),
            scylla_replication_factor: 1,
            thread_nice: 0,
        }
    }
}

impl ClickStoreConfig {
    /// The backend `role` uses: `auto` resolved, or why the choice cannot work.
    /// `prefix` names the section in messages (e.g. `clicks.store`).
    pub fn resolve(&self, role: Role, prefix: &str) -> Result<Backend, String> {
        let backend = match self.backend {
            Backend::Auto if !self.scylla_nodes.is_empty() => Backend::Scylla,
            Backend::Auto => match role {
                Role::Engine {
                    follows_control: true,
                } => Backend::Control,
                _ => Backend::Embedded,
            },
            chosen => chosen,
        };
        match (backend, role) {
            (Backend::Scylla, _) if self.scylla_nodes.is_empty() => Err(format!(
                "{prefix}.backend = \"scylla\" needs {prefix}.scylla_nodes"
            )),
            (Backend::Control, Role::ControlPlane) => Err(format!(
                "{prefix}.backend = \"control\" is for engines; the control plane keeps clicks \
                 in \"embedded\" or \"scylla\""
            )),
            (
                Backend::Control,
                Role::Engine {
                    follows_control: false,
                },
            ) => Err(format!(
                "{prefix}.backend = \"control\" needs a control plane to follow (sync.control_url)"
            )),
            (backend, _) => Ok(backend),
        }
    }

    /// Checks what does not depend on the role.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.spill_capacity == 0 {
            return Err(format!("{prefix}.spill_capacity must be at least 1"));
        }
        if self.scylla_replication_factor == 0 {
            return Err(format!(
                "{prefix}.scylla_replication_factor must be at least 1"
            ));
        }
        if self.scylla_nodes.iter().any(|node| node.trim().is_empty()) {
            return Err(format!("{prefix}.scylla_nodes has an empty entry"));
        }
        Ok(())
    }

    /// Retention per granularity of the embedded store.
    pub fn retention(&self) -> Retention {
        let keep = |d: Duration| (!d.is_zero()).then_some(d);
        Retention {
            window: keep(self.retention_10s),
            minute: keep(self.retention_1m),
            hour: keep(self.retention_1h),
            day: keep(self.retention_1d),
        }
    }

    pub fn replication(&self) -> Replication {
        Replication::Simple {
            factor: self.scylla_replication_factor.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(backend: Backend, nodes: &[&str]) -> ClickStoreConfig {
        ClickStoreConfig {
            backend,
            scylla_nodes: nodes.iter().map(|n| n.to_string()).collect(),
            ..ClickStoreConfig::default()
        }
    }

    #[test]
    fn auto_picks_scylla_then_the_control_plane_then_embedded() {
        let engine = Role::Engine {
            follows_control: true,
        };
        let alone = Role::Engine {
            follows_control: false,
        };
        let auto = with(Backend::Auto, &[]);
        assert_eq!(auto.resolve(engine, "s"), Ok(Backend::Control));
        assert_eq!(auto.resolve(alone, "s"), Ok(Backend::Embedded));
        assert_eq!(auto.resolve(Role::ControlPlane, "s"), Ok(Backend::Embedded));
        let scylla = with(Backend::Auto, &["10.0.0.1:9042"]);
        assert_eq!(scylla.resolve(engine, "s"), Ok(Backend::Scylla));
        assert_eq!(scylla.resolve(Role::ControlPlane, "s"), Ok(Backend::Scylla));
    }

    #[test]
    fn impossible_choices_are_refused_with_the_key_to_fix() {
        let error = with(Backend::Scylla, &[])
            .resolve(Role::ControlPlane, "clicks")
            .unwrap_err();
        assert!(error.contains("clicks.scylla_nodes"), "{error}");
        let error = with(Backend::Control, &[])
            .resolve(Role::ControlPlane, "clicks")
            .unwrap_err();
        assert!(error.contains("for engines"), "{error}");
        let error = with(Backend::Control, &[])
            .resolve(
                Role::Engine {
                    follows_control: false,
                },
                "clicks.store",
            )
            .unwrap_err();
        assert!(error.contains("sync.control_url"), "{error}");
        assert!(with(Backend::Embedded, &[]).validate("x").is_ok());
        let zero = ClickStoreConfig {
            spill_capacity: 0,
            ..ClickStoreConfig::default()
        };
        assert!(zero.validate("x").unwrap_err().contains("x.spill_capacity"));
    }
}
