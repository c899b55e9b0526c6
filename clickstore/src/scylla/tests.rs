//! Unit tests of write planning, schema text and error classification.
use super::schema::valid_keyspace;
use super::*;
use ricochet_model::clicks::WindowRow;
use scylla::errors::WriteType;

fn row(link: u64, window: i64, dimension: Dimension, value: &str, count: u64) -> WindowRow {
    WindowRow {
        link_id: link,
        window_start: window,
        dimension,
        value: value.into(),
        bot: false,
        count,
    }
}

fn db(error: DbError) -> ExecutionError {
    ExecutionError::LastAttemptError(RequestAttemptError::DbError(error, "forged".into()))
}

#[test]
fn transient_cluster_errors_are_retryable() {
    for error in [
        db(DbError::Overloaded),
        db(DbError::IsBootstrapping),
        db(DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1,
        }),
        db(DbError::WriteTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            write_type: WriteType::UnloggedBatch,
        }),
        db(DbError::ReadTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            data_present: false,
        }),
        ExecutionError::RequestTimeout(Duration::from_secs(10)),
        ExecutionError::EmptyPlan,
        ExecutionError::LastAttemptError(RequestAttemptError::UnableToAllocStreamId),
    ] {
        assert!(
            matches!(classify_execution(&error), SinkError::Unavailable(_)),
            "{error:?}"
        );
    }
}

#[test]
fn bad_requests_are_failures() {
    for error in [
        db(DbError::SyntaxError),
        db(DbError::Invalid),
        db(DbError::Unauthorized),
        db(DbError::ConfigError),
        db(DbError::ProtocolError),
    ] {
        assert!(
            matches!(classify_execution(&error), SinkError::Failed(_)),
            "{error:?}"
        );
    }
    assert!(matches!(
        classify_connect(&NewSessionError::EmptyKnownNodesList),
        SinkError::Failed(_)
    ));
    assert!(matches!(
        classify_connect(&NewSessionError::FailedToResolveAnyHostname(vec![
            "nowhere:9042".into()
        ])),
        SinkError::Unavailable(_)
    ));
}

#[test]
fn plans_one_partition_per_batch() {
    let w0 = 1_767_225_600_000;
    let mut rows = vec![
        row(1, w0, Dimension::Total, "", 5),
        row(1, w0, Dimension::Country, "DE", 3),
        row(1, w0, Dimension::Country, "FR", 2),
        row(2, w0, Dimension::Total, "", 1),
    ];
    // One partition with more rows than a batch holds.
    rows.extend((0..150).map(|i| row(3, w0, Dimension::Referrer, &format!("r{i}"), 1)));
    let batch = WindowBatch {
        node: "node-a".into(),
        shard: 7,
        window_start: w0,
        rows,
    };
    let chunks = plan_write(&batch);
    let sizes: Vec<(bool, usize)> = chunks
        .iter()
        .map(|c| (matches!(c, WriteChunk::Rows(_)), c.len()))
        .collect();
    // Partitions in key order: (1,country) (1,total) (2,total)
    // (3,referrer) split in two, then the one hour partition.
    assert_eq!(
        sizes,
        vec![
            (true, 2),
            (true, 1),
            (true, 1),
            (true, 100),
            (true, 50),
            (false, 2)
        ]
    );
    let WriteChunk::Rows(total) = &chunks[1] else {
        panic!("rows first")
    };
    assert_eq!(
        total[0],
        (
            1,
            "total",
            day_of(w0),
            CqlTimestamp(w0),
            false,
            "node-a".into(),
            7,
            String::new(),
            5
        )
    );
    let WriteChunk::LinkWindows(links) = &chunks[5] else {
        panic!("link windows last")
    };
    assert_eq!(
        links[0],
        (
            hour_of(w0),
            CqlTimestamp(w0),
            1,
            false,
            "node-a".into(),
            7,
            5
        )
    );
}

#[test]
fn link_ids_round_trip_through_bigint() {
    for link in [0, 1, u64::MAX, 1 << 63] {
        assert_eq!(link_from_cql(link_to_cql(link)), link);
    }
}

#[test]
fn keyspace_names_are_plain_identifiers() {
    assert!(valid_keyspace("ricochet_clicks"));
    assert!(!valid_keyspace(""));
    assert!(!valid_keyspace("1abc"));
    assert!(!valid_keyspace("a; DROP KEYSPACE x"));
    assert!(!valid_keyspace(&"a".repeat(49)));
}

#[test]
fn replication_renders_as_cql() {
    assert_eq!(
        Replication::Simple { factor: 3 }.to_cql(),
        "{'class': 'SimpleStrategy', 'replication_factor': 3}"
    );
    assert_eq!(
        Replication::NetworkTopology {
            datacenters: vec![("dc1".into(), 3), ("dc2".into(), 2)]
        }
        .to_cql(),
        "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
    );
}
