//! The update bus contract between the control plane and engines: messages
//! (each change, and a heartbeat with the latest version), the page the change
//! log is served in, and the `UpdateBus` trait with its in-process
//! implementation (`LocalBus`); `RedisBus` (feature `redis`) spans processes.
//!
//! Delivery is at most once on every bus: subscribers find what they missed
//! by version (a jump, or a heartbeat ahead of them) and fetch it from the
//! control plane's change log.

use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::change::Change;

/// Default Redis channel of change messages.
pub const DEFAULT_CHANNEL: &str = "ricochet:changes";

/// One message on the bus.
// A change carries a whole link record (with its extensions); messages are
// handled one at a time, so boxing it would buy an allocation and nothing else.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusMessage {
    /// A change, published right after it is committed.
    Change { change: Change },
    /// Sent every second with the latest committed version.
    Heartbeat { latest_version: u64 },
}

impl BusMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("bus messages serialize")
    }

    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// A page of the change log, as `GET /internal/v1/changes` serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesPage {
    /// Changes after the requested version, ascending, without gaps.
    pub changes: Vec<Change>,
    /// The latest committed version when the page was read.
    pub latest_version: u64,
}

/// What a subscription yields.
#[allow(clippy::large_enum_variant)] // as `BusMessage`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    Message(BusMessage),
    /// The connection was lost and is back: messages may have been missed.
    Reconnected,
    /// Nothing arrived within the wait.
    Idle,
    /// The bus is gone for good (the publisher side was dropped).
    Closed,
}

/// Publishes to and subscribes on the update bus.
pub trait UpdateBus: Send + Sync {
    /// Publishes one message. Never blocks the caller for long: a bus that is
    /// down drops the message (subscribers catch up by version).
    fn publish(&self, message: &BusMessage);

    /// A new subscription.
    fn subscribe(&self) -> Box<dyn Subscription>;
}

/// One subscriber's stream of bus events.
pub trait Subscription: Send {
    /// Waits up to `timeout` for the next event.
    fn next_event(&mut self, timeout: Duration) -> BusEvent;
}

/// The in-process bus of the all-in-one mode: same contract, no network.
#[derive(Debug, Default)]
pub struct LocalBus {
    subscribers: Mutex<Vec<Sender<BusMessage>>>,
}

impl LocalBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl UpdateBus for LocalBus {
    fn publish(&self, message: &BusMessage) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|subscriber| subscriber.send(message.clone()).is_ok());
    }

    fn subscribe(&self) -> Box<dyn Subscription> {
        let (sender, receiver) = mpsc::channel();
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
        Box::new(LocalSubscription { receiver })
    }
}

struct LocalSubscription {
    receiver: Receiver<BusMessage>,
}

impl Subscription for LocalSubscription {
    fn next_event(&mut self, timeout: Duration) -> BusEvent {
        match self.receiver.recv_timeout(timeout) {
            Ok(message) => BusEvent::Message(message),
            Err(RecvTimeoutError::Timeout) => BusEvent::Idle,
            Err(RecvTimeoutError::Disconnected) => BusEvent::Closed,
        }
    }
}

#[cfg(feature = "redis")]
pub use self::redis_bus::RedisBus;

#[cfg(feature = "redis")]
mod redis_bus;

/// Error of a [`ChangeSource`].
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where a subscriber fetches changes it missed: the control plane's change
/// log, over HTTP (`GET /internal/v1/changes`) or in process.
pub trait ChangeSource: Send + Sync {
    /// Up to `limit` changes with versions above `after`, ascending.
    fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesPage, SourceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json() {
        let message = BusMessage::Heartbeat { latest_version: 7 };
        assert_eq!(
            message.to_json(),
            r#"{"type":"heartbeat","latest_version":7}"#
        );
        assert_eq!(BusMessage::from_json(&message.to_json()).unwrap(), message);
    }

    #[test]
    fn local_bus_fans_out_to_every_subscriber() {
        let bus = LocalBus::new();
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        bus.publish(&BusMessage::Heartbeat { latest_version: 1 });
        for subscription in [&mut first, &mut second] {
            assert_eq!(
                subscription.next_event(Duration::from_secs(1)),
                BusEvent::Message(BusMessage::Heartbeat { latest_version: 1 })
            );
            assert_eq!(
                subscription.next_event(Duration::from_millis(10)),
                BusEvent::Idle
            );
        }
        drop(first);
        bus.publish(&BusMessage::Heartbeat { latest_version: 2 });
        assert_eq!(bus.subscribers.lock().unwrap().len(), 1);
    }
}

#[cfg(test)]
mod change_message_tests {
    use super::*;
    use crate::change::ChangeOp;
    use crate::link::LinkRecord;

    #[test]
    fn change_messages_round_trip_as_json() {
        let link = LinkRecord::new(1, "example.com", "abc", "https://example.org/", 5).unwrap();
        let message = BusMessage::Change {
            change: Change {
                version: 3,
                op: ChangeOp::Upsert { link },
            },
        };
        let text = message.to_json();
        assert_eq!(BusMessage::from_json(&text).unwrap(), message, "{text}");
    }

    #[test]
    fn domain_messages_round_trip_as_json() {
        let mut settings = crate::DomainSettings::empty("go.example.com");
        settings.not_found_url = Some("https://www.example.com/".into());
        let message = BusMessage::Change {
            change: Change {
                version: 4,
                op: ChangeOp::Domain { settings },
            },
        };
        let text = message.to_json();
        assert!(text.contains(r#""op":"domain""#), "{text}");
        assert_eq!(BusMessage::from_json(&text).unwrap(), message, "{text}");
    }
}
