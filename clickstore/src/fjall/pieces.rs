//! Which level answers which part of a queried range: the coarsest whole
//! buckets, with dirty buckets replaced by their finer parts.

use super::*;

/// Splits `[from, to)` into pieces each read from the coarsest level whose
/// buckets fit whole inside it.
pub(super) fn pieces(from: UnixMillis, to: UnixMillis) -> Vec<(Level, UnixMillis, UnixMillis)> {
    let mut out = Vec::new();
    split(from, to, Level::ALL.len() - 1, &mut out);
    out
}

pub(super) fn split(
    from: UnixMillis,
    to: UnixMillis,
    level: usize,
    out: &mut Vec<(Level, UnixMillis, UnixMillis)>,
) {
    if from >= to {
        return;
    }
    let current = Level::ALL[level];
    if level == 0 {
        out.push((current, from, to));
        return;
    }
    let first = current.ceil(from);
    let last = current.floor(to);
    if first >= last {
        split(from, to, level - 1, out);
        return;
    }
    split(from, first, level - 1, out);
    out.push((current, first, last));
    split(last, to, level - 1, out);
}

/// Replaces each dirty bucket of a piece by its finer parts, so every piece
/// left is clean (windows are never dirty). `from` and `to` are aligned to
/// `level`'s buckets unless `level` is `Window`.
pub(super) fn clean_pieces(
    dirty: &BTreeMap<(Level, UnixMillis), u64>,
    level: Level,
    from: UnixMillis,
    to: UnixMillis,
    out: &mut Vec<(Level, UnixMillis, UnixMillis)>,
) {
    if from >= to {
        return;
    }
    if level == Level::Window {
        out.push((level, from, to));
        return;
    }
    let mut start = from;
    for &(_, bucket) in dirty.range((level, from)..(level, to)).map(|(key, _)| key) {
        if bucket > start {
            out.push((level, start, bucket));
        }
        let end = bucket + level.millis();
        clean_pieces(dirty, level.finer(), bucket, end, out);
        start = end;
    }
    if start < to {
        out.push((level, start, to));
    }
}
