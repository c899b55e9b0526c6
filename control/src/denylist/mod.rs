//! Blocked destinations: hosts operators list through the API (stored) or
//! a hosts file, and URLs a threat list in URLhaus's CSV format names.
//! Creates and edits refuse a listed destination ([`Denylist::check`]); a
//! change to the lists re-checks every stored link and writes the verdict
//! (`extensions.blocked`) through the change log ([`Denylist::sweep`]), so
//! every engine answers a blocked link with its 451 page, and a link whose
//! host leaves the lists redirects again.
//!
//! - [`lists`]: one snapshot of the lists, and matching against it.
//! - [`sources`]: reading the hosts file and the threat list.

pub mod lists;
pub mod sources;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use ricochet_model::LinkRecord;
use ricochet_model::ValidationError;
use ricochet_model::block::{Block, BlockSource};
use thiserror::Error;

pub use lists::{Listed, Lists, normalize_host};
pub use sources::{ReadReport, ThreatMatch, clean_reason};

use crate::store::{ControlStore, DeniedHost, StoreError};

/// Links re-written per transaction by a sweep.
const SWEEP_BATCH: usize = 1_000;

/// Where the lists on disk are.
#[derive(Debug, Clone, Default)]
pub struct DenylistSettings {
    /// The hosts file (`denylist.file`).
    pub file: Option<PathBuf>,
    /// The threat list in URLhaus's CSV format (`denylist.threat_list`).
    pub threat_list: Option<PathBuf>,
    pub threat_match: ThreatMatch,
}

/// Why a denylist operation was refused.
#[derive(Debug, Error)]
pub enum DenylistError {
    #[error("host must be a host name or an IP address (like bad.example), not a URL or text")]
    InvalidHost(#[source] ValidationError),
    #[error("{host} is not on the denylist")]
    NotListed { host: String },
    #[error("{host} is listed in {path}, the denylist file: remove it there")]
    FromFile { host: String, path: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one file source last read.
#[derive(Debug, Clone, Default)]
pub struct SourceStatus {
    pub path: Option<PathBuf>,
    /// When the file was last read whole (Unix milliseconds).
    pub loaded_at: Option<i64>,
    pub report: ReadReport,
    /// Why the last read failed (the entries of the read before are kept).
    pub error: Option<String>,
    /// Modification time and length at the last read: a change rereads.
    stamp: Option<(SystemTime, u64)>,
    lists: Lists,
}

/// What a sweep changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub examined: usize,
    /// Links that became blocked, or blocked by another entry.
    pub blocked: usize,
    /// Links that are no longer blocked.
    pub unblocked: usize,
    /// Links blocked after the sweep.
    pub blocked_now: usize,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct DenylistStats {
    pub links_blocked: AtomicU64,
    pub sweeps: AtomicU64,
    pub reload_errors: AtomicU64,
}

/// The lists, their sources and the sweeps that apply them.
#[derive(Debug)]
pub struct Denylist {
    store: Arc<ControlStore>,
    settings: DenylistSettings,
    current: RwLock<Arc<Lists>>,
    file: Mutex<SourceStatus>,
    threat_list: Mutex<SourceStatus>,
    /// One sweep at a time; a later one starts from the newer lists.
    sweeping: Mutex<()>,
    /// A sweep was put off (an import's bulk load was open): the next
    /// refresh runs it.
    pending: AtomicBool,
    pub stats: DenylistStats,
}

impl Denylist {
    /// The denylist of `store` (its API entries) and the files `settings`
    /// name, read now; an unreadable file is logged and retried later.
    pub fn new(store: Arc<ControlStore>, settings: DenylistSettings) -> Result<Self, StoreError> {
        let denylist = Self {
            file: Mutex::new(SourceStatus {
                path: settings.file.clone(),
                ..SourceStatus::default()
            }),
            threat_list: Mutex::new(SourceStatus {
                path: settings.threat_list.clone(),
                ..SourceStatus::default()
            }),
            store,
            settings,
            current: RwLock::default(),
            sweeping: Mutex::new(()),
            pending: AtomicBool::new(false),
            stats: DenylistStats::default(),
        };
        denylist.reread_files();
        denylist.rebuild()?;
        Ok(denylist)
    }

    /// The lists now.
    pub fn lists(&self) -> Arc<Lists> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What blocks `destination`, if anything.
    pub fn check(&self, destination: &str) -> Option<Block> {
        self.lists().check(destination)
    }

    /// What blocks any destination of `link`, if anything.
    pub fn verdict(&self, link: &LinkRecord) -> Option<Block> {
        self.lists().verdict(link)
    }

    /// Hosts blocked through the API.
    pub fn api_entries(&self) -> Result<Vec<DeniedHost>, StoreError> {
        self.store.denied_hosts()
    }

    /// The hosts file's entries (host, reason), by host.
    pub fn file_entries(&self) -> Vec<(String, Option<String>)> {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.lists.hosts_sorted()
    }

    /// What the hosts file and the threat list last read.
    pub fn sources(&self) -> (SourceStatus, SourceStatus) {
        let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let threat = self.threat_list.lock().unwrap_or_else(|e| e.into_inner());
        let strip = |status: &SourceStatus| SourceStatus {
            lists: Lists::default(),
            ..status.clone()
        };
        (strip(&file), strip(&threat))
    }

    /// Keeps the blocked-links count right across an edit that unblocked
    /// (or, for a link a sweep has not reached yet, blocked) a link.
    pub fn count_edit(&self, was_blocked: bool, is_blocked: bool) {
        match (was_blocked, is_blocked) {
            (true, false) => {
                let _ = self.stats.links_blocked.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |n| n.checked_sub(1),
                );
            }
            (false, true) => {
                self.stats.links_blocked.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Lists `host` (with `reason`) through the API and applies it to every
    /// link. Listing a host again replaces its reason.
    pub fn add(
        &self,
        host: &str,
        reason: Option<&str>,
        created_by: Option<String>,
        now: i64,
    ) -> Result<(DeniedHost, SweepReport), DenylistError> {
        let host = normalize_host(host).map_err(DenylistError::InvalidHost)?;
        let entry = DeniedHost {
            host,
            reason: reason.and_then(clean_reason),
            created_at: now,
            created_by,
        };
        self.store.put_denied_host(&entry)?;
        self.rebuild()?;
        let report = self.sweep()?;
        tracing::info!(host = %entry.host, blocked = report.blocked, "destination host blocked");
        Ok((entry, report))
    }

    /// Takes `host` off the API's list and applies that to every link.
    pub fn remove(&self, host: &str) -> Result<SweepReport, DenylistError> {
        let host = normalize_host(host).map_err(DenylistError::InvalidHost)?;
        if !self.store.delete_denied_host(&host)? {
            let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            if file.lists.has_host(&host) {
                return Err(DenylistError::FromFile {
                    host,
                    path: file
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                });
            }
            return Err(DenylistError::NotListed { host });
        }
        self.rebuild()?;
        let report = self.sweep()?;
        tracing::info!(%host, unblocked = report.unblocked, "destination host unblocked");
        Ok(report)
    }

    /// Rereads the files that changed since their last read and, when the
    /// lists changed, applies them. `None` when nothing changed.
    pub fn refresh(&self) -> Result<Option<SweepReport>, StoreError> {
        if self.reread_files() {
            self.rebuild()?;
        } else if !self.pending.load(Ordering::Acquire) {
            return Ok(None);
        }
        self.sweep().map(Some)
    }

    /// Rereads each file whose modification time or length changed; true
    /// when one was read.
    fn reread_files(&self) -> bool {
        let mut changed = false;
        for (status, source) in [
            (&self.file, BlockSource::File),
            (&self.threat_list, BlockSource::ThreatList),
        ] {
            let mut status = status.lock().unwrap_or_else(|e| e.into_inner());
            let Some(path) = status.path.clone() else {
                continue;
            };
            let stamp = std::fs::metadata(&path).ok().map(|meta| {
                (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                )
            });
            if stamp.is_some() && stamp == status.stamp {
                continue;
            }
            let read = sources::read_file(&path).map(|bytes| {
                let mut lists = Lists::default();
                let report = match source {
                    BlockSource::ThreatList => {
                        sources::read_threat_list(&bytes, self.settings.threat_match, &mut lists)
                    }
                    _ => sources::read_hosts(&String::from_utf8_lossy(&bytes), &mut lists),
                };
                (lists, report)
            });
            match read {
                Ok((lists, report)) => {
                    if let Some((line, why)) = &report.first_skipped {
                        tracing::warn!(
                            path = %path.display(), skipped = report.skipped, first_line = line,
                            first_reason = %why, "denylist lines skipped"
                        );
                    }
                    tracing::info!(
                        path = %path.display(), entries = report.entries, source = source.as_str(),
                        "denylist file read"
                    );
                    status.lists = lists;
                    status.report = report;
                    status.error = None;
                    status.loaded_at = Some(ricochet_model::now_millis());
                    status.stamp = stamp;
                    changed = true;
                }
                Err(error) => {
                    // Keep what the last good read listed: a file being
                    // replaced must not unblock everything for a moment.
                    if status.error.as_deref() != Some(error.as_str()) {
                        tracing::warn!(%error, "denylist file unreadable; keeping its last entries");
                    }
                    self.stats.reload_errors.fetch_add(1, Ordering::Relaxed);
                    status.error = Some(error);
                    status.stamp = None;
                }
            }
        }
        changed
    }

    /// Builds the lists from the API's entries and the files' last reads.
    fn rebuild(&self) -> Result<(), StoreError> {
        let mut lists = Lists::default();
        for entry in self.store.denied_hosts()? {
            lists.add_host(
                entry.host,
                Listed {
                    source: BlockSource::Api,
                    reason: entry.reason,
                },
            );
        }
        for status in [&self.file, &self.threat_list] {
            let status = status.lock().unwrap_or_else(|e| e.into_inner());
            lists.extend(&status.lists);
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(lists);
        Ok(())
    }

    /// Writes the current verdict into every link whose stored one differs,
    /// a batch of links per transaction; each rewritten link is a change
    /// engines apply. Sweeps run one at a time.
    pub fn sweep(&self) -> Result<SweepReport, StoreError> {
        let _one = self.sweeping.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = SweepReport::default();
        if self.store.bulk_load_open() {
            // An import is writing sorted tables; its own links were checked
            // as they were created. The rest waits for the next refresh.
            self.pending.store(true, Ordering::Release);
            return Ok(report);
        }
        self.pending.store(false, Ordering::Release);
        let lists = self.lists();
        let mut stale = Vec::new();
        self.store.for_each_link(|link| {
            report.examined += 1;
            let verdict = lists.verdict(&link);
            report.blocked_now += usize::from(verdict.is_some());
            if verdict != link.extensions.blocked {
                stale.push(link.id);
            }
            true
        })?;
        for batch in stale.chunks(SWEEP_BATCH) {
            let (blocked, unblocked) = self.store.write(|txn| {
                let (mut blocked, mut unblocked) = (0, 0);
                for &id in batch {
                    let Some(mut link) = txn.link(id)? else {
                        continue;
                    };
                    let verdict = lists.verdict(&link);
                    if verdict == link.extensions.blocked {
                        continue;
                    }
                    match verdict {
                        Some(_) => blocked += 1,
                        None => unblocked += 1,
                    }
                    link.extensions.blocked = verdict;
                    txn.put_link(link)?;
                }
                Ok::<_, StoreError>((blocked, unblocked))
            })?;
            report.blocked += blocked;
            report.unblocked += unblocked;
        }
        let blocked_now = report.blocked_now;
        self.stats
            .links_blocked
            .store(blocked_now as u64, Ordering::Relaxed);
        self.stats.sweeps.fetch_add(1, Ordering::Relaxed);
        if report.blocked + report.unblocked > 0 {
            tracing::info!(
                blocked = report.blocked,
                unblocked = report.unblocked,
                blocked_now,
                "denylist applied to links"
            );
        }
        Ok(report)
    }
}
