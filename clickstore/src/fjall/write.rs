//! Writing a closed window: its segment replaces any earlier copy and marks
//! its minute, hour and day dirty, in one atomic batch.

use super::*;

/// The rows of one dimension of a batch, in (link, bot, value) order, the
/// last of equal rows standing for them.
fn sorted_rows(rows: Vec<&WindowRow>) -> Vec<&WindowRow> {
    fn key(row: &WindowRow) -> (LinkId, bool, &[u8]) {
        (row.link_id, row.bot, row.value.as_bytes())
    }
    let mut rows = rows;
    if !rows.is_sorted_by(|a, b| key(a) <= key(b)) {
        rows.sort_by(|a, b| key(a).cmp(&key(b)));
    }
    let mut unique: Vec<&WindowRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match unique.last_mut() {
            Some(last) if key(last) == key(row) => *last = row,
            _ => unique.push(row),
        }
    }
    unique
}

impl ClickSink for FjallSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        let at = batch.window_start;
        let source = source_bytes(&batch.node, batch.shard);
        // Encoded before taking the lock: the slow part of a big window.
        let mut by_dimension: Vec<Vec<&WindowRow>> = vec![Vec::new(); Dimension::ALL.len()];
        for row in &batch.rows {
            by_dimension[row.dimension as usize].push(row);
        }
        let mut chunks = Vec::new();
        let mut rows = 0u64;
        for (dimension, dimension_rows) in Dimension::ALL.into_iter().zip(by_dimension) {
            let mut writer = ChunkWriter::default();
            for row in sorted_rows(dimension_rows) {
                rows += 1;
                chunks.extend(
                    writer
                        .push(row.link_id, row.bot, row.value.as_bytes(), row.count)
                        .map(|chunk| (dimension, chunk)),
                );
            }
            chunks.extend(writer.finish().map(|chunk| (dimension, chunk)));
        }

        let _commit = self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        // One atomic batch: the window replaces its earlier segment, and the
        // buckets it rolls up into are marked.
        let mut write = self.db.batch();
        for item in self
            .segments(Level::Window)
            .prefix(segment_prefix(at, &source))
        {
            write.remove(self.segments(Level::Window), item.key().map_err(failed)?);
        }
        for (dimension, (last, bytes)) in chunks {
            write.insert(
                self.segments(Level::Window),
                chunk_key(at, &source, dimension, last),
                bytes,
            );
        }
        write.insert(
            &self.manifest,
            manifest_key(Level::Window, at, &source),
            rows.to_be_bytes(),
        );
        let mut marks = Vec::with_capacity(3);
        for level in [Level::Minute, Level::Hour, Level::Day] {
            let mark = self.next_mark.fetch_add(1, Ordering::Relaxed);
            let bucket = level.floor(at);
            write.insert(
                &self.dirty_marks,
                bucket_key(level, bucket),
                mark.to_be_bytes(),
            );
            marks.push(((level, bucket), mark));
        }
        write.commit().map_err(failed)?;
        let mut dirty = self.dirty.write().unwrap_or_else(PoisonError::into_inner);
        dirty.extend(marks);
        Ok(())
    }
}
