//! Several generators for one phase: `ricochet-loadtest worker` serves
//! phases to a coordinator (`run --workers`, a suite's `workers`), which
//! starts them at one instant with equal shares of the load and merges
//! their histograms exactly. `protocol` (JSON lines over TCP), `serve` (the
//! worker), `coordinate` (the coordinator), `spawn` (local worker processes
//! pinned to their own cores).

mod coordinate;
pub mod protocol;
mod serve;
mod spawn;

pub use coordinate::coordinate;
pub use serve::{serve, unix_now_ns};
pub use spawn::{LISTENING, LocalWorkers};
