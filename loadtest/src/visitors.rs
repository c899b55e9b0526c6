//! Who sends the requests. `plain` visitors (the default) send one of a few
//! browser or crawler user agents and nothing else about themselves;
//! `varied` visitors send a User-Agent from a weighted realistic list
//! (desktop and mobile browsers, in-app browsers; crawlers, link-preview
//! fetchers and tools for the bot share), an Accept-Language from a
//! weighted list (browsers only, as real crawlers rarely send one) and an
//! `X-Forwarded-For` address from the client networks. The lists follow
//! the criterion benchmark's (benches/src/traffic.rs) so both measure the
//! same visitors. Header lines are rendered once; a request costs three
//! table lookups, slice copies and one address.

use std::sync::Arc;

use rand::Rng;
use rand::rngs::SmallRng;
use serde::{Serialize, Serializer};

use crate::networks::ClientNetworks;

/// Browsers: desktop, mobile, tablet, in-app, and their weights.
#[rustfmt::skip]
pub const BROWSERS: &[(u32, &str)] = &[
    (90, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (60, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"),
    (40, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"),
    (25, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (10, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    (45, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (35, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"),
    (15, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (12, "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (8, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (5, "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (110, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    (60, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1"),
    (25, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
    (30, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/22B83 Instagram 357.0.0.25.101 (iPhone15,3; iOS 18_1; en_US; en; scale=3.00; 1290x2796; 660346017)"),
    (20, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/22B83 [FBAN/FBIOS;FBAV/490.0.0.38.108;FBBV/664005226;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/18.1;FBSS/3;FBID/phone;FBLC/en_US;FBOP/5]"),
    (15, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 LinkedInApp/9.30.1204"),
    (12, "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    (70, "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
    (25, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36"),
    (20, "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36"),
    (15, "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-A546B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
    (10, "Mozilla/5.0 (Linux; Android 13; 2201117TG) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36"),
    (10, "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"),
    (12, "Mozilla/5.0 (Linux; Android 14; SM-S911B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 Instagram 357.0.0.44.83 Android (34/14; 450dpi; 1080x2340; samsung; SM-S911B; dm1q; qcom; en_US; 658348302)"),
    (8, "Mozilla/5.0 (Linux; Android 14; Pixel 7 Build/AP2A.240905.003; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.6778.81 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/489.0.0.66.81;]"),
    (6, "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (4, "Mozilla/5.0 (Linux; Android 12; moto g stylus 5G) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"),
    (4, "Mozilla/5.0 (Linux; U; Android 13; en-US; Redmi Note 12 Build/TKQ1.221114.001) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.80 UCBrowser/13.7.2.1324 Mobile Safari/537.36"),
    (3, "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/131.2.1 like Chrome/131.0.6778.85 Safari/537.36"),
    (3, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edge/44.18363.8131"),
    (3, "Mozilla/5.0 (SMART-TV; Linux; Tizen 8.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/7.0 Chrome/108.0.5359.1 TV Safari/537.36"),
    (2, "Mozilla/5.0 (Windows NT 6.1; Win64; x64; Trident/7.0; rv:11.0) like Gecko"),
    (2, "Opera/9.80 (Android; Opera Mini/84.0.2254/191.308; U; en) Presto/2.12.423 Version/12.16"),
];

/// Link-preview fetchers, crawlers and tools, and their weights.
#[rustfmt::skip]
pub const BOTS: &[(u32, &str)] = &[
    (12, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
    (10, "Twitterbot/1.0"),
    (10, "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
    (8, "WhatsApp/2.24.23.78 A"),
    (5, "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"),
    (5, "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
    (4, "TelegramBot (like TwitterBot)"),
    (8, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (5, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"),
    (4, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
    (3, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"),
    (6, "curl/8.5.0"),
    (5, "python-requests/2.32.3"),
    (4, "Go-http-client/1.1"),
    (2, "Wget/1.21.4"),
];

/// Accept-Language values of browsers, and their weights.
#[rustfmt::skip]
pub const LANGUAGES: &[(u32, &str)] = &[
    (35, "en-US,en;q=0.9"),
    (10, "en-GB,en;q=0.9"),
    (12, "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"),
    (9, "fr-FR,fr;q=0.9"),
    (3, "fr-CA,fr;q=0.9,en-CA;q=0.8,en;q=0.7"),
    (8, "es-ES,es;q=0.9"),
    (6, "pt-BR,pt;q=0.9,en-US;q=0.8,en;q=0.7"),
    (5, "ja"),
    (3, "ja-JP,ja;q=0.9,en-US;q=0.8,en;q=0.7"),
    (3, "it-IT,it;q=0.9,en-US;q=0.8,en;q=0.7"),
    (3, "zh-CN,zh;q=0.9"),
    (2, "nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7"),
    (2, "pl-PL,pl;q=0.9,en-US;q=0.8,en;q=0.7"),
    (2, "ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7"),
    (2, "en-US,en;q=0.9,fr;q=0.8"),
    (1, "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7"),
];

/// What browsers accept for a navigation (crawlers and tools send `*/*`).
const BROWSER_ACCEPT: &[u8] =
    b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n";
const ANY_ACCEPT: &[u8] = b"Accept: */*\r\n";

/// Who sends the requests.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Visitors {
    /// A user agent from `traffic::BROWSER_AGENTS` or `BOT_AGENTS`.
    #[default]
    Plain,
    /// Weighted user agents and languages, client addresses in `X-Forwarded-For`.
    Varied(Arc<VisitorMix>),
}

impl Visitors {
    /// Varied visitors from `networks`.
    pub fn varied(networks: Arc<ClientNetworks>) -> Self {
        Self::Varied(Arc::new(VisitorMix::new(networks)))
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Varied(_) => "varied",
        }
    }

    /// The client networks (varied visitors only).
    pub fn networks(&self) -> Option<&Arc<ClientNetworks>> {
        match self {
            Self::Plain => None,
            Self::Varied(mix) => Some(&mix.networks),
        }
    }
}

impl Serialize for Visitors {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Header lines, each drawn with its weight.
struct WeightedLines {
    lines: Vec<Box<[u8]>>,
    /// Line indices, each repeated by its weight: one draw picks one.
    draws: Vec<u16>,
}

impl WeightedLines {
    fn new(header: &str, values: &[(u32, &str)]) -> Self {
        let lines = values
            .iter()
            .map(|(_, value)| format!("{header}: {value}\r\n").into_bytes().into())
            .collect();
        let draws = values
            .iter()
            .enumerate()
            .flat_map(|(index, (weight, _))| std::iter::repeat_n(index as u16, *weight as usize))
            .collect();
        Self { lines, draws }
    }

    #[inline]
    fn pick(&self, rng: &mut SmallRng) -> &[u8] {
        &self.lines[self.draws[rng.random_range(0..self.draws.len())] as usize]
    }
}

/// The rendered lists and the networks, shared by every generator thread.
pub struct VisitorMix {
    browsers: WeightedLines,
    bots: WeightedLines,
    languages: WeightedLines,
    networks: Arc<ClientNetworks>,
}

impl std::fmt::Debug for VisitorMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisitorMix")
            .field("networks", &self.networks)
            .finish_non_exhaustive()
    }
}

impl PartialEq for VisitorMix {
    fn eq(&self, other: &Self) -> bool {
        self.networks == other.networks
    }
}

impl VisitorMix {
    pub fn new(networks: Arc<ClientNetworks>) -> Self {
        Self {
            browsers: WeightedLines::new("User-Agent", BROWSERS),
            bots: WeightedLines::new("User-Agent", BOTS),
            languages: WeightedLines::new("Accept-Language", LANGUAGES),
            networks,
        }
    }

    /// Appends the visitor's header lines (each ending in CRLF).
    #[inline]
    pub fn render(&self, rng: &mut SmallRng, bot: bool, out: &mut Vec<u8>) {
        if bot {
            out.extend_from_slice(self.bots.pick(rng));
            out.extend_from_slice(ANY_ACCEPT);
        } else {
            out.extend_from_slice(self.browsers.pick(rng));
            out.extend_from_slice(BROWSER_ACCEPT);
            out.extend_from_slice(self.languages.pick(rng));
        }
        out.extend_from_slice(b"X-Forwarded-For: ");
        self.networks.write_address(rng, out);
        out.extend_from_slice(b"\r\n");
    }
}
