//! Bulk loads: an import into a store without links writes its links as
//! sorted tables (fjall's ingestion) instead of through the journal and
//! memtables, so its time per row stays flat as the import grows
//! (docs/PERFORMANCE.md, "Imports").
//!
//! While a load is open, [`ControlStore::write`] runs as usual (the service
//! validates, allocates ids and versions, refuses taken codes), but the
//! link-keyed entries its transactions stage (record, change-log entry,
//! ownership entries) go to a [`BulkStage`]: records, changes and owners are
//! appended in ascending id and version order and are ingested in chunks;
//! the code index, in random order, stays in memory ([`CodeIndex`], which
//! also answers whether a code is taken) and is ingested, sorted, when the
//! load finishes.
//!
//! Ingested tables are not covered by one atomic batch, so a load first
//! records where it started (`meta.bulk_load`: version and next id). A store
//! opened with that marker held a load that never finished; since loads only
//! start on a store without links, opening it clears the link keyspaces,
//! removes the change-log entries above the recorded version and resets the
//! version and next id: the store is as it was before the import.

use fjall::{Keyspace, PersistMode};
use ricochet_model::codec;
use ricochet_model::{Change, LinkKey, LinkRecord};

use super::code_index::CodeIndex;
use super::{ControlStore, META_NEXT_ID, META_VERSION, StoreError, read_u64};

const META_BULK_LOAD: &[u8] = b"bulk_load";
/// Links staged before their records, changes and owners are ingested
/// (about 250 bytes of memory a link); [`ControlStore::set_bulk_chunk`].
pub const DEFAULT_BULK_CHUNK: usize = 250_000;

/// Entries of an open bulk load not yet written.
#[derive(Default)]
pub(crate) struct BulkStage {
    /// Storage key (domain, 0, code) → id, of every link of the load.
    codes: CodeIndex,
    links: Vec<(u64, Box<[u8]>)>,
    changes: Vec<(u64, Box<[u8]>)>,
    /// (id, workspace) of new links.
    owners: Vec<(u64, Box<str>)>,
}

impl BulkStage {
    fn code_owner(&self, key: &LinkKey) -> Option<u64> {
        self.codes.get(&key.storage_key())
    }

    pub(crate) fn put_link(&mut self, link: &LinkRecord, change: &Change) {
        self.codes.insert(&link.key().storage_key(), link.id);
        self.links
            .push((link.id, codec::encode_record(link).into_boxed_slice()));
        self.changes.push((
            change.version,
            codec::encode_change(change).into_boxed_slice(),
        ));
    }

    pub(crate) fn claim_link(&mut self, workspace_id: &str, id: u64) {
        self.owners.push((id, workspace_id.into()));
    }
}

/// Writes `entries` (sorted here) into `keyspace` as one ingestion.
fn ingest<K: AsRef<[u8]> + Ord, V: AsRef<[u8]>>(
    keyspace: &Keyspace,
    entries: &mut Vec<(K, V)>,
) -> Result<(), StoreError> {
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    ingest_sorted(keyspace, entries.drain(..))
}

/// Writes `entries`, in ascending key order, into `keyspace` as one ingestion.
fn ingest_sorted<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    keyspace: &Keyspace,
    entries: impl Iterator<Item = (K, V)>,
) -> Result<(), StoreError> {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return Ok(());
    }
    let mut ingestion = keyspace.start_ingestion()?;
    for (key, value) in entries {
        ingestion.write(key.as_ref(), value.as_ref())?;
    }
    ingestion.finish()?;
    Ok(())
}

impl ControlStore {
    /// The keyspaces only links fill.
    fn link_keyspaces(&self) -> [&Keyspace; 4] {
        [
            &self.links,
            &self.codes,
            &self.spaces.link_owners,
            &self.spaces.workspace_links,
        ]
    }

    /// Opens a bulk load when the store holds no link and no change
    /// publisher is attached; returns whether it did. Until
    /// [`Self::finish_bulk_load`], the links that writes create are staged.
    pub fn begin_bulk_load(&self) -> Result<bool, StoreError> {
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let publishing = self
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        if publishing {
            return Ok(false);
        }
        for keyspace in self.link_keyspaces() {
            if !keyspace.is_empty()? {
                return Ok(false);
            }
        }
        let mut bulk = self.bulk.lock().unwrap_or_else(|e| e.into_inner());
        if bulk.is_some() {
            return Ok(false);
        }
        let mut marker = writer.version.to_be_bytes().to_vec();
        marker.extend(writer.next_id.to_be_bytes());
        self.meta.insert(META_BULK_LOAD, marker)?;
        self.db.persist(PersistMode::SyncAll)?;
        *bulk = Some(BulkStage::default());
        Ok(true)
    }

    /// How many links a bulk load stages before it writes their records,
    /// changes and owners (the code index is written at the end).
    pub fn set_bulk_chunk(&self, links: usize) {
        self.bulk_chunk
            .store(links.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a bulk load is open.
    pub fn bulk_load_open(&self) -> bool {
        self.bulk
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Writes what the open bulk load staged, the code index last, and
    /// closes it. Without an open load, does nothing.
    pub fn finish_bulk_load(&self) -> Result<(), StoreError> {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let Some(mut stage) = self.bulk.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return Ok(());
        };
        self.ingest_chunk(&mut stage)?;
        let codes = stage
            .codes
            .sorted()
            .map(|(key, id)| (key, id.to_be_bytes()));
        ingest_sorted(&self.codes, codes)?;
        self.meta.remove(META_BULK_LOAD)?;
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// The id a code was given by the open bulk load, if any.
    pub(super) fn bulk_code_owner(&self, key: &LinkKey) -> Option<u64> {
        self.bulk
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .and_then(|stage| stage.code_owner(key))
    }

    /// Adds a committed transaction's link entries to the open load, and
    /// ingests a full chunk.
    pub(super) fn add_to_bulk_load(&self, staged: BulkStage) -> Result<(), StoreError> {
        let mut bulk = self.bulk.lock().unwrap_or_else(|e| e.into_inner());
        let Some(stage) = bulk.as_mut() else {
            return Err(StoreError::Corrupt(
                "a transaction staged links for a bulk load that is closed".into(),
            ));
        };
        for (key, id) in staged.codes.iter() {
            stage.codes.insert(key, id);
        }
        stage.links.extend(staged.links);
        stage.changes.extend(staged.changes);
        stage.owners.extend(staged.owners);
        if stage.links.len() >= self.bulk_chunk.load(std::sync::atomic::Ordering::Relaxed) {
            self.ingest_chunk(stage)?;
        }
        Ok(())
    }

    fn ingest_chunk(&self, stage: &mut BulkStage) -> Result<(), StoreError> {
        let mut links: Vec<_> = stage
            .links
            .drain(..)
            .map(|(id, record)| (id.to_be_bytes(), record))
            .collect();
        ingest(&self.links, &mut links)?;
        let mut changes: Vec<_> = stage
            .changes
            .drain(..)
            .map(|(version, change)| (version.to_be_bytes(), change))
            .collect();
        ingest(&self.changes, &mut changes)?;
        let mut owners: Vec<_> = stage
            .owners
            .iter()
            .map(|(id, workspace)| (id.to_be_bytes(), workspace.as_bytes().to_vec()))
            .collect();
        ingest(&self.spaces.link_owners, &mut owners)?;
        let mut workspace_links: Vec<_> = stage
            .owners
            .drain(..)
            .map(|(id, workspace)| (super::workspaces::pair(&workspace, &id.to_be_bytes()), []))
            .collect();
        ingest(&self.spaces.workspace_links, &mut workspace_links)?;
        Ok(())
    }

    /// Closes the open bulk load without finishing it and undoes what it
    /// wrote, as the next open of the store would.
    pub fn abandon_bulk_load(&self) -> Result<(), StoreError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.bulk.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.recover_bulk_load()?;
        writer.version = read_u64(&self.meta, META_VERSION)?;
        writer.next_id = read_u64(&self.meta, META_NEXT_ID)?.max(1);
        self.latest
            .store(writer.version, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    /// Undoes a bulk load that never finished (see the module's text).
    pub(super) fn recover_bulk_load(&self) -> Result<(), StoreError> {
        let Some(marker) = self.meta.get(META_BULK_LOAD)? else {
            return Ok(());
        };
        let (version, next_id) = match (marker.get(..8), marker.get(8..16)) {
            (Some(version), Some(next_id)) => (
                u64::from_be_bytes(version.try_into().expect("8 bytes")),
                u64::from_be_bytes(next_id.try_into().expect("8 bytes")),
            ),
            _ => return Err(StoreError::Corrupt("bulk load marker".into())),
        };
        let written = read_u64(&self.meta, META_VERSION)?;
        tracing::warn!(
            version,
            "an import did not finish: removing the links it wrote, back to version {version}"
        );
        for keyspace in self.link_keyspaces() {
            keyspace.clear()?;
        }
        let mut removed = 0u64;
        let mut batch = self.db.batch();
        for item in self
            .changes
            .range(version.saturating_add(1).to_be_bytes()..)
        {
            let key = item.key()?;
            batch.remove(&self.changes, key);
            removed += 1;
            if removed.is_multiple_of(100_000) {
                batch.commit()?;
                batch = self.db.batch();
            }
        }
        batch.insert(&self.meta, META_VERSION, version.to_be_bytes());
        batch.insert(&self.meta, META_NEXT_ID, next_id.to_be_bytes());
        batch.remove(&self.meta, META_BULK_LOAD);
        batch.commit()?;
        self.db.persist(PersistMode::SyncAll)?;
        tracing::warn!(
            removed_changes = removed,
            was_at_version = written,
            "the unfinished import was undone"
        );
        Ok(())
    }
}
