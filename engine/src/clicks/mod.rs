//! Click analytics on the engine side: closed 10-second windows go to a click
//! sink and are read back for the analytics API.
//!
//! - [`actor`]: per-shard actors fed over bounded channels.
//! - [`event`]: the compact event the request path captures.
//! - [`enrich`]: user agent, GeoIP, referrer and UTM enrichment.
//! - [`window`]: 10-second windows per link and dimension.
//! - [`spill`]: the on-disk queue in front of a failing sink.
//! - [`sink`]: the `ClickSink` and `ClickReader` contracts.
//! - [`fjall_sink`]: the embedded default sink.
//! - [`scylla_sink`]: the ScyllaDB sink for multi-node installs.
//! - `conformance` (feature `test-util`): the suite every sink passes.

pub mod actor;
#[cfg(any(test, feature = "test-util"))]
pub mod conformance;
pub mod enrich;
pub mod event;
pub mod fjall_sink;
pub mod scylla_sink;
pub mod sink;
pub mod spill;
pub mod window;

pub use actor::{ClickPipeline, ClickSender, ClickStats, PipelineSettings};
pub use fjall_sink::FjallSink;
pub use scylla_sink::{Replication, ScyllaSink, WriteRetry};
pub use sink::{ClickReader, ClickSink, Counts, Interval, SinkError};
