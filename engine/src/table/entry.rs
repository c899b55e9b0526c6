//! One link as the request path sees it: a single heap allocation holding the
//! key, the answer's fields and the already-validated `Location` bytes, so a
//! lookup costs one pointer chase and a redirect copies one slice. A link
//! with behaviour also owns its compiled plan: the plan lives exactly as
//! long as the entry, and reaching it costs no second lookup.

use std::hash::{Hash, Hasher};

use papaya::Equivalent;

use crate::behaviour::Compiled;
use ricochet_model::{LinkRecord, LinkState, UnixMillis};

/// Interned id of a domain (see [`super::Domains`]).
pub type DomainId = u32;

// Layout of the allocation (most links need 10 bytes besides key and URL):
//   0..4    domain id, little endian
//   4       code length c
//   5..5+c  code
//   then    link id (u64 LE), status minus 300 (u8), flags (u8),
//           [expires at (i64 LE) when FLAG_EXPIRES],
//           [fragment offset in the URL (u16 LE) when FLAG_FRAGMENT],
//           URL bytes to the end.
const CODE_AT: usize = 5;
const FIXED_AFTER_CODE: usize = 8 + 1 + 1;

const FLAG_FORWARD_QUERY: u8 = 1;
const FLAG_URL_HAS_QUERY: u8 = 1 << 1;
const FLAG_EXPIRES: u8 = 1 << 2;
const FLAG_FRAGMENT: u8 = 1 << 3;
const STATE_SHIFT: u8 = 4;
/// The link has behaviour: the entry owns its plan.
const FLAG_PLANNED: u8 = 1 << 6;
/// The link's plan has a click limit.
const FLAG_LIMITED: u8 = 1 << 7;

/// What the engine answers for a link at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Redirect,
    /// Disabled, deleted or expired.
    Gone,
}

/// A compact, immutable link entry: its bytes, and the plan of a link with
/// behaviour. Edits replace the whole entry.
pub struct LinkEntry(Box<[u8]>, Option<Box<Compiled>>);

impl LinkEntry {
    /// Builds the entry for `record` in `domain`. The record must be
    /// validated.
    pub fn new(domain: DomainId, record: &LinkRecord) -> Self {
        Self::with_plan(domain, record, None)
    }

    /// Builds the entry for `record`, owning `plan` (the record's compiled
    /// behaviour) when there is one.
    pub fn with_plan(domain: DomainId, record: &LinkRecord, plan: Option<Box<Compiled>>) -> Self {
        let planned = plan.is_some();
        let code = record.code.as_bytes();
        let url = record.url.as_bytes();
        debug_assert!(code.len() <= u8::MAX as usize && url.len() <= u16::MAX as usize);
        let fragment = url.iter().position(|&b| b == b'#');
        let state = match record.state {
            LinkState::Active => 0,
            LinkState::Disabled => 1,
            LinkState::Deleted => 2,
        };
        let mut flags = state << STATE_SHIFT;
        if record.forward_query {
            flags |= FLAG_FORWARD_QUERY;
        }
        if url[..fragment.unwrap_or(url.len())].contains(&b'?') {
            flags |= FLAG_URL_HAS_QUERY;
        }
        if record.expires_at.is_some() {
            flags |= FLAG_EXPIRES;
        }
        if fragment.is_some() {
            flags |= FLAG_FRAGMENT;
        }
        if planned {
            flags |= FLAG_PLANNED;
            if record.extensions.click_limit.is_some() {
                flags |= FLAG_LIMITED;
            }
        }
        let optional = if record.expires_at.is_some() { 8 } else { 0 }
            + if fragment.is_some() { 2 } else { 0 };
        let mut bytes =
            Vec::with_capacity(CODE_AT + code.len() + FIXED_AFTER_CODE + optional + url.len());
        bytes.extend_from_slice(&domain.to_le_bytes());
        bytes.push(code.len() as u8);
        bytes.extend_from_slice(code);
        bytes.extend_from_slice(&record.id.to_le_bytes());
        bytes.push((record.status.code() - 300) as u8);
        bytes.push(flags);
        if let Some(expires_at) = record.expires_at {
            bytes.extend_from_slice(&expires_at.to_le_bytes());
        }
        if let Some(fragment) = fragment {
            bytes.extend_from_slice(&(fragment as u16).to_le_bytes());
        }
        bytes.extend_from_slice(url);
        Self(bytes.into_boxed_slice(), plan)
    }

    /// The plan of a link with behaviour.
    #[inline]
    pub fn plan(&self) -> Option<&Compiled> {
        self.1.as_deref()
    }

    #[inline]
    pub fn domain(&self) -> DomainId {
        u32::from_le_bytes(self.0[0..4].try_into().unwrap())
    }

    #[inline]
    pub fn code(&self) -> &[u8] {
        &self.0[CODE_AT..CODE_AT + self.0[4] as usize]
    }

    /// Offset of the fixed fields.
    #[inline]
    fn fixed_at(&self) -> usize {
        CODE_AT + self.0[4] as usize
    }

    #[inline]
    pub fn link_id(&self) -> u64 {
        let at = self.fixed_at();
        u64::from_le_bytes(self.0[at..at + 8].try_into().unwrap())
    }

    /// The redirect status code (301, 302, 307 or 308).
    #[inline]
    pub fn status(&self) -> u16 {
        300 + self.0[self.fixed_at() + 8] as u16
    }

    #[inline]
    fn flags(&self) -> u8 {
        self.0[self.fixed_at() + 9]
    }

    /// Offset just after the fixed fields (the optional ones start here).
    #[inline]
    fn optional_at(&self) -> usize {
        self.fixed_at() + FIXED_AFTER_CODE
    }

    /// When the link expires; `i64::MAX` when it does not.
    #[inline]
    pub fn expires_at(&self) -> UnixMillis {
        if self.flags() & FLAG_EXPIRES == 0 {
            return i64::MAX;
        }
        let at = self.optional_at();
        i64::from_le_bytes(self.0[at..at + 8].try_into().unwrap())
    }

    #[inline]
    pub fn forward_query(&self) -> bool {
        self.flags() & FLAG_FORWARD_QUERY != 0
    }

    /// Whether the URL (before any fragment) already has a query string.
    #[inline]
    pub fn url_has_query(&self) -> bool {
        self.flags() & FLAG_URL_HAS_QUERY != 0
    }

    /// Whether the link has a compiled plan (rules, splits, a card, a fallback).
    #[inline]
    pub fn is_planned(&self) -> bool {
        self.flags() & FLAG_PLANNED != 0
    }

    /// Whether the link's plan has a click limit.
    #[inline]
    pub fn is_limited(&self) -> bool {
        self.flags() & FLAG_LIMITED != 0
    }

    pub fn state(&self) -> LinkState {
        match (self.flags() >> STATE_SHIFT) & 3 {
            0 => LinkState::Active,
            1 => LinkState::Disabled,
            _ => LinkState::Deleted,
        }
    }

    /// Offset of `#` in the URL, or the URL's length.
    #[inline]
    pub fn fragment_at(&self) -> usize {
        let flags = self.flags();
        if flags & FLAG_FRAGMENT == 0 {
            return self.url().len();
        }
        let at = self.optional_at() + if flags & FLAG_EXPIRES != 0 { 8 } else { 0 };
        u16::from_le_bytes(self.0[at..at + 2].try_into().unwrap()) as usize
    }

    /// The destination, safe to copy into a `Location` header as is.
    #[inline]
    pub fn url(&self) -> &[u8] {
        let flags = self.flags();
        let at = self.optional_at()
            + if flags & FLAG_EXPIRES != 0 { 8 } else { 0 }
            + if flags & FLAG_FRAGMENT != 0 { 2 } else { 0 };
        &self.0[at..]
    }

    /// What to answer at `now`.
    #[inline]
    pub fn answer(&self, now: UnixMillis) -> Answer {
        if (self.flags() >> STATE_SHIFT) & 3 == 0 && now < self.expires_at() {
            Answer::Redirect
        } else {
            Answer::Gone
        }
    }

    /// Heap bytes this entry holds.
    pub fn heap_size(&self) -> usize {
        self.0.len() + self.plan().map_or(0, Compiled::heap_size)
    }
}

impl std::fmt::Debug for LinkEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkEntry")
            .field("domain", &self.domain())
            .field("code", &String::from_utf8_lossy(self.code()))
            .field("status", &self.status())
            .field("url", &String::from_utf8_lossy(self.url()))
            .finish()
    }
}

/// The key a request looks up: interned domain and code bytes.
#[derive(Debug, Clone, Copy)]
pub struct EntryKey<'a> {
    pub domain: DomainId,
    pub code: &'a [u8],
}

impl Hash for EntryKey<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u32(self.domain);
        state.write(self.code);
    }
}

impl Hash for LinkEntry {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        EntryKey {
            domain: self.domain(),
            code: self.code(),
        }
        .hash(state)
    }
}

impl PartialEq for LinkEntry {
    fn eq(&self, other: &Self) -> bool {
        self.domain() == other.domain() && self.code() == other.code()
    }
}

impl Eq for LinkEntry {}

impl Equivalent<LinkEntry> for EntryKey<'_> {
    #[inline]
    fn equivalent(&self, entry: &LinkEntry) -> bool {
        self.domain == entry.domain() && self.code == entry.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::RedirectStatus;

    #[test]
    fn fields_round_trip() {
        let mut record = LinkRecord::new(
            42,
            "example.com",
            "abc",
            "https://example.org/a?b=1#frag",
            0,
        )
        .unwrap();
        record.status = RedirectStatus::PermanentRedirect;
        record.forward_query = true;
        record.expires_at = Some(1_000);
        let entry = LinkEntry::new(7, &record);
        assert_eq!(entry.domain(), 7);
        assert_eq!(entry.code(), b"abc");
        assert_eq!(entry.link_id(), 42);
        assert_eq!(entry.expires_at(), 1_000);
        assert_eq!(entry.status(), 308);
        assert!(entry.forward_query());
        assert!(entry.url_has_query());
        assert_eq!(entry.url(), b"https://example.org/a?b=1#frag");
        assert_eq!(&entry.url()[entry.fragment_at()..], b"#frag");
        assert_eq!(entry.state(), LinkState::Active);
        assert_eq!(entry.answer(999), Answer::Redirect);
        assert_eq!(entry.answer(1_000), Answer::Gone);
    }

    #[test]
    fn optional_fields_in_every_combination() {
        for (url, expires) in [
            ("https://e.example/", None),
            ("https://e.example/#f", None),
            ("https://e.example/", Some(5)),
            ("https://e.example/?q=1#f", Some(-7)),
        ] {
            let mut record = LinkRecord::new(u64::MAX, "e.example", "c", url, 0).unwrap();
            record.expires_at = expires;
            let entry = LinkEntry::new(u32::MAX - 1, &record);
            assert_eq!(entry.url(), url.as_bytes());
            assert_eq!(entry.expires_at(), expires.unwrap_or(i64::MAX));
            assert_eq!(entry.link_id(), u64::MAX);
            assert_eq!(entry.status(), 302);
            assert_eq!(entry.domain(), u32::MAX - 1);
            let fragment = url.find('#').unwrap_or(url.len());
            assert_eq!(entry.fragment_at(), fragment);
            assert_eq!(entry.url_has_query(), url.contains('?'));
        }
    }

    #[test]
    fn states_and_plain_urls() {
        let mut record = LinkRecord::new(1, "a.example", "x", "https://example.org/", 0).unwrap();
        record.state = LinkState::Disabled;
        let entry = LinkEntry::new(0, &record);
        assert_eq!(entry.state(), LinkState::Disabled);
        assert_eq!(entry.answer(0), Answer::Gone);
        assert!(!entry.url_has_query());
        assert!(!entry.forward_query());
        assert_eq!(entry.fragment_at(), entry.url().len());
        record.state = LinkState::Deleted;
        assert_eq!(LinkEntry::new(0, &record).state(), LinkState::Deleted);
    }

    fn plan(record: &LinkRecord) -> Option<Box<Compiled>> {
        let key = crate::behaviour::CookieKey::from_secret("test");
        Compiled::compile(record, &key).map(Box::new)
    }

    #[test]
    fn planned_links_own_their_plan_and_keep_their_fields() {
        let mut record =
            LinkRecord::new(1, "a.example", "x", "https://example.org/#top", 0).unwrap();
        record.expires_at = Some(5);
        record.extensions.fallback_url = Some("https://example.org/gone".into());
        let entry = LinkEntry::with_plan(0, &record, plan(&record));
        assert!(entry.is_planned() && !entry.is_limited());
        assert_eq!(entry.url(), b"https://example.org/#top");
        assert_eq!(&entry.url()[entry.fragment_at()..], b"#top");
        assert_eq!(entry.expires_at(), 5);
        let fallback = entry.plan().unwrap().fallback().unwrap();
        assert_eq!(fallback.url(), b"https://example.org/gone");
        assert!(entry.heap_size() > LinkEntry::new(0, &record).heap_size());
        assert!(LinkEntry::new(0, &record).plan().is_none());

        record.extensions.click_limit = Some(3);
        let entry = LinkEntry::with_plan(0, &record, plan(&record));
        assert!(entry.is_planned() && entry.is_limited());
        assert_eq!(entry.state(), LinkState::Active);
        assert_eq!(entry.answer(0), Answer::Redirect);
        assert!(entry.plan().unwrap().limit.is_some());
        assert!(!LinkEntry::new(0, &record).is_limited());
    }
}
