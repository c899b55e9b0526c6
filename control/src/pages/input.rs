//! What callers (the API, the console) pass to create or edit a page, and
//! its checking into [`PageContent`]: every error names the field at fault
//! (`items[3].link_id`, `socials[0].url`, `theme.colors.text`, …).

use ricochet_model::UnixMillis;
use ricochet_model::behaviour::check::FieldError;

use super::content::{
    self, Appearance, Colors, Item, ItemKind, MAX_BIO_CHARS, MAX_DESCRIPTION_CHARS, MAX_ITEMS,
    MAX_LABEL_CHARS, MAX_SOCIALS, MAX_TITLE_CHARS, Network, PageCard, PageContent, Social, Theme,
    ThemePreset,
};
use crate::keys::random_string;

/// Length of a new item's id.
const ITEM_ID_LEN: usize = 10;

/// A new page.
#[derive(Debug, Clone, Default)]
pub struct NewPage {
    pub handle: String,
    /// `None`: the default domain.
    pub domain: Option<String>,
    /// Serve the page at the domain's root too.
    pub at_root: bool,
    pub content: ContentInput,
}

/// A page's content as given.
#[derive(Debug, Clone, Default)]
pub struct ContentInput {
    pub title: String,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub theme: ThemeInput,
    pub socials: Vec<SocialInput>,
    pub items: Vec<ItemInput>,
    pub card: PageCard,
}

/// An edit: absent fields stay; `Some(None)` clears a clearable one.
#[derive(Debug, Clone, Default)]
pub struct PageChanges {
    pub at_root: Option<bool>,
    pub title: Option<String>,
    pub bio: Option<Option<String>>,
    pub avatar_url: Option<Option<String>>,
    pub theme: Option<ThemeInput>,
    pub socials: Option<Vec<SocialInput>>,
    /// The whole list: items with the `id` of an existing item keep it.
    pub items: Option<Vec<ItemInput>>,
    pub card: Option<PageCard>,
}

#[derive(Debug, Clone, Default)]
pub struct ThemeInput {
    /// `classic` (default), `sunset`, `forest`, `ocean` or `mono`.
    pub preset: Option<String>,
    /// `auto` (default), `light` or `dark`.
    pub appearance: Option<String>,
    pub colors: Option<ColorsInput>,
}

#[derive(Debug, Clone, Default)]
pub struct ColorsInput {
    pub background: String,
    pub text: String,
    pub button: String,
    pub button_text: String,
}

#[derive(Debug, Clone, Default)]
pub struct SocialInput {
    pub network: String,
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct ItemInput {
    /// Keeps an existing item's id; `None` gives a new one.
    pub id: Option<String>,
    pub kind: ItemKind,
    pub visible_from: Option<UnixMillis>,
    pub visible_until: Option<UnixMillis>,
}

impl From<&PageContent> for ContentInput {
    /// The input that gives `content` again (to apply an edit to).
    fn from(content: &PageContent) -> Self {
        Self {
            title: content.title.clone(),
            bio: content.bio.clone(),
            avatar_url: content.avatar_url.clone(),
            theme: ThemeInput {
                preset: Some(content.theme.preset.as_str().to_owned()),
                appearance: Some(content.theme.appearance.as_str().to_owned()),
                colors: content.theme.colors.as_ref().map(|colors| ColorsInput {
                    background: colors.background.clone(),
                    text: colors.text.clone(),
                    button: colors.button.clone(),
                    button_text: colors.button_text.clone(),
                }),
            },
            socials: content
                .socials
                .iter()
                .map(|social| SocialInput {
                    network: social.network.as_str().to_owned(),
                    url: social.url.clone(),
                })
                .collect(),
            items: content
                .items
                .iter()
                .map(|item| ItemInput {
                    id: Some(item.id.clone()),
                    kind: item.kind.clone(),
                    visible_from: item.visible_from,
                    visible_until: item.visible_until,
                })
                .collect(),
            card: content.card.clone(),
        }
    }
}

impl ContentInput {
    /// The checked content; item ids not among `known` ids are replaced by
    /// new ones.
    pub fn check(&self, known: &[String]) -> Result<PageContent, FieldError> {
        content::check_text("title", &self.title, MAX_TITLE_CHARS, true)?;
        let bio = self
            .bio
            .as_deref()
            .filter(|bio| !bio.trim().is_empty())
            .map(|bio| {
                content::check_text("bio", bio, MAX_BIO_CHARS, false)?;
                Ok::<_, FieldError>(bio.trim().to_owned())
            })
            .transpose()?;
        let avatar_url = self
            .avatar_url
            .as_deref()
            .map(|url| content::check_image_url("avatar_url", url))
            .transpose()?;
        Ok(PageContent {
            title: self.title.trim().to_owned(),
            bio,
            avatar_url,
            theme: self.theme.check()?,
            socials: check_socials(&self.socials)?,
            items: check_items(&self.items, known)?,
            card: check_card(&self.card)?,
        })
    }
}

impl ThemeInput {
    fn check(&self) -> Result<Theme, FieldError> {
        let preset = match self.preset.as_deref() {
            None => ThemePreset::default(),
            Some(name) => ThemePreset::ALL
                .into_iter()
                .find(|p| p.as_str() == name)
                .ok_or_else(|| {
                    FieldError::new(
                        "theme.preset",
                        "must be classic, sunset, forest, ocean or mono",
                    )
                })?,
        };
        let appearance = match self.appearance.as_deref() {
            None => Appearance::default(),
            Some(name) => Appearance::ALL
                .into_iter()
                .find(|a| a.as_str() == name)
                .ok_or_else(|| {
                    FieldError::new("theme.appearance", "must be auto, light or dark")
                })?,
        };
        let colors = self
            .colors
            .as_ref()
            .map(|colors| {
                Ok::<_, FieldError>(Colors {
                    background: content::check_color(
                        "theme.colors.background",
                        &colors.background,
                    )?,
                    text: content::check_color("theme.colors.text", &colors.text)?,
                    button: content::check_color("theme.colors.button", &colors.button)?,
                    button_text: content::check_color(
                        "theme.colors.button_text",
                        &colors.button_text,
                    )?,
                })
            })
            .transpose()?;
        Ok(Theme {
            preset,
            appearance,
            colors,
        })
    }
}

fn check_socials(socials: &[SocialInput]) -> Result<Vec<Social>, FieldError> {
    if socials.len() > MAX_SOCIALS {
        return Err(FieldError::new(
            "socials",
            format!("at most {MAX_SOCIALS} social icons"),
        ));
    }
    let mut checked: Vec<Social> = Vec::with_capacity(socials.len());
    for (index, social) in socials.iter().enumerate() {
        let at = format!("socials[{index}]");
        let network = Network::parse(&social.network).ok_or_else(|| {
            let names: Vec<&str> = Network::ALL.iter().map(|n| n.as_str()).collect();
            FieldError::new(
                &format!("{at}.network"),
                format!("must be one of {}", names.join(", ")),
            )
        })?;
        if checked.iter().any(|s| s.network == network) {
            return Err(FieldError::new(
                &format!("{at}.network"),
                format!("{} is already on the page", network.as_str()),
            ));
        }
        let url = content::check_social_url(&format!("{at}.url"), network, &social.url)?;
        checked.push(Social { network, url });
    }
    Ok(checked)
}

fn check_items(items: &[ItemInput], known: &[String]) -> Result<Vec<Item>, FieldError> {
    if items.len() > MAX_ITEMS {
        return Err(FieldError::new(
            "items",
            format!("at most {MAX_ITEMS} items"),
        ));
    }
    let mut checked: Vec<Item> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = format!("items[{index}]");
        let kind = match &item.kind {
            ItemKind::Link { link_id, label } => {
                let label = label.as_deref().map(str::trim).filter(|l| !l.is_empty());
                if let Some(label) = label {
                    content::check_text(&format!("{at}.label"), label, MAX_LABEL_CHARS, true)?;
                }
                ItemKind::Link {
                    link_id: *link_id,
                    label: label.map(str::to_owned),
                }
            }
            ItemKind::Header { text } => {
                content::check_text(&format!("{at}.text"), text, MAX_LABEL_CHARS, true)?;
                ItemKind::Header {
                    text: text.trim().to_owned(),
                }
            }
        };
        content::check_window(&at, item.visible_from, item.visible_until)?;
        let id = match &item.id {
            Some(id) if known.contains(id) => id.clone(),
            Some(id) if !id.is_empty() => {
                return Err(FieldError::new(
                    &format!("{at}.id"),
                    format!("no item {id:?} on this page (leave id out for a new item)"),
                ));
            }
            _ => random_string(ITEM_ID_LEN),
        };
        if checked.iter().any(|other| other.id == id) {
            return Err(FieldError::new(
                &format!("{at}.id"),
                "an item id appears twice",
            ));
        }
        checked.push(Item {
            id,
            kind,
            visible_from: item.visible_from,
            visible_until: item.visible_until,
        });
    }
    Ok(checked)
}

fn check_card(card: &PageCard) -> Result<PageCard, FieldError> {
    let text = |field: &str, value: &Option<String>, max: usize| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| content::check_text(field, t, max, true).map(|()| t.to_owned()))
            .transpose()
    };
    Ok(PageCard {
        title: text("card.title", &card.title, MAX_TITLE_CHARS)?,
        description: text("card.description", &card.description, MAX_DESCRIPTION_CHARS)?,
        image: card
            .image
            .as_deref()
            .map(|url| content::check_image_url("card.image", url))
            .transpose()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ContentInput {
        ContentInput {
            title: " Ada ".into(),
            bio: Some("Engineer".into()),
            items: vec![
                ItemInput {
                    id: None,
                    kind: ItemKind::Header {
                        text: "Work".into(),
                    },
                    visible_from: None,
                    visible_until: None,
                },
                ItemInput {
                    id: None,
                    kind: ItemKind::Link {
                        link_id: 7,
                        label: Some("  ".into()),
                    },
                    visible_from: Some(1),
                    visible_until: Some(2),
                },
            ],
            socials: vec![SocialInput {
                network: "email".into(),
                url: "ada@example.org".into(),
            }],
            ..ContentInput::default()
        }
    }

    #[test]
    fn content_is_trimmed_normalized_and_given_item_ids() {
        let content = input().check(&[]).unwrap();
        assert_eq!(content.title, "Ada");
        assert_eq!(content.items.len(), 2);
        assert_ne!(content.items[0].id, content.items[1].id);
        assert_eq!(content.items[0].id.len(), ITEM_ID_LEN);
        // A blank label falls back to the link's title when rendered.
        assert_eq!(
            content.items[1].kind,
            ItemKind::Link {
                link_id: 7,
                label: None
            }
        );
        assert_eq!(content.socials[0].url, "mailto:ada@example.org");
        assert_eq!(content.theme, Theme::default());
    }

    #[test]
    fn stored_content_gives_itself_back() {
        let content = input().check(&[]).unwrap();
        let known: Vec<String> = content.items.iter().map(|i| i.id.clone()).collect();
        assert_eq!(ContentInput::from(&content).check(&known).unwrap(), content);
    }

    #[test]
    fn known_ids_are_kept_and_unknown_ones_refused() {
        let mut again = input();
        again.items[0].id = Some("keepme".into());
        let content = again.check(&["keepme".to_owned()]).unwrap();
        assert_eq!(content.items[0].id, "keepme");
        let error = again.check(&[]).unwrap_err();
        assert_eq!(error.field, "items[0].id");
        again.items[1].id = Some("keepme".into());
        let error = again.check(&["keepme".to_owned()]).unwrap_err();
        assert_eq!(error.field, "items[1].id");
    }

    #[test]
    fn every_error_names_its_field() {
        type Change = Box<dyn Fn(&mut ContentInput)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|i| i.title = "".into()), "title"),
            (Box::new(|i| i.bio = Some("x".repeat(301))), "bio"),
            (
                Box::new(|i| i.avatar_url = Some("javascript:alert(1)".into())),
                "avatar_url",
            ),
            (
                Box::new(|i| i.theme.preset = Some("neon".into())),
                "theme.preset",
            ),
            (
                Box::new(|i| i.theme.appearance = Some("dim".into())),
                "theme.appearance",
            ),
            (
                Box::new(|i| {
                    i.theme.colors = Some(ColorsInput {
                        background: "#fff".into(),
                        text: "black".into(),
                        button: "#000".into(),
                        button_text: "#fff".into(),
                    })
                }),
                "theme.colors.text",
            ),
            (
                Box::new(|i| i.socials[0].network = "myspace".into()),
                "socials[0].network",
            ),
            (
                Box::new(|i| {
                    i.socials.push(SocialInput {
                        network: "email".into(),
                        url: "b@example.org".into(),
                    })
                }),
                "socials[1].network",
            ),
            (Box::new(|i| i.items[1].visible_until = Some(0)), "items[1]"),
            (
                Box::new(|i| {
                    i.items[0].kind = ItemKind::Header {
                        text: "h".repeat(101),
                    }
                }),
                "items[0].text",
            ),
            (
                Box::new(|i| {
                    i.items = (0..=MAX_ITEMS)
                        .map(|_| ItemInput {
                            id: None,
                            kind: ItemKind::Header { text: "h".into() },
                            visible_from: None,
                            visible_until: None,
                        })
                        .collect()
                }),
                "items",
            ),
            (
                Box::new(|i| i.card.image = Some("ftp://x.example/a.png".into())),
                "card.image",
            ),
        ];
        for (change, field) in cases {
            let mut input = input();
            change(&mut input);
            assert_eq!(input.check(&[]).unwrap_err().field, field);
        }
    }
}
