//! A link record with behaviour, compiled into the plan the request path
//! follows: destinations ready to copy into `Location`, conditions in a
//! form that is cheap to test (CIDR ranges parsed, time zones loaded, text
//! lowercased, cheap checks first), splits with their cookies, the card
//! page rendered, the click limit with its reached flag.

use super::key::CookieKey;
use super::page;
use super::password::Gate;
use super::split::Split;
use super::visitor::Visitor;
use crate::limits::ClickLimit;
use ipnet::IpNet;
use ricochet_model::LinkRecord;
use ricochet_model::behaviour::{ChosenBy, Condition, Device, Os};

/// A destination ready for a `Location` header.
#[derive(Debug)]
pub struct Target {
    url: Box<[u8]>,
    fragment_at: usize,
    has_query: bool,
}

impl Target {
    /// `url` must be a validated destination.
    pub fn new(url: &str) -> Self {
        let bytes = url.as_bytes();
        let fragment_at = bytes.iter().position(|&b| b == b'#').unwrap_or(bytes.len());
        Self {
            url: bytes.into(),
            fragment_at,
            has_query: bytes[..fragment_at].contains(&b'?'),
        }
    }

    #[inline]
    pub fn url(&self) -> &[u8] {
        &self.url
    }

    /// Offset of `#`, or the URL's length.
    #[inline]
    pub fn fragment_at(&self) -> usize {
        self.fragment_at
    }

    /// Whether the URL before its fragment has a query.
    #[inline]
    pub fn has_query(&self) -> bool {
        self.has_query
    }
}

/// Where a matching step (or the link itself) sends a visitor.
#[derive(Debug)]
pub enum Choice {
    One(Target),
    /// Boxed: a split is several times a target's size, and most steps have none.
    Split(Box<Split>),
}

/// A condition, ready to test.
#[derive(Debug)]
pub(super) enum Check {
    After(i64),
    Before(i64),
    Ip(IpNet),
    QueryParam {
        key: Box<str>,
        value: Box<str>,
    },
    AnyValueQueryParam(Box<str>),
    ValuelessQueryParam(Box<str>),
    Schedule {
        zone: jiff::tz::TimeZone,
        days: u8,
        from: u16,
        to: u16,
    },
    Device(Device),
    Os(Os),
    /// Lowercase family.
    Browser(Box<str>),
    /// Index into [`Compiled::languages`].
    Language(u8),
    Country([u8; 2]),
    City(Box<str>),
    /// A stored condition this engine cannot evaluate (an unknown time zone).
    Never,
}

impl Check {
    /// Relative cost, cheapest first: clocks and the request line, then the
    /// cached user agent, then Accept-Language, then GeoIP.
    fn cost(&self) -> u8 {
        match self {
            Self::After(_) | Self::Before(_) | Self::Ip(_) | Self::Never => 0,
            Self::QueryParam { .. }
            | Self::AnyValueQueryParam(_)
            | Self::ValuelessQueryParam(_) => 1,
            Self::Schedule { .. } => 2,
            Self::Device(_) | Self::Os(_) | Self::Browser(_) => 3,
            Self::Language(_) => 4,
            Self::Country(_) | Self::City(_) => 5,
        }
    }
}

/// One step of the plan: `ios`, `android` or a rule.
#[derive(Debug)]
struct Step {
    by: ChosenBy,
    checks: Box<[Check]>,
    choice: Choice,
}

/// The answer plan of a link with behaviour.
#[derive(Debug)]
pub struct Compiled {
    /// Where a gone link sends visitors.
    pub fallback: Option<Target>,
    /// The card page, for crawlers (without the destination when the link
    /// has a click limit: showing it takes no use).
    pub card: Option<Box<[u8]>>,
    /// The password gate.
    pub password: Option<Gate>,
    /// `max_clicks`: each redirect takes a use from the engine's counter.
    pub limit: Option<ClickLimit>,
    steps: Box<[Step]>,
    default: Choice,
    /// Languages the link's conditions name (see [`Visitor`]).
    languages: Box<[Box<str>]>,
    /// Whether the answer depends on the visitor (steps or a split): such
    /// answers are not cacheable and are counted by destination.
    pub varies: bool,
}

impl Compiled {
    /// The plan of `record`; `None` for a plain link.
    pub fn compile(record: &LinkRecord, key: &CookieKey) -> Option<Self> {
        let extensions = &record.extensions;
        if extensions.rules.is_empty()
            && extensions.variants.is_empty()
            && extensions.fallback_url.is_none()
            && extensions.card.is_none()
            && extensions.ios.is_none()
            && extensions.android.is_none()
            && extensions.password_hash.is_none()
            && extensions.click_limit.is_none()
        {
            return None;
        }
        let mut languages: Vec<Box<str>> = Vec::new();
        let mut steps = Vec::new();
        for (by, url, os) in [
            (ChosenBy::Ios, &extensions.ios, Os::Ios),
            (ChosenBy::Android, &extensions.android, Os::Android),
        ] {
            if let Some(url) = url {
                steps.push(Step {
                    by,
                    checks: Box::new([Check::Os(os)]),
                    choice: Choice::One(Target::new(url)),
                });
            }
        }
        for (index, rule) in extensions.rules.iter().enumerate() {
            let by = ChosenBy::Rule(index as u8);
            let mut checks: Vec<Check> = rule
                .conditions
                .iter()
                .map(|condition| compile_condition(condition, &mut languages))
                .collect();
            checks.sort_by_key(Check::cost);
            let choice = if rule.variants.is_empty() {
                Choice::One(Target::new(&rule.url))
            } else {
                Choice::Split(Box::new(Split::compile(key, record, by, &rule.variants)))
            };
            steps.push(Step {
                by,
                checks: checks.into(),
                choice,
            });
        }
        let default = if extensions.variants.is_empty() {
            Choice::One(Target::new(&record.url))
        } else {
            Choice::Split(Box::new(Split::compile(
                key,
                record,
                ChosenBy::Url,
                &extensions.variants,
            )))
        };
        let varies = !steps.is_empty() || matches!(default, Choice::Split(_));
        Some(Self {
            fallback: extensions.fallback_url.as_deref().map(Target::new),
            card: extensions.card.as_ref().map(|card| {
                let destination = extensions.click_limit.is_none().then_some(&*record.url);
                page::card_page(record, card, destination)
            }),
            password: (extensions.password_hash.as_deref())
                .map(|hash| Gate::new(hash, key, record.id, &record.code)),
            limit: extensions.click_limit.map(ClickLimit::new),
            steps: steps.into(),
            default,
            languages: languages.into(),
            varies,
        })
    }

    /// The first step whose conditions all match, else the link's own choice.
    #[inline]
    pub fn choose(&self, visitor: &mut Visitor<'_>) -> (ChosenBy, &Choice) {
        for step in &*self.steps {
            if step
                .checks
                .iter()
                .all(|check| visitor.matches(check, &self.languages))
            {
                return (step.by, &step.choice);
            }
        }
        (ChosenBy::Url, &self.default)
    }

    /// Heap bytes, roughly (for the table's memory figure).
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.card.as_ref().map_or(0, |c| c.len())
            + self.steps.len() * (std::mem::size_of::<Step>() + 64)
    }
}

/// The time zone named `name`, loaded once per process: every link that
/// names it shares one copy (a loaded zone holds its whole transition table).
fn zone(name: &str) -> Result<jiff::tz::TimeZone, jiff::Error> {
    static ZONES: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, jiff::tz::TimeZone>>,
    > = std::sync::LazyLock::new(Default::default);
    let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(zone) = zones.get(name) {
        return Ok(zone.clone());
    }
    let zone = jiff::tz::db().get(name)?;
    zones.insert(name.to_owned(), zone.clone());
    Ok(zone)
}

fn compile_condition(condition: &Condition, languages: &mut Vec<Box<str>>) -> Check {
    match condition {
        Condition::Device(device) => Check::Device(*device),
        Condition::Os(os) => Check::Os(*os),
        Condition::Browser(family) => Check::Browser(family.to_lowercase().into()),
        Condition::Language(tag) => {
            let index = match languages.iter().position(|l| **l == **tag) {
                Some(index) => index,
                None => {
                    languages.push(tag.as_str().into());
                    languages.len() - 1
                }
            };
            Check::Language(index as u8)
        }
        Condition::Country(code) => match code.as_bytes() {
            &[a, b] => Check::Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => Check::Never,
        },
        Condition::City(name) => Check::City(name.as_str().into()),
        Condition::QueryParam { key, value } => Check::QueryParam {
            key: key.as_str().into(),
            value: value.as_str().into(),
        },
        Condition::AnyValueQueryParam { key } => Check::AnyValueQueryParam(key.as_str().into()),
        Condition::ValuelessQueryParam { key } => Check::ValuelessQueryParam(key.as_str().into()),
        Condition::Ip(range) => match range.parse() {
            Ok(net) => Check::Ip(net),
            Err(_) => Check::Never,
        },
        Condition::After(at) => Check::After(*at),
        Condition::Before(at) => Check::Before(*at),
        Condition::Schedule(schedule) => match zone(&schedule.timezone) {
            Ok(zone) => Check::Schedule {
                zone,
                days: schedule.days,
                from: schedule.from,
                to: schedule.to,
            },
            Err(error) => {
                tracing::warn!(timezone = %schedule.timezone, %error, "unknown time zone: the condition never matches");
                Check::Never
            }
        },
    }
}
