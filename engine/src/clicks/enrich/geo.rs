//! Country and city from a MaxMind-format database (GeoIP2 or the flat
//! DB-IP lite layout), answers cached per IPv4 /24 and IPv6 /48.

use super::*;

/// GeoIP answers are cached per IPv4 /24 …
const SUBNET_V4_BITS: u8 = 24;
/// … and per IPv6 /48.
const SUBNET_V6_BITS: u8 = 48;

#[derive(Deserialize)]
pub(super) struct Names<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

/// The city in either layout: flat DB-IP `"city": "Berlin"` or GeoIP2
/// `"city": {"names": {"en": "Berlin", …}, …}`. Read by hand: an untagged
/// enum would first copy the whole value into a buffer, on every lookup.
pub(super) struct CityName<'a>(Option<&'a str>);

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
pub(super) struct CountryField<'a> {
    iso_code: Option<&'a str>,
}

/// The fields read from either database layout.
#[derive(Deserialize)]
pub(super) struct GeoRecord<'a> {
    #[serde(borrow)]
    country: Option<CountryField<'a>>,
    country_code: Option<&'a str>,
    #[serde(borrow)]
    city: Option<CityName<'a>>,
}

/// A database answer, borrowed from the database.
#[derive(Debug, Default)]
pub(super) struct Answer<'a> {
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

    /// Country code (as stored, any case) and city of `ip`, borrowed from
    /// the database (uncached), and whether every address of the ip's
    /// [`Subnet`] gets the same answer (so it may be cached by subnet).
    pub fn place_of(&self, ip: IpAddr) -> (Option<&str>, Option<&str>, bool) {
        let answer = self.answer(ip);
        (answer.country, answer.city, answer.holds_subnet)
    }

    pub(super) fn answer(&self, ip: IpAddr) -> Answer<'_> {
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
pub enum Subnet {
    V4(u32),
    V6(u64),
}

impl Subnet {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(u32::from(v4) >> (32 - SUBNET_V4_BITS)),
            IpAddr::V6(v6) => Self::V6((u128::from(v6) >> (128 - SUBNET_V6_BITS)) as u64),
        }
    }
}

/// Country code and city of a click.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) country: Option<Arc<str>>,
    pub(super) city: Option<Arc<str>>,
}

/// A GeoIP database and one actor's answers by subnet.
pub(super) struct Geo {
    pub(super) database: Arc<GeoDatabase>,
    /// Client addresses: a seeded hasher.
    pub(super) places: HashMap<Subnet, Place, RandomState>,
}

impl Geo {
    pub(super) fn place(&mut self, ip: IpAddr, values: &mut SharedValues) -> Place {
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
