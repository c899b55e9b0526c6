//! `ricochet-loadtest` (being built).
fn main() {}
