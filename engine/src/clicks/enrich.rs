//! Enrichment in the click actor, off the request path: user agent into
//! device type, browser, OS and a bot flag (uap-core regexes through
//! `ua-parser`, `isbot` for tools, a list of link-preview fetchers; results
//! cached by UA string), country and city from a MaxMind-format database
//! (GeoIP2 or the flat DB-IP lite layout; answers cached by /24 or /48),
//! referrer host, UTM fields. The IP is used for the lookup and dropped.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use foldhash::fast::RandomState;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};

use super::event::ClickEvent;

/// Fetchers that unfurl links in chats and feeds: counted as bots.
const PREVIEW_FETCHERS: &[&str] = &[
    "slackbot",
    "slack-imgproxy",
    "twitterbot",
    "facebookexternalhit",
    "facebookcatalog",
    "whatsapp",
    "linkedinbot",
    "discordbot",
    "telegrambot",
    "skypeuripreview",
    "pinterestbot",
    "redditbot",
    "embedly",
    "applebot",
    "mastodon",
    "iframely",
    "vkshare",
    "google-pagerenderer",
];

/// Longest stored value of a dimension.
pub const MAX_VALUE: usize = 256;
/// UA strings whose parse is cached per actor.
const UA_CACHE: usize = 20_000;
/// Subnets whose GeoIP answer is cached per actor.
const PLACE_CACHE: usize = 4_096;
/// Distinct values (referrer hosts, UTM values, countries, cities) shared per actor.
const VALUE_CACHE: usize = 4_096;
/// GeoIP answers are cached per IPv4 /24 …
const SUBNET_V4_BITS: u8 = 24;
/// … and per IPv6 /48.
const SUBNET_V6_BITS: u8 = 48;

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

/// A parsed user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub bot: bool,
    pub device: Arc<str>,
    pub browser: Arc<str>,
    pub os: Arc<str>,
}

/// The shared, compiled user-agent rules (built once: compiling takes a while).
struct AgentRules {
    extractor: ua_parser::Extractor<'static>,
    tools: isbot::Bots,
}

fn rules() -> &'static AgentRules {
    static RULES: OnceLock<AgentRules> = OnceLock::new();
    RULES.get_or_init(|| {
        static DATA: &str = include_str!("../../data/uap-regexes.json");
        let regexes: ua_parser::Regexes<'static> =
            serde_json::from_str(DATA).expect("the embedded uap-core regexes parse");
        AgentRules {
            extractor: ua_parser::Extractor::try_from(regexes)
                .expect("the embedded uap-core regexes compile"),
            tools: isbot::Bots::default(),
        }
    })
}

/// Classifies a user agent (uncached).
pub fn classify(user_agent: &str) -> Agent {
    let rules = rules();
    let (browser, os, device) = rules.extractor.extract(user_agent);
    let lower = user_agent.to_ascii_lowercase();
    let device_family = device
        .as_ref()
        .map(|d| d.device.as_ref())
        .unwrap_or("Other");
    let bot = user_agent.trim().is_empty()
        || device_family == "Spider"
        || PREVIEW_FETCHERS.iter().any(|name| lower.contains(name))
        || rules.tools.is_bot(user_agent);
    let os_name = os.as_ref().map(|o| o.os.as_ref()).unwrap_or("Other");
    let device_type = if bot {
        "bot"
    } else if device_family.contains("iPad")
        || lower.contains("tablet")
        || (os_name == "Android" && !lower.contains("mobile"))
    {
        "tablet"
    } else if matches!(os_name, "iOS" | "Android" | "Windows Phone") || lower.contains("mobile") {
        "mobile"
    } else {
        "desktop"
    };
    Agent {
        bot,
        device: Arc::from(device_type),
        browser: Arc::from(
            browser
                .map(|b| b.family.into_owned())
                .unwrap_or_else(|| "Other".to_owned())
                .as_str(),
        ),
        os: Arc::from(os_name),
    }
}

#[derive(Deserialize)]
struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

/// The city in either layout: flat DB-IP `"city": "Berlin"` or GeoIP2
/// `"city": {"names": {"en": "Berlin", …}, …}`. Read by hand: an untagged
/// enum would first copy the whole value into a buffer, on every lookup.
struct CityName<'a>(Option<&'a str>);

impl<'de: 'a, 'a> Deserialize<'de> for CityName<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CityVisitor<'a>(std::marker::PhantomData<&'a str>);

        impl<'de: 'a, 'a> Visitor<'de> for CityVisitor<'a> {
            type Value = CityName<'a>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a city name or a map with `names`")
            }

            fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Self::Value, E> {
                Ok(CityName(Some(name)))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut name = None;
                while let Some(key) = map.next_key::<&'de str>()? {
                    if key == "names" {
                        name = map.next_value::<Option<Names<'a>>>()?.and_then(|n| n.en);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CityName(name))
            }
        }

        deserializer.deserialize_any(CityVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct CountryField<'a> {
    iso_code: Option<&'a str>,
}

/// The fields read from either database layout.
#[derive(Deserialize)]
struct GeoRecord<'a> {
    #[serde(borrow)]
    country: Option<CountryField<'a>>,
    country_code: Option<&'a str>,
    #[serde(borrow)]
    city: Option<CityName<'a>>,
}

/// A database answer, borrowed from the database.
#[derive(Debug, Default)]
struct Answer<'a> {
    /// Country code as stored (not yet uppercased).
    country: Option<&'a str>,
    /// City name, clipped.
    city: Option<&'a str>,
    /// Whether the database network the address fell in (with data or
    /// without) holds the address's whole [`Subnet`], so every address of
    /// the subnet gets this same answer.
    holds_subnet: bool,
}

/// A MaxMind-format database.
pub struct GeoDatabase {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl std::fmt::Debug for GeoDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDatabase").finish_non_exhaustive()
    }
}

impl GeoDatabase {
    /// Reads an `.mmdb` file (GeoIP2 or DB-IP lite layout).
    pub fn open(path: &std::path::Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, String> {
        maxminddb::Reader::from_source(bytes)
            .map(|reader| Self { reader })
            .map_err(|e| format!("not a MaxMind-format database: {e}"))
    }

    /// Country code and city of `ip`, when the database knows them (uncached).
    pub fn lookup(&self, ip: IpAddr) -> (Option<String>, Option<String>) {
        let answer = self.answer(ip);
        (
            answer.country.map(|c| c.to_ascii_uppercase()),
            answer.city.map(str::to_owned),
        )
    }

    fn answer(&self, ip: IpAddr) -> Answer<'_> {
        let Ok(result) = self.reader.lookup(ip) else {
            return Answer::default();
        };
        // The prefix length the database reports for the network found: a
        // /24 may be split into smaller networks with different records.
        let holds_subnet = match (ip, result.network()) {
            (IpAddr::V4(_), Ok(network)) => network.is_ipv4() && network.prefix() <= SUBNET_V4_BITS,
            (IpAddr::V6(_), Ok(network)) => network.is_ipv6() && network.prefix() <= SUBNET_V6_BITS,
            (_, Err(_)) => false,
        };
        let Ok(Some(record)) = result.decode::<GeoRecord<'_>>() else {
            return Answer {
                holds_subnet,
                ..Answer::default()
            };
        };
        Answer {
            country: record
                .country_code
                .or(record.country.and_then(|c| c.iso_code)),
            city: record
                .city
                .and_then(|c| c.0)
                .filter(|name| !name.is_empty())
                .map(clip),
            holds_subnet,
        }
    }
}

/// The unit GeoIP answers are cached by: the /24 of an IPv4 address, the /48
/// of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subnet {
    V4(u32),
    V6(u64),
}

impl Subnet {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4) >> (32 - SUBNET_V4_BITS)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> (128 - SUBNET_V6_BITS)) as u64),
        }
    }
}

/// Country code and city of a click.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Place {
    country: Option<Arc<str>>,
    city: Option<Arc<str>>,
}

/// A GeoIP database and one actor's answers by subnet.
struct Geo {
    database: Arc<GeoDatabase>,
    /// Client addresses: a seeded hasher.
    places: HashMap<Subnet, Place, RandomState>,
}

impl Geo {
    fn place(&mut self, ip: IpAddr, values: &mut SharedValues) -> Place {
        let subnet = Subnet::of(ip);
        if let Some(place) = self.places.get(&subnet) {
            return place.clone();
        }
        let answer = self.database.answer(ip);
        let place = Place {
            country: answer.country.map(|c| values.share(&ascii_uppercase(c))),
            city: answer.city.map(|c| values.share(c)),
        };
        if answer.holds_subnet {
            if self.places.len() >= PLACE_CACHE {
                self.places.clear();
            }
            self.places.insert(subnet, place.clone());
        }
        place
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
        enriched
    }
}

/// Cuts `text` to at most [`MAX_VALUE`] bytes on a character boundary.
pub fn clip(text: &str) -> &str {
    if text.len() <= MAX_VALUE {
        return text;
    }
    let mut end = MAX_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` in ASCII lower case, copied only when it has upper-case letters.
fn ascii_lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// `text` in ASCII upper case, copied only when it has lower-case letters.
fn ascii_uppercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(text.to_ascii_uppercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// The host of a Referer header, lowercased, without `www.`; `None` when
/// absent or not an http(s) URL.
pub fn referrer_host(referer: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(referer).ok()?.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?.trim_end_matches('.');
    let host = match host.as_bytes().get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"www.") => &host[4..],
        _ => host,
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    valid.then(|| ascii_lowercase(host))
}

/// `utm_source`, `utm_medium` and `utm_campaign` from a query string,
/// percent-decoded, clipped; borrowed from the query unless decoding changed
/// them.
pub fn utm_fields(query: &[u8]) -> impl Iterator<Item = (&'static str, Cow<'_, str>)> {
    query.split(|&b| b == b'&').filter_map(|pair| {
        let at = pair.iter().position(|&b| b == b'=')?;
        let name = match &pair[..at] {
            b"utm_source" => "utm_source",
            b"utm_medium" => "utm_medium",
            b"utm_campaign" => "utm_campaign",
            _ => return None,
        };
        let value = match percent_decode(&pair[at + 1..]) {
            Cow::Borrowed(text) => Cow::Borrowed(clip(text.trim())),
            Cow::Owned(text) => {
                let kept = clip(text.trim());
                if kept.len() == text.len() {
                    Cow::Owned(text)
                } else {
                    Cow::Owned(kept.to_owned())
                }
            }
        };
        let keep = !value.is_empty() && !value.chars().any(char::is_control);
        keep.then_some((name, value))
    })
}

/// `input` with `%XX` escapes decoded and `+` as a space; borrowed when it
/// has neither and is valid UTF-8.
fn percent_decode(input: &[u8]) -> Cow<'_, str> {
    if !input.iter().any(|&b| matches!(b, b'%' | b'+')) {
        return String::from_utf8_lossy(input);
    }
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if byte == b'%'
            && let Some(hex) = input.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(value) = u8::from_str_radix(text, 16)
        {
            bytes.push(value);
            i += 3;
            continue;
        }
        bytes.push(if byte == b'+' { b' ' } else { byte });
        i += 1;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_are_classified() {
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                false,
                "desktop",
                "Chrome",
                "Windows",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                false,
                "mobile",
                "Mobile Safari",
                "iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
                false,
                "mobile",
                "Chrome Mobile",
                "Android",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
                false,
                "tablet",
                "Mobile Safari",
                "iOS",
            ),
            (
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
                true,
                "bot",
                "Googlebot",
                "Other",
            ),
            (
                "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                true,
                "bot",
                "",
                "",
            ),
            ("Twitterbot/1.0", true, "bot", "", ""),
            (
                "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
                true,
                "bot",
                "",
                "",
            ),
            ("WhatsApp/2.23.20.0 A", true, "bot", "", ""),
            (
                "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
                true,
                "bot",
                "",
                "",
            ),
            ("curl/8.4.0", true, "bot", "", ""),
            ("", true, "bot", "", ""),
        ];
        for (ua, bot, device, browser, os) in cases {
            let agent = classify(ua);
            assert_eq!(agent.bot, bot, "{ua}");
            assert_eq!(&*agent.device, device, "{ua}");
            if !browser.is_empty() {
                assert_eq!(&*agent.browser, browser, "{ua}");
                assert_eq!(&*agent.os, os, "{ua}");
            }
        }
    }

    #[test]
    fn referrers_and_utm() {
        assert_eq!(
            referrer_host(b"https://www.Example.com:443/path?q=1").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            referrer_host(b"http://user@news.example.org/").as_deref(),
            Some("news.example.org")
        );
        assert_eq!(referrer_host(b"android-app://com.slack"), None);
        assert_eq!(referrer_host(b""), None);
        assert_eq!(referrer_host(b"https://bad host/"), None);
        assert_eq!(
            referrer_host(b"https://WWW.Example.COM./").as_deref(),
            Some("example.com")
        );
        assert!(matches!(
            referrer_host(b"https://news.example.org/"),
            Some(Cow::Borrowed("news.example.org"))
        ));
        let utm = |query: &[u8]| -> Vec<(&str, String)> {
            utm_fields(query)
                .map(|(name, value)| (name, value.into_owned()))
                .collect()
        };
        assert_eq!(
            utm(b"a=1&utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale&utm_source2=x"),
            vec![
                ("utm_source", "news letter".to_owned()),
                ("utm_medium", "email".to_owned()),
                ("utm_campaign", "spring sale".to_owned())
            ]
        );
        assert_eq!(utm(b"utm_source=%0a&utm_medium="), vec![]);
        assert_eq!(
            utm(b"utm_source=%E2%82%AC+&utm_medium=%FF&utm_campaign=%zz"),
            vec![
                ("utm_source", "\u{20ac}".to_owned()),
                ("utm_medium", "\u{fffd}".to_owned()),
                ("utm_campaign", "%zz".to_owned())
            ]
        );
        let long = format!("utm_source={}", "x".repeat(1000));
        assert_eq!(utm(long.as_bytes())[0].1.len(), MAX_VALUE);
        let long = format!("utm_source=%20{}", "x".repeat(1000));
        assert_eq!(utm(long.as_bytes())[0].1.len(), MAX_VALUE);
    }

    #[test]
    fn geo_lookup_reads_both_layouts_and_drops_nothing_it_should_keep() {
        for geoip2 in [false, true] {
            let bytes = crate::test_util::geo_database(
                geoip2,
                &[
                    ("81.2.69.0/24", "GB", "London"),
                    ("2001:db8::/32", "de", "Berlin"),
                ],
            );
            let geo = Arc::new(GeoDatabase::from_bytes(bytes).unwrap());
            assert_eq!(
                geo.lookup("81.2.69.160".parse().unwrap()),
                (Some("GB".into()), Some("London".into())),
                "geoip2 layout: {geoip2}"
            );
            assert_eq!(
                geo.lookup("2001:db8::1".parse().unwrap()),
                (Some("DE".into()), Some("Berlin".into()))
            );
            assert_eq!(geo.lookup("10.0.0.1".parse().unwrap()), (None, None));
            let mut enricher = Enricher::new(EnrichSettings::default(), Some(geo));
            let event =
                ClickEvent::new(1, 0, Some("81.2.69.1".parse().unwrap()), b"", b"", b"", b"");
            let enriched = enricher.enrich(&event);
            assert_eq!(enriched.country.as_deref(), Some("GB"));
            assert!(enriched.bot, "no user agent: a bot");
            assert_eq!(enriched.device.as_deref(), Some("bot"));
        }
        assert!(GeoDatabase::from_bytes(b"not a database".to_vec()).is_err());
    }

    #[test]
    fn enrichment_respects_settings_and_caches() {
        let event = ClickEvent::new(
            1,
            0,
            None,
            b"curl/8.4.0",
            b"https://t.co/x",
            b"",
            b"utm_source=tw",
        );
        let mut full = Enricher::new(EnrichSettings::default(), None);
        let enriched = full.enrich(&event);
        assert!(enriched.bot);
        assert_eq!(enriched.referrer.as_deref(), Some("t.co"));
        assert_eq!(enriched.utm_source.as_deref(), Some("tw"));
        assert_eq!(full.agents.len(), 1);
        let again = full.enrich(&event);
        assert_eq!(again, enriched);
        assert!(
            Arc::ptr_eq(
                again.referrer.as_ref().unwrap(),
                enriched.referrer.as_ref().unwrap()
            ),
            "repeated values are shared, not copied"
        );
        let mut lean = Enricher::new(
            EnrichSettings {
                geo: false,
                user_agent: false,
                referrer: false,
            },
            None,
        );
        let enriched = lean.enrich(&event);
        assert!(enriched.bot, "bots stay apart even without UA collection");
        assert_eq!((enriched.device, enriched.referrer), (None, None));
    }

    /// The GeoIP databases the enricher is tested on: the flat and the GeoIP2
    /// layout in an IPv6 database (IPv4 aliased, as MaxMind ships them), and
    /// an IPv4-only one (IPv6 entries left out).
    fn databases(entries: &[(&str, &str, &str)]) -> Vec<Arc<GeoDatabase>> {
        let mut ipv4_only = mmdb_writer::Writer::builder("dbip-city-lite")
            .ip_version(mmdb_writer::IpVersion::V4)
            .build();
        for &(network, country, city) in entries.iter().filter(|(n, _, _)| !n.contains(':')) {
            let network: mmdb_writer::ipnet::IpNet = network.parse().unwrap();
            let record =
                std::collections::BTreeMap::from([("country_code", country), ("city", city)]);
            ipv4_only.insert(network, &record).unwrap();
        }
        [
            crate::test_util::geo_database(false, entries),
            crate::test_util::geo_database(true, entries),
            ipv4_only.to_bytes().unwrap(),
        ]
        .into_iter()
        .map(|bytes| Arc::new(GeoDatabase::from_bytes(bytes).unwrap()))
        .collect()
    }

    fn clicked_from(ip: IpAddr) -> ClickEvent {
        ClickEvent::new(1, 0, Some(ip), b"", b"", b"", b"")
    }

    /// Country and city the enricher finds for `ip`, as `GeoDatabase::lookup`
    /// returns them.
    fn place(enricher: &mut Enricher, ip: &str) -> (Option<String>, Option<String>) {
        let enriched = enricher.enrich(&clicked_from(ip.parse().unwrap()));
        (
            enriched.country.as_deref().map(str::to_owned),
            enriched.city.as_deref().map(str::to_owned),
        )
    }

    fn cached_subnets(enricher: &Enricher) -> usize {
        enricher.geo.as_ref().map_or(0, |geo| geo.places.len())
    }

    fn answer(country: &str, city: &str) -> (Option<String>, Option<String>) {
        (Some(country.to_owned()), Some(city.to_owned()))
    }

    #[test]
    fn cached_places_equal_uncached_lookups() {
        let entries = [
            ("81.0.0.0/8", "gb", "Manchester"),
            ("81.2.0.0/16", "GB", "London"),
            ("81.2.69.0/24", "GB", "Croydon"),
            ("81.2.69.128/25", "FR", "Paris"),
            ("81.2.69.192/28", "DE", "Berlin"),
            ("81.2.69.200/32", "IT", "Rome"),
            ("81.2.70.0/23", "ES", "Madrid"),
            ("2001:db8::/32", "de", "Berlin"),
            ("2001:db8:1::/48", "AT", "Wien"),
            ("2001:db8:2:1::/64", "CH", "Z\u{fc}rich"),
            ("2001:db8:3::/47", "NL", "Amsterdam"),
        ];
        // Addresses bunched in a few subnets, so most lookups after the
        // first of each subnet can come from the cache.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let addresses: Vec<IpAddr> = (0..4_000)
            .map(|_| {
                let r = next();
                match r % 4 {
                    0 => IpAddr::from([81, 2, 68 + (r >> 8) as u8 % 4, (r >> 16) as u8]),
                    1 => IpAddr::from([
                        81 + (r >> 8) as u8 % 2,
                        (r >> 16) as u8 % 4,
                        (r >> 24) as u8,
                        (r >> 32) as u8,
                    ]),
                    2 => IpAddr::from(std::net::Ipv6Addr::new(
                        0x2001,
                        0xdb8 + (r >> 8) as u16 % 2,
                        (r >> 16) as u16 % 5,
                        (r >> 24) as u16 % 3,
                        0,
                        0,
                        0,
                        (r >> 32) as u16,
                    )),
                    _ => IpAddr::from([10, 0, (r >> 8) as u8 % 2, (r >> 16) as u8]),
                }
            })
            .collect();
        for geo in databases(&entries) {
            let mut enricher = Enricher::new(EnrichSettings::default(), Some(geo.clone()));
            for &ip in &addresses {
                let expected = geo.lookup(ip);
                let enriched = enricher.enrich(&clicked_from(ip));
                let found = (
                    enriched.country.as_deref().map(str::to_owned),
                    enriched.city.as_deref().map(str::to_owned),
                );
                assert_eq!(found, expected, "{ip}");
            }
            assert!(cached_subnets(&enricher) > 0);
            assert_eq!(place(&mut enricher, "81.1.2.3"), answer("GB", "Manchester"));
        }
    }

    #[test]
    fn a_network_smaller_than_a_subnet_is_not_shared_across_it() {
        let entries = [
            ("81.2.69.0/24", "GB", "London"),
            ("81.2.69.128/25", "FR", "Paris"),
            ("81.3.0.0/16", "DE", "Berlin"),
        ];
        for geo in databases(&entries) {
            // The /25 first, then the rest of its /24, and the other way round.
            for order in [["81.2.69.200", "81.2.69.1"], ["81.2.69.1", "81.2.69.200"]] {
                let mut enricher = Enricher::new(EnrichSettings::default(), Some(geo.clone()));
                for _ in 0..2 {
                    for ip in order {
                        let expected = if ip.ends_with(".200") {
                            answer("FR", "Paris")
                        } else {
                            answer("GB", "London")
                        };
                        assert_eq!(place(&mut enricher, ip), expected, "{ip}");
                    }
                }
                assert_eq!(cached_subnets(&enricher), 0, "a split /24 is not cached");
                assert_eq!(place(&mut enricher, "81.3.1.1"), answer("DE", "Berlin"));
                assert_eq!(cached_subnets(&enricher), 1, "a /24 inside a /16 is");
                assert_eq!(place(&mut enricher, "81.3.1.254"), answer("DE", "Berlin"));
                assert_eq!(place(&mut enricher, "81.2.69.130"), answer("FR", "Paris"));
                assert_eq!(place(&mut enricher, "81.2.69.127"), answer("GB", "London"));
                assert_eq!(cached_subnets(&enricher), 1);
            }
        }
    }

    #[test]
    fn ipv6_places_are_cached_per_48() {
        let entries = [
            ("2001:db8::/32", "DE", "Berlin"),
            ("2001:db8:2:1::/64", "CH", "Z\u{fc}rich"),
        ];
        let geo = databases(&entries).remove(0);
        let mut enricher = Enricher::new(EnrichSettings::default(), Some(geo));
        assert_eq!(
            place(&mut enricher, "2001:db8:5::1"),
            answer("DE", "Berlin")
        );
        assert_eq!(cached_subnets(&enricher), 1);
        assert_eq!(
            place(&mut enricher, "2001:db8:5:ffff::2"),
            answer("DE", "Berlin")
        );
        assert_eq!(cached_subnets(&enricher), 1, "the same /48");
        // 2001:db8:2::/48 holds a /64 of its own: never cached.
        assert_eq!(
            place(&mut enricher, "2001:db8:2:1::5"),
            answer("CH", "Z\u{fc}rich")
        );
        assert_eq!(
            place(&mut enricher, "2001:db8:2:2::5"),
            answer("DE", "Berlin")
        );
        assert_eq!(
            place(&mut enricher, "2001:db8:2:1::6"),
            answer("CH", "Z\u{fc}rich")
        );
        assert_eq!(cached_subnets(&enricher), 1);
        // An address the database does not know, in a network without data
        // wider than its /48: the empty answer is cached too.
        assert_eq!(place(&mut enricher, "2001:db9::1"), (None, None));
        assert_eq!(place(&mut enricher, "2001:db9::2"), (None, None));
        assert_eq!(cached_subnets(&enricher), 2);
    }

    #[test]
    fn caches_stay_bounded() {
        for geo in databases(&[("1.0.0.0/8", "AU", "Sydney")]) {
            let mut enricher = Enricher::new(EnrichSettings::default(), Some(geo));
            for i in 0..PLACE_CACHE as u32 + 100 {
                let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0100_0007 | (i << 8)));
                let enriched = enricher.enrich(&clicked_from(ip));
                assert_eq!(enriched.country.as_deref(), Some("AU"), "{ip}");
                assert!(cached_subnets(&enricher) <= PLACE_CACHE);
            }
            assert!(cached_subnets(&enricher) > 0);
        }
        let mut enricher = Enricher::new(EnrichSettings::default(), None);
        for i in 0..VALUE_CACHE + 100 {
            let query = format!("utm_source=source{i}");
            let event = ClickEvent::new(1, 0, None, b"", b"", b"", query.as_bytes());
            let expected = format!("source{i}");
            assert_eq!(
                enricher.enrich(&event).utm_source.as_deref(),
                Some(expected.as_str())
            );
            assert!(enricher.values.values.len() <= VALUE_CACHE);
        }
    }
}
