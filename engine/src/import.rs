//! Bulk import of links from CSV or JSON Lines into an engine's store, through
//! the change intake. Rows are the shared transfer format
//! ([`ricochet_model::transfer`]): at least `domain`, `code`, `url`, optionally
//! `status` and every other field of a control-plane export. Domain rows
//! with settings (`root_url`, `not_found_url`, default `status`) set them;
//! others are skipped: an engine serves any domain. A bad row is reported with its line
//! number and reason and never stops the import; good rows are applied in
//! atomic batches.

use std::collections::HashMap;
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use ricochet_model::transfer::{DomainRow, LinkRow, TransferReader, TransferRow};
use ricochet_model::{
    Change, ChangeOp, DomainSettings, LinkKey, LinkRecord, RedirectStatus, normalize_domain,
    validate_destination,
};
use thiserror::Error;

use crate::intake::{ChangeIntake, IntakeError};

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
    };
    match format {
        ImportFormat::Csv => importer.read(TransferReader::csv(reader))?,
        ImportFormat::Jsonl => importer.read(TransferReader::jsonl(reader))?,
    }
    importer.flush()?;
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
}

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
                    Ok(change) => self.pending.push(change),
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
    /// destinations, default status), validated as the control plane does.
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

    fn build(&mut self, row: LinkRow) -> Result<Change, String> {
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
        let created_at = row.created_at;
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
                link.created_at = first_created_at;
                self.summary.updated += 1;
            }
            None => self.summary.created += 1,
        }
        if let Some(created_at) = created_at {
            link.created_at = created_at;
        }
        self.pending_keys.insert(key, (link.id, link.created_at));
        link.version = version;
        self.next_version += 1;
        Ok(Change {
            version,
            op: ChangeOp::Upsert { link },
        })
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
