//! Where an engine takes its changes from: the bus and change source its
//! `sync` settings name (or the ones the caller hands in).

use std::sync::Arc;

use ricochet_model::bus::{ChangeSource, LocalBus, RedisBus, UpdateBus};

use super::StartError;
use crate::config::EngineConfig;
use crate::subscriber::HttpChangeSource;

/// Where an engine takes its changes from.
#[derive(Clone)]
pub struct SyncSource {
    pub bus: Arc<dyn UpdateBus>,
    pub changes: Arc<dyn ChangeSource>,
}

/// The bus and change source `sync` configures, if any.
pub(super) fn sync_from_config(config: &EngineConfig) -> Result<Option<SyncSource>, StartError> {
    let sync = &config.sync;
    if sync.control_url.is_empty() {
        return Ok(None);
    }
    let changes: Arc<dyn ChangeSource> = Arc::new(HttpChangeSource::new(
        &sync.control_url,
        &sync.cluster_token,
    ));
    let bus: Arc<dyn UpdateBus> = if sync.bus.is_empty() {
        Arc::new(LocalBus::new())
    } else {
        Arc::new(
            RedisBus::new(&sync.bus, &sync.channel)
                .map_err(|e| StartError::Config(format!("sync.bus: {e}")))?,
        )
    };
    Ok(Some(SyncSource { bus, changes }))
}
