//! What a request tells about its visitor, read only when a condition asks:
//! the user agent's class (cached per worker), the best of the link's
//! languages for its Accept-Language, its country and city (GeoIP), its
//! query parameters, its address and the time.
//!
//! Languages honour q-values across the link's rules: the visitor's best
//! language among those the link's conditions name is found once (highest
//! q first, a tag matching its more specific form: `fr` matches `fr-CA`),
//! and a language condition matches when it names that language. So with
//! `Accept-Language: en, fr-CA;q=0.8`, a rule for `fr` matches when no rule
//! names `en`, and a rule for `en` wins over it when one does, whatever
//! their order.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

use foldhash::fast::RandomState;
use ricochet_model::UnixMillis;

use super::agent::{UaClass, class_of};
use super::compile::{Check, Zone};
use crate::clicks::enrich::{GeoDatabase, Subnet};

/// Longest Accept-Language value parsed.
const MAX_ACCEPT_LANGUAGE: usize = 256;
/// Entries of each per-worker cache before it starts over.
const CACHE: usize = 4_096;
/// Subnets whose place each worker keeps (a few MB): GeoIP lookups cost
/// about a microsecond, and a busy link sees many networks.
const PLACE_CACHE: usize = 65_536;

/// A place as rules read it: the uppercase country code and the city.
type Place = (Option<[u8; 2]>, Option<Rc<str>>);
/// An Accept-Language value parsed: lowercase tags with q above 0, best first.
type Languages = Rc<[(Box<str>, f32)]>;
/// Local (weekday, minute of day) by (time zone, minute since the epoch).
type Clocks = HashMap<(usize, i64), (u8, u16), RandomState>;

thread_local! {
    /// GeoIP answers by subnet (where the database gives the whole subnet one answer).
    static PLACES: RefCell<HashMap<Subnet, Place, RandomState>> = RefCell::new(HashMap::default());
    /// Accept-Language values, parsed (browsers send a handful of them).
    static LANGUAGES: RefCell<HashMap<Box<[u8]>, Languages, RandomState>> =
        RefCell::new(HashMap::default());
    /// Local weekday and minute of day by (time zone, minute since the epoch).
    static CLOCKS: RefCell<Clocks> = RefCell::new(HashMap::default());
}

/// Inserts into a per-worker cache, starting it over when it holds `limit`.
fn remember<K: std::hash::Hash + Eq, V>(
    cache: &mut HashMap<K, V, RandomState>,
    limit: usize,
    key: K,
    value: V,
) {
    if cache.len() >= limit {
        cache.clear();
    }
    cache.insert(key, value);
}

/// One request's visitor, for one link's conditions.
pub struct Visitor<'a> {
    pub user_agent: &'a [u8],
    accept_language: &'a [u8],
    query: &'a [u8],
    pub cookie: &'a [u8],
    pub client: Option<IpAddr>,
    now: UnixMillis,
    geo: Option<&'a GeoDatabase>,
    agent: Option<Rc<UaClass>>,
    /// The best language's index among the link's, once looked for.
    language: Option<Option<u8>>,
    /// Country and city, once looked up.
    place: Option<Place>,
}

impl<'a> Visitor<'a> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        user_agent: &'a [u8],
        accept_language: &'a [u8],
        query: &'a [u8],
        cookie: &'a [u8],
        client: Option<IpAddr>,
        now: UnixMillis,
        geo: Option<&'a GeoDatabase>,
    ) -> Self {
        Self {
            user_agent,
            accept_language,
            query,
            cookie,
            client,
            now,
            geo,
            agent: None,
            language: None,
            place: None,
        }
    }

    /// The user agent's class.
    pub fn agent(&mut self) -> &UaClass {
        self.agent.get_or_insert_with(|| class_of(self.user_agent))
    }

    /// Whether `check` (one of the plan's `checks`, whose strings are in
    /// `text`) holds for this visitor.
    pub(super) fn matches(&mut self, check: &Check, checks: &[Check], text: &[u8]) -> bool {
        match check {
            Check::After(at) => self.now >= *at,
            Check::Before(at) => self.now < *at,
            Check::Ip(net) => self.client.is_some_and(|ip| net.contains(&canonical(ip))),
            Check::QueryParam { key, value } => {
                let (key, value) = (key.str_of(text), value.str_of(text));
                self.params().any(|(k, v)| *k == *key && *v == *value)
            }
            Check::AnyValueQueryParam(key) => {
                let key = key.str_of(text);
                self.params().any(|(k, _)| *k == *key)
            }
            Check::ValuelessQueryParam(key) => {
                let key = key.str_of(text);
                self.params().any(|(k, v)| *k == *key && v.is_empty())
            }
            Check::Schedule {
                zone,
                days,
                from,
                to,
            } => in_schedule(self.now, zone, *days, *from, *to),
            Check::Device(device) => self.agent().device == Some(*device),
            Check::Os(os) => self.agent().os == Some(*os),
            Check::Browser(family) => {
                let family = family.str_of(text);
                self.agent().browser_is(family)
            }
            Check::Language { index, .. } => self.best_language(checks, text) == Some(*index),
            Check::Country(code) => self.place().0 == Some(*code),
            Check::City(name) => {
                let name = name.str_of(text);
                self.place()
                    .1
                    .as_ref()
                    .is_some_and(|city| city.eq_ignore_ascii_case(name))
            }
            Check::Never => false,
        }
    }

    fn params(&self) -> form_urlencoded::Parse<'a> {
        form_urlencoded::parse(self.query)
    }

    /// The index of the visitor's best language among those the plan's
    /// language checks name.
    fn best_language(&mut self, checks: &[Check], text: &[u8]) -> Option<u8> {
        let header = self.accept_language;
        *self.language.get_or_insert_with(|| {
            let languages = checks.iter().filter_map(|check| match check {
                Check::Language { index, tag } => Some((*index, tag.str_of(text))),
                _ => None,
            });
            best_language(header, languages)
        })
    }

    fn place(&mut self) -> &Place {
        let (geo, client) = (self.geo, self.client);
        self.place.get_or_insert_with(|| match (geo, client) {
            (Some(geo), Some(ip)) => place_of(geo, canonical(ip)),
            _ => (None, None),
        })
    }
}

/// The place of `ip`, from this worker's cache when its subnet was seen.
fn place_of(geo: &GeoDatabase, ip: IpAddr) -> Place {
    let subnet = Subnet::of(ip);
    if let Some(place) = PLACES.with(|cache| cache.borrow().get(&subnet).cloned()) {
        return place;
    }
    let (country, city, whole_subnet) = geo.place_of(ip);
    let place: Place = (
        country.and_then(|c| match c.as_bytes() {
            &[a, b] => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => None,
        }),
        city.map(Rc::from),
    );
    if whole_subnet {
        PLACES.with(|cache| remember(&mut cache.borrow_mut(), PLACE_CACHE, subnet, place.clone()));
    }
    place
}

/// An IPv4-mapped IPv6 address as IPv4 (dual-stack listeners report them).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An Accept-Language value parsed, from this worker's cache when seen.
fn parsed_languages(header: &[u8]) -> Languages {
    let header = &header[..header.len().min(MAX_ACCEPT_LANGUAGE)];
    if let Some(parsed) = LANGUAGES.with(|cache| cache.borrow().get(header).cloned()) {
        return parsed;
    }
    let parsed: Languages = match std::str::from_utf8(header) {
        Ok(text) => accept_language::parse_with_quality(text)
            .into_iter()
            .filter(|(_, quality)| *quality > 0.0)
            .map(|(tag, quality)| (tag.to_ascii_lowercase().into_boxed_str(), quality))
            .collect(),
        Err(_) => Rc::from([]),
    };
    LANGUAGES.with(|cache| {
        remember(
            &mut cache.borrow_mut(),
            CACHE,
            Box::from(header),
            parsed.clone(),
        )
    });
    parsed
}

/// The index of the visitor's best one among `languages` (index and
/// lowercase tag; an index may come more than once).
fn best_language<'t>(
    header: &[u8],
    languages: impl Iterator<Item = (u8, &'t str)> + Clone,
) -> Option<u8> {
    if header.is_empty() {
        return None;
    }
    for (tag, _) in parsed_languages(header).iter() {
        let tag: &str = tag;
        // The most specific of the link's languages this tag falls under.
        let found = languages
            .clone()
            .filter(|(_, language)| {
                tag == *language
                    || (tag.starts_with(language) && tag.as_bytes()[language.len()] == b'-')
            })
            .max_by_key(|(_, language)| language.len());
        if let Some((index, _)) = found {
            return Some(index);
        }
    }
    None
}

/// Local weekday (Monday = 0) and minute of day of `now` in `zone`, from
/// this worker's cache within the same minute (keyed by the zone's id, so
/// every link naming the zone shares the entry).
fn local_clock(now: UnixMillis, zone: &Zone) -> Option<(u8, u16)> {
    let key = (zone.id, now.div_euclid(60_000));
    if let Some(found) = CLOCKS.with(|cache| cache.borrow().get(&key).copied()) {
        return Some(found);
    }
    let local = jiff::Timestamp::from_millisecond(now)
        .ok()?
        .to_zoned(zone.tz.clone());
    let clock = (
        local.weekday().to_monday_zero_offset() as u8,
        local.hour() as u16 * 60 + local.minute() as u16,
    );
    CLOCKS.with(|cache| remember(&mut cache.borrow_mut(), CACHE, key, clock));
    Some(clock)
}

/// Whether `now` falls in the weekly window (see `behaviour::Schedule`).
fn in_schedule(now: UnixMillis, zone: &Zone, days: u8, from: u16, to: u16) -> bool {
    let Some((day, minute)) = local_clock(now, zone) else {
        return false;
    };
    let listed = |day: u8| days & (1 << day) != 0;
    if from < to {
        listed(day) && (from..to).contains(&minute)
    } else {
        (listed(day) && minute >= from) || (listed((day + 6) % 7) && minute < to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn languages<'t>(tags: &'t [&'t str]) -> impl Iterator<Item = (u8, &'t str)> + Clone {
        tags.iter().enumerate().map(|(i, t)| (i as u8, *t))
    }

    #[test]
    fn the_best_language_honours_q_values() {
        let fr_en = languages(&["fr", "en"]);
        assert_eq!(best_language(b"fr-CA;q=0.8", fr_en.clone()), Some(0));
        assert_eq!(
            best_language(b"en;q=0.9, fr-CA;q=0.8", fr_en.clone()),
            Some(1)
        );
        assert_eq!(best_language(b"de, fr-CA;q=0.8", fr_en.clone()), Some(0));
        assert_eq!(
            best_language(b"fr;q=0.5, en-GB;q=0.7", fr_en.clone()),
            Some(1)
        );
        assert_eq!(best_language(b"de", fr_en.clone()), None);
        assert_eq!(best_language(b"", fr_en.clone()), None);
        assert_eq!(best_language(b"fr;q=0", fr_en.clone()), None);
        assert_eq!(
            best_language(b"fra", fr_en.clone()),
            None,
            "a prefix is not a subtag"
        );
        let specific = languages(&["pt", "pt-br"]);
        assert_eq!(best_language(b"pt-BR", specific.clone()), Some(1));
        assert_eq!(best_language(b"pt-PT", specific.clone()), Some(0));
        assert_eq!(best_language(&[0xff, 0xfe], specific.clone()), None);
    }

    #[test]
    fn schedules_follow_the_local_clock() {
        let paris = Zone {
            id: usize::MAX,
            tz: jiff::tz::db().get("Europe/Paris").unwrap(),
        };
        // 2026-12-07 is a Monday; 08:30 UTC is 09:30 in Paris (UTC+1).
        let monday_0830_utc = 1_796_632_200_000;
        let weekdays = 0b001_1111;
        assert!(in_schedule(
            monday_0830_utc,
            &paris,
            weekdays,
            9 * 60,
            17 * 60
        ));
        assert!(!in_schedule(
            monday_0830_utc,
            &paris,
            weekdays,
            10 * 60,
            17 * 60
        ));
        assert!(!in_schedule(
            monday_0830_utc,
            &paris,
            0b100_0000,
            9 * 60,
            17 * 60
        ));
        // Overnight 22:00-06:00 listed on Sunday covers Monday 05:00 local.
        let monday_0400_utc = monday_0830_utc - (4 * 60 + 30) * 60_000;
        assert!(in_schedule(
            monday_0400_utc,
            &paris,
            0b100_0000,
            22 * 60,
            6 * 60
        ));
        assert!(!in_schedule(
            monday_0400_utc,
            &paris,
            0b000_0001,
            22 * 60,
            6 * 60
        ));
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        let mapped: IpAddr = "::ffff:203.0.113.9".parse().unwrap();
        assert_eq!(canonical(mapped), "203.0.113.9".parse::<IpAddr>().unwrap());
    }
}
