//! Ricochet's click store: where closed 10-second click windows are written
//! and analytics are read from. Depends only on `ricochet-model`.
//!
//! - [`contract`]: the `ClickSink` and `ClickReader` contracts every backend implements.
//! - [`config`]: one configuration of the store (embedded, control plane or ScyllaDB).
//! - [`store`]: [`ClickStore::open`], the one constructor of a configured backend.
//! - [`fjall`]: the embedded store (single node, and the control plane's own store).
//! - [`scylla`]: ScyllaDB, for clusters that outgrow the control plane's store.
//! - [`control`]: ships windows to the control plane, which keeps them.
//! - [`spill`]: the on-disk queue (and dead-letter file) in front of a failing sink.
//! - [`priority`]: lowering click threads' CPU priority below the request workers'.
//! - `conformance` (feature `test-util`): the suite every backend passes.

pub mod config;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod contract;
pub mod control;
pub mod fjall;
pub mod priority;
pub mod scylla;
pub mod spill;
pub mod store;

pub use self::scylla::{LazyScylla, Replication, ScyllaSink, WriteRetry};
pub use config::{Backend, ClickStoreConfig};
pub use contract::{
    ClickReader, ClickSink, Counts, Interval, SinkError, add_implied, bucket_series, rank,
};
pub use control::ControlSink;
pub use fjall::FjallSink;
pub use spill::SpillingSink;
pub use store::ClickStore;
