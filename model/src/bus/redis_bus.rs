//! `RedisBus`: the update bus over Redis pub/sub, for engines in other
//! processes or on other nodes. Publishing and subscribing use plain blocking
//! connections; both reconnect with backoff, and a subscription reports
//! `Reconnected` so its owner catches up by version.

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use super::{BusEvent, BusMessage, Subscription, UpdateBus};

/// Longest wait for a connection or a publish.
const IO_TIMEOUT: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a pub/sub read waits before checking that the subscriber is still there.
const POLL: Duration = Duration::from_millis(500);

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
        let (sender, events) = mpsc::channel();
        let (client, channel) = (self.client.clone(), self.channel.clone());
        let spawned = std::thread::Builder::new()
            .name("ricochet-redis-sub".into())
            .spawn(move || listen(client, channel, sender));
        if let Err(error) = spawned {
            // Without the thread the subscription reports Closed; the
            // subscriber still catches up by polling.
            eprintln!("cannot start the Redis subscription thread: {error}");
        }
        Box::new(RedisSubscription { events })
    }
}

/// A subscription: a named thread owns the Redis connection (pub/sub reads
/// must not time out as command replies do, or the client skips the next
/// message), reconnects with backoff, and forwards events over a channel.
struct RedisSubscription {
    events: Receiver<BusEvent>,
}

fn listen(client: redis::Client, channel: String, events: Sender<BusEvent>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let mut connection = match RedisBus::connect(&client) {
            Ok(connection) => connection,
            Err(_) => {
                if events.send(BusEvent::Idle).is_err() {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut pubsub = connection.as_pubsub();
        if pubsub.subscribe(&channel).is_err() || pubsub.set_read_timeout(Some(POLL)).is_err() {
            continue;
        }
        backoff = Duration::from_millis(50);
        if events.send(BusEvent::Reconnected).is_err() {
            return;
        }
        loop {
            let event = match pubsub.get_message() {
                Ok(message) => match message
                    .get_payload::<String>()
                    .ok()
                    .and_then(|text| BusMessage::from_json(&text).ok())
                {
                    Some(message) => BusEvent::Message(message),
                    None => continue,
                },
                Err(error) if error.is_timeout() => BusEvent::Idle,
                Err(_) => break,
            };
            // The subscriber is gone: stop.
            if events.send(event).is_err() {
                return;
            }
        }
    }
}

impl Subscription for RedisSubscription {
    fn next_event(&mut self, timeout: Duration) -> BusEvent {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(BusEvent::Idle) if !left.is_zero() => continue,
                Ok(event) => return event,
                Err(RecvTimeoutError::Timeout) => return BusEvent::Idle,
                Err(RecvTimeoutError::Disconnected) => return BusEvent::Closed,
            }
        }
    }
}
