//! `RedisBus`: the update bus over Redis pub/sub, for engines in other
//! processes or on other nodes. Publishing and subscribing use plain blocking
//! connections on the caller's thread; both reconnect with backoff, and a
//! subscription reports `Reconnected` so its owner catches up by version.

use std::sync::Mutex;
use std::time::Duration;

use super::{BusEvent, BusMessage, Subscription, UpdateBus};

/// Longest wait for a connection or a publish.
const IO_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The update bus on a Redis channel.
pub struct RedisBus {
    client: redis::Client,
    channel: String,
    publisher: Mutex<Option<redis::Connection>>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

impl RedisBus {
    /// A bus on `channel` of the Redis server at `url` (`redis://host:port/`).
    /// Connections are made lazily, so a Redis that is down is not an error here.
    pub fn new(url: &str, channel: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            channel: channel.to_owned(),
            publisher: Mutex::new(None),
        })
    }

    fn connect(client: &redis::Client) -> redis::RedisResult<redis::Connection> {
        let connection = client.get_connection_with_timeout(IO_TIMEOUT)?;
        connection.set_write_timeout(Some(IO_TIMEOUT))?;
        connection.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(connection)
    }
}

impl UpdateBus for RedisBus {
    fn publish(&self, message: &BusMessage) {
        let mut publisher = self.publisher.lock().unwrap_or_else(|e| e.into_inner());
        if publisher.is_none() {
            *publisher = Self::connect(&self.client).ok();
        }
        let Some(connection) = publisher.as_mut() else {
            return;
        };
        let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message.to_json())
            .query(connection);
        if sent.is_err() {
            // Dropped; subscribers find the gap by version. Reconnect next time.
            *publisher = None;
        }
    }

    fn subscribe(&self) -> Box<dyn Subscription> {
        Box::new(RedisSubscription {
            client: self.client.clone(),
            channel: self.channel.clone(),
            connection: None,
            backoff: Duration::from_millis(50),
        })
    }
}

struct RedisSubscription {
    client: redis::Client,
    channel: String,
    connection: Option<redis::Connection>,
    backoff: Duration,
}

impl RedisSubscription {
    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let mut connection = RedisBus::connect(&self.client)?;
        let subscribe = redis::cmd("SUBSCRIBE")
            .arg(&self.channel)
            .get_packed_command();
        connection.send_packed_command(&subscribe)?;
        // The confirmation: ["subscribe", channel, count].
        connection.recv_response()?;
        Ok(connection)
    }
}

impl Subscription for RedisSubscription {
    fn next_event(&mut self, timeout: Duration) -> BusEvent {
        let timeout = timeout.max(Duration::from_millis(1));
        let Some(connection) = self.connection.as_mut() else {
            return match self.connect() {
                Ok(connection) => {
                    self.connection = Some(connection);
                    self.backoff = Duration::from_millis(50);
                    BusEvent::Reconnected
                }
                Err(_) => {
                    std::thread::sleep(self.backoff.min(timeout));
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    BusEvent::Idle
                }
            };
        };
        if connection.set_read_timeout(Some(timeout)).is_err() {
            self.connection = None;
            return BusEvent::Idle;
        }
        match connection.recv_response() {
            Ok(value) => {
                let Some(message) = redis::Msg::from_owned_value(value) else {
                    return BusEvent::Idle;
                };
                match message
                    .get_payload::<String>()
                    .ok()
                    .and_then(|text| BusMessage::from_json(&text).ok())
                {
                    Some(message) => BusEvent::Message(message),
                    None => BusEvent::Idle,
                }
            }
            Err(error) if error.is_timeout() => BusEvent::Idle,
            Err(_) => {
                self.connection = None;
                BusEvent::Idle
            }
        }
    }
}
