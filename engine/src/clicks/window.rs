//! 10-second click windows: an actor counts each enriched click into the
//! window of its time, per link, per dimension value, humans and bots apart,
//! and closes a window into one `WindowBatch` once it is over (plus a grace
//! period for clicks still in the channel). A click for a window already
//! closed counts in the oldest open one, so nothing is dropped.

use foldhash::fast::RandomState;
use hashbrown::HashMap;
use ricochet_model::clicks::{Dimension, WINDOW_MILLIS, WindowBatch, WindowRow, window_start};
use ricochet_model::{LinkId, UnixMillis};
use std::collections::BTreeMap;

use super::enrich::Enriched;

/// Value slots of a click: the dimensions after `Total`, in the order of
/// `Dimension::ALL`.
const VALUES: usize = Dimension::ALL.len() - 1;

/// No value for a dimension.
const NONE: u32 = u32::MAX;

/// One link, the bot flag, and the window's ids of the click's values.
/// Clicks repeat the same few combinations (a popular link, a handful of
/// browsers, countries and referrers), so a window counts combinations:
/// a few lookups of short strings in a small table, then one lookup of a
/// fixed-size key, and splits them into per-dimension rows when it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Combo {
    link: LinkId,
    bot: bool,
    values: [u32; VALUES],
}

/// The clicks of one window. Values are client-supplied text (referrers,
/// UTM values), hence a randomly seeded hasher.
#[derive(Debug, Default)]
struct WindowCounts {
    combos: HashMap<Combo, u64, RandomState>,
    /// Every distinct value seen in the window, and its id (its index in `names`).
    ids: HashMap<Box<str>, u32, RandomState>,
    names: Vec<Box<str>>,
}

impl WindowCounts {
    /// Empties the window, keeping its tables' capacity for the next one.
    fn clear(&mut self) {
        self.combos.clear();
        self.ids.clear();
        self.names.clear();
    }

    fn id(&mut self, value: Option<&str>) -> u32 {
        let Some(value) = value else { return NONE };
        if let Some(&id) = self.ids.get(value) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(Box::from(value));
        self.ids.insert(Box::from(value), id);
        id
    }

    fn add(&mut self, link: LinkId, click: &Enriched) {
        // Implied values are not stored: breakdowns derive them from the total.
        fn stored(dimension: Dimension, bot: bool, value: Option<&str>) -> Option<&str> {
            value.filter(|value| dimension.implied(bot) != Some(*value))
        }
        let bot = click.bot;
        // In `Dimension::ALL` order.
        let values = [
            self.id(click.country.as_deref()),
            self.id(click.city.as_deref()),
            self.id(stored(Dimension::Device, bot, click.device.as_deref())),
            self.id(stored(Dimension::Browser, bot, click.browser.as_deref())),
            self.id(stored(Dimension::Os, bot, click.os.as_deref())),
            self.id(click.referrer.as_deref()),
            self.id(click.utm_source.as_deref()),
            self.id(click.utm_medium.as_deref()),
            self.id(click.utm_campaign.as_deref()),
        ];
        let combo = Combo {
            link,
            bot: click.bot,
            values,
        };
        *self.combos.entry(combo).or_default() += 1;
    }
}

/// One actor's open windows.
#[derive(Debug)]
pub struct WindowAggregator {
    node: String,
    shard: u16,
    open: BTreeMap<UnixMillis, WindowCounts>,
    /// The last closed window, emptied: the next window starts with its
    /// capacity instead of growing (and faulting in fresh pages) again.
    spare: Option<WindowCounts>,
    /// Windows before this start are closed.
    closed_before: UnixMillis,
}

impl WindowAggregator {
    pub fn new(node: &str, shard: u16) -> Self {
        Self {
            node: node.to_owned(),
            shard,
            open: BTreeMap::new(),
            spare: None,
            closed_before: UnixMillis::MIN,
        }
    }

    /// Counts one click.
    pub fn add(&mut self, at: UnixMillis, link: LinkId, click: &Enriched) {
        let window = window_start(at).max(self.closed_before);
        self.open
            .entry(window)
            .or_insert_with(|| self.spare.take().unwrap_or_default())
            .add(link, click);
    }

    /// Number of open windows.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }

    /// Closes every window that ended at least `grace` before `now`.
    pub fn close_due(&mut self, now: UnixMillis, grace: i64) -> Vec<WindowBatch> {
        let mut closed = Vec::new();
        while let Some((&start, _)) = self.open.first_key_value() {
            if start + WINDOW_MILLIS + grace > now {
                break;
            }
            closed.push(self.close_first());
        }
        closed
    }

    /// Closes every open window (at shutdown).
    pub fn close_all(&mut self) -> Vec<WindowBatch> {
        let mut closed = Vec::new();
        while !self.open.is_empty() {
            closed.push(self.close_first());
        }
        closed
    }

    fn close_first(&mut self) -> WindowBatch {
        let (start, mut counts) = self.open.pop_first().expect("an open window");
        self.closed_before = self.closed_before.max(start + WINDOW_MILLIS);
        // Value ids by their names' byte order: rank 1, 2, ...; 0 is `Total`'s
        // empty value. Rows then sort by one number.
        let mut by_name: Vec<u32> = (0..counts.names.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| counts.names[a as usize].cmp(&counts.names[b as usize]));
        let mut rank = vec![0u32; by_name.len()];
        for (position, &id) in by_name.iter().enumerate() {
            rank[id as usize] = position as u32 + 1;
        }
        // One entry per (combination, dimension with a value), keyed
        // link | dimension | bot | rank, so sorting groups equal rows.
        let key = |link: LinkId, dimension: usize, bot: bool, rank: u32| -> u128 {
            (u128::from(link) << 64)
                | ((dimension as u128) << 40)
                | ((bot as u128) << 32)
                | u128::from(rank)
        };
        let mut entries: Vec<(u128, u64)> = Vec::with_capacity(counts.combos.len() * 4);
        for (combo, &count) in &counts.combos {
            entries.push((key(combo.link, 0, combo.bot, 0), count));
            for (slot, &id) in combo.values.iter().enumerate() {
                if id != NONE {
                    entries.push((
                        key(combo.link, slot + 1, combo.bot, rank[id as usize]),
                        count,
                    ));
                }
            }
        }
        entries.sort_unstable_by_key(|&(key, _)| key);
        let mut rows: Vec<WindowRow> = Vec::with_capacity(entries.len());
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
        counts.clear();
        self.spare = Some(counts);
        WindowBatch {
            node: self.node.clone(),
            shard: self.shard,
            window_start: start,
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
