//! The engines' click route: `POST /internal/v1/clicks`, one closed window of
//! one engine shard (the cluster token as bearer), written to the control
//! plane's click store. Windows carry absolute counts keyed by node, shard and
//! window, so a retried shipment replaces rather than adds.
//!
//! Answers: 204 stored; 400 a malformed or inconsistent window and 413 one
//! over [`MAX_WINDOW_BYTES`] (the engine keeps it in its dead-letter file);
//! 503 the click store is unavailable (the engine spills and retries).

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpRequest, HttpResponse, web};
use ricochet_clickstore::SinkError;
use ricochet_clickstore::control::{CONTENT_TYPE, decode_batch};

use super::auth::ClusterMember;
use super::error::ApiError;
use super::{AppState, blocking, read_body};

/// Largest window accepted (about 500,000 rows).
pub const MAX_WINDOW_BYTES: usize = 64 * 1024 * 1024;

/// What the route has taken in since start.
#[derive(Debug, Default)]
pub struct IntakeStats {
    pub windows: AtomicU64,
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
}

/// `GET /metrics`: the control plane's counters in the Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = &state.intake;
    let mut out = String::new();
    for (name, help, value) in [
        (
            "ricochet_control_click_windows_received_total",
            "Click windows engines shipped and the click store kept.",
            &stats.windows,
        ),
        (
            "ricochet_control_click_rows_received_total",
            "Rows of those windows.",
            &stats.rows,
        ),
        (
            "ricochet_control_click_bytes_received_total",
            "Encoded bytes of those windows.",
            &stats.bytes,
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            value.load(Ordering::Relaxed)
        ));
    }
    if let Some(denylist) = state.service.denylist() {
        let (hosts, urls) = denylist.lists().len();
        let stats = &denylist.stats;
        for (name, kind, help, value) in [
            (
                "ricochet_control_links_blocked",
                "gauge",
                "Links whose destination is blocked (counted by each denylist sweep, kept current by edits).",
                stats.links_blocked.load(Ordering::Relaxed),
            ),
            (
                "ricochet_control_denylist_hosts",
                "gauge",
                "Hosts on the denylist (API, hosts file, threat list by host).",
                hosts as u64,
            ),
            (
                "ricochet_control_denylist_urls",
                "gauge",
                "URLs on the threat list (matched exactly).",
                urls as u64,
            ),
            (
                "ricochet_control_denylist_sweeps_total",
                "counter",
                "Times the denylist was applied to every link.",
                stats.sweeps.load(Ordering::Relaxed),
            ),
            (
                "ricochet_control_denylist_read_errors_total",
                "counter",
                "Failed reads of the denylist's files (their last entries stay).",
                stats.reload_errors.load(Ordering::Relaxed),
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        }
    }
    out.push_str(&webhook_metrics(&state).await);
    let service = state.service.clone();
    let now = ricochet_model::now_millis();
    match blocking(move || service.domain_health(now)).await {
        Ok(health) => {
            for (name, help, value) in [
                (
                    "ricochet_control_domains_pending_verification",
                    "Domains waiting for their DNS TXT record.",
                    health.pending,
                ),
                (
                    "ricochet_control_domains_failed_verification",
                    "Domains whose last verification check failed.",
                    health.failed,
                ),
                (
                    "ricochet_control_domains_record_missing",
                    "Verified domains whose TXT record a daily check no longer finds.",
                    health.record_missing,
                ),
                (
                    "ricochet_control_certificates",
                    "Certificates engines serve (uploaded or issued).",
                    health.certificates,
                ),
                (
                    "ricochet_control_certificates_expiring_soon",
                    "Certificates that expire within 14 days.",
                    health.expiring_soon,
                ),
                (
                    "ricochet_control_certificate_orders_failing",
                    "Domains whose last ACME certificate order failed.",
                    health.failed_orders,
                ),
                (
                    "ricochet_control_certificate_revocations_pending",
                    "Certificates of removed domains the ACME authority has yet to revoke.",
                    health.revocations_pending,
                ),
            ] {
                out.push_str(&format!(
                    "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
                ));
            }
        }
        Err(error) => tracing::warn!(%error, "cannot count domains for /metrics"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(out)
}

pub async fn clicks(
    _: ClusterMember,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let media = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if media != CONTENT_TYPE {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("send a window as Content-Type: {CONTENT_TYPE}"),
        ));
    }
    let body = read_body(payload, MAX_WINDOW_BYTES).await?;
    let batch =
        decode_batch(&body).map_err(|message| ApiError::bad_request("invalid_window", message))?;
    let rows = batch.rows.len() as u64;
    let sink = state.click_sink.clone();
    blocking(move || sink.write(&batch).map_err(refused)).await?;

    let stats = &state.intake;
    stats.windows.fetch_add(1, Ordering::Relaxed);
    stats.rows.fetch_add(rows, Ordering::Relaxed);
    stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    Ok(HttpResponse::NoContent().finish())
}

/// The answer to a window the click store did not take.
fn refused(error: SinkError) -> ApiError {
    match error {
        SinkError::Unavailable(message) => {
            tracing::warn!(%message, "click store unavailable for a shipped window");
            ApiError::new(503, "clicks_unavailable", "the click store is unavailable")
        }
        SinkError::Failed(message) => {
            tracing::error!(%message, "click store refused a shipped window");
            ApiError::new(422, "window_refused", "the click store refused this window")
        }
    }
}

/// The events' and webhooks' lines of `/metrics`.
async fn webhook_metrics(state: &AppState) -> String {
    let stats = &state.webhook_stats;
    let store = state.service.store().clone();
    let pending = blocking(move || store.pending_deliveries())
        .await
        .unwrap_or(0);
    let mut out = String::new();
    for (name, kind, help, value) in [
        (
            "ricochet_control_events_latest",
            "gauge",
            "Number of the last event logged.",
            state.service.store().latest_event(),
        ),
        (
            "ricochet_control_event_streams",
            "gauge",
            "Open GET /api/v1/events streams.",
            state.event_streams.load(Ordering::Relaxed) as u64,
        ),
        (
            "ricochet_control_webhook_deliveries_pending",
            "gauge",
            "Webhook deliveries waiting for an attempt or a retry.",
            pending as u64,
        ),
        (
            "ricochet_control_webhook_deliveries_made_total",
            "counter",
            "Webhook deliveries made from events (one per event and endpoint).",
            stats.fanned_out.load(Ordering::Relaxed),
        ),
        (
            "ricochet_control_webhook_delivered_total",
            "counter",
            "Webhook deliveries answered with a 2xx.",
            stats.delivered.load(Ordering::Relaxed),
        ),
        (
            "ricochet_control_webhook_failed_attempts_total",
            "counter",
            "Webhook attempts that got no 2xx (timeouts, refusals, errors).",
            stats.failed_attempts.load(Ordering::Relaxed),
        ),
        (
            "ricochet_control_webhook_dead_total",
            "counter",
            "Webhook deliveries moved to the dead-letter list.",
            stats.dead.load(Ordering::Relaxed),
        ),
        (
            "ricochet_control_webhook_endpoints_disabled_total",
            "counter",
            "Webhook endpoints disabled after failing for webhooks.disable_after.",
            stats.endpoints_disabled.load(Ordering::Relaxed),
        ),
        (
            "ricochet_control_webhook_delivery_lag_milliseconds_sum",
            "counter",
            "Milliseconds from events' logging to their successful delivery, summed.",
            stats.lag_ms_sum.load(Ordering::Relaxed),
        ),
        (
            "ricochet_control_webhook_delivery_lag_milliseconds_count",
            "counter",
            "Successful deliveries counted in the sum above.",
            stats.lag_count.load(Ordering::Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    out
}
