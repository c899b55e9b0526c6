//! A link record with behaviour, compiled into the plan the request path
//! follows: destinations ready to copy into `Location`, conditions in a
//! form that is cheap to test (CIDR ranges parsed, time zones loaded, text
//! lowercased, cheap checks first), splits with their cookies, the card
//! page rendered, the click limit with its reached flag.

use super::bio_page::PagePlan;
use super::key::CookieKey;
use super::page;
use super::password::Gate;
use super::split::{Split, SplitRef};
use super::visitor::Visitor;
use crate::limits::ClickLimit;
use ipnet::IpNet;
use ricochet_model::LinkRecord;
use ricochet_model::behaviour::{ChosenBy, Condition, Device, Os};

/// Where some bytes of a plan's text are.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Span {
    at: u32,
    len: u32,
}

impl Span {
    #[inline]
    pub(super) fn of<'t>(&self, text: &'t [u8]) -> &'t [u8] {
        &text[self.at as usize..(self.at + self.len) as usize]
    }

    /// The span as text; spans are only ever made of `str`s.
    #[inline]
    pub(super) fn str_of<'t>(&self, text: &'t [u8]) -> &'t str {
        std::str::from_utf8(self.of(text)).unwrap_or_default()
    }
}

/// A plan's text under construction: every string the plan needs, in one
/// allocation, so a request touches a line or two instead of one
/// allocation per destination, token and key.
#[derive(Debug, Default)]
pub(super) struct TextBuilder(Vec<u8>);

impl TextBuilder {
    pub(super) fn push(&mut self, bytes: &[u8]) -> Span {
        let at = self.0.len() as u32;
        self.0.extend_from_slice(bytes);
        Span {
            at,
            len: bytes.len() as u32,
        }
    }

    #[cfg(test)]
    pub(super) fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub(super) fn target(&mut self, url: &str) -> TargetSpan {
        let bytes = url.as_bytes();
        let fragment_at = bytes.iter().position(|&b| b == b'#').unwrap_or(bytes.len());
        TargetSpan {
            url: self.push(bytes),
            fragment_at: fragment_at as u32,
            has_query: bytes[..fragment_at].contains(&b'?'),
        }
    }
}

/// A destination in a plan's text.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TargetSpan {
    url: Span,
    fragment_at: u32,
    has_query: bool,
}

impl TargetSpan {
    #[inline]
    pub(super) fn resolve<'t>(&self, text: &'t [u8]) -> Target<'t> {
        Target {
            url: self.url.of(text),
            fragment_at: self.fragment_at as usize,
            has_query: self.has_query,
        }
    }
}

/// A destination ready for a `Location` header (validated when the link was
/// written).
#[derive(Debug, Clone, Copy)]
pub struct Target<'p> {
    url: &'p [u8],
    fragment_at: usize,
    has_query: bool,
}

impl<'p> Target<'p> {
    #[inline]
    pub fn url(&self) -> &'p [u8] {
        self.url
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

/// Where a matching step (or the link itself) sends a visitor, as stored.
#[derive(Debug, Clone, Copy)]
enum StoredChoice {
    One(TargetSpan),
    /// Index into [`Compiled::splits`].
    Split(u8),
}

/// Where a matching step (or the link itself) sends a visitor.
#[derive(Debug, Clone, Copy)]
pub enum Choice<'p> {
    One(Target<'p>),
    Split(SplitRef<'p>),
}

/// A condition, ready to test. Strings are spans of the plan's text.
#[derive(Debug)]
pub(super) enum Check {
    After(i64),
    Before(i64),
    Ip(IpNet),
    QueryParam {
        key: Span,
        value: Span,
    },
    AnyValueQueryParam(Span),
    ValuelessQueryParam(Span),
    Schedule {
        zone: Zone,
        days: u8,
        from: u16,
        to: u16,
    },
    Device(Device),
    Os(Os),
    /// Lowercase family.
    Browser(Span),
    /// A language the visitor's best one must be: `index` numbers the
    /// link's distinct (lowercase) language tags.
    Language {
        index: u8,
        tag: Span,
    },
    Country([u8; 2]),
    City(Span),
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
            Self::Language { .. } => 4,
            Self::Country(_) | Self::City(_) => 5,
        }
    }
}

/// One step of the plan: `ios`, `android` or a rule; its checks are
/// `Compiled::checks[start..end]`.
#[derive(Debug)]
struct Step {
    by: ChosenBy,
    start: u16,
    end: u16,
    choice: StoredChoice,
}

/// The answer plan of a link with behaviour. What a request reads is in
/// four allocations: the plan, its steps, its checks (all steps' in one
/// slice) and its text (destinations, cookie names and tokens, keys);
/// splits, when the link has any, are a fifth.
#[derive(Debug)]
pub struct Compiled {
    /// The 451 page of a link whose destination is blocked: it answers
    /// nothing else (the rest of the plan is empty).
    pub blocked: Option<Box<[u8]>>,
    /// Where a gone link sends visitors.
    fallback: Option<TargetSpan>,
    /// The card page, for crawlers (without the destination when the link
    /// has a click limit: showing it takes no use).
    pub card: Option<Box<[u8]>>,
    /// The password gate.
    pub password: Option<Gate>,
    /// `max_clicks`: each redirect takes a use from the engine's counter.
    pub limit: Option<ClickLimit>,
    steps: Box<[Step]>,
    checks: Box<[Check]>,
    splits: Box<[Split]>,
    default: StoredChoice,
    text: Box<[u8]>,
    /// Whether the answer depends on the visitor (steps or a split): such
    /// answers are not cacheable and are counted by destination.
    pub varies: bool,
    /// A link-in-bio page: it answers with the page (the rest of the plan
    /// is empty).
    pub page: Option<Box<PagePlan>>,
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
            && extensions.blocked.is_none()
            && extensions.page.is_none()
        {
            return None;
        }
        if let Some(block) = &extensions.blocked {
            return Some(Self::blocked(block));
        }
        if let Some(body) = &extensions.page {
            return Some(Self {
                page: Some(Box::new(PagePlan::compile(
                    body,
                    ricochet_model::now_millis(),
                ))),
                ..Self::empty()
            });
        }
        let mut text = TextBuilder::default();
        let mut languages: Vec<String> = Vec::new();
        let mut steps = Vec::new();
        let mut checks: Vec<Check> = Vec::new();
        let mut splits: Vec<Split> = Vec::new();
        let mut step = |by, mut conditions: Vec<Check>, choice, checks: &mut Vec<Check>| {
            conditions.sort_by_key(Check::cost);
            let start = checks.len() as u16;
            checks.extend(conditions);
            steps.push(Step {
                by,
                start,
                end: checks.len() as u16,
                choice,
            });
        };
        for (by, url, os) in [
            (ChosenBy::Ios, &extensions.ios, Os::Ios),
            (ChosenBy::Android, &extensions.android, Os::Android),
        ] {
            if let Some(url) = url {
                let choice = StoredChoice::One(text.target(url));
                step(by, vec![Check::Os(os)], choice, &mut checks);
            }
        }
        for (index, rule) in extensions.rules.iter().enumerate() {
            let by = ChosenBy::Rule(index as u8);
            let conditions = rule
                .conditions
                .iter()
                .map(|condition| compile_condition(condition, &mut languages, &mut text))
                .collect();
            let choice = if rule.variants.is_empty() {
                StoredChoice::One(text.target(&rule.url))
            } else {
                splits.push(Split::compile(key, record, by, &rule.variants, &mut text));
                StoredChoice::Split((splits.len() - 1) as u8)
            };
            step(by, conditions, choice, &mut checks);
        }
        let default = if extensions.variants.is_empty() {
            StoredChoice::One(text.target(&record.url))
        } else {
            splits.push(Split::compile(
                key,
                record,
                ChosenBy::Url,
                &extensions.variants,
                &mut text,
            ));
            StoredChoice::Split((splits.len() - 1) as u8)
        };
        let varies = !steps.is_empty() || matches!(default, StoredChoice::Split(_));
        let fallback = extensions
            .fallback_url
            .as_deref()
            .map(|url| text.target(url));
        Some(Self {
            blocked: None,
            fallback,
            card: extensions.card.as_ref().map(|card| {
                let destination = extensions.click_limit.is_none().then_some(&*record.url);
                page::card_page(record, card, destination)
            }),
            password: (extensions.password_hash.as_deref())
                .map(|hash| Gate::new(hash, key, record.id, &record.code)),
            limit: extensions.click_limit.map(ClickLimit::new),
            steps: steps.into(),
            checks: checks.into(),
            splits: splits.into(),
            default,
            text: text.0.into(),
            varies,
            page: None,
        })
    }

    /// The plan of a blocked link: its page, nothing to choose from.
    fn blocked(block: &ricochet_model::block::Block) -> Self {
        Self {
            blocked: Some(page::blocked_page(block)),
            ..Self::empty()
        }
    }

    /// A plan with nothing in it, completed by [`Self::blocked`] and pages.
    fn empty() -> Self {
        Self {
            blocked: None,
            fallback: None,
            card: None,
            password: None,
            limit: None,
            steps: Box::default(),
            checks: Box::default(),
            splits: Box::default(),
            default: StoredChoice::One(TargetSpan::default()),
            text: Box::default(),
            varies: false,
            page: None,
        }
    }

    /// Where a gone link sends visitors.
    #[inline]
    pub fn fallback(&self) -> Option<Target<'_>> {
        self.fallback.map(|target| target.resolve(&self.text))
    }

    #[inline]
    fn choice(&self, stored: StoredChoice) -> Choice<'_> {
        match stored {
            StoredChoice::One(target) => Choice::One(target.resolve(&self.text)),
            StoredChoice::Split(index) => Choice::Split(SplitRef {
                split: &self.splits[index as usize],
                text: &self.text,
            }),
        }
    }

    /// The first step whose conditions all match, else the link's own choice.
    #[inline]
    pub fn choose(&self, visitor: &mut Visitor<'_>) -> (ChosenBy, Choice<'_>) {
        for step in &*self.steps {
            let checks = &self.checks[step.start as usize..step.end as usize];
            if checks
                .iter()
                .all(|check| visitor.matches(check, &self.checks, &self.text))
            {
                return (step.by, self.choice(step.choice));
            }
        }
        (ChosenBy::Url, self.choice(self.default))
    }

    /// Heap bytes, roughly (for the table's memory figure).
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.card.as_ref().map_or(0, |c| c.len())
            + self.steps.len() * std::mem::size_of::<Step>()
            + self.checks.len() * std::mem::size_of::<Check>()
            + self.splits.len() * std::mem::size_of::<Split>()
            + self.text.len()
            + self.page.as_ref().map_or(0, |page| page.heap_size())
    }
}

/// A time zone as schedules use it: loaded once per process (every link that
/// names it shares one copy; a loaded zone holds its whole transition
/// table), with a process-wide id that keys the workers' local-clock caches.
#[derive(Debug, Clone)]
pub(super) struct Zone {
    pub id: usize,
    pub tz: jiff::tz::TimeZone,
}

/// The zone named `name`.
fn zone(name: &str) -> Result<Zone, jiff::Error> {
    static ZONES: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, Zone>>> =
        std::sync::LazyLock::new(Default::default);
    let mut zones = ZONES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(zone) = zones.get(name) {
        return Ok(zone.clone());
    }
    let zone = Zone {
        id: zones.len(),
        tz: jiff::tz::db().get(name)?,
    };
    zones.insert(name.to_owned(), zone.clone());
    Ok(zone)
}

fn compile_condition(
    condition: &Condition,
    languages: &mut Vec<String>,
    text: &mut TextBuilder,
) -> Check {
    match condition {
        Condition::Device(device) => Check::Device(*device),
        Condition::Os(os) => Check::Os(*os),
        Condition::Browser(family) => Check::Browser(text.push(family.to_lowercase().as_bytes())),
        Condition::Language(tag) => {
            let tag = tag.to_ascii_lowercase();
            let index = match languages.iter().position(|l| *l == tag) {
                Some(index) => index,
                None => {
                    languages.push(tag.clone());
                    languages.len() - 1
                }
            };
            Check::Language {
                index: index as u8,
                tag: text.push(tag.as_bytes()),
            }
        }
        Condition::Country(code) => match code.as_bytes() {
            &[a, b] => Check::Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => Check::Never,
        },
        Condition::City(name) => Check::City(text.push(name.as_bytes())),
        Condition::QueryParam { key, value } => Check::QueryParam {
            key: text.push(key.as_bytes()),
            value: text.push(value.as_bytes()),
        },
        Condition::AnyValueQueryParam { key } => {
            Check::AnyValueQueryParam(text.push(key.as_bytes()))
        }
        Condition::ValuelessQueryParam { key } => {
            Check::ValuelessQueryParam(text.push(key.as_bytes()))
        }
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
