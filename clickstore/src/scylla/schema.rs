//! The keyspace and tables the sink creates, and the statements it prepares.

/// How the keyspace is replicated; used only when the keyspace is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy`: one data center (development, small clusters).
    Simple { factor: u32 },
    /// `NetworkTopologyStrategy`: replicas per data center name.
    NetworkTopology { datacenters: Vec<(String, u32)> },
}

impl Replication {
    /// The CQL map literal of a `WITH replication = ...` clause.
    pub fn to_cql(&self) -> String {
        match self {
            Self::Simple { factor } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            }
            Self::NetworkTopology { datacenters } => {
                let mut cql = String::from("{'class': 'NetworkTopologyStrategy'");
                for (name, factor) in datacenters {
                    cql.push_str(&format!(", '{}': {factor}", name.replace('\'', "''")));
                }
                cql.push('}');
                cql
            }
        }
    }
}

/// The CQL that creates the keyspace and tables, in order.
pub fn schema(keyspace: &str, replication: &Replication) -> [String; 3] {
    [
        format!(
            "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
            replication.to_cql()
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.click_rows (\
             link_id bigint, dimension text, day int, window_start timestamp, \
             bot boolean, node text, shard int, value text, count bigint, \
             PRIMARY KEY ((link_id, dimension, day), window_start, bot, node, shard, value))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {keyspace}.click_links_by_time (\
             hour int, window_start timestamp, link_id bigint, bot boolean, \
             node text, shard int, count bigint, \
             PRIMARY KEY ((hour), window_start, link_id, bot, node, shard))"
        ),
    ]
}

/// The four statements the sink prepares once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTexts {
    pub insert_row: String,
    pub insert_link_window: String,
    pub select_rows: String,
    pub select_link_windows: String,
}

impl StatementTexts {
    pub fn new(keyspace: &str) -> Self {
        Self {
            insert_row: format!(
                "INSERT INTO {keyspace}.click_rows \
                 (link_id, dimension, day, window_start, bot, node, shard, value, count) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            insert_link_window: format!(
                "INSERT INTO {keyspace}.click_links_by_time \
                 (hour, window_start, link_id, bot, node, shard, count) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)"
            ),
            select_rows: format!(
                "SELECT window_start, bot, value, count FROM {keyspace}.click_rows \
                 WHERE link_id = ? AND dimension = ? AND day = ? \
                 AND window_start >= ? AND window_start < ?"
            ),
            select_link_windows: format!(
                "SELECT link_id, bot, count FROM {keyspace}.click_links_by_time \
                 WHERE hour = ? AND window_start >= ? AND window_start < ?"
            ),
        }
    }
}

/// [`valid_keyspace`], as the sink contract's permanent failure.
pub(super) fn check_keyspace(keyspace: &str) -> Result<(), crate::contract::SinkError> {
    if valid_keyspace(keyspace) {
        return Ok(());
    }
    Err(crate::contract::SinkError::Failed(format!(
        "invalid keyspace name {keyspace:?}: use 1-48 letters, digits and '_'"
    )))
}

/// Keyspace names are spliced into CQL, so only plain identifiers pass.
pub(super) fn valid_keyspace(keyspace: &str) -> bool {
    !keyspace.is_empty()
        && keyspace.len() <= 48
        && keyspace
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !keyspace.as_bytes()[0].is_ascii_digit()
}
