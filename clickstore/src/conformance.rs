//! The conformance suite every click sink passes (feature `test-util`): sums
//! over nodes and shards, humans and bots apart, idempotent rewrites, range
//! bounds, breakdown and top-links order. Each sink's tests call `run` on a
//! fresh, empty store.

use ricochet_model::clicks::{Dimension, OTHER, WindowBatch, WindowRow};

use crate::contract::{ClickReader, ClickSink, Counts, Interval};

/// A fixed instant (2026-01-01T00:00:00Z) the suite's windows hang off.
pub const BASE: i64 = 1_767_225_600_000;

/// One window row (also used by the sinks' own tests).
pub fn row(
    link: u64,
    window: i64,
    dimension: Dimension,
    value: &str,
    bot: bool,
    count: u64,
) -> WindowRow {
    WindowRow {
        link_id: link,
        window_start: window,
        dimension,
        value: value.to_owned(),
        bot,
        count,
    }
}

/// One shard's batch for a window.
pub fn batch(node: &str, shard: u16, window: i64, rows: Vec<WindowRow>) -> WindowBatch {
    WindowBatch {
        node: node.to_owned(),
        shard,
        window_start: window,
        rows,
    }
}

fn counts(humans: u64, bots: u64) -> Counts {
    Counts { humans, bots }
}

/// Runs the whole suite; panics on the first difference.
pub fn run(sink: &dyn ClickSink, reader: &dyn ClickReader) {
    let w0 = BASE;
    let w1 = BASE + 10_000;
    let w7 = BASE + 70_000;
    let total = Dimension::Total;
    let country = Dimension::Country;

    // Two nodes, two shards, humans and bots, several dimensions.
    let first = batch(
        "node-a",
        0,
        w0,
        vec![
            row(1, w0, total, "", false, 5),
            row(1, w0, total, "", true, 2),
            row(1, w0, country, "DE", false, 3),
            row(1, w0, country, "FR", false, 2),
            row(1, w0, country, "DE", true, 2),
            row(2, w0, total, "", false, 1),
        ],
    );
    let second = batch(
        "node-a",
        1,
        w0,
        vec![
            row(1, w0, total, "", false, 4),
            row(1, w0, country, "FR", false, 4),
        ],
    );
    let third = batch(
        "node-b",
        0,
        w1,
        vec![
            row(1, w1, total, "", false, 6),
            row(1, w1, country, "DE", false, 6),
            row(1, w1, Dimension::Browser, "Firefox ñ 🦊", false, 6),
        ],
    );
    let late = batch("node-b", 0, w7, vec![row(3, w7, total, "", false, 9)]);
    for batch in [&first, &second, &third, &late] {
        sink.write(batch).expect("write");
    }

    let series = reader
        .series(1, w0, w0 + 20_000, Interval::TenSeconds)
        .unwrap();
    assert_eq!(
        series,
        vec![(w0, counts(9, 2)), (w1, counts(6, 0))],
        "sums over shards and nodes"
    );
    let minute = reader
        .series(1, w0, w0 + 120_000, Interval::Minute)
        .unwrap();
    assert_eq!(
        minute,
        vec![(w0, counts(15, 2)), (w0 + 60_000, counts(0, 0))],
        "empty buckets included"
    );
    let bounded = reader
        .series(1, w1, w1 + 10_000, Interval::TenSeconds)
        .unwrap();
    assert_eq!(bounded, vec![(w1, counts(6, 0))], "[from, to) bounds");
    assert_eq!(
        reader
            .series(99, w0, w0 + 20_000, Interval::TenSeconds)
            .unwrap(),
        vec![(w0, counts(0, 0)), (w1, counts(0, 0))],
        "unknown links have empty series"
    );

    let by_country = reader.breakdown(1, w0, w0 + 20_000, country).unwrap();
    assert_eq!(
        by_country,
        vec![
            ("DE".to_owned(), counts(9, 2)),
            ("FR".to_owned(), counts(6, 0))
        ]
    );
    let by_browser = reader
        .breakdown(1, w0, w0 + 20_000, Dimension::Browser)
        .unwrap();
    assert_eq!(
        by_browser,
        vec![
            (OTHER.to_owned(), counts(9, 2)),
            ("Firefox ñ 🦊".to_owned(), counts(6, 0))
        ],
        "values keep their bytes; clicks without a stored browser are `Other`"
    );
    let by_device = reader
        .breakdown(1, w0, w0 + 20_000, Dimension::Device)
        .unwrap();
    assert_eq!(
        by_device,
        vec![
            (OTHER.to_owned(), counts(15, 0)),
            ("bot".to_owned(), counts(0, 2))
        ],
        "the device of every bot is `bot`"
    );

    // A retry of the same batch changes nothing; a re-flush with higher
    // absolute counts replaces the earlier values.
    sink.write(&first).unwrap();
    sink.write(&first).unwrap();
    assert_eq!(
        reader
            .series(1, w0, w0 + 10_000, Interval::TenSeconds)
            .unwrap(),
        vec![(w0, counts(9, 2))],
        "retries never double-count"
    );
    let mut grown = first.clone();
    grown.rows[0].count = 8;
    sink.write(&grown).unwrap();
    assert_eq!(
        reader
            .series(1, w0, w0 + 10_000, Interval::TenSeconds)
            .unwrap(),
        vec![(w0, counts(12, 2))]
    );

    let top = reader.top_links(w0, w7 + 10_000, 10).unwrap();
    assert_eq!(
        top,
        vec![(1, counts(18, 2)), (3, counts(9, 0)), (2, counts(1, 0))]
    );
    assert_eq!(
        reader.top_links(w0, w7 + 10_000, 1).unwrap(),
        vec![(1, counts(18, 2))]
    );
    assert_eq!(
        reader.top_links(w7, w7 + 10_000, 10).unwrap(),
        vec![(3, counts(9, 0))]
    );
}
