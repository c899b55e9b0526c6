//! Stored API keys: only a SHA-256 hash of each key's secret is kept.

use serde::{Deserialize, Serialize};

use super::{ControlStore, StoreError};

/// One API key as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// Public part of the key, shown in listings.
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the secret part.
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The workspace the key acts in (keys from before workspaces: the default one).
    #[serde(default = "default_workspace")]
    pub workspace_id: String,
    /// The user who created the key over the API: it acts with at most their
    /// role and stops when they leave the workspace. `None` for keys made
    /// with the CLI.
    #[serde(default)]
    pub created_by: Option<String>,
}

fn default_workspace() -> String {
    super::DEFAULT_WORKSPACE.to_owned()
}

impl ControlStore {
    pub fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        self.api_keys.insert(
            key.id.as_bytes(),
            serde_json::to_vec(key).expect("serializes"),
        )?;
        Ok(())
    }

    pub fn api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        match self.api_keys.get(id.as_bytes())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("api key {id}: {e}"))),
            None => Ok(None),
        }
    }

    /// Every key of every workspace, revoked ones included.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.api_keys.iter() {
            let (_, value) = item.into_inner()?;
            out.push(
                serde_json::from_slice(&value)
                    .map_err(|e| StoreError::Corrupt(format!("api key: {e}")))?,
            );
        }
        Ok(out)
    }
}

impl ControlStore {
    /// Deletes a key's record (a purged workspace's keys).
    pub fn delete_api_key(&self, id: &str) -> Result<(), StoreError> {
        self.api_keys.remove(id.as_bytes())?;
        Ok(())
    }
}
