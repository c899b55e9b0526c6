//! `link.clicked`: closed windows made into events, one per workspace and
//! window (in parts of at most [`LINKS_PER_EVENT`] links), never one per click.
//!
//! The control plane's click sink is wrapped by [`ClickTap`]: every window an
//! engine ships (or the all-in-one's engine writes) is written to the click
//! store as before and, while some workspace wants click events, kept in the
//! control store too. [`ClickEvents::run_once`] (a thread, every second)
//! takes the windows that are settled (ended [`SETTLE_MS`] ago, so every
//! shard and engine has written its part), adds them up per link over nodes
//! and shards, and logs the events in one batch with the mark that those
//! windows are done. A window an engine delivers late becomes another event
//! for the same window; an engine's retry of a window already made into
//! events is ignored. The redirect path is not touched: windows are what
//! engines already write.
//!
//! A window's clicks become events only for workspaces with a subscriber at
//! that moment ([`ClickSubscribers`]): an enabled webhook endpoint wanting
//! `link.clicked`, or an open `GET /api/v1/events` stream reading them.
//!
//! The same pass logs `link.expired` (reason `click_limit`) for a link with
//! `max_clicks` whose counted clicks reached it, once per limit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ricochet_clickstore::contract::{Counts, Interval, add_implied, rank};
use ricochet_clickstore::{ClickReader, ClickSink, SinkError};
use ricochet_model::clicks::{Dimension, WINDOW_MILLIS, WindowBatch};
use ricochet_model::{LinkRecord, LinkState};

use super::{EventKind, ExpiryReason, LinkClicks, NewEvent, OtherLinks, Subject};
use crate::store::{ControlStore, StoreError};

/// Links one `link.clicked` event carries at most; a window with more of a
/// workspace's links is sent in parts (`part` 0, 1, …).
pub const LINKS_PER_EVENT: usize = 500;
/// How long after a window ends its clicks are made into events.
pub const SETTLE_MS: i64 = 10_000;
/// How long a window made into events is remembered against retries.
const REMEMBER_MS: i64 = 3_600_000;

/// The workspaces that want click events now.
#[derive(Debug, Default)]
pub struct ClickSubscribers {
    /// Workspaces with an enabled endpoint wanting `link.clicked`.
    endpoints: RwLock<HashSet<String>>,
    /// Open live streams reading clicks, by workspace.
    streams: Mutex<HashMap<String, usize>>,
    any: AtomicBool,
}

impl ClickSubscribers {
    /// Replaces the workspaces whose endpoints want clicks.
    pub fn set_endpoints(&self, workspaces: HashSet<String>) {
        *self.endpoints.write().unwrap_or_else(|e| e.into_inner()) = workspaces;
        self.update();
    }

    /// Counts an open stream of `workspace` until the guard is dropped.
    pub fn open_stream(self: &Arc<Self>, workspace: &str) -> StreamGuard {
        *self
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(workspace.to_owned())
            .or_default() += 1;
        self.update();
        StreamGuard {
            subscribers: self.clone(),
            workspace: workspace.to_owned(),
        }
    }

    /// Whether any workspace wants clicks (one atomic load).
    pub fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    pub fn wants(&self, workspace: &str) -> bool {
        self.endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(workspace)
            || self
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains_key(workspace)
    }

    fn update(&self) {
        let any = !self
            .endpoints
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
            || !self
                .streams
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty();
        self.any.store(any, Ordering::Release);
    }
}

/// An open stream, counted by [`ClickSubscribers`] while it lives.
#[derive(Debug)]
pub struct StreamGuard {
    subscribers: Arc<ClickSubscribers>,
    workspace: String,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut streams = self
            .subscribers
            .streams
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = streams.get_mut(&self.workspace) {
            *count -= 1;
            if *count == 0 {
                streams.remove(&self.workspace);
            }
        }
        drop(streams);
        self.subscribers.update();
    }
}

/// The control plane's click sink: writes through `inner`, then keeps the
/// window for click events while anyone wants them.
pub struct ClickTap {
    inner: Arc<dyn ClickSink>,
    store: Arc<ControlStore>,
    subscribers: Arc<ClickSubscribers>,
}

impl ClickTap {
    pub fn new(
        inner: Arc<dyn ClickSink>,
        store: Arc<ControlStore>,
        subscribers: Arc<ClickSubscribers>,
    ) -> Self {
        Self {
            inner,
            store,
            subscribers,
        }
    }
}

impl ClickSink for ClickTap {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        self.inner.write(batch)?;
        if self.subscribers.any() && !batch.rows.is_empty() {
            // Failing here fails the write: the engine retries it, and the
            // click store's rows are absolute, so nothing is counted twice.
            self.store
                .put_pending_window(batch)
                .map_err(|e| SinkError::Unavailable(e.to_string()))?;
        }
        Ok(())
    }
}

/// One link's counts in one window, over every node and shard.
#[derive(Debug, Default)]
struct Tally {
    total: Counts,
    values: BTreeMap<Dimension, HashMap<String, Counts>>,
}

/// Adds up windows per (window, link).
fn tally(batches: &[WindowBatch]) -> BTreeMap<i64, HashMap<u64, Tally>> {
    let mut windows: BTreeMap<i64, HashMap<u64, Tally>> = BTreeMap::new();
    for batch in batches {
        let links = windows.entry(batch.window_start).or_default();
        for row in &batch.rows {
            let tally = links.entry(row.link_id).or_default();
            if row.dimension == Dimension::Total {
                tally.total.add(row.bot, row.count);
            } else {
                tally
                    .values
                    .entry(row.dimension)
                    .or_default()
                    .entry(row.value.clone())
                    .or_default()
                    .add(row.bot, row.count);
            }
        }
    }
    windows
}

fn link_clicks(link: &LinkRecord, tally: Tally) -> LinkClicks {
    let mut breakdowns = Vec::new();
    for dimension in Dimension::ALL {
        if dimension == Dimension::Total {
            continue;
        }
        let mut entries: Vec<(String, Counts)> = tally
            .values
            .get(&dimension)
            .map(|values| values.iter().map(|(v, c)| (v.clone(), *c)).collect())
            .unwrap_or_default();
        if dimension.has_implied() {
            add_implied(dimension, &mut entries, tally.total);
        } else {
            rank(&mut entries);
        }
        if entries.is_empty() {
            continue;
        }
        breakdowns.push((
            dimension.as_str().to_owned(),
            entries
                .into_iter()
                .map(|(value, counts)| (value, counts.humans, counts.bots))
                .collect(),
        ));
    }
    LinkClicks {
        link_id: link.id,
        domain: link.domain.clone(),
        code: link.code.clone(),
        humans: tally.total.humans,
        bots: tally.total.bots,
        breakdowns,
    }
}

/// Makes settled windows into events ([`Self::run_once`]).
pub struct ClickEvents {
    store: Arc<ControlStore>,
    subscribers: Arc<ClickSubscribers>,
    /// Links a window's events carry at most per workspace (those with the
    /// most clicks); the rest are summed in `others`.
    links_per_window: usize,
    /// Counted clicks of links with a click limit.
    reader: Option<Arc<dyn ClickReader>>,
}

impl ClickEvents {
    pub fn new(
        store: Arc<ControlStore>,
        subscribers: Arc<ClickSubscribers>,
        reader: Option<Arc<dyn ClickReader>>,
        links_per_window: usize,
    ) -> Self {
        Self {
            store,
            subscribers,
            reader,
            links_per_window: links_per_window.max(1),
        }
    }

    /// Logs the events of the windows settled at `now`; how many events.
    pub fn run_once(&self, now: i64) -> Result<usize, StoreError> {
        let settled = now - SETTLE_MS - WINDOW_MILLIS;
        let batches = self.store.pending_windows(settled)?;
        if batches.is_empty() {
            self.store.prune_emitted_windows(now - REMEMBER_MS)?;
            return Ok(0);
        }
        let mut events = Vec::new();
        let mut workspaces: HashMap<u64, Option<String>> = HashMap::new();
        let mut limited: HashMap<u64, LinkRecord> = HashMap::new();
        for (window_start, links) in tally(&batches) {
            let mut by_workspace: BTreeMap<String, Vec<LinkClicks>> = BTreeMap::new();
            for (id, tally) in links {
                let workspace = match workspaces.get(&id) {
                    Some(known) => known.clone(),
                    None => {
                        let found = self.store.link_workspace(id)?;
                        workspaces.insert(id, found.clone());
                        found
                    }
                };
                let Some(workspace) = workspace else {
                    continue;
                };
                let Some(link) = self.store.link(id)? else {
                    continue;
                };
                if link.extensions.click_limit.is_some() && link.state == LinkState::Active {
                    limited.insert(id, link.clone());
                }
                if self.subscribers.wants(&workspace) {
                    by_workspace
                        .entry(workspace)
                        .or_default()
                        .push(link_clicks(&link, tally));
                }
            }
            for (workspace, mut links) in by_workspace {
                links.sort_by(|a, b| {
                    (b.humans, b.bots, a.link_id).cmp(&(a.humans, a.bots, b.link_id))
                });
                let others = (links.len() > self.links_per_window).then(|| {
                    let mut others = OtherLinks::default();
                    for link in links.drain(self.links_per_window..) {
                        others.links += 1;
                        others.humans += link.humans;
                        others.bots += link.bots;
                    }
                    others
                });
                let parts = links.len().div_ceil(LINKS_PER_EVENT);
                for (part, chunk) in links.chunks(LINKS_PER_EVENT).enumerate() {
                    events.push(NewEvent {
                        kind: EventKind::LinkClicked,
                        workspace: workspace.clone(),
                        subject: Subject::Clicks {
                            window_start,
                            part: part as u32,
                            links: chunk.to_vec(),
                            others: others.filter(|_| part + 1 == parts),
                        },
                    });
                }
            }
        }
        let mut markers = Vec::new();
        for link in limited.into_values() {
            if let Some(event) = self.limit_reached(&link, now, &mut markers)? {
                events.push(event);
            }
        }
        let count = events.len();
        self.store.write(|txn| {
            for event in events {
                txn.stage_event(event);
            }
            for (name, value) in &markers {
                txn.set_marker(name, *value);
            }
            txn.mark_windows_emitted(&batches);
            Ok::<_, StoreError>(())
        })?;
        Ok(count)
    }

    /// `link.expired` for `link` when its counted clicks reached its limit
    /// and that limit was not reported yet.
    fn limit_reached(
        &self,
        link: &LinkRecord,
        now: i64,
        markers: &mut Vec<(String, i64)>,
    ) -> Result<Option<NewEvent>, StoreError> {
        let (Some(limit), Some(reader)) = (link.extensions.click_limit, &self.reader) else {
            return Ok(None);
        };
        let marker = format!("click_limit:{}", link.id);
        if self.store.marker(&marker)? == Some(limit as i64) {
            return Ok(None);
        }
        let counted: u64 = match reader.series(
            link.id,
            link.created_at.min(now),
            now + WINDOW_MILLIS,
            Interval::Day,
        ) {
            Ok(series) => series.iter().map(|(_, c)| c.humans + c.bots).sum(),
            Err(error) => {
                tracing::warn!(%error, link = link.id, "cannot count a limited link's clicks");
                return Ok(None);
            }
        };
        if counted < limit {
            return Ok(None);
        }
        let Some(workspace) = self.store.link_workspace(link.id)? else {
            return Ok(None);
        };
        markers.push((marker, limit as i64));
        Ok(Some(NewEvent {
            kind: EventKind::LinkExpired,
            workspace,
            subject: Subject::Expired {
                link: Box::new(link.clone()),
                reason: ExpiryReason::ClickLimit,
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::clicks::WindowRow;

    fn row(link: u64, dimension: Dimension, value: &str, bot: bool, count: u64) -> WindowRow {
        WindowRow {
            link_id: link,
            window_start: 10_000,
            dimension,
            value: value.into(),
            bot,
            count,
        }
    }

    #[test]
    fn windows_add_up_over_nodes_and_shards_with_implied_values() {
        let batch = |node: &str, shard: u16, rows| WindowBatch {
            node: node.into(),
            shard,
            window_start: 10_000,
            rows,
        };
        let batches = vec![
            batch(
                "a",
                0,
                vec![
                    row(7, Dimension::Total, "", false, 3),
                    row(7, Dimension::Country, "FR", false, 2),
                    row(7, Dimension::Device, "Mobile", false, 1),
                ],
            ),
            batch(
                "b",
                1,
                vec![
                    row(7, Dimension::Total, "", false, 2),
                    row(7, Dimension::Total, "", true, 1),
                    row(7, Dimension::Country, "FR", false, 1),
                    row(7, Dimension::Country, "US", false, 1),
                ],
            ),
        ];
        let mut windows = tally(&batches);
        let tally = windows.remove(&10_000).unwrap().remove(&7).unwrap();
        let link = LinkRecord::new(7, "rico.local", "abc", "https://example.com/", 0).unwrap();
        let clicks = link_clicks(&link, tally);
        assert_eq!((clicks.humans, clicks.bots), (5, 1));
        let get = |name: &str| {
            clicks
                .breakdowns
                .iter()
                .find(|(d, _)| d == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("country").unwrap(),
            vec![("FR".to_owned(), 3, 0), ("US".to_owned(), 1, 0)]
        );
        // Devices: 1 named, the other 4 humans are `Other`, the bot is `bot`.
        assert_eq!(
            get("device").unwrap(),
            vec![
                ("Other".to_owned(), 4, 0),
                ("Mobile".to_owned(), 1, 0),
                ("bot".to_owned(), 0, 1)
            ]
        );
        assert_eq!(get("referrer"), None);
    }

    #[test]
    fn subscribers_count_streams_until_they_close() {
        let subscribers = Arc::new(ClickSubscribers::default());
        assert!(!subscribers.any());
        let first = subscribers.open_stream("ws_a");
        let second = subscribers.open_stream("ws_a");
        assert!(subscribers.any() && subscribers.wants("ws_a"));
        assert!(!subscribers.wants("ws_b"));
        drop(first);
        assert!(subscribers.wants("ws_a"));
        drop(second);
        assert!(!subscribers.any() && !subscribers.wants("ws_a"));
        subscribers.set_endpoints(HashSet::from(["ws_b".to_owned()]));
        assert!(subscribers.any() && subscribers.wants("ws_b"));
    }
}
