//! Blocked destinations: a link whose destination the installation's
//! operators have listed (through the API or a hosts file) or a threat list
//! names answers an explanatory page instead of redirecting. The control
//! plane holds the lists and writes its verdict into the record; engines
//! render the page when the record arrives.

use serde::{Deserialize, Serialize};

/// Longest reason, in bytes.
pub const MAX_BLOCK_REASON: usize = 200;

/// The status a blocked link answers with: 451, Unavailable For Legal Reasons
/// (RFC 7725), "the server operator has received a demand to deny access".
pub const BLOCKED_STATUS: u16 = 451;

/// Which list blocked a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockSource {
    /// An entry operators added through the API or console.
    Api,
    /// The hosts file named by the control plane's `denylist.file`.
    File,
    /// The URLhaus-format threat list named by `denylist.threat_list`.
    ThreatList,
}

impl BlockSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::File => "file",
            Self::ThreatList => "threat_list",
        }
    }
}

/// Why a link does not redirect: the listed host its destination is on.
// No `skip_serializing_if`: the stored form (postcard) is not self-describing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Block {
    /// The destination host that matched (a listed host or one under it).
    pub host: String,
    pub source: BlockSource,
    /// The list's reason, shown on the page (at most [`MAX_BLOCK_REASON`] bytes).
    pub reason: Option<String>,
}

impl Block {
    /// Whether the fields are within their limits (engines check on intake).
    pub fn is_valid(&self) -> bool {
        let plain = |text: &str| !text.chars().any(char::is_control);
        !self.host.is_empty()
            && self.host.len() <= 253
            && plain(&self.host)
            && self
                .reason
                .as_deref()
                .is_none_or(|reason| reason.len() <= MAX_BLOCK_REASON && plain(reason))
    }
}
