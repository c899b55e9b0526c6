//! Publishing committed changes on the update bus in version order, and a
//! heartbeat with the latest version every interval, on one named thread. A
//! bus that is down loses messages, never writes: engines catch up by version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ricochet_model::Change;
use ricochet_model::bus::{BusMessage, ChangeSource, ChangesPage, SourceError, UpdateBus};

use crate::store::ControlStore;

/// Starts the publisher thread.
pub fn spawn(
    store: Arc<ControlStore>,
    bus: Arc<dyn UpdateBus>,
    changes: Receiver<Change>,
    heartbeat: Duration,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ricochet-publish".into())
        .spawn(move || {
            let mut next_heartbeat = Instant::now();
            // Heartbeats carry the last version handed to the bus, not the
            // store's latest: a change still queued here is not a gap.
            let mut last_sent = store.latest_version();
            while !stop.load(Ordering::Acquire) {
                let wait = next_heartbeat.saturating_duration_since(Instant::now());
                match changes.recv_timeout(wait.min(Duration::from_millis(200))) {
                    Ok(change) => {
                        last_sent = last_sent.max(change.version);
                        bus.publish(&BusMessage::Change { change });
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                if Instant::now() >= next_heartbeat {
                    bus.publish(&BusMessage::Heartbeat {
                        latest_version: last_sent,
                    });
                    next_heartbeat = Instant::now() + heartbeat;
                }
            }
        })
}

/// The change log read in process (the all-in-one binary's engine uses it).
#[derive(Debug, Clone)]
pub struct StoreChangeSource(pub Arc<ControlStore>);

impl ChangeSource for StoreChangeSource {
    fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesPage, SourceError> {
        let latest_version = self.0.latest_version();
        Ok(ChangesPage {
            changes: self.0.changes_after(after, limit)?,
            latest_version,
        })
    }
}
