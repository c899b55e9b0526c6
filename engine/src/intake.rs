//! Change intake: the one function through which every change reaches an
//! engine (the control plane's subscriber, the import command, tests). It
//! applies versioned changes in order, skips versions already applied, refuses
//! gaps, writes the store first and the in-memory table second.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ricochet_model::tls::TlsChange;
use ricochet_model::{Change, ChangeOp, ValidationError};
use thiserror::Error;

use crate::stats::EngineStats;
use crate::store::{LinkStore, LinkWriter, StoreError};
use crate::table::LinkTable;
use crate::tls::CompiledTls;

#[derive(Debug, Error)]
pub enum IntakeError {
    #[error(
        "change versions must follow the last applied version {last_applied} without gaps; got {got}"
    )]
    Gap { last_applied: u64, got: u64 },
    #[error("change {version} holds an invalid link: {error}")]
    Invalid {
        version: u64,
        error: ValidationError,
    },
    #[error("a bulk load needs a store without links")]
    NotEmpty,
    #[error("cannot use the import's temporary files: {0}")]
    Spill(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one call to [`ChangeIntake::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    pub applied: usize,
    /// Changes at or below the last applied version (duplicates).
    pub skipped: usize,
    pub last_applied: u64,
}

/// Applies changes to the store and the table.
#[derive(Debug)]
pub struct ChangeIntake {
    store: LinkStore,
    table: Arc<LinkTable>,
    stats: Arc<EngineStats>,
    /// Serializes writers; readers never take it.
    writer: Mutex<u64>,
}

impl ChangeIntake {
    pub fn new(
        store: LinkStore,
        table: Arc<LinkTable>,
        stats: Arc<EngineStats>,
    ) -> Result<Self, StoreError> {
        let last = store.last_applied()?;
        stats.applied_up_to(last);
        Ok(Self {
            store,
            table,
            stats,
            writer: Mutex::new(last),
        })
    }

    /// The version of the last change applied.
    pub fn last_applied(&self) -> u64 {
        *self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn table(&self) -> &Arc<LinkTable> {
        &self.table
    }

    pub fn store(&self) -> &LinkStore {
        &self.store
    }

    /// Applies `changes` (ascending versions) atomically: either every new
    /// change is written and visible, or none is. Versions at or below the last
    /// applied one are skipped; the first new version must be the next one and
    /// the rest must follow without gaps.
    pub fn apply(&self, changes: &[Change]) -> Result<Applied, IntakeError> {
        let mut last = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let fresh_from = changes
            .iter()
            .position(|c| c.version > *last)
            .unwrap_or(changes.len());
        let (duplicates, fresh) = changes.split_at(fresh_from);
        let skipped = duplicates.len();
        let mut expected = *last + 1;
        // Certificates are parsed once, here, and applied as parsed.
        let mut tls = Vec::new();
        for change in fresh {
            if change.version != expected {
                return Err(IntakeError::Gap {
                    last_applied: expected - 1,
                    got: change.version,
                });
            }
            let valid = match &change.op {
                ChangeOp::Upsert { link } => link.validate(),
                ChangeOp::Domain { settings } => settings.validate(),
                ChangeOp::Tls { change } => CompiledTls::compile(change).map(|c| tls.push(c)),
                ChangeOp::Purge { .. } => Ok(()),
            };
            valid.map_err(|error| IntakeError::Invalid {
                version: change.version,
                error,
            })?;
            expected += 1;
        }
        if fresh.is_empty() {
            self.stats
                .changes_skipped
                .fetch_add(skipped as u64, Ordering::Relaxed);
            return Ok(Applied {
                applied: 0,
                skipped,
                last_applied: *last,
            });
        }
        let new_last = expected - 1;
        self.store.write_changes(fresh, new_last)?;
        for change in fresh {
            match &change.op {
                ChangeOp::Upsert { link } => self.table.upsert(link),
                ChangeOp::Purge { key } => self.table.remove(key),
                ChangeOp::Domain { settings } => self.table.set_domain(settings),
                // Applied together below: one swap for the batch.
                ChangeOp::Tls { .. } => {}
            }
        }
        self.table.tls().apply(tls);
        *last = new_last;
        self.stats.applied_up_to(new_last);
        self.stats
            .changes_applied
            .fetch_add(fresh.len() as u64, Ordering::Relaxed);
        self.stats
            .changes_skipped
            .fetch_add(skipped as u64, Ordering::Relaxed);
        Ok(Applied {
            applied: fresh.len(),
            skipped,
            last_applied: new_last,
        })
    }
}

/// A link's storage key followed by its encoded record, in one allocation.
#[derive(Debug)]
pub struct KeyedRecord {
    bytes: Box<[u8]>,
    key_len: u32,
}

impl KeyedRecord {
    pub fn new(key: &[u8], record: &[u8]) -> Self {
        let mut bytes = Vec::with_capacity(key.len() + record.len());
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(record);
        Self {
            bytes: bytes.into_boxed_slice(),
            key_len: key.len() as u32,
        }
    }

    /// `bytes` holding the key's `key_len` bytes then the record.
    pub fn from_bytes(bytes: Box<[u8]>, key_len: usize) -> Self {
        Self {
            bytes,
            key_len: key_len as u32,
        }
    }

    pub fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len as usize]
    }

    pub fn record(&self) -> &[u8] {
        &self.bytes[self.key_len as usize..]
    }
}

/// A bulk load for [`ChangeIntake::ingest`]: domain settings and the
/// versions the load's changes were given (its links come from a feed).
#[derive(Debug, Default)]
pub struct BulkLoad {
    /// Domain-settings changes, ascending versions.
    pub domains: Vec<Change>,
    /// The first and last versions the load's changes were given; every
    /// version between belongs to the load (a link written more than once
    /// keeps only its last version).
    pub first_version: u64,
    pub last_version: u64,
    /// Whether to put the links in the table too (false when the table
    /// serves nothing, as in the import command).
    pub fill_table: bool,
}

/// Where a bulk load's feed writes its links, in ascending key order.
pub struct LinkFeed<'a, 'w> {
    write: &'a mut LinkWriter<'w>,
    /// Kept for the table when the load fills it.
    kept: Option<Vec<KeyedRecord>>,
    written: usize,
}

impl LinkFeed<'_, '_> {
    pub fn push(&mut self, link: KeyedRecord) -> Result<(), IntakeError> {
        (self.write)(link.key(), link.record())?;
        self.written += 1;
        if let Some(kept) = &mut self.kept {
            kept.push(link);
        }
        Ok(())
    }
}

impl ChangeIntake {
    /// Writes a bulk load into a store that holds no link: the links `feed`
    /// pushes as sorted tables through the store's ingestion (no journal,
    /// memtable or compaction work a link), then domain settings and the new
    /// last applied version in one batch, then the table (links only when
    /// the load asks). Nothing is written if `feed` fails. Records must have
    /// been validated by the caller; the first version must follow the last
    /// applied one.
    pub fn ingest(
        &self,
        load: BulkLoad,
        feed: impl FnOnce(&mut LinkFeed<'_, '_>) -> Result<(), IntakeError>,
    ) -> Result<Applied, IntakeError> {
        let mut last = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if load.first_version != *last + 1 || load.last_version < *last {
            return Err(IntakeError::Gap {
                last_applied: *last,
                got: load.first_version,
            });
        }
        if !self.store.has_no_links()? {
            return Err(IntakeError::NotEmpty);
        }
        let mut tls = Vec::new();
        for change in &load.domains {
            let valid = match &change.op {
                ChangeOp::Domain { settings } => settings.validate(),
                ChangeOp::Tls { change } => CompiledTls::compile(change).map(|c| tls.push(c)),
                _ => Ok(()),
            };
            valid.map_err(|error| IntakeError::Invalid {
                version: change.version,
                error,
            })?;
        }
        let mut kept = load.fill_table.then(Vec::new);
        let mut written = 0;
        self.store
            .ingest_links(&load.domains, load.last_version, |write| {
                let mut sink = LinkFeed {
                    write,
                    kept: kept.take(),
                    written: 0,
                };
                let fed = feed(&mut sink);
                kept = sink.kept;
                written = sink.written;
                fed
            })?;
        let applied = written + load.domains.len();
        let links = kept.unwrap_or_default();
        self.table.reserve(links.len());
        for link in links {
            match ricochet_model::codec::decode_record(link.record()) {
                Ok(record) => self.table.upsert(&record),
                // Encoded by the caller a moment ago: cannot happen.
                Err(error) => tracing::error!(%error, "skipping an undecodable ingested link"),
            }
        }
        for change in &load.domains {
            if let ChangeOp::Domain { settings } = &change.op {
                self.table.set_domain(settings);
            }
        }
        self.table.tls().apply(tls);
        *last = load.last_version;
        self.stats.applied_up_to(load.last_version);
        self.stats
            .changes_applied
            .fetch_add(applied as u64, Ordering::Relaxed);
        Ok(Applied {
            applied,
            skipped: 0,
            last_applied: load.last_version,
        })
    }
}

/// What loading the table from the store found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loaded {
    pub links: u64,
    /// Records that could not be decoded or validated; skipped and logged.
    pub errors: u64,
    pub last_applied: u64,
}

impl ChangeIntake {
    /// Fills the table from the store. Holds the writer lock, so changes that
    /// arrive meanwhile wait and are applied on top of the loaded table.
    pub fn load_table(&self) -> Result<Loaded, StoreError> {
        let last = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        self.table.reserve(self.store.approximate_len());
        let mut loaded = Loaded {
            last_applied: *last,
            ..Loaded::default()
        };
        self.store.for_each_record(|record| {
            match record {
                // Records were validated when applied; on load, only re-check
                // what keeps a response header safe (a full URL parse per link
                // would dominate start-up time).
                Ok(record) => match header_safe(&record) {
                    Ok(()) => {
                        self.table.upsert(&record);
                        loaded.links += 1;
                    }
                    Err(error) => {
                        tracing::warn!(domain = %record.domain, code = %record.code, %error, "skipping invalid stored link");
                        loaded.errors += 1;
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "skipping unreadable stored link");
                    loaded.errors += 1;
                }
            }
        })?;
        let stored: Vec<TlsChange> = self
            .store
            .tls_changes()?
            .into_iter()
            .filter_map(|change| {
                change
                    .inspect_err(|error| {
                        tracing::warn!(%error, "skipping an unreadable stored certificate or challenge");
                        loaded.errors += 1;
                    })
                    .ok()
            })
            .collect();
        let mut tls = Vec::with_capacity(stored.len());
        for compiled in compile_in_parallel(&stored) {
            match compiled {
                Ok(compiled) => tls.push(compiled),
                Err(error) => {
                    tracing::warn!(%error, "skipping an invalid stored certificate or challenge");
                    loaded.errors += 1;
                }
            }
        }
        self.table.tls().apply(tls);
        for settings in self.store.domain_settings()? {
            match settings.map(|s| s.validate().map(|()| s)) {
                Ok(Ok(settings)) => self.table.set_domain(&settings),
                Ok(Err(error)) => {
                    tracing::warn!(%error, "skipping invalid stored domain settings");
                    loaded.errors += 1;
                }
                Err(error) => {
                    tracing::warn!(%error, "skipping unreadable stored domain settings");
                    loaded.errors += 1;
                }
            }
        }
        self.stats
            .loaded_links
            .store(loaded.links, Ordering::Relaxed);
        self.stats
            .load_errors
            .store(loaded.errors, Ordering::Relaxed);
        Ok(loaded)
    }
}

fn header_safe(record: &ricochet_model::LinkRecord) -> Result<(), ValidationError> {
    ricochet_model::validate_code(&record.code)?;
    let url = record.url.as_bytes();
    if url.is_empty() || url.len() > ricochet_model::validate::MAX_URL_LEN {
        return Err(ValidationError::DestinationTooLong);
    }
    if !url.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ValidationError::DestinationControlCharacter);
    }
    Ok(())
}

/// Compiles stored certificates on every core (parsing a key and checking
/// it against its certificate is most of an engine's start-up with
/// thousands of them), in their order.
fn compile_in_parallel(changes: &[TlsChange]) -> Vec<Result<CompiledTls<'_>, ValidationError>> {
    const MIN_CHUNK: usize = 256;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = changes.len().div_ceil(threads).max(MIN_CHUNK);
    if changes.len() <= chunk {
        return changes.iter().map(CompiledTls::compile).collect();
    }
    std::thread::scope(|scope| {
        let parts: Vec<_> = changes
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || part.iter().map(CompiledTls::compile).collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|part| {
                part.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
