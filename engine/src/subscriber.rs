//! The engine's subscriber: takes changes from the update bus and applies them
//! in version order through the change intake. It catches up from the control
//! plane's change log on start, on a version gap, on a heartbeat ahead of the
//! table, after a bus reconnect, and every poll interval as a safety net, so
//! no change is lost even when the bus drops messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ricochet_model::bus::{
    BusEvent, BusMessage, ChangeSource, ChangesPage, SourceError, Subscription,
};

use crate::intake::{ChangeIntake, IntakeError};
use crate::stats::EngineStats;

/// Changes fetched per catch-up request.
const PAGE_SIZE: usize = 1000;
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Subscriber settings.
#[derive(Debug, Clone)]
pub struct SubscriberSettings {
    /// Catch up at least this often even without a sign of a gap.
    pub poll_interval: Duration,
}

impl Default for SubscriberSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// Applies bus changes to one engine.
pub struct Subscriber {
    intake: Arc<ChangeIntake>,
    source: Arc<dyn ChangeSource>,
    subscription: Box<dyn Subscription>,
    stats: Arc<EngineStats>,
    settings: SubscriberSettings,
    /// A catch-up is owed (a gap was seen or the last attempt failed).
    behind: bool,
    retry_after: Instant,
    retry_delay: Duration,
    last_catch_up: Instant,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").finish_non_exhaustive()
    }
}

impl Subscriber {
    pub fn new(
        intake: Arc<ChangeIntake>,
        source: Arc<dyn ChangeSource>,
        subscription: Box<dyn Subscription>,
        stats: Arc<EngineStats>,
        settings: SubscriberSettings,
    ) -> Self {
        Self {
            intake,
            source,
            subscription,
            stats,
            settings,
            behind: true,
            retry_after: Instant::now(),
            retry_delay: Duration::from_millis(50),
            last_catch_up: Instant::now(),
        }
    }

    /// Runs on its own thread until `stop` is set.
    pub fn spawn(mut self, stop: Arc<AtomicBool>) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("ricochet-sync".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    self.step(Duration::from_millis(200));
                }
            })
    }

    /// Handles one bus event (or a wait of up to `wait`), then any catch-up owed.
    pub fn step(&mut self, wait: Duration) {
        let event = self.subscription.next_event(wait);
        if event != BusEvent::Idle {
            tracing::debug!(?event, behind = self.behind, "bus event");
        }
        match event {
            BusEvent::Message(BusMessage::Change { change }) => {
                let last = self.intake.last_applied();
                if change.version == last + 1 && !self.behind {
                    match self.intake.apply(std::slice::from_ref(&change)) {
                        Ok(_) => {}
                        Err(IntakeError::Gap { .. }) => self.fell_behind(),
                        Err(error) => {
                            tracing::warn!(%error, version = change.version, "cannot apply a change");
                            self.fell_behind();
                        }
                    }
                } else if change.version > last {
                    self.fell_behind();
                }
            }
            BusEvent::Message(BusMessage::Heartbeat { latest_version }) => {
                self.stats
                    .latest_known_version
                    .fetch_max(latest_version, Ordering::Relaxed);
                if latest_version > self.intake.last_applied() {
                    self.fell_behind();
                }
            }
            BusEvent::Reconnected => {
                self.stats.bus_reconnects.fetch_add(1, Ordering::Relaxed);
                self.behind = true;
            }
            BusEvent::Idle => {}
            BusEvent::Closed => std::thread::sleep(wait),
        }
        if self.last_catch_up.elapsed() >= self.settings.poll_interval {
            self.behind = true;
        }
        if self.behind && Instant::now() >= self.retry_after {
            self.catch_up();
        }
    }

    fn fell_behind(&mut self) {
        if !self.behind {
            self.stats.gaps_detected.fetch_add(1, Ordering::Relaxed);
        }
        self.behind = true;
    }

    /// Fetches and applies everything after the last applied version.
    pub fn catch_up(&mut self) {
        self.last_catch_up = Instant::now();
        match self.fetch_all() {
            Ok(()) => {
                self.behind = false;
                self.retry_delay = Duration::from_millis(50);
                self.stats.catch_ups.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = self.retry_delay.as_millis() as u64, "catch-up failed");
                self.stats.catch_up_failures.fetch_add(1, Ordering::Relaxed);
                self.retry_after = Instant::now() + self.retry_delay;
                self.retry_delay = (self.retry_delay * 2).min(MAX_RETRY);
            }
        }
    }

    fn fetch_all(&mut self) -> Result<(), SourceError> {
        loop {
            let last = self.intake.last_applied();
            let ChangesPage {
                changes,
                latest_version,
            } = self.source.changes_after(last, PAGE_SIZE)?;
            self.stats
                .latest_known_version
                .fetch_max(latest_version, Ordering::Relaxed);
            if changes.is_empty() {
                return Ok(());
            }
            self.intake.apply(&changes)?;
            if self.intake.last_applied() >= latest_version {
                return Ok(());
            }
        }
    }
}

/// The control plane's change log over HTTP.
#[derive(Debug, Clone)]
pub struct HttpChangeSource {
    agent: ureq::Agent,
    base_url: String,
    token: String,
}

impl HttpChangeSource {
    /// `base_url` is the control plane's root, e.g. `http://control:8081`.
    pub fn new(base_url: &str, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        }
    }
}

impl ChangeSource for HttpChangeSource {
    fn changes_after(&self, after: u64, limit: usize) -> Result<ChangesPage, SourceError> {
        let url = format!(
            "{}/internal/v1/changes?after={after}&limit={limit}",
            self.base_url
        );
        let mut response = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call()?;
        let status = response.status();
        if !status.is_success() {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            return Err(format!("{url}: HTTP {status}: {body}").into());
        }
        Ok(response.body_mut().read_json::<ChangesPage>()?)
    }
}
