//! Key layouts of the store's keyspaces: sortable times, segment sources,
//! chunk, manifest, dirty-mark and by-link row keys.

use super::*;

/// An i64 as 8 bytes that sort like the numbers.
pub(super) fn sortable(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

pub(super) fn unsortable(bytes: &[u8]) -> i64 {
    (u64::from_be_bytes(bytes[..8].try_into().unwrap()) ^ (1 << 63)) as i64
}

pub(super) fn count_of(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .unwrap_or(0)
}

/// Who wrote a segment: `node length | node | shard`.
pub(super) fn source_bytes(node: &str, shard: u16) -> Vec<u8> {
    let node = &node.as_bytes()[..node.len().min(255)];
    let mut source = Vec::with_capacity(node.len() + 3);
    source.push(node.len() as u8);
    source.extend_from_slice(node);
    source.extend_from_slice(&shard.to_be_bytes());
    source
}

/// The source at the start of `bytes` and its length.
pub(super) fn source_len(bytes: &[u8]) -> Option<usize> {
    let len = usize::from(*bytes.first()?) + 3;
    (bytes.len() >= len).then_some(len)
}

/// `time | source` — the prefix of every part of one segment.
pub(super) fn segment_prefix(at: UnixMillis, source: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(source.len() + 17);
    key.extend_from_slice(&sortable(at));
    key.extend_from_slice(source);
    key
}

/// `time | source | dimension` — the prefix of one segment part's chunks.
pub(super) fn part_prefix(at: UnixMillis, source: &[u8], dimension: Dimension) -> Vec<u8> {
    let mut key = segment_prefix(at, source);
    key.push(dimension.code());
    key
}

pub(super) fn chunk_key(
    at: UnixMillis,
    source: &[u8],
    dimension: Dimension,
    last: LinkId,
) -> Vec<u8> {
    let mut key = part_prefix(at, source, dimension);
    key.extend_from_slice(&last.to_be_bytes());
    key
}

pub(super) fn manifest_key(level: Level, at: UnixMillis, source: &[u8]) -> Vec<u8> {
    let mut key = bucket_key(level, at).to_vec();
    key.extend_from_slice(source);
    key
}

/// `level | time`: a dirty mark's key, and the prefix of a level's manifest.
pub(super) fn bucket_key(level: Level, at: UnixMillis) -> [u8; 9] {
    let mut key = [0; 9];
    key[0] = level as u8;
    key[1..].copy_from_slice(&sortable(at));
    key
}

/// `link | dimension | time` — the prefix of a by-link row key.
pub(super) fn row_prefix(link: LinkId, dimension: Dimension, at: UnixMillis) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(&link.to_be_bytes());
    key.push(dimension.code());
    key.extend_from_slice(&sortable(at));
    key
}

/// `link | dimension | time | bot | source | value`.
pub(super) fn row_key(
    link: LinkId,
    dimension: Dimension,
    at: UnixMillis,
    bot: bool,
    source: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let mut key = row_prefix(link, dimension, at);
    key.push(bot as u8);
    key.extend_from_slice(source);
    key.extend_from_slice(value);
    key
}

/// A parsed by-link row key.
pub(super) struct RowKey<'k> {
    pub(super) at: UnixMillis,
    pub(super) bot: bool,
    pub(super) value: &'k [u8],
}

pub(super) fn parse_row_key(key: &[u8]) -> Option<RowKey<'_>> {
    let at = unsortable(key.get(9..17)?);
    let bot = *key.get(17)? == 1;
    // Then the source, which reads sum over.
    let source = source_len(key.get(18..)?)?;
    let value = key.get(18 + source..)?;
    Some(RowKey { at, bot, value })
}
