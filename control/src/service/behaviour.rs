//! A link's behaviour fields (rules, variants, fallback URL, card, ios,
//! android) as callers give them: JSON values in the API's shape, which the
//! service validates with the model's parsers (errors name the field path,
//! `rules[3].conditions[0].value`) and applies to the record's extensions.

use ricochet_model::LinkExtensions;
use ricochet_model::ValidationError;
use ricochet_model::behaviour::check::{self, FieldError};
use serde_json::Value;

/// Changes to the behaviour fields: `None` leaves a field as it is (on a
/// new link: unset); `Some(Value::Null)` clears it, and so does an empty
/// `rules` or `variants` array.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BehaviourChanges {
    /// The `rules` array.
    pub rules: Option<Value>,
    /// The link's own `variants` array.
    pub variants: Option<Value>,
    pub fallback_url: Option<Value>,
    /// The `card` object; one with no field set clears the card.
    pub card: Option<Value>,
    pub ios: Option<Value>,
    pub android: Option<Value>,
}

impl BehaviourChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Validates every given field and applies them to `extensions`; on an
    /// error `extensions` may be half changed, so callers apply to a copy
    /// they drop on error (the service's write transaction does).
    pub fn apply(&self, extensions: &mut LinkExtensions) -> Result<(), ValidationError> {
        if let Some(value) = &self.rules {
            extensions.rules = match value {
                Value::Null => Vec::new(),
                value => check::parse_rules(value)?,
            };
        }
        if let Some(value) = &self.variants {
            extensions.variants = match value {
                Value::Null => Vec::new(),
                value => check::parse_variants(value).map_err(|e| e.under("variants"))?,
            };
        }
        extensions.fallback_url =
            url(&self.fallback_url, "fallback_url", &extensions.fallback_url)?;
        if let Some(value) = &self.card {
            extensions.card = match value {
                Value::Null => None,
                value => Some(check::parse_card(value)?).filter(|card| !card.is_empty()),
            };
        }
        extensions.ios = url(&self.ios, "ios", &extensions.ios)?;
        extensions.android = url(&self.android, "android", &extensions.android)?;
        Ok(())
    }

    /// The destinations of `extensions` that these changes set, with their
    /// field paths (`rules[1].variants[0].url`), for the checks that apply
    /// to every destination a link can send a visitor to.
    pub fn destinations<'a>(&self, extensions: &'a LinkExtensions) -> Vec<(String, &'a str)> {
        let given = |field: &str| {
            if field.starts_with("rules[") {
                self.rules.is_some()
            } else if field.starts_with("variants[") {
                self.variants.is_some()
            } else {
                match field {
                    "fallback_url" => self.fallback_url.is_some(),
                    "ios" => self.ios.is_some(),
                    "android" => self.android.is_some(),
                    _ => false,
                }
            }
        };
        let mut found = extensions.destinations();
        found.retain(|(field, _)| given(field));
        found
    }
}

/// A URL field after a change: unchanged when not given, cleared by `null`.
fn url(
    given: &Option<Value>,
    field: &str,
    current: &Option<String>,
) -> Result<Option<String>, FieldError> {
    match given {
        None => Ok(current.clone()),
        Some(Value::Null) => Ok(None),
        Some(value) => check::parse_url(value, field).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(value: Value) -> BehaviourChanges {
        let field = |name: &str| value.get(name).cloned();
        BehaviourChanges {
            rules: field("rules"),
            variants: field("variants"),
            fallback_url: field("fallback_url"),
            card: field("card"),
            ios: field("ios"),
            android: field("android"),
        }
    }

    #[test]
    fn given_fields_replace_null_clears_absent_stays() {
        let mut extensions = LinkExtensions::default();
        changes(json!({
            "rules": [{"url": "https://e.example/fr", "conditions": [{"type": "language", "value": "FR"}],
                       "variants": [{"url": "https://a.example/", "weight": 50}, {"url": "https://b.example/", "weight": 50}]}],
            "variants": [{"url": "https://a.example/", "weight": 30}, {"url": "https://b.example/", "weight": 70}],
            "fallback_url": "https://E.example/gone",
            "card": {"title": "Spring"},
            "ios": "https://apps.example/app",
            "android": "https://play.example/app"
        }))
        .apply(&mut extensions)
        .unwrap();
        assert_eq!(extensions.rules.len(), 1);
        assert_eq!(extensions.variants.len(), 2);
        assert_eq!(
            extensions.fallback_url.as_deref(),
            Some("https://e.example/gone")
        );
        assert_eq!(
            extensions.card.as_ref().and_then(|c| c.title.as_deref()),
            Some("Spring")
        );
        let set = extensions.clone();

        changes(json!({"ios": "https://apps.example/other"}))
            .apply(&mut extensions)
            .unwrap();
        assert_eq!(extensions.rules, set.rules, "absent fields stay");
        assert_eq!(
            extensions.ios.as_deref(),
            Some("https://apps.example/other")
        );

        changes(
            json!({"rules": [], "variants": null, "fallback_url": null, "card": {},
                       "ios": null, "android": null}),
        )
        .apply(&mut extensions)
        .unwrap();
        assert!(extensions.is_plain(), "{extensions:?}");
    }

    #[test]
    fn errors_name_the_full_path() {
        for (value, field) in [
            (
                json!({"variants": [{"url": "https://a.example/", "weight": 50}]}),
                "variants",
            ),
            (
                json!({"variants": [{"url": "https://a.example/", "weight": 50}, {"url": "ftp://b", "weight": 50}]}),
                "variants[1].url",
            ),
            (json!({"fallback_url": 3}), "fallback_url"),
            (json!({"ios": "javascript:alert(1)"}), "ios"),
            (json!({"android": ""}), "android"),
            (json!({"card": {"image": "data:x"}}), "card.image"),
            (
                json!({"rules": [{"url": "https://e.example/", "conditions": [{"type": "os", "value": "amiga"}]}]}),
                "rules[0].conditions[0].value",
            ),
        ] {
            let error = changes(value.clone())
                .apply(&mut LinkExtensions::default())
                .unwrap_err();
            assert_eq!(error.field(), field, "{value}");
        }
    }

    #[test]
    fn destinations_name_only_the_given_fields() {
        let mut extensions = LinkExtensions::default();
        let all = changes(json!({
            "rules": [{"url": "https://r.example/", "conditions": [{"type": "os", "value": "ios"}],
                       "variants": [{"url": "https://a.example/", "weight": 50}, {"url": "https://b.example/", "weight": 50}]}],
            "variants": [{"url": "https://c.example/", "weight": 50}, {"url": "https://d.example/", "weight": 50}],
            "fallback_url": "https://f.example/",
            "ios": "https://i.example/",
            "android": "https://n.example/"
        }));
        all.apply(&mut extensions).unwrap();
        let fields: Vec<String> = all
            .destinations(&extensions)
            .into_iter()
            .map(|(field, _)| field)
            .collect();
        assert_eq!(
            fields,
            [
                "rules[0].url",
                "rules[0].variants[0].url",
                "rules[0].variants[1].url",
                "variants[0].url",
                "variants[1].url",
                "fallback_url",
                "ios",
                "android"
            ]
        );
        let one = changes(json!({"android": "https://n.example/x"}));
        assert_eq!(
            one.destinations(&extensions),
            [("android".to_owned(), "https://n.example/")]
        );
    }
}
