//! Realistic traffic for benchmarks: weighted user agents, referrers,
//! query strings and Accept-Language values, client addresses from the
//! networks of a synthetic GeoIP2-City-shaped database (mmdb-writer): 60,000
//! networks with records in eight languages, about 4 MB. A real
//! GeoLite2-City file is tens of MB and mostly out of cache, so a real
//! lookup misses more than these do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde_json::json;

use crate::data::SplitMix64;

pub const IPV4_NETWORKS: usize = 50_000;
pub const IPV6_NETWORKS: usize = 10_000;

/// User agents and their weights: desktop and mobile browsers, in-app
/// browsers, link-preview fetchers, crawlers and tools (about 11 % of the
/// clicks are bots).
#[rustfmt::skip]
pub const USER_AGENTS: &[(u32, &str)] = &[
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
    // Link-preview fetchers.
    (12, "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"),
    (10, "Twitterbot/1.0"),
    (10, "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"),
    (8, "WhatsApp/2.24.23.78 A"),
    (5, "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)"),
    (5, "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)"),
    (4, "TelegramBot (like TwitterBot)"),
    (3, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_1) AppleWebKit/601.2.4 (KHTML, like Gecko) Version/9.0.1 Safari/601.2.4 facebookexternalhit/1.1 Facebot Twitterbot/1.0"),
    // Crawlers and tools.
    (8, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (5, "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36"),
    (4, "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"),
    (3, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)"),
    (6, "curl/8.5.0"),
    (5, "python-requests/2.32.3"),
    (4, "Go-http-client/1.1"),
    (2, "Wget/1.21.4"),
    (3, ""),
];

pub const REFERRERS: &[(u32, &str)] = &[
    (40, ""),
    (15, "https://www.google.com/"),
    (10, "https://t.co/"),
    (8, "https://www.facebook.com/"),
    (5, "https://l.instagram.com/"),
    (5, "https://www.linkedin.com/"),
    (4, "https://www.reddit.com/r/programming/comments/1gx0abc/"),
    (3, "https://news.ycombinator.com/item?id=42215123"),
    (7, "https://newsletter.example.org/issues/214?src=web"),
    (3, "android-app://com.slack/"),
];

pub const QUERIES: &[(u32, &str)] = &[
    (50, ""),
    (
        20,
        "utm_source=newsletter&utm_medium=email&utm_campaign=black_friday_2026",
    ),
    (
        10,
        "utm_source=twitter&utm_medium=social&utm_campaign=launch",
    ),
    (
        10,
        "utm_source=google&utm_medium=cpc&utm_campaign=brand%20search&gclid=EAIaIQobChMI",
    ),
    (10, "ref=homepage&lang=en"),
];

pub const ACCEPT_LANGUAGES: &[(u32, &str)] = &[
    (40, "en-US,en;q=0.9"),
    (15, "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"),
    (10, "fr-FR,fr;q=0.9"),
    (10, "es-ES,es;q=0.9"),
    (10, "en-GB,en;q=0.9"),
    (15, ""),
];

pub const COUNTRIES: &[(&str, &str)] = &[
    ("US", "NA"),
    ("CA", "NA"),
    ("MX", "NA"),
    ("BR", "SA"),
    ("AR", "SA"),
    ("CL", "SA"),
    ("CO", "SA"),
    ("PE", "SA"),
    ("GB", "EU"),
    ("DE", "EU"),
    ("FR", "EU"),
    ("ES", "EU"),
    ("IT", "EU"),
    ("NL", "EU"),
    ("BE", "EU"),
    ("SE", "EU"),
    ("NO", "EU"),
    ("DK", "EU"),
    ("FI", "EU"),
    ("PL", "EU"),
    ("CZ", "EU"),
    ("AT", "EU"),
    ("CH", "EU"),
    ("PT", "EU"),
    ("IE", "EU"),
    ("RO", "EU"),
    ("HU", "EU"),
    ("GR", "EU"),
    ("UA", "EU"),
    ("TR", "AS"),
    ("IN", "AS"),
    ("PK", "AS"),
    ("BD", "AS"),
    ("CN", "AS"),
    ("JP", "AS"),
    ("KR", "AS"),
    ("TW", "AS"),
    ("HK", "AS"),
    ("SG", "AS"),
    ("MY", "AS"),
    ("TH", "AS"),
    ("VN", "AS"),
    ("ID", "AS"),
    ("PH", "AS"),
    ("IL", "AS"),
    ("AE", "AS"),
    ("SA", "AS"),
    ("EG", "AF"),
    ("NG", "AF"),
    ("KE", "AF"),
    ("ZA", "AF"),
    ("MA", "AF"),
    ("AU", "OC"),
    ("NZ", "OC"),
    ("RU", "EU"),
    ("KZ", "AS"),
    ("IR", "AS"),
    ("IQ", "AS"),
    ("VE", "SA"),
    ("EC", "SA"),
];
pub const CITIES_PER_COUNTRY: usize = 20;

/// Picks from weighted choices.
pub fn pick<'a>(rng: &mut SplitMix64, choices: &[(u32, &'a str)]) -> &'a str {
    let total: u32 = choices.iter().map(|(w, _)| w).sum();
    let mut at = rng.below(total as u64) as u32;
    for &(weight, value) in choices {
        if at < weight {
            return value;
        }
        at -= weight;
    }
    unreachable!("the weights cover the range")
}

/// The networks in the GeoIP database; clicks come from these addresses.
pub struct Networks {
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
}

impl Networks {
    pub fn generate(rng: &mut SplitMix64) -> Self {
        let mut v4 = std::collections::BTreeSet::new();
        while v4.len() < IPV4_NETWORKS {
            // Public-looking /24s (first octet 1..=223, not 10 or 127).
            let first = 1 + rng.below(223) as u8;
            if first == 10 || first == 127 {
                continue;
            }
            v4.insert(Ipv4Addr::new(
                first,
                rng.below(256) as u8,
                rng.below(256) as u8,
                0,
            ));
        }
        let mut v6 = std::collections::BTreeSet::new();
        while v6.len() < IPV6_NETWORKS {
            let high = 0x2a00_0000_0000_0000u64 | (rng.below(1 << 40) << 16);
            v6.insert(Ipv6Addr::from((high as u128) << 64));
        }
        Self {
            v4: v4.into_iter().collect(),
            v6: v6.into_iter().collect(),
        }
    }

    /// A client address: 70 % IPv4 from a known /24, 25 % IPv6 from a known
    /// /48, 5 % an address the database does not know.
    pub fn client(&self, rng: &mut SplitMix64) -> IpAddr {
        match rng.below(100) {
            0..70 => {
                let net = self.v4[rng.below(self.v4.len() as u64) as usize].octets();
                IpAddr::V4(Ipv4Addr::new(
                    net[0],
                    net[1],
                    net[2],
                    1 + rng.below(254) as u8,
                ))
            }
            70..95 => {
                let net = u128::from(self.v6[rng.below(self.v6.len() as u64) as usize]);
                IpAddr::V6(Ipv6Addr::from(net | rng.next_u64() as u128))
            }
            _ => IpAddr::V4(Ipv4Addr::new(10, 1, 2, rng.below(256) as u8)),
        }
    }
}

pub fn names(text: &str) -> serde_json::Value {
    json!({
        "de": text, "en": text, "es": text, "fr": text,
        "ja": text, "pt-BR": text, "ru": text, "zh-CN": text,
    })
}

/// A GeoIP2-City-shaped database over `networks`: every network gets one of
/// `COUNTRIES.len() * CITIES_PER_COUNTRY` city records.
pub fn geo_database(networks: &Networks, rng: &mut SplitMix64) -> Vec<u8> {
    let records: Vec<serde_json::Value> = (0..COUNTRIES.len() * CITIES_PER_COUNTRY)
        .map(|i| {
            let (country, continent) = COUNTRIES[i / CITIES_PER_COUNTRY];
            let city = format!("{country} City {}", i % CITIES_PER_COUNTRY);
            let country_record = json!({
                "geoname_id": 2_000_000 + i / CITIES_PER_COUNTRY,
                "iso_code": country,
                "names": names(&format!("Country {country}")),
            });
            json!({
                "city": { "geoname_id": 3_000_000 + i, "names": names(&city) },
                "continent": {
                    "code": continent,
                    "geoname_id": 6_255_000 + continent.len(),
                    "names": names(continent),
                },
                "country": country_record.clone(),
                "location": {
                    "accuracy_radius": 20,
                    "latitude": 10.0 + (i % 70) as f64 * 0.7,
                    "longitude": 5.0 + (i % 170) as f64 * 0.9,
                    "time_zone": "Europe/Berlin",
                },
                "postal": { "code": format!("{:05}", i * 37 % 100_000) },
                "registered_country": country_record,
                "subdivisions": [{
                    "geoname_id": 4_000_000 + i / 4,
                    "iso_code": format!("R{}", i % 9),
                    "names": names(&format!("{country} Region {}", i % 9)),
                }],
            })
        })
        .collect();
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    let mut insert = |network: mmdb_writer::ipnet::IpNet, rng: &mut SplitMix64| {
        let record = &records[rng.below(records.len() as u64) as usize];
        writer.insert(network, record).expect("insert a network");
    };
    for net in &networks.v4 {
        let network = mmdb_writer::ipnet::Ipv4Net::new(*net, 24).expect("a /24");
        insert(network.into(), rng);
    }
    for net in &networks.v6 {
        let network = mmdb_writer::ipnet::Ipv6Net::new(*net, 48).expect("a /48");
        insert(network.into(), rng);
    }
    writer.to_bytes().expect("a database")
}
