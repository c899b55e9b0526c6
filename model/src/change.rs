//! Versioned change events: the one way an edit reaches an engine. The control
//! plane numbers every change; engines apply them in order, skip versions they
//! already have, and fetch a gap before going on.

use serde::{Deserialize, Serialize};

use crate::domain::DomainSettings;
use crate::link::{LinkKey, LinkRecord};
use crate::tls::TlsChange;

/// One change to the link table, with the version that orders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Strictly increasing across the whole change log, starting at 1.
    pub version: u64,
    /// Serialized inline: `{"version":3,"op":"upsert","link":{…}}`.
    #[serde(flatten)]
    pub op: ChangeOp,
}

/// What a change does.
// Upserts are nearly every change and carry the whole record; boxing it
// would add an allocation per change to spare the rare purge some bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChangeOp {
    /// Create or replace the record at its (domain, code). Soft deletes are
    /// upserts with state `deleted`, so the engine keeps answering 410.
    Upsert { link: LinkRecord },
    /// Remove the record entirely; the engine then answers 404.
    Purge { key: LinkKey },
    /// Replace a domain's settings: where its root and unknown codes go.
    Domain { settings: DomainSettings },
    /// A certificate or an ACME challenge answer for the TLS listeners.
    Tls { change: TlsChange },
}

impl Change {
    /// The link the change touches; `None` for a domain's settings and TLS.
    pub fn key(&self) -> Option<LinkKey> {
        match &self.op {
            ChangeOp::Upsert { link } => Some(link.key()),
            ChangeOp::Purge { key } => Some(key.clone()),
            ChangeOp::Domain { .. } | ChangeOp::Tls { .. } => None,
        }
    }
}
