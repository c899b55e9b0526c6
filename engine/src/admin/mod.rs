//! The admin port, on its own thread and address, apart from redirect traffic.
//! Routes: `GET /healthz` (the process is up), `GET /readyz` (503 until the
//! table is loaded), `GET /metrics` (Prometheus text format).

mod metrics;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::clicks::ClickStats;
use crate::clicks::FjallSink;
use crate::http::{Handled, Handler, Method, Request, ResponseWriter};
use crate::server::ClientLimits;
use crate::stats::{EngineStats, WorkerStats};
use crate::table::LinkTable;
use ricochet_clickstore::spill::SpillStats;

/// Answers admin requests.
#[derive(Debug, Clone)]
pub struct AdminHandler {
    stats: Arc<EngineStats>,
    workers: Arc<[Arc<WorkerStats>]>,
    table: Arc<LinkTable>,
    clicks: Option<Arc<ClickStats>>,
    spill: Option<Arc<SpillStats>>,
    click_store: Option<Arc<FjallSink>>,
    clients: ClientLimits,
}

impl AdminHandler {
    pub fn new(
        stats: Arc<EngineStats>,
        workers: Arc<[Arc<WorkerStats>]>,
        table: Arc<LinkTable>,
    ) -> Self {
        Self {
            stats,
            workers,
            table,
            clicks: None,
            spill: None,
            click_store: None,
            clients: ClientLimits::default(),
        }
    }

    /// Adds the per-client limits' counters to `/metrics`.
    pub fn with_clients(mut self, clients: ClientLimits) -> Self {
        self.clients = clients;
        self
    }

    /// Adds the click pipeline's counters to `/metrics`.
    pub fn with_clicks(
        mut self,
        clicks: Option<Arc<ClickStats>>,
        spill: Option<Arc<SpillStats>>,
    ) -> Self {
        self.clicks = clicks;
        self.spill = spill;
        self
    }

    /// Adds the embedded click store's rollup backlog to `/metrics`.
    pub fn with_click_store(mut self, store: Option<Arc<FjallSink>>) -> Self {
        self.click_store = store;
        self
    }
}

impl Handler for AdminHandler {
    fn handle(&mut self, request: &Request<'_>, response: ResponseWriter<'_>) -> Handled {
        Handled::Answered(self.answer(request, response))
    }
}

impl AdminHandler {
    fn answer(&self, request: &Request<'_>, response: ResponseWriter<'_>) -> u16 {
        if matches!(request.method, Method::Post | Method::Other) {
            response
                .start(405)
                .header(b"Allow", b"GET, HEAD")
                .header(b"Content-Type", b"text/plain; charset=utf-8")
                .finish(b"method not allowed\n");
            return 405;
        }
        match request.path {
            b"/healthz" => response.text(200, "ok\n"),
            b"/readyz" if self.stats.ready.load(Ordering::Acquire) => response.text(200, "ready\n"),
            b"/readyz" => response.text(503, "loading the link table\n"),
            b"/metrics" => {
                let mut body = metrics::render(&self.stats, &self.workers, &self.table);
                metrics::render_clients(&mut body, &self.workers, &self.clients);
                metrics::render_clicks(
                    &mut body,
                    self.clicks.as_deref(),
                    self.spill.as_deref(),
                    self.click_store.as_deref(),
                );
                response
                    .start(200)
                    .header(b"Content-Type", b"text/plain; version=0.0.4; charset=utf-8")
                    .finish(body.as_bytes());
                200
            }
            _ => response.text(404, "not found: try /healthz, /readyz or /metrics\n"),
        }
    }
}
