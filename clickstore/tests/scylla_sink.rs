//! `ScyllaSink` tests: the conformance suite against a real cluster when
//! `RICOCHET_SCYLLA_NODES` is set, and driver-level tests against a node forged
//! by `scylla-proxy` in dry mode (no ScyllaDB server can run on these machines).

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ricochet_clickstore::conformance;
use ricochet_clickstore::scylla::{StatementTexts, day_of, hour_of, schema};
use ricochet_clickstore::{
    ClickReader, ClickSink, Counts, Interval, LazyScylla, Replication, ScyllaSink, SinkError,
    WriteRetry,
};
use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow};
use scylla::errors::{DbError, WriteType};
use scylla::statement::Consistency;
use scylla_proxy::{
    Condition, Node, Proxy, Reaction as _, RequestFrame, RequestOpcode, RequestReaction,
    RequestRule, ResponseFrame, ResponseOpcode, RunningProxy,
};

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

// ---- A ScyllaDB node forged with scylla-proxy -----------------------------
// The proxy runs in dry mode: no server behind it, every response below is
// forged by `FakeNode::respond`. It answers the driver's handshake and the
// metadata queries it sends on connect, records DDL, PREPARE, BATCH and
// EXECUTE frames, and keeps the two click tables in an in-memory model (rows
// replaced by primary key, last write timestamp wins) so reads can be checked
// through the driver. The model is this test's, not ScyllaDB's storage.

/// CQL types used by the forged metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cql {
    BigInt,
    Boolean,
    Int,
    Text,
    Timestamp,
    Uuid,
    Inet,
    ListText,
    MapTextText,
}

/// Protocol v4 request and response bodies, written and read by hand.
mod wire {
    use super::Cql;

    pub fn short(out: &mut Vec<u8>, value: u16) {
        out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn int(out: &mut Vec<u8>, value: i32) {
        out.extend_from_slice(&value.to_be_bytes());
    }

    pub fn string(out: &mut Vec<u8>, value: &str) {
        short(out, value.len() as u16);
        out.extend_from_slice(value.as_bytes());
    }

    pub fn short_bytes(out: &mut Vec<u8>, value: &[u8]) {
        short(out, value.len() as u16);
        out.extend_from_slice(value);
    }

    pub fn value(out: &mut Vec<u8>, value: &[u8]) {
        int(out, value.len() as i32);
        out.extend_from_slice(value);
    }

    pub fn cql_type(out: &mut Vec<u8>, typ: Cql) {
        match typ {
            Cql::BigInt => short(out, 0x0002),
            Cql::Boolean => short(out, 0x0004),
            Cql::Int => short(out, 0x0009),
            Cql::Text => short(out, 0x000D),
            Cql::Timestamp => short(out, 0x000B),
            Cql::Uuid => short(out, 0x000C),
            Cql::Inet => short(out, 0x0010),
            Cql::ListText => {
                short(out, 0x0020);
                short(out, 0x000D);
            }
            Cql::MapTextText => {
                short(out, 0x0021);
                short(out, 0x000D);
                short(out, 0x000D);
            }
        }
    }

    pub fn text_list(items: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        int(&mut out, items.len() as i32);
        for item in items {
            value(&mut out, item.as_bytes());
        }
        out
    }

    pub fn text_map(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        int(&mut out, entries.len() as i32);
        for (key, item) in entries {
            value(&mut out, key.as_bytes());
            value(&mut out, item.as_bytes());
        }
        out
    }

    /// Reads a request body front to back.
    pub struct Reader<'a>(pub &'a [u8]);

    impl<'a> Reader<'a> {
        pub fn take(&mut self, n: usize) -> &'a [u8] {
            let (head, rest) = self.0.split_at(n);
            self.0 = rest;
            head
        }

        pub fn byte(&mut self) -> u8 {
            self.take(1)[0]
        }

        pub fn short(&mut self) -> u16 {
            u16::from_be_bytes(self.take(2).try_into().unwrap())
        }

        pub fn int(&mut self) -> i32 {
            i32::from_be_bytes(self.take(4).try_into().unwrap())
        }

        pub fn long(&mut self) -> i64 {
            i64::from_be_bytes(self.take(8).try_into().unwrap())
        }

        pub fn short_bytes(&mut self) -> Vec<u8> {
            let n = self.short() as usize;
            self.take(n).to_vec()
        }

        pub fn long_string(&mut self) -> String {
            let n = self.int() as usize;
            String::from_utf8(self.take(n).to_vec()).unwrap()
        }

        /// A `[value]`: `None` for null (-1) or unset (-2).
        pub fn value(&mut self) -> Option<Vec<u8>> {
            let n = self.int();
            (n >= 0).then(|| self.take(n as usize).to_vec())
        }

        pub fn values(&mut self) -> Vec<Option<Vec<u8>>> {
            let n = self.short();
            (0..n).map(|_| self.value()).collect()
        }
    }
}

/// Named, typed columns of forged metadata.
type Columns = Vec<(&'static str, Cql)>;
/// Bound values as sent: `None` for null.
type Values = Vec<Option<Vec<u8>>>;

/// What a statement the fake node knows does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Local,
    SchemaVersion,
    Peers,
    Keyspaces,
    Tables,
    Views,
    InsertRow,
    InsertLinkWindow,
    SelectRows,
    SelectLinkWindows,
}

impl Kind {
    fn of(text: &str, texts: &StatementTexts) -> Option<Self> {
        let ours = [
            (&texts.insert_row, Self::InsertRow),
            (&texts.insert_link_window, Self::InsertLinkWindow),
            (&texts.select_rows, Self::SelectRows),
            (&texts.select_link_windows, Self::SelectLinkWindows),
        ];
        if let Some((_, kind)) = ours.iter().find(|(t, _)| t.as_str() == text) {
            return Some(*kind);
        }
        let system = [
            ("schema_version FROM system.local", Self::SchemaVersion),
            ("FROM system.local", Self::Local),
            ("FROM system.peers", Self::Peers),
            ("FROM system_schema.keyspaces", Self::Keyspaces),
            ("FROM system_schema.tables", Self::Tables),
            ("FROM system_schema.views", Self::Views),
        ];
        // Anything else (e.g. ScyllaDB's `system_schema.scylla_tables`) gets
        // `Invalid`, as on Cassandra, which the driver treats as "no such table".
        system
            .iter()
            .find(|(needle, _)| text.contains(needle))
            .map(|(_, kind)| *kind)
    }

    /// (table, bind markers, partition key indexes, result columns).
    fn metadata(self, keyspace: &str, text: &str) -> (String, Columns, Vec<u16>, Columns) {
        let keyspace_filter = if text.to_ascii_lowercase().contains(" in ?") {
            vec![("in(keyspace_name)", Cql::ListText)]
        } else {
            Vec::new()
        };
        match self {
            Self::Local => (
                "system.local".into(),
                vec![],
                vec![],
                vec![
                    ("host_id", Cql::Uuid),
                    ("rpc_address", Cql::Inet),
                    ("data_center", Cql::Text),
                    ("rack", Cql::Text),
                    ("tokens", Cql::ListText),
                    ("cluster_name", Cql::Text),
                ],
            ),
            Self::SchemaVersion => (
                "system.local".into(),
                vec![],
                vec![],
                vec![("schema_version", Cql::Uuid)],
            ),
            Self::Peers => (
                "system.peers".into(),
                vec![],
                vec![],
                vec![
                    ("host_id", Cql::Uuid),
                    ("rpc_address", Cql::Inet),
                    ("data_center", Cql::Text),
                    ("rack", Cql::Text),
                    ("tokens", Cql::ListText),
                ],
            ),
            Self::Keyspaces => (
                "system_schema.keyspaces".into(),
                keyspace_filter,
                vec![],
                vec![
                    ("keyspace_name", Cql::Text),
                    ("replication", Cql::MapTextText),
                    ("durable_writes", Cql::Boolean),
                ],
            ),
            Self::Tables => (
                "system_schema.tables".into(),
                keyspace_filter,
                vec![],
                vec![("keyspace_name", Cql::Text), ("table_name", Cql::Text)],
            ),
            Self::Views => (
                "system_schema.views".into(),
                keyspace_filter,
                vec![],
                vec![
                    ("keyspace_name", Cql::Text),
                    ("view_name", Cql::Text),
                    ("base_table_name", Cql::Text),
                ],
            ),
            Self::InsertRow => (
                format!("{keyspace}.click_rows"),
                vec![
                    ("link_id", Cql::BigInt),
                    ("dimension", Cql::Text),
                    ("day", Cql::Int),
                    ("window_start", Cql::Timestamp),
                    ("bot", Cql::Boolean),
                    ("node", Cql::Text),
                    ("shard", Cql::Int),
                    ("value", Cql::Text),
                    ("count", Cql::BigInt),
                ],
                vec![0, 1, 2],
                vec![],
            ),
            Self::InsertLinkWindow => (
                format!("{keyspace}.click_links_by_time"),
                vec![
                    ("hour", Cql::Int),
                    ("window_start", Cql::Timestamp),
                    ("link_id", Cql::BigInt),
                    ("bot", Cql::Boolean),
                    ("node", Cql::Text),
                    ("shard", Cql::Int),
                    ("count", Cql::BigInt),
                ],
                vec![0],
                vec![],
            ),
            Self::SelectRows => (
                format!("{keyspace}.click_rows"),
                vec![
                    ("link_id", Cql::BigInt),
                    ("dimension", Cql::Text),
                    ("day", Cql::Int),
                    ("window_start", Cql::Timestamp),
                    ("window_start", Cql::Timestamp),
                ],
                vec![0, 1, 2],
                vec![
                    ("window_start", Cql::Timestamp),
                    ("bot", Cql::Boolean),
                    ("value", Cql::Text),
                    ("count", Cql::BigInt),
                ],
            ),
            Self::SelectLinkWindows => (
                format!("{keyspace}.click_links_by_time"),
                vec![
                    ("hour", Cql::Int),
                    ("window_start", Cql::Timestamp),
                    ("window_start", Cql::Timestamp),
                ],
                vec![0],
                vec![
                    ("link_id", Cql::BigInt),
                    ("bot", Cql::Boolean),
                    ("count", Cql::BigInt),
                ],
            ),
        }
    }
}

fn table_spec(out: &mut Vec<u8>, table: &str) {
    let (keyspace, name) = table.split_once('.').unwrap();
    wire::string(out, keyspace);
    wire::string(out, name);
}

fn column_specs(out: &mut Vec<u8>, table: &str, columns: &[(&str, Cql)]) {
    table_spec(out, table);
    for (name, typ) in columns {
        wire::string(out, name);
        wire::cql_type(out, *typ);
    }
}

/// A RESULT/Rows body with global table spec and no paging state.
fn rows_result(table: &str, columns: &[(&str, Cql)], rows: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::int(&mut out, 0x0002);
    wire::int(&mut out, 0x0001);
    wire::int(&mut out, columns.len() as i32);
    column_specs(&mut out, table, columns);
    wire::int(&mut out, rows.len() as i32);
    for row in rows {
        assert_eq!(row.len(), columns.len());
        for cell in row {
            wire::value(&mut out, cell);
        }
    }
    out
}

/// A RESULT/Prepared body (protocol v4, no ScyllaDB metadata id extension).
fn prepared_result(
    id: &[u8],
    table: &str,
    binds: &[(&str, Cql)],
    pk: &[u16],
    results: &[(&str, Cql)],
) -> Vec<u8> {
    let mut out = Vec::new();
    wire::int(&mut out, 0x0004);
    wire::short_bytes(&mut out, id);
    wire::int(&mut out, 0x0001);
    wire::int(&mut out, binds.len() as i32);
    wire::int(&mut out, pk.len() as i32);
    for index in pk {
        wire::short(&mut out, *index);
    }
    column_specs(&mut out, table, binds);
    if results.is_empty() {
        wire::int(&mut out, 0x0004);
        wire::int(&mut out, 0);
    } else {
        wire::int(&mut out, 0x0001);
        wire::int(&mut out, results.len() as i32);
        column_specs(&mut out, table, results);
    }
    out
}

fn schema_change_result(target: &str, keyspace: &str, table: Option<&str>) -> Vec<u8> {
    let mut out = Vec::new();
    wire::int(&mut out, 0x0005);
    wire::string(&mut out, "CREATED");
    wire::string(&mut out, target);
    wire::string(&mut out, keyspace);
    if let Some(table) = table {
        wire::string(&mut out, table);
    }
    out
}

fn void_result() -> Vec<u8> {
    0x0001_i32.to_be_bytes().to_vec()
}

/// One statement of a BATCH frame: prepared id and bound values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchStatement {
    prepared: bool,
    id: Vec<u8>,
    values: Vec<Option<Vec<u8>>>,
}

/// A decoded BATCH frame.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BatchFrame {
    batch_type: u8,
    statements: Vec<BatchStatement>,
    consistency: u16,
    timestamp: Option<i64>,
}

impl BatchFrame {
    fn parse(body: &[u8]) -> Self {
        let mut reader = wire::Reader(body);
        let batch_type = reader.byte();
        let count = reader.short();
        let statements = (0..count)
            .map(|_| {
                let kind = reader.byte();
                let id = if kind == 1 {
                    reader.short_bytes()
                } else {
                    reader.long_string().into_bytes()
                };
                BatchStatement {
                    prepared: kind == 1,
                    id,
                    values: reader.values(),
                }
            })
            .collect();
        let consistency = reader.short();
        let flags = reader.byte();
        if flags & 0x10 != 0 {
            reader.short();
        }
        let timestamp = (flags & 0x20 != 0).then(|| reader.long());
        Self {
            batch_type,
            statements,
            consistency,
            timestamp,
        }
    }
}

/// What to do with the next BATCH frame instead of acknowledging it.
#[derive(Debug, Clone)]
enum Fault {
    /// Answer with an error; nothing is stored.
    Reject(DbError),
    /// Store the rows, then answer with an error, as a coordinator does when
    /// replicas wrote but did not acknowledge in time.
    StoreThenFail(DbError),
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    count: i64,
    timestamp: i64,
}

type RowKey = (i64, String, i32, i64, bool, String, i32, String);
type LinkKey = (i32, i64, i64, bool, String, i32);

fn bigint(cell: &Option<Vec<u8>>) -> i64 {
    i64::from_be_bytes(cell.as_deref().unwrap().try_into().unwrap())
}

fn int(cell: &Option<Vec<u8>>) -> i32 {
    i32::from_be_bytes(cell.as_deref().unwrap().try_into().unwrap())
}

fn boolean(cell: &Option<Vec<u8>>) -> bool {
    cell.as_deref().unwrap() == [1]
}

fn text_value(cell: &Option<Vec<u8>>) -> String {
    String::from_utf8(cell.clone().unwrap()).unwrap()
}

/// The forged node's state, shared with the proxy's forging closure.
#[derive(Default)]
struct FakeNode {
    keyspace: String,
    texts: Option<StatementTexts>,
    ddl: Vec<String>,
    created: Vec<String>,
    prepared: HashMap<Vec<u8>, (Kind, String)>,
    prepare_requests: Vec<String>,
    batches: Vec<BatchFrame>,
    /// (kind, bound values) of every EXECUTE of our SELECTs.
    selects: Vec<(Kind, Vec<Option<Vec<u8>>>)>,
    unknown: Vec<String>,
    /// Every statement kind answered, in order (system queries included).
    answered: Vec<Kind>,
    faults: Vec<Fault>,
    rows: BTreeMap<RowKey, Cell>,
    links: BTreeMap<LinkKey, Cell>,
    clock: i64,
}

const HOST_ID: [u8; 16] = *b"ricochet-host-id";
const SCHEMA_VERSION: [u8; 16] = *b"ricochet-schema1";

fn statement_id(text: &str) -> Vec<u8> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish().to_be_bytes().to_vec()
}

impl FakeNode {
    fn texts(&self) -> &StatementTexts {
        self.texts.as_ref().unwrap()
    }

    fn respond(&mut self, frame: RequestFrame) -> ResponseFrame {
        let params = frame.params;
        let result = |body: Vec<u8>| {
            ResponseFrame::new(params.for_response(), ResponseOpcode::Result, body.into())
        };
        let error = |error: DbError, message: &str| {
            ResponseFrame::forged_error(params, error, Some(message)).unwrap()
        };
        match frame.opcode {
            RequestOpcode::Options => {
                ResponseFrame::forged_supported(params, &HashMap::new()).unwrap()
            }
            RequestOpcode::Startup | RequestOpcode::Register => ResponseFrame::forged_ready(params),
            RequestOpcode::Query => {
                let text = wire::Reader(&frame.body).long_string();
                match self.query(&text) {
                    Some(body) => result(body),
                    None => {
                        self.unknown.push(text);
                        error(DbError::Invalid, "unknown to the fake node")
                    }
                }
            }
            RequestOpcode::Prepare => {
                let text = wire::Reader(&frame.body).long_string();
                self.prepare_requests.push(text.clone());
                let Some(kind) = Kind::of(&text, self.texts()) else {
                    self.unknown.push(text);
                    return error(DbError::Invalid, "unconfigured table");
                };
                let id = statement_id(&text);
                let (table, binds, pk, results) = kind.metadata(&self.keyspace, &text);
                self.prepared.insert(id.clone(), (kind, text));
                result(prepared_result(&id, &table, &binds, &pk, &results))
            }
            RequestOpcode::Execute => {
                let mut reader = wire::Reader(&frame.body);
                let id = reader.short_bytes();
                let _consistency = reader.short();
                let flags = reader.byte();
                let values = if flags & 0x01 != 0 {
                    reader.values()
                } else {
                    Vec::new()
                };
                let Some((kind, text)) = self.prepared.get(&id).cloned() else {
                    return error(
                        DbError::Unprepared {
                            statement_id: id.into(),
                        },
                        "unprepared",
                    );
                };
                if matches!(kind, Kind::SelectRows | Kind::SelectLinkWindows) {
                    self.selects.push((kind, values.clone()));
                }
                result(self.answer(kind, &text, &values))
            }
            RequestOpcode::Batch => {
                let batch = BatchFrame::parse(&frame.body);
                self.batches.push(batch.clone());
                let fault = (!self.faults.is_empty()).then(|| self.faults.remove(0));
                match fault {
                    Some(Fault::Reject(db_error)) => error(db_error, "forged failure"),
                    Some(Fault::StoreThenFail(db_error)) => {
                        self.store(&batch);
                        error(db_error, "forged failure after the write")
                    }
                    None => {
                        self.store(&batch);
                        result(void_result())
                    }
                }
            }
            other => {
                self.unknown.push(format!("{other:?}"));
                error(DbError::ProtocolError, "not forged")
            }
        }
    }

    fn query(&mut self, text: &str) -> Option<Vec<u8>> {
        let ddl = schema(&self.keyspace, &Replication::Simple { factor: 1 });
        if let Some(index) = ddl.iter().position(|cql| cql == text) {
            self.ddl.push(text.to_owned());
            let keyspace = self.keyspace.clone();
            let table = ["", "click_rows", "click_links_by_time"][index];
            if !table.is_empty() {
                self.created.push(table.to_owned());
                return Some(schema_change_result("TABLE", &keyspace, Some(table)));
            }
            return Some(schema_change_result("KEYSPACE", &keyspace, None));
        }
        let kind = Kind::of(text, self.texts())?;
        Some(self.answer(kind, text, &[]))
    }

    fn answer(&mut self, kind: Kind, text: &str, values: &[Option<Vec<u8>>]) -> Vec<u8> {
        self.answered.push(kind);
        let (table, _, _, columns) = kind.metadata(&self.keyspace, text);
        let ks_created = !self.ddl.is_empty();
        let rows: Vec<Vec<Vec<u8>>> = match kind {
            Kind::Local => vec![vec![
                HOST_ID.to_vec(),
                Ipv4Addr::LOCALHOST.octets().to_vec(),
                b"dc1".to_vec(),
                b"rack1".to_vec(),
                wire::text_list(&["0"]),
                b"forged".to_vec(),
            ]],
            Kind::SchemaVersion => vec![vec![SCHEMA_VERSION.to_vec()]],
            Kind::Peers | Kind::Views => vec![],
            Kind::Keyspaces if ks_created => vec![vec![
                self.keyspace.clone().into_bytes(),
                wire::text_map(&[("class", "SimpleStrategy"), ("replication_factor", "1")]),
                vec![1],
            ]],
            Kind::Keyspaces => vec![],
            Kind::Tables => self
                .created
                .iter()
                .map(|t| vec![self.keyspace.clone().into_bytes(), t.clone().into_bytes()])
                .collect(),
            Kind::InsertRow | Kind::InsertLinkWindow => return void_result(),
            Kind::SelectRows => {
                let (link, dimension, day) =
                    (bigint(&values[0]), text_value(&values[1]), int(&values[2]));
                let (from, to) = (bigint(&values[3]), bigint(&values[4]));
                self.rows
                    .iter()
                    .filter(|(k, _)| k.0 == link && k.1 == dimension && k.2 == day)
                    .filter(|(k, _)| k.3 >= from && k.3 < to)
                    .map(|(k, cell)| {
                        vec![
                            k.3.to_be_bytes().to_vec(),
                            vec![k.4 as u8],
                            k.7.clone().into_bytes(),
                            cell.count.to_be_bytes().to_vec(),
                        ]
                    })
                    .collect()
            }
            Kind::SelectLinkWindows => {
                let hour = int(&values[0]);
                let (from, to) = (bigint(&values[1]), bigint(&values[2]));
                self.links
                    .iter()
                    .filter(|(k, _)| k.0 == hour && k.1 >= from && k.1 < to)
                    .map(|(k, cell)| {
                        vec![
                            k.2.to_be_bytes().to_vec(),
                            vec![k.3 as u8],
                            cell.count.to_be_bytes().to_vec(),
                        ]
                    })
                    .collect()
            }
        };
        rows_result(&table, &columns, &rows)
    }

    /// Upserts every insert of a batch: same primary key, newer timestamp wins.
    fn store(&mut self, batch: &BatchFrame) {
        self.clock += 1;
        let timestamp = batch.timestamp.unwrap_or(self.clock);
        for statement in &batch.statements {
            let kind = self.prepared.get(&statement.id).map(|(kind, _)| *kind);
            let v = &statement.values;
            let cell = |count| Cell { count, timestamp };
            match kind {
                Some(Kind::InsertRow) => {
                    let key = (
                        bigint(&v[0]),
                        text_value(&v[1]),
                        int(&v[2]),
                        bigint(&v[3]),
                        boolean(&v[4]),
                        text_value(&v[5]),
                        int(&v[6]),
                        text_value(&v[7]),
                    );
                    let new = cell(bigint(&v[8]));
                    let slot = self.rows.entry(key).or_insert(new);
                    if new.timestamp >= slot.timestamp {
                        *slot = new;
                    }
                }
                Some(Kind::InsertLinkWindow) => {
                    let key = (
                        int(&v[0]),
                        bigint(&v[1]),
                        bigint(&v[2]),
                        boolean(&v[3]),
                        text_value(&v[4]),
                        int(&v[5]),
                    );
                    let new = cell(bigint(&v[6]));
                    let slot = self.links.entry(key).or_insert(new);
                    if new.timestamp >= slot.timestamp {
                        *slot = new;
                    }
                }
                _ => self
                    .unknown
                    .push(format!("batch statement {:?}", statement.id)),
            }
        }
    }
}

/// A running dry-mode proxy forging one ScyllaDB node on a free loopback port.
struct ForgedCluster {
    /// Drives the proxy; dropping it stops the proxy.
    _runtime: tokio::runtime::Runtime,
    proxy: Option<RunningProxy>,
    address: SocketAddr,
    node: Arc<Mutex<FakeNode>>,
}

impl ForgedCluster {
    fn start(keyspace: &str) -> Self {
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        Self::start_at(keyspace, address)
    }

    /// A forged node on `address` (chosen before the node exists).
    fn start_at(keyspace: &str, address: SocketAddr) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let node = Arc::new(Mutex::new(FakeNode {
            keyspace: keyspace.to_owned(),
            texts: Some(StatementTexts::new(keyspace)),
            ..FakeNode::default()
        }));
        let forger = node.clone();
        let rules = vec![RequestRule(
            Condition::True,
            RequestReaction::forge_response(Arc::new(move |frame: RequestFrame| {
                forger.lock().unwrap().respond(frame)
            })),
        )];
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let proxy = runtime
            .block_on(
                Proxy::builder()
                    .with_node(
                        Node::builder()
                            .proxy_address(address)
                            .request_rules(rules)
                            .build_dry_mode(),
                    )
                    .build()
                    .run(),
            )
            .expect("start the dry-mode proxy");
        Self {
            _runtime: runtime,
            proxy: Some(proxy),
            address,
            node,
        }
    }

    fn nodes(&self) -> Vec<String> {
        vec![self.address.to_string()]
    }

    fn node(&self) -> MutexGuard<'_, FakeNode> {
        self.node.lock().unwrap()
    }

    fn connect(&self, keyspace: &str) -> ScyllaSink {
        ScyllaSink::connect(&self.nodes(), keyspace, Replication::Simple { factor: 1 })
            .expect("connect through the forged node")
            .with_retry(WriteRetry {
                attempts: 4,
                first_backoff: Duration::from_millis(5),
                max_backoff: Duration::from_millis(20),
            })
    }
}

impl Drop for ForgedCluster {
    fn drop(&mut self) {
        if let Some(mut proxy) = self.proxy.take()
            && let Err(error) = proxy.sanity_check()
        {
            eprintln!("proxy reported: {error}");
        }
        // Not `RunningProxy::finish`: in scylla-proxy 0.0.8 it can reach an
        // `unreachable!` while the driver's connections are still closing.
        // Dropping the runtime stops the proxy's workers.
    }
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
