//! The lists as one snapshot, and matching a destination against it: a
//! listed host blocks itself and every host under it (`bad.example` blocks
//! `cdn.bad.example`, not `notbad.example`); an address blocks only itself;
//! a threat list's URL blocks that exact URL (compared normalized, without
//! its fragment), or its whole host when `threat_list_match = "host"`.

use std::collections::HashMap;
use std::net::IpAddr;

use ricochet_model::LinkRecord;
use ricochet_model::block::{Block, BlockSource};
use ricochet_model::validate::{self, ValidationError};

/// Why an entry is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub source: BlockSource,
    pub reason: Option<String>,
}

/// Every listed host and URL at one moment. Built whole and swapped in, so a
/// check never sees half a reload.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    /// Host (or address) → why; a host in several lists keeps the first
    /// source in [`BlockSource`] order (API, file, threat list).
    hosts: HashMap<String, Listed>,
    /// Normalized URL without fragment → why (threat list, URL matching).
    urls: HashMap<String, Listed>,
}

impl Lists {
    /// Lists `host` (normalized) unless a source before `listed`'s already did.
    pub fn add_host(&mut self, host: String, listed: Listed) {
        match self.hosts.get(&host) {
            Some(existing) if existing.source <= listed.source => {}
            _ => {
                self.hosts.insert(host, listed);
            }
        }
    }

    /// Lists a normalized URL.
    pub fn add_url(&mut self, url: String, listed: Listed) {
        self.urls
            .entry(without_fragment(&url).to_owned())
            .or_insert(listed);
    }

    /// Adds every entry of `other` (after this one's, so this one's sources
    /// keep their rank).
    pub fn extend(&mut self, other: &Lists) {
        for (host, listed) in &other.hosts {
            self.add_host(host.clone(), listed.clone());
        }
        for (url, listed) in &other.urls {
            self.add_url(url.clone(), listed.clone());
        }
    }

    /// Whether `host` itself is listed.
    pub fn has_host(&self, host: &str) -> bool {
        self.hosts.contains_key(host)
    }

    /// The listed hosts and their reasons, by host.
    pub fn hosts_sorted(&self) -> Vec<(String, Option<String>)> {
        let mut hosts: Vec<_> = self
            .hosts
            .iter()
            .map(|(host, listed)| (host.clone(), listed.reason.clone()))
            .collect();
        hosts.sort();
        hosts
    }

    /// Number of hosts and of URLs listed.
    pub fn len(&self) -> (usize, usize) {
        (self.hosts.len(), self.urls.len())
    }

    /// What blocks `destination`, if anything.
    pub fn check(&self, destination: &str) -> Option<Block> {
        let host = validate::destination_host(destination)?;
        if let Some(listed) = self.host_listing(&host) {
            return Some(block(host, listed));
        }
        let listed = self.urls.get(without_fragment(destination))?;
        Some(block(host, listed))
    }

    /// What blocks any of `link`'s destinations (the first one blocked, in
    /// the order [`LinkRecord::destinations`] gives), if anything.
    pub fn verdict(&self, link: &LinkRecord) -> Option<Block> {
        if self.hosts.is_empty() && self.urls.is_empty() {
            return None;
        }
        link.destinations()
            .into_iter()
            .find_map(|(_, destination)| self.check(destination))
    }

    /// `host` or the nearest listed domain above it.
    fn host_listing(&self, host: &str) -> Option<&Listed> {
        if let Some(listed) = self.hosts.get(host) {
            return Some(listed);
        }
        if is_address(host) {
            return None;
        }
        let mut rest = host;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(listed) = self.hosts.get(parent) {
                return Some(listed);
            }
            rest = parent;
        }
        None
    }
}

fn block(host: String, listed: &Listed) -> Block {
    Block {
        host,
        source: listed.source,
        reason: listed.reason.clone(),
    }
}

fn without_fragment(url: &str) -> &str {
    url.split_once('#').map_or(url, |(before, _)| before)
}

/// Whether `host` is an IP address (IPv6 in brackets, as URLs write it).
fn is_address(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.parse::<IpAddr>().is_ok()
}

/// The form a host is listed and matched in: an IP address as URLs write it
/// (IPv6 in brackets), a domain lowercase with IDN labels in punycode.
pub fn normalize_host(raw: &str) -> Result<String, ValidationError> {
    let raw = raw.trim();
    let bare = raw
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(raw);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(address)) => Ok(address.to_string()),
        Ok(IpAddr::V6(address)) => Ok(format!("[{address}]")),
        Err(_) => validate::normalize_domain(raw),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(source: BlockSource) -> Listed {
        Listed {
            source,
            reason: Some(source.as_str().to_owned()),
        }
    }

    #[test]
    fn a_host_blocks_itself_and_its_subdomains_only() {
        let mut lists = Lists::default();
        lists.add_host("bad.example".into(), listed(BlockSource::Api));
        let blocked = lists.check("https://cdn.Bad.example:8443/x").unwrap();
        assert_eq!(blocked.host, "cdn.bad.example");
        assert_eq!(blocked.source, BlockSource::Api);
        assert!(lists.check("https://bad.example/").is_some());
        assert!(lists.check("https://notbad.example/").is_none());
        assert!(lists.check("https://bad.example.org/").is_none());
        assert!(lists.check("https://example/").is_none());
    }

    #[test]
    fn addresses_match_exactly() {
        let mut lists = Lists::default();
        lists.add_host(
            normalize_host("10.0.0.1").unwrap(),
            listed(BlockSource::File),
        );
        lists.add_host(
            normalize_host("2001:DB8::1").unwrap(),
            listed(BlockSource::File),
        );
        lists.add_host("0.1".into(), listed(BlockSource::File));
        assert!(lists.check("http://10.0.0.1:8080/a").is_some());
        assert!(lists.check("http://[2001:db8::1]/").is_some());
        // "0.1" is not a parent of an address.
        assert!(lists.check("http://10.0.0.2/").is_none());
        assert!(lists.check("http://20.0.0.1/").is_none());
    }

    #[test]
    fn urls_match_exactly_without_fragment() {
        let mut lists = Lists::default();
        let url = validate::validate_destination("http://files.example/a/b.exe").unwrap();
        lists.add_url(url, listed(BlockSource::ThreatList));
        let blocked = lists.check("http://files.example/a/b.exe#top").unwrap();
        assert_eq!(blocked.source, BlockSource::ThreatList);
        assert!(lists.check("http://files.example/a/").is_none());
        assert!(lists.check("http://files.example/a/b.exe?x=1").is_none());
    }

    #[test]
    fn the_api_outranks_the_file_and_the_threat_list() {
        let mut lists = Lists::default();
        lists.add_host("bad.example".into(), listed(BlockSource::ThreatList));
        lists.add_host("bad.example".into(), listed(BlockSource::Api));
        lists.add_host("bad.example".into(), listed(BlockSource::File));
        let blocked = lists.check("https://bad.example/").unwrap();
        assert_eq!(blocked.source, BlockSource::Api);
    }

    #[test]
    fn a_verdict_looks_at_every_destination() {
        let mut lists = Lists::default();
        let mut link = LinkRecord::new(1, "go.example", "abc", "https://good.example/", 0).unwrap();
        assert_eq!(lists.verdict(&link), None);
        lists.add_host("apps.bad.example".into(), listed(BlockSource::Api));
        assert_eq!(lists.verdict(&link), None);
        link.extensions.android = Some("https://apps.bad.example/store".into());
        let blocked = lists.verdict(&link).unwrap();
        assert_eq!(blocked.host, "apps.bad.example");
        assert_eq!(blocked.reason.as_deref(), Some("api"));
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(
            normalize_host(" Bücher.Example ").unwrap(),
            "xn--bcher-kva.example"
        );
        assert_eq!(normalize_host("[::1]").unwrap(), "[::1]");
        assert_eq!(normalize_host("::1").unwrap(), "[::1]");
        assert!(normalize_host("https://bad.example/").is_err());
        assert!(normalize_host("").is_err());
    }
}
