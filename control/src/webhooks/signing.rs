//! Delivery signatures: `Ricochet-Signature: t=<unix seconds>,v1=<hex>`,
//! where the hex is HMAC-SHA256 with the endpoint's secret over
//! `<t>.<body>`. A receiver recomputes it over the raw body, compares in
//! constant time, and refuses timestamps too far from its clock (replays).
//! docs/WEBHOOKS.md has a verification snippet.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Ricochet-Signature";

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value for `body` sent at `timestamp` (Unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(digest))
}

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not `t=…,v1=…`.
    Malformed,
    /// The timestamp is further than the tolerance from now.
    Stale,
    /// No `v1` value matches.
    Mismatch,
}

/// Checks a header value as a receiver would: the timestamp within
/// `tolerance_secs` of `now_secs`, and one `v1` matching (several may be
/// present while a secret is being rotated).
pub fn verify(
    secret: &str,
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), Invalid> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                signatures.push(hex::decode(value).map_err(|_| Invalid::Malformed)?)
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Invalid::Malformed)?;
    if signatures.is_empty() {
        return Err(Invalid::Malformed);
    }
    if (now_secs - timestamp).abs() > tolerance_secs {
        return Err(Invalid::Stale);
    }
    let expected = mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok())
    {
        Ok(())
    } else {
        Err(Invalid::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_hmac_sha256_over_timestamp_dot_body() {
        // Known answer, from `printf '1700000000.{"a":1}' |
        // openssl dgst -sha256 -hmac whsec_test`.
        let header = sign("whsec_test", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
        assert_eq!(
            verify("whsec_test", &header, br#"{"a":1}"#, 1_700_000_100, 300),
            Ok(())
        );
    }

    #[test]
    fn tampered_stale_or_malformed_signatures_are_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let header = sign("secret", 1000, body);
        assert_eq!(
            verify("secret", &header, br#"{"id":"evt_2"}"#, 1000, 300),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            verify("other", &header, body, 1000, 300),
            Err(Invalid::Mismatch)
        );
        assert_eq!(
            verify("secret", &header, body, 1301, 300),
            Err(Invalid::Stale)
        );
        assert_eq!(
            verify("secret", "v1=abcd", body, 1000, 300),
            Err(Invalid::Malformed)
        );
        assert_eq!(
            verify("secret", "t=1000", body, 1000, 300),
            Err(Invalid::Malformed)
        );
        let rotating = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(verify("secret", &rotating, body, 1000, 300), Ok(()));
    }
}
