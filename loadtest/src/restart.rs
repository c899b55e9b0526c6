//! Restart under load: while the run goes on, stop the target's process,
//! start it again, and time how long until it is ready and serving the
//! links again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::http::{HttpClient, Url};
use crate::keys::KeySet;
use crate::run::RestartResult;
use crate::target::Target;

/// When and how to restart.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartSpec {
    /// Time into the run.
    pub at: Duration,
    /// SIGKILL (a crash) instead of SIGTERM (a graceful stop).
    pub kill: bool,
    /// Give up waiting for the new process after this long.
    pub timeout: Duration,
}

/// Restarts `target` at `run_start + spec.at` and measures the way back.
/// `probe` is a key whose redirect proves the engine serves again.
pub fn restart_during_run(
    target: &mut Target,
    spec: &RestartSpec,
    run_start: Instant,
    keys: &KeySet,
    probe: u64,
    stop: &AtomicBool,
) -> Result<RestartResult> {
    if !target.is_managed() {
        return Err(Error::Target {
            name: target.name.clone(),
            message: "restart-under-load needs a target the tool starts (a `command`)".into(),
        });
    }
    let at = run_start + spec.at;
    while Instant::now() < at {
        if stop.load(Ordering::Relaxed) {
            return Ok(RestartResult::default());
        }
        std::thread::sleep(
            Duration::from_millis(5).min(at.saturating_duration_since(Instant::now())),
        );
    }
    let stopped = Instant::now();
    let stop_took = target.stop(spec.kill)?;
    let spawned = Instant::now();
    target.start()?;
    let record = keys.record(probe);
    let host = if record.domain.is_empty() {
        target.host.clone()
    } else {
        record.domain.clone()
    };
    let path = format!("/{}", record.code);
    let mut result = RestartResult {
        stopped_at_s: stopped.saturating_duration_since(run_start).as_secs_f64(),
        stop_ms: stop_took.as_secs_f64() * 1000.0,
        ..RestartResult::default()
    };
    let ready_url = target.ready_url().map(|u| Url::parse(&u)).transpose()?;
    let mut ready_client = ready_url
        .as_ref()
        .map(|u| HttpClient::new(u, Duration::from_millis(500)))
        .transpose()?;
    let mut probe_client = HttpClient::new(&target.url, Duration::from_millis(500))?;
    while spawned.elapsed() < spec.timeout && !stop.load(Ordering::Relaxed) {
        if result.start_to_ready_ms.is_none()
            && let Some(client) = ready_client.as_mut()
            && client
                .request("GET", "", &[], b"")
                .is_ok_and(|r| r.status == 200)
        {
            result.start_to_ready_ms = Some(spawned.elapsed().as_secs_f64() * 1000.0);
        }
        if result.start_to_serving_ms.is_none()
            && let Ok(response) = probe_client.request("GET", &path, &[("Host", &host)], b"")
            && (record.url.is_none()
                || response
                    .location
                    .as_deref()
                    .is_some_and(|l| keys.location_matches(probe, l.as_bytes())))
            && (300..400).contains(&response.status)
        {
            result.start_to_serving_ms = Some(spawned.elapsed().as_secs_f64() * 1000.0);
            result.unavailable_ms = Some(stopped.elapsed().as_secs_f64() * 1000.0);
        }
        if result.start_to_serving_ms.is_some()
            && (ready_client.is_none() || result.start_to_ready_ms.is_some())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(result)
}
