//! `ScyllaSink`: click windows in ScyllaDB (or Cassandra) through the `scylla`
//! driver, for multi-node installs. Creates its keyspace and tables on start and
//! writes each batch as unlogged batches of prepared inserts of absolute counts.

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

use super::sink::{
    ClickReader, ClickSink, Counts, Interval, SinkError, add_implied, bucket_series, rank,
};

/// Rows of one link and dimension are partitioned by UTC day.
pub const DAY_MILLIS: i64 = 86_400_000;
/// The top-links table is partitioned by UTC hour.
pub const HOUR_MILLIS: i64 = 3_600_000;
/// At most this many inserts go into one unlogged batch (all of one partition).
pub const MAX_STATEMENTS_PER_BATCH: usize = 100;
/// Batches or partition reads in flight at once for one call.
const CONCURRENCY: usize = 32;
/// Rows fetched per page when reading a partition.
const PAGE_SIZE: i32 = 5_000;

/// How the keyspace is replicated; used only when the keyspace is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy`: one data center (development, small clusters).
    Simple { factor: u32 },
    /// `NetworkTopologyStrategy`: replicas per data center name.
    NetworkTopology { datacenters: Vec<(String, u32)> },
}

impl Replication {
    /// The CQL map literal of a `WITH replication = ...` clause.
    pub fn to_cql(&self) -> String {
        match self {
            Self::Simple { factor } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            }
            Self::NetworkTopology { datacenters } => {
                let mut cql = String::from("{'class': 'NetworkTopologyStrategy'");
                for (name, factor) in datacenters {
                    cql.push_str(&format!(", '{}': {factor}", name.replace('\'', "''")));
                }
                cql.push('}');
                cql
            }
        }
    }
}

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

/// The CQL that creates the keyspace and tables, in order.
pub fn schema(keyspace: &str, replication: &Replication) -> [String; 3] {
    [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
            replication.to_cql()
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.click_rows (\
             link_id bigint, dimension text, day int, window_start timestamp, \
             bot boolean, node text, shard int, value text, count bigint, \
             PRIMARY KEY ((link_id, dimension, day), window_start, bot, node, shard, value))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.click_links_by_time (\
             hour int, window_start timestamp, link_id bigint, bot boolean, \
             node text, shard int, count bigint, \
             PRIMARY KEY ((hour), window_start, link_id, bot, node, shard))"
        ),
    ]
}

/// The four statements the sink prepares once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTexts {
    pub insert_row: String,
    pub insert_link_window: String,
    pub select_rows: String,
    pub select_link_windows: String,
}

impl StatementTexts {
    pub fn new(keyspace: &str) -> Self {
        Self {
            insert_row: format!(
                "INSERT INTO {keyspace}.click_rows \
                 (link_id, dimension, day, window_start, bot, node, shard, value, count) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            insert_link_window: format!(
                "INSERT INTO {keyspace}.click_links_by_time \
                 (hour, window_start, link_id, bot, node, shard, count) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            select_rows: format!(
                "SELECT window_start, bot, value, count FROM {keyspace}.click_rows \
                 WHERE link_id = ? AND dimension = ? AND day = ? \
                 AND window_start >= ? AND window_start < ?"
            ),
            select_link_windows: format!(
                "SELECT link_id, bot, count FROM {keyspace}.click_links_by_time \
                 WHERE hour = ? AND window_start >= ? AND window_start < ?"
            ),
        }
    }
}

/// Bound values of `insert_row`, in bind-marker order.
pub type RowInsert = (
    i64,
    &'static str,
    i32,
    CqlTimestamp,
    bool,
    String,
    i32,
    String,
    i64,
);
/// Bound values of `insert_link_window`, in bind-marker order.
pub type LinkWindowInsert = (i32, CqlTimestamp, i64, bool, String, i32, i64);

/// One unlogged batch: inserts into a single partition of a single table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteChunk {
    Rows(Vec<RowInsert>),
    LinkWindows(Vec<LinkWindowInsert>),
}

impl WriteChunk {
    pub fn len(&self) -> usize {
        match self {
            Self::Rows(rows) => rows.len(),
            Self::LinkWindows(rows) => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The UTC day number of an instant (the `click_rows` partition bucket).
pub fn day_of(at: UnixMillis) -> i32 {
    at.div_euclid(DAY_MILLIS) as i32
}

/// The UTC hour number of an instant (the `click_links_by_time` partition).
pub fn hour_of(at: UnixMillis) -> i32 {
    at.div_euclid(HOUR_MILLIS) as i32
}

/// Link ids are u64; CQL `bigint` is signed, so they are stored bit for bit.
fn link_to_cql(link: LinkId) -> i64 {
    link as i64
}

fn link_from_cql(link: i64) -> LinkId {
    link as u64
}

fn count_to_cql(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn count_from_cql(count: i64) -> u64 {
    u64::try_from(count).unwrap_or(0)
}

/// Splits a batch into single-partition chunks of at most
/// [`MAX_STATEMENTS_PER_BATCH`] absolute-value inserts. `Total` rows also go
/// to the top-links table.
pub fn plan_write(batch: &WindowBatch) -> Vec<WriteChunk> {
    let shard = i32::from(batch.shard);
    let mut rows: BTreeMap<(i64, &'static str, i32), Vec<RowInsert>> = BTreeMap::new();
    let mut link_windows: BTreeMap<i32, Vec<LinkWindowInsert>> = BTreeMap::new();
    for row in &batch.rows {
        let link = link_to_cql(row.link_id);
        let dimension = row.dimension.as_str();
        let day = day_of(row.window_start);
        let window = CqlTimestamp(row.window_start);
        let count = count_to_cql(row.count);
        rows.entry((link, dimension, day)).or_default().push((
            link,
            dimension,
            day,
            window,
            row.bot,
            batch.node.clone(),
            shard,
            row.value.clone(),
            count,
        ));
        if row.dimension == Dimension::Total {
            link_windows
                .entry(hour_of(row.window_start))
                .or_default()
                .push((
                    hour_of(row.window_start),
                    window,
                    link,
                    row.bot,
                    batch.node.clone(),
                    shard,
                    count,
                ));
        }
    }
    let mut chunks = Vec::new();
    for partition in rows.into_values() {
        for chunk in partition.chunks(MAX_STATEMENTS_PER_BATCH) {
            chunks.push(WriteChunk::Rows(chunk.to_vec()));
        }
    }
    for partition in link_windows.into_values() {
        for chunk in partition.chunks(MAX_STATEMENTS_PER_BATCH) {
            chunks.push(WriteChunk::LinkWindows(chunk.to_vec()));
        }
    }
    chunks
}

// ---- Error classification ------------------------------------------------
// Retryable (`Unavailable`): the cluster is down, slow or overloaded, or a
// connection broke. Everything else (bad CQL, auth, schema, protocol or
// decoding errors) is `Failed`: retrying would send the same bad request.

fn retryable_db_error(error: &DbError) -> bool {
    matches!(
        error,
        DbError::Overloaded
            | DbError::Unavailable { .. }
            | DbError::ReadTimeout { .. }
            | DbError::WriteTimeout { .. }
            | DbError::IsBootstrapping
            | DbError::RateLimitReached { .. }
            | DbError::ServerError
    )
}

fn retryable_attempt(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::DbError(db_error, _) => retryable_db_error(db_error),
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => true,
        _ => false,
    }
}

fn retryable_prepare(error: &PrepareError) -> bool {
    match error {
        PrepareError::ConnectionPoolError(_) => true,
        PrepareError::AllAttemptsFailed { first_attempt } => retryable_attempt(first_attempt),
        _ => false,
    }
}

fn retryable_execution(error: &ExecutionError) -> bool {
    match error {
        ExecutionError::LastAttemptError(attempt) => retryable_attempt(attempt),
        ExecutionError::PrepareError(prepare) => retryable_prepare(prepare),
        ExecutionError::ConnectionPoolError(_)
        | ExecutionError::RequestTimeout(_)
        | ExecutionError::EmptyPlan
        | ExecutionError::SchemaAgreementError(_)
        | ExecutionError::MetadataError(_) => true,
        _ => false,
    }
}

fn classified(retryable: bool, message: String) -> SinkError {
    if retryable {
        SinkError::Unavailable(message)
    } else {
        SinkError::Failed(message)
    }
}

/// Maps a driver execution error to the sink contract's two kinds.
pub fn classify_execution(error: &ExecutionError) -> SinkError {
    classified(retryable_execution(error), format!("scylla: {error}"))
}

/// Maps a driver prepare error to the sink contract's two kinds.
pub fn classify_prepare(error: &PrepareError) -> SinkError {
    classified(retryable_prepare(error), format!("scylla prepare: {error}"))
}

/// Maps a session creation error: unreachable clusters are retryable.
pub fn classify_connect(error: &NewSessionError) -> SinkError {
    let retryable = !matches!(
        error,
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_)
    );
    classified(retryable, format!("scylla connect: {error}"))
}

/// Keyspace names are spliced into CQL, so only plain identifiers pass.
fn valid_keyspace(keyspace: &str) -> bool {
    !keyspace.is_empty()
        && keyspace.len() <= 48
        && keyspace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !keyspace.as_bytes()[0].is_ascii_digit()
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
        if !valid_keyspace(keyspace) {
            return Err(SinkError::Failed(format!(
                "invalid keyspace name {keyspace:?}: use 1-48 letters, digits and '_'"
            )));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::clicks::WindowRow;
    use scylla::errors::WriteType;

    fn row(link: u64, window: i64, dimension: Dimension, value: &str, count: u64) -> WindowRow {
        WindowRow {
            link_id: link,
            window_start: window,
            dimension,
            value: value.into(),
            bot: false,
            count,
        }
    }

    fn db(error: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "forged".into()))
    }

    #[test]
    fn transient_cluster_errors_are_retryable() {
        for error in [
            db(DbError::Overloaded),
            db(DbError::IsBootstrapping),
            db(DbError::Unavailable {
                consistency: Consistency::LocalQuorum,
                required: 2,
                alive: 1,
            }),
            db(DbError::WriteTimeout {
                consistency: Consistency::LocalQuorum,
                received: 1,
                required: 2,
                write_type: WriteType::UnloggedBatch,
            }),
            db(DbError::ReadTimeout {
                consistency: Consistency::LocalQuorum,
                received: 1,
                required: 2,
                data_present: false,
            }),
            ExecutionError::RequestTimeout(Duration::from_secs(10)),
            ExecutionError::EmptyPlan,
            ExecutionError::LastAttemptError(RequestAttemptError::UnableToAllocStreamId),
        ] {
            assert!(
                matches!(classify_execution(&error), SinkError::Unavailable(_)),
                "{error:?}"
            );
        }
    }

    #[test]
    fn bad_requests_are_failures() {
        for error in [
            db(DbError::SyntaxError),
            db(DbError::Invalid),
            db(DbError::Unauthorized),
            db(DbError::ConfigError),
            db(DbError::ProtocolError),
        ] {
            assert!(
                matches!(classify_execution(&error), SinkError::Failed(_)),
                "{error:?}"
            );
        }
        assert!(matches!(
            classify_connect(&NewSessionError::EmptyKnownNodesList),
            SinkError::Failed(_)
        ));
        assert!(matches!(
            classify_connect(&NewSessionError::FailedToResolveAnyHostname(vec![
                "nowhere:9042".into()
            ])),
            SinkError::Unavailable(_)
        ));
    }

    #[test]
    fn plans_one_partition_per_batch() {
        let w0 = 1_767_225_600_000;
        let mut rows = vec![
            row(1, w0, Dimension::Total, "", 5),
            row(1, w0, Dimension::Country, "DE", 3),
            row(1, w0, Dimension::Country, "FR", 2),
            row(2, w0, Dimension::Total, "", 1),
        ];
        // One partition with more rows than a batch holds.
        rows.extend((0..150).map(|i| row(3, w0, Dimension::Referrer, &format!("r{i}"), 1)));
        let batch = WindowBatch {
            node: "node-a".into(),
            shard: 7,
            window_start: w0,
            rows,
        };
        let chunks = plan_write(&batch);
        let sizes: Vec<(bool, usize)> = chunks
            .iter()
            .map(|c| (matches!(c, WriteChunk::Rows(_)), c.len()))
            .collect();
        // Partitions in key order: (1,country) (1,total) (2,total)
        // (3,referrer) split in two, then the one hour partition.
        assert_eq!(
            sizes,
            vec![
                (true, 2),
                (true, 1),
                (true, 1),
                (true, 100),
                (true, 50),
                (false, 2)
            ]
        );
        let WriteChunk::Rows(total) = &chunks[1] else {
            panic!("rows first")
        };
        assert_eq!(
            total[0],
            (
                1,
                "total",
                day_of(w0),
                CqlTimestamp(w0),
                false,
                "node-a".into(),
                7,
                String::new(),
                5
            )
        );
        let WriteChunk::LinkWindows(links) = &chunks[5] else {
            panic!("link windows last")
        };
        assert_eq!(
            links[0],
            (
                hour_of(w0),
                CqlTimestamp(w0),
                1,
                false,
                "node-a".into(),
                7,
                5
            )
        );
    }

    #[test]
    fn link_ids_round_trip_through_bigint() {
        for link in [0, 1, u64::MAX, 1 << 63] {
            assert_eq!(link_from_cql(link_to_cql(link)), link);
        }
    }

    #[test]
    fn keyspace_names_are_plain_identifiers() {
        assert!(valid_keyspace("ricochet_clicks"));
        assert!(!valid_keyspace(""));
        assert!(!valid_keyspace("1abc"));
        assert!(!valid_keyspace("a; DROP KEYSPACE x"));
        assert!(!valid_keyspace(&"a".repeat(49)));
    }

    #[test]
    fn replication_renders_as_cql() {
        assert_eq!(
            Replication::Simple { factor: 3 }.to_cql(),
            "{'class': 'SimpleStrategy', 'replication_factor': 3}"
        );
        assert_eq!(
            Replication::NetworkTopology {
                datacenters: vec![("dc1".into(), 3), ("dc2".into(), 2)]
            }
            .to_cql(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
        );
    }
}
