//! A ScyllaDB node forged with scylla-proxy in dry mode: it answers the
//! driver's handshake, schema queries, prepares, batches and selects from an
//! in-memory table, and can inject faults. No ScyllaDB server can run on
//! these machines; this is what the sink's driver-level tests talk to.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ricochet_clickstore::scylla::{StatementTexts, schema};
use ricochet_clickstore::{Replication, ScyllaSink, WriteRetry};
use scylla::errors::DbError;
use scylla_proxy::{
    Condition, Node, Proxy, Reaction as _, RequestFrame, RequestOpcode, RequestReaction,
    RequestRule, ResponseFrame, ResponseOpcode, RunningProxy,
};

// The proxy runs in dry mode: no server behind it, every response below is
// forged by `FakeNode::respond`. It answers the driver's handshake and the
// metadata queries it sends on connect, records DDL, PREPARE, BATCH and
// EXECUTE frames, and keeps the two click tables in an in-memory model (rows
// replaced by primary key, last write timestamp wins) so reads can be checked
// through the driver. The model is this test's, not ScyllaDB's storage.

/// CQL types used by the forged metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cql {
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
pub type Values = Vec<Option<Vec<u8>>>;

/// What a statement the fake node knows does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
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
    pub fn of(text: &str, texts: &StatementTexts) -> Option<Self> {
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
    pub fn metadata(self, keyspace: &str, text: &str) -> (String, Columns, Vec<u16>, Columns) {
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

pub fn table_spec(out: &mut Vec<u8>, table: &str) {
    let (keyspace, name) = table.split_once('.').unwrap();
    wire::string(out, keyspace);
    wire::string(out, name);
}

pub fn column_specs(out: &mut Vec<u8>, table: &str, columns: &[(&str, Cql)]) {
    table_spec(out, table);
    for (name, typ) in columns {
        wire::string(out, name);
        wire::cql_type(out, *typ);
    }
}

/// A RESULT/Rows body with global table spec and no paging state.
pub fn rows_result(table: &str, columns: &[(&str, Cql)], rows: &[Vec<Vec<u8>>]) -> Vec<u8> {
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
pub fn prepared_result(
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

pub fn schema_change_result(target: &str, keyspace: &str, table: Option<&str>) -> Vec<u8> {
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

pub fn void_result() -> Vec<u8> {
    0x0001_i32.to_be_bytes().to_vec()
}

/// One statement of a BATCH frame: prepared id and bound values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchStatement {
    pub prepared: bool,
    pub id: Vec<u8>,
    pub values: Vec<Option<Vec<u8>>>,
}

/// A decoded BATCH frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFrame {
    pub batch_type: u8,
    pub statements: Vec<BatchStatement>,
    pub consistency: u16,
    pub timestamp: Option<i64>,
}

impl BatchFrame {
    pub fn parse(body: &[u8]) -> Self {
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
pub enum Fault {
    /// Answer with an error; nothing is stored.
    Reject(DbError),
    /// Store the rows, then answer with an error, as a coordinator does when
    /// replicas wrote but did not acknowledge in time.
    StoreThenFail(DbError),
}

#[derive(Debug, Clone, Copy)]
pub struct Cell {
    pub count: i64,
    pub timestamp: i64,
}

type RowKey = (i64, String, i32, i64, bool, String, i32, String);
type LinkKey = (i32, i64, i64, bool, String, i32);

pub fn bigint(cell: &Option<Vec<u8>>) -> i64 {
    i64::from_be_bytes(cell.as_deref().unwrap().try_into().unwrap())
}

pub fn int(cell: &Option<Vec<u8>>) -> i32 {
    i32::from_be_bytes(cell.as_deref().unwrap().try_into().unwrap())
}

pub fn boolean(cell: &Option<Vec<u8>>) -> bool {
    cell.as_deref().unwrap() == [1]
}

pub fn text_value(cell: &Option<Vec<u8>>) -> String {
    String::from_utf8(cell.clone().unwrap()).unwrap()
}

/// The forged node's state, shared with the proxy's forging closure.
#[derive(Default)]
pub struct FakeNode {
    pub keyspace: String,
    pub texts: Option<StatementTexts>,
    pub ddl: Vec<String>,
    pub created: Vec<String>,
    pub prepared: HashMap<Vec<u8>, (Kind, String)>,
    pub prepare_requests: Vec<String>,
    pub batches: Vec<BatchFrame>,
    /// (kind, bound values) of every EXECUTE of our SELECTs.
    pub selects: Vec<(Kind, Vec<Option<Vec<u8>>>)>,
    pub unknown: Vec<String>,
    /// Every statement kind answered, in order (system queries included).
    pub answered: Vec<Kind>,
    pub faults: Vec<Fault>,
    pub rows: BTreeMap<RowKey, Cell>,
    pub links: BTreeMap<LinkKey, Cell>,
    pub clock: i64,
}

pub const HOST_ID: [u8; 16] = *b"ricochet-host-id";
pub const SCHEMA_VERSION: [u8; 16] = *b"ricochet-schema1";

pub fn statement_id(text: &str) -> Vec<u8> {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish().to_be_bytes().to_vec()
}

impl FakeNode {
    pub fn texts(&self) -> &StatementTexts {
        self.texts.as_ref().unwrap()
    }

    pub fn respond(&mut self, frame: RequestFrame) -> ResponseFrame {
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

    pub fn query(&mut self, text: &str) -> Option<Vec<u8>> {
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

    pub fn answer(&mut self, kind: Kind, text: &str, values: &[Option<Vec<u8>>]) -> Vec<u8> {
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
    pub fn store(&mut self, batch: &BatchFrame) {
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
pub struct ForgedCluster {
    /// Drives the proxy; dropping it stops the proxy.
    pub _runtime: tokio::runtime::Runtime,
    pub proxy: Option<RunningProxy>,
    pub address: SocketAddr,
    pub node: Arc<Mutex<FakeNode>>,
}

impl ForgedCluster {
    pub fn start(keyspace: &str) -> Self {
        let address = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        Self::start_at(keyspace, address)
    }

    /// A forged node on `address` (chosen before the node exists).
    pub fn start_at(keyspace: &str, address: SocketAddr) -> Self {
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

    pub fn nodes(&self) -> Vec<String> {
        vec![self.address.to_string()]
    }

    pub fn node(&self) -> MutexGuard<'_, FakeNode> {
        self.node.lock().unwrap()
    }

    pub fn connect(&self, keyspace: &str) -> ScyllaSink {
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
