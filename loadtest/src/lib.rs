//! Ricochet's load tester: an HTTP/1.1 load generator for redirect servers,
//! plain or over TLS (open and closed loop, pipelining, Zipf traffic,
//! answers checked against their keys, handshakes counted), suites in TOML,
//! side-by-side comparisons, tables and plots.
//!
//! Modules: `keys` (link sets), `behaviour` (rules and variants every link
//! carries), `traffic` (popularity, bots, unknown codes, request bytes),
//! `visitors` (user agents, languages, client addresses), `networks` (client
//! networks), `geoip` (a GeoIP database for them), `response` (reading
//! answers), `check` (judging them), `schedule` (open/closed loop), `client`
//! (the connection driver), `transport` (plain TCP or TLS under it), `stats`
//! (counts), `run` (one measured run), `report` (tables, JSON), `plot`
//! (SVG), `suite` (TOML suites), `target` (servers under test), `seed`,
//! `edits`, `flood` (wrong passwords for a protected link beside the load),
//! `restart`, `compare`, `diff` (two reports against the noise of their
//! rounds), `thresholds` (what a run must meet, checked on its medians),
//! `hlog` (HdrHistogram interval logs), `report_html` (the HTML report),
//! `nginx` (the comparison config), `certificate` (the self-signed
//! certificate HTTPS targets share), `http` (a small blocking client),
//! `fixed_server` and `calibrate` (the generator's own ceiling), `procstat`
//! (CPU and memory from /proc), `mix` (weighted request shapes from a file),
//! `worker` (several generators for one phase, histograms merged), `soak`
//! (hours at one rate, per-interval rows, a drift verdict).

pub mod behaviour;
pub mod calibrate;
pub mod certificate;
pub mod check;
pub mod client;
pub mod compare;
pub mod diff;
pub mod edits;
pub mod error;
pub mod fixed_server;
pub mod flood;
pub mod geoip;
pub mod hlog;
pub mod http;
pub mod keys;
pub mod mix;
pub mod networks;
pub mod nginx;
pub mod plot;
pub mod procstat;
pub mod report;
pub mod report_html;
pub mod response;
pub mod restart;
pub mod run;
pub mod schedule;
pub mod seed;
pub mod soak;
pub mod stalls;
pub mod stats;
pub mod suite;
pub mod target;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod thresholds;
pub mod traffic;
pub mod transport;
pub mod visitors;
pub mod worker;

pub use error::{Error, Result};
pub use keys::{GeneratedKeys, KeySet};
pub use run::{LoadSpec, RunResult, RunSpec, run};
pub use schedule::Mode;
pub use traffic::{Method, Popularity, TrafficShape};
pub use visitors::Visitors;
