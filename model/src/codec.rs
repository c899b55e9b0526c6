//! The stored binary form of a link record: one format byte, then postcard.
//! A later record layout gets a new format byte; decoding keeps reading the old.

use thiserror::Error;

use crate::change::{Change, ChangeOp};
use crate::link::{LinkKey, LinkRecord};

/// Format byte of records written now.
pub const FORMAT: u8 = 1;

#[derive(Debug, Error)]
pub enum CodecError {
    #[error("stored record is empty")]
    Empty,
    #[error("stored record has unknown format {0}")]
    UnknownFormat(u8),
    #[error("stored record is corrupt: {0}")]
    Corrupt(#[from] postcard::Error),
}

/// Encodes a record for storage.
pub fn encode_record(record: &LinkRecord) -> Vec<u8> {
    let mut out = vec![FORMAT];
    // Serializing a plain struct into a Vec cannot fail.
    out.extend(postcard::to_stdvec(record).expect("record serializes"));
    out
}

/// Decodes a stored record.
pub fn decode_record(bytes: &[u8]) -> Result<LinkRecord, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT, body)) => Ok(postcard::from_bytes(body)?),
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

const CHANGE_UPSERT: u8 = 0;
const CHANGE_PURGE: u8 = 1;

/// Encodes a change for a change log: version, kind, then the record or key.
pub fn encode_change(change: &Change) -> Vec<u8> {
    let mut out = change.version.to_be_bytes().to_vec();
    match &change.op {
        ChangeOp::Upsert { link } => {
            out.push(CHANGE_UPSERT);
            out.extend(encode_record(link));
        }
        ChangeOp::Purge { key } => {
            out.push(CHANGE_PURGE);
            out.extend(postcard::to_stdvec(key).expect("keys serialize"));
        }
    }
    out
}

/// Decodes a change written by [`encode_change`].
pub fn decode_change(bytes: &[u8]) -> Result<Change, CodecError> {
    if bytes.len() < 9 {
        return Err(CodecError::Empty);
    }
    let version = u64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
    let op = match bytes[8] {
        CHANGE_UPSERT => ChangeOp::Upsert {
            link: decode_record(&bytes[9..])?,
        },
        CHANGE_PURGE => ChangeOp::Purge {
            key: postcard::from_bytes::<LinkKey>(&bytes[9..])?,
        },
        other => return Err(CodecError::UnknownFormat(other)),
    };
    Ok(Change { version, op })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{LinkState, RedirectStatus};

    #[test]
    fn round_trip() {
        let mut record =
            LinkRecord::new(7, "example.com", "abc", "https://example.org/x", 1).unwrap();
        record.status = RedirectStatus::PermanentRedirect;
        record.state = LinkState::Disabled;
        record.tags = vec!["a".into()];
        record.expires_at = Some(99);
        let bytes = encode_record(&record);
        assert_eq!(bytes[0], FORMAT);
        assert_eq!(decode_record(&bytes).unwrap(), record);
    }

    #[test]
    fn changes_round_trip() {
        let link = LinkRecord::new(7, "example.com", "abc", "https://example.org/x", 1).unwrap();
        for change in [
            Change {
                version: 3,
                op: ChangeOp::Upsert { link: link.clone() },
            },
            Change {
                version: 4,
                op: ChangeOp::Purge { key: link.key() },
            },
        ] {
            assert_eq!(decode_change(&encode_change(&change)).unwrap(), change);
        }
        assert!(decode_change(&[0; 9]).is_err());
    }

    #[test]
    fn unknown_or_corrupt_is_an_error() {
        assert!(matches!(decode_record(&[]), Err(CodecError::Empty)));
        assert!(matches!(
            decode_record(&[9, 1]),
            Err(CodecError::UnknownFormat(9))
        ));
        assert!(matches!(
            decode_record(&[FORMAT, 0xff]),
            Err(CodecError::Corrupt(_))
        ));
    }
}
