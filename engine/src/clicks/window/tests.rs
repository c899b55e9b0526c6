//! Window counting and row building: counts match a plain count of every
//! click, rows come sorted, and a window split at its cap loses no click.

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
        .find(|r| r.link_id == link && r.dimension == dimension && r.value == value && r.bot == bot)
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

/// Clicks over `links` links with a few countries and browsers, some from
/// bots, all in the window starting at 0; and the plain count of each
/// (link, dimension, value, bot) row they must sum to.
type Expected = std::collections::HashMap<(u64, Dimension, String, bool), u64>;

fn busy_window(windows: &mut WindowAggregator, clicks: usize, links: u64) -> Expected {
    let countries = ["DE", "FR", "US", "JP", "BR"];
    let browsers = [None, Some("Firefox"), Some("Chrome")];
    let mut expected = Expected::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for at in 0..clicks {
        let link = next(links);
        let bot = next(7) == 0;
        let country = countries[next(5) as usize];
        let browser = browsers[next(3) as usize];
        windows.add(
            (at % 9_000) as i64,
            link,
            &Enriched {
                bot,
                country: Some(Arc::from(country)),
                browser: browser.map(Arc::from),
                ..Enriched::default()
            },
        );
        let mut row = |dimension, value: &str| {
            *expected
                .entry((link, dimension, value.to_owned(), bot))
                .or_default() += 1;
        };
        row(Dimension::Total, "");
        row(Dimension::Country, country);
        if let Some(browser) = browser {
            row(Dimension::Browser, browser);
        }
    }
    expected
}

/// Every batch's rows added up per key, as a reader sums nodes and shards.
fn summed(batches: &[WindowBatch]) -> Expected {
    let mut got = Expected::new();
    for batch in batches {
        for r in &batch.rows {
            *got.entry((r.link_id, r.dimension, r.value.clone(), r.bot))
                .or_default() += r.count;
        }
    }
    got
}

#[test]
fn a_window_at_its_cap_is_written_in_parts_that_lose_no_click() {
    let cap = 1_000;
    let mut windows = WindowAggregator::new("n1", 3).with_max_rows(cap);
    // About 27,000 rows: some 27 parts, fewer than `MAX_PARTS`.
    let expected = busy_window(&mut windows, 10_000, 5_000);
    assert_eq!(windows.open_windows(), 1, "a split window stays open");
    assert!(windows.open_rows() < cap + 32 * 3);
    let splits = windows.splits();
    assert!(
        (10..u64::from(MAX_PARTS) - 1).contains(&splits),
        "{splits} splits"
    );

    let batches = windows.close_all();
    assert_eq!(batches.len() as u64, splits + 1, "the parts, then the rest");
    for (part, batch) in batches.iter().enumerate() {
        // Part p of shard 3 is its own source: shard 3 + 1024 p.
        assert_eq!(batch.shard, 3 + PART_STRIDE * part as u16);
        assert_eq!((batch.node.as_str(), batch.window_start), ("n1", 0));
        // At most the cap, plus the adds applied in the batch that reached it.
        assert!(batch.rows.len() < cap + 32 * 3, "{}", batch.rows.len());
    }
    // Each link's total, and each value's share, is exact once the parts are summed.
    assert_eq!(summed(&batches), expected);
    let total: u64 = (batches.iter().flat_map(|b| &b.rows))
        .filter(|r| r.dimension == Dimension::Total)
        .map(|r| r.count)
        .sum();
    assert_eq!(total, 10_000);
}

#[test]
fn windows_under_the_cap_are_one_batch_and_no_cap_means_one_batch() {
    let mut capped = WindowAggregator::new("n1", 0).with_max_rows(100_000);
    let expected = busy_window(&mut capped, 10_000, 2_000);
    assert_eq!(capped.splits(), 0);
    let batches = capped.close_all();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].shard, 0);
    assert_eq!(summed(&batches), expected);

    let mut uncapped = WindowAggregator::new("n1", 0).with_max_rows(0);
    let expected = busy_window(&mut uncapped, 30_000, 5_000);
    assert_eq!(uncapped.splits(), 0);
    assert_eq!(summed(&uncapped.close_all()), expected);
}

#[test]
fn the_last_part_of_a_window_is_not_capped() {
    let mut windows = WindowAggregator::new("n1", 1).with_max_rows(1_000);
    let expected = busy_window(&mut windows, 200_000, 100_000);
    assert_eq!(windows.splits(), u64::from(MAX_PARTS) - 1);
    let batches = windows.close_all();
    assert_eq!(batches.len(), usize::from(MAX_PARTS));
    let last = batches.last().expect("parts");
    assert_eq!(last.shard, 1 + PART_STRIDE * (MAX_PARTS - 1));
    assert!(last.rows.len() > 10_000, "{}", last.rows.len());
    assert_eq!(summed(&batches), expected);
}

#[test]
fn split_windows_reuse_spares_and_parts_are_taken_with_due_windows() {
    let mut windows = WindowAggregator::new("n1", 0).with_max_rows(1_000);
    busy_window(&mut windows, 5_000, 5_000);
    let parts = windows.take_due(0, 2_000);
    assert!(
        !parts.is_empty(),
        "parts are handed over before their window closes"
    );
    assert_eq!(windows.open_windows(), 1);
    // The writer builds them and gives their tables back: later windows
    // reuse them, so memory stays at a few tables of the cap's size.
    let mut builder = RowBuilder::default();
    let mut memory = Vec::new();
    for round in 0..6 {
        if round > 0 {
            busy_window(&mut windows, 5_000, 5_000);
        }
        for part in windows.take_all() {
            let (_, spare) = builder.build(part);
            windows.reuse(spare);
        }
        memory.push(windows.memory_bytes());
    }
    assert_eq!(windows.open_windows(), 0);
    // The first window kept what it allocated; the next ones need no more.
    assert!(memory[2..].iter().all(|&m| m <= memory[1]), "{memory:?}");
}

#[test]
fn retried_parts_do_not_double_count_in_a_store() {
    use ricochet_clickstore::{ClickReader, ClickSink, FjallSink, Interval};
    let mut windows = WindowAggregator::new("n1", 2).with_max_rows(1_000);
    let expected = busy_window(&mut windows, 20_000, 3_000);
    let batches = windows.close_all();
    assert!(batches.len() > 1);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sink = FjallSink::open(dir.path()).expect("the store opens");
    // Every part written, then every part again (a retry or a spill replay).
    for batch in batches.iter().chain(&batches) {
        sink.write(batch).expect("the write");
    }
    for link in [0, 1, 7, 2_999] {
        let series =
            (sink.series(link, 0, WINDOW_MILLIS, Interval::TenSeconds)).expect("the series");
        let humans = expected
            .get(&(link, Dimension::Total, String::new(), false))
            .copied();
        let bots = (expected.get(&(link, Dimension::Total, String::new(), true))).copied();
        assert_eq!(series.len(), 1);
        assert_eq!(
            (series[0].1.humans, series[0].1.bots),
            (humans.unwrap_or(0), bots.unwrap_or(0)),
            "link {link}"
        );
        let countries =
            (sink.breakdown(link, 0, WINDOW_MILLIS, Dimension::Country)).expect("the breakdown");
        let human_countries: u64 = countries.iter().map(|(_, c)| c.humans).sum();
        assert_eq!(human_countries, humans.unwrap_or(0));
    }
}

/// The process's resident bytes (Linux), for the memory measurement below.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = (statm.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Where a window's memory goes, per distinct (link, profile) entry and per
/// row, as docs/CLICKS.md ("Memory and the window cap") reports it:
/// `cargo nextest run -p ricochet-engine --lib window_memory --run-ignored only --release --no-capture`.
#[test]
#[ignore = "a measurement: prints figures, checks nothing timing-dependent"]
fn window_memory_per_entry_and_row() {
    let plain = Enriched::default();
    let profiled = Enriched {
        country: Some(Arc::from("DE")),
        city: Some(Arc::from("Berlin")),
        browser: Some(Arc::from("Firefox")),
        os: Some(Arc::from("Linux")),
        ..Enriched::default()
    };
    for (name, click, cap) in [
        ("plain, no cap", &plain, 0),
        ("4 values, no cap", &profiled, 0),
        ("plain, default cap", &plain, DEFAULT_MAX_ROWS),
        ("4 values, default cap", &profiled, DEFAULT_MAX_ROWS),
    ] {
        let links = 1_000_000u64;
        let before = resident_bytes();
        let mut windows = WindowAggregator::new("n1", 0).with_max_rows(cap);
        let mut builder = RowBuilder::default();
        for link in 0..links {
            windows.add(1_000, link * 7_919, click);
        }
        let mut parts = windows.take_all();
        let (entries, splits) = (links as f64, windows.splits());
        let open = parts.iter().map(ClosedWindow::memory_bytes).sum::<usize>();
        let counted = resident_bytes() - before;
        // Build the last (largest) part, as the writer does, and keep its rows.
        let last = parts.pop().expect("a window");
        let (batch, spare) = builder.build(last);
        let values: usize = batch.rows.iter().map(|r| r.value.capacity()).sum();
        let row_bytes = batch.rows.capacity() * size_of::<WindowRow>() + values;
        let built = resident_bytes() - before;
        eprintln!(
            "{name}: {entries} entries, {parts} parts ({splits} splits); tables {open} B \
             ({:.1} B/entry), {} rows in the last part: rows {row_bytes} B ({:.1} B/row), \
             sort entries {} B; RSS after counting +{counted} B, after building +{built} B",
            open as f64 / entries,
            batch.rows.len(),
            row_bytes as f64 / batch.rows.len() as f64,
            builder.memory_bytes(),
            parts = parts.len() + 1,
        );
        drop((batch, spare, parts));
    }
}
