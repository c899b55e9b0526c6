//! The stored binary form of a link record: one format byte, then postcard.
//! A later record layout gets a new format byte; decoding keeps reading the old.

use thiserror::Error;

use crate::change::{Change, ChangeOp};
use crate::domain::DomainSettings;
use crate::link::{LinkKey, LinkRecord};
use crate::tls::TlsChange;

/// Format byte of records written now.
pub const FORMAT: u8 = 4;
/// Format 3: extensions ended at `blocked` (before `page`).
const FORMAT_3: u8 = 3;
/// Format 2: extensions ended at `password_hash` (before `blocked`).
const FORMAT_2: u8 = 2;
/// Format 1: extensions held only `click_limit` (before rules, variants, cards).
const FORMAT_1: u8 = 1;

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
        // Formats 3 and 4 each appended one optional field at the record's
        // end (`extensions.blocked`, then `extensions.page`): an older body
        // followed by one `None` (a zero byte) per missing field is the
        // same record now.
        Some((&FORMAT_3, body)) => decode_appended(body, 1),
        Some((&FORMAT_2, body)) => decode_appended(body, 2),
        Some((&FORMAT_1, body)) => Ok(postcard::from_bytes::<v1::LinkRecord>(body)?.into()),
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

/// Decodes an older body with `missing` trailing optional fields absent.
fn decode_appended(body: &[u8], missing: usize) -> Result<LinkRecord, CodecError> {
    let mut upgraded = Vec::with_capacity(body.len() + missing);
    upgraded.extend_from_slice(body);
    upgraded.resize(body.len() + missing, 0);
    Ok(postcard::from_bytes(&upgraded)?)
}

/// The record layout of format 1, read to upgrade stored records.
mod v1 {
    use serde::Deserialize;

    use crate::UnixMillis;
    use crate::link::{LinkExtensions, LinkState, RedirectStatus};

    #[derive(Deserialize)]
    pub struct LinkRecord {
        id: u64,
        domain: String,
        code: String,
        url: String,
        status: RedirectStatus,
        state: LinkState,
        expires_at: Option<UnixMillis>,
        forward_query: bool,
        title: Option<String>,
        tags: Vec<String>,
        created_at: UnixMillis,
        updated_at: UnixMillis,
        version: u64,
        extensions: Extensions,
    }

    #[derive(Deserialize)]
    struct Extensions {
        click_limit: Option<u64>,
    }

    #[derive(Deserialize)]
    pub struct DomainSettings {
        domain: String,
        root_url: Option<String>,
        not_found_url: Option<String>,
        default_status: RedirectStatus,
        updated_at: UnixMillis,
    }

    impl From<DomainSettings> for crate::domain::DomainSettings {
        fn from(old: DomainSettings) -> Self {
            Self {
                domain: old.domain,
                root_url: old.root_url,
                not_found_url: old.not_found_url,
                default_status: old.default_status,
                updated_at: old.updated_at,
                https_redirect: false,
                hsts: None,
                root_page: None,
            }
        }
    }

    impl From<LinkRecord> for crate::link::LinkRecord {
        fn from(old: LinkRecord) -> Self {
            Self {
                id: old.id,
                domain: old.domain,
                code: old.code,
                url: old.url,
                status: old.status,
                state: old.state,
                expires_at: old.expires_at,
                forward_query: old.forward_query,
                title: old.title,
                tags: old.tags,
                created_at: old.created_at,
                updated_at: old.updated_at,
                version: old.version,
                extensions: LinkExtensions {
                    click_limit: old.extensions.click_limit,
                    ..LinkExtensions::default()
                },
            }
        }
    }
}

const CHANGE_UPSERT: u8 = 0;
const CHANGE_PURGE: u8 = 1;
const CHANGE_DOMAIN: u8 = 2;
const CHANGE_TLS: u8 = 3;
/// Format byte of stored TLS changes.
const TLS_FORMAT: u8 = 1;
/// Format byte of stored domain settings.
const DOMAIN_FORMAT: u8 = 3;
/// Format 2: domain settings before `root_page`.
const DOMAIN_FORMAT_2: u8 = 2;
/// Format 1: domain settings before `https_redirect` and `hsts`.
const DOMAIN_FORMAT_1: u8 = 1;

/// Encodes a domain's settings for storage.
pub fn encode_domain(settings: &DomainSettings) -> Vec<u8> {
    let mut out = vec![DOMAIN_FORMAT];
    out.extend(postcard::to_stdvec(settings).expect("settings serialize"));
    out
}

/// Decodes settings written by [`encode_domain`].
pub fn decode_domain(bytes: &[u8]) -> Result<DomainSettings, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&DOMAIN_FORMAT, body)) => Ok(postcard::from_bytes(body)?),
        // Format 3 appended `root_page` (an option) at the end: a format 2
        // body and one `None` byte.
        Some((&DOMAIN_FORMAT_2, body)) => {
            let mut upgraded = body.to_vec();
            upgraded.push(0);
            Ok(postcard::from_bytes(&upgraded)?)
        }
        Some((&DOMAIN_FORMAT_1, body)) => {
            let old: v1::DomainSettings = postcard::from_bytes(body)?;
            Ok(old.into())
        }
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
}

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
        ChangeOp::Domain { settings } => {
            out.push(CHANGE_DOMAIN);
            out.extend(encode_domain(settings));
        }
        ChangeOp::Tls { change } => {
            out.push(CHANGE_TLS);
            out.extend(encode_tls(change));
        }
    }
    out
}

/// Encodes a TLS change for storage.
pub fn encode_tls(change: &TlsChange) -> Vec<u8> {
    let mut out = vec![TLS_FORMAT];
    out.extend(postcard::to_stdvec(change).expect("TLS changes serialize"));
    out
}

/// Decodes a change written by [`encode_tls`].
pub fn decode_tls(bytes: &[u8]) -> Result<TlsChange, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&TLS_FORMAT, body)) => Ok(postcard::from_bytes(body)?),
        Some((&other, _)) => Err(CodecError::UnknownFormat(other)),
    }
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
        CHANGE_DOMAIN => ChangeOp::Domain {
            settings: decode_domain(&bytes[9..])?,
        },
        CHANGE_TLS => ChangeOp::Tls {
            change: decode_tls(&bytes[9..])?,
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
            Change {
                version: 5,
                op: ChangeOp::Domain {
                    settings: DomainSettings {
                        root_url: Some("https://www.example.org/".into()),
                        default_status: RedirectStatus::MovedPermanently,
                        updated_at: 9,
                        ..DomainSettings::empty("example.com")
                    },
                },
            },
            Change {
                version: 6,
                op: ChangeOp::Tls {
                    change: crate::tls::TlsChange::Http01 {
                        token: "abc".into(),
                        key_authorization: Some("abc.def".into()),
                    },
                },
            },
        ] {
            assert_eq!(decode_change(&encode_change(&change)).unwrap(), change);
        }
        assert!(decode_change(&[0; 9]).is_err());
    }

    #[test]
    fn format_1_records_still_decode() {
        // Written by the release before rules: format 1, `extensions` = click_limit only.
        #[derive(serde::Serialize)]
        struct Old<'a> {
            id: u64,
            domain: &'a str,
            code: &'a str,
            url: &'a str,
            status: RedirectStatus,
            state: LinkState,
            expires_at: Option<i64>,
            forward_query: bool,
            title: Option<&'a str>,
            tags: Vec<&'a str>,
            created_at: i64,
            updated_at: i64,
            version: u64,
            click_limit: Option<u64>,
        }
        let old = Old {
            id: 9,
            domain: "example.com",
            code: "old",
            url: "https://example.org/",
            status: RedirectStatus::MovedPermanently,
            state: LinkState::Disabled,
            expires_at: Some(5),
            forward_query: true,
            title: Some("t"),
            tags: vec!["x"],
            created_at: 1,
            updated_at: 2,
            version: 3,
            click_limit: Some(4),
        };
        let mut bytes = vec![FORMAT_1];
        bytes.extend(postcard::to_stdvec(&old).unwrap());
        let record = decode_record(&bytes).unwrap();
        assert_eq!(
            (record.id, record.code.as_str(), record.version),
            (9, "old", 3)
        );
        assert_eq!(record.state, LinkState::Disabled);
        assert_eq!(record.tags, ["x"]);
        assert_eq!(record.extensions.click_limit, Some(4));
        assert!(record.extensions.rules.is_empty() && record.extensions.card.is_none());
    }

    #[test]
    fn behaviour_fields_round_trip() {
        use crate::behaviour::{Card, Condition, Rule, Variant};
        let mut record =
            LinkRecord::new(7, "example.com", "abc", "https://example.org/x", 1).unwrap();
        record.extensions.rules = vec![Rule {
            url: "https://example.org/fr".into(),
            conditions: vec![Condition::Language("fr".into()), Condition::After(5)],
            variants: vec![],
        }];
        record.extensions.variants = vec![
            Variant {
                url: "https://a.example/".into(),
                weight: 50,
            },
            Variant {
                url: "https://b.example/".into(),
                weight: 50,
            },
        ];
        record.extensions.card = Some(Card {
            title: Some("T".into()),
            description: None,
            image: None,
        });
        record.extensions.ios = Some("https://apps.example/".into());
        assert_eq!(decode_record(&encode_record(&record)).unwrap(), record);
        let change = Change {
            version: 1,
            op: ChangeOp::Upsert { link: record },
        };
        let json = serde_json::to_string(&change).unwrap();
        assert!(
            json.contains(r#"{"type":"language","value":"fr"}"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), change);
    }

    #[test]
    fn format_2_records_still_decode() {
        // Written by the release before blocked destinations (a record with
        // a rule, variants, a card, ios, a password and a click limit).
        const FORMAT_2_RECORD: &str = "02070b6578616d706c652e636f6d036162631568747470733a2f2f6578616d706c652e6f72672f78ae0200000000000202000104011668747470733a2f2f6578616d706c652e6f72672f6672010302667200021268747470733a2f2f612e6578616d706c652f321268747470733a2f2f622e6578616d706c652f3200010101540000011568747470733a2f2f617070732e6578616d706c652f00010b246172676f6e3269642478";
        let bytes: Vec<u8> = (0..FORMAT_2_RECORD.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&FORMAT_2_RECORD[at..at + 2], 16).unwrap())
            .collect();
        let record = decode_record(&bytes).unwrap();
        assert_eq!((record.id, record.code.as_str()), (7, "abc"));
        assert_eq!(record.extensions.click_limit, Some(4));
        assert_eq!(record.extensions.rules[0].url, "https://example.org/fr");
        assert_eq!(record.extensions.variants.len(), 2);
        assert_eq!(
            record.extensions.card.as_ref().unwrap().title.as_deref(),
            Some("T")
        );
        assert_eq!(
            record.extensions.ios.as_deref(),
            Some("https://apps.example/")
        );
        assert_eq!(
            record.extensions.password_hash.as_deref(),
            Some("$argon2id$x")
        );
        assert_eq!(record.extensions.blocked, None);
        // Read again, it is written in the current format and round-trips.
        let again = encode_record(&record);
        assert_eq!(again[0], FORMAT);
        assert_eq!(decode_record(&again).unwrap(), record);
    }

    #[test]
    fn format_3_records_still_decode() {
        use crate::block::{Block, BlockSource};
        let mut record =
            LinkRecord::new(9, "example.com", "abc", "https://bad.example/x", 1).unwrap();
        record.extensions.blocked = Some(Block {
            host: "bad.example".into(),
            source: BlockSource::Api,
            reason: None,
        });
        // Format 3 is format 4 without the trailing `page` (None: one 0).
        let mut bytes = encode_record(&record);
        assert_eq!(bytes.pop(), Some(0));
        bytes[0] = FORMAT_3;
        assert_eq!(decode_record(&bytes).unwrap(), record);
    }

    #[test]
    fn pages_round_trip() {
        use crate::page::{PageBody, PagePart};
        let mut record =
            LinkRecord::new(3, "example.com", "me", "https://example.com/me", 1).unwrap();
        record.extensions.page = Some(PageBody {
            parts: vec![
                PagePart::always("<p>hi</p>"),
                PagePart {
                    html: "<a>x</a>".into(),
                    from: Some(5),
                    until: None,
                },
            ],
        });
        let bytes = encode_record(&record);
        assert_eq!(decode_record(&bytes).unwrap(), record);
    }

    #[test]
    fn blocked_links_round_trip() {
        use crate::block::{Block, BlockSource};
        let mut record =
            LinkRecord::new(7, "example.com", "abc", "https://bad.example/x", 1).unwrap();
        record.extensions.blocked = Some(Block {
            host: "bad.example".into(),
            source: BlockSource::ThreatList,
            reason: Some("malware_download".into()),
        });
        assert_eq!(decode_record(&encode_record(&record)).unwrap(), record);
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""source":"threat_list""#), "{json}");
        assert!(record.validate().is_ok());
        record.extensions.blocked.as_mut().unwrap().reason = Some("x".repeat(201));
        assert!(record.validate().is_err());
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

    #[test]
    fn format_2_domain_settings_still_decode_and_root_pages_round_trip() {
        // Format 2 is format 3 without the trailing `root_page` (None: one 0).
        let settings = DomainSettings {
            https_redirect: true,
            ..DomainSettings::empty("go.example.com")
        };
        let mut bytes = encode_domain(&settings);
        assert_eq!(bytes.pop(), Some(0));
        bytes[0] = DOMAIN_FORMAT_2;
        assert_eq!(decode_domain(&bytes).unwrap(), settings);
        let page = DomainSettings {
            root_page: Some("ada".into()),
            ..settings
        };
        assert_eq!(decode_domain(&encode_domain(&page)).unwrap(), page);
        assert!(page.redirects_misses());
        let bad = DomainSettings {
            root_page: Some("no/slash".into()),
            ..page
        };
        assert_eq!(bad.validate().unwrap_err().field(), "root_page");
    }

    #[test]
    fn format_1_domain_settings_still_decode() {
        // Written by the release before HTTPS settings.
        #[derive(serde::Serialize)]
        struct Old<'a> {
            domain: &'a str,
            root_url: Option<&'a str>,
            not_found_url: Option<&'a str>,
            default_status: RedirectStatus,
            updated_at: i64,
        }
        let mut bytes = vec![DOMAIN_FORMAT_1];
        bytes.extend(
            postcard::to_stdvec(&Old {
                domain: "go.example.com",
                root_url: Some("https://www.example.com/"),
                not_found_url: None,
                default_status: RedirectStatus::MovedPermanently,
                updated_at: 5,
            })
            .unwrap(),
        );
        let settings = decode_domain(&bytes).unwrap();
        assert_eq!(
            settings,
            DomainSettings {
                root_url: Some("https://www.example.com/".into()),
                default_status: RedirectStatus::MovedPermanently,
                updated_at: 5,
                ..DomainSettings::empty("go.example.com")
            }
        );
        assert_eq!(decode_domain(&encode_domain(&settings)).unwrap(), settings);
    }
}
