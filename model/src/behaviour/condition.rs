//! Rule conditions. On the API and in JSON a condition is an object
//! `{type, key, value}` (the shape Shlink's redirect rules use); stored and
//! on the wire between binaries it is a compact enum. [`RawCondition`] is
//! the JSON form before validation; [`RawCondition::parse`] turns it into a
//! [`Condition`] or names the field at fault.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::check::FieldError;
use crate::UnixMillis;

/// Longest text value of a condition (browser, city, query parameter).
pub const MAX_VALUE_LEN: usize = 256;

/// A device class, as the engine's user-agent classification names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Mobile,
    Tablet,
    Desktop,
}

impl Device {
    pub const ALL: [Device; 3] = [Device::Mobile, Device::Tablet, Device::Desktop];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Desktop => "desktop",
        }
    }
}

/// An operating system family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Ios,
    Android,
    Windows,
    Macos,
    Linux,
}

impl Os {
    pub const ALL: [Os; 5] = [Os::Ios, Os::Android, Os::Windows, Os::Macos, Os::Linux];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ios => "ios",
            Self::Android => "android",
            Self::Windows => "windows",
            Self::Macos => "macos",
            Self::Linux => "linux",
        }
    }
}

/// A day of the week, Monday first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    pub const ALL: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];

    pub fn as_str(self) -> &'static str {
        ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][self as usize]
    }

    /// The bit of this day in [`Schedule::days`].
    pub const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A weekly window in an IANA time zone: on the listed days, from `from`
/// (inclusive) to `to` (exclusive), minutes after local midnight. When `to`
/// is not after `from` the window runs overnight: from `from` on a listed
/// day to `to` the next morning.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schedule {
    pub timezone: String,
    /// Bit `d` set when weekday `d` (Monday = 0) is listed.
    pub days: u8,
    pub from: u16,
    pub to: u16,
}

/// One condition of a rule. All conditions of a rule must match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    Device(Device),
    Os(Os),
    /// A browser family (`chrome`, `firefox`, `safari`, `edge`, …), case-insensitive.
    Browser(String),
    /// A language tag, lowercase (`fr`, `pt-br`), matched against Accept-Language.
    Language(String),
    /// ISO 3166-1 alpha-2, uppercase.
    Country(String),
    /// A city name as the GeoIP database spells it, matched case-insensitively.
    City(String),
    /// `key=value` is in the query.
    QueryParam {
        key: String,
        value: String,
    },
    /// `key` is in the query, with any value or none.
    AnyValueQueryParam {
        key: String,
    },
    /// `key` is in the query without a value (`?key` or `?key=`).
    ValuelessQueryParam {
        key: String,
    },
    /// An address or CIDR range, in its normalized text form (`10.0.0.0/8`).
    Ip(String),
    /// At or after this instant.
    After(UnixMillis),
    /// Before this instant.
    Before(UnixMillis),
    Schedule(Schedule),
}

/// The stored (non-human-readable) form: serde's default enum encoding.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Condition")]
enum StoredCondition {
    Device(Device),
    Os(Os),
    Browser(String),
    Language(String),
    Country(String),
    City(String),
    QueryParam { key: String, value: String },
    AnyValueQueryParam { key: String },
    ValuelessQueryParam { key: String },
    Ip(String),
    After(UnixMillis),
    Before(UnixMillis),
    Schedule(Schedule),
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.to_raw().serialize(serializer)
        } else {
            StoredCondition::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            RawCondition::deserialize(deserializer)?
                .parse()
                .map_err(|error| D::Error::custom(format!("{}: {}", error.field, error.message)))
        } else {
            StoredCondition::deserialize(deserializer)
        }
    }
}

/// A condition as JSON gives it, before validation. Any JSON value is
/// accepted in each field so that [`RawCondition::parse`] can name the
/// field at fault.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawCondition {
    #[serde(rename = "type", default)]
    pub kind: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// The condition types, as the API names them.
pub const CONDITION_TYPES: &[&str] = &[
    "device",
    "os",
    "browser",
    "language",
    "country",
    "city",
    "query-param",
    "any-value-query-param",
    "valueless-query-param",
    "ip",
    "after",
    "before",
    "schedule",
];

fn invalid(field: &str, message: impl Into<String>) -> FieldError {
    FieldError::new(field, message)
}

impl RawCondition {
    /// Validates and normalizes. Errors name `type`, `key` or `value` (or a
    /// part of a schedule, `value.timezone`).
    pub fn parse(&self) -> Result<Condition, FieldError> {
        let Some(kind) = self.kind.as_str() else {
            return Err(invalid(
                "type",
                format!("type is required, one of {}", CONDITION_TYPES.join(", ")),
            ));
        };
        let takes_key = matches!(
            kind,
            "query-param" | "any-value-query-param" | "valueless-query-param"
        );
        if !takes_key && self.key.as_ref().is_some_and(|k| !k.is_null()) {
            return Err(invalid("key", format!("a {kind} condition takes no key")));
        }
        Ok(match kind {
            "device" => Condition::Device(self.pick("device", &Device::ALL, Device::as_str)?),
            "os" => Condition::Os(self.pick("os", &Os::ALL, Os::as_str)?),
            "browser" => Condition::Browser(self.text()?.to_owned()),
            "language" => Condition::Language(language(self.text()?)?),
            "country" => {
                let code = self.text()?;
                if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
                    return Err(invalid(
                        "value",
                        "a country is a two-letter ISO 3166-1 code such as FR",
                    ));
                }
                Condition::Country(code.to_ascii_uppercase())
            }
            "city" => Condition::City(self.text()?.to_owned()),
            "query-param" => match self.value.as_ref().filter(|v| !v.is_null()) {
                None => Condition::AnyValueQueryParam { key: self.key()? },
                Some(_) => Condition::QueryParam {
                    key: self.key()?,
                    value: self.text_allowing_empty()?.to_owned(),
                },
            },
            "any-value-query-param" | "valueless-query-param" => {
                if self.value.as_ref().is_some_and(|v| !v.is_null()) {
                    return Err(invalid(
                        "value",
                        format!("a {kind} condition takes no value"),
                    ));
                }
                let key = self.key()?;
                if kind == "any-value-query-param" {
                    Condition::AnyValueQueryParam { key }
                } else {
                    Condition::ValuelessQueryParam { key }
                }
            }
            "ip" => Condition::Ip(ip_range(self.text()?)?),
            "after" => Condition::After(instant(self.text()?)?),
            "before" => Condition::Before(instant(self.text()?)?),
            "schedule" => Condition::Schedule(schedule(self.value.as_ref())?),
            other => {
                return Err(invalid(
                    "type",
                    format!(
                        "unknown condition type {other:?}; one of {}",
                        CONDITION_TYPES.join(", ")
                    ),
                ));
            }
        })
    }

    fn text_allowing_empty(&self) -> Result<&str, FieldError> {
        let Some(text) = self.value.as_ref().and_then(Value::as_str) else {
            return Err(invalid("value", "value must be a string"));
        };
        if text.len() > MAX_VALUE_LEN || text.chars().any(char::is_control) {
            return Err(invalid(
                "value",
                format!("value must be at most {MAX_VALUE_LEN} bytes without control characters"),
            ));
        }
        Ok(text)
    }

    fn text(&self) -> Result<&str, FieldError> {
        let text = self.text_allowing_empty()?;
        if text.trim().is_empty() {
            return Err(invalid("value", "value must not be empty"));
        }
        Ok(text)
    }

    fn key(&self) -> Result<String, FieldError> {
        match self.key.as_ref().and_then(Value::as_str) {
            Some(key)
                if !key.is_empty()
                    && key.len() <= MAX_VALUE_LEN
                    && !key.chars().any(char::is_control) =>
            {
                Ok(key.to_owned())
            }
            _ => Err(invalid(
                "key",
                format!("key must be the query parameter's name, 1 to {MAX_VALUE_LEN} bytes"),
            )),
        }
    }

    fn pick<T: Copy>(
        &self,
        what: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<T, FieldError> {
        let text = self.value.as_ref().and_then(Value::as_str).unwrap_or("");
        all.iter()
            .copied()
            .find(|&item| name(item).eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                let names: Vec<_> = all.iter().map(|&item| name(item)).collect();
                invalid(
                    "value",
                    format!("{what} must be one of {}", names.join(", ")),
                )
            })
    }
}

impl Condition {
    /// The JSON form.
    pub fn to_raw(&self) -> RawCondition {
        let text = |s: &str| Some(Value::from(s));
        let (kind, key, value) = match self {
            Self::Device(device) => ("device", None, text(device.as_str())),
            Self::Os(os) => ("os", None, text(os.as_str())),
            Self::Browser(v) => ("browser", None, text(v)),
            Self::Language(v) => ("language", None, text(v)),
            Self::Country(v) => ("country", None, text(v)),
            Self::City(v) => ("city", None, text(v)),
            Self::QueryParam { key, value } => ("query-param", text(key), text(value)),
            Self::AnyValueQueryParam { key } => ("any-value-query-param", text(key), None),
            Self::ValuelessQueryParam { key } => ("valueless-query-param", text(key), None),
            Self::Ip(v) => ("ip", None, text(v)),
            Self::After(at) => ("after", None, text(&format_instant(*at))),
            Self::Before(at) => ("before", None, text(&format_instant(*at))),
            Self::Schedule(schedule) => ("schedule", None, Some(schedule_json(schedule))),
        };
        RawCondition {
            kind: Value::from(kind),
            key,
            value,
        }
    }

    /// Re-checks a stored condition (engines run this on intake).
    pub fn check(&self) -> Result<(), FieldError> {
        let again = self.to_raw().parse()?;
        if &again != self {
            return Err(invalid("value", "condition is not in its normalized form"));
        }
        Ok(())
    }
}

/// A language tag: letters, digits and `-`, a 2–8 letter primary subtag,
/// lowercased (`fr`, `pt-br`, `zh-hant-tw`).
fn language(text: &str) -> Result<String, FieldError> {
    let lower = text.trim().to_ascii_lowercase();
    let mut parts = lower.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !primary_ok || !rest_ok || lower.len() > 35 {
        return Err(invalid(
            "value",
            "a language is a BCP 47 tag such as fr, en-US or pt-BR",
        ));
    }
    Ok(lower)
}

/// An address or CIDR range, normalized to its network form.
fn ip_range(text: &str) -> Result<String, FieldError> {
    let text = text.trim();
    let net = match text.parse::<ipnet::IpNet>() {
        Ok(net) => net.trunc(),
        Err(_) => match text.parse::<std::net::IpAddr>() {
            Ok(addr) => ipnet::IpNet::from(addr),
            Err(_) => {
                return Err(invalid(
                    "value",
                    "ip must be an IPv4 or IPv6 address or CIDR range such as 203.0.113.0/24",
                ));
            }
        },
    };
    Ok(net.to_string())
}

fn instant(text: &str) -> Result<UnixMillis, FieldError> {
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|at| (at.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            invalid(
                "value",
                "value must be an RFC 3339 date-time such as 2026-12-24T18:00:00Z",
            )
        })
}

/// RFC 3339 in UTC with milliseconds when there are any.
pub fn format_instant(at: UnixMillis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(at as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn schedule(value: Option<&Value>) -> Result<Schedule, FieldError> {
    let Some(object) = value.and_then(Value::as_object) else {
        return Err(invalid(
            "value",
            r#"a schedule is {"timezone": "Europe/Paris", "days": ["mon", …], "from": "09:00", "to": "17:00"}"#,
        ));
    };
    if let Some(unknown) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "timezone" | "days" | "from" | "to"))
    {
        return Err(invalid(
            &format!("value.{unknown}"),
            "unknown schedule field; a schedule has timezone, days, from and to",
        ));
    }
    let timezone = match object.get("timezone").and_then(Value::as_str) {
        Some(name) if jiff::tz::db().get(name).is_ok() => name.to_owned(),
        _ => {
            return Err(invalid(
                "value.timezone",
                "timezone must be an IANA time zone such as Europe/Paris or UTC",
            ));
        }
    };
    let days = match object.get("days") {
        None | Some(Value::Null) => 0x7f,
        Some(Value::Array(days)) if !days.is_empty() => {
            let mut bits = 0u8;
            for day in days {
                let Some(day) = day.as_str().and_then(|d| {
                    Weekday::ALL
                        .into_iter()
                        .find(|w| w.as_str().eq_ignore_ascii_case(d))
                }) else {
                    return Err(invalid(
                        "value.days",
                        "days are mon, tue, wed, thu, fri, sat, sun",
                    ));
                };
                bits |= day.bit();
            }
            bits
        }
        Some(_) => {
            return Err(invalid(
                "value.days",
                "days must be a non-empty list of mon, tue, wed, thu, fri, sat, sun",
            ));
        }
    };
    let from = clock_time(object.get("from"), "value.from", 0)?;
    let to = clock_time(object.get("to"), "value.to", 24 * 60)?;
    if from == to || (from == 0 && to == 0) {
        return Err(invalid("value.to", "to must differ from from"));
    }
    Ok(Schedule {
        timezone,
        days,
        from,
        to,
    })
}

/// `HH:MM` (00:00 to 24:00) as minutes after midnight.
fn clock_time(value: Option<&Value>, field: &str, default: u16) -> Result<u16, FieldError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(default),
        Some(value) => value.as_str().unwrap_or(""),
    };
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let ok = h.len() == 2 && m.len() == 2;
        let (h, m) = (h.parse::<u16>().ok()?, m.parse::<u16>().ok()?);
        (ok && m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| invalid(field, "a time of day is HH:MM, 00:00 to 24:00"))
}

fn schedule_json(schedule: &Schedule) -> Value {
    let days: Vec<Value> = Weekday::ALL
        .into_iter()
        .filter(|d| schedule.days & d.bit() != 0)
        .map(|d| Value::from(d.as_str()))
        .collect();
    let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
    serde_json::json!({
        "timezone": schedule.timezone,
        "days": days,
        "from": hhmm(schedule.from),
        "to": hhmm(schedule.to),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Condition, FieldError> {
        serde_json::from_value::<RawCondition>(value)
            .unwrap()
            .parse()
    }

    #[test]
    fn every_type_parses_and_round_trips_through_json_and_postcard() {
        let cases = [
            json!({"type": "device", "value": "Mobile"}),
            json!({"type": "os", "value": "ios"}),
            json!({"type": "browser", "value": "Firefox"}),
            json!({"type": "language", "value": "pt-BR"}),
            json!({"type": "country", "value": "fr"}),
            json!({"type": "city", "value": "Paris"}),
            json!({"type": "query-param", "key": "ref", "value": "mail"}),
            json!({"type": "query-param", "key": "ref", "value": ""}),
            json!({"type": "query-param", "key": "ref"}),
            json!({"type": "any-value-query-param", "key": "ref"}),
            json!({"type": "valueless-query-param", "key": "ref"}),
            json!({"type": "ip", "value": "10.1.2.3/8"}),
            json!({"type": "ip", "value": "2001:db8::1"}),
            json!({"type": "after", "value": "2026-12-24T18:00:00+01:00"}),
            json!({"type": "before", "value": "2026-12-24T17:00:00.250Z"}),
            json!({"type": "schedule", "value": {"timezone": "Europe/Paris", "days": ["mon", "FRI"], "from": "09:00", "to": "17:30"}}),
            json!({"type": "schedule", "value": {"timezone": "UTC", "from": "22:00", "to": "06:00"}}),
        ];
        for case in cases {
            let condition = parse(case.clone()).unwrap_or_else(|e| panic!("{case}: {e:?}"));
            condition.check().unwrap();
            let text = serde_json::to_string(&condition).unwrap();
            assert_eq!(serde_json::from_str::<Condition>(&text).unwrap(), condition);
            let bytes = postcard::to_stdvec(&condition).unwrap();
            assert_eq!(
                postcard::from_bytes::<Condition>(&bytes).unwrap(),
                condition
            );
        }
    }

    #[test]
    fn values_are_normalized() {
        assert_eq!(
            parse(json!({"type": "ip", "value": "10.1.2.3/8"})).unwrap(),
            Condition::Ip("10.0.0.0/8".into())
        );
        assert_eq!(
            parse(json!({"type": "ip", "value": "203.0.113.9"})).unwrap(),
            Condition::Ip("203.0.113.9/32".into())
        );
        assert_eq!(
            parse(json!({"type": "country", "value": "fr"})).unwrap(),
            Condition::Country("FR".into())
        );
        assert_eq!(
            parse(json!({"type": "after", "value": "2026-12-24T18:00:00+01:00"})).unwrap(),
            Condition::After(1_798_131_600_000)
        );
        assert_eq!(format_instant(1_798_131_600_000), "2026-12-24T17:00:00Z");
        let Condition::Schedule(schedule) =
            parse(json!({"type": "schedule", "value": {"timezone": "UTC"}})).unwrap()
        else {
            panic!("not a schedule");
        };
        assert_eq!((schedule.days, schedule.from, schedule.to), (0x7f, 0, 1440));
    }

    #[test]
    fn errors_name_the_field() {
        for (case, field) in [
            (json!({"value": "x"}), "type"),
            (json!({"type": "planet", "value": "x"}), "type"),
            (json!({"type": "device", "value": "watch"}), "value"),
            (
                json!({"type": "device", "key": "k", "value": "mobile"}),
                "key",
            ),
            (json!({"type": "os", "value": 3}), "value"),
            (json!({"type": "language", "value": "français"}), "value"),
            (json!({"type": "country", "value": "FRA"}), "value"),
            (json!({"type": "city", "value": ""}), "value"),
            (json!({"type": "query-param", "value": "x"}), "key"),
            (
                json!({"type": "valueless-query-param", "key": "k", "value": "v"}),
                "value",
            ),
            (json!({"type": "ip", "value": "10.0.0.300"}), "value"),
            (json!({"type": "after", "value": "tomorrow"}), "value"),
            (json!({"type": "schedule", "value": "weekdays"}), "value"),
            (
                json!({"type": "schedule", "value": {"timezone": "Mars/Olympus"}}),
                "value.timezone",
            ),
            (
                json!({"type": "schedule", "value": {"timezone": "UTC", "days": ["mon", "someday"]}}),
                "value.days",
            ),
            (
                json!({"type": "schedule", "value": {"timezone": "UTC", "from": "9:00"}}),
                "value.from",
            ),
            (
                json!({"type": "schedule", "value": {"timezone": "UTC", "to": "24:30"}}),
                "value.to",
            ),
            (
                json!({"type": "schedule", "value": {"timezone": "UTC", "from": "10:00", "to": "10:00"}}),
                "value.to",
            ),
            (
                json!({"type": "schedule", "value": {"timezone": "UTC", "at": "10:00"}}),
                "value.at",
            ),
        ] {
            let error = parse(case.clone()).unwrap_err();
            assert_eq!(error.field, field, "{case}: {error:?}");
            assert!(!error.message.is_empty());
        }
    }
}
