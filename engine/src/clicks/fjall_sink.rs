//! `FjallSink`: click windows in an embedded fjall store, for single-node and
//! all-in-one installs. Rows are keyed link → dimension → window so a series
//! or a breakdown is one range scan; a second keyspace keyed by window serves
//! the top-links query. Each batch is one atomic write of absolute counts.

use std::collections::HashMap;
use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use ricochet_model::clicks::{Dimension, WindowBatch};
use ricochet_model::{LinkId, UnixMillis};

use super::sink::{ClickReader, ClickSink, Counts, Interval, SinkError, bucket_series, rank};

/// The embedded click store.
pub struct FjallSink {
    db: Database,
    rows: Keyspace,
    windows: Keyspace,
}

impl std::fmt::Debug for FjallSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallSink").finish_non_exhaustive()
    }
}

fn failed(error: fjall::Error) -> SinkError {
    SinkError::Unavailable(error.to_string())
}

/// An i64 as 8 bytes that sort like the numbers.
fn sortable(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn unsortable(bytes: &[u8]) -> i64 {
    (u64::from_be_bytes(bytes[..8].try_into().unwrap()) ^ (1 << 63)) as i64
}

fn count_of(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// `link | dimension | window` — the prefix of a row key.
fn row_prefix(link: LinkId, dimension: Dimension, window: UnixMillis) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&link.to_be_bytes());
    key.push(dimension.code());
    key.extend_from_slice(&sortable(window));
    key
}

/// What follows the prefix: bot flag, node, shard, value.
fn source_suffix(key: &mut Vec<u8>, bot: bool, node: &str, shard: u16) {
    key.push(bot as u8);
    let node = &node.as_bytes()[..node.len().min(255)];
    key.push(node.len() as u8);
    key.extend_from_slice(node);
    key.extend_from_slice(&shard.to_be_bytes());
}

/// Splits a row key after the prefix into (window, bot, value).
fn parse_row_key(key: &[u8]) -> Option<(UnixMillis, bool, &[u8])> {
    let window = unsortable(key.get(9..17)?);
    let bot = *key.get(17)? == 1;
    let node_len = *key.get(18)? as usize;
    let value = key.get(19 + node_len + 2..)?;
    Some((window, bot, value))
}

impl FjallSink {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::Failed(e.to_string()))?;
        let db = Database::builder(dir)
            .cache_size(16 * 1024 * 1024)
            .open()
            .map_err(failed)?;
        let rows = db
            .keyspace("click_rows", KeyspaceCreateOptions::default)
            .map_err(failed)?;
        let windows = db
            .keyspace("click_windows", KeyspaceCreateOptions::default)
            .map_err(failed)?;
        Ok(Self { db, rows, windows })
    }

    /// Syncs written batches to disk.
    pub fn persist(&self) -> Result<(), SinkError> {
        self.db.persist(PersistMode::SyncAll).map_err(failed)
    }

    fn scan_rows(
        &self,
        link: LinkId,
        dimension: Dimension,
        from: UnixMillis,
        to: UnixMillis,
        mut visit: impl FnMut(UnixMillis, bool, &[u8], u64),
    ) -> Result<(), SinkError> {
        let start = row_prefix(link, dimension, from);
        let end = row_prefix(link, dimension, to);
        for item in self.rows.range(start..end) {
            let (key, value) = item.into_inner().map_err(failed)?;
            if let Some((window, bot, text)) = parse_row_key(&key) {
                visit(window, bot, text, count_of(&value));
            }
        }
        Ok(())
    }
}

impl ClickSink for FjallSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        let mut write = self.db.batch();
        for row in &batch.rows {
            let mut key = row_prefix(row.link_id, row.dimension, row.window_start);
            source_suffix(&mut key, row.bot, &batch.node, batch.shard);
            key.extend_from_slice(row.value.as_bytes());
            write.insert(&self.rows, key, row.count.to_be_bytes());
            if row.dimension == Dimension::Total {
                let mut key = sortable(row.window_start).to_vec();
                key.extend_from_slice(&row.link_id.to_be_bytes());
                source_suffix(&mut key, row.bot, &batch.node, batch.shard);
                write.insert(&self.windows, key, row.count.to_be_bytes());
            }
        }
        write.commit().map_err(failed)
    }
}

impl ClickReader for FjallSink {
    fn series(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        interval: Interval,
    ) -> Result<Vec<(UnixMillis, Counts)>, SinkError> {
        let mut windows: Vec<(UnixMillis, Counts)> = Vec::new();
        self.scan_rows(link, Dimension::Total, from, to, |window, bot, _, count| {
            let mut counts = Counts::default();
            counts.add(bot, count);
            windows.push((window, counts));
        })?;
        Ok(bucket_series(from, to, interval, windows))
    }

    fn breakdown(
        &self,
        link: LinkId,
        from: UnixMillis,
        to: UnixMillis,
        dimension: Dimension,
    ) -> Result<Vec<(String, Counts)>, SinkError> {
        let mut values: HashMap<String, Counts> = HashMap::new();
        self.scan_rows(link, dimension, from, to, |_, bot, value, count| {
            values
                .entry(String::from_utf8_lossy(value).into_owned())
                .or_default()
                .add(bot, count);
        })?;
        let mut entries: Vec<(String, Counts)> = values.into_iter().collect();
        rank(&mut entries);
        Ok(entries)
    }

    fn top_links(
        &self,
        from: UnixMillis,
        to: UnixMillis,
        limit: usize,
    ) -> Result<Vec<(LinkId, Counts)>, SinkError> {
        let mut links: HashMap<LinkId, Counts> = HashMap::new();
        for item in self.windows.range(sortable(from)..sortable(to)) {
            let (key, value) = item.into_inner().map_err(failed)?;
            let (Some(link), Some(&bot)) = (key.get(8..16), key.get(16)) else {
                continue;
            };
            let link = u64::from_be_bytes(link.try_into().unwrap());
            links
                .entry(link)
                .or_default()
                .add(bot == 1, count_of(&value));
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

    #[test]
    fn passes_the_sink_conformance_suite() {
        let dir = tempfile::tempdir().unwrap();
        let sink = FjallSink::open(dir.path()).unwrap();
        crate::clicks::conformance::run(&sink, &sink);
    }

    #[test]
    fn keeps_rows_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let batch = WindowBatch {
            node: "n".into(),
            shard: 0,
            window_start: 0,
            rows: vec![ricochet_model::clicks::WindowRow {
                link_id: 7,
                window_start: 0,
                dimension: Dimension::Total,
                value: String::new(),
                bot: false,
                count: 3,
            }],
        };
        {
            let sink = FjallSink::open(dir.path()).unwrap();
            sink.write(&batch).unwrap();
            sink.persist().unwrap();
        }
        let sink = FjallSink::open(dir.path()).unwrap();
        let series = sink.series(7, 0, 10_000, Interval::TenSeconds).unwrap();
        assert_eq!(series, vec![(0, Counts { humans: 3, bots: 0 })]);
    }
}
