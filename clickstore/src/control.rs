//! `ControlSink`: an engine's closed windows shipped to the control plane
//! (`POST /internal/v1/clicks`, the cluster token as bearer), which keeps them
//! in its own click store. Windows carry absolute counts keyed by node, shard
//! and window, so a retried or repeated shipment replaces rather than adds.
//! The wire form is one format byte and the postcard encoding of the batch.

use std::time::Duration;

use ricochet_model::clicks::{WINDOW_MILLIS, WindowBatch};

use crate::contract::{ClickSink, SinkError};

/// The control plane's route for shipped windows.
pub const CLICKS_PATH: &str = "/internal/v1/clicks";
/// The content type of a shipped window.
pub const CONTENT_TYPE: &str = "application/x-ricochet-window";
/// Longest a stored value may be (the windows clip longer ones).
pub const MAX_VALUE_BYTES: usize = 256;

const FORMAT: u8 = 1;

/// Encodes a batch for shipping.
pub fn encode_batch(batch: &WindowBatch) -> Vec<u8> {
    let mut out = vec![FORMAT];
    out.extend(postcard::to_stdvec(batch).expect("batches serialize"));
    out
}

/// Decodes and checks a shipped batch; the error says what is wrong with it.
pub fn decode_batch(bytes: &[u8]) -> Result<WindowBatch, String> {
    let batch: WindowBatch = match bytes.split_first() {
        Some((&FORMAT, body)) => {
            postcard::from_bytes(body).map_err(|e| format!("undecodable window batch: {e}"))?
        }
        Some((format, _)) => return Err(format!("unknown window batch format {format}")),
        None => return Err("empty body".to_owned()),
    };
    check_batch(&batch)?;
    Ok(batch)
}

/// What every stored batch must satisfy.
pub fn check_batch(batch: &WindowBatch) -> Result<(), String> {
    if batch.node.is_empty() || batch.node.len() > 255 {
        return Err("node must be 1 to 255 bytes".to_owned());
    }
    if batch.window_start.rem_euclid(WINDOW_MILLIS) != 0 {
        return Err(format!(
            "window_start {} is not a multiple of {WINDOW_MILLIS} ms",
            batch.window_start
        ));
    }
    for row in &batch.rows {
        if row.window_start != batch.window_start {
            return Err(format!(
                "a row of link {} is in window {}, not the batch's {}",
                row.link_id, row.window_start, batch.window_start
            ));
        }
        if row.value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "a {} value of link {} is longer than {MAX_VALUE_BYTES} bytes",
                row.dimension.as_str(),
                row.link_id
            ));
        }
    }
    Ok(())
}

/// Ships windows to a control plane over HTTP.
pub struct ControlSink {
    agent: ureq::Agent,
    url: String,
    authorization: String,
}

impl std::fmt::Debug for ControlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlSink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ControlSink {
    /// `base_url` is the control plane's root, e.g. `http://control:8081`.
    pub fn new(base_url: &str, token: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            url: format!("{}{CLICKS_PATH}", base_url.trim_end_matches('/')),
            authorization: format!("Bearer {token}"),
        }
    }
}

impl ClickSink for ControlSink {
    fn write(&self, batch: &WindowBatch) -> Result<(), SinkError> {
        let body = encode_batch(batch);
        let mut response = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", CONTENT_TYPE)
            .send(&body[..])
            .map_err(|e| SinkError::Unavailable(format!("{}: {e}", self.url)))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let detail = response.body_mut().read_to_string().unwrap_or_default();
        let message = format!("{}: HTTP {status}: {}", self.url, detail.trim());
        match status {
            // The control plane will never take this batch: retrying only
            // blocks the windows behind it.
            400 | 413 | 415 | 422 => Err(SinkError::Failed(message)),
            // Everything else (a wrong token being fixed, a restart, an
            // overloaded or failing store) may pass later.
            _ => Err(SinkError::Unavailable(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{batch, row};
    use ricochet_model::clicks::Dimension;

    #[test]
    fn batches_round_trip_and_bad_ones_are_named() {
        let good = batch(
            "engine-a",
            1,
            20_000,
            vec![
                row(7, 20_000, Dimension::Total, "", false, 3),
                row(7, 20_000, Dimension::Country, "DE", true, 2),
            ],
        );
        assert_eq!(decode_batch(&encode_batch(&good)).unwrap(), good);

        let mut misplaced = good.clone();
        misplaced.rows[1].window_start = 30_000;
        let error = decode_batch(&encode_batch(&misplaced)).unwrap_err();
        assert!(error.contains("link 7 is in window 30000"), "{error}");

        let unaligned = batch("n", 0, 12_345, Vec::new());
        assert!(check_batch(&unaligned).unwrap_err().contains("multiple"));
        assert!(check_batch(&batch("", 0, 0, Vec::new())).is_err());
        let long = batch(
            "n",
            0,
            0,
            vec![row(1, 0, Dimension::City, &"x".repeat(257), false, 1)],
        );
        assert!(check_batch(&long).unwrap_err().contains("256 bytes"));

        assert!(decode_batch(&[]).is_err());
        assert!(decode_batch(&[9, 1, 2]).unwrap_err().contains("format 9"));
        assert!(
            decode_batch(&[FORMAT, 0xff])
                .unwrap_err()
                .contains("undecodable")
        );
    }
}
