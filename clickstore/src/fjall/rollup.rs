//! Rolling finished windows up into minute, hour and day segments (and hour
//! and day rows keyed by link), finest first.

use super::*;

impl FjallSink {
    /// Rolls up every dirty bucket that ended at least [`ROLL_UP_DELAY`]
    /// before `now`, finest first; returns how many it rolled up.
    pub fn roll_up(&self, now: UnixMillis) -> Result<usize, SinkError> {
        let delay = ROLL_UP_DELAY.as_millis() as i64;
        let mut rolled = 0;
        for level in [Level::Minute, Level::Hour, Level::Day] {
            let due: Vec<(UnixMillis, u64)> = self
                .dirty()
                .range((level, i64::MIN)..=(level, i64::MAX))
                .map(|(&(_, bucket), &mark)| (bucket, mark))
                .filter(|&(bucket, _)| bucket.saturating_add(level.millis() + delay) <= now)
                .collect();
            for (bucket, mark) in due {
                let end = bucket + level.millis();
                let finer = level.finer();
                // Windows are never dirty.
                if self
                    .dirty()
                    .range((finer, bucket)..(finer, end))
                    .next()
                    .is_some()
                {
                    continue; // rolled once its parts are
                }
                self.roll_up_bucket(level, bucket)?;
                self.clear_mark(level, bucket, mark)?;
                rolled += 1;
            }
        }
        Ok(rolled)
    }

    /// Rebuilds the segments (and by-link rows) of one bucket from the
    /// segments of the finer level. The bucket is dirty meanwhile, so reads
    /// do not look at what is half rewritten.
    pub(super) fn roll_up_bucket(&self, level: Level, bucket: UnixMillis) -> Result<(), SinkError> {
        let finer = level.finer();
        let mut sources: BTreeMap<Vec<u8>, Vec<UnixMillis>> = BTreeMap::new();
        for (at, source) in self.segments_in(finer, bucket, bucket + level.millis())? {
            sources.entry(source).or_default().push(at);
        }
        let mut batches = Batches::new(&self.db);
        self.remove_segments(&mut batches, level, bucket)?;
        for (source, parts) in sources {
            let mut rows = 0u64;
            for dimension in Dimension::ALL {
                let streams = parts
                    .iter()
                    .map(|&at| {
                        PartStream::new(
                            self.segments(finer)
                                .prefix(part_prefix(at, &source, dimension)),
                        )
                    })
                    .collect();
                let mut writer = ChunkWriter::default();
                segment::merge(streams, |row| {
                    rows += 1;
                    if let Some((last, bytes)) =
                        writer.push(row.link, row.bot, &row.value, row.count)
                    {
                        let key = chunk_key(bucket, &source, dimension, last);
                        batches.insert(self.segments(level), key, bytes)?;
                    }
                    if let Some(by_link) = self.by_link(level) {
                        let key =
                            row_key(row.link, dimension, bucket, row.bot, &source, &row.value);
                        batches.insert(by_link, key, row.count.to_be_bytes().to_vec())?;
                    }
                    Ok(())
                })?;
                if let Some((last, bytes)) = writer.finish() {
                    let key = chunk_key(bucket, &source, dimension, last);
                    batches.insert(self.segments(level), key, bytes)?;
                }
            }
            let key = manifest_key(level, bucket, &source);
            batches.insert(&self.manifest, key, rows.to_be_bytes().to_vec())?;
        }
        batches.commit()
    }

    /// Clears a bucket's dirty mark unless a write marked it again.
    pub(super) fn clear_mark(
        &self,
        level: Level,
        bucket: UnixMillis,
        mark: u64,
    ) -> Result<(), SinkError> {
        let _commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        if self.dirty().get(&(level, bucket)) != Some(&mark) {
            return Ok(());
        }
        self.dirty_marks
            .remove(bucket_key(level, bucket))
            .map_err(failed)?;
        let mut dirty = self.dirty.write().unwrap_or_else(PoisonError::into_inner);
        dirty.remove(&(level, bucket));
        Ok(())
    }
}
