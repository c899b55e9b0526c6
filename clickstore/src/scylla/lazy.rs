//! `LazyScylla`: a ScyllaDB store that connects on first use and reconnects
//! with backoff, so an engine or control plane starts and serves while the
//! cluster is unreachable (writes spill, reads answer "unavailable").

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ricochet_model::clicks::{Dimension, WindowBatch};
use ricochet_model::{LinkId, UnixMillis};

use super::ScyllaSink;
use super::schema::{Replication, check_keyspace};
use crate::contract::{ClickReader, ClickSink, Counts, Interval, SinkError};

const MIN_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

enum State {
    Connected(Arc<ScyllaSink>),
    Waiting {
        next_try: Instant,
        backoff: Duration,
    },
}

/// A [`ScyllaSink`] opened when first needed.
pub struct LazyScylla {
    nodes: Vec<String>,
    keyspace: String,
    replication: Replication,
    state: Mutex<State>,
}

impl std::fmt::Debug for LazyScylla {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyScylla")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

impl LazyScylla {
    /// Checks the keyspace name; connects nothing yet.
    pub fn new(
        nodes: &[String],
        keyspace: &str,
        replication: Replication,
    ) -> Result<Self, SinkError> {
        check_keyspace(keyspace)?;
        Ok(Self {
            nodes: nodes.to_vec(),
            keyspace: keyspace.to_owned(),
            replication,
            state: Mutex::new(State::Waiting {
                next_try: Instant::now(),
                backoff: MIN_BACKOFF,
            }),
        })
    }

    /// The connected sink, connecting now unless a recent attempt failed.
    fn sink(&self) -> Result<Arc<ScyllaSink>, SinkError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let backoff = match &*state {
            State::Connected(sink) => return Ok(sink.clone()),
            State::Waiting { next_try, backoff } => {
                if Instant::now() < *next_try {
                    return Err(SinkError::Unavailable(format!(
                        "ScyllaDB at {} is not connected yet",
                        self.nodes.join(",")
                    )));
                }
                *backoff
            }
        };
        // On a plain thread: the sink builds (and, on failure, drops) its own
        // runtime, which must not happen inside a caller's async context.
        let connected = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    ScyllaSink::connect(&self.nodes, &self.keyspace, self.replication.clone())
                })
                .join()
                .unwrap_or_else(|_| Err(SinkError::Failed("connecting panicked".to_owned())))
        });
        match connected {
            Ok(sink) => {
                tracing::info!(nodes = %self.nodes.join(","), "connected to ScyllaDB");
                let sink = Arc::new(sink);
                *state = State::Connected(sink.clone());
                Ok(sink)
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_s = backoff.as_secs(), "cannot connect to ScyllaDB");
                *state = State::Waiting {
                    next_try: Instant::now() + backoff,
                    backoff: (backoff * 2).min(MAX_BACKOFF),
                };
                Err(error)
            }
        }
    }
}

impl ClickSink for LazyScylla {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        self.sink()?.write(batch)
    }
}

impl ClickReader for LazyScylla {
    fn series(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        interval: Interval,
    ) -> Result<Vec<(UnixMillis, Counts)>, SinkError> {
        self.sink()?.series(link, from, to, interval)
    }

    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        self.sink()?.breakdown(link, from, to, dimension)
    }

    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError> {
        self.sink()?.top_links(from, to, limit)
    }
}
