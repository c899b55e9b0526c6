//! The rows of a bulk load in key order, in bounded memory: rows are
//! gathered in chunks; a full chunk is sorted and written to a temporary file
//! (a run) on a thread of its own while the next chunk fills; at the end the
//! runs are merged. Each chunk stays small enough to
//! sort in the CPU caches and the process's memory does not grow with the
//! file, so the time per row is the same for 1M rows as for 10M. A load
//! that fits in one chunk is sorted in memory and never touches a file.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use ricochet_model::link::sort_by_storage_key;

use crate::intake::KeyedRecord;

/// Rows a chunk holds before it is sorted and spilled (about 40 MB).
const CHUNK_ROWS: usize = 262_144;
/// Buffer of each run's reader and writer.
const RUN_BUFFER: usize = 256 * 1024;

/// One link of a bulk load (about 130 bytes with a 60-byte URL).
pub(super) struct BulkRow {
    pub entry: KeyedRecord,
    /// Whether the row gave its `created_at` (a repeated key otherwise keeps
    /// the first row's).
    pub created_at_given: bool,
}

impl BulkRow {
    pub fn key(&self) -> &[u8] {
        self.entry.key()
    }
}

/// Rows gathered so far.
pub(super) struct Runs {
    /// Where run files are created (the store's directory: same disk, and
    /// not a memory-backed `/tmp`). They are deleted when closed.
    dir: PathBuf,
    chunk: Vec<BulkRow>,
    chunk_rows: usize,
    files: Vec<File>,
    /// The last full chunk, being sorted and written on a thread of its own
    /// while the next one fills; it gives back its file and its emptied
    /// buffer.
    writing: Option<JoinHandle<io::Result<WrittenRun>>>,
    rows: u64,
}

impl Runs {
    pub fn new(dir: PathBuf) -> Self {
        Self::with_chunk(dir, CHUNK_ROWS)
    }

    fn with_chunk(dir: PathBuf, chunk_rows: usize) -> Self {
        Self {
            dir,
            chunk: Vec::new(),
            chunk_rows,
            files: Vec::new(),
            writing: None,
            rows: 0,
        }
    }

    pub fn len(&self) -> u64 {
        self.rows
    }

    pub fn push(&mut self, row: BulkRow) -> io::Result<()> {
        if self.chunk.capacity() == 0 {
            self.chunk.reserve_exact(self.chunk_rows);
        }
        self.chunk.push(row);
        self.rows += 1;
        if self.chunk.len() >= self.chunk_rows {
            self.spill()?;
        }
        Ok(())
    }

    /// Hands the chunk to a thread that sorts it and writes it as a run,
    /// once the previous one is written: at most two chunks in memory.
    fn spill(&mut self) -> io::Result<()> {
        let spare = self.finish_writing()?;
        let chunk = std::mem::replace(&mut self.chunk, spare);
        let dir = self.dir.clone();
        let writer = std::thread::Builder::new()
            .name("import-run".into())
            .spawn(move || write_run(&dir, chunk))?;
        self.writing = Some(writer);
        Ok(())
    }

    /// Waits for the run being written and keeps its file; returns the
    /// buffer to fill next.
    fn finish_writing(&mut self) -> io::Result<Vec<BulkRow>> {
        let Some(writer) = self.writing.take() else {
            return Ok(Vec::new());
        };
        let (file, spare) = writer
            .join()
            .map_err(|_| io::Error::other("the thread writing an import run panicked"))??;
        self.files.push(file);
        Ok(spare)
    }

    /// Every row in storage-key order; rows of one key in the order they
    /// were pushed.
    pub fn into_sorted(mut self) -> io::Result<Sorted> {
        if self.files.is_empty() && self.writing.is_none() {
            sort_by_storage_key(&mut self.chunk, BulkRow::key);
            return Ok(Sorted::Memory(self.chunk.into_iter()));
        }
        if !self.chunk.is_empty() {
            self.spill()?;
        }
        self.finish_writing()?;
        let mut readers: Vec<_> = self
            .files
            .into_iter()
            .map(|file| BufReader::with_capacity(RUN_BUFFER, file))
            .collect();
        let mut heads = BinaryHeap::with_capacity(readers.len());
        for (run, reader) in readers.iter_mut().enumerate() {
            if let Some(row) = read_row(reader)? {
                heads.push(Head { row, run });
            }
        }
        Ok(Sorted::Merge { readers, heads })
    }
}

/// A run's file, rewound, and the emptied buffer its chunk was in.
type WrittenRun = (File, Vec<BulkRow>);

/// Sorts `chunk` and writes it to a temporary file in `dir`.
fn write_run(dir: &Path, mut chunk: Vec<BulkRow>) -> io::Result<WrittenRun> {
    sort_by_storage_key(&mut chunk, BulkRow::key);
    let mut out = BufWriter::with_capacity(RUN_BUFFER, tempfile::tempfile_in(dir)?);
    for row in chunk.drain(..) {
        let (key, record) = (row.entry.key(), row.entry.record());
        out.write_all(&(key.len() as u32).to_le_bytes())?;
        out.write_all(&(record.len() as u32).to_le_bytes())?;
        out.write_all(&[u8::from(row.created_at_given)])?;
        out.write_all(key)?;
        out.write_all(record)?;
    }
    let mut file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    file.rewind()?;
    Ok((file, chunk))
}

pub(super) enum Sorted {
    Memory(std::vec::IntoIter<BulkRow>),
    Merge {
        readers: Vec<BufReader<File>>,
        heads: BinaryHeap<Head>,
    },
}

impl Iterator for Sorted {
    type Item = io::Result<BulkRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Memory(rows) => rows.next().map(Ok),
            Self::Merge { readers, heads } => {
                let Head { row, run } = heads.pop()?;
                match read_row(&mut readers[run]) {
                    Ok(Some(next)) => heads.push(Head { row: next, run }),
                    Ok(None) => {}
                    Err(error) => return Some(Err(error)),
                }
                Some(Ok(row))
            }
        }
    }
}

/// The next row of a run; `None` at its end.
fn read_row(reader: &mut impl Read) -> io::Result<Option<BulkRow>> {
    let mut header = [0u8; 9];
    if reader.read(&mut header[..1])? == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut header[1..])?;
    let key_len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let record_len = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes")) as usize;
    let mut bytes = vec![0u8; key_len + record_len];
    reader.read_exact(&mut bytes)?;
    Ok(Some(BulkRow {
        entry: KeyedRecord::from_bytes(bytes.into_boxed_slice(), key_len),
        created_at_given: header[8] == 1,
    }))
}

/// A run's next row in the merge: the smallest (key, run) comes out first,
/// so rows of one key leave in run order, which is the order they came in.
pub(super) struct Head {
    row: BulkRow,
    run: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap pops the largest: reversed.
        (other.row.key(), other.run).cmp(&(self.row.key(), self.run))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: &str, record: &str, created_at_given: bool) -> BulkRow {
        BulkRow {
            entry: KeyedRecord::new(key.as_bytes(), record.as_bytes()),
            created_at_given,
        }
    }

    fn sorted(runs: Runs) -> Vec<(String, String, bool)> {
        runs.into_sorted()
            .unwrap()
            .map(|row| {
                let row = row.unwrap();
                (
                    String::from_utf8(row.key().to_vec()).unwrap(),
                    String::from_utf8(row.entry.record().to_vec()).unwrap(),
                    row.created_at_given,
                )
            })
            .collect()
    }

    #[test]
    fn spilled_runs_merge_in_key_order_with_repeats_in_arrival_order() {
        let dir = tempfile::tempdir().unwrap();
        let input = [
            ("b.example\0k", "1", false),
            ("a.example\0z", "2", true),
            ("a.example\0k", "3", false),
            ("b.example\0k", "4", true),
            ("a.example\0a", "5", false),
            ("b.example\0k", "6", false),
            ("a.example\0k", "7", true),
            ("c\0", "8", false),
        ];
        let mut expected: Vec<_> = input
            .iter()
            .map(|(k, r, c)| (k.to_string(), r.to_string(), *c))
            .collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        for chunk in [1, 2, 3, 100] {
            let mut runs = Runs::with_chunk(dir.path().to_path_buf(), chunk);
            for (key, record, given) in input {
                runs.push(row(key, record, given)).unwrap();
            }
            assert_eq!(runs.len(), 8);
            assert_eq!(sorted(runs), expected, "chunks of {chunk}");
        }
        // Run files are deleted when the merge ends.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
