//! Click capture on the engine side: the request path hands events to its
//! shard's actor, actors enrich them and count 10-second windows, and closed
//! windows go to the click store (`ricochet-clickstore`).
//!
//! - [`actor`]: per-shard actors fed over bounded channels, and the writer.
//! - [`event`]: the compact event the request path captures.
//! - [`enrich`]: user agent, GeoIP, referrer and UTM enrichment.
//! - [`window`]: 10-second windows per link and dimension.
//! - [`node`]: this engine's stable node id, kept in its data directory.
//! - [`pipeline`]: building the pipeline and its store from the configuration.

pub mod actor;
pub mod enrich;
pub mod event;
pub mod node;
pub mod pipeline;
pub mod window;

pub use actor::{ClickPipeline, ClickSender, ClickStats, PipelineSettings};
pub use pipeline::{ClickParts, open_geo, start_clicks};
pub use ricochet_clickstore::{
    ClickReader, ClickSink, ClickStore, Counts, FjallSink, Interval, SinkError, SpillingSink,
};
