//! Reading a page's own card from its HTML with html5gum, a WHATWG HTML
//! tokenizer: character references decoded as browsers decode them, the
//! insides of `<script>`, `<style>`, `<textarea>` and comments never taken
//! for tags. Open Graph tags first, then Twitter Card tags, then `<title>`
//! and `<meta name="description">`.

use html5gum::{DefaultEmitter, Token, Tokenizer};
use ricochet_model::behaviour::Card;
use ricochet_model::behaviour::check::{MAX_CARD_DESCRIPTION, MAX_CARD_TITLE};
use ricochet_model::validate;
use url::Url;

use super::text::clean;

/// The values a page declares, raw (decoded, not yet cleaned); the first
/// of each kind wins.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageMetadata {
    pub og_title: Option<String>,
    pub og_description: Option<String>,
    /// `og:image`, else `og:image:secure_url` or `og:image:url`.
    pub og_image: Option<String>,
    pub twitter_title: Option<String>,
    pub twitter_description: Option<String>,
    /// `twitter:image`, else `twitter:image:src`.
    pub twitter_image: Option<String>,
    /// The first `<title>` outside SVG.
    pub title: Option<String>,
    /// `<meta name="description">`.
    pub description: Option<String>,
    /// The first `<base href>`.
    pub base: Option<String>,
}

impl PageMetadata {
    /// Reads `html` (UTF-8; anything else is read as UTF-8 with
    /// replacement characters). A cut page is read as far as it goes.
    pub fn parse(html: &[u8]) -> Self {
        let mut emitter = DefaultEmitter::default();
        // Enter script, style, title and textarea content states after their
        // start tags, as a tree builder would.
        emitter.naively_switch_states(true);
        let mut found = Self::default();
        let mut title: Option<Vec<u8>> = None;
        let mut svg_depth = 0usize;
        for Ok(token) in Tokenizer::new_with_emitter(html, emitter) {
            match token {
                Token::StartTag(tag) => match tag.name.as_slice() {
                    b"meta" => found.take_meta(&tag.attributes),
                    b"base" if found.base.is_none() => {
                        found.base = attribute(&tag.attributes, "href");
                    }
                    b"svg" if !tag.self_closing => svg_depth += 1,
                    b"title" if svg_depth == 0 && found.title.is_none() && title.is_none() => {
                        title = Some(Vec::new());
                    }
                    _ => {}
                },
                Token::EndTag(tag) => match tag.name.as_slice() {
                    b"svg" => svg_depth = svg_depth.saturating_sub(1),
                    b"title" => {
                        if let Some(text) = title.take() {
                            found.title = Some(String::from_utf8_lossy(&text).into_owned());
                        }
                    }
                    _ => {}
                },
                Token::String(text) => {
                    if let Some(title) = title.as_mut() {
                        title.extend_from_slice(&text);
                    }
                }
                _ => {}
            }
        }
        if let Some(text) = title {
            // A page cut inside its title.
            found.title = Some(String::from_utf8_lossy(&text).into_owned());
        }
        found
    }

    fn take_meta(&mut self, attributes: &Attributes) {
        let key = attribute(attributes, "property")
            .or_else(|| attribute(attributes, "name"))
            .map(|key| key.trim().to_ascii_lowercase());
        let (Some(key), Some(content)) = (key, attribute(attributes, "content")) else {
            return;
        };
        let slot = match key.as_str() {
            "og:title" => &mut self.og_title,
            "og:description" => &mut self.og_description,
            "og:image" | "og:image:secure_url" | "og:image:url" => &mut self.og_image,
            "twitter:title" => &mut self.twitter_title,
            "twitter:description" => &mut self.twitter_description,
            "twitter:image" | "twitter:image:src" => &mut self.twitter_image,
            "description" => &mut self.description,
            _ => return,
        };
        if slot.as_deref().is_none_or(|value| value.trim().is_empty()) {
            *slot = Some(content);
        }
    }

    /// The card these values make for the page at `page_url`: each text
    /// cleaned and clipped to the card's limits, the image resolved against
    /// the page (or its `<base>`) and kept only when it is a valid http(s)
    /// destination. `None` when nothing usable was found.
    pub fn card(&self, page_url: &Url) -> Option<Card> {
        let first_text = |candidates: [&Option<String>; 3], max: usize| {
            candidates
                .into_iter()
                .flatten()
                .find_map(|raw| clean(raw, max))
        };
        let card = Card {
            title: first_text(
                [&self.og_title, &self.twitter_title, &self.title],
                MAX_CARD_TITLE,
            ),
            description: first_text(
                [
                    &self.og_description,
                    &self.twitter_description,
                    &self.description,
                ],
                MAX_CARD_DESCRIPTION,
            ),
            image: [&self.og_image, &self.twitter_image]
                .into_iter()
                .flatten()
                .find_map(|raw| self.image_url(raw, page_url)),
        };
        (!card.is_empty()).then_some(card)
    }

    /// `raw` resolved against the page's base, normalized, when it is a
    /// valid http(s) destination.
    fn image_url(&self, raw: &str, page_url: &Url) -> Option<String> {
        let base = self
            .base
            .as_deref()
            .and_then(|base| page_url.join(base.trim()).ok())
            .filter(|base| matches!(base.scheme(), "http" | "https"))
            .unwrap_or_else(|| page_url.clone());
        let resolved = base.join(raw.trim()).ok()?;
        validate::validate_destination(resolved.as_str()).ok()
    }
}

type Attributes =
    std::collections::BTreeMap<html5gum::HtmlString, html5gum::Spanned<html5gum::HtmlString, ()>>;

/// The decoded value of attribute `name` (tokenizers lowercase names).
fn attribute(attributes: &Attributes, name: &str) -> Option<String> {
    attributes
        .iter()
        .find(|(key, _)| key.as_slice() == name.as_bytes())
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://shop.example/spring/sale?ref=x").unwrap()
    }

    fn card_of(html: &str) -> Option<Card> {
        PageMetadata::parse(html.as_bytes()).card(&page())
    }

    #[test]
    fn open_graph_wins_and_entities_are_decoded() {
        let html = r#"<!doctype html><html><head>
            <title>Page &amp; title</title>
            <meta name="description" content="Plain description">
            <meta name="twitter:title" content="Twitter title">
            <META PROPERTY="og:title" CONTENT="Caf&eacute; &amp; &lt;b&gt;bar&lt;/b&gt; &#x27;50%&#39; &#128512;">
            <meta property="og:description" content="  Line one
                 line	two  ">
            <meta property="og:image" content="/img/spring.png?size=big&amp;v=2">
            <meta property="og:image" content="https://other.example/second.png">
            </head><body></body></html>"#;
        let card = card_of(html).unwrap();
        assert_eq!(card.title.as_deref(), Some("Café & <b>bar</b> '50%' 😀"));
        assert_eq!(card.description.as_deref(), Some("Line one line two"));
        assert_eq!(
            card.image.as_deref(),
            Some("https://shop.example/img/spring.png?size=big&v=2")
        );
    }

    #[test]
    fn fallbacks_are_twitter_then_title_and_meta_description() {
        let twitter = card_of(
            r#"<title>T</title><meta name="twitter:title" content="Tw">
               <meta name="twitter:description" content="TwD">
               <meta name="twitter:image:src" content="https://img.example/t.png">"#,
        )
        .unwrap();
        assert_eq!(
            (twitter.title.as_deref(), twitter.description.as_deref()),
            (Some("Tw"), Some("TwD"))
        );
        assert_eq!(twitter.image.as_deref(), Some("https://img.example/t.png"));

        let plain = card_of(
            "<html><head><title>\n  Plain &mdash; page\n</title>\
             <meta name=description content='About &quot;it&quot;'></head></html>",
        )
        .unwrap();
        assert_eq!(plain.title.as_deref(), Some("Plain — page"));
        assert_eq!(plain.description.as_deref(), Some("About \"it\""));
        assert_eq!(plain.image, None);

        // An empty og:title falls through to the next candidate.
        let empty = card_of(r#"<meta property="og:title" content="  "><title>Fallback</title>"#);
        assert_eq!(empty.unwrap().title.as_deref(), Some("Fallback"));
        assert_eq!(card_of("<p>No metadata here</p>"), None);
        assert_eq!(card_of(""), None);
    }

    #[test]
    fn script_style_comments_and_svg_titles_are_not_metadata() {
        let html = r#"<html><head>
            <script>document.write('<meta property="og:title" content="from script">'); var t = "<title>x</title>";</script>
            <style>/* <meta property="og:description" content="from style"> */</style>
            <!-- <meta property="og:image" content="https://evil.example/comment.png"> -->
            <noscript></noscript>
            </head><body><svg><title>svg title</title></svg>
            <textarea><meta name="description" content="from textarea"></textarea>
            <title>Real <b>title</b></title></body></html>"#;
        let card = card_of(html).unwrap();
        assert_eq!(card.title.as_deref(), Some("Real <b>title</b>"));
        assert_eq!(card.description, None);
        assert_eq!(card.image, None);
    }

    #[test]
    fn texts_are_clipped_to_the_card_limits() {
        let html = format!(
            r#"<meta property="og:title" content="{}"><meta property="og:description" content="{}">"#,
            "Title ".repeat(100),
            "&lt;desc&gt; ".repeat(300)
        );
        let card = card_of(&html).unwrap();
        let title = card.title.unwrap();
        let description = card.description.unwrap();
        assert!(
            title.len() <= MAX_CARD_TITLE && title.ends_with('…'),
            "{title}"
        );
        assert!(title.starts_with("Title Title"));
        assert!(
            description.len() <= MAX_CARD_DESCRIPTION && description.ends_with('…'),
            "{}",
            description.len()
        );
        assert!(description.starts_with("<desc> <desc>"));
    }

    #[test]
    fn images_resolve_against_the_page_or_its_base_and_must_be_http() {
        let image = |html: &str| card_of(html).and_then(|card| card.image);
        assert_eq!(
            image(r#"<meta property="og:image" content="pic.png">"#).as_deref(),
            Some("https://shop.example/spring/pic.png")
        );
        assert_eq!(
            image(r#"<base href="https://cdn.example/assets/"><meta property="og:image" content="pic.png">"#)
                .as_deref(),
            Some("https://cdn.example/assets/pic.png")
        );
        assert_eq!(
            image(r#"<meta property="og:image" content="//cdn.example/x.png">"#).as_deref(),
            Some("https://cdn.example/x.png")
        );
        for refused in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "ftp://files.example/a.png",
            "https://user:pw@img.example/a.png",
            "https://img.example/%00.png",
        ] {
            let html = format!(r#"<meta property="og:image" content="{refused}">"#);
            assert_eq!(image(&html), None, "{refused}");
        }
        // A refused og:image falls back to the Twitter image.
        assert_eq!(
            image(
                r#"<meta property="og:image" content="javascript:x()">
                   <meta name="twitter:image" content="https://img.example/t.png">"#
            )
            .as_deref(),
            Some("https://img.example/t.png")
        );
        let long = format!("https://img.example/{}", "a".repeat(5000));
        assert_eq!(
            image(&format!(r#"<meta property="og:image" content="{long}">"#)),
            None
        );
    }

    #[test]
    fn a_page_cut_midway_still_gives_what_came_before() {
        let card = card_of(r#"<meta property="og:title" content="Kept"><title>Cut ti"#).unwrap();
        assert_eq!(card.title.as_deref(), Some("Kept"));
        let cut = PageMetadata::parse(b"<title>Cut ti");
        assert_eq!(cut.title.as_deref(), Some("Cut ti"));
        let invalid = PageMetadata::parse(b"<title>caf\xe9</title>");
        assert_eq!(invalid.title.as_deref(), Some("caf\u{fffd}"));
    }
}
