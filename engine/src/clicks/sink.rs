//! The click sink contracts, defined in `ricochet_model::clicks` so the
//! control plane can read analytics without depending on engine internals.

pub use ricochet_model::clicks::{
    ClickReader, ClickSink, Counts, Interval, SinkError, add_implied, bucket_series, rank,
};
