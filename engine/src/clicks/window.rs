//! 10-second click windows: an actor counts each enriched click into the
//! window of its time, per link, per dimension value, humans and bots apart,
//! and detaches a window once it is over (plus a grace period for clicks
//! still in the channel); the writer builds it into one `WindowBatch`
//! ([`RowBuilder`]). A click for a window already closed counts in the
//! oldest open one, so nothing is dropped.

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
        self.last = None;
        self.ids.clear();
        self.names.clear();
        self.implied.clear();
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
        self.tallies.add(link, profile);
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
    pub fn new(node: &str, shard: u16) -> Self {
        Self {
            node: node.to_owned(),
            shard,
            open: BTreeMap::new(),
            spares: Vec::new(),
            builder: RowBuilder::default(),
            closed_before: UnixMillis::MIN,
        }
    }

    /// Counts one click.
    pub fn add(&mut self, at: UnixMillis, link: LinkId, click: &Enriched) {
        let window = window_start(at).max(self.closed_before);
        self.open
            .entry(window)
            .or_insert_with(|| {
                let largest =
                    (0..self.spares.len()).max_by_key(|&i| self.spares[i].tallies.capacity());
                largest.map_or_else(WindowCounts::default, |i| self.spares.swap_remove(i))
            })
            .add(link, click);
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

    /// Detaches every window that ended at least `grace` before `now`, for
    /// the writer to build.
    pub fn take_due(&mut self, now: UnixMillis, grace: i64) -> Vec<ClosedWindow> {
        let mut closed = Vec::new();
        while let Some((&start, _)) = self.open.first_key_value() {
            if start + WINDOW_MILLIS + grace > now {
                break;
            }
            closed.push(self.take_first());
        }
        closed
    }

    /// Detaches every open window (at shutdown).
    pub fn take_all(&mut self) -> Vec<ClosedWindow> {
        let mut closed = Vec::new();
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

impl RowBuilder {
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
        let per_profile: Vec<usize> = (counts.profile_list.iter())
            .map(|profile| 1 + profile.values.iter().filter(|&&id| id != NONE).count())
            .collect();
        let wanted = (counts.tallies.iter())
            .map(|tally| per_profile[tally.profile as usize])
            .sum();
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
            shard,
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
mod tests {
    use super::*;

    fn human(country: &str) -> Enriched {
        Enriched {
            country: Some(country.into()),
            browser: Some(Arc::from("Firefox")),
            ..Enriched::default()
        }
    }

    fn count(batch: &WindowBatch, link: u64, dimension: Dimension, value: &str, bot: bool) -> u64 {
        batch
            .rows
            .iter()
            .find(|r| {
                r.link_id == link && r.dimension == dimension && r.value == value && r.bot == bot
            })
            .map_or(0, |r| r.count)
    }

    #[test]
    fn counts_per_window_dimension_and_bot_flag() {
        let mut windows = WindowAggregator::new("n1", 3);
        windows.add(1_000, 7, &human("DE"));
        windows.add(2_000, 7, &human("DE"));
        windows.add(3_000, 7, &human("FR"));
        windows.add(
            4_000,
            7,
            &Enriched {
                bot: true,
                ..Enriched::default()
            },
        );
        windows.add(
            4_500,
            7,
            &Enriched {
                bot: true,
                device: Some(Arc::from("bot")),
                browser: Some(Arc::from("Other")),
                os: Some(Arc::from("Linux")),
                ..Enriched::default()
            },
        );
        windows.add(12_000, 7, &human("DE"));
        windows.add(5_000, 8, &human("DE"));
        assert_eq!(windows.open_windows(), 2);

        assert!(windows.close_due(10_999, 1_000).is_empty(), "grace period");
        let closed = windows.close_due(11_000, 1_000);
        assert_eq!(closed.len(), 1);
        let batch = &closed[0];
        assert_eq!(
            (batch.node.as_str(), batch.shard, batch.window_start),
            ("n1", 3, 0)
        );
        assert_eq!(count(batch, 7, Dimension::Total, "", false), 3);
        assert_eq!(count(batch, 7, Dimension::Total, "", true), 2);
        // Implied values (a bot's device, an unnamed browser) are left out.
        assert_eq!(count(batch, 7, Dimension::Os, "Linux", true), 1);
        assert!(
            batch.rows.iter().all(|r| !matches!(
                (r.dimension, r.value.as_str()),
                (Dimension::Device, "bot") | (Dimension::Browser, "Other")
            )),
            "{:?}",
            batch.rows
        );
        assert_eq!(count(batch, 7, Dimension::Country, "DE", false), 2);
        assert_eq!(count(batch, 7, Dimension::Country, "FR", false), 1);
        assert_eq!(count(batch, 7, Dimension::Browser, "Firefox", false), 3);
        assert_eq!(count(batch, 8, Dimension::Total, "", false), 1);
        assert!(batch.rows.iter().all(|r| r.window_start == 0));

        // A late click for the closed window counts in the next open one.
        windows.add(9_000, 7, &human("DE"));
        let rest = windows.close_all();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].window_start, 10_000);
        assert_eq!(count(&rest[0], 7, Dimension::Total, "", false), 2);
        assert!(windows.close_all().is_empty());

        // The next window reuses the closed one's tables, and only counts its own.
        windows.add(25_000, 8, &human("FR"));
        windows.add(26_000, 7, &human("AT"));
        let next = windows.close_all();
        assert_eq!(next[0].window_start, 20_000);
        assert_eq!(count(&next[0], 7, Dimension::Total, "", false), 1);
        assert_eq!(count(&next[0], 7, Dimension::Country, "DE", false), 0);
        assert_eq!(
            next[0].rows.len(),
            6,
            "total, country, browser of two links"
        );
    }

    #[test]
    fn counts_match_a_plain_count_of_every_click() {
        use std::collections::HashMap;
        let countries = [None, Some("DE"), Some("FR"), Some("US")];
        let browsers = [None, Some("Firefox"), Some("Other"), Some("Chrome")];
        let mut windows = WindowAggregator::new("n1", 0);
        let mut expected: HashMap<(u64, Dimension, String, bool), u64> = HashMap::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |bound: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % bound
        };
        for _ in 0..20_000 {
            let link = next(300);
            let bot = next(5) == 0;
            let country = countries[next(4) as usize];
            let browser = browsers[next(4) as usize];
            // Runs of equal profiles, as real traffic has.
            for _ in 0..=next(3) {
                windows.add(
                    1_000,
                    link,
                    &Enriched {
                        bot,
                        country: country.map(Arc::from),
                        browser: browser.map(Arc::from),
                        ..Enriched::default()
                    },
                );
                *expected
                    .entry((link, Dimension::Total, String::new(), bot))
                    .or_default() += 1;
                if let Some(country) = country {
                    *expected
                        .entry((link, Dimension::Country, country.to_owned(), bot))
                        .or_default() += 1;
                }
                if let Some(browser) = browser.filter(|b| *b != "Other") {
                    *expected
                        .entry((link, Dimension::Browser, browser.to_owned(), bot))
                        .or_default() += 1;
                }
            }
        }
        let batch = windows.close_all().remove(0);
        let got: HashMap<_, _> = batch
            .rows
            .iter()
            .map(|r| ((r.link_id, r.dimension, r.value.clone(), r.bot), r.count))
            .collect();
        assert_eq!(got.len(), batch.rows.len(), "each row once");
        assert_eq!(got, expected);
    }

    #[test]
    fn rows_come_sorted_by_link_dimension_bot_and_value() {
        let mut windows = WindowAggregator::new("n1", 0);
        for (link, country) in [
            (9, "US"),
            (2, "FR"),
            (9, "AT"),
            (2, "Ü"),
            (2, "DE"),
            (9, "US"),
        ] {
            windows.add(1_000, link, &human(country));
            windows.add(
                1_000,
                link,
                &Enriched {
                    bot: true,
                    ..human(country)
                },
            );
        }
        let batch = windows.close_all().remove(0);
        let keys: Vec<_> = batch
            .rows
            .iter()
            .map(|r| (r.link_id, r.dimension, r.bot, r.value.as_bytes()))
            .collect();
        assert!(keys.is_sorted(), "{keys:?}");
        assert!(
            keys.windows(2).all(|pair| pair[0] != pair[1]),
            "each row once"
        );
        assert_eq!(count(&batch, 9, Dimension::Country, "US", true), 2);
        assert_eq!(count(&batch, 2, Dimension::Total, "", false), 3);
    }
}
