//! A GeoIP2-City-shaped database (MaxMind format, written with mmdb-writer)
//! over the client networks of varied visitors, so that an engine's country
//! and city conditions do real lookups and match some visitors. Each network
//! gets a country from a weighted list (about 8 % DE, 6 % FR …) and one of
//! its cities; records carry names in eight languages, like a real City
//! database (the engine reads `country.iso_code` and `city.names.en`).
//! Suites name it `{geoip_db}`.

use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::networks::ClientNetworks;

/// Countries and their weights.
#[rustfmt::skip]
pub const COUNTRIES: &[(u32, &str, &str)] = &[
    (25, "US", "NA"), (3, "CA", "NA"), (2, "MX", "NA"), (6, "BR", "SA"), (1, "AR", "SA"),
    (7, "GB", "EU"), (8, "DE", "EU"), (6, "FR", "EU"), (4, "ES", "EU"), (3, "IT", "EU"),
    (2, "NL", "EU"), (2, "PL", "EU"), (1, "SE", "EU"), (1, "CH", "EU"), (1, "BE", "EU"),
    (1, "AT", "EU"), (1, "PT", "EU"), (8, "IN", "AS"), (5, "JP", "AS"), (2, "KR", "AS"),
    (3, "CN", "AS"), (1, "ID", "AS"), (1, "TR", "AS"), (1, "SG", "AS"), (2, "AU", "OC"),
    (1, "NG", "AF"), (1, "ZA", "AF"),
];
/// Cities per country.
pub const CITIES_PER_COUNTRY: usize = 10;
/// Seed of the networks' places: the same database on every run.
const GEO_SEED: u64 = 0x0006_E0DB;

/// Names in the languages of a GeoIP2 City database.
fn names(text: &str) -> Value {
    json!({
        "de": text, "en": text, "es": text, "fr": text,
        "ja": text, "pt-BR": text, "ru": text, "zh-CN": text,
    })
}

fn record(country_index: usize, city: usize) -> Value {
    let (_, country, continent) = COUNTRIES[country_index];
    let country_record = json!({
        "geoname_id": 2_000_000 + country_index,
        "iso_code": country,
        "names": names(&format!("Country {country}")),
    });
    json!({
        "city": {
            "geoname_id": 3_000_000 + country_index * CITIES_PER_COUNTRY + city,
            "names": names(&format!("{country} City {city}")),
        },
        "continent": { "code": continent, "geoname_id": 6_255_000, "names": names(continent) },
        "country": country_record.clone(),
        "location": {
            "accuracy_radius": 20,
            "latitude": 10.0 + (city * 7 % 70) as f64,
            "longitude": 5.0 + (country_index * 11 % 170) as f64,
            "time_zone": "Europe/Berlin",
        },
        "postal": { "code": format!("{:05}", (country_index * 37 + city) % 100_000) },
        "registered_country": country_record,
        "subdivisions": [{
            "geoname_id": 4_000_000 + country_index * 10 + city % 3,
            "iso_code": format!("R{}", city % 3),
            "names": names(&format!("{country} Region {}", city % 3)),
        }],
    })
}

/// The database's bytes: every network of `networks` in a country, the
/// same on every call.
pub fn database(networks: &ClientNetworks) -> Result<Vec<u8>> {
    let records: Vec<Value> = (0..COUNTRIES.len() * CITIES_PER_COUNTRY)
        .map(|i| record(i / CITIES_PER_COUNTRY, i % CITIES_PER_COUNTRY))
        .collect();
    let total: u32 = COUNTRIES.iter().map(|(weight, _, _)| weight).sum();
    let mut rng = SmallRng::seed_from_u64(GEO_SEED);
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    for network in networks.networks() {
        let mut at = rng.random_range(0..total);
        let country = COUNTRIES
            .iter()
            .position(|(weight, _, _)| {
                if at < *weight {
                    return true;
                }
                at -= weight;
                false
            })
            .unwrap_or(0);
        let city = rng.random_range(0..CITIES_PER_COUNTRY);
        writer
            .insert(
                network.to_ipnet(),
                &records[country * CITIES_PER_COUNTRY + city],
            )
            .map_err(|e| Error::Invalid(format!("GeoIP database: {e}")))?;
    }
    writer
        .to_bytes()
        .map_err(|e| Error::Invalid(format!("GeoIP database: {e}")))
}

/// Writes the database to `path`.
pub fn write_database(networks: &ClientNetworks, path: &Path) -> Result<()> {
    let bytes = database(networks)?;
    std::fs::write(path, bytes)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}
