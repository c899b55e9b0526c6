//! `ScyllaSink` tests: the conformance suite against a real cluster when
//! `RICOCHET_SCYLLA_NODES` is set, and driver-level tests against a node forged
//! by `scylla-proxy` in dry mode (no ScyllaDB server can run on these machines).

use std::net::TcpListener;
use std::time::Duration;

mod forged;

use forged::*;
use ricochet_clickstore::conformance;
use ricochet_clickstore::scylla::{StatementTexts, day_of, hour_of, schema};
use ricochet_clickstore::{
    ClickReader, ClickSink, Counts, Interval, LazyScylla, Replication, ScyllaSink, SinkError,
};
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow};
use scylla::errors::{DbError, WriteType};
use scylla::statement::Consistency;

// ---- Against a real cluster ----------------------------------------------

#[test]
fn passes_the_conformance_suite_on_a_real_cluster() {
    let Ok(nodes) = std::env::var("RICOCHET_SCYLLA_NODES") else {
        println!("skipped: RICOCHET_SCYLLA_NODES is not set (comma-separated host:port list)");
        return;
    };
    let nodes: Vec<String> = nodes
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let keyspace = format!(
        "ricochet_test_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000
    );
    println!("running the click sink conformance suite in keyspace {keyspace} on {nodes:?}");
    {
        let sink = ScyllaSink::connect(&nodes, &keyspace, Replication::Simple { factor: 1 })
            .expect("connect to RICOCHET_SCYLLA_NODES");
        conformance::run(&sink, &sink);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let session = scylla::client::session_builder::SessionBuilder::new()
            .known_nodes(&nodes)
            .build()
            .await
            .expect("connect to drop the test keyspace");
        session
            .query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ())
            .await
            .expect("drop the test keyspace");
    });
}

fn window_row(link: u64, window: i64, dimension: Dimension, value: &str, count: u64) -> WindowRow {
    WindowRow {
        link_id: link,
        window_start: window,
        dimension,
        value: value.into(),
        bot: false,
        count,
    }
}

fn write_timeout() -> DbError {
    DbError::WriteTimeout {
        consistency: Consistency::LocalQuorum,
        received: 1,
        required: 2,
        write_type: WriteType::UnloggedBatch,
    }
}

/// A batch whose rows all fall in one `click_rows` partition: one BATCH frame.
fn one_partition_batch(window: i64) -> WindowBatch {
    WindowBatch {
        node: "node-a".into(),
        shard: 3,
        window_start: window,
        rows: vec![
            window_row(42, window, Dimension::Country, "DE", 7),
            window_row(42, window, Dimension::Country, "FR", 2),
        ],
    }
}

#[test]
fn connects_creates_the_schema_and_prepares_once() {
    let keyspace = "ricochet_forged";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    let texts = StatementTexts::new(keyspace);
    {
        let node = cluster.node();
        assert_eq!(
            node.ddl,
            schema(keyspace, &Replication::Simple { factor: 1 }).to_vec(),
            "keyspace, then both tables, created on start"
        );
        for text in [
            &texts.insert_row,
            &texts.insert_link_window,
            &texts.select_rows,
            &texts.select_link_windows,
        ] {
            assert_eq!(
                node.prepare_requests.iter().filter(|t| *t == text).count(),
                1,
                "{text} prepared once"
            );
        }
        for kind in [Kind::Local, Kind::Peers, Kind::Keyspaces, Kind::Tables] {
            assert!(node.answered.contains(&kind), "driver read {kind:?}");
        }
        let agreement_checks = node
            .answered
            .iter()
            .filter(|kind| **kind == Kind::SchemaVersion)
            .count();
        assert!(
            agreement_checks >= 3,
            "the driver awaited schema agreement after each DDL statement"
        );
        assert!(
            node.unknown
                .iter()
                .all(|text| text.contains("system_schema.scylla_")),
            "only ScyllaDB-only tables were refused: {:?}",
            node.unknown
        );
    }
    for window in [conformance::BASE, conformance::BASE + 10_000] {
        sink.write(&one_partition_batch(window)).unwrap();
    }
    sink.breakdown(
        42,
        conformance::BASE,
        conformance::BASE + 20_000,
        Dimension::Country,
    )
    .unwrap();
    let node = cluster.node();
    let ours = node
        .prepare_requests
        .iter()
        .filter(|t| t.contains(keyspace))
        .count();
    assert_eq!(ours, 4, "writes and reads reuse the prepared statements");
}

#[test]
fn writes_unlogged_batches_of_prepared_absolute_inserts() {
    let keyspace = "ricochet_batches";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    let w0 = conformance::BASE;
    let batch = WindowBatch {
        node: "node-b".into(),
        shard: 5,
        window_start: w0,
        rows: vec![
            window_row(7, w0, Dimension::Total, "", 11),
            window_row(7, w0, Dimension::Country, "DE", 6),
            window_row(7, w0, Dimension::Country, "FR", 5),
            WindowRow {
                bot: true,
                ..window_row(8, w0, Dimension::Total, "", 2)
            },
        ],
    };
    sink.write(&batch).unwrap();

    let node = cluster.node();
    let insert_row = statement_id(&node.texts().insert_row);
    let insert_link = statement_id(&node.texts().insert_link_window);
    // One batch per partition: (7,country) (7,total) (8,total) and the hour.
    assert_eq!(node.batches.len(), 4, "{:#?}", node.batches);
    let mut by_statement: Vec<(Vec<u8>, Values)> = Vec::new();
    for frame in &node.batches {
        assert_eq!(frame.batch_type, 1, "UNLOGGED");
        assert_eq!(frame.consistency, Consistency::LocalQuorum as u16);
        assert!(frame.timestamp.is_some(), "client-side timestamps");
        for statement in &frame.statements {
            assert!(statement.prepared, "prepared statements only");
            by_statement.push((statement.id.clone(), statement.values.clone()));
        }
    }
    let day = day_of(w0).to_be_bytes().to_vec();
    let row = |link: i64, dimension: &str, bot: bool, value: &str, count: i64| {
        (
            insert_row.clone(),
            vec![
                Some(link.to_be_bytes().to_vec()),
                Some(dimension.as_bytes().to_vec()),
                Some(day.clone()),
                Some(w0.to_be_bytes().to_vec()),
                Some(vec![bot as u8]),
                Some(b"node-b".to_vec()),
                Some(5_i32.to_be_bytes().to_vec()),
                Some(value.as_bytes().to_vec()),
                Some(count.to_be_bytes().to_vec()),
            ],
        )
    };
    let link = |link: i64, bot: bool, count: i64| {
        (
            insert_link.clone(),
            vec![
                Some(hour_of(w0).to_be_bytes().to_vec()),
                Some(w0.to_be_bytes().to_vec()),
                Some(link.to_be_bytes().to_vec()),
                Some(vec![bot as u8]),
                Some(b"node-b".to_vec()),
                Some(5_i32.to_be_bytes().to_vec()),
                Some(count.to_be_bytes().to_vec()),
            ],
        )
    };
    let mut expected = vec![
        row(7, "total", false, "", 11),
        row(7, "country", false, "DE", 6),
        row(7, "country", false, "FR", 5),
        row(8, "total", true, "", 2),
        link(7, false, 11),
        link(8, true, 2),
    ];
    expected.sort();
    by_statement.sort();
    assert_eq!(by_statement, expected, "absolute counts, bound in order");
}

#[test]
fn retries_a_forged_write_timeout_without_double_counting() {
    let keyspace = "ricochet_timeout";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    let w0 = conformance::BASE;
    // The replicas store the batch but the coordinator times out: the
    // worst case for a retry, since the first attempt did land.
    cluster
        .node()
        .faults
        .push(Fault::StoreThenFail(write_timeout()));
    sink.write(&one_partition_batch(w0)).unwrap();
    assert_eq!(sink.retries(), 1, "the sink retried once");
    {
        let node = cluster.node();
        assert_eq!(node.batches.len(), 2, "the failed BATCH and its retry");
        let (failed, retried) = (&node.batches[0], &node.batches[1]);
        assert_eq!(
            failed.statements, retried.statements,
            "the retry carries the same statements and absolute values"
        );
        assert!(
            retried.timestamp > failed.timestamp,
            "a newer write timestamp"
        );
    }
    let breakdown = sink
        .breakdown(42, w0, w0 + 10_000, Dimension::Country)
        .unwrap();
    assert_eq!(
        breakdown,
        vec![
            ("DE".to_owned(), Counts { humans: 7, bots: 0 }),
            ("FR".to_owned(), Counts { humans: 2, bots: 0 }),
        ],
        "written twice, counted once"
    );
}

#[test]
fn retries_overload_and_gives_up_after_the_bounded_attempts() {
    let keyspace = "ricochet_overload";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    let w0 = conformance::BASE;

    cluster.node().faults.extend([
        Fault::Reject(DbError::Overloaded),
        Fault::Reject(DbError::Overloaded),
    ]);
    sink.write(&one_partition_batch(w0)).unwrap();
    assert_eq!(sink.retries(), 2);
    {
        let node = cluster.node();
        let frames: Vec<_> = node.batches.iter().map(|b| &b.statements).collect();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|s| *s == frames[0]), "identical retries");
    }

    // More failures than attempts (4): the write reports Unavailable so the
    // spill queue can keep the window, and nothing was stored.
    cluster
        .node()
        .faults
        .extend(std::iter::repeat_n(Fault::Reject(DbError::Overloaded), 10));
    let error = sink.write(&one_partition_batch(w0 + 10_000)).unwrap_err();
    assert!(matches!(error, SinkError::Unavailable(_)), "{error}");
    assert_eq!(sink.retries(), 2 + 3);
    cluster.node().faults.clear();
    assert_eq!(
        sink.series(42, w0, w0 + 20_000, Interval::TenSeconds)
            .unwrap(),
        vec![(w0, Counts::default()), (w0 + 10_000, Counts::default())],
        "no Total rows were in these batches"
    );
    assert_eq!(
        sink.breakdown(42, w0 + 10_000, w0 + 20_000, Dimension::Country)
            .unwrap(),
        vec![],
        "the rejected window was not stored"
    );
}

#[test]
fn does_not_retry_requests_the_cluster_refuses() {
    let keyspace = "ricochet_refused";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    cluster.node().faults.push(Fault::Reject(DbError::Invalid));
    let error = sink
        .write(&one_partition_batch(conformance::BASE))
        .unwrap_err();
    assert!(matches!(error, SinkError::Failed(_)), "{error}");
    assert_eq!(sink.retries(), 0);
    assert_eq!(cluster.node().batches.len(), 1);
}

#[test]
fn retries_only_the_failed_partition_batches() {
    let keyspace = "ricochet_partial";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    let w0 = conformance::BASE;
    let batch = WindowBatch {
        node: "node-a".into(),
        shard: 0,
        window_start: w0,
        rows: (1..=5)
            .map(|link| window_row(link, w0, Dimension::Country, "DE", link))
            .collect(),
    };
    cluster
        .node()
        .faults
        .push(Fault::StoreThenFail(write_timeout()));
    sink.write(&batch).unwrap();
    let node = cluster.node();
    assert_eq!(node.batches.len(), 6, "five partitions, one resent");
    let failed = &node.batches[0].statements;
    assert_eq!(
        node.batches[1..]
            .iter()
            .filter(|b| &b.statements == failed)
            .count(),
        1,
        "the failed batch was resent as it was"
    );
    drop(node);
    for link in 1..=5 {
        assert_eq!(
            sink.breakdown(link, w0, w0 + 10_000, Dimension::Country)
                .unwrap(),
            vec![(
                "DE".to_owned(),
                Counts {
                    humans: link,
                    bots: 0
                }
            )]
        );
    }
}

#[test]
fn reads_sum_over_nodes_shards_and_day_partitions() {
    let keyspace = "ricochet_reads";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    // Two windows either side of a UTC midnight, so two day partitions.
    let midnight = conformance::BASE + 86_400_000;
    let before = midnight - 10_000;
    let batch = |node: &str, shard: u16, window: i64, count: u64| WindowBatch {
        node: node.into(),
        shard,
        window_start: window,
        rows: vec![window_row(9, window, Dimension::Total, "", count)],
    };
    sink.write(&batch("node-a", 0, before, 1)).unwrap();
    sink.write(&batch("node-a", 1, before, 2)).unwrap();
    sink.write(&batch("node-b", 0, midnight, 4)).unwrap();
    sink.write(&batch("node-b", 0, midnight, 4)).unwrap();
    let series = sink
        .series(9, before, midnight + 10_000, Interval::TenSeconds)
        .unwrap();
    assert_eq!(
        series,
        vec![
            (before, Counts { humans: 3, bots: 0 }),
            (midnight, Counts { humans: 4, bots: 0 }),
        ]
    );
    let mut days: Vec<i32> = cluster
        .node()
        .selects
        .iter()
        .filter(|(kind, _)| *kind == Kind::SelectRows)
        .map(|(_, values)| int(&values[2]))
        .collect();
    days.sort();
    assert_eq!(
        days,
        vec![day_of(before), day_of(midnight)],
        "one read per day"
    );
    assert_eq!(
        sink.top_links(before, midnight + 10_000, 5).unwrap(),
        vec![(9, Counts { humans: 7, bots: 0 })]
    );
}

#[test]
fn passes_the_conformance_suite_through_the_driver_against_the_forged_node() {
    let keyspace = "ricochet_conformance";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    conformance::run(&sink, &sink);
}

#[test]
fn reads_from_inside_an_async_runtime() {
    // The control plane calls `ClickReader` from its async handlers.
    let keyspace = "ricochet_async";
    let cluster = ForgedCluster::start(keyspace);
    let sink = cluster.connect(keyspace);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let top = runtime.block_on(async { sink.top_links(0, 10_000, 1) });
    assert_eq!(top.unwrap(), vec![]);
    runtime.block_on(async { drop(sink) });
}

#[test]
fn a_lazy_store_starts_without_the_cluster_and_connects_once_it_is_up() {
    let keyspace = "ricochet_lazy";
    let address = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    // Nothing listens yet: creating the store connects nothing, and writes and
    // reads say "unavailable" (the engine spills, the API answers 503).
    let lazy = LazyScylla::new(
        &[address.to_string()],
        keyspace,
        Replication::Simple { factor: 1 },
    )
    .unwrap();
    let batch = one_partition_batch(conformance::BASE);
    assert!(matches!(lazy.write(&batch), Err(SinkError::Unavailable(_))));
    assert!(matches!(
        lazy.top_links(0, conformance::BASE, 10),
        Err(SinkError::Unavailable(_))
    ));

    let cluster = ForgedCluster::start_at(keyspace, address);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match lazy.write(&batch) {
            Ok(()) => break,
            Err(SinkError::Unavailable(_)) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("the store never connected: {error}"),
        }
    }
    assert!(
        !cluster.node().batches.is_empty(),
        "the window reached the cluster once it was up"
    );
    let breakdown = lazy
        .breakdown(
            42,
            conformance::BASE,
            conformance::BASE + 10_000,
            Dimension::Country,
        )
        .unwrap();
    assert_eq!(
        breakdown,
        vec![
            ("DE".to_owned(), Counts { humans: 7, bots: 0 }),
            ("FR".to_owned(), Counts { humans: 2, bots: 0 }),
        ]
    );
}
