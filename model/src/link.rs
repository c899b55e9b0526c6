//! The link record: one short link, keyed by (domain, code), with everything an
//! engine needs to answer for it and what operators see about it.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;
use crate::behaviour::{Card, Rule, Variant, check};
use crate::block::Block;
use crate::page::PageBody;
use crate::validate::{self, ValidationError};

/// Stable identifier of a link, assigned when it is created. Click analytics key on it.
pub type LinkId = u64;

/// The redirect status a link answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum RedirectStatus {
    /// 301: permanent; browsers cache it (bounded by the engine's Cache-Control).
    MovedPermanently,
    /// 302: temporary, the default, so every visit reaches the engine and is counted.
    #[default]
    Found,
    /// 307: temporary, method preserved.
    TemporaryRedirect,
    /// 308: permanent, method preserved.
    PermanentRedirect,
}

impl RedirectStatus {
    /// The numeric status code.
    pub const fn code(self) -> u16 {
        match self {
            Self::MovedPermanently => 301,
            Self::Found => 302,
            Self::TemporaryRedirect => 307,
            Self::PermanentRedirect => 308,
        }
    }

    /// Whether browsers may cache the answer (301 and 308).
    pub const fn is_permanent(self) -> bool {
        matches!(self, Self::MovedPermanently | Self::PermanentRedirect)
    }
}

impl TryFrom<u16> for RedirectStatus {
    type Error = ValidationError;

    fn try_from(code: u16) -> Result<Self, Self::Error> {
        match code {
            301 => Ok(Self::MovedPermanently),
            302 => Ok(Self::Found),
            307 => Ok(Self::TemporaryRedirect),
            308 => Ok(Self::PermanentRedirect),
            other => Err(ValidationError::Status(other)),
        }
    }
}

impl From<RedirectStatus> for u16 {
    fn from(status: RedirectStatus) -> u16 {
        status.code()
    }
}

/// Lifecycle of a link. Disabled and deleted links answer 410 Gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    #[default]
    Active,
    Disabled,
    Deleted,
}

impl LinkState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
        }
    }
}

/// The (domain, code) pair that addresses a link. The domain is stored
/// lowercase and in punycode; the code is case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkKey {
    pub domain: String,
    pub code: String,
}

impl LinkKey {
    /// Validates and normalizes both parts.
    pub fn new(domain: &str, code: &str) -> Result<Self, ValidationError> {
        Ok(Self {
            domain: validate::normalize_domain(domain)?,
            code: validate::validate_code(code)?.to_owned(),
        })
    }

    /// Storage key: `domain`, a 0 byte, `code`. Sorts links of one domain together.
    pub fn storage_key(&self) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.domain.len() + 1 + self.code.len());
        key.extend_from_slice(self.domain.as_bytes());
        key.push(0);
        key.extend_from_slice(self.code.as_bytes());
        key
    }
}

/// Orders `items` by their storage keys (`domain`, 0, `code`: byte order),
/// items with equal keys in their original order. For bulk loads of
/// millions of links: see [`storage_key_order`].
pub fn sort_by_storage_key<T>(items: &mut Vec<T>, key: impl Fn(&T) -> &[u8]) {
    let order = storage_key_order(items.len(), |index| key(&items[index]));
    let mut slots: Vec<Option<T>> = items.drain(..).map(Some).collect();
    items.extend(
        order
            .iter()
            .map(|&index| slots[index as usize].take().expect("each index once")),
    );
}

/// The indexes `0..len` ordered by the storage keys `key` gives them (byte
/// order), equal keys in index order. Comparisons use the domain's rank and
/// the code's first eight bytes, held next to each other, and read the keys
/// themselves only on a tie, so sorting millions of keys does not wait on a
/// cache miss per comparison; the only memory it takes is 16 bytes a key.
pub fn storage_key_order<'k>(len: usize, key: impl Fn(usize) -> &'k [u8]) -> Vec<u32> {
    assert!(u32::try_from(len).is_ok(), "fewer than 2^32 keys");
    let split = |bytes: &[u8]| -> (usize, u64) {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        let code = bytes.get(end + 1..).unwrap_or_default();
        let mut prefix = [0u8; 8];
        let n = code.len().min(8);
        prefix[..n].copy_from_slice(&code[..n]);
        (end, u64::from_be_bytes(prefix))
    };
    let mut domains: Vec<&[u8]> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut order: Vec<(u32, u64, u32)> = Vec::with_capacity(len);
    for index in 0..len {
        let bytes = key(index);
        let (end, prefix) = split(bytes);
        let domain = &bytes[..end];
        let slot = *seen.entry(domain).or_insert_with(|| {
            domains.push(domain);
            domains.len() as u32 - 1
        });
        order.push((slot, prefix, index as u32));
    }
    // Domain slots in first-seen order → ranks in byte order.
    let mut by_name: Vec<u32> = (0..domains.len() as u32).collect();
    by_name.sort_unstable_by_key(|&slot| domains[slot as usize]);
    let mut rank = vec![0u32; domains.len()];
    for (position, &slot) in by_name.iter().enumerate() {
        rank[slot as usize] = position as u32;
    }
    for entry in &mut order {
        entry.0 = rank[entry.0 as usize];
    }
    order.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| key(a.2 as usize).cmp(key(b.2 as usize)))
            .then(a.2.cmp(&b.2))
    });
    // Reuse the allocation: each (rank, prefix, index) becomes its index.
    order.into_iter().map(|(_, _, index)| index).collect()
}

/// What a link does besides redirecting everyone to `url` (see
/// [`crate::behaviour`]). A new field here bumps [`crate::codec::FORMAT`];
/// older stored records decode with the new fields empty. Every field is
/// always serialized (the stored form is not self-describing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LinkExtensions {
    /// Maximum number of redirects before the link answers as expired; `None` is unlimited.
    #[serde(default)]
    pub click_limit: Option<u64>,
    /// Targeting rules, in order; the first whose conditions all match wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// An A/B split of the link's own traffic (2 to 8 weighted destinations).
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Where a gone link (expired, disabled, deleted, limit reached) sends visitors.
    #[serde(default)]
    pub fallback_url: Option<String>,
    /// What link-preview crawlers are shown.
    #[serde(default)]
    pub card: Option<Card>,
    /// Destination for iOS visitors (checked before the rules).
    #[serde(default)]
    pub ios: Option<String>,
    /// Destination for Android visitors (checked after `ios`, before the rules).
    #[serde(default)]
    pub android: Option<String>,
    /// Argon2id hash (PHC string) of the link's password; never the password.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// Set by the control plane while a destination is on a denylist or
    /// threat list: the link answers a 451 page instead of redirecting.
    #[serde(default)]
    pub blocked: Option<Block>,
    /// Set on the record of a link-in-bio page (its code is the page's
    /// handle): engines answer with the page instead of redirecting.
    #[serde(default)]
    pub page: Option<PageBody>,
}

impl LinkExtensions {
    /// The destinations besides the link's `url`, with their field paths:
    /// the rules' (`rules[0].url`, `rules[0].variants[1].url`), the
    /// variants', `fallback_url`, `ios` and `android`.
    pub fn destinations(&self) -> Vec<(String, &str)> {
        let mut found = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            found.push((format!("rules[{index}].url"), rule.url.as_str()));
            for (number, variant) in rule.variants.iter().enumerate() {
                found.push((
                    format!("rules[{index}].variants[{number}].url"),
                    variant.url.as_str(),
                ));
            }
        }
        for (number, variant) in self.variants.iter().enumerate() {
            found.push((format!("variants[{number}].url"), variant.url.as_str()));
        }
        for (field, url) in [
            ("fallback_url", &self.fallback_url),
            ("ios", &self.ios),
            ("android", &self.android),
        ] {
            if let Some(url) = url {
                found.push((field.to_owned(), url.as_str()));
            }
        }
        found
    }

    /// Whether the link needs more than a lookup to answer (an engine then
    /// compiles it).
    pub fn is_plain(&self) -> bool {
        *self == Self::default()
    }
}

/// One short link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub id: LinkId,
    pub domain: String,
    pub code: String,
    /// Validated absolute http(s) URL, ASCII only (IDN hosts in punycode).
    pub url: String,
    pub status: RedirectStatus,
    pub state: LinkState,
    /// After this instant the link answers 410.
    pub expires_at: Option<UnixMillis>,
    /// Append the incoming query string to the destination.
    pub forward_query: bool,
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// Version of the change that last wrote this record.
    pub version: u64,
    pub extensions: LinkExtensions,
}

impl LinkRecord {
    /// A new active link with defaults, after validating the key and destination.
    pub fn new(
        id: LinkId,
        domain: &str,
        code: &str,
        url: &str,
        now: UnixMillis,
    ) -> Result<Self, ValidationError> {
        let key = LinkKey::new(domain, code)?;
        Ok(Self {
            id,
            domain: key.domain,
            code: key.code,
            url: validate::validate_destination(url)?,
            status: RedirectStatus::default(),
            state: LinkState::Active,
            expires_at: None,
            forward_query: false,
            title: None,
            tags: Vec::new(),
            created_at: now,
            updated_at: now,
            version: 0,
            extensions: LinkExtensions::default(),
        })
    }

    pub fn key(&self) -> LinkKey {
        LinkKey {
            domain: self.domain.clone(),
            code: self.code.clone(),
        }
    }

    /// Re-checks every invariant; engines run it on records they receive.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if validate::normalize_domain(&self.domain)? != self.domain {
            return Err(ValidationError::DomainNotNormalized);
        }
        validate::validate_code(&self.code)?;
        if validate::validate_destination(&self.url)? != self.url {
            return Err(ValidationError::DestinationNotNormalized);
        }
        if let Some(title) = &self.title
            && title.len() > validate::MAX_TITLE_LEN
        {
            return Err(ValidationError::TitleTooLong);
        }
        validate::validate_tags(&self.tags)?;
        check::check_extensions(&self.extensions)?;
        Ok(())
    }

    /// Every destination of the link with the field that holds it: `url`,
    /// then those of its extensions ([`LinkExtensions::destinations`]).
    pub fn destinations(&self) -> Vec<(String, &str)> {
        let mut found = vec![("url".to_owned(), self.url.as_str())];
        found.extend(self.extensions.destinations());
        found
    }

    /// Whether the link answers a redirect at `now` (active and not expired).
    pub fn is_live(&self, now: UnixMillis) -> bool {
        self.state == LinkState::Active && self.expires_at.is_none_or(|at| now < at)
    }
}

#[cfg(test)]
mod tests {
    use super::sort_by_storage_key;

    #[test]
    fn sorting_by_storage_key_matches_byte_order_and_keeps_ties_in_order() {
        let keys: Vec<&[u8]> = vec![
            b"go.example\0zz",
            b"a\0b",
            b"go.example\0abcdefgh2",
            b"ab\0a",
            b"go.example\0abcdefgh1",
            b"go.example\0abc",
            b"a\0b",
            b"go.example\0abcdefgh",
            b"go.example\0ABC",
            b"a\0",
            b"go.example\0abcdefgh1",
        ];
        let mut items: Vec<(Vec<u8>, usize)> = keys
            .iter()
            .enumerate()
            .map(|(index, key)| (key.to_vec(), index))
            .collect();
        let mut expected = items.clone();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        sort_by_storage_key(&mut items, |item| &item.0);
        assert_eq!(items, expected);
        // Equal keys keep their order: indexes 1 before 6, 4 before 10.
        let order: Vec<usize> = items.iter().map(|item| item.1).collect();
        assert_eq!(order, [9, 1, 6, 3, 8, 5, 7, 4, 10, 2, 0]);
    }
}
