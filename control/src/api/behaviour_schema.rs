//! OpenAPI schemas of a link's behaviour fields: `Rule`, `Condition`,
//! `Schedule`, `Variant` and `Card` in requests, and the forms the link view
//! shows (`RuleView`, `ConditionView`, `VariantView`, `CardView`). Built from
//! the limits `model/src/behaviour/check.rs` enforces. As in [`super::schema`],
//! request schemas are at least as strict as the server (byte limits become
//! the character counts that always fit); rules across fields (weights adding
//! up to 100, known time zones, real calendar dates) are in descriptions.

use std::borrow::Cow;

use ricochet_model::behaviour::check::{MAX_CARD_DESCRIPTION, MAX_CARD_TITLE};
use ricochet_model::behaviour::condition::{CONDITION_TYPES, MAX_VALUE_LEN};
use ricochet_model::behaviour::{
    Device, MAX_CONDITIONS, MAX_RULES, MAX_VARIANTS, MIN_VARIANTS, Os, Weekday,
};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};

use super::schema::{destination, destination_view};

/// Characters of a condition's text that always fit in its byte limit.
const VALUE_CHARS: usize = MAX_VALUE_LEN / 4;

/// No control characters (what `char::is_control` refuses).
const NO_CONTROL: &str = "[^\\x00-\\x1f\\x7f-\\x9f]";

/// One character that is neither a control character nor white space (what
/// `str::trim` removes), spelled alike in ECMAScript, Python and Rust.
const VISIBLE: &str =
    "[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable(builder: ObjectBuilder, kind: Type) -> ObjectBuilder {
    builder.schema_type(SchemaType::from_iter([kind, Type::Null]))
}

/// An object with exactly these properties, `required` among them.
fn closed(properties: Vec<(&str, RefOr<Schema>)>, required: &[&str]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)));
    for (name, schema) in properties {
        object = object.property(name, schema);
    }
    for name in required {
        object = object.required(*name);
    }
    object
}

/// `null`, or the component `name`.
fn nullable_ref(name: &str) -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(Ref::from_schema_name(name))
            .build(),
    )
}

/// Declares a component schema named after its type.
macro_rules! component {
    ($(#[$doc:meta])* $name:ident => $build:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $build.into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

component!(
    /// A targeting rule in a request.
    Rule => closed(
        vec![
            ("url", destination().into()),
            (
                "conditions",
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("Condition"))
                    .min_items(Some(1))
                    .max_items(Some(MAX_CONDITIONS))
                    .description(Some(format!(
                        "1 to {MAX_CONDITIONS} conditions; the rule matches when all of them do."
                    )))
                    .into(),
            ),
            ("variants", request_variants().into()),
        ],
        &["url", "conditions"],
    )
    .description(Some(
        "When every condition matches, the visitor goes to `url`, or, when the rule has \
         `variants`, to one of them. Rules are tried in order; the first that matches wins.",
    ))
    .examples([serde_json::json!({
        "url": "https://example.com/fr",
        "conditions": [{"type": "language", "value": "fr"},
                       {"type": "query-param", "key": "ref", "value": "mail"}]
    })])
);

component!(
    /// A rule as the link view shows it.
    RuleView => closed(
        vec![
            ("url", destination_view().into()),
            (
                "conditions",
                ArrayBuilder::new()
                    .items(Ref::from_schema_name("ConditionView"))
                    .min_items(Some(1))
                    .max_items(Some(MAX_CONDITIONS))
                    .into(),
            ),
            ("variants", variants_view().into()),
        ],
        &["url", "conditions", "variants"],
    )
    .description(Some(
        "A targeting rule, normalized; `variants` is `[]` when the rule has no split.",
    ))
);

component!(
    /// A condition in a request: one alternative per type.
    Condition => {
        let mut one_of = OneOfBuilder::new().description(Some(format!(
            "One condition of a rule, `{{type, key, value}}`. `type` is one of {}. \
             `key` is only for the three query-parameter types.",
            CONDITION_TYPES.join(", ")
        )));
        for alternative in condition_alternatives() {
            one_of = one_of.item(alternative);
        }
        Schema::OneOf(one_of.build())
    }
);

component!(
    /// A condition as the link view shows it, normalized.
    ConditionView => closed(
        vec![
            (
                "type",
                string().enum_values(Some(CONDITION_TYPES.iter().copied())).into(),
            ),
            ("key", string().max_length(Some(MAX_VALUE_LEN)).into()),
            (
                "value",
                Schema::OneOf(
                    OneOfBuilder::new()
                        .item(string().max_length(Some(MAX_VALUE_LEN)))
                        .item(Ref::from_schema_name("Schedule"))
                        .build(),
                )
                .into(),
            ),
        ],
        &["type"],
    )
    .description(Some(
        "A condition in its normalized form: devices and systems lowercase, countries \
         uppercase, languages lowercase, IP addresses as CIDR networks (`203.0.113.9/32`), \
         instants in UTC. `key` is present for the query-parameter types only; `value` is \
         absent for `any-value-query-param` and `valueless-query-param`, and a `Schedule` \
         for `schedule`.",
    ))
);

component!(
    /// A weekly window of a `schedule` condition.
    Schedule => closed(
        vec![
            (
                "timezone",
                string()
                    .pattern(Some("^[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+)*$"))
                    .max_length(Some(64))
                    .description(Some(
                        "An IANA time zone such as `Europe/Paris` or `UTC`; a name the \
                         server's time zone database does not know is refused (400, field \
                         `…value.timezone`).",
                    ))
                    .examples(["Europe/Paris"])
                    .into(),
            ),
            (
                "days",
                ArrayBuilder::new()
                    .items(string().enum_values(Some(Weekday::ALL.map(Weekday::as_str))))
                    .min_items(Some(1))
                    .description(Some("The days the window opens on; every day when absent."))
                    .into(),
            ),
            ("from", clock_time("Opening time, inclusive (default `00:00`).")),
            (
                "to",
                clock_time(
                    "Closing time, exclusive (default `24:00`); it must differ from `from`. \
                     When it is not after `from` the window runs overnight, into the next day.",
                ),
            ),
        ],
        &["timezone"],
    )
    .description(Some(
        "On the listed days, from `from` to `to`, local time in `timezone`.",
    ))
);

component!(
    /// One destination of an A/B split in a request.
    Variant => closed(
        vec![("url", destination().into()), ("weight", weight())],
        &["url", "weight"],
    )
    .examples([serde_json::json!({"url": "https://example.com/a", "weight": 50})])
);

component!(
    /// A variant as the link view shows it.
    VariantView => closed(
        vec![("url", destination_view().into()), ("weight", weight())],
        &["url", "weight"],
    )
);

component!(
    /// What link-preview crawlers are shown, in a request.
    Card => closed(
        vec![
            ("title", card_text(MAX_CARD_TITLE / 4, MAX_CARD_TITLE, "Falls back to the link's title.")),
            ("description", card_text(MAX_CARD_DESCRIPTION / 4, MAX_CARD_DESCRIPTION, "")),
            ("image", optional_request_destination("An absolute http(s) image URL.").into()),
        ],
        &[],
    )
    .description(Some(
        "The Open Graph and Twitter Card tags link-preview crawlers are shown. \
         Text that is only white space counts as unset; a card with nothing set is no card.",
    ))
    .examples([serde_json::json!({"title": "Spring sale", "description": "Everything at half price",
                                  "image": "https://example.com/spring.png"})])
);

component!(
    /// A card as the link view shows it.
    CardView => closed(
        vec![
            ("title", nullable(string(), Type::String).max_length(Some(MAX_CARD_TITLE)).into()),
            (
                "description",
                nullable(string(), Type::String).max_length(Some(MAX_CARD_DESCRIPTION)).into(),
            ),
            ("image", optional_destination_view().into()),
        ],
        &["title", "description", "image"],
    )
);

fn weight() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(100))
        .description(Some(
            "Percentage of the traffic; the weights of a split add up to 100.",
        ))
        .into()
}

fn clock_time(description: &str) -> RefOr<Schema> {
    string()
        .pattern(Some("^(?:(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"))
        .description(Some(description))
        .examples(["09:00"])
        .into()
}

fn card_text(chars: usize, bytes: usize, extra: &str) -> RefOr<Schema> {
    nullable(string(), Type::String)
        .max_length(Some(chars))
        .pattern(Some("^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$"))
        .description(Some(format!(
            "At most {bytes} bytes of UTF-8 ({chars} characters always fit); no control \
             characters but new lines. {extra}"
        )))
        .into()
}

/// A destination in a request that may be `null`.
fn optional_request_destination(description: &str) -> Schema {
    match destination() {
        Schema::Object(mut object) => {
            object.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
            object.description = Some(description.to_owned());
            Schema::Object(object)
        }
        other => other,
    }
}

fn optional_destination_view() -> Schema {
    match destination_view() {
        Schema::Object(mut object) => {
            object.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
            Schema::Object(object)
        }
        other => other,
    }
}

/// The `variants` of a link or rule in a request.
fn request_variants() -> ArrayBuilder {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(Ref::from_schema_name("Variant"))
        .min_items(Some(MIN_VARIANTS))
        .max_items(Some(MAX_VARIANTS))
        .description(Some(format!(
            "An A/B split: {MIN_VARIANTS} to {MAX_VARIANTS} destinations whose integer \
             weights add up to 100. `null` (or `[]`) means no split."
        )))
}

fn variants_view() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("VariantView"))
        .max_items(Some(MAX_VARIANTS))
}

/// The alternatives of [`Condition`], one per type, each as strict as the
/// server's parser.
fn condition_alternatives() -> Vec<Schema> {
    let text = || {
        string()
            .min_length(Some(1))
            .max_length(Some(VALUE_CHARS))
            .pattern(Some(format!("^{NO_CONTROL}*{VISIBLE}{NO_CONTROL}*$")))
            .description(Some(format!(
                "At most {MAX_VALUE_LEN} bytes of UTF-8 ({VALUE_CHARS} characters always fit), \
                 not only white space, no control characters."
            )))
    };
    let key = || {
        string()
            .min_length(Some(1))
            .max_length(Some(VALUE_CHARS))
            .pattern(Some(format!("^{NO_CONTROL}+$")))
            .description(Some("The query parameter's name."))
    };
    let instant = |description: &str| {
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .pattern(Some(
                "^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$",
            ))
            .description(Some(format!(
                "{description} An RFC 3339 date-time (a real calendar date)."
            )))
            .examples(["2026-12-24T18:00:00Z"])
    };
    let no_value = || ObjectBuilder::new().schema_type(Type::Null);
    let alternatives: Vec<(&str, Option<ObjectBuilder>, Option<ObjectBuilder>, bool)> = vec![
        (
            "device",
            None,
            Some(string().enum_values(Some(Device::ALL.map(Device::as_str)))),
            true,
        ),
        (
            "os",
            None,
            Some(string().enum_values(Some(Os::ALL.map(Os::as_str)))),
            true,
        ),
        ("browser", None, Some(text().examples(["firefox"])), true),
        (
            "language",
            None,
            Some(
                string()
                    .pattern(Some("^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*$"))
                    .max_length(Some(35))
                    .description(Some(
                        "A BCP 47 language tag such as `fr` or `pt-BR`, matched against \
                         Accept-Language.",
                    ))
                    .examples(["fr"]),
            ),
            true,
        ),
        (
            "country",
            None,
            Some(
                string()
                    .pattern(Some("^[A-Za-z]{2}$"))
                    .description(Some("An ISO 3166-1 alpha-2 country code."))
                    .examples(["FR"]),
            ),
            true,
        ),
        ("city", None, Some(text().examples(["Paris"])), true),
        (
            "query-param",
            Some(key()),
            Some(
                nullable(string(), Type::String)
                    .max_length(Some(VALUE_CHARS))
                    .pattern(Some(format!("^{NO_CONTROL}*$")))
                    .description(Some(
                        "The parameter's value (may be empty); absent or `null` matches any \
                         value, as `any-value-query-param` does.",
                    )),
            ),
            false,
        ),
        (
            "any-value-query-param",
            Some(key()),
            Some(no_value()),
            false,
        ),
        (
            "valueless-query-param",
            Some(key()),
            Some(no_value()),
            false,
        ),
        (
            "ip",
            None,
            Some(
                string()
                    .pattern(Some(ip_pattern()))
                    .description(Some(
                        "An IPv4 or IPv6 address or CIDR range, such as `203.0.113.0/24`.",
                    ))
                    .examples(["203.0.113.0/24"]),
            ),
            true,
        ),
        (
            "after",
            None,
            Some(instant("Matches at and after this instant.")),
            true,
        ),
        (
            "before",
            None,
            Some(instant("Matches before this instant.")),
            true,
        ),
        ("schedule", None, None, true),
    ];
    alternatives
        .into_iter()
        .map(|(kind, key, value, value_required)| {
            let mut properties = vec![("type", string().enum_values(Some([kind])).into())];
            if let Some(key) = key {
                properties.push(("key", key.into()));
            }
            let value = match value {
                Some(value) => value.into(),
                None => Ref::from_schema_name("Schedule").into(),
            };
            properties.push(("value", value));
            let mut required = vec!["type"];
            if properties.iter().any(|(name, _)| *name == "key") {
                required.push("key");
            }
            if value_required {
                required.push("value");
            }
            closed(properties, &required).title(Some(kind)).into()
        })
        .collect()
}

/// An IPv4 or IPv6 address (without an embedded IPv4 part), with an
/// optional prefix length.
fn ip_pattern() -> String {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    let v4 = format!("(?:{octet}\\.){{3}}{octet}(?:/(?:3[0-2]|[12]?[0-9]))?");
    let h = "[0-9A-Fa-f]{1,4}";
    let v6 = [
        format!("(?:{h}:){{7}}{h}"),
        format!("(?:{h}:){{1,7}}:"),
        format!("(?:{h}:){{1,6}}:{h}"),
        format!("(?:{h}:){{1,5}}(?::{h}){{1,2}}"),
        format!("(?:{h}:){{1,4}}(?::{h}){{1,3}}"),
        format!("(?:{h}:){{1,3}}(?::{h}){{1,4}}"),
        format!("(?:{h}:){{1,2}}(?::{h}){{1,5}}"),
        format!("{h}:(?::{h}){{1,6}}"),
        format!(":(?:(?::{h}){{1,7}}|:)"),
    ]
    .join("|");
    format!("^(?:{v4}|(?:{v6})(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$")
}

/// `rules` of a create or patch.
pub fn rules() -> Schema {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(Ref::from_schema_name("Rule"))
        .max_items(Some(MAX_RULES))
        .description(Some(format!(
            "Targeting rules, at most {MAX_RULES}, tried in order: the first whose conditions \
             all match picks the destination. On `PATCH` the array replaces the link's rules; \
             `null` or `[]` removes them."
        )))
        .into()
}

/// The link's own `variants` in a create or patch.
pub fn variants() -> Schema {
    request_variants().into()
}

/// `fallback_url` of a create or patch.
pub fn fallback_url() -> Schema {
    optional_request_destination(
        "Where a gone link (expired, disabled, deleted, or past its `max_clicks`) \
         sends visitors instead of answering 410. `null` removes it on `PATCH`.",
    )
}

/// `ios` of a create or patch.
pub fn ios() -> Schema {
    optional_request_destination(
        "Destination for visitors on iOS, checked before the rules (an App Store link, \
         typically). `null` removes it on `PATCH`.",
    )
}

/// `android` of a create or patch.
pub fn android() -> Schema {
    optional_request_destination(
        "Destination for visitors on Android, checked after `ios` and before the rules. \
         `null` removes it on `PATCH`.",
    )
}

/// `root_url` of a domain's settings patch.
pub fn root_url() -> Schema {
    optional_request_destination(
        "Where the domain's root `/` sends visitors (302, not cached); `null` brings \
         back the engine's 404 page. May not be on a short-link domain of this installation.",
    )
}

/// `not_found_url` of a domain's settings patch.
pub fn not_found_url() -> Schema {
    optional_request_destination(
        "Where any path of the domain that is no link sends visitors (302, not cached); \
         `null` brings back the engine's 404 page. May not be on a short-link domain of \
         this installation.",
    )
}

/// `card` of a create or patch.
pub fn card() -> Schema {
    match nullable_ref("Card") {
        Schema::OneOf(mut one_of) => {
            one_of.description = Some(
                "What link-preview crawlers are shown. On `PATCH` the object replaces the \
                 card; `null` removes it."
                    .to_owned(),
            );
            Schema::OneOf(one_of)
        }
        other => other,
    }
}

/// `rules` of the link view.
pub fn rules_view() -> Schema {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("RuleView"))
        .max_items(Some(MAX_RULES))
        .description(Some(
            "Targeting rules, in order; `[]` when the link has none.",
        ))
        .into()
}

/// `variants` of the link view.
pub fn variants_of_link_view() -> Schema {
    variants_view()
        .description(Some("The link's A/B split; `[]` when it has none."))
        .into()
}

/// `card` of the link view.
pub fn card_view() -> Schema {
    nullable_ref("CardView")
}

/// `fallback_url`, `ios` and `android` of the link view.
pub fn url_view() -> Schema {
    optional_destination_view()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_condition_type_has_one_alternative() {
        let kinds: Vec<String> = condition_alternatives()
            .into_iter()
            .map(|schema| match schema {
                Schema::Object(object) => object.title.expect("a title"),
                _ => panic!("an object"),
            })
            .collect();
        assert_eq!(kinds, CONDITION_TYPES);
    }
}
