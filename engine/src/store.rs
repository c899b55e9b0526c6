//! The engine's fjall store: every link record it serves and the version of
//! the last change it applied, written together in one atomic batch so a crash
//! at any point leaves a table consistent with some applied version; and the
//! uses taken of limited links (`limits::FjallCounter`), synced per write;
//! and the domains' settings, written with the changes that carry them. A
//! bulk load (an import into a store without links) writes its links as
//! tables beside that batch, behind a marker that the next open resolves.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, OwnedWriteBatch, PersistMode};
use ricochet_model::codec::{self, CodecError};
use ricochet_model::tls::TlsChange;
use ricochet_model::{Change, ChangeOp, DomainSettings, LinkId, LinkKey, LinkRecord};
use thiserror::Error;

const LAST_APPLIED: &[u8] = b"last_applied_version";
/// Present while a bulk load is being written: its last version and domain
/// changes (see [`LinkStore::ingest_links`]).
const BULK_LOAD: &[u8] = b"bulk_load";
/// Block cache of the store.
const BLOCK_CACHE_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("cannot open the link store at {path}: {source}")]
    Open { path: String, source: fjall::Error },
    #[error("link store: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("link store holds a corrupt value: {0}")]
    Corrupt(#[from] CodecError),
}

/// Links and intake state on disk.
#[derive(Clone)]
pub struct LinkStore {
    dir: std::path::PathBuf,
    db: Database,
    links: Keyspace,
    meta: Keyspace,
    /// Uses taken of limited links: link id (u64 BE) → count (u64 BE).
    clicks_used: Keyspace,
    /// Domain settings: domain name → encoded settings.
    domains: Keyspace,
    /// The current TLS state by slot ([`TlsChange::slot`]): certificates and
    /// challenge answers, as the changes that set them.
    tls: Keyspace,
}

impl std::fmt::Debug for LinkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkStore").finish_non_exhaustive()
    }
}

impl LinkStore {
    /// Opens (or creates) the store in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: dir.display().to_string(),
            source,
        };
        // The table lives in memory; the store is read once at start and then
        // mostly written, so a small block cache is enough.
        let db = Database::builder(dir)
            .cache_size(BLOCK_CACHE_BYTES)
            .open()
            .map_err(open_error)?;
        let links = db.keyspace("links", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let clicks_used = db.keyspace("clicks_used", KeyspaceCreateOptions::default)?;
        let domains = db.keyspace("domains", KeyspaceCreateOptions::default)?;
        let tls = db.keyspace("tls", KeyspaceCreateOptions::default)?;
        let store = Self {
            dir: dir.to_path_buf(),
            db,
            links,
            meta,
            clicks_used,
            domains,
            tls,
        };
        store.recover_bulk_load()?;
        Ok(store)
    }

    /// The directory the store is in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Version of the last change applied; 0 for a new store.
    pub fn last_applied(&self) -> Result<u64, StoreError> {
        Ok(self
            .meta
            .get(LAST_APPLIED)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Writes `changes` and the new last-applied version in one atomic batch.
    pub fn write_changes(&self, changes: &[Change], last_applied: u64) -> Result<(), StoreError> {
        self.changes_batch(changes, last_applied).commit()?;
        Ok(())
    }

    /// A batch writing `changes` and the new last-applied version.
    fn changes_batch(&self, changes: &[Change], last_applied: u64) -> OwnedWriteBatch {
        let mut batch = self.db.batch();
        for change in changes {
            match &change.op {
                ChangeOp::Upsert { link } => batch.insert(
                    &self.links,
                    link.key().storage_key(),
                    codec::encode_record(link),
                ),
                ChangeOp::Purge { key } => batch.remove(&self.links, key.storage_key()),
                // A removed domain's settings are empty: nothing to keep.
                ChangeOp::Domain { settings } if settings.is_empty() => {
                    batch.remove(&self.domains, settings.domain.as_bytes())
                }
                ChangeOp::Domain { settings } => batch.insert(
                    &self.domains,
                    settings.domain.as_bytes(),
                    codec::encode_domain(settings),
                ),
                ChangeOp::Tls { change } if change.is_removal() => {
                    batch.remove(&self.tls, change.slot())
                }
                ChangeOp::Tls { change } => {
                    batch.insert(&self.tls, change.slot(), codec::encode_tls(change))
                }
            }
        }
        batch.insert(&self.meta, LAST_APPLIED, last_applied.to_be_bytes());
        batch
    }

    /// Whether the store holds no link record.
    pub fn has_no_links(&self) -> Result<bool, StoreError> {
        Ok(self.links.is_empty()?)
    }

    /// Writes a bulk load into a store without links: the links `feed`
    /// passes to its writer, which must come in ascending key order without
    /// repeats, as new tables of the links keyspace (bypassing the journal,
    /// memtables and compaction of ordinary writes), then `domains` and the
    /// new last-applied version. The tables become visible together when
    /// `feed` has returned `Ok`; if it fails, nothing is written.
    ///
    /// A crash cannot leave links without their version: a marker holding
    /// the version and the domain changes is synced before the tables are
    /// written and removed with the batch that follows them, and
    /// [`LinkStore::open`] finishes a load whose tables were registered
    /// (or forgets one whose tables were not).
    pub fn ingest_links<E: From<StoreError>>(
        &self,
        domains: &[Change],
        last_applied: u64,
        feed: impl FnOnce(&mut LinkWriter<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.write_bulk_marker(domains, last_applied)?;
        if let Err(error) = self.ingest_tables(feed) {
            self.meta.remove(BULK_LOAD).map_err(StoreError::from)?;
            return Err(error);
        }
        self.finish_bulk_load(domains, last_applied)?;
        Ok(())
    }

    fn write_bulk_marker(&self, domains: &[Change], last_applied: u64) -> Result<(), StoreError> {
        let mut marker = last_applied.to_be_bytes().to_vec();
        for change in domains {
            let encoded = codec::encode_change(change);
            marker.extend((encoded.len() as u32).to_be_bytes());
            marker.extend(encoded);
        }
        self.meta.insert(BULK_LOAD, marker)?;
        self.persist()
    }

    fn ingest_tables<E: From<StoreError>>(
        &self,
        feed: impl FnOnce(&mut LinkWriter<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut ingestion = self.links.start_ingestion().map_err(StoreError::from)?;
        {
            let mut write =
                |key: &[u8], record: &[u8]| ingestion.write(key, record).map_err(StoreError::from);
            feed(&mut write)?;
        }
        ingestion.finish().map_err(StoreError::from)?;
        Ok(())
    }

    /// Writes a bulk load's domains and version and removes its marker, in
    /// one batch.
    fn finish_bulk_load(&self, domains: &[Change], last_applied: u64) -> Result<(), StoreError> {
        let mut batch = self.changes_batch(domains, last_applied);
        batch.remove(&self.meta, BULK_LOAD);
        batch.commit()?;
        self.persist()
    }

    /// Finishes or forgets a bulk load a crash interrupted (see
    /// [`LinkStore::ingest_links`]): links in the store mean its tables were
    /// registered, so its domains and version are written; none mean they
    /// were not, and the store is as it was before the load.
    fn recover_bulk_load(&self) -> Result<(), StoreError> {
        let Some(marker) = self.meta.get(BULK_LOAD)? else {
            return Ok(());
        };
        if self.links.is_empty()? {
            tracing::warn!("an interrupted bulk import wrote no links; the store is as before it");
            self.meta.remove(BULK_LOAD)?;
            return self.persist();
        }
        let (version, mut rest) = marker.split_first_chunk::<8>().ok_or(CodecError::Empty)?;
        let last_applied = u64::from_be_bytes(*version);
        let mut domains = Vec::new();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_be_bytes(*len) as usize;
            let change = tail.get(..len).ok_or(CodecError::Empty)?;
            domains.push(codec::decode_change(change)?);
            rest = &tail[len..];
        }
        tracing::warn!(
            last_applied,
            "finishing a bulk import interrupted after its links were written"
        );
        self.finish_bulk_load(&domains, last_applied)
    }

    /// One stored record.
    pub fn get(&self, key: &LinkKey) -> Result<Option<LinkRecord>, StoreError> {
        match self.links.get(key.storage_key())? {
            Some(bytes) => Ok(Some(codec::decode_record(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Approximate number of stored links (for pre-sizing and progress).
    pub fn approximate_len(&self) -> usize {
        self.links.approximate_len()
    }

    /// Visits every stored record in key order. Corrupt records are passed as
    /// errors so the caller decides; iteration goes on after them.
    pub fn for_each_record(
        &self,
        mut visit: impl FnMut(Result<LinkRecord, StoreError>),
    ) -> Result<(), StoreError> {
        for item in self.links.iter() {
            let (_, value) = item.into_inner()?;
            visit(codec::decode_record(&value).map_err(StoreError::from));
        }
        Ok(())
    }

    /// Every stored domain's settings; unreadable ones are passed as errors.
    pub fn domain_settings(&self) -> Result<Vec<Result<DomainSettings, StoreError>>, StoreError> {
        let mut out = Vec::new();
        for item in self.domains.iter() {
            let (_, value) = item.into_inner()?;
            out.push(codec::decode_domain(&value).map_err(StoreError::from));
        }
        Ok(out)
    }

    /// Every stored TLS change (certificates and challenge answers in
    /// force); unreadable ones are passed as errors.
    pub fn tls_changes(&self) -> Result<Vec<Result<TlsChange, StoreError>>, StoreError> {
        let mut out = Vec::new();
        for item in self.tls.iter() {
            let (_, value) = item.into_inner()?;
            out.push(codec::decode_tls(&value).map_err(StoreError::from));
        }
        Ok(out)
    }

    /// Writes the uses taken of limited links in one atomic batch and syncs
    /// it to disk (fsync) before returning.
    pub fn write_clicks_used(&self, counts: &[(LinkId, u64)]) -> Result<(), StoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        for (link, used) in counts {
            batch.insert(&self.clicks_used, link.to_be_bytes(), used.to_be_bytes());
        }
        batch.commit()?;
        Ok(())
    }

    /// Visits every link's uses taken; `None` for a count that cannot be
    /// read (the caller decides; entries with an unreadable key are skipped).
    pub fn for_each_clicks_used(
        &self,
        mut visit: impl FnMut(LinkId, Option<u64>),
    ) -> Result<(), StoreError> {
        for item in self.clicks_used.iter() {
            let (key, value) = item.into_inner()?;
            let Ok(link) = <[u8; 8]>::try_from(&*key) else {
                tracing::warn!(key = ?&*key, "skipping a click-limit count with an unreadable key");
                continue;
            };
            let used = <[u8; 8]>::try_from(&*value).ok().map(u64::from_be_bytes);
            visit(u64::from_be_bytes(link), used);
        }
        Ok(())
    }

    /// Writes the in-memory part of the store (memtables) to table files and
    /// syncs, so the next open does not replay the journal: after a bulk
    /// import and at shutdown, this keeps start-up time to reading tables.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.links.rotate_memtable_and_wait()?;
        self.meta.rotate_memtable_and_wait()?;
        self.clicks_used.rotate_memtable_and_wait()?;
        self.domains.rotate_memtable_and_wait()?;
        self.tls.rotate_memtable_and_wait()?;
        self.persist()
    }

    /// Flushes written batches to disk (fsync).
    pub fn persist(&self) -> Result<(), StoreError> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

/// Writes one link of an ingestion ([`LinkStore::ingest_links`]).
pub type LinkWriter<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), StoreError> + 'a;

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::RedirectStatus;

    fn domain_change(version: u64) -> Change {
        Change {
            version,
            op: ChangeOp::Domain {
                settings: DomainSettings {
                    domain: "bulk.example".into(),
                    root_url: Some("https://example.com/home".into()),
                    not_found_url: None,
                    default_status: RedirectStatus::Found,
                    updated_at: 1,
                    ..DomainSettings::empty("bulk.example")
                },
            },
        }
    }

    /// Writes the marker and the tables of a two-link load with a domain
    /// change (versions 1-3), then stops as a crash before the final batch.
    fn interrupted_load(dir: &Path, write_links: bool) {
        let store = LinkStore::open(dir).unwrap();
        store.write_bulk_marker(&[domain_change(3)], 3).unwrap();
        if write_links {
            let mut links: Vec<_> = (1..=2)
                .map(|v| {
                    let link = LinkRecord::new(
                        v,
                        "bulk.example",
                        &format!("c{v}"),
                        "https://example.com/x",
                        v as i64,
                    )
                    .unwrap();
                    (link.key().storage_key(), codec::encode_record(&link))
                })
                .collect();
            links.sort();
            store
                .ingest_tables(|write| {
                    for (key, record) in &links {
                        write(key, record)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .unwrap();
        }
    }

    #[test]
    fn a_load_whose_tables_were_registered_is_finished_on_open() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_load(dir.path(), true);
        let store = LinkStore::open(dir.path()).unwrap();
        assert_eq!(store.last_applied().unwrap(), 3);
        let domains = store.domain_settings().unwrap();
        assert_eq!(domains.len(), 1);
        assert_eq!(
            domains[0].as_ref().unwrap().root_url.as_deref(),
            Some("https://example.com/home")
        );
        let mut count = 0;
        store.for_each_record(|_| count += 1).unwrap();
        assert_eq!(count, 2);
        assert!(store.meta.get(BULK_LOAD).unwrap().is_none());
    }

    #[test]
    fn a_load_without_registered_tables_is_forgotten_on_open() {
        let dir = tempfile::tempdir().unwrap();
        interrupted_load(dir.path(), false);
        let store = LinkStore::open(dir.path()).unwrap();
        assert_eq!(store.last_applied().unwrap(), 0);
        assert!(store.domain_settings().unwrap().is_empty());
        assert!(store.has_no_links().unwrap());
        assert!(store.meta.get(BULK_LOAD).unwrap().is_none());
    }
}
