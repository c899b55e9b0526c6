//! The link table: a lock-free map from (domain, code) to a compact
//! [`LinkEntry`], read by every shard without locks and written only by the
//! change intake. Domains are interned to small ids so each entry stays small.

mod entry;

pub use entry::{Answer, DomainId, EntryKey, LinkEntry};

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use foldhash::fast::RandomState;
use papaya::{HashMap, HashSet, LocalGuard, ResizeMode};
use ricochet_model::{DomainSettings, LinkKey, LinkRecord};
use seize::Collector;

use crate::behaviour::{Compiled, CookieKey};
use crate::tls::TlsCertificates;

const NO_DOMAIN: DomainId = DomainId::MAX;
/// Longest Host header value considered for a lookup (a domain and a port).
const MAX_HOST_LEN: usize = 260;

/// Concurrent link table shared by all shards.
pub struct LinkTable {
    collector: Arc<Collector>,
    links: HashSet<LinkEntry, RandomState>,
    /// Links whose entry owns a plan (rules, splits, cards, fallbacks, …).
    planned: AtomicUsize,
    /// Signs A/B cookies in the plans.
    cookie_key: CookieKey,
    domains: HashMap<Box<str>, DomainId, RandomState>,
    /// Where the root and unknown codes of domains with settings go; read
    /// only when a request finds no link.
    misses: HashMap<DomainId, DomainMisses, RandomState>,
    /// HTTPS settings of domains that have them; read on every request only
    /// while `transports` is above 0.
    transport: HashMap<DomainId, Transport, RandomState>,
    transports: AtomicUsize,
    /// Serializes domain interning; never taken on the request path.
    next_domain: Mutex<DomainId>,
    default_domain: Option<Box<str>>,
    default_id: AtomicU32,
    /// Certificates and ACME challenge answers, for the TLS listeners and
    /// the HTTP-01 path.
    tls: Arc<TlsCertificates>,
}

impl std::fmt::Debug for LinkTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkTable")
            .field("links", &self.len())
            .field("domains", &self.domains.len())
            .finish()
    }
}

impl LinkTable {
    /// An empty table. Requests whose Host has no links are served from
    /// `default_domain` when one is set.
    pub fn new(default_domain: Option<&str>) -> Self {
        Self::with_capacity(default_domain, 0)
    }

    /// An empty table sized for `capacity` links.
    pub fn with_capacity(default_domain: Option<&str>, capacity: usize) -> Self {
        let collector = Arc::new(Collector::new());
        Self {
            links: HashSet::builder()
                .hasher(RandomState::default())
                .shared_collector(collector.clone())
                .resize_mode(ResizeMode::Blocking)
                .capacity(capacity)
                .build(),
            planned: AtomicUsize::new(0),
            cookie_key: CookieKey::random(),
            domains: HashMap::builder()
                .hasher(RandomState::default())
                .shared_collector(collector.clone())
                .build(),
            misses: HashMap::builder()
                .hasher(RandomState::default())
                .shared_collector(collector.clone())
                .build(),
            transport: HashMap::builder()
                .hasher(RandomState::default())
                .shared_collector(collector.clone())
                .build(),
            transports: AtomicUsize::new(0),
            collector,
            next_domain: Mutex::new(0),
            default_domain: default_domain.map(Box::from),
            default_id: AtomicU32::new(NO_DOMAIN),
            tls: Arc::default(),
        }
    }

    /// The table with `key` signing A/B cookies (all engines of a cluster
    /// need the same key).
    pub fn with_cookie_key(mut self, key: CookieKey) -> Self {
        self.cookie_key = key;
        self
    }

    /// Number of links with a compiled plan.
    pub fn planned(&self) -> usize {
        self.planned.load(Ordering::Relaxed)
    }

    /// Number of links (in any state).
    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Number of domains that have links.
    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// Inserts or replaces the entry for a validated record, compiling its
    /// plan when it has behaviour (the entry owns it). Called by one writer
    /// at a time (the change intake).
    pub fn upsert(&self, record: &LinkRecord) {
        let domain = self.intern(&record.domain);
        let guard = self.collector.enter();
        let plan = Compiled::compile(record, &self.cookie_key).map(Box::new);
        let planned = plan.is_some();
        let key = EntryKey {
            domain,
            code: record.code.as_bytes(),
        };
        let was_planned = (self.links.get(&key, &guard)).is_some_and(LinkEntry::is_planned);
        self.links
            .insert(LinkEntry::with_plan(domain, record, plan), &guard);
        match (was_planned, planned) {
            (false, true) => self.planned.fetch_add(1, Ordering::Relaxed),
            (true, false) => self.planned.fetch_sub(1, Ordering::Relaxed),
            _ => 0,
        };
    }

    /// Removes the entry at `key`, if any.
    pub fn remove(&self, key: &LinkKey) {
        let guard = self.collector.enter();
        let Some(&domain) = self.domains.get(key.domain.as_str(), &guard) else {
            return;
        };
        let key = EntryKey {
            domain,
            code: key.code.as_bytes(),
        };
        let was_planned = (self.links.get(&key, &guard)).is_some_and(LinkEntry::is_planned);
        if self.links.remove(&key, &guard) && was_planned {
            self.planned.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Replaces a domain's settings. A host whose domain has settings is
    /// served as that domain (its misses answered by its settings) even
    /// while it has no links.
    pub fn set_domain(&self, settings: &DomainSettings) {
        let domain = self.intern(&settings.domain);
        let guard = self.collector.enter();
        if settings.redirects_misses() {
            self.misses
                .insert(domain, DomainMisses::new(settings), &guard);
        } else {
            self.misses.remove(&domain, &guard);
        }
        let had = if settings.https_redirect || settings.hsts.is_some() {
            let transport = Transport {
                https_redirect: settings.https_redirect,
                hsts: settings
                    .hsts
                    .map(|hsts| hsts.header_line().into_bytes().into_boxed_slice()),
            };
            let had = self.transport.insert(domain, transport, &guard).is_some();
            if !had {
                self.transports.fetch_add(1, Ordering::Release);
            }
            had
        } else {
            self.transport.remove(&domain, &guard).is_some()
        };
        if had && !(settings.https_redirect || settings.hsts.is_some()) {
            self.transports.fetch_sub(1, Ordering::Release);
        }
    }

    /// What the TLS listeners serve.
    pub fn tls(&self) -> &Arc<TlsCertificates> {
        &self.tls
    }

    /// Number of domains whose misses redirect.
    pub fn domains_with_settings(&self) -> usize {
        self.misses.len()
    }

    /// Pre-sizes the table for `additional` more links.
    pub fn reserve(&self, additional: usize) {
        self.links.reserve(additional, &self.collector.enter());
    }

    fn intern(&self, domain: &str) -> DomainId {
        let guard = self.collector.enter();
        if let Some(&id) = self.domains.get(domain, &guard) {
            return id;
        }
        let mut next = self.next_domain.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = self.domains.get(domain, &guard) {
            return id;
        }
        let id = *next;
        *next += 1;
        self.domains.insert(Box::from(domain), id, &guard);
        if self.default_domain.as_deref() == Some(domain) {
            self.default_id.store(id, Ordering::Release);
        }
        id
    }

    /// A read handle for one batch of requests; entries it returns stay valid
    /// until it is dropped.
    #[inline]
    pub fn reader(&self) -> TableReader<'_> {
        TableReader {
            table: self,
            guard: self.collector.enter(),
        }
    }

    /// Whether a link (in any state) is at `key`; outside the request path.
    pub fn contains(&self, key: &LinkKey) -> bool {
        let reader = self.reader();
        reader
            .domain_id(key.domain.as_bytes())
            .is_some_and(|domain| reader.get(domain, key.code.as_bytes()).is_some())
    }

    /// Looks up one link outside the request path (tests, tools).
    pub fn get_record_parts(&self, domain: &str, code: &str) -> Option<(u16, String)> {
        let reader = self.reader();
        let id = reader.domain_id(domain.as_bytes())?;
        reader
            .get(id, code.as_bytes())
            .map(|e| (e.status(), String::from_utf8_lossy(e.url()).into_owned()))
    }
}

/// Pinned read access to a [`LinkTable`].
pub struct TableReader<'t> {
    table: &'t LinkTable,
    guard: LocalGuard<'t>,
}

impl<'t> TableReader<'t> {
    /// The domain to serve a request with this Host header value from: the
    /// host's own when it has links, else the default domain.
    #[inline]
    pub fn domain_for_host(&self, host: Option<&[u8]>) -> Option<DomainId> {
        if let Some(id) = host.and_then(|host| self.domain_id(host)) {
            return Some(id);
        }
        match self.table.default_id.load(Ordering::Acquire) {
            NO_DOMAIN => None,
            id => Some(id),
        }
    }

    /// The interned id of a Host header value: case-insensitive, without a
    /// port or a trailing dot.
    #[inline]
    pub fn domain_id(&self, host: &[u8]) -> Option<DomainId> {
        let host = strip_port(host);
        let host = host.strip_suffix(b".").unwrap_or(host);
        if host.is_empty() || host.len() > MAX_HOST_LEN {
            return None;
        }
        let mut lower = [0u8; MAX_HOST_LEN];
        let lower = &mut lower[..host.len()];
        for (out, &byte) in lower.iter_mut().zip(host) {
            *out = byte.to_ascii_lowercase();
        }
        let name = std::str::from_utf8(lower).ok()?;
        self.table.domains.get(name, &self.guard).copied()
    }

    /// Where a request that found no link goes: its domain's root URL for
    /// `/`, else its unknown-code URL; `None`: the 404 page.
    #[inline]
    pub fn miss(&self, domain: DomainId, root: bool) -> Option<&[u8]> {
        let misses = self.table.misses.get(&domain, &self.guard)?;
        if root {
            misses.root.as_deref()
        } else {
            misses.not_found.as_deref()
        }
    }

    /// The entry answering `domain`'s root: the page its settings put there,
    /// when it exists.
    pub fn root_page(&self, domain: DomainId) -> Option<&LinkEntry> {
        let misses = self.table.misses.get(&domain, &self.guard)?;
        self.get(domain, misses.root_page.as_deref()?)
    }

    /// The HTTPS settings of `domain`, if it has any; one atomic load while
    /// no domain has them.
    #[inline]
    pub fn transport(&self, domain: DomainId) -> Option<&Transport> {
        if self.table.transports.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.table.transport.get(&domain, &self.guard)
    }

    /// The entry at (domain, code).
    #[inline]
    pub fn get(&self, domain: DomainId, code: &[u8]) -> Option<&LinkEntry> {
        self.table
            .links
            .get(&EntryKey { domain, code }, &self.guard)
    }
}

/// A domain's HTTPS settings, ready to write.
#[derive(Debug)]
pub struct Transport {
    /// Plain HTTP requests get a 308 to HTTPS.
    pub https_redirect: bool,
    /// The `Strict-Transport-Security` line HTTPS answers carry, CRLF included.
    pub hsts: Option<Box<[u8]>>,
}

/// A domain's miss destinations, as the bytes of a `Location`.
#[derive(Debug)]
struct DomainMisses {
    root: Option<Box<[u8]>>,
    not_found: Option<Box<[u8]>>,
    /// The code whose entry answers `/` (a page's handle).
    root_page: Option<Box<[u8]>>,
}

impl DomainMisses {
    fn new(settings: &DomainSettings) -> Self {
        let bytes = |text: &Option<String>| text.as_deref().map(|t| Box::from(t.as_bytes()));
        Self {
            root: bytes(&settings.root_url),
            not_found: bytes(&settings.not_found_url),
            root_page: bytes(&settings.root_page),
        }
    }
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`.
#[inline]
pub(crate) fn strip_port(host: &[u8]) -> &[u8] {
    if host.first() == Some(&b'[') {
        return match host.iter().position(|&b| b == b']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::LinkState;

    fn record(domain: &str, code: &str, url: &str) -> LinkRecord {
        LinkRecord::new(1, domain, code, url, 0).unwrap()
    }

    #[test]
    fn contains_is_exact_and_ignores_the_default_domain() {
        let table = LinkTable::new(Some("go.example"));
        table.upsert(&record("go.example", "a", "https://one.example/"));
        let key = |domain: &str, code: &str| LinkKey::new(domain, code).unwrap();
        assert!(table.contains(&key("go.example", "a")));
        assert!(!table.contains(&key("go.example", "A")));
        assert!(!table.contains(&key("brand.example", "a")));
        table.remove(&key("go.example", "a"));
        assert!(!table.contains(&key("go.example", "a")));
    }

    #[test]
    fn host_routing_and_default_domain() {
        let table = LinkTable::new(Some("go.example"));
        table.upsert(&record("go.example", "a", "https://one.example/"));
        table.upsert(&record("brand.example", "a", "https://two.example/"));
        let reader = table.reader();
        let brand = reader.domain_for_host(Some(b"Brand.Example:8080")).unwrap();
        assert_eq!(
            reader.get(brand, b"a").unwrap().url(),
            b"https://two.example/"
        );
        let other = reader.domain_for_host(Some(b"127.0.0.1:80")).unwrap();
        assert_eq!(
            reader.get(other, b"a").unwrap().url(),
            b"https://one.example/"
        );
        let missing = reader.domain_for_host(None).unwrap();
        assert_eq!(missing, other);
        assert!(
            reader.get(brand, b"A").is_none(),
            "codes are case-sensitive"
        );
        assert_eq!(reader.domain_id(b"brand.example."), Some(brand));
    }

    #[test]
    fn no_default_domain_means_no_fallback() {
        let table = LinkTable::new(None);
        table.upsert(&record("go.example", "a", "https://one.example/"));
        assert!(
            table
                .reader()
                .domain_for_host(Some(b"other.example"))
                .is_none()
        );
    }

    #[test]
    fn upsert_replaces_and_remove_deletes() {
        let table = LinkTable::new(None);
        let mut link = record("go.example", "a", "https://one.example/");
        table.upsert(&link);
        link.url = "https://two.example/".into();
        link.state = LinkState::Disabled;
        table.upsert(&link);
        assert_eq!(table.len(), 1);
        {
            let reader = table.reader();
            let id = reader.domain_id(b"go.example").unwrap();
            let entry = reader.get(id, b"a").unwrap();
            assert_eq!(entry.url(), b"https://two.example/");
            assert_eq!(entry.state(), LinkState::Disabled);
        }
        table.remove(&link.key());
        assert_eq!(table.len(), 0);
        table.remove(&LinkKey::new("nowhere.example", "a").unwrap());
    }

    #[test]
    fn domain_settings_answer_misses_on_their_own_host() {
        let table = LinkTable::new(Some("go.example"));
        table.upsert(&record("go.example", "a", "https://one.example/"));
        let mut brand = DomainSettings::empty("brand.example");
        brand.root_url = Some("https://www.brand.example/".into());
        table.set_domain(&brand);
        {
            let reader = table.reader();
            let id = reader.domain_for_host(Some(b"brand.example")).unwrap();
            assert_ne!(Some(id), reader.domain_id(b"go.example"));
            assert_eq!(
                reader.miss(id, true),
                Some(&b"https://www.brand.example/"[..])
            );
            assert_eq!(reader.miss(id, false), None);
            let default = reader.domain_for_host(Some(b"other.example")).unwrap();
            assert_eq!(reader.miss(default, true), None);
        }
        table.set_domain(&DomainSettings::empty("brand.example"));
        let reader = table.reader();
        let id = reader.domain_id(b"brand.example").unwrap();
        assert_eq!(reader.miss(id, true), None);
        assert_eq!(table.domains_with_settings(), 0);
    }

    #[test]
    fn hosts_strip_ports() {
        assert_eq!(strip_port(b"a.example:80"), b"a.example");
        assert_eq!(strip_port(b"[::1]:80"), b"[::1]");
        assert_eq!(strip_port(b"a.example"), b"a.example");
    }
}
