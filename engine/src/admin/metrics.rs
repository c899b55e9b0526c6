//! Renders the engine's counters in the Prometheus text exposition format,
//! summing the per-shard counters at scrape time.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::stats::{EngineStats, WorkerStats};
use crate::table::LinkTable;

/// A per-worker counter: name, help text, and the field to sum.
type WorkerCounter = (&'static str, &'static str, fn(&WorkerStats) -> &AtomicU64);

fn sum(workers: &[std::sync::Arc<WorkerStats>], field: impl Fn(&WorkerStats) -> &AtomicU64) -> u64 {
    workers
        .iter()
        .map(|w| field(w).load(Ordering::Relaxed))
        .sum()
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The `/metrics` body.
pub fn render(
    stats: &EngineStats,
    workers: &[std::sync::Arc<WorkerStats>],
    table: &LinkTable,
) -> String {
    let mut out = String::with_capacity(4096);
    let _ = writeln!(
        out,
        "# HELP ricochet_engine_requests_total Requests on the redirect port by the status class of their answer.\n\
         # TYPE ricochet_engine_requests_total counter"
    );
    for (index, class) in ["1xx", "2xx", "3xx", "4xx", "5xx"].iter().enumerate() {
        let value = sum(workers, |w| &w.responses[index]);
        let _ = writeln!(
            out,
            "ricochet_engine_requests_total{{class=\"{class}\"}} {value}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP ricochet_engine_worker_requests_total Requests answered on the redirect port by worker (shard).\n\
         # TYPE ricochet_engine_worker_requests_total counter"
    );
    for (index, worker) in workers.iter().enumerate() {
        let value: u64 = worker
            .responses
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum();
        let _ = writeln!(
            out,
            "ricochet_engine_worker_requests_total{{worker=\"{index}\"}} {value}"
        );
    }
    let counters: [WorkerCounter; 13] = [
        (
            "ricochet_engine_redirects_total",
            "Redirects answered (301, 302, 307, 308).",
            |w| &w.redirects,
        ),
        (
            "ricochet_engine_not_found_total",
            "Requests for unknown links (404).",
            |w| &w.not_found,
        ),
        (
            "ricochet_engine_gone_total",
            "Requests for disabled, deleted or expired links (410).",
            |w| &w.gone,
        ),
        (
            "ricochet_engine_blocked_total",
            "Requests for links whose destination is blocked (451).",
            |w| &w.blocked,
        ),
        (
            "ricochet_engine_bad_requests_total",
            "Malformed requests answered 400 and closed.",
            |w| &w.bad_requests,
        ),
        (
            "ricochet_engine_connections_accepted_total",
            "Connections accepted.",
            |w| &w.connections_accepted,
        ),
        (
            "ricochet_engine_connections_closed_total",
            "Connections closed after being served.",
            |w| &w.connections_closed,
        ),
        (
            "ricochet_engine_connections_rejected_total",
            "Connections refused with 503 over the connection cap.",
            |w| &w.connections_rejected,
        ),
        (
            "ricochet_engine_header_timeouts_total",
            "Connections closed because a request head did not arrive in time.",
            |w| &w.header_timeouts,
        ),
        (
            "ricochet_engine_idle_timeouts_total",
            "Idle keep-alive connections closed.",
            |w| &w.idle_timeouts,
        ),
        (
            "ricochet_engine_tls_handshakes_total",
            "TLS handshakes completed on the HTTPS listener.",
            |w| &w.tls_handshakes,
        ),
        (
            "ricochet_engine_tls_handshake_failures_total",
            "TLS handshakes that failed (no certificate for the name, protocol errors).",
            |w| &w.tls_handshake_failures,
        ),
        (
            "ricochet_engine_tls_handshake_timeouts_total",
            "TLS handshakes not finished within server.handshake_timeout.",
            |w| &w.tls_handshake_timeouts,
        ),
    ];
    for (name, help, field) in counters {
        metric(&mut out, name, "counter", help, sum(workers, field));
    }
    let open = sum(workers, |w| &w.connections_accepted)
        .saturating_sub(sum(workers, |w| &w.connections_closed))
        .saturating_sub(sum(workers, |w| &w.connections_rejected))
        .saturating_sub(sum(workers, |w| &w.client_connections_refused));
    metric(
        &mut out,
        "ricochet_engine_connections_open",
        "gauge",
        "Connections open now.",
        open,
    );
    metric(
        &mut out,
        "ricochet_engine_workers",
        "gauge",
        "Worker shards serving redirects.",
        workers.len() as u64,
    );
    metric(
        &mut out,
        "ricochet_engine_links",
        "gauge",
        "Links in the table (any state).",
        table.len() as u64,
    );
    metric(
        &mut out,
        "ricochet_engine_links_planned",
        "gauge",
        "Links with a compiled plan (rules, splits, app links, a card or a fallback).",
        table.planned() as u64,
    );
    metric(
        &mut out,
        "ricochet_engine_domains",
        "gauge",
        "Domains with links or settings.",
        table.domain_count() as u64,
    );
    metric(
        &mut out,
        "ricochet_engine_domains_redirecting_misses",
        "gauge",
        "Domains whose root or unknown codes redirect (domain settings).",
        table.domains_with_settings() as u64,
    );
    let certificates = table.tls().current();
    metric(
        &mut out,
        "ricochet_engine_tls_certificates",
        "gauge",
        "Domains the HTTPS listener has a certificate for (the default one not counted).",
        certificates.certificates() as u64,
    );
    metric(
        &mut out,
        "ricochet_engine_tls_earliest_expiry_seconds",
        "gauge",
        "Unix time the first served certificate expires (0: none served).",
        certificates
            .earliest_expiry()
            .map_or(0, |millis| (millis / 1000).max(0) as u64),
    );
    let ready = stats.ready.load(Ordering::Acquire) as u64;
    metric(
        &mut out,
        "ricochet_engine_ready",
        "gauge",
        "1 once the table is loaded and workers accept.",
        ready,
    );
    let load_seconds = stats.load_millis.load(Ordering::Relaxed) as f64 / 1000.0;
    let _ = writeln!(
        out,
        "# HELP ricochet_engine_load_seconds Time taken to load the table from disk at start.\n\
         # TYPE ricochet_engine_load_seconds gauge\nricochet_engine_load_seconds {load_seconds:.3}"
    );
    let gauges: [(&str, &str, &AtomicU64); 10] = [
        (
            "ricochet_engine_loaded_links",
            "Links loaded from disk at start.",
            &stats.loaded_links,
        ),
        (
            "ricochet_engine_load_errors",
            "Stored links skipped at start because they were unreadable or invalid.",
            &stats.load_errors,
        ),
        (
            "ricochet_engine_last_applied_version",
            "Version of the last change applied.",
            &stats.last_applied_version,
        ),
        (
            "ricochet_engine_changes_applied_total",
            "Changes applied.",
            &stats.changes_applied,
        ),
        (
            "ricochet_engine_changes_skipped_total",
            "Changes skipped as already applied.",
            &stats.changes_skipped,
        ),
        (
            "ricochet_engine_latest_known_version",
            "Highest version heard of from the control plane.",
            &stats.latest_known_version,
        ),
        (
            "ricochet_engine_catch_ups_total",
            "Catch-ups from the control plane's change log.",
            &stats.catch_ups,
        ),
        (
            "ricochet_engine_catch_up_failures_total",
            "Catch-ups that failed and were retried.",
            &stats.catch_up_failures,
        ),
        (
            "ricochet_engine_gaps_detected_total",
            "Version gaps seen on the bus.",
            &stats.gaps_detected,
        ),
        (
            "ricochet_engine_bus_reconnects_total",
            "Reconnections to the update bus.",
            &stats.bus_reconnects,
        ),
    ];
    // The two versions are read together, so the latest known is never
    // shown below the last applied.
    let (applied, latest) = stats.versions();
    for (name, help, value) in gauges {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let value = match name {
            "ricochet_engine_last_applied_version" => applied,
            "ricochet_engine_latest_known_version" => latest,
            _ => value.load(Ordering::Relaxed),
        };
        metric(&mut out, name, kind, help, value);
    }
    out
}

/// Appends the per-client limits' counters and the addresses they track
/// (zeros when the limits are off).
pub fn render_clients(
    out: &mut String,
    workers: &[std::sync::Arc<WorkerStats>],
    clients: &crate::server::ClientLimits,
) {
    metric(
        out,
        "ricochet_engine_client_connections_refused_total",
        "counter",
        "Connections refused (429 over HTTP, closed over HTTPS) because their client had server.clients.max_connections open.",
        sum(workers, |w| &w.client_connections_refused),
    );
    metric(
        out,
        "ricochet_engine_client_requests_limited_total",
        "counter",
        "Requests answered 429, their connection closed, over server.clients.requests_per_second.",
        sum(workers, |w| &w.client_requests_limited),
    );
    let (connections, requests) = clients.tracked();
    let _ = writeln!(
        out,
        "# HELP ricochet_engine_client_addresses_tracked Client addresses (IPv6: prefixes) the per-client limits hold state for.\n\
         # TYPE ricochet_engine_client_addresses_tracked gauge\n\
         ricochet_engine_client_addresses_tracked{{limit=\"connections\"}} {connections}\n\
         ricochet_engine_client_addresses_tracked{{limit=\"requests\"}} {requests}"
    );
}

/// Appends the click pipeline's counters (zeros when capture is off, so
/// dashboards see the series either way).
pub fn render_clicks(
    out: &mut String,
    clicks: Option<&crate::clicks::ClickStats>,
    spill: Option<&ricochet_clickstore::spill::SpillStats>,
    store: Option<&crate::clicks::FjallSink>,
) {
    let read = |counter: Option<&AtomicU64>| counter.map_or(0, |c| c.load(Ordering::Relaxed));
    let rows: [(&str, &str, &str, u64); 16] = [
        (
            "ricochet_clicks_captured_total",
            "counter",
            "Clicks counted into windows.",
            read(clicks.map(|c| &c.captured)),
        ),
        (
            "ricochet_clicks_dropped_total",
            "counter",
            "Clicks lost because a shard's click channel was full.",
            read(clicks.map(|c| &c.dropped)),
        ),
        (
            "ricochet_clicks_bot_total",
            "counter",
            "Clicks from bots and crawlers (counted apart).",
            read(clicks.map(|c| &c.bot_clicks)),
        ),
        (
            "ricochet_click_windows_flushed_total",
            "counter",
            "Closed windows handed to the sink.",
            read(clicks.map(|c| &c.windows_flushed)),
        ),
        (
            "ricochet_click_windows_written_total",
            "counter",
            "Windows the sink stored.",
            read(spill.map(|s| &s.written)),
        ),
        (
            "ricochet_click_windows_spilled_total",
            "counter",
            "Windows queued on disk because the sink failed.",
            read(spill.map(|s| &s.spilled)),
        ),
        (
            "ricochet_click_windows_retried_total",
            "counter",
            "Attempts to write queued windows.",
            read(spill.map(|s| &s.retried)),
        ),
        (
            "ricochet_click_windows_dropped_total",
            "counter",
            "Windows dropped because the spill queue was full.",
            read(spill.map(|s| &s.dropped)),
        ),
        (
            "ricochet_click_windows_dead_lettered_total",
            "counter",
            "Windows the click store refused for good, kept in clicks-spill/dead-letter.jsonl.",
            read(spill.map(|s| &s.dead_lettered)),
        ),
        (
            "ricochet_click_windows_queued",
            "gauge",
            "Windows waiting in the spill queue.",
            read(spill.map(|s| &s.queued)),
        ),
        (
            "ricochet_click_rollups_pending",
            "gauge",
            "Minutes, hours and days of the embedded click store waiting to be rolled up.",
            store.map_or(0, |s| s.dirty_buckets() as u64),
        ),
        (
            "ricochet_click_window_entries",
            "gauge",
            "Distinct (link, profile) entries in the open click windows of every shard.",
            read(clicks.map(|c| &c.window_entries)),
        ),
        (
            "ricochet_click_window_rows",
            "gauge",
            "Rows the open click windows of every shard would become.",
            read(clicks.map(|c| &c.window_rows)),
        ),
        (
            "ricochet_click_window_rows_max",
            "gauge",
            "clicks.max_window_rows: rows of one shard's window before it is split (0: no cap).",
            read(clicks.map(|c| &c.window_rows_max)),
        ),
        (
            "ricochet_click_window_memory_bytes",
            "gauge",
            "Estimated bytes of click windows: open, spare and queued tables, and row buffers.",
            read(clicks.map(|c| &c.window_memory_bytes)),
        ),
        (
            "ricochet_click_window_splits_total",
            "counter",
            "Window parts written early because a window reached clicks.max_window_rows.",
            read(clicks.map(|c| &c.window_splits)),
        ),
    ];
    for (name, kind, help, value) in rows {
        metric(out, name, kind, help, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clicks::{ClickSink, FjallSink};
    use ricochet_model::clicks::{Dimension, WindowBatch, WindowRow};

    #[test]
    fn click_metrics_show_the_rollup_backlog() {
        let dir = tempfile::tempdir().unwrap();
        let store = FjallSink::open(dir.path()).unwrap();
        let mut out = String::new();
        render_clicks(&mut out, None, None, Some(&store));
        assert!(
            out.contains("\nricochet_click_rollups_pending 0\n"),
            "{out}"
        );
        let row = WindowRow {
            link_id: 1,
            window_start: 0,
            dimension: Dimension::Total,
            value: String::new(),
            bot: false,
            count: 1,
        };
        store
            .write(&WindowBatch {
                node: "n".into(),
                shard: 0,
                window_start: 0,
                rows: vec![row],
            })
            .unwrap();
        let mut out = String::new();
        render_clicks(&mut out, None, None, Some(&store));
        assert!(
            out.contains("\nricochet_click_rollups_pending 3\n"),
            "a minute, an hour, a day: {out}"
        );
        assert!(out.contains("\nricochet_clicks_dropped_total 0\n"), "{out}");
        for gauge in [
            "ricochet_click_window_entries",
            "ricochet_click_window_rows",
            "ricochet_click_window_rows_max",
            "ricochet_click_window_memory_bytes",
            "ricochet_click_window_splits_total",
        ] {
            assert!(out.contains(&format!("\n{gauge} 0\n")), "{gauge}: {out}");
        }
    }
}
