//! What Ricochet's control plane and engines share: the link record keyed by
//! (domain, code), the versioned change events that carry edits to engines, and
//! the validation every producer of links runs before a record exists.
//!
//! Modules: [`link`] (records and enums), [`behaviour`] (rules, variants,
//! cards and their validation), [`block`] (why a blocked link does not
//! redirect), [`domain`] (per-domain settings), [`tls`]
//! (certificates and ACME challenge answers for engines), [`validate`] (codes, domains,
//! destinations), [`page`] (link-in-bio pages as engines serve them), [`change`] (versioned change events), [`codec`] (the stored
//! binary form with a format byte so later fields need no rewrite), [`transfer`]
//! (the CSV and JSON Lines rows of import and export), [`startup`] (with the
//! `startup` feature: layered configuration and log set-up of the binaries).

pub mod behaviour;
pub mod block;
pub mod bus;
pub mod change;
pub mod clicks;
pub mod codec;
pub mod domain;
pub mod link;
pub mod page;
#[cfg(feature = "startup")]
pub mod startup;
pub mod tls;
pub mod transfer;
pub mod validate;

pub use bus::{BusEvent, BusMessage, ChangeSource, ChangesPage, LocalBus, Subscription, UpdateBus};
pub use change::{Change, ChangeOp};
pub use domain::DomainSettings;
pub use link::{LinkExtensions, LinkId, LinkKey, LinkRecord, LinkState, RedirectStatus};
pub use validate::{ValidationError, normalize_domain, validate_code, validate_destination};

/// Milliseconds since the Unix epoch, the one time unit in records and events.
pub type UnixMillis = i64;

/// The current time as [`UnixMillis`].
pub fn now_millis() -> UnixMillis {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
