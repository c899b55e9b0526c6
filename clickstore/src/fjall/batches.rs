//! Bounded write batches for rollups and pruning.

use super::*;

/// Collects the rows of one write or rollup into batches of bounded size.
pub(super) struct Batches<'s> {
    db: &'s Database,
    batch: OwnedWriteBatch,
    keys: usize,
}

impl<'s> Batches<'s> {
    pub(super) fn new(db: &'s Database) -> Self {
        Self {
            db,
            batch: db.batch(),
            keys: 0,
        }
    }

    pub(super) fn insert(
        &mut self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<(), SinkError> {
        self.batch.insert(keyspace, key, value);
        self.step()
    }

    pub(super) fn remove(
        &mut self,
        keyspace: &Keyspace,
        key: fjall::UserKey,
    ) -> Result<(), SinkError> {
        self.batch.remove(keyspace, key);
        self.step()
    }

    pub(super) fn step(&mut self) -> Result<(), SinkError> {
        self.keys += 1;
        if self.keys >= KEYS_PER_COMMIT {
            self.commit()?;
        }
        Ok(())
    }

    pub(super) fn commit(&mut self) -> Result<(), SinkError> {
        let batch = std::mem::replace(&mut self.batch, self.db.batch());
        self.keys = 0;
        batch.commit().map_err(failed)
    }
}
