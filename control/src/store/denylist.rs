//! Hosts operators blocked through the API (the `denylist` keyspace: host →
//! JSON). The hosts file and the threat list are read from disk, not stored.

use serde::{Deserialize, Serialize};

use super::{ControlStore, StoreError};

/// One host blocked through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedHost {
    /// Normalized host name (lowercase, IDN in punycode) or IP address.
    pub host: String,
    pub reason: Option<String>,
    pub created_at: i64,
    /// The user or API key that added it.
    pub created_by: Option<String>,
}

impl ControlStore {
    /// Every host blocked through the API, by host.
    pub fn denied_hosts(&self) -> Result<Vec<DeniedHost>, StoreError> {
        let mut out = Vec::new();
        for item in self.denylist.iter() {
            let (_, value) = item.into_inner()?;
            out.push(
                serde_json::from_slice(&value)
                    .map_err(|e| StoreError::Corrupt(format!("denied host: {e}")))?,
            );
        }
        Ok(out)
    }

    pub fn put_denied_host(&self, entry: &DeniedHost) -> Result<(), StoreError> {
        self.denylist.insert(
            entry.host.as_bytes(),
            serde_json::to_vec(entry).expect("serializes"),
        )?;
        Ok(())
    }

    /// Removes `host`; false when it was not listed.
    pub fn delete_denied_host(&self, host: &str) -> Result<bool, StoreError> {
        let listed = self.denylist.contains_key(host.as_bytes())?;
        self.denylist.remove(host.as_bytes())?;
        Ok(listed)
    }
}
