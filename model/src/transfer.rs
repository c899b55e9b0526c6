//! The link transfer formats `ricochet-control import|export` and
//! `ricochet-engine import` share: rows of CSV or JSON Lines, each a link or a
//! domain, carrying every field of a link so an export imports back unchanged.
//!
//! JSON Lines: one object per line, `{"kind":"domain",…}` or a link (`kind`
//! `"link"` or absent: the older `{domain,code,url,status}` lines and API
//! create bodies are links). CSV: a header naming the columns ([`CSV_COLUMNS`]
//! is what export writes; `url` is the one column a header must name), or no
//! header and positional `domain,code,url[,status]`. Cells a spreadsheet would
//! run as a formula are written with a leading `'` ([`escape_cell`]) and read
//! back without it ([`unescape_cell`]).
//!
//! A link's behaviour (rules, variants, fallback URL, card, ios, android)
//! travels in the API's JSON shape: JSON values in a line, JSON text in the
//! `rules`, `variants` and `card` cells of a CSV row (plain cells for the
//! three URLs). Rows carry these unvalidated, like `url`; importers validate
//! them as the API does (`behaviour::check`). Files written before these
//! columns existed still read, with no behaviour.
//!
//! A link's click limit travels as `max_clicks` and its password protection
//! as `password_hash`: the Argon2 PHC string the control plane stored, never
//! a password, so a restored backup keeps its links protected. Importers
//! check both with [`LinkRow::apply_access`] ([`check_password_hash`]).

use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::UnixMillis;
use crate::domain::Hsts;
use crate::link::{LinkExtensions, LinkRecord, LinkState};
use crate::validate::ValidationError;

/// Columns of an exported CSV file, in order.
pub const CSV_COLUMNS: [&str; 23] = [
    "kind",
    "domain",
    "code",
    "url",
    "status",
    "state",
    "expires_at",
    "forward_query",
    "tags",
    "title",
    "created_at",
    "rules",
    "variants",
    "fallback_url",
    "card",
    "ios",
    "android",
    "max_clicks",
    "password_hash",
    "root_url",
    "not_found_url",
    "https_redirect",
    "hsts",
];

/// Largest `max_clicks` a link may have (the API takes the same range).
pub const MAX_CLICKS: u64 = 1_000_000_000_000;

/// Heaviest Argon2 parameters an imported `password_hash` may carry: an
/// engine checks a visitor's password on one verifier thread, and each check
/// takes this much memory and time. RFC 9106's second recommendation
/// (64 MiB, t = 3, p = 4) fits; its 2 GiB first one does not.
pub const MAX_HASH_MEMORY_KIB: u32 = 65_536;
/// See [`MAX_HASH_MEMORY_KIB`].
pub const MAX_HASH_ITERATIONS: u32 = 10;
/// See [`MAX_HASH_MEMORY_KIB`].
pub const MAX_HASH_PARALLELISM: u32 = 4;

/// Separator of tags in a CSV cell; a `|` or `\` inside a tag is written `\|`, `\\`.
const TAG_SEPARATOR: char = '|';

/// A link as a transfer row. Absent fields take the importer's defaults
/// (default domain, a random or required code, 302, active, now).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LinkRow {
    pub domain: Option<String>,
    pub code: Option<String>,
    pub url: String,
    pub status: Option<u16>,
    pub state: Option<LinkState>,
    pub expires_at: Option<UnixMillis>,
    pub forward_query: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub title: Option<String>,
    pub created_at: Option<UnixMillis>,
    /// The `rules` array, as the API takes it.
    pub rules: Option<Value>,
    /// The link's own `variants` array, as the API takes it.
    pub variants: Option<Value>,
    pub fallback_url: Option<String>,
    /// The `card` object, as the API takes it.
    pub card: Option<Value>,
    pub ios: Option<String>,
    pub android: Option<String>,
    /// The click limit, checked by [`LinkRow::apply_access`].
    pub max_clicks: Option<u64>,
    /// An Argon2 PHC string, checked by [`LinkRow::apply_access`].
    pub password_hash: Option<String>,
}

impl LinkRow {
    /// The behaviour fields of the row, validated and normalized (what the
    /// API would store for them); errors name the field path.
    pub fn extensions(&self) -> Result<LinkExtensions, ValidationError> {
        use crate::behaviour::check;
        let url =
            |value: &Option<String>, field: &str| -> Result<Option<String>, ValidationError> {
                match value.as_deref() {
                    None | Some("") => Ok(None),
                    Some(text) => Ok(Some(check::parse_url(&Value::from(text), field)?)),
                }
            };
        let mut extensions = LinkExtensions::default();
        if let Some(rules) = self.rules.as_ref().filter(|v| !v.is_null()) {
            extensions.rules = check::parse_rules(rules)?;
        }
        if let Some(variants) = self.variants.as_ref().filter(|v| !v.is_null()) {
            extensions.variants =
                check::parse_variants(variants).map_err(|e| e.under("variants"))?;
        }
        if let Some(card) = self.card.as_ref().filter(|v| !v.is_null()) {
            extensions.card = Some(check::parse_card(card)?).filter(|card| !card.is_empty());
        }
        extensions.fallback_url = url(&self.fallback_url, "fallback_url")?;
        extensions.ios = url(&self.ios, "ios")?;
        extensions.android = url(&self.android, "android")?;
        self.apply_access(&mut extensions)?;
        Ok(extensions)
    }

    /// Sets the row's click limit and password hash on `extensions`, after
    /// checking them: `max_clicks` with [`check_max_clicks`], `password_hash`
    /// with [`check_password_hash`] (an empty one is none). Both importers
    /// take these through here; the API never takes a hash.
    pub fn apply_access(&self, extensions: &mut LinkExtensions) -> Result<(), ValidationError> {
        extensions.click_limit = self.max_clicks.map(check_max_clicks).transpose()?;
        extensions.password_hash = match self.password_hash.as_deref() {
            None | Some("") => None,
            Some(hash) => {
                check_password_hash(hash)?;
                Some(hash.to_owned())
            }
        };
        Ok(())
    }

    /// The row that exports `link` with every field.
    pub fn from_record(link: &LinkRecord) -> Self {
        let behaviour = &link.extensions;
        Self {
            domain: Some(link.domain.clone()),
            code: Some(link.code.clone()),
            url: link.url.clone(),
            status: Some(link.status.code()),
            state: Some(link.state),
            expires_at: link.expires_at,
            forward_query: Some(link.forward_query),
            tags: Some(link.tags.clone()),
            title: link.title.clone(),
            created_at: Some(link.created_at),
            rules: (!behaviour.rules.is_empty()).then(|| to_json(&behaviour.rules)),
            variants: (!behaviour.variants.is_empty()).then(|| to_json(&behaviour.variants)),
            fallback_url: behaviour.fallback_url.clone(),
            card: behaviour.card.as_ref().map(to_json),
            ios: behaviour.ios.clone(),
            android: behaviour.android.clone(),
            max_clicks: behaviour.click_limit,
            password_hash: behaviour.password_hash.clone(),
        }
    }
}

/// `limit` when it is a click limit a link may have: 1 to [`MAX_CLICKS`].
pub fn check_max_clicks(limit: u64) -> Result<u64, ValidationError> {
    if (1..=MAX_CLICKS).contains(&limit) {
        Ok(limit)
    } else {
        Err(max_clicks_error())
    }
}

/// The refusal of a `max_clicks` value (field `max_clicks`).
pub fn max_clicks_error() -> ValidationError {
    ValidationError::Field {
        field: "max_clicks".into(),
        code: "invalid_max_clicks",
        message: format!("max_clicks must be a whole number from 1 to {MAX_CLICKS}"),
    }
}

/// Checks that `hash` is an Argon2 PHC string an engine can verify passwords
/// against: `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`
/// (`argon2i` and `argon2d` too), parameters in any order within the
/// `MAX_HASH_*` bounds, a salt of 8 to 48 bytes and a hash of 10 to 64
/// bytes in unpadded standard Base64 (what the argon2 crate parses and
/// verifies). The refusal (field `password_hash`) never repeats the value,
/// in case a password was put there by mistake.
pub fn check_password_hash(hash: &str) -> Result<(), ValidationError> {
    argon2_phc(hash).map_err(|reason| ValidationError::Field {
        field: "password_hash".into(),
        code: "invalid_password_hash",
        message: format!(
            "not an Argon2 PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash): \
             {reason}"
        ),
    })
}

/// Why `hash` is not an Argon2 PHC string [`check_password_hash`] takes.
fn argon2_phc(hash: &str) -> Result<(), String> {
    let mut fields = hash.split('$');
    if fields.next() != Some("") {
        return Err("it must start with `$`".into());
    }
    if !matches!(fields.next(), Some("argon2id" | "argon2i" | "argon2d")) {
        return Err("the algorithm must be argon2id, argon2i or argon2d".into());
    }
    if fields.next() != Some("v=19") {
        return Err("the version must be `v=19`".into());
    }
    let (mut memory, mut iterations, mut parallelism) = (None, None, None);
    for pair in fields.next().unwrap_or_default().split(',') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match name {
            "m" => &mut memory,
            "t" => &mut iterations,
            "p" => &mut parallelism,
            _ => return Err("the parameters must be m, t and p".into()),
        };
        let value =
            decimal(value).ok_or("parameter values must be whole numbers without leading zeros")?;
        if slot.replace(value).is_some() {
            return Err("a parameter is given twice".into());
        }
    }
    let (Some(memory), Some(iterations), Some(parallelism)) = (memory, iterations, parallelism)
    else {
        return Err("m, t and p are all required".into());
    };
    if !(1..=MAX_HASH_PARALLELISM).contains(&parallelism) {
        return Err(format!("p must be 1 to {MAX_HASH_PARALLELISM}"));
    }
    if !(1..=MAX_HASH_ITERATIONS).contains(&iterations) {
        return Err(format!("t must be 1 to {MAX_HASH_ITERATIONS}"));
    }
    if !(8 * parallelism..=MAX_HASH_MEMORY_KIB).contains(&memory) {
        return Err(format!("m must be 8 × p to {MAX_HASH_MEMORY_KIB} (KiB)"));
    }
    match fields.next().and_then(base64_len) {
        Some(8..=48) => {}
        _ => return Err("the salt must be 8 to 48 bytes in unpadded Base64".into()),
    }
    match fields.next().and_then(base64_len) {
        Some(10..=64) => {}
        _ => return Err("the hash must be 10 to 64 bytes in unpadded Base64".into()),
    }
    if fields.next().is_some() {
        return Err("nothing may follow the hash".into());
    }
    Ok(())
}

/// A decimal `u32` as PHC writes it: digits, no leading zero.
fn decimal(text: &str) -> Option<u32> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// The decoded length of canonical unpadded standard Base64 (`A–Z a–z 0–9 + /`,
/// unused trailing bits zero), or `None` for anything else.
fn base64_len(text: &str) -> Option<usize> {
    let mut last = 0;
    for byte in text.bytes() {
        last = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
    }
    let whole = text.len() / 4 * 3;
    match text.len() % 4 {
        0 => Some(whole),
        2 if last & 0x0f == 0 => Some(whole + 1),
        3 if last & 0x03 == 0 => Some(whole + 2),
        _ => None,
    }
}

/// The API's JSON form of a behaviour field.
fn to_json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).expect("behaviour fields serialize")
}

/// One row of a transfer file.
// Nearly every row is a link, read and handed on one at a time: boxing it
// would add an allocation per row to spare the few domain rows some bytes.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferRow {
    Link(LinkRow),
    /// A registered domain (exported before the links, so they find it).
    Domain {
        domain: String,
        created_at: Option<UnixMillis>,
        settings: DomainRow,
    },
}

/// A domain row's settings, unvalidated (importers check them as the API
/// does). Its default status travels in the `status` column or field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainRow {
    pub root_url: Option<String>,
    pub not_found_url: Option<String>,
    pub default_status: Option<u16>,
    pub https_redirect: Option<bool>,
    pub hsts: Option<Hsts>,
}

impl DomainRow {
    /// Whether the row sets anything (older files' domain rows do not).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// What a row says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Link,
    Domain,
}

/// A JSON line as written and read; times are RFC 3339 strings.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonRow {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<Kind>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<LinkState>,
    #[serde(default, skip_serializing_if = "is_link_field_absent")]
    expires_at: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    forward_query: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "is_link_field_absent")]
    title: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rules: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variants: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fallback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    card: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ios: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    android: Option<String>,
    /// A value, so a bad one is refused naming the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_clicks: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    root_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    not_found_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    https_redirect: Option<bool>,
    /// A value, so a bad one is refused naming the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hsts: Option<Value>,
}

/// `None` leaves a field out of a line; `Some(None)` writes `null`.
fn is_link_field_absent<T>(field: &Option<Option<T>>) -> bool {
    field.is_none()
}

/// RFC 3339 (UTC, millisecond precision kept) of `millis`.
pub fn format_time(millis: UnixMillis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_time(field: &str, text: &str) -> Result<UnixMillis, String> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| format!("{field} {text:?} is not an RFC 3339 time"))
}

fn parse_bool(field: &str, text: &str) -> Result<bool, String> {
    match text {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{field} {text:?} is not true or false")),
    }
}

/// A domain row's HSTS policy: `{"max_age": …, "include_subdomains": …,
/// "preload": …}` (importers check the values as the API does).
fn parse_hsts(value: Value) -> Result<Hsts, String> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Row {
        max_age: u32,
        #[serde(default)]
        include_subdomains: bool,
        #[serde(default)]
        preload: bool,
    }
    let row: Row = serde_json::from_value(value).map_err(|e| format!("hsts: {e}"))?;
    Ok(Hsts {
        max_age: row.max_age,
        include_subdomains: row.include_subdomains,
        preload: row.preload,
    })
}

fn parse_state(text: &str) -> Result<LinkState, String> {
    match text.to_ascii_lowercase().as_str() {
        "active" => Ok(LinkState::Active),
        "disabled" => Ok(LinkState::Disabled),
        "deleted" => Ok(LinkState::Deleted),
        _ => Err(format!("state {text:?} is not active, disabled or deleted")),
    }
}

/// The JSON line of `row`.
pub fn to_json_line(row: &TransferRow) -> String {
    let json = match row {
        TransferRow::Domain {
            domain,
            created_at,
            settings,
        } => JsonRow {
            kind: Some(Kind::Domain),
            domain: Some(domain.clone()),
            created_at: created_at.map(format_time),
            status: settings.default_status,
            root_url: settings.root_url.clone(),
            not_found_url: settings.not_found_url.clone(),
            https_redirect: settings.https_redirect,
            hsts: settings.hsts.as_ref().map(to_json),
            ..JsonRow::default()
        },
        TransferRow::Link(link) => JsonRow {
            kind: Some(Kind::Link),
            domain: link.domain.clone(),
            code: link.code.clone(),
            url: Some(link.url.clone()),
            status: link.status,
            state: link.state,
            expires_at: Some(link.expires_at.map(format_time)),
            forward_query: link.forward_query,
            tags: link.tags.clone(),
            title: Some(link.title.clone()),
            created_at: link.created_at.map(format_time),
            rules: link.rules.clone(),
            variants: link.variants.clone(),
            fallback_url: link.fallback_url.clone(),
            card: link.card.clone(),
            ios: link.ios.clone(),
            android: link.android.clone(),
            max_clicks: link.max_clicks.map(Value::from),
            password_hash: link.password_hash.clone(),
            root_url: None,
            not_found_url: None,
            https_redirect: None,
            hsts: None,
        },
    };
    serde_json::to_string(&json).expect("a row serializes")
}

/// Reads one JSON line.
pub fn from_json_line(text: &str) -> Result<TransferRow, String> {
    let json: JsonRow = serde_json::from_str(text).map_err(|e| format!("invalid JSON row: {e}"))?;
    let created_at = json
        .created_at
        .as_deref()
        .map(|at| parse_time("created_at", at))
        .transpose()?;
    if json.kind == Some(Kind::Domain) {
        let domain = json.domain.ok_or("a domain row needs `domain`")?;
        let settings = DomainRow {
            root_url: json.root_url,
            not_found_url: json.not_found_url,
            default_status: json.status,
            https_redirect: json.https_redirect,
            hsts: json.hsts.map(parse_hsts).transpose()?,
        };
        return Ok(TransferRow::Domain {
            domain,
            created_at,
            settings,
        });
    }
    if json.root_url.is_some()
        || json.not_found_url.is_some()
        || json.https_redirect.is_some()
        || json.hsts.is_some()
    {
        return Err(
            "root_url, not_found_url, https_redirect and hsts belong to domain rows".into(),
        );
    }
    Ok(TransferRow::Link(LinkRow {
        domain: json.domain.filter(|d| !d.is_empty()),
        code: json.code,
        url: json.url.ok_or("a link row needs `url`")?,
        status: json.status,
        state: json.state,
        expires_at: json
            .expires_at
            .flatten()
            .map(|at| parse_time("expires_at", &at))
            .transpose()?,
        forward_query: json.forward_query,
        tags: json.tags,
        title: json.title.flatten(),
        created_at,
        rules: json.rules.filter(|v| !v.is_null()),
        variants: json.variants.filter(|v| !v.is_null()),
        fallback_url: json.fallback_url,
        card: json.card.filter(|v| !v.is_null()),
        ios: json.ios,
        android: json.android,
        max_clicks: match json.max_clicks {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .ok_or_else(|| format!("max_clicks {value} is not a whole number"))?,
            ),
        },
        password_hash: json.password_hash,
    }))
}

/// Whether a spreadsheet would treat a cell starting with `first` as a formula.
fn is_formula_start(first: char) -> bool {
    matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Prefixes a cell a spreadsheet would run as a formula with `'` (OWASP's
/// CSV injection rule). A cell already starting with `'` gets one more, so
/// [`unescape_cell`] gives back exactly what was escaped.
pub fn escape_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some(first) if is_formula_start(first) || first == '\'' => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

/// Undoes [`escape_cell`]: drops a `'` that precedes a formula start or another `'`.
pub fn unescape_cell(cell: &str) -> &str {
    let mut chars = cell.chars();
    match (chars.next(), chars.next()) {
        (Some('\''), Some(next)) if is_formula_start(next) || next == '\'' => &cell[1..],
        _ => cell,
    }
}

fn join_tags(tags: &[String]) -> String {
    let mut cell = String::new();
    for (i, tag) in tags.iter().enumerate() {
        if i > 0 {
            cell.push(TAG_SEPARATOR);
        }
        for c in tag.chars() {
            if c == TAG_SEPARATOR || c == '\\' {
                cell.push('\\');
            }
            cell.push(c);
        }
    }
    cell
}

fn split_tags(cell: &str) -> Vec<String> {
    let mut tags = vec![String::new()];
    let mut chars = cell.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => tags.last_mut().expect("one tag").push(next),
                None => tags.last_mut().expect("one tag").push('\\'),
            },
            TAG_SEPARATOR => tags.push(String::new()),
            c => tags.last_mut().expect("one tag").push(c),
        }
    }
    tags
}

/// The cells of `row` under [`CSV_COLUMNS`], escaped.
pub fn to_csv_record(row: &TransferRow) -> [String; 23] {
    let json_text =
        |value: &Option<Value>| value.as_ref().map(Value::to_string).unwrap_or_default();
    let cells: [String; 23] = match row {
        TransferRow::Domain {
            domain,
            created_at,
            settings,
        } => {
            let mut cells: [String; 23] = Default::default();
            cells[0] = "domain".into();
            cells[1] = domain.clone();
            // `status`: the default status of the domain's new links.
            cells[4] = (settings.default_status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            // `created_at`
            cells[10] = created_at.map(format_time).unwrap_or_default();
            cells[19] = settings.root_url.clone().unwrap_or_default();
            cells[20] = settings.not_found_url.clone().unwrap_or_default();
            cells[21] = (settings.https_redirect)
                .map(|on| on.to_string())
                .unwrap_or_default();
            cells[22] = settings
                .hsts
                .as_ref()
                .map(|hsts| to_json(hsts).to_string())
                .unwrap_or_default();
            cells
        }
        TransferRow::Link(link) => [
            "link".into(),
            link.domain.clone().unwrap_or_default(),
            link.code.clone().unwrap_or_default(),
            link.url.clone(),
            link.status.map(|s| s.to_string()).unwrap_or_default(),
            link.state
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            link.expires_at.map(format_time).unwrap_or_default(),
            link.forward_query
                .map(|f| f.to_string())
                .unwrap_or_default(),
            link.tags.as_deref().map(join_tags).unwrap_or_default(),
            link.title.clone().unwrap_or_default(),
            link.created_at.map(format_time).unwrap_or_default(),
            json_text(&link.rules),
            json_text(&link.variants),
            link.fallback_url.clone().unwrap_or_default(),
            json_text(&link.card),
            link.ios.clone().unwrap_or_default(),
            link.android.clone().unwrap_or_default(),
            link.max_clicks.map(|n| n.to_string()).unwrap_or_default(),
            link.password_hash.clone().unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ],
    };
    cells.map(|cell| escape_cell(&cell).into_owned())
}

/// Where each field sits in the rows of a CSV file.
#[derive(Debug, Clone, Default)]
pub struct CsvColumns {
    kind: Option<usize>,
    domain: Option<usize>,
    code: Option<usize>,
    url: usize,
    status: Option<usize>,
    state: Option<usize>,
    expires_at: Option<usize>,
    forward_query: Option<usize>,
    tags: Option<usize>,
    title: Option<usize>,
    created_at: Option<usize>,
    rules: Option<usize>,
    variants: Option<usize>,
    fallback_url: Option<usize>,
    card: Option<usize>,
    ios: Option<usize>,
    android: Option<usize>,
    max_clicks: Option<usize>,
    password_hash: Option<usize>,
    root_url: Option<usize>,
    not_found_url: Option<usize>,
    https_redirect: Option<usize>,
    hsts: Option<usize>,
    /// A file without a header: exactly `domain,code,url[,status]`.
    positional: bool,
}

impl CsvColumns {
    /// Columns of a file without a header: `domain,code,url[,status]`.
    pub fn positional() -> Self {
        Self {
            domain: Some(0),
            code: Some(1),
            url: 2,
            status: Some(3),
            positional: true,
            ..Self::default()
        }
    }

    /// The columns a header row names (any order, any case), or `None` when
    /// the row names no `url` column and so is not a header.
    pub fn from_header(record: &csv::StringRecord) -> Option<Self> {
        let find = |name: &str| {
            record.iter().position(|cell| {
                cell.trim_start_matches('\u{feff}')
                    .trim()
                    .eq_ignore_ascii_case(name)
            })
        };
        Some(Self {
            kind: find("kind"),
            domain: find("domain"),
            code: find("code"),
            url: find("url")?,
            status: find("status"),
            state: find("state"),
            expires_at: find("expires_at"),
            forward_query: find("forward_query"),
            tags: find("tags"),
            title: find("title"),
            created_at: find("created_at"),
            rules: find("rules"),
            variants: find("variants"),
            fallback_url: find("fallback_url"),
            card: find("card"),
            ios: find("ios"),
            android: find("android"),
            max_clicks: find("max_clicks"),
            password_hash: find("password_hash"),
            root_url: find("root_url"),
            not_found_url: find("not_found_url"),
            https_redirect: find("https_redirect"),
            hsts: find("hsts"),
            positional: false,
        })
    }

    /// Reads one row.
    pub fn row(&self, record: &csv::StringRecord) -> Result<TransferRow, String> {
        if self.positional && !(3..=4).contains(&record.len()) {
            return Err(format!(
                "expected 3 or 4 columns (domain,code,url[,status]), got {}",
                record.len()
            ));
        }
        // Titles keep their spaces; every other cell is trimmed.
        let raw = |index: Option<usize>| {
            index
                .and_then(|i| record.get(i))
                .map(unescape_cell)
                .filter(|cell| !cell.is_empty())
        };
        let cell = |index: Option<usize>| raw(index).map(str::trim).filter(|c| !c.is_empty());
        let time = |name: &str, index| cell(index).map(|at| parse_time(name, at)).transpose();
        let json = |name: &str, index| {
            cell(index)
                .map(|text| {
                    serde_json::from_str::<Value>(text)
                        .map_err(|e| format!("{name} is not JSON: {e}"))
                })
                .transpose()
        };
        let created_at = time("created_at", self.created_at)?;
        let kind = match cell(self.kind) {
            None => Kind::Link,
            Some(kind) if kind.eq_ignore_ascii_case("link") => Kind::Link,
            Some(kind) if kind.eq_ignore_ascii_case("domain") => Kind::Domain,
            Some(kind) => return Err(format!("kind {kind:?} is not link or domain")),
        };
        let status = match cell(self.status) {
            None => None,
            Some(text) => Some(
                text.parse::<u16>()
                    .map_err(|_| format!("status {text:?} is not a number"))?,
            ),
        };
        if kind == Kind::Domain {
            let domain = cell(self.domain).ok_or("a domain row needs `domain`")?;
            return Ok(TransferRow::Domain {
                domain: domain.to_owned(),
                created_at,
                settings: DomainRow {
                    root_url: cell(self.root_url).map(str::to_owned),
                    not_found_url: cell(self.not_found_url).map(str::to_owned),
                    default_status: status,
                    https_redirect: cell(self.https_redirect)
                        .map(|text| parse_bool("https_redirect", text))
                        .transpose()?,
                    hsts: json("hsts", self.hsts)?.map(parse_hsts).transpose()?,
                },
            });
        }

        if [
            self.root_url,
            self.not_found_url,
            self.https_redirect,
            self.hsts,
        ]
        .into_iter()
        .any(|column| cell(column).is_some())
        {
            return Err(
                "root_url, not_found_url, https_redirect and hsts belong to domain rows".into(),
            );
        }
        let forward_query = cell(self.forward_query)
            .map(|text| parse_bool("forward_query", text))
            .transpose()?;
        Ok(TransferRow::Link(LinkRow {
            domain: cell(self.domain).map(str::to_owned),
            code: cell(self.code).map(str::to_owned),
            url: cell(Some(self.url)).unwrap_or_default().to_owned(),
            status,
            state: cell(self.state).map(parse_state).transpose()?,
            expires_at: time("expires_at", self.expires_at)?,
            forward_query,
            tags: cell(self.tags).map(split_tags),
            title: raw(self.title).map(str::to_owned),
            created_at,
            rules: json("rules", self.rules)?,
            variants: json("variants", self.variants)?,
            fallback_url: cell(self.fallback_url).map(str::to_owned),
            card: json("card", self.card)?,
            ios: cell(self.ios).map(str::to_owned),
            android: cell(self.android).map(str::to_owned),
            max_clicks: cell(self.max_clicks)
                .map(|text| {
                    text.parse::<u64>()
                        .map_err(|_| format!("max_clicks {text:?} is not a whole number"))
                })
                .transpose()?,
            password_hash: cell(self.password_hash).map(str::to_owned),
        }))
    }
}

/// Rows of a transfer file with their 1-based line numbers. A row that cannot
/// be read is an `Err` with the reason; reading goes on after it. An I/O
/// error ends the iteration with `Some(Err)` from [`TransferReader::next_row`].
pub struct TransferReader<R: Read> {
    source: Source<R>,
}

// One per reader.
#[allow(clippy::large_enum_variant)]
enum Source<R: Read> {
    Csv {
        reader: Box<csv::Reader<R>>,
        record: csv::StringRecord,
        columns: Option<CsvColumns>,
    },
    Jsonl {
        reader: BufReader<R>,
        line: String,
        number: u64,
    },
}

impl<R: Read> std::fmt::Debug for TransferReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferReader").finish_non_exhaustive()
    }
}

/// One row read: its line and the row or why it was refused.
pub type ReadRow = (u64, Result<TransferRow, String>);

impl<R: Read> TransferReader<R> {
    /// A CSV file, with or without a header.
    pub fn csv(reader: R) -> Self {
        let reader = Box::new(
            csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(reader),
        );
        Self {
            source: Source::Csv {
                reader,
                record: csv::StringRecord::new(),
                columns: None,
            },
        }
    }

    /// A JSON Lines file.
    pub fn jsonl(reader: R) -> Self {
        Self {
            source: Source::Jsonl {
                reader: BufReader::with_capacity(1 << 16, reader),
                line: String::new(),
                number: 0,
            },
        }
    }

    /// The next row, `None` at the end of the file.
    pub fn next_row(&mut self) -> Option<std::io::Result<ReadRow>> {
        match &mut self.source {
            Source::Csv {
                reader,
                record,
                columns,
            } => loop {
                let line = reader.position().line();
                match reader.read_record(record) {
                    Ok(false) => return None,
                    Ok(true) => {}
                    Err(error) if error.is_io_error() => {
                        return Some(Err(std::io::Error::other(error.to_string())));
                    }
                    Err(error) => {
                        return Some(Ok((line, Err(format!("unreadable CSV row: {error}")))));
                    }
                }
                let columns = match columns {
                    Some(columns) => columns,
                    None => match CsvColumns::from_header(record) {
                        Some(header) => {
                            *columns = Some(header);
                            continue;
                        }
                        None => columns.insert(CsvColumns::positional()),
                    },
                };
                return Some(Ok((line, columns.row(record))));
            },
            Source::Jsonl {
                reader,
                line,
                number,
            } => loop {
                line.clear();
                match reader.read_line(line) {
                    Ok(0) => return None,
                    Ok(_) => {}
                    Err(error) => return Some(Err(error)),
                }
                *number += 1;
                let text = line.trim();
                if text.is_empty() {
                    continue;
                }
                return Some(Ok((*number, from_json_line(text))));
            },
        }
    }
}

impl<R: Read> Iterator for TransferReader<R> {
    type Item = std::io::Result<ReadRow>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_link() -> LinkRow {
        LinkRow {
            domain: Some("go.example.com".into()),
            code: Some("launch".into()),
            url: "https://example.org/a?b=c,d".into(),
            status: Some(308),
            state: Some(LinkState::Disabled),
            expires_at: Some(1_795_478_400_123),
            forward_query: Some(true),
            tags: Some(vec!["a|b".into(), "back\\slash".into(), "=sum".into()]),
            title: Some(" =HYPERLINK(\"x\"), \"quoted\" ".into()),
            created_at: Some(1_700_000_000_456),
            rules: Some(
                serde_json::json!([{"url": "https://example.org/fr", "conditions": [
                {"type": "language", "value": "fr"},
                {"type": "query-param", "key": "ref", "value": "=mail, \"quoted\""}],
                "variants": []}]),
            ),
            variants: Some(
                serde_json::json!([{"url": "https://example.org/a", "weight": 50},
                                              {"url": "https://example.org/b", "weight": 50}]),
            ),
            fallback_url: Some("https://example.org/gone".into()),
            card: Some(serde_json::json!({"title": "-1", "description": null, "image": null})),
            ios: Some("https://apps.example/app".into()),
            android: Some("https://play.example/app".into()),
            max_clicks: Some(1_000),
            password_hash: Some(HASH.into()),
        }
    }

    /// An Argon2id PHC string: 16 bytes of salt, 32 of hash.
    const HASH: &str = "$argon2id$v=19$m=8192,t=2,p=1$s64Wfnsa0Y1LxqJy+l/NtA\
                        $l8viUp5BP2b2GuI+b928hm/h8U8nL1X/vNg/dXZEXV4";

    fn read_all(reader: TransferReader<&[u8]>) -> Vec<ReadRow> {
        reader.map(|row| row.unwrap()).collect()
    }

    #[test]
    fn formula_cells_are_escaped_and_unescaped_exactly() {
        for cell in [
            "=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "'", "'=x", "''", "plain", "",
        ] {
            let escaped = escape_cell(cell);
            assert!(
                !escaped.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{escaped:?}"
            );
            assert_eq!(unescape_cell(&escaped), cell);
        }
        // Hand-written cells starting with a quote and no formula keep it.
        assert_eq!(unescape_cell("'quoted"), "'quoted");
    }

    #[test]
    fn tags_survive_the_separator() {
        let tags = vec!["a|b".to_owned(), "c\\".to_owned(), "d".to_owned()];
        assert_eq!(split_tags(&join_tags(&tags)), tags);
    }

    fn full_domain_settings() -> DomainRow {
        DomainRow {
            root_url: Some("https://www.brand.example/".into()),
            not_found_url: Some("https://www.brand.example/404".into()),
            default_status: Some(301),
            https_redirect: Some(true),
            hsts: Some(Hsts {
                max_age: 31_536_000,
                include_subdomains: true,
                preload: true,
            }),
        }
    }

    #[test]
    fn settings_on_a_link_row_are_refused() {
        for line in [
            r#"{"kind":"link","url":"https://e.com/","root_url":"https://e.com/"}"#,
            r#"{"kind":"link","url":"https://e.com/","https_redirect":true}"#,
            r#"{"kind":"link","url":"https://e.com/","hsts":{"max_age":1}}"#,
        ] {
            assert!(
                from_json_line(line).unwrap_err().contains("domain rows"),
                "{line}"
            );
        }
        let csv = "kind,url,https_redirect\nlink,https://e.com/,true\n";
        let read = read_all(TransferReader::csv(csv.as_bytes()));
        assert!(read[0].1.as_ref().unwrap_err().contains("domain rows"));
    }

    #[test]
    fn bad_hsts_and_https_redirect_cells_are_refused_naming_them() {
        let line = r#"{"kind":"domain","domain":"a.example","hsts":{"max_age":"x"}}"#;
        assert!(from_json_line(line).unwrap_err().starts_with("hsts"));
        let csv = "kind,domain,url,https_redirect\ndomain,a.example,,maybe\n";
        let read = read_all(TransferReader::csv(csv.as_bytes()));
        assert!(read[0].1.as_ref().unwrap_err().contains("https_redirect"));
    }

    #[test]
    fn csv_rows_round_trip() {
        let rows = vec![
            TransferRow::Domain {
                domain: "go.example.com".into(),
                created_at: Some(1_600_000_000_000),
                settings: DomainRow::default(),
            },
            TransferRow::Domain {
                domain: "brand.example".into(),
                created_at: Some(1_600_000_000_001),
                settings: full_domain_settings(),
            },
            TransferRow::Link(full_link()),
            TransferRow::Link(LinkRow {
                url: "https://example.org/".into(),
                tags: Some(vec![]),
                ..LinkRow::default()
            }),
        ];
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(CSV_COLUMNS).unwrap();
        for row in &rows {
            writer.write_record(to_csv_record(row)).unwrap();
        }
        let bytes = writer.into_inner().unwrap();
        let read = read_all(TransferReader::csv(&bytes[..]));
        let mut expected = rows.clone();
        // An empty tag list is an empty cell: no tags given.
        if let TransferRow::Link(link) = &mut expected[3] {
            link.tags = None;
        }
        let read: Vec<_> = read.into_iter().map(|(_, row)| row.unwrap()).collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn json_lines_round_trip() {
        let rows = [
            TransferRow::Domain {
                domain: "go.example.com".into(),
                created_at: Some(1_600_000_000_000),
                settings: DomainRow::default(),
            },
            TransferRow::Domain {
                domain: "brand.example".into(),
                created_at: None,
                settings: full_domain_settings(),
            },
            TransferRow::Link(full_link()),
        ];
        for row in rows {
            assert_eq!(from_json_line(&to_json_line(&row)), Ok(row));
        }
    }

    #[test]
    fn older_formats_still_read() {
        let csv = b"go.example,abc,https://example.com/\n,def,https://example.com/d,301\nbad\n";
        let read = read_all(TransferReader::csv(&csv[..]));
        assert_eq!(read.len(), 3);
        let (line, row) = &read[1];
        assert_eq!(*line, 2);
        let TransferRow::Link(link) = row.as_ref().unwrap() else {
            panic!("a link")
        };
        assert_eq!((link.domain.as_deref(), link.status), (None, Some(301)));
        assert_eq!(read[2].0, 3);
        assert!(read[2].1.as_ref().unwrap_err().contains("3 or 4 columns"));

        let jsonl = b"{\"domain\":\"go.example\",\"code\":\"a\",\"url\":\"https://e.com/\",\"status\":307}\n\n{\"url\":\"https://e.com/\",\"tags\":[\"x\"],\"title\":\"t\"}\n{\"nope\":1}\n";
        let read = read_all(TransferReader::jsonl(&jsonl[..]));
        assert_eq!(
            read.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
            [1, 3, 4]
        );
        assert!(read[0].1.is_ok() && read[1].1.is_ok());
        assert!(read[2].1.as_ref().unwrap_err().contains("unknown field"));
    }

    #[test]
    fn older_csv_headers_read_without_behaviour() {
        let csv = b"kind,domain,code,url,status,state,expires_at,forward_query,tags,title,created_at\n\
                    link,go.example,abc,https://example.com/,301,active,,true,a|b,T,2026-01-01T00:00:00Z\n";
        let read = read_all(TransferReader::csv(&csv[..]));
        let TransferRow::Link(link) = read[0].1.as_ref().unwrap() else {
            panic!("a link")
        };
        assert_eq!(link.status, Some(301));
        assert_eq!(
            (
                &link.rules,
                &link.variants,
                &link.card,
                &link.fallback_url,
                &link.ios,
                &link.android
            ),
            (&None, &None, &None, &None, &None, &None)
        );
        assert_eq!((link.max_clicks, &link.password_hash), (None, &None));
        assert_eq!(link.extensions().unwrap(), LinkExtensions::default());
    }

    #[test]
    fn access_fields_travel_and_are_checked_when_applied() {
        let mut record =
            LinkRecord::new(1, "go.example", "locked", "https://example.org/", 0).unwrap();
        record.extensions.click_limit = Some(3);
        record.extensions.password_hash = Some(HASH.into());
        let row = LinkRow::from_record(&record);
        assert_eq!(
            (row.max_clicks, row.password_hash.as_deref()),
            (Some(3), Some(HASH))
        );
        let line = to_json_line(&TransferRow::Link(row.clone()));
        assert!(line.contains(r#""max_clicks":3"#), "{line}");
        assert_eq!(from_json_line(&line), Ok(TransferRow::Link(row.clone())));
        assert_eq!(row.extensions().unwrap(), record.extensions);

        // Checked when applied, naming the field.
        for (max_clicks, password_hash, field) in [
            (Some(0), None, "max_clicks"),
            (Some(MAX_CLICKS + 1), None, "max_clicks"),
            (None, Some("open sesame"), "password_hash"),
            (
                None,
                Some("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
                "password_hash",
            ),
        ] {
            let row = LinkRow {
                url: "https://example.org/".into(),
                max_clicks,
                password_hash: password_hash.map(str::to_owned),
                ..LinkRow::default()
            };
            let error = row.extensions().unwrap_err();
            assert_eq!(error.field(), field, "{error}");
            assert!(!error.to_string().contains("sesame"), "{error}");
        }
        let limit = LinkRow {
            url: "https://example.org/".into(),
            max_clicks: Some(MAX_CLICKS),
            password_hash: Some(String::new()),
            ..LinkRow::default()
        };
        let extensions = limit.extensions().unwrap();
        assert_eq!(
            (extensions.click_limit, extensions.password_hash),
            (Some(MAX_CLICKS), None)
        );

        // Bad cells and values are refused when read.
        let bad = read_all(TransferReader::csv(
            &b"url,max_clicks\nhttps://example.org/,-1\nhttps://example.org/,ten\n"[..],
        ));
        assert!(
            bad.iter()
                .all(|(_, row)| row.as_ref().unwrap_err().starts_with("max_clicks"))
        );
        for line in [
            r#"{"url":"https://e.com/","max_clicks":-1}"#,
            r#"{"url":"https://e.com/","max_clicks":"1"}"#,
        ] {
            assert!(
                from_json_line(line).unwrap_err().starts_with("max_clicks"),
                "{line}"
            );
        }
        assert_eq!(
            from_json_line(r#"{"url":"https://e.com/","max_clicks":null}"#),
            Ok(TransferRow::Link(LinkRow {
                url: "https://e.com/".into(),
                ..LinkRow::default()
            }))
        );
    }

    #[test]
    fn password_hashes_must_be_argon2_phc_strings_an_engine_can_check() {
        let salt = "s64Wfnsa0Y1LxqJy+l/NtA";
        let hash = "l8viUp5BP2b2GuI+b928hm/h8U8nL1X/vNg/dXZEXV4";
        let phc = |algorithm: &str, params: &str, salt: &str, hash: &str| {
            format!("${algorithm}$v=19${params}${salt}${hash}")
        };
        for good in [
            HASH.to_owned(),
            phc("argon2id", "m=19456,t=2,p=1", salt, hash),
            phc("argon2i", "t=3,p=4,m=65536", salt, hash),
            phc("argon2d", "m=8,t=1,p=1", "Yh1LPoeVVvk", "c9sHShCDAz34yw"),
            phc(
                "argon2id",
                "m=65536,t=10,p=4",
                "a73KsWi9tfvzOT49jW0ROA8JDcC7cvXf7Lp8G3meuocAAKbuSUgNOapZa+KVKh6H",
                "lLHJQDhzMrkSq9c7FGesEbA5Q7AzsLO9cSl//l5e0wagPF13QddoYnfoNya5okLxJxSWDwtEaefzHpgXZ1fY2g",
            ),
        ] {
            assert_eq!(check_password_hash(&good), Ok(()), "{good}");
        }
        for bad in [
            String::new(),
            "open sesame".to_owned(),
            format!("argon2id$v=19$m=8192,t=2,p=1${salt}${hash}"),
            phc("scrypt", "m=8192,t=2,p=1", salt, hash),
            phc("argon2id", "m=8192,t=2,p=1", salt, hash).replace("v=19", "v=16"),
            phc("argon2id", "m=8192,t=2,p=1", salt, hash).replace("$v=19", ""),
            phc("argon2id", "m=8192,t=2", salt, hash),
            phc("argon2id", "m=8192,t=2,p=1,p=1", salt, hash),
            phc("argon2id", "m=8192,t=2,p=1,keyid=AAAA", salt, hash),
            phc("argon2id", "m=08192,t=2,p=1", salt, hash),
            phc("argon2id", "m=8192,t=0,p=1", salt, hash),
            phc("argon2id", "m=8192,t=11,p=1", salt, hash),
            phc("argon2id", "m=8192,t=2,p=0", salt, hash),
            phc("argon2id", "m=8192,t=2,p=5", salt, hash),
            phc("argon2id", "m=31,t=2,p=4", salt, hash),
            phc("argon2id", "m=65537,t=2,p=1", salt, hash),
            phc("argon2id", "m=2097152,t=1,p=4", salt, hash),
            phc("argon2id", "m=99999999999,t=2,p=1", salt, hash),
            phc("argon2id", "m=8192,t=2,p=1", "d81w+6MjCw", hash),
            phc("argon2id", "m=8192,t=2,p=1", "s64Wfnsa0Y1LxqJy+l/NtB", hash),
            phc(
                "argon2id",
                "m=8192,t=2,p=1",
                "s64Wfnsa0Y1LxqJy+l/NtA==",
                hash,
            ),
            phc("argon2id", "m=8192,t=2,p=1", "s64Wfnsa0Y1LxqJy-l_NtA", hash),
            phc("argon2id", "m=8192,t=2,p=1", salt, "G9Ym5OEdJd3I"),
            phc("argon2id", "m=8192,t=2,p=1", salt, ""),
            format!("$argon2id$v=19$m=8192,t=2,p=1${salt}"),
            format!("{HASH}$"),
            format!("{HASH}$extra"),
        ] {
            let error = check_password_hash(&bad).unwrap_err();
            assert_eq!(
                (error.field(), error.code()),
                ("password_hash", "invalid_password_hash"),
                "{bad}"
            );
            assert!(
                bad.is_empty() || !error.to_string().contains(&bad),
                "{error}"
            );
        }
    }

    #[test]
    fn behaviour_cells_are_json_text_escaped_like_every_cell() {
        let row = TransferRow::Link(LinkRow {
            url: "https://example.org/".into(),
            rules: Some(
                serde_json::json!([{"url": "https://example.org/x", "conditions": [{"type": "os", "value": "ios"}]}]),
            ),
            fallback_url: Some("=HYPERLINK(1)".into()),
            ios: Some("+ios".into()),
            android: Some("@android".into()),
            ..LinkRow::default()
        });
        let cells = to_csv_record(&row);
        let at = |name: &str| CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
        for cell in &cells {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{cell:?}"
            );
        }
        assert_eq!(cells[at("fallback_url")], "'=HYPERLINK(1)");
        assert!(
            cells[at("rules")].starts_with("[{"),
            "{}",
            cells[at("rules")]
        );
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(CSV_COLUMNS).unwrap();
        writer.write_record(&cells).unwrap();
        let mut bad = cells.clone();
        bad[at("rules")] = "[{\"url\":".into();
        writer.write_record(&bad).unwrap();
        let bytes = writer.into_inner().unwrap();
        let read = read_all(TransferReader::csv(&bytes[..]));
        assert_eq!(read[0].1.as_ref().unwrap(), &row);
        assert!(
            read[1]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("rules is not JSON"),
            "{:?}",
            read[1].1
        );
    }

    #[test]
    fn a_records_behaviour_exports_in_the_apis_shape() {
        use crate::behaviour::check;
        let rules = check::parse_rules(&serde_json::json!([
            {"url": "https://example.org/sale", "conditions": [
                {"type": "schedule", "value": {"timezone": "Europe/Paris", "days": ["sat"], "from": "09:00"}},
                {"type": "ip", "value": "203.0.113.9"},
                {"type": "after", "value": "2026-12-24T18:00:00+01:00"}],
             "variants": [{"url": "https://example.org/a", "weight": 10}, {"url": "https://example.org/b", "weight": 90}]}
        ]))
        .unwrap();
        let card = check::parse_card(
            &serde_json::json!({"title": "Sale", "image": "https://img.example/a.png"}),
        )
        .unwrap();
        let mut record =
            LinkRecord::new(1, "go.example", "sale", "https://example.org/", 0).unwrap();
        record.extensions.rules = rules.clone();
        record.extensions.card = Some(card.clone());
        record.extensions.ios = Some("https://apps.example/".into());
        let row = LinkRow::from_record(&record);
        assert_eq!(row.variants, None, "no split, no value");
        assert_eq!(
            row.rules.as_ref().unwrap()[0]["conditions"][1],
            serde_json::json!({"type": "ip", "value": "203.0.113.9/32"})
        );
        let TransferRow::Link(read) =
            from_json_line(&to_json_line(&TransferRow::Link(row.clone()))).unwrap()
        else {
            panic!("a link")
        };
        assert_eq!(read, row);
        assert_eq!(
            check::parse_rules(read.rules.as_ref().unwrap()).unwrap(),
            rules
        );
        assert_eq!(
            check::parse_card(read.card.as_ref().unwrap()).unwrap(),
            card
        );
        assert_eq!(read.ios.as_deref(), Some("https://apps.example/"));
    }
}
