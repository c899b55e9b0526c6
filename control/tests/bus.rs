//! The update bus contract on both implementations: messages fan out in order,
//! and the Redis bus reconnects after the server restarts (reporting it, so
//! subscribers catch up) and delivers again.

use std::time::{Duration, Instant};

use ricochet_control::test_util::RedisServer;
use ricochet_model::bus::{BusEvent, BusMessage, LocalBus, RedisBus, Subscription, UpdateBus};

fn next_message(subscription: &mut Box<dyn Subscription>, within: Duration) -> Option<BusMessage> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let BusEvent::Message(message) = subscription.next_event(Duration::from_millis(100)) {
            return Some(message);
        }
    }
    None
}

fn heartbeat(version: u64) -> BusMessage {
    BusMessage::Heartbeat {
        latest_version: version,
    }
}

fn delivers_in_order(bus: &dyn UpdateBus) {
    let mut first = bus.subscribe();
    let mut second = bus.subscribe();
    // Let subscriptions connect before publishing (pub/sub keeps nothing).
    for subscription in [&mut first, &mut second] {
        let _ = subscription.next_event(Duration::from_millis(200));
    }
    for version in 1..=20 {
        bus.publish(&heartbeat(version));
    }
    for subscription in [&mut first, &mut second] {
        for version in 1..=20 {
            assert_eq!(
                next_message(subscription, Duration::from_secs(5)),
                Some(heartbeat(version))
            );
        }
    }
}

#[test]
fn local_bus_delivers_in_order() {
    delivers_in_order(&LocalBus::new());
}

#[test]
fn redis_bus_delivers_in_order() {
    let redis = RedisServer::start();
    delivers_in_order(&RedisBus::new(&redis.url(), "bus:test").unwrap());
}

#[test]
fn redis_bus_reconnects_and_says_so() {
    let mut redis = RedisServer::start();
    let bus = RedisBus::new(&redis.url(), "bus:test").unwrap();
    let mut subscription = bus.subscribe();
    assert_eq!(
        subscription.next_event(Duration::from_millis(500)),
        BusEvent::Reconnected
    );
    bus.publish(&heartbeat(1));
    assert_eq!(
        next_message(&mut subscription, Duration::from_secs(5)),
        Some(heartbeat(1))
    );

    redis.kill();
    bus.publish(&heartbeat(2)); // lost: nobody can receive it
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the subscription reconnected");
        if subscription.next_event(Duration::from_millis(100)) == BusEvent::Reconnected {
            break;
        }
    }
    bus.publish(&heartbeat(3));
    assert_eq!(
        next_message(&mut subscription, Duration::from_secs(5)),
        Some(heartbeat(3))
    );
}

#[test]
fn redis_bus_delivers_after_quiet_periods() {
    // Regression: read timeouts between messages must not make the client
    // skip the next message.
    let redis = RedisServer::start();
    let bus = RedisBus::new(&redis.url(), "bus:test").unwrap();
    let mut subscription = bus.subscribe();
    assert_eq!(
        subscription.next_event(Duration::from_secs(2)),
        BusEvent::Reconnected
    );
    for version in 1..=3 {
        let quiet_until = Instant::now() + Duration::from_millis(700);
        while Instant::now() < quiet_until {
            assert_eq!(
                subscription.next_event(Duration::from_millis(50)),
                BusEvent::Idle
            );
        }
        bus.publish(&heartbeat(version));
        assert_eq!(
            next_message(&mut subscription, Duration::from_secs(5)),
            Some(heartbeat(version))
        );
    }
}
