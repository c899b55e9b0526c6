//! Change intake: the one function through which every change reaches an
//! engine (the control plane's subscriber, the import command, tests). It
//! applies versioned changes in order, skips versions already applied, refuses
//! gaps, writes the store first and the in-memory table second.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use ricochet_model::{Change, ChangeOp, ValidationError};
use thiserror::Error;

use crate::stats::EngineStats;
use crate::store::{LinkStore, StoreError};
use crate::table::LinkTable;

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
        stats.last_applied_version.store(last, Ordering::Release);
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
            }
        }
        *last = new_last;
        self.stats
            .last_applied_version
            .store(new_last, Ordering::Release);
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
