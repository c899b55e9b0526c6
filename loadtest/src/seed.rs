//! Seeding a target with the suite's links: through the control plane's
//! `POST /api/v1/links/bulk` (with retries on 429), or as an engine import
//! CSV; then waiting until the engine serves them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::http::{HttpClient, Url};
use crate::keys::{DEFAULT_STATUS, KeySet};

/// What a bulk seeding did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedSummary {
    pub created: u64,
    /// Codes that already existed (409), e.g. from an earlier run.
    pub existed: u64,
    pub failed: u64,
}

#[derive(Debug, Deserialize)]
struct BulkResult {
    items: Vec<BulkItem>,
}

#[derive(Debug, Deserialize)]
struct BulkItem {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// Sends an authorized JSON request, waiting out 429 answers.
pub fn api_call(
    client: &mut HttpClient,
    key: &str,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<crate::http::Response> {
    let auth = format!("Bearer {key}");
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = client.request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            &bytes,
        )?;
        if response.status != 429 || Instant::now() > deadline {
            return Ok(response);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn api_error(client: &HttpClient, path: &str, response: &crate::http::Response) -> Error {
    let body = String::from_utf8_lossy(&response.body);
    Error::Http {
        url: format!("{}{path}", client.base()),
        message: format!(
            "status {}: {}",
            response.status,
            body.chars().take(300).collect::<String>()
        ),
    }
}

/// Creates every key through the bulk API, `batch` links per call; domains
/// the keys use are created first.
pub fn seed_via_api(
    api: &Url,
    key: &str,
    keys: &KeySet,
    batch: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<SeedSummary> {
    let mut client = HttpClient::new(api, Duration::from_secs(60))?;
    let domains: BTreeSet<String> = (0..keys.len().min(100_000))
        .map(|i| keys.domain(i).to_owned())
        .filter(|d| !d.is_empty())
        .collect();
    for domain in domains {
        let response = api_call(
            &mut client,
            key,
            "POST",
            "/domains",
            &json!({ "domain": domain }),
        )?;
        if !(response.status < 300 || response.status == 409) {
            return Err(api_error(&client, "/domains", &response));
        }
    }
    let mut summary = SeedSummary::default();
    let batch = batch.max(1) as u64;
    let mut start = 0;
    while start < keys.len() {
        let end = (start + batch).min(keys.len());
        let items: Vec<serde_json::Value> = (start..end)
            .map(|i| {
                let record = keys.record(i);
                let mut item = json!({
                    "url": record.url.unwrap_or_default(),
                    "code": record.code,
                    "status": record.status.unwrap_or(DEFAULT_STATUS),
                });
                if !record.domain.is_empty() {
                    item["domain"] = json!(record.domain);
                }
                item
            })
            .collect();
        let response = api_call(&mut client, key, "POST", "/links/bulk", &json!(items))?;
        if response.status != 200 {
            return Err(api_error(&client, "/links/bulk", &response));
        }
        let result: BulkResult =
            serde_json::from_slice(&response.body).map_err(|e| Error::Http {
                url: format!("{}/links/bulk", client.base()),
                message: format!("unexpected answer: {e}"),
            })?;
        for item in result.items {
            match item.status {
                200..=299 => summary.created += 1,
                409 => summary.existed += 1,
                _ => {
                    summary.failed += 1;
                    if summary.failed == 1 {
                        eprintln!("seed: first failed item: {:?}", item.error);
                    }
                }
            }
        }
        start = end;
        progress(start, keys.len());
    }
    Ok(summary)
}

/// Waits until `base` answers key `index` with one of its expected
/// redirects (its own target or one of its behaviour's), or with its
/// expected status when that is not a redirect (a page's 200 or 304).
pub fn wait_served(
    base: &Url,
    host: &str,
    keys: &KeySet,
    index: u64,
    timeout: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    let mut client = HttpClient::new(base, Duration::from_secs(2))?;
    let record = keys.record(index);
    let host = if record.domain.is_empty() {
        host.to_owned()
    } else {
        record.domain.clone()
    };
    let path = format!("/{}", record.code);
    let mut last = String::from("no answer");
    while started.elapsed() < timeout {
        match client.request("GET", &path, &[("Host", &host)], b"") {
            Ok(response) => {
                let status_ok = record.status.is_none_or(|s| s == response.status);
                let location_ok = record.url.is_none()
                    || response
                        .location
                        .as_deref()
                        .is_some_and(|l| keys.location_matches(index, l.as_bytes()));
                let redirect = |status: u16| (300..400).contains(&status) && status != 304;
                let served = match record.status {
                    // Not a redirect (a page's 200, or its 304: asked without
                    // the validator, a page answers 200): the status alone.
                    Some(expected) if !redirect(expected) => {
                        response.status == expected || (expected == 304 && response.status == 200)
                    }
                    _ => status_ok && location_ok && redirect(response.status),
                };
                if served {
                    return Ok(started.elapsed());
                }
                last = format!(
                    "status {} Location {:?}",
                    response.status, response.location
                );
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(Error::Http {
        url: format!("{base}{path}"),
        message: format!("not served within {timeout:?} (last: {last})"),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    /// A server answering every request on each connection with `answer`.
    fn server(answer: &'static [u8]) -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf) {
                        if n == 0 || stream.write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Url::parse(&format!("http://{addr}")).unwrap()
    }

    #[test]
    fn pages_are_served_by_their_status_and_redirects_by_their_location() {
        let page = server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
        let wait = |url: &Url, keys: &str| {
            let keys = KeySet::parse(keys, "keys").unwrap();
            wait_served(url, "localhost", &keys, 0, Duration::from_millis(300))
        };
        assert!(wait(&page, ",abc,https://x.example/,200\n").is_ok());
        // A revalidation key: the check's GET has no validator, so 200.
        assert!(wait(&page, ",abc,https://x.example/,304\n").is_ok());
        assert!(wait(&page, ",abc,https://x.example/,302\n").is_err());
        let redirect = server(
            b"HTTP/1.1 302 Found\r\nLocation: https://x.example/\r\nContent-Length: 0\r\n\r\n",
        );
        assert!(wait(&redirect, ",abc,https://x.example/,302\n").is_ok());
        assert!(wait(&redirect, ",abc,https://y.example/,302\n").is_err());
        assert!(wait(&redirect, ",abc,https://x.example/,200\n").is_err());
    }
}
