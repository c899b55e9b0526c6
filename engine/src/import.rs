//! Bulk import of links from CSV or JSON Lines into an engine's store, through
//! the change intake. Columns: `domain`, `code`, `url`, optional `status`. A
//! bad row is reported with its line number and reason and never stops the
//! import; good rows are applied in atomic batches.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use ricochet_model::{Change, ChangeOp, LinkKey, LinkRecord, RedirectStatus};
use serde::Deserialize;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    #[serde(default)]
    domain: String,
    code: String,
    url: String,
    #[serde(default)]
    status: Option<u16>,
}

/// Where each field sits in a CSV row.
#[derive(Debug, Clone, Copy)]
struct Columns {
    domain: Option<usize>,
    code: usize,
    url: usize,
    status: Option<usize>,
    /// Positional files have exactly 3 or 4 columns.
    positional: bool,
}

impl Columns {
    const POSITIONAL: Self = Self {
        domain: Some(0),
        code: 1,
        url: 2,
        status: Some(3),
        positional: true,
    };

    /// A header row names `code` and `url` (any order, any case); other
    /// names are ignored.
    fn from_header(record: &csv::StringRecord) -> Option<Self> {
        let find = |name: &str| {
            record.iter().position(|field| {
                field
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
        };
        Some(Self {
            domain: find("domain"),
            code: find("code")?,
            url: find("url")?,
            status: find("status"),
            positional: false,
        })
    }

    fn row(&self, record: &csv::StringRecord) -> Result<Row, String> {
        if self.positional && !(3..=4).contains(&record.len()) {
            return Err(format!(
                "expected 3 or 4 columns (domain,code,url[,status]), got {}",
                record.len()
            ));
        }
        let field = |index: usize| record.get(index).unwrap_or("");
        let status = match self.status.map(field).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                text.parse::<u16>()
                    .map_err(|_| format!("status {text:?} is not a number"))?,
            ),
        };
        Ok(Row {
            domain: self.domain.map(field).unwrap_or("").to_owned(),
            code: field(self.code).to_owned(),
            url: field(self.url).to_owned(),
            status,
        })
    }
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
        ImportFormat::Csv => importer.read_csv(reader)?,
        ImportFormat::Jsonl => importer.read_jsonl(reader).map_err(read_error)?,
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
    fn read_csv(&mut self, reader: impl Read) -> Result<(), ImportError> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let mut record = csv::StringRecord::new();
        let mut columns = Columns::POSITIONAL;
        let mut first = true;
        loop {
            let line = csv.position().line();
            match csv.read_record(&mut record) {
                Ok(false) => return Ok(()),
                Ok(true) => {}
                Err(error) => {
                    if error.is_io_error() {
                        return Err(ImportError::Read {
                            path: "input".into(),
                            source: std::io::Error::other(error.to_string()),
                        });
                    }
                    self.reject(line, format!("unreadable CSV row: {error}"));
                    continue;
                }
            }
            if std::mem::take(&mut first)
                && let Some(header) = Columns::from_header(&record)
            {
                columns = header;
                continue;
            }
            match columns.row(&record) {
                Ok(row) => self.add(line, row)?,
                Err(reason) => self.reject(line, reason),
            }
        }
    }

    fn read_jsonl(&mut self, reader: impl Read) -> std::io::Result<()> {
        let mut reader = BufReader::new(reader);
        let mut line = String::new();
        let mut number = 0u64;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            number += 1;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Row>(text) {
                Ok(row) => self.add(number, row).map_err(std::io::Error::other)?,
                Err(error) => self.reject(number, format!("invalid JSON row: {error}")),
            }
        }
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.summary.rejections.push(Rejection { line, reason });
    }

    fn add(&mut self, line: u64, row: Row) -> Result<(), ImportError> {
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

    fn build(&mut self, row: Row) -> Result<Change, String> {
        let domain = match (row.domain.is_empty(), self.default_domain) {
            (false, _) => row.domain.as_str(),
            (true, Some(default)) => default,
            (true, None) => return Err("domain is empty and no default domain is set".into()),
        };
        let version = self.next_version;
        let mut link = LinkRecord::new(version, domain, &row.code, &row.url, self.now)
            .map_err(|e| e.to_string())?;
        if let Some(status) = row.status {
            link.status = RedirectStatus::try_from(status).map_err(|e| e.to_string())?;
        }
        let key = LinkKey {
            domain: link.domain.clone(),
            code: link.code.clone(),
        };
        let existing = match self.pending_keys.get(&key) {
            Some(&known) => Some(known),
            None => match self.intake.store().get(&key) {
                Ok(found) => found.map(|r| (r.id, r.created_at)),
                Err(error) => return Err(format!("cannot read the existing link: {error}")),
            },
        };
        match existing {
            Some((id, created_at)) => {
                link.id = id;
                link.created_at = created_at;
                self.summary.updated += 1;
            }
            None => self.summary.created += 1,
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
