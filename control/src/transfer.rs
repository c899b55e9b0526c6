//! `ricochet-control import` and `export`: links in and out as CSV or JSON
//! Lines, with a progress bar. Import goes through the same service as the
//! API (validation, uniqueness, change log); each row succeeds or fails alone
//! and failures are reported by line.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::api::types::{CreateLink, to_datetime};
use crate::service::{LinkService, NewLink};

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
    pub errors: Vec<RowError>,
}

/// One exported link (also the JSON Lines import row).
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    domain: String,
    code: String,
    url: String,
    status: u16,
    state: String,
    title: Option<String>,
    tags: String,
    created_at: String,
}

/// Imports links from `path`.
pub fn import(
    service: &LinkService,
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
    let mut batch: Vec<(u64, NewLink)> = Vec::new();
    let mut report = ImportReport::default();
    let flush =
        |batch: &mut Vec<(u64, NewLink)>, report: &mut ImportReport| -> Result<(), String> {
            if batch.is_empty() {
                return Ok(());
            }
            let inputs: Vec<NewLink> = batch.iter().map(|(_, input)| input.clone()).collect();
            let outcomes = service
                .create_bulk(&inputs, ricochet_model::now_millis())
                .map_err(|e| e.to_string())?;
            for ((line, _), outcome) in batch.iter().zip(outcomes) {
                match outcome {
                    Ok(_) => report.created += 1,
                    Err(error) => report.errors.push(RowError {
                        line: *line,
                        reason: error.to_string(),
                    }),
                }
            }
            batch.clear();
            bar.set_message(format!(
                "{} links, {} rejected",
                report.created,
                report.errors.len()
            ));
            Ok(())
        };
    let max = service.settings().max_bulk;
    match format {
        Format::Csv => {
            let mut csv = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(reader);
            let mut columns: Option<HashMap<String, usize>> = None;
            let mut record = csv::StringRecord::new();
            loop {
                let line = csv.position().line();
                match csv.read_record(&mut record) {
                    Ok(false) => break,
                    Ok(true) => {}
                    Err(error) => {
                        report.errors.push(RowError {
                            line,
                            reason: format!("unreadable CSV row: {error}"),
                        });
                        continue;
                    }
                }
                let Some(names) = &columns else {
                    let names: HashMap<String, usize> = record
                        .iter()
                        .enumerate()
                        .map(|(i, name)| {
                            (name.trim_start_matches('\u{feff}').to_ascii_lowercase(), i)
                        })
                        .collect();
                    if !names.contains_key("url") {
                        return Err("the CSV header must name a `url` column (and may name domain, code, status, title, tags)".into());
                    }
                    columns = Some(names);
                    continue;
                };
                let field = |name: &str| {
                    names
                        .get(name)
                        .and_then(|&i| record.get(i))
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                let status = match field("status").map(|s| s.parse::<u16>()) {
                    None => None,
                    Some(Ok(status)) => Some(status),
                    Some(Err(_)) => {
                        report.errors.push(RowError {
                            line,
                            reason: "status is not a number".into(),
                        });
                        continue;
                    }
                };
                let input = NewLink {
                    url: field("url").unwrap_or_default(),
                    domain: field("domain"),
                    code: field("code"),
                    status,
                    title: field("title"),
                    tags: field("tags")
                        .map(|t| t.split('|').map(str::to_owned).collect())
                        .unwrap_or_default(),
                    ..NewLink::default()
                };
                batch.push((line, input));
                if batch.len() >= max {
                    flush(&mut batch, &mut report)?;
                }
            }
        }
        Format::Jsonl => {
            let mut reader = BufReader::new(reader);
            let mut text = String::new();
            let mut line = 0u64;
            loop {
                text.clear();
                if reader.read_line(&mut text).map_err(|e| e.to_string())? == 0 {
                    break;
                }
                line += 1;
                if text.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<CreateLink>(text.trim()) {
                    Ok(input) => batch.push((line, input.into())),
                    Err(error) => report.errors.push(RowError {
                        line,
                        reason: format!("invalid JSON row: {error}"),
                    }),
                }
                if batch.len() >= max {
                    flush(&mut batch, &mut report)?;
                }
            }
        }
    }
    flush(&mut batch, &mut report)?;
    bar.finish_and_clear();
    report.errors.sort_by_key(|e| e.line);
    Ok(report)
}

/// Writes every link to `out`; returns how many.
pub fn export(service: &LinkService, out: &mut dyn Write, format: Format) -> Result<u64, String> {
    let mut count = 0u64;
    let mut failure = None;
    enum Sink<'a> {
        Csv(Box<csv::Writer<&'a mut dyn Write>>),
        Lines(&'a mut dyn Write),
    }
    let mut sink = match format {
        Format::Csv => Sink::Csv(Box::new(csv::Writer::from_writer(out))),
        Format::Jsonl => Sink::Lines(out),
    };
    service
        .store()
        .for_each_link(|link| {
            let row = Row {
                domain: link.domain.clone(),
                code: link.code.clone(),
                url: link.url.clone(),
                status: link.status.code(),
                state: link.state.as_str().to_owned(),
                title: link.title.clone(),
                tags: link.tags.join("|"),
                created_at: to_datetime(link.created_at)
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            };
            let written = match &mut sink {
                Sink::Csv(writer) => writer.serialize(&row).map_err(|e| e.to_string()),
                Sink::Lines(out) => serde_json::to_string(&row)
                    .map_err(|e| e.to_string())
                    .and_then(|line| writeln!(out, "{line}").map_err(|e| e.to_string())),
            };
            if let Err(error) = written {
                failure = Some(error);
                return false;
            }
            count += 1;
            true
        })
        .map_err(|e| e.to_string())?;
    match &mut sink {
        Sink::Csv(writer) => writer.flush().map_err(|e| e.to_string())?,
        Sink::Lines(out) => out.flush().map_err(|e| e.to_string())?,
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(count),
    }
}

/// Reads a whole file for tests.
pub fn read_all(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    File::open(path)?.read_to_string(&mut text)?;
    Ok(text)
}
