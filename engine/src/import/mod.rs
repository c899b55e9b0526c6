//! Bulk import of links from CSV or JSON Lines into an engine's store, through
//! the change intake. Rows are the shared transfer format
//! ([`ricochet_model::transfer`]): at least `domain`, `code`, `url`, optionally
//! `status` and every other field of a control-plane export. Domain rows
//! with settings (`root_url`, `not_found_url`, default `status`) set them;
//! others are skipped: an engine serves any domain. A bad row is reported with its line
//! number and reason and never stops the import. Into a store that holds
//! links, good rows are applied in atomic batches through the intake; into
//! one without links (a new engine), rows are gathered in memory, sorted by
//! key and written as sorted tables in one bulk load, which keeps the time
//! per row flat as imports grow (docs/PERFORMANCE.md, "Imports").

use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use ricochet_model::codec;
use ricochet_model::transfer::{DomainRow, LinkRow, TransferReader, TransferRow};
use ricochet_model::{
    Change, ChangeOp, DomainSettings, LinkKey, LinkRecord, RedirectStatus, normalize_domain,
    validate_destination,
};
use thiserror::Error;

use crate::intake::{BulkLoad, ChangeIntake, IntakeError, KeyedRecord};

mod runs;

use runs::{BulkRow, Runs};

/// Rows applied per atomic batch.
const BATCH_ROWS: usize = 10_000;

/// File formats the importer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    Csv,
    Jsonl,
}

impl ImportFormat {
    /// Guesses the format from the file name.
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

#[derive(Debug, Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot tell the format of {0}; name it .csv or .jsonl, or pass --format")]
    UnknownFormat(String),
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// 1-based line number in the file.
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: u64,
    pub updated: u64,
    pub rejections: Vec<Rejection>,
    pub last_applied: u64,
}

/// Options of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Option<ImportFormat>,
    /// Domain for rows whose domain is empty.
    pub default_domain: Option<String>,
    pub progress: bool,
    /// Whether the intake's table serves requests (a running engine). The
    /// import command's table is discarded when it ends, so a bulk load
    /// leaves it empty (saving the memory and time of filling it).
    pub serving: bool,
}

/// Imports `path` through `intake`.
pub fn import_file(
    intake: &ChangeIntake,
    path: &Path,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let read_error = |source| ImportError::Read {
        path: path.display().to_string(),
        source,
    };
    let format = options
        .format
        .or_else(|| ImportFormat::from_path(path))
        .ok_or_else(|| ImportError::UnknownFormat(path.display().to_string()))?;
    let file = File::open(path).map_err(read_error)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    // On a terminal: a progress bar. Otherwise (logs, pipes): a line per batch.
    let plain_progress = options.progress && !std::io::stderr().is_terminal();
    let progress = if options.progress && !plain_progress {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {msg} ({eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    // Whether a row's key is already stored is answered by the table; a
    // table not yet loaded (the import command's) is filled from the store.
    if intake.table().is_empty() {
        intake.load_table().map_err(IntakeError::from)?;
    }
    let bulk = intake
        .store()
        .has_no_links()
        .map_err(IntakeError::from)?
        .then(|| Bulk {
            links: Runs::new(intake.store().dir().to_path_buf()),
            domains: Vec::new(),
        });
    let reader = progress.wrap_read(file);
    let mut importer = Importer {
        intake,
        default_domain: options.default_domain.as_deref(),
        pending: Vec::with_capacity(BATCH_ROWS),
        pending_keys: HashMap::new(),
        summary: ImportSummary::default(),
        next_version: intake.last_applied() + 1,
        now: ricochet_model::now_millis(),
        progress: &progress,
        plain_progress,
        serving: options.serving,
        bulk,
    };
    match format {
        ImportFormat::Csv => importer.read(TransferReader::csv(reader))?,
        ImportFormat::Jsonl => importer.read(TransferReader::jsonl(reader))?,
    }
    importer.flush()?;
    importer.finish_bulk()?;
    intake.store().flush().map_err(IntakeError::from)?;
    progress.finish_and_clear();
    Ok(importer.summary)
}

struct Importer<'a> {
    intake: &'a ChangeIntake,
    default_domain: Option<&'a str>,
    pending: Vec<Change>,
    /// Keys in `pending`, so a key repeated within a batch keeps its id.
    pending_keys: HashMap<LinkKey, (u64, i64)>,
    summary: ImportSummary,
    next_version: u64,
    now: i64,
    progress: &'a ProgressBar,
    plain_progress: bool,
    serving: bool,
    /// Rows gathered for a bulk load (a store without links), or `None`
    /// (rows applied in batches).
    bulk: Option<Bulk>,
}

/// Rows and domain changes of a bulk load.
struct Bulk {
    links: Runs,
    domains: Vec<Change>,
}

/// Rows read between progress lines of a bulk load.
const BULK_PROGRESS_ROWS: u64 = 500_000;

impl Importer<'_> {
    fn read(&mut self, rows: TransferReader<impl Read>) -> Result<(), ImportError> {
        for row in rows {
            let (line, row) = row.map_err(|source| ImportError::Read {
                path: "input".into(),
                source,
            })?;
            match row {
                Ok(TransferRow::Link(link)) => self.add(line, link)?,
                Ok(TransferRow::Domain {
                    domain, settings, ..
                }) if !settings.is_empty() => match self.domain_change(&domain, settings) {
                    Ok(change) => match &mut self.bulk {
                        Some(bulk) => bulk.domains.push(change),
                        None => self.pending.push(change),
                    },
                    Err(reason) => self.reject(line, reason),
                },
                // A domain row without settings: engines need no registration.
                Ok(TransferRow::Domain { .. }) => {}
                Err(reason) => self.reject(line, reason),
            }
        }
        Ok(())
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.summary.rejections.push(Rejection { line, reason });
    }

    fn add(&mut self, line: u64, row: LinkRow) -> Result<(), ImportError> {
        if self.bulk.is_some() {
            match self.validated(row) {
                Ok((link, created_at_given)) => self.gather(link, created_at_given)?,
                Err(reason) => self.reject(line, reason),
            }
            return Ok(());
        }
        match self.build(row) {
            Ok(change) => {
                self.pending.push(change);
                if self.pending.len() >= BATCH_ROWS {
                    self.flush()?;
                }
            }
            Err(reason) => self.reject(line, reason),
        }
        Ok(())
    }

    /// The change setting a domain row's settings (root and unknown-code
    /// destinations, default status, HTTPS redirect and HSTS), validated as
    /// the control plane does.
    fn domain_change(&mut self, domain: &str, row: DomainRow) -> Result<Change, String> {
        let domain = normalize_domain(domain).map_err(|e| format!("domain {domain:?}: {e}"))?;
        let destination = |field: &str, url: Option<String>| {
            url.map(|url| validate_destination(&url).map_err(|e| format!("{field}: {e}")))
                .transpose()
        };
        let mut settings = DomainSettings {
            root_url: destination("root_url", row.root_url)?,
            not_found_url: destination("not_found_url", row.not_found_url)?,
            updated_at: self.now,
            https_redirect: row.https_redirect.unwrap_or(false),
            hsts: row.hsts,
            ..DomainSettings::empty(&domain)
        };
        if let Some(status) = row.default_status {
            settings.default_status =
                RedirectStatus::try_from(status).map_err(|e| e.to_string())?;
        }
        settings.validate().map_err(|e| e.to_string())?;
        let version = self.next_version;
        self.next_version += 1;
        Ok(Change {
            version,
            op: ChangeOp::Domain { settings },
        })
    }

    /// The row's link, validated, with the next version as its id and
    /// version, and whether the row gave its `created_at`.
    fn validated(&mut self, row: LinkRow) -> Result<(LinkRecord, bool), String> {
        let domain = match (row.domain.as_deref(), self.default_domain) {
            (Some(domain), _) => domain,
            (None, Some(default)) => default,
            (None, None) => return Err("domain is empty and no default domain is set".into()),
        };
        // A missing code is refused by the validation, with its message.
        let code = row.code.as_deref().unwrap_or_default();
        let version = self.next_version;
        let extensions = row
            .extensions()
            .map_err(|e| format!("{}: {e}", e.field()))?;
        let mut link = LinkRecord::new(version, domain, code, &row.url, self.now)
            .map_err(|e| e.to_string())?;
        if let Some(status) = row.status {
            link.status = RedirectStatus::try_from(status).map_err(|e| e.to_string())?;
        }
        link.state = row.state.unwrap_or_default();
        link.expires_at = row.expires_at;
        link.forward_query = row.forward_query.unwrap_or(false);
        link.title = row.title;
        link.extensions = extensions;
        link.tags = row.tags.unwrap_or_default();
        link.validate().map_err(|e| e.to_string())?;
        let created_at_given = match row.created_at {
            Some(created_at) => {
                link.created_at = created_at;
                true
            }
            None => false,
        };
        link.version = version;
        self.next_version += 1;
        Ok((link, created_at_given))
    }

    /// Adds a validated link to the bulk load.
    fn gather(&mut self, link: LinkRecord, created_at_given: bool) -> Result<(), ImportError> {
        let Some(bulk) = &mut self.bulk else {
            return Ok(());
        };
        bulk.links
            .push(BulkRow {
                entry: KeyedRecord::new(&link.key().storage_key(), &codec::encode_record(&link)),
                created_at_given,
            })
            .map_err(IntakeError::from)?;
        if bulk.links.len().is_multiple_of(BULK_PROGRESS_ROWS) {
            let message = format!(
                "{} links read, {} rejected",
                bulk.links.len(),
                self.summary.rejections.len()
            );
            if self.plain_progress {
                eprintln!("import progress: {message}");
            }
            self.progress.set_message(message);
        }
        Ok(())
    }

    /// The change for a row applied in batches: an existing key keeps its
    /// id and `created_at` (unless the row gives one).
    fn build(&mut self, row: LinkRow) -> Result<Change, String> {
        let (mut link, created_at_given) = self.validated(row)?;
        let version = link.version;
        let key = LinkKey {
            domain: link.domain.clone(),
            code: link.code.clone(),
        };
        let existing = match self.pending_keys.get(&key) {
            Some(&known) => Some(known),
            // The table holds every stored link, so only a key it has needs
            // a store read (a point read per new row slows down as the store
            // grows: see docs/PERFORMANCE.md, "Imports").
            None if !self.intake.table().contains(&key) => None,
            None => match self.intake.store().get(&key) {
                Ok(found) => found.map(|r| (r.id, r.created_at)),
                Err(error) => return Err(format!("cannot read the existing link: {error}")),
            },
        };
        match existing {
            Some((id, first_created_at)) => {
                link.id = id;
                if !created_at_given {
                    link.created_at = first_created_at;
                }
                self.summary.updated += 1;
            }
            None => self.summary.created += 1,
        }
        self.pending_keys.insert(key, (link.id, link.created_at));
        Ok(Change {
            version,
            op: ChangeOp::Upsert { link },
        })
    }

    /// Sorts the gathered rows by key, merges rows of one key (the last
    /// row's fields, the first row's id, the last given `created_at` or the
    /// first row's), and writes the result as one bulk load.
    fn finish_bulk(&mut self) -> Result<(), ImportError> {
        let Some(Bulk { links, domains }) = self.bulk.take() else {
            return Ok(());
        };
        if links.len() == 0 && domains.is_empty() {
            return Ok(());
        }
        let message = format!("sorting and writing {} links", links.len());
        if self.plain_progress {
            eprintln!("import progress: {message}");
        }
        self.progress.set_message(message);
        let mut rows = links.into_sorted().map_err(IntakeError::from)?.peekable();
        let load = BulkLoad {
            domains,
            first_version: self.intake.last_applied() + 1,
            last_version: self.next_version - 1,
            fill_table: self.serving,
        };
        let summary = &mut self.summary;
        let applied = self.intake.ingest(load, |feed| {
            while let Some(first) = rows.next() {
                let first = first?;
                let mut last = None;
                let mut created_at = None;
                while matches!(rows.peek(), Some(Ok(next)) if next.key() == first.key()) {
                    let next = rows.next().expect("peeked")?;
                    if next.created_at_given {
                        created_at = Some(decode(&next)?.created_at);
                    }
                    last = Some(next);
                    summary.updated += 1;
                }
                summary.created += 1;
                feed.push(match last {
                    None => first.entry,
                    Some(last) => merge_rows(&first, &last, created_at)?,
                })?;
            }
            Ok(())
        })?;
        self.summary.last_applied = applied.last_applied;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let applied = self.intake.apply(&self.pending)?;
        self.summary.last_applied = applied.last_applied;
        self.pending.clear();
        self.pending_keys.clear();
        let message = format!(
            "{} links, {} rejected",
            self.summary.created + self.summary.updated,
            self.summary.rejections.len()
        );
        if self.plain_progress {
            eprintln!(
                "import progress: {message}, version {}",
                applied.last_applied
            );
        }
        self.progress.set_message(message);
        Ok(())
    }
}

/// The record of a key given by several rows: `last`'s fields with `first`'s
/// id, and `created_at` (the last one a row gave) or else `first`'s.
fn merge_rows(
    first: &BulkRow,
    last: &BulkRow,
    created_at: Option<i64>,
) -> Result<KeyedRecord, IntakeError> {
    let first_record = decode(first)?;
    let mut record = decode(last)?;
    record.id = first_record.id;
    record.created_at = created_at.unwrap_or(first_record.created_at);
    Ok(KeyedRecord::new(last.key(), &codec::encode_record(&record)))
}

fn decode(row: &BulkRow) -> Result<LinkRecord, IntakeError> {
    codec::decode_record(row.entry.record()).map_err(|e| IntakeError::Store(e.into()))
}
