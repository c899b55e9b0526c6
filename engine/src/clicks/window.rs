//! 10-second click windows: an actor counts each enriched click into the
//! window of its time, per link, per dimension value, humans and bots apart,
//! and detaches a window once it is over (plus a grace period for clicks
//! still in the channel); the writer builds it into one `WindowBatch`
//! ([`RowBuilder`]). A click for a window already closed counts in the
//! oldest open one, so nothing is dropped. A window whose counts reach the
//! cap on its rows (`clicks.max_window_rows`) is written in parts: the counts
//! so far are detached as one part and counting goes on in the next
//! (docs/CLICKS.md, "Memory and the window cap").

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use ricochet_model::clicks::{Dimension, WINDOW_MILLIS, WindowBatch, WindowRow, window_start};
use ricochet_model::{LinkId, UnixMillis};
use std::collections::BTreeMap;
use std::sync::Arc;

use self::tally::TallyTable;
use super::enrich::Enriched;

mod tally;

/// Value slots of a click: the dimensions after `Total`, in the order of
/// `Dimension::ALL`.
const VALUES: usize = Dimension::ALL.len() - 1;

/// Emptied windows kept for reuse.
const SPARES: usize = 2;

/// Rows a window part of one shard becomes at most before the window is
/// split (`clicks.max_window_rows`): one per distinct (link, bot flag) for
/// `Total` plus one per stored value. Distinct (link, profile) pairs are
/// fewer, so the tally table stays within 8 MiB.
pub const DEFAULT_MAX_ROWS: usize = 250_000;

/// Part `p` of shard `s` is written as shard `s + PART_STRIDE * p`, its own
/// source in every store, so parts never overwrite each other and a retried
/// part replaces only itself. Shards are at most 1,024 (`server.workers`).
pub const PART_STRIDE: u16 = 1024;

/// Parts a window can have (`PART_STRIDE * MAX_PARTS` fills a `u16`); the
/// last one is not capped.
pub const MAX_PARTS: u16 = 64;

/// No value for a dimension.
const NONE: u32 = u32::MAX;

/// A click's bot flag and the window's ids of its values. Clicks repeat a
/// few profiles (a handful of browsers, countries and referrers), so a
/// window numbers them once and counts (link, profile) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Profile {
    bot: bool,
    values: [u32; VALUES],
}

impl Profile {
    /// `==` without a call to `memcmp`, which the derived comparison of
    /// 37 bytes becomes: this runs for every click.
    #[inline]
    fn same(&self, other: &Profile) -> bool {
        let differ = self
            .values
            .iter()
            .zip(&other.values)
            .fold(u32::from(self.bot ^ other.bot), |acc, (a, b)| acc | (a ^ b));
        differ == 0
    }
}

/// The clicks of one window. Values are client-supplied text (referrers,
/// UTM values), hence randomly seeded hashers.
#[derive(Debug, Default)]
struct WindowCounts {
    tallies: TallyTable,
    /// Every distinct profile seen in the window, and its id (its index in `profile_list`).
    profiles: HashMap<Profile, u32, RandomState>,
    profile_list: Vec<Profile>,
    /// Per profile id: the rows a tally of it becomes (its total and each
    /// value it stores).
    weights: Vec<u32>,
    /// The last click's profile and its id: consecutive clicks often share it.
    last: Option<(Profile, u32)>,
    /// Every value seen in the window, by address, and its id (its index
    /// in `names`). Enrichment shares one `Arc` per value, so a repeated value
    /// is found without hashing or comparing its text; `names` keeps each
    /// `Arc`, and so its address, alive while the window is open. Two `Arc`s
    /// of equal text get two ids, and closing the window gives them one rank.
    ids: HashMap<usize, u32, RandomState>,
    names: Vec<Arc<str>>,
    /// Per id: bit `2 * slot + bot` is set when the value is what
    /// `Dimension::implied` leaves out for `IMPLIED[slot]` and that bot flag.
    implied: Vec<u8>,
    /// Which part of its window this is (0 unless the window was split).
    part: u16,
    /// Rows at which this part is split off (`usize::MAX`: never).
    limit: usize,
}

/// The dimensions with implied values, and their slots in `Profile::values`.
const IMPLIED: [(Dimension, usize); 3] = [
    (Dimension::Device, 2),
    (Dimension::Browser, 3),
    (Dimension::Os, 4),
];

impl WindowCounts {
    /// Empties the window, keeping its tables' capacity for the next one.
    fn clear(&mut self) {
        self.tallies.clear();
        self.profiles.clear();
        self.profile_list.clear();
        self.weights.clear();
        self.last = None;
        self.ids.clear();
        self.names.clear();
        self.implied.clear();
    }

    /// Bytes its tables hold (capacity, not use: what a reused window keeps).
    fn memory_bytes(&self) -> usize {
        let map_slot = |entry: usize| entry + 1; // hashbrown: one control byte per bucket
        self.tallies.memory_bytes()
            + self.profiles.capacity() * map_slot(size_of::<(Profile, u32)>())
            + self.profile_list.capacity() * size_of::<Profile>()
            + self.weights.capacity() * size_of::<u32>()
            + self.ids.capacity() * map_slot(size_of::<(usize, u32)>())
            + self.names.capacity() * size_of::<Arc<str>>()
            + self.implied.capacity()
    }

    fn id(&mut self, value: &Option<Arc<str>>) -> u32 {
        let Some(value) = value else { return NONE };
        let next = self.names.len() as u32;
        let id = *self
            .ids
            .entry(Arc::as_ptr(value).cast::<u8>() as usize)
            .or_insert(next);
        if id == next {
            let mut implied = 0;
            for (slot, (dimension, _)) in IMPLIED.into_iter().enumerate() {
                for bot in [false, true] {
                    if dimension.implied(bot) == Some(&**value) {
                        implied |= 1 << (2 * slot + usize::from(bot));
                    }
                }
            }
            self.names.push(Arc::clone(value));
            self.implied.push(implied);
        }
        id
    }

    fn profile(&mut self, profile: Profile) -> u32 {
        if let Some((last, id)) = self.last
            && last.same(&profile)
        {
            return id;
        }
        let next = self.profile_list.len() as u32;
        let id = *self.profiles.entry(profile).or_insert(next);
        if id == next {
            self.profile_list.push(profile);
            let values = profile.values.iter().filter(|&&id| id != NONE).count();
            self.weights.push(1 + values as u32);
        }
        self.last = Some((profile, id));
        id
    }

    fn add(&mut self, link: LinkId, click: &Enriched) {
        let bot = click.bot;
        // In `Dimension::ALL` order.
        let mut values = [
            self.id(&click.country),
            self.id(&click.city),
            self.id(&click.device),
            self.id(&click.browser),
            self.id(&click.os),
            self.id(&click.referrer),
            self.id(&click.utm_source),
            self.id(&click.utm_medium),
            self.id(&click.utm_campaign),
            self.id(&click.destination),
        ];
        // Implied values are not stored: breakdowns derive them from the total.
        for (slot, (_, index)) in IMPLIED.into_iter().enumerate() {
            let id = values[index];
            if id != NONE && self.implied[id as usize] & (1 << (2 * slot + usize::from(bot))) != 0 {
                values[index] = NONE;
            }
        }
        let profile = self.profile(Profile { bot, values });
        self.tallies
            .add(link, profile, self.weights[profile as usize]);
    }
}

/// One actor's open windows.
#[derive(Debug)]
pub struct WindowAggregator {
    node: String,
    shard: u16,
    open: BTreeMap<UnixMillis, WindowCounts>,
    /// Closed windows, emptied: a new window starts with the largest one's
    /// capacity instead of growing (and faulting in fresh pages) again.
    /// Windows overlap by the grace period, so two are kept.
    spares: Vec<WindowCounts>,
    /// Builds rows for [`WindowAggregator::close_due`]; the actor instead
    /// hands closed windows to the writer, which has its own.
    builder: RowBuilder,
    /// Windows before this start are closed.
    closed_before: UnixMillis,
    /// Rows at which a window is split (`usize::MAX`: no cap).
    max_rows: usize,
    /// Parts a window can have (1 when this shard cannot number parts).
    max_parts: u16,
    /// Parts split off at the cap, waiting for [`WindowAggregator::take_due`].
    parts: Vec<ClosedWindow>,
    /// Parts split off so far.
    splits: u64,
}

/// A closed window's counts on their way to rows: the actor detaches it
/// ([`WindowAggregator::take_due`]) and the writer turns it into a
/// [`WindowBatch`] ([`RowBuilder::build`]), so ranking, sorting and
/// clearing, the costly part of closing, never delay the actor's channel.
#[derive(Debug)]
pub struct ClosedWindow {
    node: String,
    shard: u16,
    start: UnixMillis,
    counts: WindowCounts,
}

impl ClosedWindow {
    /// The shard whose actor counted it.
    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// Bytes its tables hold.
    pub fn memory_bytes(&self) -> usize {
        self.counts.memory_bytes()
    }
}

/// A built window's emptied tables, back to its actor for the next window
/// ([`WindowAggregator::reuse`]).
#[derive(Debug)]
pub struct WindowSpare(WindowCounts);

/// Turns closed windows into sorted rows, keeping its sort buffer and the
/// last written row buffer between windows.
#[derive(Debug, Default)]
pub struct RowBuilder {
    entries: Vec<(u128, u64)>,
    spare_rows: Option<Vec<WindowRow>>,
}

impl WindowAggregator {
    /// Windows of `shard`, never split ([`WindowAggregator::with_max_rows`]
    /// sets a cap; the engine's is `clicks.max_window_rows`).
    pub fn new(node: &str, shard: u16) -> Self {
        Self {
            node: node.to_owned(),
            shard,
            open: BTreeMap::new(),
            spares: Vec::new(),
            builder: RowBuilder::default(),
            closed_before: UnixMillis::MIN,
            max_rows: usize::MAX,
            max_parts: if shard < PART_STRIDE { MAX_PARTS } else { 1 },
            parts: Vec::new(),
            splits: 0,
        }
    }

    /// The same, split when a window part reaches `max_rows` rows (0: never).
    pub fn with_max_rows(mut self, max_rows: usize) -> Self {
        self.max_rows = match max_rows {
            0 => usize::MAX,
            cap => cap,
        };
        self
    }

    /// Counts one click.
    #[inline]
    pub fn add(&mut self, at: UnixMillis, link: LinkId, click: &Enriched) {
        let window = window_start(at).max(self.closed_before);
        let counts = self.open.entry(window).or_insert_with(|| {
            let limit = part_limit(self.max_rows, self.max_parts, 0);
            next_counts(&mut self.spares, 0, limit)
        });
        counts.add(link, click);
        if counts.tallies.rows() >= counts.limit {
            self.split(window);
        }
    }

    /// Detaches the open window starting at `start` as one part, to be
    /// written like a closed window, and goes on counting that window in a
    /// new part. Its counts so far are final: no later click adds to them.
    #[cold]
    #[inline(never)]
    fn split(&mut self, start: UnixMillis) {
        let max_rows = self.max_rows;
        let Some(counts) = self.open.get_mut(&start) else {
            return;
        };
        let part = counts.part + 1;
        let limit = part_limit(max_rows, self.max_parts, part);
        let full = std::mem::replace(counts, next_counts(&mut self.spares, part, limit));
        self.splits += 1;
        if full.part == 0 {
            tracing::warn!(
                shard = self.shard,
                window_start = start,
                max_rows,
                "a click window reached clicks.max_window_rows: it is written in parts"
            );
        }
        if limit == usize::MAX {
            tracing::warn!(
                shard = self.shard,
                window_start = start,
                parts = part + 1,
                "a click window reached its last part: the rest of it is not capped"
            );
        }
        self.parts.push(ClosedWindow {
            node: self.node.clone(),
            shard: self.shard,
            start,
            counts: full,
        });
    }

    /// Takes back a built window's emptied tables for a next window,
    /// keeping the largest [`SPARES`].
    pub fn reuse(&mut self, spare: WindowSpare) {
        self.spares.push(spare.0);
        if self.spares.len() > SPARES {
            let smallest = (0..self.spares.len())
                .min_by_key(|&i| self.spares[i].tallies.capacity())
                .expect("spares");
            self.spares.swap_remove(smallest);
        }
    }

    /// Number of open windows.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Distinct (link, profile) entries of the open windows.
    pub fn open_entries(&self) -> usize {
        self.open.values().map(|c| c.tallies.entries()).sum()
    }

    /// Rows the open windows would become (an upper bound: rows of one link
    /// that two profiles share are merged).
    pub fn open_rows(&self) -> usize {
        self.open.values().map(|c| c.tallies.rows()).sum()
    }

    /// Bytes held by the open windows, the parts not taken yet and the
    /// spares (not the row builder, which only tests and benchmarks use here).
    pub fn memory_bytes(&self) -> usize {
        let open = self.open.values().chain(&self.spares);
        open.map(WindowCounts::memory_bytes).sum::<usize>()
            + self
                .parts
                .iter()
                .map(ClosedWindow::memory_bytes)
                .sum::<usize>()
    }

    /// Window parts split off at the cap so far.
    pub fn splits(&self) -> u64 {
        self.splits
    }

    /// Detaches the parts split off at the cap and every window that ended
    /// at least `grace` before `now`, for the writer to build.
    pub fn take_due(&mut self, now: UnixMillis, grace: i64) -> Vec<ClosedWindow> {
        let mut closed = std::mem::take(&mut self.parts);
        while let Some((&start, _)) = self.open.first_key_value() {
            if start + WINDOW_MILLIS + grace > now {
                break;
            }
            closed.push(self.take_first());
        }
        closed
    }

    /// Detaches every part and open window (at shutdown).
    pub fn take_all(&mut self) -> Vec<ClosedWindow> {
        let mut closed = std::mem::take(&mut self.parts);
        while !self.open.is_empty() {
            closed.push(self.take_first());
        }
        closed
    }

    /// Closes every window that ended at least `grace` before `now` into
    /// its rows here (tests and benchmarks; the actor uses `take_due`).
    pub fn close_due(&mut self, now: UnixMillis, grace: i64) -> Vec<WindowBatch> {
        let closed = self.take_due(now, grace);
        self.build_here(closed)
    }

    /// Closes every open window into its rows here.
    pub fn close_all(&mut self) -> Vec<WindowBatch> {
        let closed = self.take_all();
        self.build_here(closed)
    }

    fn build_here(&mut self, closed: Vec<ClosedWindow>) -> Vec<WindowBatch> {
        closed
            .into_iter()
            .map(|window| {
                let (batch, spare) = self.builder.build(window);
                self.reuse(spare);
                batch
            })
            .collect()
    }

    fn take_first(&mut self) -> ClosedWindow {
        let (start, counts) = self.open.pop_first().expect("an open window");
        self.closed_before = self.closed_before.max(start + WINDOW_MILLIS);
        ClosedWindow {
            node: self.node.clone(),
            shard: self.shard,
            start,
            counts,
        }
    }
}

/// The cap of part `part` of a window: the last one has none.
fn part_limit(max_rows: usize, max_parts: u16, part: u16) -> usize {
    if part + 1 < max_parts {
        max_rows
    } else {
        usize::MAX
    }
}

/// An emptied window for part `part`, split at `limit` entries: the spare
/// with the largest table, if any.
fn next_counts(spares: &mut Vec<WindowCounts>, part: u16, limit: usize) -> WindowCounts {
    let largest = (0..spares.len()).max_by_key(|&i| spares[i].tallies.capacity());
    let mut counts = largest.map_or_else(WindowCounts::default, |i| spares.swap_remove(i));
    counts.part = part;
    counts.limit = limit;
    counts
}

impl RowBuilder {
    /// Bytes of its buffers: the sort entries and the spare rows (each row's
    /// value is allocated apart while the rows are full).
    pub fn memory_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<(u128, u64)>()
            + (self.spare_rows.as_ref()).map_or(0, |rows| rows.capacity() * size_of::<WindowRow>())
    }

    /// Takes back a written window's row buffer (emptied) to fill again:
    /// the larger of it and the one kept.
    pub fn recycle(&mut self, rows: Vec<WindowRow>) {
        let kept = self.spare_rows.as_ref().map_or(0, Vec::capacity);
        if rows.capacity() > kept {
            self.spare_rows = Some(rows);
        }
    }

    /// The window's rows, sorted by link, dimension, bot flag and value, and
    /// its emptied tables.
    pub fn build(&mut self, window: ClosedWindow) -> (WindowBatch, WindowSpare) {
        let ClosedWindow {
            node,
            shard,
            start,
            mut counts,
        } = window;
        // Value ids by their names' byte order: rank 1, 2, ...; 0 is `Total`'s
        // empty value. Rows then sort by one number.
        let mut by_name: Vec<u32> = (0..counts.names.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| counts.names[a as usize].cmp(&counts.names[b as usize]));
        // Equal names (held by different `Arc`s) share a rank: the rank of
        // their first id in `by_name`.
        let mut rank = vec![0u32; by_name.len()];
        let mut first = 0;
        for (position, &id) in by_name.iter().enumerate() {
            if counts.names[id as usize] != counts.names[by_name[first] as usize] {
                first = position;
            }
            rank[id as usize] = first as u32 + 1;
        }
        // One entry per (combination, dimension with a value), keyed
        // link | dimension | bot | rank, so sorting groups equal rows.
        let key = |link: LinkId, dimension: usize, bot: bool, rank: u32| -> u128 {
            (u128::from(link) << 64)
                | ((dimension as u128) << 40)
                | ((bot as u128) << 32)
                | u128::from(rank)
        };
        // Entries per tally: the total, and each value its profile stores.
        counts.tallies.apply_queued();
        let wanted = counts.tallies.rows();
        let mut entries = reuse(Some(std::mem::take(&mut self.entries)), wanted);
        for tally in counts.tallies.iter() {
            let profile = &counts.profile_list[tally.profile as usize];
            let count = u64::from(tally.count);
            entries.push((key(tally.link, 0, profile.bot, 0), count));
            for (slot, &id) in profile.values.iter().enumerate() {
                if id != NONE {
                    entries.push((
                        key(tally.link, slot + 1, profile.bot, rank[id as usize]),
                        count,
                    ));
                }
            }
        }
        entries.sort_unstable_by_key(|&(key, _)| key);
        let mut rows = reuse(self.spare_rows.take(), entries.len());
        for group in entries.chunk_by(|a, b| a.0 == b.0) {
            let key = group[0].0;
            let rank = key as u32;
            rows.push(WindowRow {
                link_id: (key >> 64) as LinkId,
                window_start: start,
                dimension: Dimension::ALL[((key >> 40) & 0xff) as usize],
                value: match rank {
                    0 => String::new(),
                    rank => counts.names[by_name[rank as usize - 1] as usize].to_string(),
                },
                bot: (key >> 32) & 1 == 1,
                count: group.iter().map(|&(_, count)| count).sum(),
            });
        }
        self.entries = entries;
        counts.clear();
        let batch = WindowBatch {
            node,
            shard: shard + PART_STRIDE * counts.part,
            window_start: start,
            rows,
        };
        (batch, WindowSpare(counts))
    }
}

/// `buffer` emptied, if it holds `wanted` items; otherwise a new buffer with
/// room to spare (growing the old one would copy what it held).
fn reuse<T>(buffer: Option<Vec<T>>, wanted: usize) -> Vec<T> {
    match buffer {
        Some(mut buffer) if buffer.capacity() >= wanted => {
            buffer.clear();
            buffer
        }
        _ => Vec::with_capacity(wanted + wanted / 4),
    }
}

#[cfg(test)]
mod tests;
