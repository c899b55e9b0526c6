//! OpenAPI schemas of the values the service constrains, built from the rules
//! it enforces (`model/src/validate.rs`, `Interval`, `Dimension`). Each is at
//! least as strict as the server, so a request valid by the schema is never
//! refused for its shape; limits the schema cannot count exactly (UTF-8 bytes)
//! use the count that always fits and say so.

use ricochet_model::clicks::Dimension;
use ricochet_model::transfer::MAX_CLICKS;
use ricochet_model::validate::{
    MAX_CODE_LEN, MAX_DOMAIN_LEN, MAX_TAG_LEN, MAX_TAGS, MAX_TITLE_LEN, MAX_URL_LEN,
};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{KnownFormat, SchemaFormat};

use crate::service::access::{
    LINK_ARGON2_ITERATIONS, LINK_ARGON2_MEMORY_KIB, LINK_ARGON2_PARALLELISM, MAX_PASSWORD_CHARS,
};

/// Series intervals `Interval::parse` takes.
pub const INTERVALS: [&str; 7] = ["10s", "1m", "1h", "1d", "minute", "hour", "day"];
/// Redirect statuses `RedirectStatus` takes.
pub const STATUSES: [u16; 4] = [301, 302, 307, 308];
/// Link states.
pub const STATES: [&str; 3] = ["active", "disabled", "deleted"];
/// Listing orders.
pub const SORTS: [&str; 3] = ["-created", "created", "code"];
/// Largest page of a listing or of top links.
pub const MAX_PAGE: u64 = 1000;

/// A letter or digit, then letters, digits and hyphens, ending with a letter
/// or digit, at most 63 long, never with hyphens in both the third and fourth
/// places (which IDNA refuses, and which `xn--` labels would need).
fn label(first: &str) -> String {
    let any = "[A-Za-z0-9-]";
    let end = "[A-Za-z0-9]";
    format!(
        "(?:{first}{any}(?:{end}{any}|-{end}){any}{{0,58}}{end}|{first}{any}{{2}}{end}|{first}{any}?{end}|{first})"
    )
}

/// A host name: dot-separated labels, an optional trailing dot.
fn hostname_pattern() -> String {
    let label = label("[A-Za-z0-9]");
    format!("(?:{label}\\.)*{label}\\.?")
}

/// The host of a destination: a name whose last label starts with a letter
/// (a numeric last label would be read as an IPv4 address), or an IPv4 address.
fn destination_host_pattern() -> String {
    let octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])";
    format!(
        "(?:(?:{}\\.)*{}\\.?|(?:{octet}\\.){{3}}{octet})",
        label("[A-Za-z0-9]"),
        label("[A-Za-z]")
    )
}

/// An absolute http or https URL without credentials: an RFC 3986 URI of
/// characters normalization keeps as they are, with no percent-encoded NUL,
/// CR or LF (`%00`, `%0A`, `%0D`).
fn destination_pattern() -> String {
    let port =
        "(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])";
    let escape = "%[1-9A-Fa-f][0-9A-Fa-f]|%0[1-9BCEFbcef]";
    let path = format!("(?:[A-Za-z0-9!$&()*+,./:;=@_~-]|{escape})");
    let query = format!("(?:[A-Za-z0-9!$&()*+,./:;=?@_~-]|{escape})");
    format!(
        "^[Hh][Tt][Tt][Pp][Ss]?://{}(?::{port})?(?:/{path}*)?(?:\\?{query}*)?(?:#{query}*)?$",
        destination_host_pattern()
    )
}

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable(builder: ObjectBuilder, kind: Type) -> ObjectBuilder {
    builder.schema_type(SchemaType::from_iter([kind, Type::Null]))
}

/// A link's destination.
pub fn destination() -> Schema {
    string()
        .format(Some(SchemaFormat::Custom("uri".into())))
        .pattern(Some(destination_pattern()))
        .min_length(Some(1))
        .max_length(Some(MAX_URL_LEN - 1))
        .description(Some(format!(
            "Absolute http or https URL, at most {MAX_URL_LEN} bytes once normalized \
             (a bare host gains a `/`); no user name or password, no control \
             characters, raw or percent-encoded (`%00`, `%0A`, `%0D`)."
        )))
        .examples(["https://example.com/launch?utm_source=ricochet"])
        .into()
}

/// A destination in a patch: absent or `null` leaves it as it is.
pub fn optional_destination() -> Schema {
    match destination() {
        Schema::Object(mut object) => {
            object.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
            Schema::Object(object)
        }
        other => other,
    }
}

/// A destination as the API shows it: normalized (WHATWG URL serialization),
/// which need not be an RFC 3986 URI (links imported from files keep
/// characters such as `|`).
pub fn destination_view() -> Schema {
    string()
        .pattern(Some("^https?://[\\x21-\\x7e]+$"))
        .max_length(Some(MAX_URL_LEN))
        .description(Some(
            "Absolute http or https URL in its normalized form, of visible ASCII.",
        ))
        .into()
}

fn hostname_builder() -> ObjectBuilder {
    string()
        .format(Some(SchemaFormat::Custom("hostname".into())))
        .pattern(Some(format!("^{}$", hostname_pattern())))
        .min_length(Some(1))
        .max_length(Some(MAX_DOMAIN_LEN))
        .description(Some(
            "Host name; case and one trailing dot are normalized away. \
             Internationalized names may also be sent in Unicode (they are stored in punycode).",
        ))
        .examples(["go.example.com"])
}

/// A domain name in a request.
pub fn hostname() -> Schema {
    hostname_builder().into()
}

/// A domain name in a request, or absent for the default domain.
pub fn optional_hostname() -> Schema {
    nullable(hostname_builder(), Type::String).into()
}

fn code_builder() -> ObjectBuilder {
    string()
        .pattern(Some(format!("^[A-Za-z0-9_-]{{1,{MAX_CODE_LEN}}}$")))
        .min_length(Some(1))
        .max_length(Some(MAX_CODE_LEN))
}

/// A link's code as the API shows it.
pub fn code() -> Schema {
    code_builder().into()
}

/// A custom code in a request.
pub fn custom_code() -> Schema {
    nullable(code_builder(), Type::String)
        .description(Some(
            "Custom code; a random one when absent. Reserved words (api, admin, \
             healthz, … and `links.reserved_codes`) are refused with 400, \
             a code taken on the domain with 409.",
        ))
        .into()
}

fn status_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .enum_values(Some(STATUSES))
}

/// A redirect status as the API shows it.
pub fn status() -> Schema {
    status_builder().into()
}

/// A redirect status in a request.
pub fn optional_status() -> Schema {
    nullable(status_builder(), Type::Integer)
        .enum_values(Some(
            STATUSES
                .map(|s| serde_json::json!(s))
                .into_iter()
                .chain([serde_json::Value::Null]),
        ))
        .description(Some(
            "301, 302, 307 or 308; without it, the domain's `default_status` (302 unless \
             set otherwise).",
        ))
        .into()
}

/// A domain's `default_status` in a settings patch.
pub fn default_status() -> Schema {
    status_builder()
        .description(Some(
            "The status of links created on the domain without one: 301, 302, 307 or 308.",
        ))
        .into()
}

/// A link state.
pub fn state() -> Schema {
    string()
        .enum_values(Some(STATES))
        .description(Some(
            "`deleted` is the soft delete (`POST /links/{id}/restore` undoes it); \
             disabled and deleted links answer 410.",
        ))
        .into()
}

/// A link state in a request.
pub fn optional_state() -> Schema {
    nullable(string(), Type::String)
        .enum_values(Some(
            STATES
                .map(|s| serde_json::json!(s))
                .into_iter()
                .chain([serde_json::Value::Null]),
        ))
        .description(Some(
            "`deleted` is the soft delete (`POST /links/{id}/restore` undoes it); \
             disabled and deleted links answer 410.",
        ))
        .into()
}

/// An RFC 3339 instant.
pub fn date_time() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

/// The start of an analytics range.
pub fn range_start() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some(
            "Start (RFC 3339), inclusive; default 24 hours before `to`. It must be \
             before `to` and at most 400 days before it (else 400 `invalid_range`).",
        ))
        .into()
}

/// The end of an analytics range.
pub fn range_end() -> Schema {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("End (RFC 3339), exclusive; default now."))
        .into()
}

/// An RFC 3339 instant, or `null`.
pub fn optional_date_time() -> Schema {
    nullable(string(), Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

/// A title as the API shows it (at most 512 bytes, so 512 characters).
pub fn title_view() -> Schema {
    nullable(string(), Type::String)
        .max_length(Some(MAX_TITLE_LEN))
        .into()
}

/// A title in a request.
/// A UTM value (`null` removes it on `PATCH`).
pub fn utm_value() -> Schema {
    nullable(string(), Type::String)
        .min_length(Some(1))
        .max_length(Some(crate::service::utm::MAX_VALUE_CHARS))
        .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]+$"))
        .into()
}

pub fn title() -> Schema {
    nullable(string(), Type::String)
        .max_length(Some(MAX_TITLE_LEN / 4))
        .description(Some(format!(
            "At most {MAX_TITLE_LEN} bytes of UTF-8 ({} characters always fit).",
            MAX_TITLE_LEN / 4
        )))
        .into()
}

fn tag() -> ObjectBuilder {
    string()
        .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]+$"))
        .min_length(Some(1))
        .max_length(Some(MAX_TAG_LEN / 4))
}

fn tags_builder() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(tag())
        .max_items(Some(MAX_TAGS))
        .description(Some(format!(
            "At most {MAX_TAGS} tags of 1 to {MAX_TAG_LEN} bytes of UTF-8 ({} characters \
             always fit), without control characters.",
            MAX_TAG_LEN / 4
        )))
}

/// Tags as the API shows them (each at most 64 bytes, so 64 characters).
pub fn tags_view() -> Schema {
    ArrayBuilder::new()
        .items(string().min_length(Some(1)).max_length(Some(MAX_TAG_LEN)))
        .max_items(Some(MAX_TAGS))
        .into()
}

/// Tags in a request.
pub fn optional_tags() -> Schema {
    tags_builder()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .into()
}

/// A link's password in a request: write-only, never shown.
pub fn password() -> Schema {
    nullable(string(), Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
        .write_only(Some(true))
        .min_length(Some(1))
        .max_length(Some(MAX_PASSWORD_CHARS))
        .pattern(Some("^[^\\x00-\\x1f\\x7f-\\x9f]+$"))
        .description(Some(format!(
            "Visitors must enter this password before they are redirected: 1 to \
             {MAX_PASSWORD_CHARS} characters without control characters. Only its \
             Argon2id hash is kept (m = {LINK_ARGON2_MEMORY_KIB} KiB, \
             t = {LINK_ARGON2_ITERATIONS}, p = {LINK_ARGON2_PARALLELISM}, random salt) and \
             sent to engines; the password is never shown back (see \
             `password_protected`). `null` removes the protection on `PATCH`."
        )))
        .into()
}

fn max_clicks_builder() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_CLICKS))
}

/// A link's click limit in a request.
pub fn max_clicks() -> Schema {
    max_clicks_builder()
        .description(Some(format!(
            "After this many redirects (1 to {MAX_CLICKS}) the link answers as an \
             expired one does: its `fallback_url`, else 410. Engines count the \
             redirects of the link's id, across edits; a limit at or below the count \
             already reached makes the link answer as expired at once. `null` \
             removes the limit on `PATCH`."
        )))
        .into()
}

/// A link's click limit as the API shows it.
pub fn max_clicks_view() -> Schema {
    max_clicks_builder()
        .description(Some("The click limit, or `null` when there is none."))
        .into()
}

/// Whether a link asks visitors for a password.
pub fn password_protected() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .read_only(Some(true))
        .description(Some(
            "Whether visitors must enter a password (set with `password`, which is \
             never shown).",
        ))
        .into()
}

/// A series interval.
pub fn interval() -> Schema {
    string()
        .enum_values(Some(INTERVALS))
        .description(Some(
            "Bucket size (default `1h`); `minute`, `hour` and `day` are aliases.",
        ))
        .into()
}

/// A breakdown dimension.
pub fn dimension() -> Schema {
    let names = Dimension::ALL
        .into_iter()
        .filter(|d| *d != Dimension::Total)
        .map(Dimension::as_str);
    string().enum_values(Some(names)).into()
}

/// The breakdown dimension as a type, for parameters that need `required`
/// and a description (utoipa drops both with `schema_with`).
#[derive(Debug)]
pub struct DimensionName;

impl utoipa::PartialSchema for DimensionName {
    fn schema() -> utoipa::openapi::RefOr<Schema> {
        dimension().into()
    }
}

impl utoipa::ToSchema for DimensionName {}

/// A page size.
pub fn limit() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE))
        .description(Some(format!(
            "How many, 1 to {MAX_PAGE} (default 50 links, 10 top links)."
        )))
        .into()
}

/// A listing order.
pub fn sort() -> Schema {
    string()
        .enum_values(Some(SORTS))
        .description(Some(
            "`-created` (newest first, default), `created` or `code` (by domain, then code).",
        ))
        .into()
}
