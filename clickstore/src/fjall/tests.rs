//! FjallSink's own tests: the conformance suite, rollups, retention, reopen.
use super::*;
use crate::conformance::{batch, row};
use std::time::Duration;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// Late enough that every bucket written is due for its rollup.
const LATER: UnixMillis = i64::MAX;

#[test]
fn passes_the_sink_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FjallSink::open(dir.path()).unwrap();
    crate::conformance::run(&sink, &sink);
}

fn total(link: u64, window: i64, count: u64) -> WindowBatch {
    batch(
        "n",
        0,
        window,
        vec![row(link, window, Dimension::Total, "", false, count)],
    )
}

fn humans(sink: &FjallSink, link: u64, interval: Interval, from: i64, to: i64) -> Vec<u64> {
    sink.series(link, from, to, interval)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c.humans)
        .collect()
}

#[test]
fn keeps_rows_and_dirty_marks_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let sink = FjallSink::open(dir.path()).unwrap();
        sink.write(&total(7, 0, 3)).unwrap();
        sink.write(&total(7, HOUR, 4)).unwrap();
        sink.persist().unwrap();
    }
    let sink = FjallSink::open(dir.path()).unwrap();
    assert_eq!(humans(&sink, 7, Interval::TenSeconds, 0, 10_000), [3]);
    assert_eq!(sink.dirty_buckets(), 5, "two minutes, two hours, one day");
    assert_eq!(sink.roll_up(LATER).unwrap(), 5);
    assert_eq!(sink.dirty_buckets(), 0);
    assert_eq!(humans(&sink, 7, Interval::Hour, 0, 2 * HOUR), [3, 4]);
    assert_eq!(humans(&sink, 7, Interval::Day, 0, DAY), [7]);
}

#[test]
fn windows_roll_up_into_minutes_hours_and_days() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FjallSink::open(dir.path()).unwrap();
    // Windows across two minutes, two hours and two days; one rewritten.
    for (window, count) in [(0, 1), (10_000, 2), (MINUTE, 4), (HOUR, 8), (DAY, 16)] {
        sink.write(&total(1, window, count)).unwrap();
    }
    sink.write(&total(1, 10_000, 3)).unwrap();
    let check = |sink: &FjallSink| {
        assert_eq!(humans(sink, 1, Interval::Minute, 0, 2 * MINUTE), [4, 4]);
        assert_eq!(humans(sink, 1, Interval::Hour, 0, 2 * HOUR), [8, 8]);
        assert_eq!(humans(sink, 1, Interval::Day, 0, 2 * DAY), [16, 16]);
        // A breakdown over a long unaligned range reads every level once.
        let all = sink.breakdown(1, 5_000, 2 * DAY, Dimension::Total).unwrap();
        assert_eq!(
            all,
            vec![(
                String::new(),
                Counts {
                    humans: 31,
                    bots: 0
                }
            )]
        );
        let top = sink.top_links(0, 2 * DAY, 5).unwrap();
        assert_eq!(
            top,
            vec![(
                1,
                Counts {
                    humans: 32,
                    bots: 0
                }
            )]
        );
    };
    check(&sink);
    // Only buckets that ended a while ago roll up.
    assert_eq!(sink.roll_up(MINUTE).unwrap(), 0);
    assert_eq!(sink.roll_up(2 * MINUTE + 20_000).unwrap(), 2, "two minutes");
    check(&sink);
    sink.roll_up(LATER).unwrap();
    assert_eq!(sink.dirty_buckets(), 0);
    check(&sink);
    // With the windows and minutes gone, hours and days still answer.
    let retention = Retention {
        window: Some(Duration::ZERO),
        minute: Some(Duration::ZERO),
        hour: None,
        day: None,
    };
    sink.prune(&retention, 3 * DAY).unwrap();
    assert_eq!(humans(&sink, 1, Interval::Minute, 0, 2 * MINUTE), [0, 0]);
    assert_eq!(humans(&sink, 1, Interval::Hour, 0, 2 * HOUR), [8, 8]);
    assert_eq!(humans(&sink, 1, Interval::Day, 0, 2 * DAY), [16, 16]);
    assert_eq!(sink.top_links(0, 2 * DAY, 5).unwrap()[0].1.humans, 32);
}

#[test]
fn a_write_after_a_rollup_counts_once_and_is_rolled_again() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FjallSink::open(dir.path()).unwrap();
    for window in 0..6 {
        sink.write(&total(7, window * 10_000, 1)).unwrap();
    }
    sink.roll_up(LATER).unwrap();
    assert_eq!(humans(&sink, 7, Interval::Hour, 0, HOUR), [6]);
    sink.write(&total(7, 20_000, 1)).unwrap(); // a retry
    sink.write(&total(7, 30_000, 4)).unwrap(); // a re-flush, 1 → 4
    sink.write(&total(7, MINUTE, 5)).unwrap(); // a late window
    let check = |sink: &FjallSink| {
        assert_eq!(humans(sink, 7, Interval::Minute, 0, 2 * MINUTE), [9, 5]);
        assert_eq!(humans(sink, 7, Interval::Hour, 0, HOUR), [14]);
        assert_eq!(humans(sink, 7, Interval::Day, 0, DAY), [14]);
        assert_eq!(sink.top_links(0, HOUR, 1).unwrap()[0].1.humans, 14);
    };
    check(&sink);
    assert_eq!(sink.dirty_buckets(), 4, "two minutes, an hour, a day");
    sink.roll_up(LATER).unwrap();
    check(&sink);
    // A batch naming one row twice: the last value stands, counted once.
    let mut twice = total(7, 70_000, 2);
    twice.rows.push(twice.rows[0].clone());
    twice.rows[1].count = 3;
    sink.write(&twice).unwrap();
    assert_eq!(humans(&sink, 7, Interval::TenSeconds, 70_000, 80_000), [3]);
    sink.roll_up(LATER).unwrap();
    assert_eq!(humans(&sink, 7, Interval::Hour, 0, HOUR), [17]);
}

#[test]
fn a_write_during_a_rollup_keeps_the_bucket_dirty() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FjallSink::open(dir.path()).unwrap();
    sink.write(&total(7, 0, 1)).unwrap();
    let mark = sink.dirty()[&(Level::Minute, 0)];
    sink.roll_up_bucket(Level::Minute, 0).unwrap();
    sink.write(&total(7, 10_000, 2)).unwrap();
    sink.clear_mark(Level::Minute, 0, mark).unwrap();
    assert!(
        sink.dirty().contains_key(&(Level::Minute, 0)),
        "marked again"
    );
    assert_eq!(humans(&sink, 7, Interval::Minute, 0, MINUTE), [3]);
    sink.roll_up(LATER).unwrap();
    assert_eq!(humans(&sink, 7, Interval::Minute, 0, MINUTE), [3]);
}

/// A deterministic pseudo-random source for the randomized test.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Every answer the reader gives for a fixed set of queries.
fn answers(sink: &FjallSink, start: i64) -> Vec<String> {
    let mut out = Vec::new();
    let ranges = [
        (start, start + 2 * DAY),
        (start + 5_000, start + DAY + 70_000),
        (start + HOUR - 30_000, start + 3 * HOUR + 10_000),
        (start + 37 * MINUTE, start + 38 * MINUTE),
    ];
    for (from, to) in ranges {
        for link in 1..=6 {
            for interval in [Interval::Minute, Interval::Hour, Interval::Day] {
                out.push(format!(
                    "{:?}",
                    sink.series(link, from, to, interval).unwrap()
                ));
            }
            for dimension in [Dimension::Total, Dimension::Country, Dimension::Referrer] {
                out.push(format!(
                    "{:?}",
                    sink.breakdown(link, from, to, dimension).unwrap()
                ));
            }
        }
        out.push(format!("{:?}", sink.top_links(from, to, 4).unwrap()));
    }
    out
}

#[test]
fn rolled_up_answers_equal_the_windows_answers() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FjallSink::open(dir.path()).unwrap();
    let start = crate::conformance::BASE;
    let mut rng = Rng(7);
    let write_some = |sink: &FjallSink, rng: &mut Rng| {
        for _ in 0..150 {
            let window = start + rng.below(2 * DAY as u64 / 10_000) as i64 * 10_000;
            let (node, shard) = (["a", "b"][rng.below(2) as usize], rng.below(2) as u16);
            let mut rows = Vec::new();
            for link in 1..=6 {
                if rng.below(3) == 0 {
                    continue;
                }
                let bot = rng.below(4) == 0;
                let count = 1 + rng.below(9);
                rows.push(row(link, window, Dimension::Total, "", bot, count));
                let country = ["DE", "FR", "US"][rng.below(3) as usize];
                rows.push(row(link, window, Dimension::Country, country, bot, count));
                if rng.below(2) == 0 {
                    let referrer = ["a.example", "b.example"][rng.below(2) as usize];
                    rows.push(row(link, window, Dimension::Referrer, referrer, bot, 1));
                }
            }
            sink.write(&batch(node, shard, window, rows)).unwrap();
        }
    };
    write_some(&sink, &mut rng);
    let before = answers(&sink, start);
    assert!(
        before.iter().any(|a| a.contains("humans: ")),
        "data to compare"
    );
    sink.roll_up(start + DAY + 2 * HOUR).unwrap();
    assert_eq!(answers(&sink, start), before, "partly rolled up");
    sink.roll_up(LATER).unwrap();
    assert_eq!(sink.dirty_buckets(), 0);
    assert_eq!(answers(&sink, start), before, "all rolled up");
    // More windows (some replacing earlier ones) after the rollup.
    write_some(&sink, &mut rng);
    let again = answers(&sink, start);
    assert_ne!(again, before);
    sink.roll_up(LATER).unwrap();
    assert_eq!(answers(&sink, start), again);
}

#[test]
fn ranges_split_into_whole_buckets() {
    let parts = pieces(5_000, DAY + 70_000);
    assert_eq!(
        parts,
        vec![
            (Level::Window, 5_000, 60_000),
            (Level::Minute, 60_000, 3_600_000),
            (Level::Hour, 3_600_000, DAY),
            (Level::Minute, DAY, DAY + 60_000),
            (Level::Window, DAY + 60_000, DAY + 70_000),
        ]
    );
    assert_eq!(pieces(0, 3 * DAY), vec![(Level::Day, 0, 3 * DAY)]);
    let covered: i64 = parts.iter().map(|(_, a, b)| b - a).sum();
    assert_eq!(covered, DAY + 65_000, "every millisecond once: {parts:?}");
    for window in parts.windows(2) {
        assert_eq!(window[0].2, window[1].1, "contiguous: {parts:?}");
    }
}

#[test]
fn dirty_buckets_are_read_from_their_parts() {
    let mut dirty = BTreeMap::new();
    dirty.insert((Level::Day, 0), 1);
    dirty.insert((Level::Hour, HOUR), 2);
    let mut out = Vec::new();
    clean_pieces(&dirty, Level::Day, 0, 2 * DAY, &mut out);
    assert_eq!(
        out,
        vec![
            (Level::Hour, 0, HOUR),
            (Level::Minute, HOUR, 2 * HOUR),
            (Level::Hour, 2 * HOUR, DAY),
            (Level::Day, DAY, 2 * DAY),
        ]
    );
}

#[test]
fn retention_prunes_old_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sink = FjallSink::open(dir.path()).unwrap();
    sink.write(&total(1, 0, 1)).unwrap();
    sink.write(&total(1, 100 * DAY, 1)).unwrap();
    sink.roll_up(LATER).unwrap();
    let now = 100 * DAY + 1;
    let removed = sink.prune(&Retention::default(), now).unwrap();
    assert!(removed > 0);
    assert_eq!(humans(&sink, 1, Interval::TenSeconds, 0, 10_000), [0]);
    assert_eq!(
        humans(&sink, 1, Interval::Hour, 0, HOUR),
        [1],
        "hours: 400 days"
    );
    assert_eq!(
        humans(&sink, 1, Interval::Day, 0, DAY),
        [1],
        "days: forever"
    );
    assert_eq!(
        humans(
            &sink,
            1,
            Interval::TenSeconds,
            100 * DAY,
            100 * DAY + 10_000
        ),
        [1]
    );
}
