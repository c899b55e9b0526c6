//! Removing rows past each level's retention.

use super::*;

impl FjallSink {
    /// Removes every segment of `level` at `at`.
    pub(super) fn remove_segments(
        &self,
        batches: &mut Batches<'_>,
        level: Level,
        at: UnixMillis,
    ) -> Result<(), SinkError> {
        for item in self.segments(level).prefix(sortable(at)) {
            batches.remove(self.segments(level), item.key().map_err(failed)?)?;
        }
        for item in self.manifest.prefix(bucket_key(level, at)) {
            batches.remove(&self.manifest, item.key().map_err(failed)?)?;
        }
        Ok(())
    }

    /// Deletes rows older than each level's retention; returns how many.
    pub fn prune(&self, retention: &Retention, now: UnixMillis) -> Result<u64, SinkError> {
        let mut removed = 0;
        let mut batches = Batches::new(&self.db);
        for level in Level::ALL {
            let Some(keep) = retention.of(level) else {
                continue;
            };
            let cutoff = now.saturating_sub(keep.as_millis() as i64);
            // Segments and their manifest are keyed by time first.
            for item in self.segments(level).range(..sortable(cutoff)) {
                batches.remove(self.segments(level), item.key().map_err(failed)?)?;
                removed += 1;
            }
            for item in self
                .manifest
                .range(bucket_key(level, i64::MIN)..bucket_key(level, cutoff))
            {
                batches.remove(&self.manifest, item.key().map_err(failed)?)?;
            }
            // By-link rows: keyed by link first, so every row is looked at.
            if let Some(rows) = self.by_link(level) {
                for item in rows.iter() {
                    let key = item.key().map_err(failed)?;
                    if parse_row_key(&key).is_some_and(|row| row.at < cutoff) {
                        batches.remove(rows, key)?;
                        removed += 1;
                    }
                }
            }
        }
        batches.commit()?;
        Ok(removed)
    }
}
