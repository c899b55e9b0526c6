//! Shared helpers for the benchmarks and measurement tools.
