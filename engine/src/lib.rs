//! Ricochet's data plane: a shard-per-core redirect engine.
//!
//! - [`table`]: the lock-free link table every shard reads.
//! - [`store`]: the fjall store the table is persisted in.
//! - [`intake`]: the one function that applies versioned changes.
//! - [`http`]: connection handling over `httparse` (keep-alive, pipelining, limits).
//! - [`redirect`]: the redirect handler (`GET`/`HEAD /{code}`).
//! - [`behaviour`]: rules, splits, cards and fallbacks, compiled per link.
//! - [`limits`]: click limits (`max_clicks`), counted in fjall or Redis.
//! - [`admin`]: `/healthz`, `/readyz`, `/metrics` on a separate port.
//! - [`server`]: starting workers (one per core, SO_REUSEPORT) and stopping them.
//! - [`subscriber`]: applies bus changes in order, catching up from the change log.
//! - [`import`]: bulk import from CSV or JSON Lines.
//! - [`config`]: the engine's configuration.

pub mod admin;
pub mod behaviour;
pub mod clicks;
pub mod config;
pub mod http;
pub mod import;
pub mod intake;
pub mod limits;
pub mod redirect;
pub mod server;
pub mod stats;
pub mod store;
pub mod subscriber;
pub mod table;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod tls;

pub use config::EngineConfig;
pub use intake::{Applied, ChangeIntake, IntakeError};
pub use server::{Engine, StartError, StartOptions, SyncSource};
pub use table::LinkTable;
