//! Renders a link-in-bio page into the [`PageBody`] engines serve, once when
//! the page or one of its links changes: every user value escaped, the theme
//! compiled into one small inline stylesheet, no script.

use std::fmt::{self, Write as _};

use html_escape::{encode_double_quoted_attribute_to_string, encode_text_to_string};
use ricochet_model::UnixMillis;
use ricochet_model::page::{PageBody, PagePart};

use super::content::{Appearance, Colors, Network, PageContent, PageRecord, Theme, ThemePreset};

use super::icons;

/// An item ready to render: links resolved by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedItem {
    pub kind: ResolvedKind,
    /// Shown from this instant on (`None`: always was).
    pub from: Option<UnixMillis>,
    /// Shown before this instant (`None`: never ends).
    pub until: Option<UnixMillis>,
}

/// What an item shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedKind {
    /// `href` is the short link's URL (absolute, or root-relative like `/abc`), `label` the text.
    Link { href: String, label: String },
    /// A heading between buttons.
    Header { text: String },
}

/// Renders the page: `page_url` is its absolute public URL (og:url, canonical).
///
/// The body's first part holds the document up to the opening of the item
/// list and its last part closes it, both always shown; between them is one
/// part per item, in order, shown in that item's window. So the HTML at any
/// instant is a whole document, and the same input gives the same bytes.
pub fn render(page: &PageRecord, page_url: &str, items: &[ResolvedItem]) -> PageBody {
    let mut parts = Vec::with_capacity(items.len() + 2);
    parts.push(PagePart::always(render_opening(&page.content, page_url)));
    parts.extend(items.iter().map(|item| PagePart {
        html: render_item(&item.kind),
        from: item.from,
        until: item.until,
    }));
    parts.push(PagePart::always(CLOSING));
    PageBody { parts }
}

/// What closes the document after the last item.
const CLOSING: &str = "</ul></main></body></html>";

/// The rules every page shares; the palette's custom properties come first.
const BASE_CSS: &str = concat!(
    "*{box-sizing:border-box}",
    "body{margin:0;background:var(--background);color:var(--text);",
    "font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}",
    "main{max-width:36rem;margin:0 auto;padding:3rem 1rem}",
    "header{text-align:center}",
    ".avatar{width:6rem;height:6rem;border-radius:50%;object-fit:cover}",
    "h1{margin:.75rem 0 .25rem;font-size:1.5rem;overflow-wrap:anywhere}",
    ".bio{margin:0;color:var(--muted);overflow-wrap:anywhere}",
    ".socials{display:flex;flex-wrap:wrap;justify-content:center;gap:.25rem;margin-top:1rem}",
    ".socials a{display:flex;padding:.5rem;border-radius:50%;color:var(--text)}",
    ".socials a:hover{color:var(--muted)}",
    ".socials svg{width:1.5rem;height:1.5rem}",
    ".items{margin:2rem 0 0;padding:0;list-style:none}",
    ".items li{margin-bottom:.75rem}",
    ".button{display:block;padding:.9rem 1rem;border:2px solid var(--hover);border-radius:.75rem;",
    "background:var(--button);color:var(--button-text);font-weight:600;text-align:center;",
    "text-decoration:none;overflow-wrap:anywhere}",
    ".button:hover{background:var(--hover)}",
    "a:focus-visible{outline:3px solid var(--text);outline-offset:3px}",
    "h2{margin:1.75rem 0 .25rem;font-size:1.1rem;text-align:center;overflow-wrap:anywhere}",
);

/// The document up to and including the opening of the item list.
fn render_opening(content: &PageContent, page_url: &str) -> String {
    let bio = non_blank(content.bio.as_deref());
    let avatar = non_blank(content.avatar_url.as_deref()).filter(|url| is_web_url(url));
    let card = &content.card;
    let card_title = non_blank(card.title.as_deref()).unwrap_or(&content.title);
    let card_description = non_blank(card.description.as_deref())
        .or(bio)
        .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "));
    let card_image = non_blank(card.image.as_deref())
        .filter(|url| is_web_url(url))
        .or(avatar);

    let mut html = String::with_capacity(4096);
    html.push_str(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>",
    ));
    push_text(&mut html, &content.title);
    html.push_str("</title>");
    if let Some(description) = &card_description {
        push_meta(&mut html, "name", "description", description);
    }
    html.push_str("<link rel=\"canonical\"");
    push_attribute(&mut html, "href", page_url);
    html.push('>');

    push_meta(&mut html, "property", "og:type", "profile");
    push_meta(&mut html, "property", "og:title", card_title);
    if let Some(description) = &card_description {
        push_meta(&mut html, "property", "og:description", description);
    }
    if let Some(image) = card_image {
        push_meta(&mut html, "property", "og:image", image);
    }
    push_meta(&mut html, "property", "og:url", page_url);
    push_meta(&mut html, "name", "twitter:card", "summary");
    push_meta(&mut html, "name", "twitter:title", card_title);
    if let Some(description) = &card_description {
        push_meta(&mut html, "name", "twitter:description", description);
    }
    if let Some(image) = card_image {
        push_meta(&mut html, "name", "twitter:image", image);
    }

    push_stylesheet(&mut html, &content.theme);
    html.push_str("</head><body><main><header>");
    if let Some(avatar) = avatar {
        html.push_str("<img class=\"avatar\"");
        push_attribute(&mut html, "src", avatar);
        push_attribute(&mut html, "alt", &content.title);
        html.push_str(" width=\"96\" height=\"96\">");
    }
    html.push_str("<h1>");
    push_text(&mut html, &content.title);
    html.push_str("</h1>");
    if let Some(bio) = bio {
        html.push_str("<p class=\"bio\">");
        for (index, line) in bio.lines().enumerate() {
            if index > 0 {
                html.push_str("<br>");
            }
            push_text(&mut html, line);
        }
        html.push_str("</p>");
    }
    push_socials(&mut html, content);
    html.push_str("</header><ul class=\"items\">");
    html
}

/// The social icons, or nothing when the page has none worth linking.
fn push_socials(html: &mut String, content: &PageContent) {
    let mut socials = content
        .socials
        .iter()
        .filter(|social| is_social_target(social.network, &social.url))
        .peekable();
    if socials.peek().is_none() {
        return;
    }
    html.push_str("<nav class=\"socials\" aria-label=\"Social links\">");
    for social in socials {
        html.push_str("<a");
        push_attribute(html, "href", &social.url);
        html.push_str(" rel=\"me noopener\"");
        push_attribute(html, "aria-label", social.network.label());
        html.push_str("><svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" fill=\"currentColor\">");
        html.push_str(icon(social.network));
        html.push_str("</svg></a>");
    }
    html.push_str("</nav>");
}

/// One item's HTML: a list entry, or nothing for an item that cannot show
/// (a blank header, or a link whose target is neither http(s) nor
/// root-relative).
fn render_item(kind: &ResolvedKind) -> String {
    let mut html = String::new();
    match kind {
        ResolvedKind::Link { href, label } => {
            if !is_link_target(href) {
                return html;
            }
            let label = non_blank(Some(label)).unwrap_or(href);
            html.push_str("<li><a class=\"button\"");
            push_attribute(&mut html, "href", href);
            html.push('>');
            push_text(&mut html, label);
            html.push_str("</a></li>");
        }
        ResolvedKind::Header { text } => {
            let Some(text) = non_blank(Some(text)) else {
                return html;
            };
            html.push_str("<li><h2>");
            push_text(&mut html, text);
            html.push_str("</h2></li>");
        }
    }
    html
}

/// The inside of a network's `<svg>`.
fn icon(network: Network) -> &'static str {
    match network {
        Network::Instagram => icons::INSTAGRAM,
        Network::X => icons::X,
        Network::Tiktok => icons::TIKTOK,
        Network::Youtube => icons::YOUTUBE,
        Network::Github => icons::GITHUB,
        Network::Linkedin => icons::LINKEDIN,
        Network::Mastodon => icons::MASTODON,
        Network::Facebook => icons::FACEBOOK,
        Network::Twitch => icons::TWITCH,
        Network::Bluesky => icons::BLUESKY,
        Network::Website => icons::WEBSITE,
        Network::Email => icons::EMAIL,
    }
}

/// Appends `text` escaped as an element's content.
fn push_text(html: &mut String, text: &str) {
    encode_text_to_string(text, html);
}

/// Appends ` name="value"`, the value escaped.
fn push_attribute(html: &mut String, name: &str, value: &str) {
    html.push(' ');
    html.push_str(name);
    html.push_str("=\"");
    encode_double_quoted_attribute_to_string(value, html);
    html.push('"');
}

/// Appends `<meta {key_attribute}="{key}" content="{content}">`.
fn push_meta(html: &mut String, key_attribute: &str, key: &str, content: &str) {
    html.push_str("<meta");
    push_attribute(html, key_attribute, key);
    push_attribute(html, "content", content);
    html.push('>');
}

/// `text` unless it is absent or only whitespace.
fn non_blank(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|text| !text.is_empty())
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.len() >= prefix.len()
        && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// An absolute http(s) URL. Checked upstream already; checked again so a
/// `javascript:` URL that slipped through is dropped, not linked.
fn is_web_url(url: &str) -> bool {
    starts_with_ignoring_case(url, "https://") || starts_with_ignoring_case(url, "http://")
}

/// Where an item's button may lead: http(s), or a path on the page's domain.
fn is_link_target(href: &str) -> bool {
    is_web_url(href) || href.starts_with('/')
}

/// Where a social icon may lead: `mailto:` for email, http(s) otherwise.
fn is_social_target(network: Network, url: &str) -> bool {
    match network {
        Network::Email => starts_with_ignoring_case(url, "mailto:"),
        _ => is_web_url(url),
    }
}

/// Appends the `<style>` element: the palette (both, for
/// [`Appearance::Auto`]) as custom properties, then the shared rules.
/// Only colours formatted from [`Rgb`] and constant text reach it.
fn push_stylesheet(html: &mut String, theme: &Theme) {
    let colors = theme.colors.as_ref();
    let light = Palette::preset(theme.preset, false).with_colors(colors);
    let dark = Palette::preset(theme.preset, true).with_colors(colors);
    html.push_str("<style>");
    match theme.appearance {
        Appearance::Light => light.push_css(html),
        Appearance::Dark => dark.push_css(html),
        Appearance::Auto => {
            light.push_css(html);
            if dark != light {
                html.push_str("@media(prefers-color-scheme:dark){");
                dark.push_css(html);
                html.push('}');
            }
        }
    }
    html.push_str(BASE_CSS);
    html.push_str("</style>");
}

/// A colour, written `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rgb([u8; 3]);

impl Rgb {
    const BLACK: Rgb = Rgb([0, 0, 0]);
    const WHITE: Rgb = Rgb([255, 255, 255]);

    /// The colour `0xrrggbb`.
    const fn from_hex(value: u32) -> Self {
        Self([(value >> 16) as u8, (value >> 8) as u8, value as u8])
    }

    /// Reads exactly `#` and six hex digits, refusing anything else, so no
    /// other text can reach the stylesheet.
    fn parse(text: &str) -> Option<Self> {
        let digits = text.strip_prefix('#')?;
        if digits.len() != 6 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok().map(Self::from_hex)
    }

    /// `self` and `other` blended, `self_percent` of it `self`.
    fn mix(self, other: Rgb, self_percent: u16) -> Rgb {
        let blend = |own: u8, theirs: u8| {
            let total = u16::from(own) * self_percent + u16::from(theirs) * (100 - self_percent);
            // At most 255 * 100 + 50, so the quotient fits a byte.
            ((total + 50) / 100) as u8
        };
        let [red, green, blue] = self.0;
        let [other_red, other_green, other_blue] = other.0;
        Rgb([
            blend(red, other_red),
            blend(green, other_green),
            blend(blue, other_blue),
        ])
    }

    /// Relative luminance as WCAG defines it: 0 for black, 1 for white.
    fn luminance(self) -> f64 {
        let linear = |channel: u8| {
            let value = f64::from(channel) / 255.0;
            if value <= 0.039_28 {
                value / 12.92
            } else {
                ((value + 0.055) / 1.055).powf(2.4)
            }
        };
        let [red, green, blue] = self.0;
        0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [red, green, blue] = self.0;
        write!(formatter, "#{red:02x}{green:02x}{blue:02x}")
    }
}

/// The colours of one appearance of a theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Palette {
    /// Tells browsers to draw their own parts (scrollbars) dark.
    is_dark: bool,
    background: Rgb,
    text: Rgb,
    /// The bio's colour.
    muted: Rgb,
    button: Rgb,
    button_text: Rgb,
    /// The buttons' border and their background under the pointer.
    hover: Rgb,
}

impl Palette {
    /// A built-in palette. Each keeps text, muted text and button text at a
    /// contrast of at least 4.5:1 (WCAG AA) against what they sit on.
    fn preset(preset: ThemePreset, is_dark: bool) -> Palette {
        let [background, text, muted, button, button_text, hover] = match (preset, is_dark) {
            (ThemePreset::Classic, false) => {
                [0xf8fafc, 0x0f172a, 0x475569, 0x1d4ed8, 0xffffff, 0x1e3a8a]
            }
            (ThemePreset::Classic, true) => {
                [0x0f172a, 0xf1f5f9, 0x94a3b8, 0x60a5fa, 0x0f172a, 0x93c5fd]
            }
            (ThemePreset::Sunset, false) => {
                [0xfff7ed, 0x431407, 0x9a3412, 0xc2410c, 0xffffff, 0x9a3412]
            }
            (ThemePreset::Sunset, true) => {
                [0x1c0f0a, 0xffedd5, 0xfdba74, 0xfb923c, 0x1c0f0a, 0xfdba74]
            }
            (ThemePreset::Forest, false) => {
                [0xf0fdf4, 0x052e16, 0x166534, 0x15803d, 0xffffff, 0x166534]
            }
            (ThemePreset::Forest, true) => {
                [0x0b1f14, 0xdcfce7, 0x86efac, 0x4ade80, 0x052e16, 0x86efac]
            }
            (ThemePreset::Ocean, false) => {
                [0xf0f9ff, 0x082f49, 0x075985, 0x0369a1, 0xffffff, 0x075985]
            }
            (ThemePreset::Ocean, true) => {
                [0x071a2b, 0xe0f2fe, 0x7dd3fc, 0x38bdf8, 0x082f49, 0x7dd3fc]
            }
            (ThemePreset::Mono, false) => {
                [0xffffff, 0x111111, 0x555555, 0x111111, 0xffffff, 0x404040]
            }
            (ThemePreset::Mono, true) => {
                [0x0a0a0a, 0xf5f5f5, 0xa3a3a3, 0xf5f5f5, 0x0a0a0a, 0xd4d4d4]
            }
        };
        Palette {
            is_dark,
            background: Rgb::from_hex(background),
            text: Rgb::from_hex(text),
            muted: Rgb::from_hex(muted),
            button: Rgb::from_hex(button),
            button_text: Rgb::from_hex(button_text),
            hover: Rgb::from_hex(hover),
        }
    }

    /// The palette with the page's own colours on top. A colour that is not
    /// exactly `#rrggbb` keeps the preset's; muted text and hover follow the
    /// colours they are derived from.
    fn with_colors(self, colors: Option<&Colors>) -> Palette {
        let Some(colors) = colors else {
            return self;
        };
        let pick = |custom: &str, preset: Rgb| Rgb::parse(custom).unwrap_or(preset);
        let background = pick(&colors.background, self.background);
        let text = pick(&colors.text, self.text);
        let button = pick(&colors.button, self.button);
        let button_text = pick(&colors.button_text, self.button_text);
        let mut palette = Palette {
            background,
            text,
            button,
            button_text,
            ..self
        };
        if background != self.background {
            palette.is_dark = background.luminance() < 0.18;
        }
        if background != self.background || text != self.text {
            palette.muted = text.mix(background, 72);
        }
        if button != self.button || button_text != self.button_text {
            // Away from the button text, so the contrast grows under the pointer.
            let away = if button_text.luminance() > button.luminance() {
                Rgb::BLACK
            } else {
                Rgb::WHITE
            };
            palette.hover = button.mix(away, 82);
        }
        palette
    }

    /// Appends `:root{…}` setting the custom properties [`BASE_CSS`] reads.
    fn push_css(&self, css: &mut String) {
        let scheme = if self.is_dark { "dark" } else { "light" };
        // Writing to a String cannot fail.
        let _ = write!(
            css,
            ":root{{color-scheme:{scheme};--background:{};--text:{};--muted:{};--button:{};--button-text:{};--hover:{}}}",
            self.background, self.text, self.muted, self.button, self.button_text, self.hover,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::content::{PageCard, Social};
    use super::*;

    const PAGE_URL: &str = "https://go.example/@ada";

    fn page(content: PageContent) -> PageRecord {
        PageRecord {
            id: 7,
            workspace: "main".into(),
            domain: "go.example".into(),
            handle: "@ada".into(),
            at_root: false,
            content,
            created_at: 1,
            updated_at: 2,
        }
    }

    fn content(title: &str) -> PageContent {
        PageContent {
            title: title.into(),
            ..PageContent::default()
        }
    }

    fn link(href: &str, label: &str) -> ResolvedItem {
        ResolvedItem {
            kind: ResolvedKind::Link {
                href: href.into(),
                label: label.into(),
            },
            from: None,
            until: None,
        }
    }

    fn header(text: &str) -> ResolvedItem {
        ResolvedItem {
            kind: ResolvedKind::Header { text: text.into() },
            from: None,
            until: None,
        }
    }

    fn social(network: Network) -> Social {
        let url = match network {
            Network::Email => "mailto:ada@example.org".to_owned(),
            _ => format!("https://{}.example/ada-lovelace", network.as_str()),
        };
        Social { network, url }
    }

    /// The page with every item shown.
    fn html_of(content: PageContent, items: &[ResolvedItem]) -> String {
        render(&page(content), PAGE_URL, items).render_at(0)
    }

    /// The `<style>` element's text.
    fn stylesheet(html: &str) -> &str {
        let start = html.find("<style>").expect("a stylesheet");
        let end = html.find("</style>").expect("a closed stylesheet");
        &html[start..end]
    }

    fn contrast(first: Rgb, second: Rgb) -> f64 {
        let (first, second) = (first.luminance(), second.luminance());
        (first.max(second) + 0.05) / (first.min(second) + 0.05)
    }

    #[test]
    fn hostile_values_render_only_escaped() {
        let hostile = "\"><script>alert(1)</script></style>";
        let escaped_text = "\"&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;/style&gt;";
        let escaped_attribute = "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;/style&gt;";
        let hostile_url = format!("https://evil.example/{hostile}");
        let content = PageContent {
            title: hostile.into(),
            bio: Some(format!("{hostile}\n{hostile}")),
            avatar_url: Some(hostile_url.clone()),
            socials: vec![
                Social {
                    network: Network::Github,
                    url: hostile_url.clone(),
                },
                Social {
                    network: Network::X,
                    url: "javascript:alert(1)".into(),
                },
                Social {
                    network: Network::Email,
                    url: "https://not-mail.example".into(),
                },
            ],
            card: PageCard {
                title: None,
                description: None,
                image: Some(format!("https://card.example/{hostile}")),
            },
            ..PageContent::default()
        };
        let items = [
            link(&hostile_url, hostile),
            header(hostile),
            link("javascript:alert(1)", "Run me"),
        ];
        let body = render(&page(content), &hostile_url, &items);
        let html = body.render_at(0);

        for raw in [hostile, "\"><script", "<script", "</script", "javascript:"] {
            assert!(!html.contains(raw), "{raw} unescaped in {html}");
        }
        assert_eq!(html.matches("</style>").count(), 1);
        assert_eq!(html.matches("<style>").count(), 1);
        assert!(html.contains(&format!("<title>{escaped_text}</title>")));
        assert!(html.contains(&format!("<h1>{escaped_text}</h1>")));
        assert!(html.contains(&format!(
            "<p class=\"bio\">{escaped_text}<br>{escaped_text}</p>"
        )));
        assert!(html.contains(&format!("<h2>{escaped_text}</h2>")));
        let escaped_url = format!("https://evil.example/{escaped_attribute}");
        assert!(html.contains(&format!(
            "<a class=\"button\" href=\"{escaped_url}\">{escaped_text}</a>"
        )));
        assert!(html.contains(&format!(
            "src=\"{escaped_url}\" alt=\"{escaped_attribute}\""
        )));
        assert!(html.contains(&format!("<link rel=\"canonical\" href=\"{escaped_url}\">")));
        assert!(html.contains(&format!(
            "<meta property=\"og:url\" content=\"{escaped_url}\">"
        )));
        assert!(html.contains(&format!(
            "<meta property=\"og:image\" content=\"https://card.example/{escaped_attribute}\">"
        )));
        assert!(html.contains(&format!(
            "<meta property=\"og:title\" content=\"{escaped_attribute}\">"
        )));
        // The bio's two lines, as one line of escaped description.
        assert!(html.contains(&format!(
            "<meta name=\"description\" content=\"{escaped_attribute} {escaped_attribute}\">"
        )));
        assert!(html.contains(&format!(
            "<a href=\"{escaped_url}\" rel=\"me noopener\" aria-label=\"GitHub\">"
        )));
        // Links that lead nowhere safe are left out, not linked.
        assert!(!html.contains("aria-label=\"X\""));
        assert!(!html.contains("aria-label=\"Email\""));
        assert!(!html.contains("Run me"));
        assert_eq!(body.parts.len(), items.len() + 2);
        assert!(body.parts[3].html.is_empty());
        assert!(body.check().is_ok());
    }

    #[test]
    fn one_part_per_item_in_its_window() {
        let mut timed = link("/sale", "Summer sale");
        timed.from = Some(1_000);
        timed.until = Some(2_000);
        let mut ending = header("Until launch");
        ending.until = Some(1_500);
        let items = [link("/abc", "Always"), timed, ending];
        let body = render(&page(content("Ada")), PAGE_URL, &items);

        assert_eq!(body.parts.len(), 5);
        let (first, last) = (&body.parts[0], &body.parts[4]);
        assert!(first.from.is_none() && first.until.is_none());
        assert!(last.from.is_none() && last.until.is_none());
        assert!(first.html.starts_with("<!doctype html>"));
        assert!(first.html.ends_with("<ul class=\"items\">"));
        assert_eq!(last.html, "</ul></main></body></html>");
        for (part, item) in body.parts[1..4].iter().zip(&items) {
            assert_eq!((part.from, part.until), (item.from, item.until));
        }
        assert_eq!(body.boundaries_after(0), [1_000, 1_500, 2_000]);

        let before = body.render_at(999);
        let inside = body.render_at(1_000);
        let late = body.render_at(1_999);
        let after = body.render_at(2_000);
        assert!(!before.contains("Summer sale"));
        assert!(inside.contains("<a class=\"button\" href=\"/sale\">Summer sale</a>"));
        assert!(late.contains("Summer sale"));
        assert!(!after.contains("Summer sale"));
        assert!(before.contains("<h2>Until launch</h2>") && inside.contains("Until launch"));
        assert!(!late.contains("Until launch") && !after.contains("Until launch"));
        for html in [&before, &inside, &late, &after] {
            assert!(html.contains(">Always</a>"));
            assert!(html.starts_with("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\""));
            assert!(html.ends_with("</ul></main></body></html>"));
        }
        assert!(body.check().is_ok());
    }

    #[test]
    fn every_preset_and_appearance_renders() {
        for preset in ThemePreset::ALL {
            for appearance in Appearance::ALL {
                let mut content = content("Ada");
                content.theme = Theme {
                    preset,
                    appearance,
                    colors: None,
                };
                let html = html_of(content, &[link("/abc", "One")]);
                let css = stylesheet(&html);
                let background = |is_dark| {
                    format!(
                        "--background:{};",
                        Palette::preset(preset, is_dark).background
                    )
                };
                let (light, dark) = (background(false), background(true));
                let case = format!("{} {}", preset.as_str(), appearance.as_str());
                match appearance {
                    Appearance::Auto => {
                        assert!(css.contains("@media(prefers-color-scheme:dark)"), "{case}");
                        assert!(css.contains(&light) && css.contains(&dark), "{case}");
                    }
                    Appearance::Light => {
                        assert!(!css.contains("prefers-color-scheme"), "{case}");
                        assert!(css.contains(&light) && !css.contains(&dark), "{case}");
                        assert!(css.contains("color-scheme:light"), "{case}");
                    }
                    Appearance::Dark => {
                        assert!(!css.contains("prefers-color-scheme"), "{case}");
                        assert!(css.contains(&dark) && !css.contains(&light), "{case}");
                        assert!(css.contains("color-scheme:dark"), "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn presets_keep_text_readable() {
        for preset in ThemePreset::ALL {
            for is_dark in [false, true] {
                let palette = Palette::preset(preset, is_dark);
                let case = format!("{} dark={is_dark}", preset.as_str());
                assert!(contrast(palette.text, palette.background) >= 7.0, "{case}");
                assert!(contrast(palette.muted, palette.background) >= 4.5, "{case}");
                assert!(
                    contrast(palette.button_text, palette.button) >= 4.5,
                    "{case}"
                );
                assert!(
                    contrast(palette.button_text, palette.hover) >= 4.5,
                    "{case}"
                );
                assert_eq!(
                    palette.is_dark,
                    palette.background.luminance() < 0.18,
                    "{case}"
                );
            }
        }
    }

    #[test]
    fn custom_colours_override_both_appearances() {
        let mut content = content("Ada");
        content.theme = Theme {
            preset: ThemePreset::Ocean,
            appearance: Appearance::Auto,
            colors: Some(Colors {
                background: "#fefefe".into(),
                text: "#123456".into(),
                button: "#AB1234".into(),
                button_text: "#ffffff".into(),
            }),
        };
        let html = html_of(content.clone(), &[]);
        let css = stylesheet(&html);
        for color in ["--background:#fefefe", "--text:#123456", "--button:#ab1234"] {
            assert!(css.contains(color), "{color} in {css}");
        }
        assert!(css.contains("--button-text:#ffffff"));
        // Every colour is overridden: light and dark are one palette.
        assert!(!css.contains("prefers-color-scheme"));
        assert!(!css.contains("#f0f9ff") && !css.contains("#071a2b"));
        // The hover darkens the button away from its white text.
        let derived = Rgb::from_hex(0xab1234).mix(Rgb::BLACK, 82);
        assert!(css.contains(&format!("--hover:{derived}")));

        // A colour that slipped past the checks never reaches the stylesheet.
        let sneaky = "#123456;}</style><script>alert(1)</script>";
        content.theme.colors = Some(Colors {
            background: sneaky.into(),
            text: "red".into(),
            button: "#12345".into(),
            button_text: "#1234567".into(),
        });
        content.theme.appearance = Appearance::Dark;
        let html = html_of(content, &[]);
        let css = stylesheet(&html);
        assert!(!html.contains("<script") && !css.contains("#12345"));
        let ocean = Palette::preset(ThemePreset::Ocean, true);
        assert!(css.contains(&format!(
            ":root{{color-scheme:dark;--background:{};--text:{};--muted:{};--button:{};--button-text:{};--hover:{}}}",
            ocean.background, ocean.text, ocean.muted, ocean.button, ocean.button_text, ocean.hover,
        )));
    }

    #[test]
    fn colours_are_read_strictly() {
        assert_eq!(Rgb::parse("#1D4ed8"), Some(Rgb::from_hex(0x1d4ed8)));
        assert_eq!(Rgb::from_hex(0x1d4ed8).to_string(), "#1d4ed8");
        for bad in [
            "1d4ed8", "#1d4ed", "#1d4ed80", "#+d4ed8", "#1d4ed8 ", " #1d4ed8", "#ggg000",
        ] {
            assert_eq!(Rgb::parse(bad), None, "{bad}");
        }
        assert_eq!(Rgb::WHITE.mix(Rgb::BLACK, 50), Rgb::from_hex(0x808080));
        assert_eq!(Rgb::WHITE.mix(Rgb::BLACK, 100), Rgb::WHITE);
    }

    #[test]
    fn cards_fall_back_to_the_page() {
        let mut content = content("Ada Lovelace");
        content.bio = Some("Mathematician.\nFirst programmer.".into());
        content.avatar_url = Some("https://img.example/ada.png".into());
        let html = html_of(content.clone(), &[]);
        for tag in [
            "<meta property=\"og:type\" content=\"profile\">",
            "<meta property=\"og:title\" content=\"Ada Lovelace\">",
            "<meta property=\"og:description\" content=\"Mathematician. First programmer.\">",
            "<meta property=\"og:image\" content=\"https://img.example/ada.png\">",
            "<meta property=\"og:url\" content=\"https://go.example/@ada\">",
            "<meta name=\"twitter:card\" content=\"summary\">",
            "<meta name=\"twitter:title\" content=\"Ada Lovelace\">",
            "<meta name=\"twitter:description\" content=\"Mathematician. First programmer.\">",
            "<meta name=\"twitter:image\" content=\"https://img.example/ada.png\">",
            "<meta name=\"description\" content=\"Mathematician. First programmer.\">",
            "<link rel=\"canonical\" href=\"https://go.example/@ada\">",
            "<title>Ada Lovelace</title>",
            "<img class=\"avatar\" src=\"https://img.example/ada.png\" alt=\"Ada Lovelace\"",
            "<p class=\"bio\">Mathematician.<br>First programmer.</p>",
        ] {
            assert!(html.contains(tag), "{tag} missing from {html}");
        }

        content.card = PageCard {
            title: Some("Ada's links".into()),
            description: Some("Everything Ada".into()),
            image: Some("https://img.example/card.png".into()),
        };
        let html = html_of(content, &[]);
        for tag in [
            "<meta property=\"og:title\" content=\"Ada's links\">",
            "<meta name=\"twitter:title\" content=\"Ada's links\">",
            "<meta property=\"og:description\" content=\"Everything Ada\">",
            "<meta name=\"twitter:description\" content=\"Everything Ada\">",
            "<meta name=\"description\" content=\"Everything Ada\">",
            "<meta property=\"og:image\" content=\"https://img.example/card.png\">",
            "<meta name=\"twitter:image\" content=\"https://img.example/card.png\">",
            // The page itself keeps its own name and avatar.
            "<title>Ada Lovelace</title>",
            "src=\"https://img.example/ada.png\"",
        ] {
            assert!(html.contains(tag), "{tag} missing from {html}");
        }

        let mut bare = self::content("Ada");
        bare.bio = Some("  \n ".into());
        bare.avatar_url = Some(String::new());
        let html = html_of(bare, &[]);
        assert!(!html.contains("description"));
        assert!(!html.contains("og:image") && !html.contains("twitter:image"));
        assert!(html.contains("<meta property=\"og:title\" content=\"Ada\">"));
        // No empty wrappers for what the page does not have.
        for absent in ["<img", "class=\"bio\"", "class=\"socials\"", "<nav", "<svg"] {
            assert!(!html.contains(absent), "{absent}");
        }
    }

    #[test]
    fn a_full_page_stays_small() {
        let mut content = content("Ada Lovelace — Analytical Engine enthusiast");
        content.bio = Some(
            "Writer & mathematician. "
                .repeat(13)
                .chars()
                .take(300)
                .collect(),
        );
        content.avatar_url = Some("https://images.example/avatars/ada-lovelace.png".into());
        content.socials = Network::ALL.into_iter().map(social).collect();
        let items: Vec<_> = (0..20)
            .map(|index| {
                link(
                    &format!("https://go.example/ada-{index}"),
                    &format!("My favourite thing number {index}"),
                )
            })
            .collect();
        let body = render(&page(content), PAGE_URL, &items);
        let html = body.render_at(0);
        assert!(html.len() < 15_000, "{} bytes", html.len());
        assert_eq!(html.matches("class=\"button\"").count(), 20);
        assert_eq!(html.matches("<svg").count(), 12);
        assert!(body.check().is_ok());
    }

    #[test]
    fn only_the_socials_used_get_icons() {
        let mut content = content("Ada");
        content.socials = vec![social(Network::Github), social(Network::Email)];
        let html = html_of(content, &[]);
        assert!(html.contains("<nav class=\"socials\" aria-label=\"Social links\">"));
        assert!(html.contains(
            "<a href=\"https://github.example/ada-lovelace\" rel=\"me noopener\" aria-label=\"GitHub\"><svg viewBox=\"0 0 24 24\" aria-hidden=\"true\" fill=\"currentColor\">"
        ));
        assert!(html.contains(
            "<a href=\"mailto:ada@example.org\" rel=\"me noopener\" aria-label=\"Email\">"
        ));
        assert!(html.contains(icons::GITHUB) && html.contains(icons::EMAIL));
        for network in Network::ALL {
            if matches!(network, Network::Github | Network::Email) {
                continue;
            }
            assert!(!html.contains(icon(network)), "{}", network.as_str());
            let label = format!("aria-label=\"{}\"", network.label());
            assert!(!html.contains(&label), "{label}");
        }
        assert_eq!(html.matches("<svg").count(), 2);
    }

    #[test]
    fn icons_are_distinct_and_small() {
        let mut seen = Vec::new();
        for network in Network::ALL {
            let markup = icon(network);
            assert!(markup.len() < 400, "{}", network.as_str());
            assert!(!markup.contains("<svg") && !seen.contains(&markup));
            seen.push(markup);
        }
    }

    #[test]
    fn documents_are_balanced_and_deterministic() {
        let mut content = content("Ada");
        content.bio = Some("Hello".into());
        content.avatar_url = Some("https://img.example/ada.png".into());
        content.socials = Network::ALL.into_iter().map(social).collect();
        let mut timed = link("/later", "Later");
        timed.from = Some(10);
        let items = [header("Links"), link("/a", "A"), timed, link("/b", "")];
        let body = render(&page(content.clone()), PAGE_URL, &items);
        for now in [0, 10] {
            let html = body.render_at(now);
            assert_eq!(html.matches("<a ").count(), html.matches("</a>").count());
            assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
            for element in [
                "html", "head", "body", "main", "header", "nav", "ul", "li", "h1", "h2", "p",
                "style", "title",
            ] {
                let opened = html.matches(&format!("<{element}>")).count()
                    + html.matches(&format!("<{element} ")).count();
                let closed = html.matches(&format!("</{element}>")).count();
                assert_eq!(opened, closed, "<{element}> at {now}");
            }
        }
        // A blank label shows the link's URL rather than an empty button.
        assert!(
            body.render_at(0)
                .contains("<a class=\"button\" href=\"/b\">/b</a>")
        );
        assert_eq!(render(&page(content), PAGE_URL, &items), body);
    }
}
