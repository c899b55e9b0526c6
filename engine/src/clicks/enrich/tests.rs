//! Enrichment tests: user agents, bots, GeoIP layouts, referrers, UTM fields.
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
        utm(
            b"a=1&utm_source=news%20letter&utm_medium=email&utm_campaign=spring+sale&utm_source2=x"
        ),
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
        let event = ClickEvent::new(1, 0, Some("81.2.69.1".parse().unwrap()), b"", b"", b"", b"");
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
        let record = std::collections::BTreeMap::from([("country_code", country), ("city", city)]);
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
