//! [`ClickStore::open`]: the one place a configured backend is built, for
//! engines and the control plane alike.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Backend, ClickStoreConfig, Role};
use crate::contract::{ClickReader, ClickSink, SinkError};
use crate::control::ControlSink;
use crate::fjall::{FjallSink, spawn_maintenance};
use crate::scylla::LazyScylla;

/// The directory of the embedded store inside a data directory.
pub const EMBEDDED_DIR: &str = "clicks";

/// The control plane an engine ships its windows to.
#[derive(Debug, Clone)]
pub struct ControlTarget {
    /// The control plane's root URL, e.g. `http://control:8081`.
    pub url: String,
    /// The cluster token engines authenticate with.
    pub token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Config(String),
    #[error("cannot open the embedded click store: {0}")]
    Embedded(SinkError),
    #[error("cannot start the click store's maintenance thread: {0}")]
    Thread(std::io::Error),
}

/// An open click store: where windows are written and, unless they are
/// shipped to the control plane, read back.
#[derive(Clone)]
pub struct ClickStore {
    backend: Backend,
    sink: Arc<dyn ClickSink>,
    reader: Option<Arc<dyn ClickReader>>,
    embedded: Option<Arc<FjallSink>>,
}

impl std::fmt::Debug for ClickStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl ClickStore {
    /// Opens the backend `config` names for `role`: the embedded store in
    /// `data_dir/clicks` (with its rollup thread), ScyllaDB (connected on first
    /// use, so an unreachable cluster never stops a start), or the control
    /// plane at `control`. `prefix` names the configuration section in errors.
    pub fn open(
        config: &ClickStoreConfig,
        role: Role,
        prefix: &str,
        data_dir: &Path,
        control: Option<&ControlTarget>,
    ) -> Result<Self, OpenError> {
        config.validate(prefix).map_err(OpenError::Config)?;
        let backend = config.resolve(role, prefix).map_err(OpenError::Config)?;
        match backend {
            Backend::Embedded | Backend::Auto => {
                let store = Arc::new(
                    FjallSink::open(&data_dir.join(EMBEDDED_DIR)).map_err(OpenError::Embedded)?,
                );
                spawn_maintenance(&store, config.retention(), config.thread_nice)
                    .map_err(OpenError::Thread)?;
                Ok(Self::embedded(store))
            }
            Backend::Scylla => {
                let store = Arc::new(
                    LazyScylla::new(
                        &config.scylla_nodes,
                        &config.scylla_keyspace,
                        config.replication(),
                    )
                    .map_err(|e| OpenError::Config(format!("{prefix}.scylla_keyspace: {e}")))?,
                );
                Ok(Self {
                    backend,
                    sink: store.clone(),
                    reader: Some(store),
                    embedded: None,
                })
            }
            Backend::Control => {
                let target = control.ok_or_else(|| {
                    OpenError::Config(format!(
                        "{prefix}.backend = \"control\" needs a control plane URL"
                    ))
                })?;
                Ok(Self {
                    backend,
                    sink: Arc::new(ControlSink::new(&target.url, &target.token)),
                    reader: None,
                    embedded: None,
                })
            }
        }
    }

    /// A store around an embedded sink someone else opened and maintains (the
    /// all-in-one binary hands the control plane's store to its engine).
    pub fn embedded(store: Arc<FjallSink>) -> Self {
        Self {
            backend: Backend::Embedded,
            sink: store.clone(),
            reader: Some(store.clone()),
            embedded: Some(store),
        }
    }

    /// The backend in use (never `Auto`).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn sink(&self) -> &Arc<dyn ClickSink> {
        &self.sink
    }

    /// The same store with its sink replaced by `wrap` of it: a sink that
    /// writes through the store's own and also does something with every
    /// window (the control plane makes click events of them).
    pub fn wrap_sink(
        mut self,
        wrap: impl FnOnce(Arc<dyn ClickSink>) -> Arc<dyn ClickSink>,
    ) -> Self {
        self.sink = wrap(self.sink);
        self
    }

    /// Where analytics are read; `None` when windows go to the control plane.
    pub fn reader(&self) -> Option<&Arc<dyn ClickReader>> {
        self.reader.as_ref()
    }

    /// The embedded store, for its metrics and for syncing at shutdown.
    pub fn embedded_store(&self) -> Option<&Arc<FjallSink>> {
        self.embedded.as_ref()
    }

    /// Syncs what the embedded store wrote (a no-op for the other backends).
    pub fn persist(&self) -> Result<(), SinkError> {
        match &self.embedded {
            Some(store) => store.persist(),
            None => Ok(()),
        }
    }
}
