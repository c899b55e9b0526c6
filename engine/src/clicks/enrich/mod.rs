//! Enrichment in the click actor, off the request path: user agent into
//! device type, browser, OS and a bot flag (uap-core regexes through
//! `ua-parser`, `isbot` for tools, a list of link-preview fetchers; results
//! cached by UA string), country and city from a MaxMind-format database
//! (GeoIP2 or the flat DB-IP lite layout; answers cached by /24 or /48),
//! referrer host, UTM fields. The IP is used for the lookup and dropped.
//!
//! - `agent`: user agents into device, browser, OS and a bot flag.
//! - `geo`: country and city from a MaxMind-format database, cached by subnet.
//! - `text`: referrer hosts, UTM fields, clipping and case.

mod agent;
mod geo;
#[cfg(test)]
mod tests;
mod text;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use foldhash::fast::RandomState;
use ricochet_model::behaviour::Chosen;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::event::ClickEvent;

pub use self::agent::{Agent, classify};
use self::geo::Geo;
pub use self::geo::{GeoDatabase, Subnet};
use self::text::*;
pub use self::text::{clip, referrer_host, utm_fields};

/// Longest stored value of a dimension.
pub const MAX_VALUE: usize = 256;
/// UA strings whose parse is cached per actor.
const UA_CACHE: usize = 20_000;
/// Subnets whose GeoIP answer is cached per actor.
const PLACE_CACHE: usize = 4_096;
/// Distinct values (referrer hosts, UTM values, countries, cities) shared per actor.
const VALUE_CACHE: usize = 4_096;

/// What a click is counted by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enriched {
    pub bot: bool,
    pub device: Option<Arc<str>>,
    pub browser: Option<Arc<str>>,
    pub os: Option<Arc<str>>,
    pub country: Option<Arc<str>>,
    pub city: Option<Arc<str>>,
    pub referrer: Option<Arc<str>>,
    pub utm_source: Option<Arc<str>>,
    pub utm_medium: Option<Arc<str>>,
    pub utm_campaign: Option<Arc<str>>,
    /// Which of the link's destinations answered (links with rules or variants).
    pub destination: Option<Arc<str>>,
}

/// What enrichment collects.
#[derive(Debug, Clone)]
pub struct EnrichSettings {
    pub geo: bool,
    pub user_agent: bool,
    pub referrer: bool,
}

impl Default for EnrichSettings {
    fn default() -> Self {
        Self {
            geo: true,
            user_agent: true,
            referrer: true,
        }
    }
}

/// One shared copy of each value seen recently, so a repeated referrer host,
/// UTM value or place costs no allocation.
#[derive(Default)]
struct SharedValues {
    /// Client-supplied text: a seeded hasher.
    values: HashSet<Arc<str>, RandomState>,
}

impl SharedValues {
    fn share(&mut self, value: &str) -> Arc<str> {
        if let Some(shared) = self.values.get(value) {
            return shared.clone();
        }
        if self.values.len() >= VALUE_CACHE {
            self.values.clear();
        }
        let shared = Arc::<str>::from(value);
        self.values.insert(shared.clone());
        shared
    }
}

/// One actor's enricher, with its own caches (no locks: one per actor).
pub struct Enricher {
    settings: EnrichSettings,
    geo: Option<Geo>,
    /// Parsed user agents by raw UA bytes (client-supplied: a seeded hasher).
    agents: HashMap<Box<[u8]>, Agent, RandomState>,
    /// The agent of requests without a user agent (tools, health checks,
    /// load generators), found without a lookup.
    no_agent: Agent,
    values: SharedValues,
    /// Destination labels by packed value: a few per link at most.
    destinations: HashMap<u16, Arc<str>, RandomState>,
}

impl std::fmt::Debug for Enricher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enricher").finish_non_exhaustive()
    }
}

impl Enricher {
    pub fn new(settings: EnrichSettings, geo: Option<Arc<GeoDatabase>>) -> Self {
        Self {
            settings,
            geo: geo.map(|database| Geo {
                database,
                places: HashMap::default(),
            }),
            agents: HashMap::default(),
            no_agent: classify(""),
            values: SharedValues::default(),
            destinations: HashMap::default(),
        }
    }

    /// Classifies a user agent, from the cache when seen before.
    pub fn agent(&mut self, user_agent: &str) -> Agent {
        self.agent_of(user_agent.as_bytes())
    }

    fn agent_of(&mut self, user_agent: &[u8]) -> Agent {
        if user_agent.is_empty() {
            return self.no_agent.clone();
        }
        if let Some(agent) = self.agents.get(user_agent) {
            return agent.clone();
        }
        let agent = classify(&String::from_utf8_lossy(user_agent));
        if self.agents.len() >= UA_CACHE {
            self.agents.clear();
        }
        self.agents.insert(Box::from(user_agent), agent.clone());
        agent
    }

    /// Everything a click is counted by.
    pub fn enrich(&mut self, event: &ClickEvent) -> Enriched {
        // The bot flag is kept even when user-agent collection is off:
        // bots are always counted apart.
        let agent = self.agent_of(event.user_agent());
        let mut enriched = Enriched {
            bot: agent.bot,
            ..Enriched::default()
        };
        if self.settings.user_agent {
            enriched.device = Some(agent.device);
            enriched.browser = Some(agent.browser);
            enriched.os = Some(agent.os);
        }
        if self.settings.geo
            && let (Some(geo), Some(ip)) = (&mut self.geo, event.ip)
        {
            let place = geo.place(ip, &mut self.values);
            enriched.country = place.country;
            enriched.city = place.city;
        }
        if self.settings.referrer {
            enriched.referrer = referrer_host(event.referer()).map(|host| self.values.share(&host));
        }
        for (name, value) in utm_fields(event.query()) {
            let value = Some(self.values.share(&value));
            match name {
                "utm_source" => enriched.utm_source = value,
                "utm_medium" => enriched.utm_medium = value,
                "utm_campaign" => enriched.utm_campaign = value,
                _ => {}
            }
        }
        if event.destination != Chosen::NONE {
            enriched.destination = self.destination(event.destination);
        }
        enriched
    }

    fn destination(&mut self, packed: u16) -> Option<Arc<str>> {
        if let Some(label) = self.destinations.get(&packed) {
            return Some(label.clone());
        }
        let label: Arc<str> = Arc::from(Chosen::unpack(packed)?.label());
        if self.destinations.len() >= VALUE_CACHE {
            self.destinations.clear();
        }
        self.destinations.insert(packed, label.clone());
        Some(label)
    }
}
