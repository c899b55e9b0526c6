//! What a link-in-bio page holds, as stored and as the API takes it: the
//! display name, bio, avatar, theme, social icons and ordered items, each
//! value checked here (lengths, http(s) URLs, colours, item windows) so a
//! stored page always renders.

use ricochet_model::UnixMillis;
use ricochet_model::behaviour::check::FieldError;
use ricochet_model::validate;
use serde::{Deserialize, Serialize};

/// Most items a page holds.
pub const MAX_ITEMS: usize = 100;
/// Most social icons a page shows.
pub const MAX_SOCIALS: usize = 12;
/// Longest display name, in characters.
pub const MAX_TITLE_CHARS: usize = 80;
/// Longest bio, in characters.
pub const MAX_BIO_CHARS: usize = 300;
/// Longest item label or header text, in characters.
pub const MAX_LABEL_CHARS: usize = 100;
/// Longest card description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 300;
/// Longest image or social URL, in bytes.
pub const MAX_URL_BYTES: usize = 2048;

/// One stored page. Its id is the id of the link record engines serve it
/// from, so page views are that id's clicks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRecord {
    pub id: u64,
    pub workspace: String,
    pub domain: String,
    pub handle: String,
    /// Also served at the root of `domain` (a domain dedicated to it).
    #[serde(default)]
    pub at_root: bool,
    pub content: PageContent,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// What a page shows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageContent {
    /// The display name: the page's heading and title.
    pub title: String,
    pub bio: Option<String>,
    /// An absolute http(s) URL of the avatar image.
    pub avatar_url: Option<String>,
    pub theme: Theme,
    pub socials: Vec<Social>,
    pub items: Vec<Item>,
    /// What link previews show; each field falls back to the title, bio
    /// and avatar.
    pub card: PageCard,
}

/// Open Graph and Twitter Card overrides.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PageCard {
    pub title: Option<String>,
    pub description: Option<String>,
    /// An absolute http(s) image URL.
    pub image: Option<String>,
}

/// The look of a page: a built-in theme in light, dark or the visitor's
/// preference, with colours of one's own on top.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Theme {
    pub preset: ThemePreset,
    pub appearance: Appearance,
    /// Replace the preset's colours (each `#rrggbb`).
    pub colors: Option<Colors>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThemePreset {
    #[default]
    Classic,
    Sunset,
    Forest,
    Ocean,
    Mono,
}

impl ThemePreset {
    pub const ALL: [ThemePreset; 5] = [
        Self::Classic,
        Self::Sunset,
        Self::Forest,
        Self::Ocean,
        Self::Mono,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::Sunset => "sunset",
            Self::Forest => "forest",
            Self::Ocean => "ocean",
            Self::Mono => "mono",
        }
    }
}

/// Light, dark, or whichever the visitor's device prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Appearance {
    #[default]
    Auto,
    Light,
    Dark,
}

impl Appearance {
    pub const ALL: [Appearance; 3] = [Self::Auto, Self::Light, Self::Dark];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }
}

/// Custom colours, each `#rrggbb` (lowercased when stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Colors {
    pub background: String,
    pub text: String,
    pub button: String,
    pub button_text: String,
}

/// The networks a page has icons for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    Instagram,
    X,
    Tiktok,
    Youtube,
    Github,
    Linkedin,
    Mastodon,
    Facebook,
    Twitch,
    Bluesky,
    Website,
    Email,
}

impl Network {
    pub const ALL: [Network; 12] = [
        Self::Instagram,
        Self::X,
        Self::Tiktok,
        Self::Youtube,
        Self::Github,
        Self::Linkedin,
        Self::Mastodon,
        Self::Facebook,
        Self::Twitch,
        Self::Bluesky,
        Self::Website,
        Self::Email,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instagram => "instagram",
            Self::X => "x",
            Self::Tiktok => "tiktok",
            Self::Youtube => "youtube",
            Self::Github => "github",
            Self::Linkedin => "linkedin",
            Self::Mastodon => "mastodon",
            Self::Facebook => "facebook",
            Self::Twitch => "twitch",
            Self::Bluesky => "bluesky",
            Self::Website => "website",
            Self::Email => "email",
        }
    }

    /// The name people read (the icon's accessible label).
    pub fn label(self) -> &'static str {
        match self {
            Self::Instagram => "Instagram",
            Self::X => "X",
            Self::Tiktok => "TikTok",
            Self::Youtube => "YouTube",
            Self::Github => "GitHub",
            Self::Linkedin => "LinkedIn",
            Self::Mastodon => "Mastodon",
            Self::Facebook => "Facebook",
            Self::Twitch => "Twitch",
            Self::Bluesky => "Bluesky",
            Self::Website => "Website",
            Self::Email => "Email",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|n| n.as_str() == text)
    }
}

/// A social icon: the network and where it leads (`mailto:` for email,
/// an absolute http(s) URL otherwise).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Social {
    pub network: Network,
    pub url: String,
}

/// One entry of a page's list. `id` is stable across edits and reorders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub kind: ItemKind,
    /// Shown from this instant on.
    pub visible_from: Option<UnixMillis>,
    /// Shown before this instant.
    pub visible_until: Option<UnixMillis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemKind {
    /// A button leading to one of the workspace's short links; the label
    /// falls back to the link's title, then its short URL.
    Link { link_id: u64, label: Option<String> },
    /// A heading between buttons.
    Header { text: String },
}

impl ItemKind {
    pub fn link_id(&self) -> Option<u64> {
        match self {
            Self::Link { link_id, .. } => Some(*link_id),
            Self::Header { .. } => None,
        }
    }
}

/// Checks `text` (at `field`) is at most `max` characters without control
/// characters; with `required`, not blank either.
pub fn check_text(field: &str, text: &str, max: usize, required: bool) -> Result<(), FieldError> {
    if required && text.trim().is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if text.chars().count() > max {
        return Err(FieldError::new(field, format!("at most {max} characters")));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Checks and normalizes an image URL: absolute http(s), at most
/// [`MAX_URL_BYTES`].
pub fn check_image_url(field: &str, url: &str) -> Result<String, FieldError> {
    check_http_url(field, url)
}

fn check_http_url(field: &str, url: &str) -> Result<String, FieldError> {
    if url.len() > MAX_URL_BYTES {
        return Err(FieldError::new(
            field,
            format!("at most {MAX_URL_BYTES} bytes"),
        ));
    }
    validate::validate_destination(url)
        .map_err(|error| FieldError::new(field, format!("must be an http(s) URL: {error}")))
}

/// Checks and normalizes a social icon's URL: `mailto:` with one address
/// for email, an absolute http(s) URL for the others.
pub fn check_social_url(field: &str, network: Network, url: &str) -> Result<String, FieldError> {
    if network != Network::Email {
        return check_http_url(field, url);
    }
    let address = url.strip_prefix("mailto:").unwrap_or(url);
    let forbidden = |b: u8| {
        !b.is_ascii_graphic()
            || matches!(
                b,
                b'<' | b'>' | b'"' | b'\'' | b'\\' | b'?' | b'&' | b'#' | b'%'
            )
    };
    let valid = address.len() <= 254
        && !address.bytes().any(forbidden)
        && address.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.contains('@')
        });
    if !valid {
        return Err(FieldError::new(
            field,
            "must be an email address (name@host.example) or a mailto: URL",
        ));
    }
    Ok(format!("mailto:{address}"))
}

/// Checks and normalizes a `#rrggbb` colour (`#RGB` is widened).
pub fn check_color(field: &str, color: &str) -> Result<String, FieldError> {
    let hex = color.strip_prefix('#').unwrap_or("");
    let widened = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_owned(),
        _ => String::new(),
    };
    if widened.len() != 6 || !widened.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FieldError::new(field, "must be a colour like #1d4ed8"));
    }
    Ok(format!("#{}", widened.to_ascii_lowercase()))
}

/// Checks an item's window: its start before its end.
pub fn check_window(
    field: &str,
    from: Option<UnixMillis>,
    until: Option<UnixMillis>,
) -> Result<(), FieldError> {
    if let (Some(from), Some(until)) = (from, until)
        && from >= until
    {
        return Err(FieldError::new(
            field,
            "visible_from must be before visible_until",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_limits_and_control_characters() {
        assert!(check_text("title", "Ada", MAX_TITLE_CHARS, true).is_ok());
        assert!(check_text("title", "  ", MAX_TITLE_CHARS, true).is_err());
        assert!(check_text("bio", "", MAX_BIO_CHARS, false).is_ok());
        assert!(check_text("bio", "two\nlines", MAX_BIO_CHARS, false).is_ok());
        assert!(check_text("bio", "bell\u{7}", MAX_BIO_CHARS, false).is_err());
        let long = "é".repeat(MAX_TITLE_CHARS + 1);
        assert_eq!(
            check_text("title", &long, MAX_TITLE_CHARS, true)
                .unwrap_err()
                .field,
            "title"
        );
        assert!(check_text("title", &"é".repeat(MAX_TITLE_CHARS), MAX_TITLE_CHARS, true).is_ok());
    }

    #[test]
    fn images_and_socials_are_http_or_mailto() {
        assert!(check_image_url("avatar_url", "javascript:alert(1)").is_err());
        assert!(check_image_url("avatar_url", "data:image/png;base64,AA").is_err());
        assert_eq!(
            check_image_url("avatar_url", "https://img.example/a.png").unwrap(),
            "https://img.example/a.png"
        );
        assert!(check_social_url("s", Network::Github, "https://github.com/ada").is_ok());
        assert!(check_social_url("s", Network::Github, "ftp://github.com/ada").is_err());
        assert_eq!(
            check_social_url("s", Network::Email, "ada@example.org").unwrap(),
            "mailto:ada@example.org"
        );
        assert_eq!(
            check_social_url("s", Network::Email, "mailto:ada@example.org").unwrap(),
            "mailto:ada@example.org"
        );
        for bad in [
            "ada",
            "ada@",
            "@example.org",
            "a@b@example.org",
            "ada@example.org?subject=x",
            "ada@exa\"mple.org",
            "https://example.org",
        ] {
            assert!(check_social_url("s", Network::Email, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn colours_are_normalized() {
        assert_eq!(check_color("c", "#1D4ED8").unwrap(), "#1d4ed8");
        assert_eq!(check_color("c", "#fA0").unwrap(), "#ffaa00");
        for bad in ["1d4ed8", "#12345", "#ggg", "red", "#1d4ed8;x"] {
            assert!(check_color("c", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn windows_start_before_they_end() {
        assert!(check_window("items[0]", Some(1), Some(2)).is_ok());
        assert!(check_window("items[0]", Some(2), Some(2)).is_err());
        assert!(check_window("items[0]", None, Some(2)).is_ok());
    }

    #[test]
    fn names_round_trip() {
        for network in Network::ALL {
            assert_eq!(Network::parse(network.as_str()), Some(network));
        }
    }
}
