//! What a link does besides sending everyone to its destination: targeting
//! rules, A/B variants, app-store shorthands (`ios`, `android`), a card for
//! link-preview crawlers and a fallback for links that are gone. The control
//! plane validates these ([`check`]) and stores them in the record's
//! extensions; engines validate them again on intake and compile them into
//! the link's table entry.
//!
//! Evaluation order on an engine (documented in docs/LINKS.md): gone (expired,
//! disabled, deleted) → fallback or 410; link-preview crawler and a card →
//! the card page; `ios`, then `android`; the rules in order, first match wins
//! (a matching rule's variants split its traffic); the link's variants; the
//! link's destination.
//!
//! - [`condition`]: rule conditions and their JSON shape `{type, key, value}`.
//! - [`check`]: limits and validation, with errors naming the field path.

pub mod check;
pub mod condition;

use serde::{Deserialize, Serialize};

pub use check::{MAX_CONDITIONS, MAX_RULES, MAX_VARIANTS, MIN_VARIANTS};
pub use condition::{Condition, Device, Os, RawCondition, Schedule, Weekday};

/// One targeting rule: when every condition matches, the visitor goes to
/// `url` (or, when the rule has variants, to one of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub url: String,
    pub conditions: Vec<Condition>,
    /// A split of this rule's traffic; empty when the rule has none.
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// One destination of an A/B split, with its integer percentage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub url: String,
    pub weight: u8,
}

/// What link-preview crawlers see (Open Graph and Twitter Card tags).
// No `skip_serializing_if` in these types: the stored form (postcard) is not
// self-describing, so every field is always written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    /// Falls back to the link's title.
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// An absolute http(s) image URL.
    #[serde(default)]
    pub image: Option<String>,
}

impl Card {
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.image.is_none()
    }
}

/// Which of a link's destinations answered a click: the `destination`
/// analytics dimension. Packed into a `u16` on the request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chosen {
    pub by: ChosenBy,
    /// The variant picked, when the chosen destination splits its traffic.
    pub variant: Option<u8>,
}

/// What picked the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChosenBy {
    /// The link's own destination (or its variants).
    Url,
    Ios,
    Android,
    /// The rule at this index.
    Rule(u8),
    /// Not a redirect: a view of a link-in-bio page (label `page_view`).
    Page,
}

const BY_URL: u16 = 0;
const BY_PAGE: u16 = 0xfc;
const BY_IOS: u16 = 0xfe;
const BY_ANDROID: u16 = 0xfd;

impl Chosen {
    /// The packed form of "no destination dimension" (links without rules or variants).
    pub const NONE: u16 = u16::MAX;

    pub const fn url() -> Self {
        Self {
            by: ChosenBy::Url,
            variant: None,
        }
    }

    /// A page view (the click kind of a link-in-bio page's own record).
    pub const fn page_view() -> Self {
        Self {
            by: ChosenBy::Page,
            variant: None,
        }
    }

    /// The label of a page view in the `destination` dimension.
    pub const PAGE_VIEW: &str = "page_view";

    /// Packs into a `u16`: the high byte says what chose (0 the URL, a rule's
    /// index plus one, or the ios/android marks), the low byte the variant plus one.
    pub fn pack(self) -> u16 {
        let by = match self.by {
            ChosenBy::Url => BY_URL,
            ChosenBy::Ios => BY_IOS,
            ChosenBy::Android => BY_ANDROID,
            ChosenBy::Page => BY_PAGE,
            ChosenBy::Rule(index) => index as u16 + 1,
        };
        (by << 8) | self.variant.map_or(0, |v| v as u16 + 1)
    }

    /// The inverse of [`Chosen::pack`]; `None` for [`Chosen::NONE`] and values no link makes.
    pub fn unpack(packed: u16) -> Option<Self> {
        if packed == Self::NONE {
            return None;
        }
        let (by, variant) = (packed >> 8, packed & 0xff);
        let by = match by {
            BY_URL => ChosenBy::Url,
            BY_IOS => ChosenBy::Ios,
            BY_ANDROID => ChosenBy::Android,
            BY_PAGE => ChosenBy::Page,
            index if index as usize <= MAX_RULES => ChosenBy::Rule(index as u8 - 1),
            _ => return None,
        };
        let variant = match variant {
            0 => None,
            v if v as usize <= MAX_VARIANTS => Some(v as u8 - 1),
            _ => return None,
        };
        Some(Self { by, variant })
    }

    /// The label analytics show, named like the API's fields: `url`,
    /// `variants[1]`, `rules[0]`, `rules[2].variants[0]`, `ios`, `android`.
    pub fn label(self) -> String {
        let by = match self.by {
            ChosenBy::Url => None,
            ChosenBy::Ios => Some("ios".to_owned()),
            ChosenBy::Android => Some("android".to_owned()),
            ChosenBy::Rule(index) => Some(format!("rules[{index}]")),
            ChosenBy::Page => return Self::PAGE_VIEW.to_owned(),
        };
        match (by, self.variant) {
            (None, None) => "url".to_owned(),
            (None, Some(v)) => format!("variants[{v}]"),
            (Some(by), None) => by,
            (Some(by), Some(v)) => format!("{by}.variants[{v}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_packs_and_labels() {
        let cases = [
            (Chosen::url(), "url"),
            (Chosen::page_view(), "page_view"),
            (
                Chosen {
                    by: ChosenBy::Url,
                    variant: Some(1),
                },
                "variants[1]",
            ),
            (
                Chosen {
                    by: ChosenBy::Rule(0),
                    variant: None,
                },
                "rules[0]",
            ),
            (
                Chosen {
                    by: ChosenBy::Rule(31),
                    variant: Some(7),
                },
                "rules[31].variants[7]",
            ),
            (
                Chosen {
                    by: ChosenBy::Ios,
                    variant: None,
                },
                "ios",
            ),
            (
                Chosen {
                    by: ChosenBy::Android,
                    variant: None,
                },
                "android",
            ),
        ];
        for (chosen, label) in cases {
            assert_ne!(chosen.pack(), Chosen::NONE);
            assert_eq!(Chosen::unpack(chosen.pack()), Some(chosen));
            assert_eq!(chosen.label(), label);
        }
        assert_eq!(Chosen::unpack(Chosen::NONE), None);
        assert_eq!(Chosen::unpack(0x2100), None);
        assert_eq!(Chosen::unpack(0x0009), None);
    }
}
