//! `ricochet-control import` and `export`: domains (with their settings) and
//! links in and out as CSV or JSON Lines ([`ricochet_model::transfer`]),
//! every field kept (rules,
//! variants, card and the other behaviour fields included; the click limit
//! and the password's Argon2 hash, never a password), with a progress bar.
//! Import goes through the same validation, uniqueness checks and change log
//! as the API; each row succeeds or fails alone and failures are reported by
//! line. An import goes into one workspace; an export takes one workspace, or
//! the whole installation.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use ricochet_model::transfer::{self, DomainRow, LinkRow, TransferReader, TransferRow};
use ricochet_model::{DomainSettings, LinkRecord, RedirectStatus, normalize_domain};

use serde_json::Value;

use crate::service::access::PreparedAccess;
use crate::service::{BehaviourChanges, DomainChanges, LinkError, LinkService, NewLink};
use crate::store::{DomainRecord, DomainVerification, VerificationMethod};

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    pub fn from_path(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" | "json" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// One refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub created: u64,
    /// Domains registered by domain rows (those already known are not counted).
    pub domains: u64,
    pub errors: Vec<RowError>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounts {
    pub domains: u64,
    pub links: u64,
}

/// Imports domains and links from `path`.
pub fn import(
    service: &LinkService,
    workspace: &str,
    path: &Path,
    format: Format,
    progress: bool,
) -> Result<ImportReport, String> {
    let file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if progress && std::io::stderr().is_terminal() {
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
    let reader = bar.wrap_read(file);
    let report = import_from(service, workspace, Box::new(reader), format, &bar)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    bar.finish_and_clear();
    Ok(report)
}

/// Imports domains and links read from `reader` (the console's upload, or
/// a file), updating `bar`'s message as batches are written.
pub fn import_from(
    service: &LinkService,
    workspace: &str,
    reader: Box<dyn Read + '_>,
    format: Format,
    bar: &ProgressBar,
) -> Result<ImportReport, String> {
    let rows = match format {
        Format::Csv => TransferReader::csv(reader),
        Format::Jsonl => TransferReader::jsonl(reader),
    };
    let mut importer = Importer {
        service,
        workspace,
        batch: Vec::with_capacity(service.settings().max_bulk),
        report: ImportReport::default(),
        now: ricochet_model::now_millis(),
        bulk: Bulk::NotTried,
    };
    for row in rows {
        let step = row
            .map_err(|e| e.to_string())
            .and_then(|(line, row)| match row {
                Ok(TransferRow::Link(link)) => importer.add_link(line, link),
                Ok(TransferRow::Domain {
                    domain,
                    created_at,
                    settings,
                }) => importer.add_domain(line, &domain, created_at, settings),
                Err(reason) => {
                    importer.reject(line, reason);
                    Ok(())
                }
            });
        if let Err(error) = step {
            importer.abandon_bulk();
            return Err(error);
        }
        if importer.batch.is_empty() {
            bar.set_message(format!(
                "{} links, {} rejected",
                importer.report.created,
                importer.report.errors.len()
            ));
        }
    }
    let finished = importer.flush().and_then(|()| importer.finish_bulk());
    if let Err(error) = finished {
        importer.abandon_bulk();
        return Err(error);
    }
    let mut report = importer.report;
    report.errors.sort_by_key(|e| e.line);
    Ok(report)
}

struct Importer<'a> {
    service: &'a LinkService,
    workspace: &'a str,
    batch: Vec<(u64, LinkRow)>,
    report: ImportReport,
    now: i64,
    bulk: Bulk,
}

/// Whether the import writes its links as one bulk load (into a store
/// without links; see `store::bulk`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    /// No link row yet.
    NotTried,
    Open,
    /// Links go through ordinary transactions.
    Off,
}

impl Importer<'_> {
    fn reject(&mut self, line: u64, reason: String) {
        self.report.errors.push(RowError { line, reason });
    }

    /// Registers a domain row's domain in the import's workspace (kept when
    /// it is there already) and sets the settings the row carries, checked
    /// as the API checks them.
    fn add_domain(
        &mut self,
        line: u64,
        domain: &str,
        created_at: Option<i64>,
        settings: DomainRow,
    ) -> Result<(), String> {
        // Domain changes are not part of a bulk load: one after link rows
        // ends it (exports write domains first).
        if self.bulk == Bulk::Open {
            self.flush()?;
            self.finish_bulk()?;
        }
        let domain = match normalize_domain(domain) {
            Ok(domain) => domain,
            Err(error) => {
                self.reject(line, format!("domain {domain:?}: {error}"));
                return Ok(());
            }
        };
        let added = self
            .service
            .store()
            .add_domain_record(
                &domain,
                &DomainRecord {
                    verification: DomainVerification::verified_by(
                        VerificationMethod::Import,
                        self.now,
                    ),
                    ..DomainRecord::new(self.workspace, created_at.unwrap_or(self.now))
                },
            )
            .map_err(|e| e.to_string())?;
        self.report.domains += u64::from(added);
        if settings.is_empty() {
            return Ok(());
        }
        let changes = DomainChanges {
            root_url: settings.root_url.map(Some),
            not_found_url: settings.not_found_url.map(Some),
            default_status: settings.default_status,
            https_redirect: settings.https_redirect,
            hsts: settings.hsts.map(Some),
        };
        match self
            .service
            .update_domain(self.workspace, &domain, &changes, self.now)
        {
            Ok(_) => Ok(()),
            Err(error) if error.is_fault() => Err(error.to_string()),
            Err(error) => {
                self.reject(line, format!("domain {domain}: {error}"));
                Ok(())
            }
        }
    }

    fn add_link(&mut self, line: u64, link: LinkRow) -> Result<(), String> {
        if self.bulk == Bulk::NotTried {
            let opened = self
                .service
                .store()
                .begin_bulk_load()
                .map_err(|e| e.to_string())?;
            self.bulk = if opened { Bulk::Open } else { Bulk::Off };
        }
        self.batch.push((line, link));
        if self.batch.len() >= self.service.settings().max_bulk {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes an open bulk load's staged links; later links go through
    /// ordinary transactions.
    fn finish_bulk(&mut self) -> Result<(), String> {
        if self.bulk == Bulk::Open {
            self.bulk = Bulk::Off;
            self.service
                .store()
                .finish_bulk_load()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// After a failure: undoes an open bulk load's links, so a failed import
    /// into a store without links leaves none.
    fn abandon_bulk(&mut self) {
        if self.bulk == Bulk::Open {
            self.bulk = Bulk::Off;
            if let Err(error) = self.service.store().abandon_bulk_load() {
                tracing::error!(%error, "cannot undo the failed import's links; the next start of the control plane will");
            }
        }
    }

    /// Creates the batch's links in one transaction, as the API's bulk create does.
    fn flush(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let service = self.service;
        let now = self.now;
        // Rows without a domain mean the default one; a file's domain rows
        // come first and may already have registered it.
        service
            .register_default_domain(now)
            .map_err(|e| e.to_string())?;
        let workspace = self.workspace;
        let batch = std::mem::take(&mut self.batch);
        let refused = service
            .store()
            .write(|txn| {
                let mut refused = Vec::new();
                for (line, row) in &batch {
                    let created = service
                        .prepare_create(
                            txn,
                            workspace,
                            &create_input(row),
                            &PreparedAccess::default(),
                            now,
                        )
                        .and_then(|mut link| {
                            // The limit and hash as the engine's import takes them.
                            row.apply_access(&mut link.extensions)?;
                            link.state = row.state.unwrap_or_default();
                            if let Some(created_at) = row.created_at {
                                link.created_at = created_at;
                            }
                            link.validate()?;
                            Ok(link)
                        });
                    match created {
                        Ok(link) => {
                            crate::service::stage_new(txn, workspace, link)?;
                        }
                        Err(error) if error.is_fault() => return Err(error),
                        Err(error) => refused.push(RowError {
                            line: *line,
                            reason: reason(&error),
                        }),
                    }
                }
                Ok::<_, LinkError>(refused)
            })
            .map_err(|e| e.to_string())?;
        self.report.created += (batch.len() - refused.len()) as u64;
        self.report.errors.extend(refused);
        self.batch = batch;
        self.batch.clear();
        Ok(())
    }
}

/// Why a row was refused, naming the field at fault
/// (`rules[0].conditions[1].value: …`) when the message does not.
fn reason(error: &LinkError) -> String {
    let message = error.to_string();
    match error.field() {
        Some(field) if !message.starts_with(field) => format!("{field}: {message}"),
        _ => message,
    }
}

/// What an API create of `row` asks for; state, `created_at`, the click
/// limit and the password hash are set after.
fn create_input(row: &LinkRow) -> NewLink {
    NewLink {
        url: row.url.clone(),
        domain: row.domain.clone(),
        code: row.code.clone(),
        status: row.status,
        expires_at: row.expires_at,
        forward_query: row.forward_query.unwrap_or(false),
        title: row.title.clone(),
        tags: row.tags.clone().unwrap_or_default(),
        // UTM fields travel inside the destination.
        utm: Default::default(),
        behaviour: BehaviourChanges {
            rules: row.rules.clone(),
            variants: row.variants.clone(),
            fallback_url: row.fallback_url.clone().map(Value::from),
            card: row.card.clone(),
            ios: row.ios.clone().map(Value::from),
            android: row.android.clone().map(Value::from),
        },
        // A row carries a password's hash, which the API never takes.
        access: Default::default(),
    }
}

/// Writes the domains, then the links, of `workspace` (every workspace when
/// `None`) to `out`.
pub fn export(
    service: &LinkService,
    workspace: Option<&str>,
    out: &mut dyn Write,
    format: Format,
) -> Result<ExportCounts, String> {
    let mut sink = match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(out);
            writer
                .write_record(transfer::CSV_COLUMNS)
                .map_err(|e| e.to_string())?;
            RowSink::Csv(Box::new(writer))
        }
        Format::Jsonl => RowSink::Lines(out),
    };
    let mut counts = ExportCounts::default();
    let store = service.store();
    let domains: Vec<(String, i64, DomainSettings)> = match workspace {
        Some(workspace) => service
            .domains(workspace)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|domain| (domain.name, domain.created_at, domain.settings))
            .collect(),
        None => store
            .domains()
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(name, record)| {
                let settings = record.settings(&name);
                (name, record.created_at, settings)
            })
            .collect(),
    };
    for (domain, created_at, settings) in domains {
        let default_status = settings.default_status;
        sink.write(&TransferRow::Domain {
            domain,
            created_at: Some(created_at),
            settings: DomainRow {
                root_url: settings.root_url,
                not_found_url: settings.not_found_url,
                default_status: (default_status != RedirectStatus::default())
                    .then(|| default_status.code()),
                https_redirect: settings.https_redirect.then_some(true),
                hsts: settings.hsts,
            },
        })?;
        counts.domains += 1;
    }
    let mut failure = None;
    let mut lookup = None;
    store
        .for_each_link(|link: LinkRecord| {
            // Pages are not links to export: their records are rendered.
            if link.extensions.page.is_some() {
                return true;
            }
            if let Some(workspace) = workspace {
                match store.link_workspace(link.id) {
                    Ok(owner) if owner.as_deref() == Some(workspace) => {}
                    Ok(_) => return true,
                    Err(error) => {
                        lookup = Some(error.to_string());
                        return false;
                    }
                }
            }
            match sink.write(&TransferRow::Link(LinkRow::from_record(&link))) {
                Ok(()) => {
                    counts.links += 1;
                    true
                }
                Err(error) => {
                    failure = Some(error);
                    false
                }
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(error) = failure.or(lookup) {
        return Err(error);
    }
    sink.flush()?;
    Ok(counts)
}

/// Where exported rows go.
enum RowSink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn Write>>),
    Lines(&'a mut dyn Write),
}

impl RowSink<'_> {
    fn write(&mut self, row: &TransferRow) -> Result<(), String> {
        match self {
            Self::Csv(writer) => writer
                .write_record(transfer::to_csv_record(row))
                .map_err(|e| e.to_string()),
            Self::Lines(out) => {
                writeln!(out, "{}", transfer::to_json_line(row)).map_err(|e| e.to_string())
            }
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        match self {
            Self::Csv(writer) => writer.flush().map_err(|e| e.to_string()),
            Self::Lines(out) => out.flush().map_err(|e| e.to_string()),
        }
    }
}
