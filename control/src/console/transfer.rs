//! Links in and out as CSV from the console: import (a file read by the
//! browser into the form, or pasted text) with a report of every refused
//! row by line, and export of the workspace's domains and links, streamed.
//! Both are the CLI's `import`/`export` underneath: same columns, same
//! validation.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use indicatif::ProgressBar;

use super::error::ConsoleError;
use super::form::Submitted;
use super::page::{self, Layout};
use super::session::Console;
use crate::api::blocking;
use crate::api::error::ApiError;
use crate::keys::Scope;
use crate::transfer::{self, Format, RowError};

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    layout: Layout,
    csv: String,
    /// Links created and the refused rows, after an import.
    report: Option<(u64, Vec<RowError>)>,
    error: Option<String>,
}

/// `GET /console/links/import`.
pub async fn import_page(console: Console) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksWrite)?;
    Ok(page::render(
        200,
        &ImportPage {
            layout: Layout::of(&console, "Import links", "links"),
            csv: String::new(),
            report: None,
            error: None,
        },
    ))
}

/// `POST /console/links/import`: `csv`, the file's text.
pub async fn import(submitted: Submitted) -> Result<HttpResponse, ConsoleError> {
    let Submitted { console, form } = submitted;
    console.require(Scope::LinksWrite)?;
    let csv = form.raw("csv").to_owned();
    let layout = Layout::of(&console, "Import links", "links");
    if csv.trim().is_empty() {
        return Ok(page::render(
            400,
            &ImportPage {
                layout,
                csv,
                report: None,
                error: Some("Choose a CSV file or paste its rows.".to_owned()),
            },
        ));
    }
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let text = csv.clone();
    let imported = blocking(move || {
        transfer::import_from(
            &service,
            &workspace,
            Box::new(std::io::Cursor::new(text.into_bytes())),
            Format::Csv,
            &ProgressBar::hidden(),
        )
        .map_err(|reason| ApiError::bad_request("invalid_import", reason))
    })
    .await;
    match imported {
        Ok(report) => {
            let status = if report.errors.is_empty() { 200 } else { 422 };
            Ok(page::render(
                status,
                &ImportPage {
                    layout,
                    csv: if report.errors.is_empty() {
                        String::new()
                    } else {
                        csv
                    },
                    report: Some((report.created, report.errors)),
                    error: None,
                },
            ))
        }
        Err(error) if error.status < 500 => Ok(page::render(
            error.status,
            &ImportPage {
                layout,
                csv,
                report: None,
                error: Some(error.message),
            },
        )),
        Err(error) => Err(error.into()),
    }
}

/// A `Write` that hands the export to the response in chunks.
struct ChunkWriter {
    sender: tokio::sync::mpsc::Sender<Result<web::Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    const CHUNK: usize = 64 * 1024;

    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = web::Bytes::from(std::mem::take(&mut self.buffer));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client left"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= Self::CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `GET /console/links/export`: the workspace's domains and links as CSV.
pub async fn export(console: Console, _request: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    console.require(Scope::LinksRead)?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(8);
    let service = console.state.service.clone();
    let workspace = console.workspace_id().to_owned();
    let failure = sender.clone();
    actix_web::rt::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            sender,
            buffer: Vec::with_capacity(ChunkWriter::CHUNK),
        };
        let written = transfer::export(&service, Some(&workspace), &mut out, Format::Csv)
            .and_then(|_| std::io::Write::flush(&mut out).map_err(|e| e.to_string()));
        if let Err(error) = written {
            tracing::warn!(%error, "console export stopped");
            let _ = failure.blocking_send(Err(std::io::Error::other(error)));
        }
    });
    let body = futures_util::stream::poll_fn(move |context| receiver.poll_recv(context));
    let filename = format!("ricochet-{}.csv", console.workspace_id());
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body))
}
