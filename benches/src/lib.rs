//! Shared helpers for the benchmarks and measurement tools in `benches/` and
//! `src/bin/`.
//!
//! - [`data`]: deterministic links (unique 7-character codes, 60-byte URLs).
//! - [`dash`]: the dashmap contender to the engine's papaya `LinkTable`.
//! - [`memory`]: resident-set readings and table heap estimates.
//!
//! With the `mimalloc` feature every binary of this package (tools and
//! benchmarks) runs on mimalloc instead of the system allocator.

pub mod dash;
pub mod data;
pub mod memory;
pub mod traffic;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
