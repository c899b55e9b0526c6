//! The page editor's form: a page's content as the text its fields show
//! ([`EditorForm`], one row per item), read from a page or a submitted
//! form, turned into the service's input (items in the order of their
//! positions), and the service's errors (`items[2].label`) put back next to
//! the form fields they came from ([`Origins`]).

use super::form::{FieldErrors, FormData};
use crate::api::error::ApiError;
use crate::api::types::{to_datetime, to_millis};
use crate::pages::PageChanges;
use crate::pages::content::{ItemKind, MAX_ITEMS, Network, PageCard, PageRecord};
use crate::pages::input::{ColorsInput, ContentInput, ItemInput, SocialInput, ThemeInput};

/// Empty item rows the editor offers below a page's items.
const NEW_ROWS: usize = 3;
/// Most item rows a submitted editor is read for (what it ever shows).
const MAX_ROWS: usize = MAX_ITEMS + NEW_ROWS;

/// Custom colours: (name in the form and the API, label, value when unset).
pub const COLORS: [(&str, &str, &str); 4] = [
    ("background", "Background", "#ffffff"),
    ("text", "Text", "#111827"),
    ("button", "Buttons", "#1d4ed8"),
    ("button_text", "Button text", "#ffffff"),
];

/// An item row of the editor, as text.
#[derive(Debug, Clone, Default)]
pub struct ItemRow {
    /// The item's id; empty on a new row.
    pub id: String,
    /// `link` or `header`.
    pub kind: String,
    /// The chosen link's id.
    pub link: String,
    /// A link's button text, or a header's text.
    pub label: String,
    /// `YYYY-MM-DDTHH:MM`, UTC (a `datetime-local` input).
    pub from: String,
    pub until: String,
    /// Where the row goes: rows are saved in the order of their positions.
    pub position: String,
    pub remove: bool,
}

impl ItemRow {
    fn new_at(position: usize) -> Self {
        Self {
            kind: "link".into(),
            position: position.to_string(),
            ..Self::default()
        }
    }

    /// A new row nothing was typed in: left out.
    fn is_blank(&self) -> bool {
        self.id.is_empty()
            && self.link.is_empty()
            && self.label.is_empty()
            && self.from.is_empty()
            && self.until.is_empty()
    }

    /// The item row `row` asks for; its id kept with `keep_id`.
    fn input(&self, row: usize, keep_id: bool) -> Result<ItemInput, FormError> {
        let kind = match self.kind.as_str() {
            "header" => ItemKind::Header {
                text: self.label.clone(),
            },
            "link" => ItemKind::Link {
                link_id: self
                    .link
                    .parse()
                    .map_err(|_| FormError::on(row_field(row, "link"), "Choose a link."))?,
                label: optional(&self.label),
            },
            _ => {
                return Err(FormError::on(
                    row_field(row, "type"),
                    "Choose link or header.",
                ));
            }
        };
        Ok(ItemInput {
            id: Some(self.id.clone()).filter(|id| keep_id && !id.is_empty()),
            kind,
            visible_from: instant(&self.from)
                .map_err(|m| FormError::on(row_field(row, "from"), m))?,
            visible_until: instant(&self.until)
                .map_err(|m| FormError::on(row_field(row, "until"), m))?,
        })
    }
}

/// The form field of row `row`'s `part` (`item_3_label`).
pub fn row_field(row: usize, part: &str) -> String {
    format!("item_{row}_{part}")
}

/// The editor's values as text.
#[derive(Debug, Clone, Default)]
pub struct EditorForm {
    /// Also served at the root of its domain.
    pub at_root: bool,
    pub title: String,
    pub bio: String,
    pub avatar_url: String,
    pub preset: String,
    pub appearance: String,
    pub custom_colors: bool,
    /// Values of [`COLORS`], in order.
    pub colors: [String; 4],
    /// A URL per network of [`Network::ALL`], in order; empty for none.
    pub socials: Vec<String>,
    pub card_title: String,
    pub card_description: String,
    pub card_image: String,
    pub items: Vec<ItemRow>,
}

impl EditorForm {
    /// The form of a stored page, with empty rows for new items.
    pub fn of(page: &PageRecord) -> Self {
        let content = &page.content;
        let mut items: Vec<ItemRow> = content
            .items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                let (kind, link, label) = match &item.kind {
                    ItemKind::Link { link_id, label } => (
                        "link",
                        link_id.to_string(),
                        label.clone().unwrap_or_default(),
                    ),
                    ItemKind::Header { text } => ("header", String::new(), text.clone()),
                };
                ItemRow {
                    id: item.id.clone(),
                    kind: kind.into(),
                    link,
                    label,
                    from: item.visible_from.map(local_time).unwrap_or_default(),
                    until: item.visible_until.map(local_time).unwrap_or_default(),
                    position: (index + 1).to_string(),
                    remove: false,
                }
            })
            .collect();
        let filled = items.len();
        items.extend((filled + 1..=filled + NEW_ROWS).map(ItemRow::new_at));
        let theme = &content.theme;
        Self {
            at_root: page.at_root,
            title: content.title.clone(),
            bio: content.bio.clone().unwrap_or_default(),
            avatar_url: content.avatar_url.clone().unwrap_or_default(),
            preset: theme.preset.as_str().to_owned(),
            appearance: theme.appearance.as_str().to_owned(),
            custom_colors: theme.colors.is_some(),
            colors: match &theme.colors {
                Some(c) => [
                    c.background.clone(),
                    c.text.clone(),
                    c.button.clone(),
                    c.button_text.clone(),
                ],
                None => COLORS.map(|(_, _, unset)| unset.to_owned()),
            },
            socials: Network::ALL
                .iter()
                .map(|network| {
                    content
                        .socials
                        .iter()
                        .find(|s| s.network == *network)
                        .map(|s| s.url.clone())
                        .unwrap_or_default()
                })
                .collect(),
            card_title: content.card.title.clone().unwrap_or_default(),
            card_description: content.card.description.clone().unwrap_or_default(),
            card_image: content.card.image.clone().unwrap_or_default(),
            items,
        }
    }

    /// The values a user submitted.
    pub fn read(form: &FormData) -> Self {
        let items = (0..MAX_ROWS)
            .take_while(|row| !form.all(&row_field(*row, "type")).is_empty())
            .map(|row| {
                let field = |part: &str| form.get(&row_field(row, part)).to_owned();
                ItemRow {
                    id: field("id"),
                    kind: field("type"),
                    link: field("link"),
                    label: field("label"),
                    from: field("from"),
                    until: field("until"),
                    position: field("position"),
                    remove: form.checked(&row_field(row, "remove")),
                }
            })
            .collect();
        Self {
            at_root: form.checked("at_root"),
            title: form.get("title").to_owned(),
            bio: form.get("bio").to_owned(),
            avatar_url: form.get("avatar_url").to_owned(),
            preset: form.get("theme_preset").to_owned(),
            appearance: form.get("theme_appearance").to_owned(),
            custom_colors: form.checked("custom_colors"),
            colors: COLORS.map(|(name, _, _)| form.get(&format!("color_{name}")).to_owned()),
            socials: Network::ALL
                .iter()
                .map(|network| form.get(&format!("social_{}", network.as_str())).to_owned())
                .collect(),
            card_title: form.get("card_title").to_owned(),
            card_description: form.get("card_description").to_owned(),
            card_image: form.get("card_image").to_owned(),
            items,
        }
    }

    /// The content these values give, items in the order of their positions
    /// (removed and blank rows left out), with where each item and icon came
    /// from. With `keep_ids` items keep their ids (an edit); a preview knows
    /// none.
    pub fn content(&self, keep_ids: bool) -> Result<(ContentInput, Origins), FormError> {
        let mut origins = Origins::default();
        let mut socials = Vec::new();
        for (network, url) in Network::ALL.iter().zip(&self.socials) {
            if !url.is_empty() {
                socials.push(SocialInput {
                    network: network.as_str().to_owned(),
                    url: url.clone(),
                });
                origins.networks.push(*network);
            }
        }
        let mut order = Vec::with_capacity(self.items.len());
        for (row, item) in self.items.iter().enumerate() {
            if item.remove || item.is_blank() {
                continue;
            }
            let position = match item.position.as_str() {
                "" => i64::MAX,
                text => text.parse::<i64>().map_err(|_| {
                    FormError::on(row_field(row, "position"), "Enter a whole number.")
                })?,
            };
            order.push((position, row));
        }
        order.sort_unstable();
        let mut items = Vec::with_capacity(order.len());
        for (_, row) in order {
            items.push(self.items[row].input(row, keep_ids)?);
            origins.rows.push(row);
        }
        let [background, text, button, button_text] = self.colors.clone();
        let input = ContentInput {
            title: self.title.clone(),
            bio: optional(&self.bio),
            avatar_url: optional(&self.avatar_url),
            theme: ThemeInput {
                preset: optional(&self.preset),
                appearance: optional(&self.appearance),
                colors: self.custom_colors.then_some(ColorsInput {
                    background,
                    text,
                    button,
                    button_text,
                }),
            },
            socials,
            items,
            card: PageCard {
                title: optional(&self.card_title),
                description: optional(&self.card_description),
                image: optional(&self.card_image),
            },
        };
        Ok((input, origins))
    }

    /// The edit: every field given, so emptied ones are cleared.
    pub fn changes(&self) -> Result<(PageChanges, Origins), FormError> {
        let (content, origins) = self.content(true)?;
        let changes = PageChanges {
            at_root: Some(self.at_root),
            title: Some(content.title),
            bio: Some(content.bio),
            avatar_url: Some(content.avatar_url),
            theme: Some(content.theme),
            socials: Some(content.socials),
            items: Some(content.items),
            card: Some(content.card),
        };
        Ok((changes, origins))
    }

    /// Ids of the links the rows name.
    pub fn link_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.items.iter().filter_map(|row| row.link.parse().ok())
    }
}

/// An editor error: the form field it goes next to (none: above the
/// form), and what is wrong.
#[derive(Debug, Clone)]
pub struct FormError {
    field: Option<String>,
    message: String,
}

impl FormError {
    fn on(field: String, message: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn errors(&self) -> FieldErrors {
        match &self.field {
            Some(field) => FieldErrors::on(field, self.message.clone()),
            None => {
                let mut errors = FieldErrors::none();
                errors.general.push(self.message.clone());
                errors
            }
        }
    }

    /// The error with the name of its field, for the preview frame.
    pub fn describe(&self) -> String {
        match &self.field {
            Some(field) => format!("{}: {}", field_label(field), self.message),
            None => self.message.clone(),
        }
    }
}

/// What people call the form field `field`.
fn field_label(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("item_") {
        let (row, part) = rest.split_once('_').unwrap_or((rest, ""));
        let number = row.parse::<usize>().map_or(0, |row| row + 1);
        return match part {
            "link" => format!("Item {number}, link"),
            "label" => format!("Item {number}, label or text"),
            "from" => format!("Item {number}, visible from"),
            "until" => format!("Item {number}, visible until"),
            "position" => format!("Item {number}, position"),
            "type" => format!("Item {number}, type"),
            _ => format!("Item {number}"),
        };
    }
    if let Some(network) = field.strip_prefix("social_").and_then(Network::parse) {
        return format!("{} icon", network.label());
    }
    if let Some((_, label, _)) = COLORS
        .iter()
        .find(|(name, _, _)| field.strip_prefix("color_") == Some(*name))
    {
        return format!("{label} colour");
    }
    match field {
        "at_root" => "Root of the domain",
        "title" => "Display name",
        "bio" => "Bio",
        "avatar_url" => "Avatar image URL",
        "theme_preset" => "Theme",
        "theme_appearance" => "Appearance",
        "socials" => "Social icons",
        "items" => "Items",
        "card_title" => "Card title",
        "card_description" => "Card description",
        "card_image" => "Card image URL",
        other => other,
    }
    .to_owned()
}

/// Where the values of a built input came from, to put the service's
/// errors (`items[2].label`, `socials[0].url`) next to their form fields.
#[derive(Debug, Default)]
pub struct Origins {
    /// The form row of each item, in the order sent.
    rows: Vec<usize>,
    /// The network of each social icon, in the order sent.
    networks: Vec<Network>,
}

impl Origins {
    /// `error` next to the form field it names, or above the form.
    pub fn place(&self, error: &ApiError) -> FormError {
        FormError {
            field: error.field.as_deref().and_then(|field| self.field(field)),
            message: error.message.clone(),
        }
    }

    /// The form field of the service's `field`.
    fn field(&self, field: &str) -> Option<String> {
        if let Some(color) = field.strip_prefix("theme.colors.") {
            return Some(format!("color_{color}"));
        }
        if let Some(part) = field.strip_prefix("card.") {
            return Some(format!("card_{part}"));
        }
        if let Some((index, _)) = indexed(field, "socials") {
            let network = self.networks.get(index)?;
            return Some(format!("social_{}", network.as_str()));
        }
        if let Some((index, part)) = indexed(field, "items") {
            let row = *self.rows.get(index)?;
            let part = match part {
                ".link_id" => "link",
                ".label" | ".text" => "label",
                // The window: its start is not before its end.
                "" => "until",
                _ => "row",
            };
            return Some(row_field(row, part));
        }
        let field = match field {
            "theme.preset" => "theme_preset",
            "theme.appearance" => "theme_appearance",
            "theme.colors" => "custom_colors",
            "at_root" | "title" | "bio" | "avatar_url" | "socials" | "items" => field,
            _ => return None,
        };
        Some(field.to_owned())
    }
}

/// `items[3].label` as (3, `.label`) for `name` `items`.
fn indexed<'a>(field: &'a str, name: &str) -> Option<(usize, &'a str)> {
    let (index, rest) = field
        .strip_prefix(name)?
        .strip_prefix('[')?
        .split_once(']')?;
    Some((index.parse().ok()?, rest))
}

/// `None` for an empty value.
pub fn optional(value: &str) -> Option<String> {
    Some(value.to_owned()).filter(|v| !v.is_empty())
}

/// An instant as a `datetime-local` value, in UTC.
fn local_time(millis: i64) -> String {
    let at = to_datetime(millis);
    let mut text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    );
    if at.second() != 0 {
        text.push_str(&format!(":{:02}", at.second()));
    }
    text
}

/// A `datetime-local` value, read as UTC; `None` when empty.
fn instant(value: &str) -> Result<Option<i64>, &'static str> {
    if value.is_empty() {
        return Ok(None);
    }
    let minutes = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(value, &minutes)
        .or_else(|_| time::PrimitiveDateTime::parse(value, &seconds))
        .map(|at| Some(to_millis(at.assume_utc())))
        .map_err(|_| "Enter a date and time such as 2027-01-31T18:00 (UTC).")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, link: &str, label: &str, position: &str) -> ItemRow {
        ItemRow {
            kind: kind.into(),
            link: link.into(),
            label: label.into(),
            position: position.into(),
            ..ItemRow::default()
        }
    }

    #[test]
    fn items_follow_their_positions_and_blank_or_removed_rows_are_left_out() {
        let form = EditorForm {
            title: "Ada".into(),
            socials: vec![String::new(); Network::ALL.len()],
            items: vec![
                row("link", "7", "Docs", "3"),
                row("header", "", "Elsewhere", "1"),
                ItemRow {
                    remove: true,
                    ..row("link", "8", "", "2")
                },
                row("link", "9", "", "2"),
                ItemRow::new_at(5),
            ],
            ..EditorForm::default()
        };
        let (input, origins) = form.content(true).unwrap();
        let kinds: Vec<_> = input.items.iter().map(|i| i.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                ItemKind::Header {
                    text: "Elsewhere".into()
                },
                ItemKind::Link {
                    link_id: 9,
                    label: None
                },
                ItemKind::Link {
                    link_id: 7,
                    label: Some("Docs".into())
                },
            ]
        );
        assert_eq!(origins.rows, [1, 3, 0]);
        assert!(input.theme.colors.is_none());
    }

    #[test]
    fn service_errors_land_on_the_row_or_icon_they_came_from() {
        let origins = Origins {
            rows: vec![4, 0],
            networks: vec![Network::Github, Network::Email],
        };
        let on = |field: &str| {
            origins
                .place(&ApiError::bad_request("invalid_page", "bad").with_field(field))
                .field
        };
        assert_eq!(on("items[0].label").as_deref(), Some("item_4_label"));
        assert_eq!(on("items[1].link_id").as_deref(), Some("item_0_link"));
        assert_eq!(on("items[1]").as_deref(), Some("item_0_until"));
        assert_eq!(on("socials[1].url").as_deref(), Some("social_email"));
        assert_eq!(on("theme.colors.text").as_deref(), Some("color_text"));
        assert_eq!(on("card.image").as_deref(), Some("card_image"));
        assert_eq!(on("avatar_url").as_deref(), Some("avatar_url"));
        assert_eq!(on("items[9].label"), None);
        assert_eq!(
            FormError::on("item_4_label".into(), "must not be empty").describe(),
            "Item 5, label or text: must not be empty"
        );
    }

    #[test]
    fn bad_rows_are_named_before_the_service_is_asked() {
        let mut form = EditorForm {
            items: vec![row("link", "", "No link", "1")],
            ..EditorForm::default()
        };
        let error = form.content(true).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("item_0_link"));
        form.items = vec![row("header", "", "Hi", "first")];
        let error = form.content(true).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("item_0_position"));
        form.items = vec![ItemRow {
            from: "tomorrow".into(),
            ..row("header", "", "Hi", "1")
        }];
        let error = form.content(true).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("item_0_from"));
    }

    #[test]
    fn times_are_utc_both_ways() {
        let at = instant("2027-01-31T18:00").unwrap().unwrap();
        assert_eq!(local_time(at), "2027-01-31T18:00");
        let at = instant("2027-01-31T18:00:30").unwrap().unwrap();
        assert_eq!(local_time(at), "2027-01-31T18:00:30");
        assert_eq!(instant(""), Ok(None));
        assert!(instant("31/01/2027").is_err());
    }
}
