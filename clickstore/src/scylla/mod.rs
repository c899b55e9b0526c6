//! `ScyllaSink`: click windows in ScyllaDB (or Cassandra) through the `scylla`
//! driver, for multi-node installs. Creates its keyspace and tables on start and
//! writes each batch as unlogged batches of prepared inserts of absolute counts.

mod errors;
mod lazy;
mod plan;
mod schema;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ricochet_model::clicks::{Dimension, WindowBatch};
use ricochet_model::{LinkId, UnixMillis};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError};
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use scylla::statement::Consistency;
use scylla::statement::batch::{Batch, BatchStatement, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlTimestamp;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use crate::contract::{
    ClickReader, ClickSink, Counts, Interval, SinkError, add_implied, bucket_series, rank,
};

pub use self::errors::{classify_connect, classify_execution, classify_prepare};
pub use self::lazy::LazyScylla;
use self::plan::*;
pub use self::plan::{
    DAY_MILLIS, HOUR_MILLIS, MAX_STATEMENTS_PER_BATCH, WriteChunk, day_of, hour_of, plan_write,
};
use self::schema::check_keyspace;
pub use self::schema::{Replication, StatementTexts, schema};

/// Batches or partition reads in flight at once for one call.
const CONCURRENCY: usize = 32;
/// Rows fetched per page when reading a partition.
const PAGE_SIZE: i32 = 5_000;

/// How often and how patiently `write` retries a retryable failure before
/// returning [`SinkError::Unavailable`] (the spill queue then takes over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRetry {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// Wait before the first retry; doubled after each failed retry.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for WriteRetry {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct Statements {
    insert_row: PreparedStatement,
    insert_link_window: PreparedStatement,
    select_rows: PreparedStatement,
    select_link_windows: PreparedStatement,
}

/// The distributed click store.
pub struct ScyllaSink {
    /// One worker thread drives the driver's connections between calls; the
    /// synchronous trait methods block on it. `None` only while dropping.
    runtime: Option<Runtime>,
    session: Arc<Session>,
    statements: Arc<Statements>,
    retry: WriteRetry,
    retries: AtomicU64,
}

impl std::fmt::Debug for ScyllaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaSink")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Runs `future` to completion on `runtime` from synchronous code. Called from
/// inside another runtime (the control plane's handlers), it waits on a scoped
/// thread, since blocking a runtime thread on another runtime panics.
fn block_on<F>(runtime: &Runtime, future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime.block_on(future);
    }
    std::thread::scope(|scope| {
        scope
            .spawn(|| runtime.block_on(future))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Runs at most `limit` futures at once on the current runtime and collects
/// their outputs in completion order.
async fn run_bounded<F, T>(futures: impl IntoIterator<Item = F>, limit: usize) -> Vec<T>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let mut running = JoinSet::new();
    let mut outputs = Vec::new();
    for future in futures {
        if running.len() >= limit
            && let Some(joined) = running.join_next().await
        {
            outputs.push(unwrap_joined(joined));
        }
        running.spawn(future);
    }
    while let Some(joined) = running.join_next().await {
        outputs.push(unwrap_joined(joined));
    }
    outputs
}

fn unwrap_joined<T>(joined: Result<T, tokio::task::JoinError>) -> T {
    match joined {
        Ok(output) => output,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Tasks are only cancelled when the runtime shuts down, which happens
        // in `drop`, never while a call is waiting here.
        Err(error) => panic!("click sink task cancelled: {error}"),
    }
}

/// Reads every page of one partition query.
async fn fetch_all<V, R>(
    session: Arc<Session>,
    statement: PreparedStatement,
    values: V,
) -> Result<Vec<R>, SinkError>
where
    V: SerializeRow,
    R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
{
    let mut rows = Vec::new();
    let mut paging_state = PagingState::start();
    loop {
        let (result, paging) = session
            .execute_single_page(&statement, &values, paging_state)
            .await
            .map_err(|e| classify_execution(&e))?;
        let result = result
            .into_rows_result()
            .map_err(|e| SinkError::Failed(format!("scylla result: {e}")))?;
        for row in result
            .rows::<R>()
            .map_err(|e| SinkError::Failed(format!("scylla rows: {e}")))?
        {
            rows.push(row.map_err(|e| SinkError::Failed(format!("scylla row: {e}")))?);
        }
        match paging {
            PagingStateResponse::HasMorePages { state } => paging_state = state,
            PagingStateResponse::NoMorePages => return Ok(rows),
        }
    }
}

/// Sends one chunk as an unlogged, idempotent batch.
async fn write_chunk(
    session: Arc<Session>,
    statements: Arc<Statements>,
    chunk: WriteChunk,
) -> Result<(), (WriteChunk, ExecutionError)> {
    let statement = match &chunk {
        WriteChunk::Rows(_) => &statements.insert_row,
        WriteChunk::LinkWindows(_) => &statements.insert_link_window,
    };
    let mut batch = Batch::new_with_statements(
        BatchType::Unlogged,
        vec![BatchStatement::PreparedStatement(statement.clone()); chunk.len()],
    );
    // Absolute values: sending the batch again writes the same cells.
    batch.set_is_idempotent(true);
    let result = match &chunk {
        WriteChunk::Rows(rows) => session.batch(&batch, rows).await,
        WriteChunk::LinkWindows(rows) => session.batch(&batch, rows).await,
    };
    match result {
        Ok(_) => Ok(()),
        Err(error) => Err((chunk, error)),
    }
}

impl ScyllaSink {
    /// Connects to `nodes` (`host:port`), creates `keyspace` with `replication`
    /// and the tables if missing, and prepares the statements.
    pub fn connect(
        nodes: &[String],
        keyspace: &str,
        replication: Replication,
    ) -> Result<Self, SinkError> {
        check_keyspace(keyspace)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ricochet-scylla")
            .enable_all()
            .build()
            .map_err(|e| SinkError::Failed(format!("scylla runtime: {e}")))?;
        let (session, statements) =
            block_on(&runtime, Self::open_session(nodes, keyspace, &replication))?;
        Ok(Self {
            runtime: Some(runtime),
            session: Arc::new(session),
            statements: Arc::new(statements),
            retry: WriteRetry::default(),
            retries: AtomicU64::new(0),
        })
    }

    /// Replaces the default write retry policy.
    pub fn with_retry(mut self, retry: WriteRetry) -> Self {
        self.retry = WriteRetry {
            attempts: retry.attempts.max(1),
            ..retry
        };
        self
    }

    /// Retries `write` has made since the sink was created.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    async fn open_session(
        nodes: &[String],
        keyspace: &str,
        replication: &Replication,
    ) -> Result<(Session, Statements), SinkError> {
        let profile = ExecutionProfile::builder()
            .consistency(Consistency::LocalQuorum)
            .request_timeout(Some(Duration::from_secs(10)))
            .build()
            .into_handle();
        let session = SessionBuilder::new()
            .known_nodes(nodes)
            .connection_timeout(Duration::from_secs(5))
            .default_execution_profile_handle(profile)
            // Client-side, monotonic timestamps: a later write of a key (a
            // re-flush with a higher count) always wins over an earlier one,
            // whatever order the replicas receive them in.
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .keyspaces_to_fetch([keyspace])
            .fetch_full_schema_metadata(false)
            .build()
            .await
            .map_err(|e| classify_connect(&e))?;
        for cql in schema(keyspace, replication) {
            session
                .query_unpaged(cql, ())
                .await
                .map_err(|e| classify_execution(&e))?;
        }
        let texts = StatementTexts::new(keyspace);
        let prepare = |text: String| {
            let session = &session;
            async move {
                let mut statement = session
                    .prepare(text)
                    .await
                    .map_err(|e| classify_prepare(&e))?;
                statement.set_page_size(PAGE_SIZE);
                Ok::<_, SinkError>(statement)
            }
        };
        let insert_row = prepare(texts.insert_row).await?;
        let insert_link_window = prepare(texts.insert_link_window).await?;
        let mut select_rows = prepare(texts.select_rows).await?;
        let mut select_link_windows = prepare(texts.select_link_windows).await?;
        select_rows.set_is_idempotent(true);
        select_link_windows.set_is_idempotent(true);
        tracing::info!(keyspace, nodes = nodes.len(), "scylla click sink ready");
        Ok((
            session,
            Statements {
                insert_row,
                insert_link_window,
                select_rows,
                select_link_windows,
            },
        ))
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("runtime lives until drop")
    }

    async fn write_with_retry(&self, chunks: Vec<WriteChunk>) -> Result<(), SinkError> {
        let mut pending = chunks;
        let mut backoff = self.retry.first_backoff;
        let mut attempt = 1;
        loop {
            let sends = pending
                .into_iter()
                .map(|chunk| write_chunk(self.session.clone(), self.statements.clone(), chunk));
            let mut failed = Vec::new();
            let mut last_error = None;
            for outcome in run_bounded(sends, CONCURRENCY).await {
                let Err((chunk, error)) = outcome else {
                    continue;
                };
                let classified = classify_execution(&error);
                if let SinkError::Failed(_) = classified {
                    return Err(classified);
                }
                failed.push(chunk);
                last_error = Some(classified);
            }
            let Some(error) = last_error else {
                return Ok(());
            };
            if attempt >= self.retry.attempts {
                return Err(error);
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                %error,
                attempt,
                failed_batches = failed.len(),
                retry_in_ms = backoff.as_millis() as u64,
                "scylla click write failed; resending the same absolute values"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(self.retry.max_backoff);
            attempt += 1;
            pending = failed;
        }
    }

    /// (window, bot, value, count) of one link and dimension in `[from, to)`,
    /// over every node and shard.
    async fn read_rows(
        &self,
        link: LinkId,
        dimension: Dimension,
        from: UnixMillis,
        to: UnixMillis,
    ) -> Result<Vec<(CqlTimestamp, bool, String, i64)>, SinkError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let reads = (day_of(from)..=day_of(to - 1)).map(|day| {
            let values = (
                link_to_cql(link),
                dimension.as_str(),
                day,
                CqlTimestamp(from),
                CqlTimestamp(to),
            );
            fetch_all::<_, (CqlTimestamp, bool, String, i64)>(
                self.session.clone(),
                self.statements.select_rows.clone(),
                values,
            )
        });
        let mut rows = Vec::new();
        for part in run_bounded(reads, CONCURRENCY).await {
            rows.extend(part?);
        }
        Ok(rows)
    }
}

impl Drop for ScyllaSink {
    fn drop(&mut self) {
        // Never blocks, so dropping is safe inside another runtime too.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl ClickSink for ScyllaSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        let chunks = plan_write(batch);
        if chunks.is_empty() {
            return Ok(());
        }
        block_on(self.runtime(), self.write_with_retry(chunks))
    }
}

impl ClickReader for ScyllaSink {
    fn series(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        interval: Interval,
    ) -> Result<Vec<(UnixMillis, Counts)>, SinkError> {
        let rows = block_on(
            self.runtime(),
            self.read_rows(link, Dimension::Total, from, to),
        )?;
        let windows = rows.into_iter().map(|(window, bot, _, count)| {
            let mut counts = Counts::default();
            counts.add(bot, count_from_cql(count));
            (window.0, counts)
        });
        Ok(bucket_series(from, to, interval, windows))
    }

    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        let rows = block_on(self.runtime(), self.read_rows(link, dimension, from, to))?;
        let mut values: HashMap<String, Counts> = HashMap::new();
        for (_, bot, value, count) in rows {
            values
                .entry(value)
                .or_default()
                .add(bot, count_from_cql(count));
        }
        let mut total = Counts::default();
        if dimension.has_implied() {
            let rows = block_on(
                self.runtime(),
                self.read_rows(link, Dimension::Total, from, to),
            )?;
            for (_, bot, _, count) in rows {
                total.add(bot, count_from_cql(count));
            }
        }
        let mut entries: Vec<(String, Counts)> = values.into_iter().collect();
        add_implied(dimension, &mut entries, total);
        Ok(entries)
    }

    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let reads = (hour_of(from)..=hour_of(to - 1)).map(|hour| {
            fetch_all::<_, (i64, bool, i64)>(
                self.session.clone(),
                self.statements.select_link_windows.clone(),
                (hour, CqlTimestamp(from), CqlTimestamp(to)),
            )
        });
        let parts = block_on(self.runtime(), run_bounded(reads, CONCURRENCY));
        let mut links: HashMap<LinkId, Counts> = HashMap::new();
        for part in parts {
            for (link, bot, count) in part? {
                links
                    .entry(link_from_cql(link))
                    .or_default()
                    .add(bot, count_from_cql(count));
            }
        }
        let mut entries: Vec<(LinkId, Counts)> = links.into_iter().collect();
        rank(&mut entries);
        entries.truncate(limit);
        Ok(entries)
    }
}
