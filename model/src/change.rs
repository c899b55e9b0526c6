//! Versioned change events: the one way an edit reaches an engine. The control
//! plane numbers every change; engines apply them in order, skip versions they
//! already have, and fetch a gap before going on.

use serde::{Deserialize, Serialize};

use crate::link::{LinkKey, LinkRecord};

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
}

impl Change {
    /// The key the change touches.
    pub fn key(&self) -> LinkKey {
        match &self.op {
            ChangeOp::Upsert { link } => link.key(),
            ChangeOp::Purge { key } => key.clone(),
        }
    }
}
