//! Limits and validation of rules, variants, cards and the other behaviour
//! fields. The `parse_*` functions read the API's JSON and return normalized
//! values; errors name the field path the way a client wrote it
//! (`rules[3].conditions[0].value`). [`check_extensions`] re-checks a stored
//! record's fields (engines run it on intake).

use serde_json::Value;

use super::condition::RawCondition;
use super::{Card, Rule, Variant};
use crate::link::LinkExtensions;
use crate::validate::{self, ValidationError};

/// Most rules on one link.
pub const MAX_RULES: usize = 32;
/// Most conditions in one rule.
pub const MAX_CONDITIONS: usize = 16;
/// Fewest and most destinations of an A/B split.
pub const MIN_VARIANTS: usize = 2;
pub const MAX_VARIANTS: usize = 8;
/// Longest card title and description, in bytes.
pub const MAX_CARD_TITLE: usize = 300;
pub const MAX_CARD_DESCRIPTION: usize = 1000;

/// A refused value and the path of the field that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The same error under `prefix` (`conditions[0]` + `value` →
    /// `conditions[0].value`).
    pub fn under(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

impl From<FieldError> for ValidationError {
    fn from(error: FieldError) -> Self {
        let top = error
            .field
            .split(['.', '['])
            .next()
            .unwrap_or_default()
            .to_owned();
        let code = match top.as_str() {
            "rules" => "invalid_rule",
            "variants" => "invalid_variants",
            "card" => "invalid_card",
            "password" => "invalid_password",
            "max_clicks" => "invalid_max_clicks",
            _ => "invalid_url",
        };
        ValidationError::Field {
            field: error.field,
            code,
            message: error.message,
        }
    }
}

/// A destination-like URL at `field`, normalized.
pub fn parse_url(value: &Value, field: &str) -> Result<String, FieldError> {
    let Some(text) = value.as_str() else {
        return Err(FieldError::new(
            field,
            "must be an absolute http(s) URL string",
        ));
    };
    validate::validate_destination(text)
        .map_err(|error| FieldError::new(field, format!("{field}: {error}")))
}

/// The `rules` array of the API.
pub fn parse_rules(value: &Value) -> Result<Vec<Rule>, FieldError> {
    let Some(items) = value.as_array() else {
        return Err(FieldError::new("rules", "rules must be an array"));
    };
    if items.len() > MAX_RULES {
        return Err(FieldError::new(
            "rules",
            format!("at most {MAX_RULES} rules; got {}", items.len()),
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_rule(item).map_err(|e| e.under(&format!("rules[{index}]"))))
        .collect()
}

fn parse_rule(value: &Value) -> Result<Rule, FieldError> {
    let Some(object) = value.as_object() else {
        return Err(FieldError::new(
            "",
            "a rule is an object with url and conditions",
        ));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "url" | "conditions" | "variants"))
    {
        return Err(FieldError::new(
            unknown,
            "unknown field; a rule has url, conditions and variants",
        ));
    }
    let url = parse_url(object.get("url").unwrap_or(&Value::Null), "url")?;
    let Some(conditions) = object.get("conditions").and_then(Value::as_array) else {
        return Err(FieldError::new(
            "conditions",
            "conditions must be an array of 1 or more conditions",
        ));
    };
    if conditions.is_empty() || conditions.len() > MAX_CONDITIONS {
        return Err(FieldError::new(
            "conditions",
            format!(
                "a rule has 1 to {MAX_CONDITIONS} conditions; got {}",
                conditions.len()
            ),
        ));
    }
    let conditions = conditions
        .iter()
        .enumerate()
        .map(|(index, condition)| {
            serde_json::from_value::<RawCondition>(condition.clone())
                .map_err(|_| FieldError::new("", "a condition is an object {type, key, value}"))
                .and_then(|raw| raw.parse())
                .map_err(|e| e.under(&format!("conditions[{index}]")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let variants = match object.get("variants") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => parse_variants(value).map_err(|e| e.under("variants"))?,
    };
    Ok(Rule {
        url,
        conditions,
        variants,
    })
}

/// A `variants` array; errors are relative to it (`[1].weight`).
pub fn parse_variants(value: &Value) -> Result<Vec<Variant>, FieldError> {
    let Some(items) = value.as_array() else {
        return Err(FieldError::new("", "variants must be an array"));
    };
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut variants = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = |field: &str| format!("[{index}].{field}");
        let Some(object) = item.as_object() else {
            return Err(FieldError::new(
                &format!("[{index}]"),
                "a variant is an object with url and weight",
            ));
        };
        if let Some(unknown) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "url" | "weight"))
        {
            return Err(FieldError::new(
                &at(unknown),
                "unknown field; a variant has url and weight",
            ));
        }
        let url = parse_url(object.get("url").unwrap_or(&Value::Null), "url")
            .map_err(|e| FieldError::new(&at("url"), e.message))?;
        let weight = match object.get("weight").and_then(Value::as_u64) {
            Some(weight) if weight <= 100 => weight as u8,
            _ => {
                return Err(FieldError::new(
                    &at("weight"),
                    "weight must be an integer percentage from 0 to 100",
                ));
            }
        };
        variants.push(Variant { url, weight });
    }
    check_variant_set(&variants)?;
    Ok(variants)
}

/// Count and weights of a split (each variant's own fields already checked).
fn check_variant_set(variants: &[Variant]) -> Result<(), FieldError> {
    if !(MIN_VARIANTS..=MAX_VARIANTS).contains(&variants.len()) {
        return Err(FieldError::new(
            "",
            format!(
                "a split has {MIN_VARIANTS} to {MAX_VARIANTS} variants; got {}",
                variants.len()
            ),
        ));
    }
    let sum: u32 = variants.iter().map(|v| v.weight as u32).sum();
    if sum != 100 {
        return Err(FieldError::new(
            "",
            format!("variant weights must add up to 100; they add up to {sum}"),
        ));
    }
    Ok(())
}

/// The `card` object.
pub fn parse_card(value: &Value) -> Result<Card, FieldError> {
    let Some(object) = value.as_object() else {
        return Err(FieldError::new(
            "card",
            "card must be an object with title, description and image",
        ));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "title" | "description" | "image"))
    {
        return Err(FieldError::new(
            &format!("card.{unknown}"),
            "unknown field; a card has title, description and image",
        ));
    }
    let text = |name: &str, max: usize| -> Result<Option<String>, FieldError> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.len() <= max && !has_control(text) => {
                Ok((!text.trim().is_empty()).then(|| text.clone()))
            }
            Some(_) => Err(FieldError::new(
                &format!("card.{name}"),
                format!(
                    "card.{name} must be a string of at most {max} bytes without control characters"
                ),
            )),
        }
    };
    let card = Card {
        title: text("title", MAX_CARD_TITLE)?,
        description: text("description", MAX_CARD_DESCRIPTION)?,
        image: match object.get("image") {
            None | Some(Value::Null) => None,
            Some(value) => Some(parse_url(value, "card.image")?),
        },
    };
    Ok(card)
}

fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

/// Re-checks the behaviour fields of a stored record: limits, normalized
/// URLs, conditions and weights.
pub fn check_extensions(extensions: &LinkExtensions) -> Result<(), FieldError> {
    let normalized = |url: &str, field: &str| -> Result<(), FieldError> {
        match validate::validate_destination(url) {
            Ok(normal) if normal == url => Ok(()),
            _ => Err(FieldError::new(field, "not a normalized http(s) URL")),
        }
    };
    if extensions.rules.len() > MAX_RULES {
        return Err(FieldError::new(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    for (index, rule) in extensions.rules.iter().enumerate() {
        let at = format!("rules[{index}]");
        normalized(&rule.url, &format!("{at}.url"))?;
        if rule.conditions.is_empty() || rule.conditions.len() > MAX_CONDITIONS {
            return Err(FieldError::new(
                &format!("{at}.conditions"),
                format!("1 to {MAX_CONDITIONS} conditions"),
            ));
        }
        for (number, condition) in rule.conditions.iter().enumerate() {
            condition
                .check()
                .map_err(|e| e.under(&format!("{at}.conditions[{number}]")))?;
        }
        check_stored_variants(&rule.variants, &format!("{at}.variants"))?;
    }
    check_stored_variants(&extensions.variants, "variants")?;
    for (url, field) in [
        (&extensions.fallback_url, "fallback_url"),
        (&extensions.ios, "ios"),
        (&extensions.android, "android"),
    ] {
        if let Some(url) = url {
            normalized(url, field)?;
        }
    }
    if let Some(card) = &extensions.card {
        let too_long = |text: &Option<String>, max: usize| {
            text.as_ref()
                .is_some_and(|t| t.len() > max || has_control(t))
        };
        if too_long(&card.title, MAX_CARD_TITLE)
            || too_long(&card.description, MAX_CARD_DESCRIPTION)
        {
            return Err(FieldError::new(
                "card",
                "card text too long or has control characters",
            ));
        }
        if let Some(image) = &card.image {
            normalized(image, "card.image")?;
        }
    }
    if extensions.click_limit == Some(0) {
        return Err(FieldError::new(
            "max_clicks",
            "max_clicks must be at least 1",
        ));
    }
    if extensions
        .blocked
        .as_ref()
        .is_some_and(|block| !block.is_valid())
    {
        return Err(FieldError::new(
            "blocked",
            "blocked host empty or too long, or reason too long or with control characters",
        ));
    }
    if let Some(page) = &extensions.page {
        page.check()?;
        // A page answers with itself: nothing else of a link applies to it.
        let LinkExtensions {
            click_limit,
            rules,
            variants,
            fallback_url,
            card,
            ios,
            android,
            password_hash,
            blocked: _,
            page: _,
        } = extensions;
        if click_limit.is_some()
            || !rules.is_empty()
            || !variants.is_empty()
            || fallback_url.is_some()
            || card.is_some()
            || ios.is_some()
            || android.is_some()
            || password_hash.is_some()
        {
            return Err(FieldError::new(
                "page",
                "a page has no rules, variants, fallback, card, app links, password or click limit",
            ));
        }
    }
    Ok(())
}

fn check_stored_variants(variants: &[Variant], field: &str) -> Result<(), FieldError> {
    if variants.is_empty() {
        return Ok(());
    }
    for (index, variant) in variants.iter().enumerate() {
        match validate::validate_destination(&variant.url) {
            Ok(normal) if normal == variant.url => {}
            _ => {
                return Err(FieldError::new(
                    &format!("{field}[{index}].url"),
                    "not a normalized http(s) URL",
                ));
            }
        }
    }
    check_variant_set(variants).map_err(|e| e.under(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_parse_with_normalized_urls() {
        let rules = parse_rules(&json!([
            {"url": "https://Example.com/ios", "conditions": [{"type": "os", "value": "ios"}]},
            {"url": "https://example.com/fr", "conditions": [
                {"type": "language", "value": "fr"},
                {"type": "query-param", "key": "ref", "value": "mail"}],
             "variants": [{"url": "https://a.example/", "weight": 30}, {"url": "https://b.example/", "weight": 70}]}
        ]))
        .unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].url, "https://example.com/ios");
        assert_eq!(rules[1].variants.len(), 2);
        let extensions = LinkExtensions {
            rules,
            ..LinkExtensions::default()
        };
        check_extensions(&extensions).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let cond = |c: Value| {
            json!([{"url": "https://e.example/", "conditions": [{"type": "os", "value": "ios"}]},
                                     {"url": "https://e.example/", "conditions": [{"type": "os", "value": "ios"}, c]}])
        };
        for (value, field) in [
            (json!({}), "rules"),
            (json!([1]), "rules[0]"),
            (
                json!([{"url": "ftp://x", "conditions": []}]),
                "rules[0].url",
            ),
            (
                json!([{"url": "https://e.example/", "conditions": []}]),
                "rules[0].conditions",
            ),
            (
                json!([{"url": "https://e.example/", "conditions": [{"type": "os", "value": "ios"}], "when": 1}]),
                "rules[0].when",
            ),
            (
                cond(json!({"type": "device", "value": "fridge"})),
                "rules[1].conditions[1].value",
            ),
            (cond(json!("device")), "rules[1].conditions[1]"),
            (
                cond(json!({"type": "schedule", "value": {"timezone": "Nowhere"}})),
                "rules[1].conditions[1].value.timezone",
            ),
            (
                json!([{"url": "https://e.example/", "conditions": [{"type": "os", "value": "ios"}],
                     "variants": [{"url": "https://a.example/", "weight": 60}, {"url": "https://b.example/", "weight": 60}]}]),
                "rules[0].variants",
            ),
            (
                json!([{"url": "https://e.example/", "conditions": [{"type": "os", "value": "ios"}],
                     "variants": [{"url": "https://a.example/", "weight": 50}, {"url": "javascript:x", "weight": 50}]}]),
                "rules[0].variants[1].url",
            ),
        ] {
            let error = parse_rules(&value).unwrap_err();
            assert_eq!(error.field, field, "{value}: {error:?}");
        }
        let many: Vec<Value> = (0..=MAX_RULES)
            .map(|_| json!({"url": "https://e.example/", "conditions": [{"type": "os", "value": "ios"}]}))
            .collect();
        assert_eq!(parse_rules(&Value::from(many)).unwrap_err().field, "rules");
    }

    #[test]
    fn variants_need_two_to_eight_summing_to_100() {
        let split = |weights: &[u64]| {
            let items: Vec<Value> = weights
                .iter()
                .map(|w| json!({"url": "https://e.example/", "weight": w}))
                .collect();
            parse_variants(&Value::from(items))
        };
        assert_eq!(split(&[50, 50]).unwrap().len(), 2);
        assert_eq!(split(&[100, 0]).unwrap().len(), 2);
        assert!(split(&[]).unwrap().is_empty());
        assert_eq!(split(&[100]).unwrap_err().field, "");
        assert_eq!(split(&[40, 40]).unwrap_err().field, "");
        assert_eq!(split(&[12; 9]).unwrap_err().field, "");
        assert_eq!(split(&[50, 150]).unwrap_err().field, "[1].weight");
        let error: ValidationError = split(&[40, 40]).unwrap_err().under("variants").into();
        assert_eq!(error.field(), "variants");
        assert_eq!(error.code(), "invalid_variants");
    }

    #[test]
    fn cards() {
        let card = parse_card(&json!({"title": "<b>Hi</b>", "image": "https://img.example/a.png"}))
            .unwrap();
        assert_eq!(card.title.as_deref(), Some("<b>Hi</b>"));
        assert_eq!(
            parse_card(&json!({"image": "javascript:alert(1)"}))
                .unwrap_err()
                .field,
            "card.image"
        );
        assert_eq!(
            parse_card(&json!({"title": "x".repeat(MAX_CARD_TITLE + 1)}))
                .unwrap_err()
                .field,
            "card.title"
        );
        assert_eq!(
            parse_card(&json!({"colour": "red"})).unwrap_err().field,
            "card.colour"
        );
        assert_eq!(parse_card(&json!("title")).unwrap_err().field, "card");
    }

    #[test]
    fn stored_extensions_are_rechecked() {
        let mut extensions = LinkExtensions {
            fallback_url: Some("https://Example.com/".into()),
            ..LinkExtensions::default()
        };
        assert_eq!(
            check_extensions(&extensions).unwrap_err().field,
            "fallback_url"
        );
        extensions.fallback_url = Some("https://example.com/".into());
        check_extensions(&extensions).unwrap();
        extensions.variants = vec![Variant {
            url: "https://example.com/".into(),
            weight: 100,
        }];
        assert_eq!(check_extensions(&extensions).unwrap_err().field, "variants");
    }
}
