//! Propagation under load: edit a link's destination through the control
//! plane (`PATCH /api/v1/links/{id}`) and poll the engine until it serves the
//! new `Location`; the time from the API's answer to that redirect is one
//! sample.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::http::{HttpClient, Url};
use crate::run::{Latency, PropagationResult};
use crate::seed::api_call;
use crate::stats::HISTOGRAM_MAX_US;

/// How many edits, how often.
#[derive(Debug, Clone, PartialEq)]
pub struct EditsSpec {
    pub count: u64,
    /// Time between the starts of two edits.
    pub interval: Duration,
    /// An edit not served after this long counts as not propagated.
    pub timeout: Duration,
    /// Domain of the edited link ("" for the default).
    pub domain: String,
}

/// Where the edits go and where they are read back.
#[derive(Debug, Clone)]
pub struct EditTarget {
    pub api: Url,
    pub api_key: String,
    /// The engine's redirect listener.
    pub engine: Url,
    /// Host header for the default domain.
    pub host: String,
}

#[derive(Debug, Deserialize)]
struct LinkView {
    id: u64,
}

/// Creates a link, then edits it `count` times (or until `deadline` or
/// `stop`), measuring each propagation.
pub fn measure(
    target: &EditTarget,
    spec: &EditsSpec,
    deadline: Instant,
    stop: &AtomicBool,
) -> Result<PropagationResult> {
    let mut api = HttpClient::new(&target.api, Duration::from_secs(10))?;
    let mut engine = HttpClient::new(&target.engine, Duration::from_secs(2))?;
    let nonce: u64 = rand::rng().random::<u64>() % 1_000_000_000;
    let code = format!("lt-edit-{nonce}");
    let host = if spec.domain.is_empty() {
        target.host.clone()
    } else {
        spec.domain.clone()
    };
    let first = format!("https://example.com/loadtest/{nonce}/0");
    let mut body = json!({ "url": first, "code": code, "status": 302 });
    if !spec.domain.is_empty() {
        body["domain"] = json!(spec.domain);
    }
    let response = api_call(&mut api, &target.api_key, "POST", "/links", &body)?;
    if response.status != 201 {
        return Err(Error::Http {
            url: format!("{}/links", target.api),
            message: format!(
                "cannot create the edited link: status {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            ),
        });
    }
    let link: LinkView = serde_json::from_slice(&response.body).map_err(|e| Error::Http {
        url: format!("{}/links", target.api),
        message: format!("unexpected answer: {e}"),
    })?;
    let path = format!("/{code}");
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, HISTOGRAM_MAX_US, 3).expect("valid histogram bounds");
    let mut result = PropagationResult::default();
    // The link itself must arrive first.
    if wait_for(
        &mut engine,
        &path,
        &host,
        &first,
        spec.timeout.max(Duration::from_secs(5)),
    )
    .is_none()
    {
        return Err(Error::Http {
            url: format!("{}{path}", target.engine),
            message: "the edited link was never served".into(),
        });
    }
    let mut next = Instant::now();
    for edit in 1..=spec.count {
        if Instant::now() >= deadline || stop.load(Ordering::Relaxed) {
            break;
        }
        let url = format!("https://example.com/loadtest/{nonce}/{edit}");
        let patched = api_call(
            &mut api,
            &target.api_key,
            "PATCH",
            &format!("/links/{}", link.id),
            &json!({ "url": url }),
        );
        match patched {
            Ok(r) if r.status == 200 => {}
            _ => {
                result.api_errors += 1;
                continue;
            }
        }
        result.edits += 1;
        match wait_for(&mut engine, &path, &host, &url, spec.timeout) {
            Some(took) => histogram.saturating_record((took.as_micros() as u64).max(1)),
            None => result.not_propagated += 1,
        }
        next += spec.interval;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    if !histogram.is_empty() {
        let ms = |us: u64| us as f64 / 1000.0;
        result.latency_ms = Latency {
            p50: ms(histogram.value_at_quantile(0.5)),
            p90: ms(histogram.value_at_quantile(0.9)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        };
    }
    Ok(result)
}

/// Polls until the engine answers `path` with `Location: expected`.
fn wait_for(
    engine: &mut HttpClient,
    path: &str,
    host: &str,
    expected: &str,
    timeout: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok(response) = engine.request("GET", path, &[("Host", host)], b"")
            && response.location.as_deref() == Some(expected)
        {
            return Some(started.elapsed());
        }
    }
    None
}
