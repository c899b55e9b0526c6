//! Segments: the rows of one (level, bucket, node, shard) for one dimension,
//! in (link, bot, value) order, stored as chunks of a few KiB each keyed by
//! the chunk's last link. A window is written as a handful of large values
//! instead of one key per row, and a rollup is a streaming merge of the
//! finer segments.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use fjall::Slice;
use ricochet_model::LinkId;

use super::failed;
use crate::contract::SinkError;

/// Encoded bytes after which a chunk ends (at the next link).
pub const CHUNK_BYTES: usize = 4096;

/// One row of a segment, owned (merges reuse its buffer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub link: LinkId,
    pub bot: bool,
    pub value: Vec<u8>,
    pub count: u64,
}

impl Entry {
    fn same_key(&self, other: &Entry) -> bool {
        self.link == other.link && self.bot == other.bot && self.value == other.value
    }

    fn order(&self, other: &Entry) -> Ordering {
        (self.link, self.bot, &self.value).cmp(&(other.link, other.bot, &other.value))
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// A finished chunk: the last link it holds and its bytes.
pub type Chunk = (LinkId, Vec<u8>);

/// Encodes rows given in (link, bot, value) order into chunks. A link's rows
/// never span two chunks, so a reader finds them all in the one chunk whose
/// key is the first at or after the link.
#[derive(Debug, Default)]
pub struct ChunkWriter {
    bytes: Vec<u8>,
    last_link: Option<LinkId>,
}

impl ChunkWriter {
    /// Adds a row; returns the chunk it closed, if any.
    pub fn push(&mut self, link: LinkId, bot: bool, value: &[u8], count: u64) -> Option<Chunk> {
        let mut closed = None;
        if self.last_link.is_some_and(|last| last != link) && self.bytes.len() >= CHUNK_BYTES {
            closed = self.finish();
        }
        let previous = self.last_link.unwrap_or(0);
        put_varint(&mut self.bytes, link.wrapping_sub(previous));
        self.bytes.push(bot as u8);
        put_varint(&mut self.bytes, value.len() as u64);
        self.bytes.extend_from_slice(value);
        put_varint(&mut self.bytes, count);
        self.last_link = Some(link);
        closed
    }

    /// Closes the chunk being written, if it holds anything.
    pub fn finish(&mut self) -> Option<Chunk> {
        let last = self.last_link.take()?;
        Some((last, std::mem::take(&mut self.bytes)))
    }
}

/// A row read from a chunk, borrowing its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'c> {
    pub link: LinkId,
    pub bot: bool,
    pub value: &'c [u8],
    pub count: u64,
}

/// The rows of one chunk in order. A malformed chunk ends early.
#[derive(Debug)]
pub struct ChunkReader<'c> {
    bytes: &'c [u8],
    pos: usize,
    link: LinkId,
}

impl<'c> ChunkReader<'c> {
    pub fn new(bytes: &'c [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            link: 0,
        }
    }

    fn read(&mut self) -> Option<EntryRef<'c>> {
        let delta = get_varint(self.bytes, &mut self.pos)?;
        let bot = *self.bytes.get(self.pos)? == 1;
        self.pos += 1;
        let len = usize::try_from(get_varint(self.bytes, &mut self.pos)?).ok()?;
        let value = self.bytes.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        let count = get_varint(self.bytes, &mut self.pos)?;
        self.link = self.link.wrapping_add(delta);
        Some(EntryRef {
            link: self.link,
            bot,
            value,
            count,
        })
    }
}

impl<'c> Iterator for ChunkReader<'c> {
    type Item = EntryRef<'c>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let entry = self.read();
        if entry.is_none() {
            self.pos = self.bytes.len();
        }
        entry
    }
}

/// The rows of a run of chunks (one segment's dimension), in order.
pub struct PartStream {
    chunks: fjall::Iter,
    current: Slice,
    pos: usize,
    link: LinkId,
}

impl PartStream {
    pub fn new(chunks: fjall::Iter) -> Self {
        Self {
            chunks,
            current: Slice::from(&[][..]),
            pos: 0,
            link: 0,
        }
    }

    /// Reads the next row into `entry`; false at the end.
    pub fn next_into(&mut self, entry: &mut Entry) -> Result<bool, fjall::Error> {
        loop {
            if self.pos < self.current.len() {
                let mut reader = ChunkReader {
                    bytes: &self.current,
                    pos: self.pos,
                    link: self.link,
                };
                if let Some(row) = reader.next() {
                    entry.link = row.link;
                    entry.bot = row.bot;
                    entry.value.clear();
                    entry.value.extend_from_slice(row.value);
                    entry.count = row.count;
                    (self.pos, self.link) = (reader.pos, reader.link);
                    return Ok(true);
                }
                self.pos = self.current.len();
            }
            let Some(item) = self.chunks.next() else {
                return Ok(false);
            };
            let (_, value) = item.into_inner()?;
            (self.current, self.pos, self.link) = (value, 0, 0);
        }
    }
}

/// A stream's current row in the merge heap (smallest first).
struct Head {
    entry: Entry,
    stream: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .entry
            .order(&self.entry)
            .then(other.stream.cmp(&self.stream))
    }
}

/// Merges streams (each in order) into one, summing the counts of equal
/// rows, and hands each merged row to `out` in order.
pub fn merge(
    mut streams: Vec<PartStream>,
    mut out: impl FnMut(&Entry) -> Result<(), SinkError>,
) -> Result<(), SinkError> {
    let mut heap = BinaryHeap::with_capacity(streams.len());
    for (stream, part) in streams.iter_mut().enumerate() {
        let mut entry = Entry::default();
        if part.next_into(&mut entry).map_err(failed)? {
            heap.push(Head { entry, stream });
        }
    }
    // The row being summed; `started` once it holds one.
    let mut current = Entry::default();
    let mut started = false;
    while let Some(mut head) = heap.pop() {
        if started && current.same_key(&head.entry) {
            current.count += head.entry.count;
        } else {
            if started {
                out(&current)?;
            }
            // The stream reads its next row into the buffer `current` held.
            std::mem::swap(&mut current, &mut head.entry);
            started = true;
        }
        if streams[head.stream]
            .next_into(&mut head.entry)
            .map_err(failed)?
        {
            heap.push(head);
        }
    }
    if started {
        out(&current)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(bytes: &[u8]) -> Vec<(LinkId, bool, String, u64)> {
        ChunkReader::new(bytes)
            .map(|e| {
                (
                    e.link,
                    e.bot,
                    String::from_utf8_lossy(e.value).into_owned(),
                    e.count,
                )
            })
            .collect()
    }

    #[test]
    fn chunks_round_trip_and_never_split_a_link() {
        let mut writer = ChunkWriter::default();
        let mut chunks = Vec::new();
        let mut expected = Vec::new();
        for link in [1u64, 2, 300, 70_000, u64::MAX - 1] {
            for (bot, value) in [(false, "DE"), (false, "FR"), (true, "")] {
                // Values long enough to close several chunks.
                let value = value.repeat(1500);
                let count = link % 1000 + 1;
                chunks.extend(writer.push(link, bot, value.as_bytes(), count));
                expected.push((link, bot, value, count));
            }
        }
        chunks.extend(writer.finish());
        assert!(chunks.len() > 1, "long values close chunks");
        let mut read = Vec::new();
        for (last, bytes) in &chunks {
            let rows = rows(bytes);
            assert!(
                rows.iter().all(|r| r.0 == rows[0].0),
                "a link per chunk here"
            );
            assert_eq!(rows.last().unwrap().0, *last, "keyed by the last link");
            read.extend(rows);
        }
        assert_eq!(read, expected);
    }

    #[test]
    fn malformed_chunks_end_early_without_panicking() {
        let mut writer = ChunkWriter::default();
        writer.push(5, false, b"value", 3);
        writer.push(6, true, b"other", 4);
        let (_, bytes) = writer.finish().unwrap();
        for cut in 0..bytes.len() {
            let read = rows(&bytes[..cut]);
            assert!(read.len() < 2, "a cut chunk yields fewer rows");
        }
        assert!(rows(&[0xff; 12]).is_empty());
        assert_eq!(rows(&bytes).len(), 2);
    }
}
