//! Building the click pipeline from the configuration: the node id, the click
//! store (or the one the caller hands in), the spill queue in front of it, the
//! GeoIP database and one actor per shard.

use std::sync::Arc;

use ricochet_clickstore::store::{ClickStore, ControlTarget};
use ricochet_clickstore::{SinkError, SpillingSink};

use super::enrich::{EnrichSettings, GeoDatabase};
use super::node::node_id;
use super::{ClickPipeline, PipelineSettings};
use crate::config::{ClicksConfig, EngineConfig};
use crate::server::StartError;

/// The spill queue's directory inside the data directory.
pub const SPILL_DIR: &str = "clicks-spill";

/// A running pipeline and the store its windows go to.
#[derive(Debug)]
pub struct ClickParts {
    pub pipeline: ClickPipeline,
    pub store: ClickStore,
}

/// The GeoIP database `clicks.geoip_database` names, if any (clicks and
/// targeting rules share it).
pub fn open_geo(config: &EngineConfig) -> Result<Option<Arc<GeoDatabase>>, StartError> {
    let path = &config.clicks.geoip_database;
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    GeoDatabase::open(path)
        .map(|db| Some(Arc::new(db)))
        .map_err(|e| StartError::Config(format!("clicks.geoip_database: {e}")))
}

/// Starts capture when `clicks.enabled`: windows go to `store` when given
/// (the all-in-one binary passes its control plane's store), else to the store
/// `clicks.store` configures.
pub fn start_clicks(
    config: &EngineConfig,
    workers: usize,
    store: Option<ClickStore>,
    geo: Option<Arc<GeoDatabase>>,
) -> Result<Option<ClickParts>, StartError> {
    let clicks = &config.clicks;
    if !clicks.enabled {
        return Ok(None);
    }
    let data = &config.storage.data_dir;
    let store = match store {
        Some(store) => store,
        None => open_store(config)?,
    };
    let sink_error = |e: SinkError| StartError::Config(format!("click store: {e}"));
    let spilling = Arc::new(
        SpillingSink::open(
            store.sink().clone(),
            &data.join(SPILL_DIR),
            clicks.store.spill_capacity,
        )
        .map_err(sink_error)?,
    );
    let node = node_id(&clicks.node, data).map_err(|e| {
        StartError::Config(format!(
            "cannot keep the node id in {}: {e}",
            data.display()
        ))
    })?;
    tracing::info!(%node, backend = store.backend().name(), "click capture on");
    let settings = PipelineSettings {
        node,
        channel_capacity: clicks.channel_capacity,
        grace: clicks.window_grace,
        enrich: EnrichSettings {
            geo: clicks.collect_geo,
            user_agent: clicks.collect_user_agent,
            referrer: clicks.collect_referrer,
        },
        thread_nice: clicks.thread_nice,
        max_window_rows: clicks.max_window_rows,
    };
    let pipeline =
        ClickPipeline::start(&settings, workers, geo, spilling).map_err(StartError::Thread)?;
    Ok(Some(ClickParts { pipeline, store }))
}

/// The store `clicks.store` names for this engine.
fn open_store(config: &EngineConfig) -> Result<ClickStore, StartError> {
    let control = (!config.sync.control_url.is_empty()).then(|| ControlTarget {
        url: config.sync.control_url.clone(),
        token: config.sync.cluster_token.clone(),
    });
    let mut store = config.clicks.store.clone();
    store.thread_nice = config.clicks.thread_nice;
    ClickStore::open(
        &store,
        ClicksConfig::store_role(&config.sync),
        "clicks.store",
        &config.storage.data_dir,
        control.as_ref(),
    )
    .map_err(|e| StartError::Config(e.to_string()))
}
