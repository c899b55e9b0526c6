//! Link behaviour a suite gives every generated link (`[keys] behaviour`): a
//! JSON file with `rules` and `variants` in the API's shape, validated and
//! normalized as the engine does (`ricochet_model::behaviour::check`). It
//! knows the destinations the behaviour can send a visitor to, so answers
//! are checked against exactly those, and writes the JSON Lines tail of each
//! link's import row.

use std::path::Path;

use ricochet_model::behaviour::check::{parse_rules, parse_variants};
use ricochet_model::behaviour::{Rule, Variant};
use serde_json::Value;

use crate::error::{Error, Result};

/// Rules and variants shared by every link of a key set.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    rules: Vec<Rule>,
    variants: Vec<Variant>,
    /// Destinations in the file's order (each rule's URL, then its
    /// variants, then the link's variants), without repeats.
    destinations: Vec<String>,
    /// `destinations` sorted, each with its index there: a `Location` is
    /// found by binary search.
    sorted: Vec<(Box<[u8]>, u16)>,
    /// `,"rules":[…],"variants":[…]` as an import row carries it.
    jsonl_tail: String,
}

impl Behaviour {
    /// Reads and validates a behaviour file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read behaviour file {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses behaviour JSON; `name` is used in error messages.
    pub fn parse(text: &str, name: &str) -> Result<Self> {
        let bad = |message: String| Error::Behaviour {
            path: name.to_owned(),
            message,
        };
        let value: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(bad(
                "a behaviour file is a JSON object with `rules` and/or `variants`".into(),
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "rules" | "variants"))
        {
            return Err(bad(format!(
                "unknown field {unknown:?}: a behaviour file has `rules` and `variants` (in the API's link shape)"
            )));
        }
        // Messages about a URL repeat its field's last name ("url: …").
        let field_error = |e: ricochet_model::behaviour::check::FieldError| {
            let last = e.field.rsplit('.').next().unwrap_or_default();
            let message = e
                .message
                .strip_prefix(last)
                .and_then(|m| m.strip_prefix(": "))
                .unwrap_or(&e.message);
            bad(format!("{}: {message}", e.field))
        };
        let rules = match object.get("rules") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => parse_rules(value).map_err(field_error)?,
        };
        let variants = match object.get("variants") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => parse_variants(value).map_err(|e| field_error(e.under("variants")))?,
        };
        Self::new(rules, variants).map_err(bad)
    }

    /// Behaviour from validated rules and variants.
    pub fn new(rules: Vec<Rule>, variants: Vec<Variant>) -> std::result::Result<Self, String> {
        if rules.is_empty() && variants.is_empty() {
            return Err("no rules and no variants: give at least one".into());
        }
        let mut destinations: Vec<String> = Vec::new();
        let mut add = |url: &str| {
            if !destinations.iter().any(|d| d == url) {
                destinations.push(url.to_owned());
            }
        };
        for rule in &rules {
            add(&rule.url);
            rule.variants.iter().for_each(|v| add(&v.url));
        }
        variants.iter().for_each(|v| add(&v.url));
        let mut sorted: Vec<(Box<[u8]>, u16)> = destinations
            .iter()
            .enumerate()
            .map(|(index, url)| (url.as_bytes().into(), index as u16))
            .collect();
        sorted.sort();
        let mut jsonl_tail = String::new();
        if !rules.is_empty() {
            jsonl_tail.push_str(",\"rules\":");
            jsonl_tail.push_str(&serde_json::to_string(&rules).map_err(|e| e.to_string())?);
        }
        if !variants.is_empty() {
            jsonl_tail.push_str(",\"variants\":");
            jsonl_tail.push_str(&serde_json::to_string(&variants).map_err(|e| e.to_string())?);
        }
        Ok(Self {
            rules,
            variants,
            destinations,
            sorted,
            jsonl_tail,
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// Every URL the rules and variants can send a visitor to, in the
    /// file's order (the link's own URL is not among them).
    pub fn destinations(&self) -> &[String] {
        &self.destinations
    }

    /// Index in [`Behaviour::destinations`] of `location`, if it is one.
    #[inline]
    pub fn destination_of(&self, location: &[u8]) -> Option<usize> {
        self.sorted
            .binary_search_by(|(url, _)| url.as_ref().cmp(location))
            .ok()
            .map(|at| self.sorted[at].1 as usize)
    }

    /// What follows the link's own fields in its JSON Lines import row
    /// (starts with a comma; no closing brace).
    pub fn jsonl_tail(&self) -> &str {
        &self.jsonl_tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE: &str = r#"{
      "rules": [
        {"url": "https://example.com/mobile", "conditions": [{"type": "device", "value": "mobile"}]},
        {"url": "https://example.com/de", "conditions": [{"type": "country", "value": "de"}]},
        {"url": "https://example.com/fr", "conditions": [{"type": "language", "value": "fr"}],
         "variants": [{"url": "https://example.com/fr-a", "weight": 50}, {"url": "https://example.com/fr-b", "weight": 50}]},
        {"url": "https://EXAMPLE.com/office", "conditions": [{"type": "schedule", "value":
          {"timezone": "Europe/Paris", "days": ["mon", "fri"], "from": "09:00", "to": "17:00"}}]}
      ],
      "variants": [{"url": "https://example.com/a", "weight": 50}, {"url": "https://example.com/mobile", "weight": 50}]
    }"#;

    #[test]
    fn destinations_are_normalized_and_unique() {
        let behaviour = Behaviour::parse(FIVE, "five.json").unwrap();
        assert_eq!(
            behaviour.destinations(),
            [
                "https://example.com/mobile",
                "https://example.com/de",
                "https://example.com/fr",
                "https://example.com/fr-a",
                "https://example.com/fr-b",
                "https://example.com/office",
                "https://example.com/a",
            ]
        );
        assert_eq!(
            behaviour.destination_of(b"https://example.com/office"),
            Some(5)
        );
        assert_eq!(behaviour.destination_of(b"https://example.com/a"), Some(6));
        assert_eq!(behaviour.destination_of(b"https://example.com/b"), None);
        assert_eq!(
            behaviour.destination_of(b"https://EXAMPLE.com/office"),
            None
        );
        // The normalized condition is what an import row carries.
        assert!(behaviour.jsonl_tail().contains(r#""value":"DE""#));
        assert!(behaviour.jsonl_tail().starts_with(",\"rules\":[{"));
    }

    #[test]
    fn mistakes_name_the_file_and_the_field() {
        let error = |text: &str| Behaviour::parse(text, "b.json").unwrap_err().to_string();
        assert!(error("{").starts_with("b.json: EOF"), "{}", error("{"));
        assert!(error("[]").contains("JSON object"));
        assert!(error(r#"{"card": {}}"#).contains("unknown field \"card\""));
        assert!(error("{}").contains("no rules and no variants"));
        let text = r#"{"rules": [{"url": "https://x.example/", "conditions": [{"type": "country", "value": "Germany"}]}]}"#;
        let message = error(text);
        assert!(
            message.starts_with("b.json: rules[0].conditions[0].value: a country is"),
            "{message}"
        );
        let text = r#"{"variants": [{"url": "https://x.example/", "weight": 60}, {"url": "https://y.example/", "weight": 60}]}"#;
        let message = error(text);
        assert!(
            message.starts_with("b.json: variants: variant weights must add up to 100"),
            "{message}"
        );
        let text = r#"{"variants": [{"url": "ftp://x.example/", "weight": 50}, {"url": "https://y.example/", "weight": 50}]}"#;
        let message = error(text);
        assert!(message.starts_with("b.json: variants[0].url"), "{message}");
    }
}
