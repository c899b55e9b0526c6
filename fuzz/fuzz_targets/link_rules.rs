//! Feeds arbitrary JSON as a link's behaviour, through the API's parsers
//! (`rules`, `variants`, `card`) and as stored extensions re-checked by
//! `check_extensions`, then compiles what passes into the engine's plan.
//! Neither validation nor compilation may panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ricochet_engine::behaviour::{Compiled, CookieKey};
use ricochet_model::behaviour::check;
use ricochet_model::{LinkExtensions, LinkRecord};
use serde_json::Value;

fn key() -> &'static CookieKey {
    static KEY: OnceLock<CookieKey> = OnceLock::new();
    KEY.get_or_init(|| CookieKey::from_secret("fuzz"))
}

fn record(extensions: LinkExtensions) -> LinkRecord {
    let mut record = LinkRecord::new(7, "sho.rt", "fuzz", "https://example.com/a", 0)
        .expect("a valid plain link");
    record.extensions = extensions;
    record
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return;
    };

    // As the API receives it: each field through its parser.
    let mut extensions = LinkExtensions::default();
    let mut accepted = true;
    if let Some(rules) = value.get("rules") {
        match check::parse_rules(rules) {
            Ok(rules) => extensions.rules = rules,
            Err(_) => accepted = false,
        }
    }
    if let Some(variants) = value.get("variants") {
        match check::parse_variants(variants) {
            Ok(variants) => extensions.variants = variants,
            Err(_) => accepted = false,
        }
    }
    if let Some(card) = value.get("card") {
        match check::parse_card(card) {
            Ok(card) => extensions.card = Some(card),
            Err(_) => accepted = false,
        }
    }
    if accepted {
        let _ = Compiled::compile(&record(extensions), key());
    }

    // As a stored record carries it: deserialized, re-checked, compiled.
    if let Ok(extensions) = serde_json::from_value::<LinkExtensions>(value)
        && check::check_extensions(&extensions).is_ok()
    {
        let _ = Compiled::compile(&record(extensions), key());
    }
});
