//! Enrichment in the click actor, off the request path: user agent into
//! device type, browser, OS and a bot flag (uap-core regexes through
//! `ua-parser`, `isbot` for tools, a list of link-preview fetchers; results
//! cached by UA string), country and city from a MaxMind-format database
//! (GeoIP2 or the flat DB-IP lite layout), referrer host, UTM fields. The IP
//! is used for the lookup and dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

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

/// What a click is counted by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enriched {
    pub bot: bool,
    pub device: Option<Arc<str>>,
    pub browser: Option<Arc<str>>,
    pub os: Option<Arc<str>>,
    pub country: Option<String>,
    pub city: Option<String>,
    pub referrer: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
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

#[derive(Deserialize)]
#[serde(untagged)]
enum CityField<'a> {
    /// Flat DB-IP layout: `"city": "Berlin"`.
    Flat(&'a str),
    /// GeoIP2 layout: `"city": {"names": {"en": "Berlin"}}`.
    Nested {
        #[serde(borrow)]
        names: Option<Names<'a>>,
    },
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
    city: Option<CityField<'a>>,
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

    /// Country code and city of `ip`, when the database knows them.
    pub fn lookup(&self, ip: IpAddr) -> (Option<String>, Option<String>) {
        let Ok(result) = self.reader.lookup(ip) else {
            return (None, None);
        };
        let Ok(Some(record)) = result.decode::<GeoRecord<'_>>() else {
            return (None, None);
        };
        let country = record
            .country_code
            .or(record.country.and_then(|c| c.iso_code))
            .map(|c| c.to_ascii_uppercase());
        let city = match record.city {
            Some(CityField::Flat(name)) => Some(name),
            Some(CityField::Nested { names }) => names.and_then(|n| n.en),
            None => None,
        }
        .filter(|name| !name.is_empty())
        .map(|name| clip(name).to_owned());
        (country, city)
    }
}

/// One actor's enricher, with its own user-agent cache.
pub struct Enricher {
    settings: EnrichSettings,
    geo: Option<Arc<GeoDatabase>>,
    /// Parsed user agents by UA string (client-supplied: a seeded hasher).
    agents: HashMap<Box<str>, Agent, foldhash::fast::RandomState>,
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
            geo,
            agents: HashMap::default(),
        }
    }

    /// Classifies a user agent, from the cache when seen before.
    pub fn agent(&mut self, user_agent: &str) -> Agent {
        if let Some(agent) = self.agents.get(user_agent) {
            return agent.clone();
        }
        let agent = classify(user_agent);
        if self.agents.len() >= UA_CACHE {
            self.agents.clear();
        }
        self.agents.insert(Box::from(user_agent), agent.clone());
        agent
    }

    /// Everything a click is counted by.
    pub fn enrich(&mut self, event: &ClickEvent) -> Enriched {
        let user_agent = String::from_utf8_lossy(event.user_agent());
        // The bot flag is kept even when user-agent collection is off:
        // bots are always counted apart.
        let agent = self.agent(&user_agent);
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
            && let (Some(geo), Some(ip)) = (&self.geo, event.ip)
        {
            let (country, city) = geo.lookup(ip);
            enriched.country = country;
            enriched.city = city;
        }
        if self.settings.referrer {
            enriched.referrer = referrer_host(event.referer());
        }
        for (name, value) in utm_fields(event.query()) {
            match name {
                "utm_source" => enriched.utm_source = Some(value),
                "utm_medium" => enriched.utm_medium = Some(value),
                "utm_campaign" => enriched.utm_campaign = Some(value),
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

/// The host of a Referer header, lowercased, without `www.`; `None` when
/// absent or not an http(s) URL.
pub fn referrer_host(referer: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(referer).ok()?.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host
        .split(':')
        .next()?
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    valid.then_some(host)
}

/// `utm_source`, `utm_medium` and `utm_campaign` from a query string,
/// percent-decoded, clipped.
pub fn utm_fields(query: &[u8]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for pair in query.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => continue,
        };
        let name = match name {
            b"utm_source" => "utm_source",
            b"utm_medium" => "utm_medium",
            b"utm_campaign" => "utm_campaign",
            _ => continue,
        };
        let decoded = percent_decode(value);
        let value = clip(decoded.trim());
        if !value.is_empty() && !value.chars().any(char::is_control) {
            out.push((name, value.to_owned()));
        }
    }
    out
}

fn percent_decode(input: &[u8]) -> String {
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
    String::from_utf8_lossy(&bytes).into_owned()
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
            utm_fields(b"a=1&utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale&utm_source2=x"),
            vec![
                ("utm_source", "news letter".to_owned()),
                ("utm_medium", "email".to_owned()),
                ("utm_campaign", "spring sale".to_owned())
            ]
        );
        assert_eq!(utm_fields(b"utm_source=%0a&utm_medium="), vec![]);
        let long = format!("utm_source={}", "x".repeat(1000));
        assert_eq!(utm_fields(long.as_bytes())[0].1.len(), MAX_VALUE);
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
            assert_eq!(enricher.enrich(&event).country.as_deref(), Some("GB"));
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
}
