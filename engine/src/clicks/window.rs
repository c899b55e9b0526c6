//! 10-second click windows: an actor counts each enriched click into the
//! window of its time, per link, per dimension value, humans and bots apart,
//! and closes a window into one `WindowBatch` once it is over (plus a grace
//! period for clicks still in the channel). A click for a window already
//! closed counts in the oldest open one, so nothing is dropped.

use std::collections::{BTreeMap, HashMap};

use ricochet_model::clicks::{Dimension, WINDOW_MILLIS, WindowBatch, WindowRow, window_start};
use ricochet_model::{LinkId, UnixMillis};

use super::enrich::Enriched;

/// Counts of one link in one window.
#[derive(Debug, Default)]
struct LinkCounts {
    /// Per (dimension, bot): value → count. `Total` has the value "".
    values: HashMap<(Dimension, bool), HashMap<Box<str>, u64>>,
}

impl LinkCounts {
    #[inline]
    fn bump(&mut self, dimension: Dimension, bot: bool, value: &str) {
        let values = self.values.entry((dimension, bot)).or_default();
        match values.get_mut(value) {
            Some(count) => *count += 1,
            None => {
                values.insert(Box::from(value), 1);
            }
        }
    }
}

/// One actor's open windows.
#[derive(Debug)]
pub struct WindowAggregator {
    node: String,
    shard: u16,
    open: BTreeMap<UnixMillis, HashMap<LinkId, LinkCounts>>,
    /// Windows before this start are closed.
    closed_before: UnixMillis,
}

impl WindowAggregator {
    pub fn new(node: &str, shard: u16) -> Self {
        Self {
            node: node.to_owned(),
            shard,
            open: BTreeMap::new(),
            closed_before: UnixMillis::MIN,
        }
    }

    /// Counts one click.
    pub fn add(&mut self, at: UnixMillis, link: LinkId, click: &Enriched) {
        let window = window_start(at).max(self.closed_before);
        let counts = self
            .open
            .entry(window)
            .or_default()
            .entry(link)
            .or_default();
        let bot = click.bot;
        counts.bump(Dimension::Total, bot, "");
        let dimensions: [(Dimension, Option<&str>); 9] = [
            (Dimension::Country, click.country.as_deref()),
            (Dimension::City, click.city.as_deref()),
            (Dimension::Device, click.device.as_deref()),
            (Dimension::Browser, click.browser.as_deref()),
            (Dimension::Os, click.os.as_deref()),
            (Dimension::Referrer, click.referrer.as_deref()),
            (Dimension::UtmSource, click.utm_source.as_deref()),
            (Dimension::UtmMedium, click.utm_medium.as_deref()),
            (Dimension::UtmCampaign, click.utm_campaign.as_deref()),
        ];
        for (dimension, value) in dimensions {
            if let Some(value) = value {
                counts.bump(dimension, bot, value);
            }
        }
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
        let (start, links) = self.open.pop_first().expect("an open window");
        self.closed_before = self.closed_before.max(start + WINDOW_MILLIS);
        let mut rows = Vec::new();
        for (link, counts) in links {
            for ((dimension, bot), values) in counts.values {
                for (value, count) in values {
                    rows.push(WindowRow {
                        link_id: link,
                        window_start: start,
                        dimension,
                        value: value.into_string(),
                        bot,
                        count,
                    });
                }
            }
        }
        rows.sort_by(|a, b| {
            (a.link_id, a.dimension, a.bot, &a.value).cmp(&(
                b.link_id,
                b.dimension,
                b.bot,
                &b.value,
            ))
        });
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
        assert_eq!(count(batch, 7, Dimension::Total, "", true), 1);
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
    }
}
