//! The HTML pages the engine serves: a link's card for link-preview
//! crawlers (Open Graph and Twitter Card tags and a refresh to the
//! destination), rendered when the link is compiled, the page of a link
//! that is gone, the password form, the page of a limited link whose
//! counter cannot answer, and the page of a blocked link. Every value is
//! HTML-escaped.

use html_escape::{encode_double_quoted_attribute, encode_text};
use ricochet_model::LinkRecord;
use ricochet_model::behaviour::Card;
use ricochet_model::block::{Block, BlockSource};

/// `Content-Security-Policy` of both pages: no scripts, styles inline only,
/// images from anywhere over http(s) (the card's image).
pub const PAGE_POLICY: &[u8] =
    b"Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src http: https:; form-action 'self'\r\n";

/// The page of a disabled, deleted or expired link without a fallback.
pub const GONE_PAGE: &[u8] = b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>Link unavailable</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}</style>\
</head><body><h1>This link is no longer available</h1>\
<p>It has expired or was turned off by its owner.</p></body></html>\n";

/// The page of a link with a click limit while its counter cannot answer (503).
pub const UNAVAILABLE_PAGE: &[u8] = b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>Link unavailable</title>\
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}</style>\
</head><body><h1>This link is unavailable right now</h1>\
<p>Try again in a moment.</p></body></html>\n";

/// The page of a link whose destination is blocked (451): which host, which
/// list and its reason; the destination itself is neither linked nor named
/// in full.
pub fn blocked_page(block: &Block) -> Box<[u8]> {
    let why = match block.source {
        BlockSource::ThreatList => "is listed as a source of malware or phishing",
        BlockSource::Api | BlockSource::File => "is blocked by the operators of this service",
    };
    let reason = block.reason.as_deref().map_or(String::new(), |reason| {
        format!("<p>Reason given: {}</p>", encode_text(reason))
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>Link blocked</title>\
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:15vh auto;padding:0 1rem;color:#222}}</style>\
</head><body><h1>This link is blocked</h1>\
<p>It leads to <strong>{host}</strong>, which {why}.</p>{reason}</body></html>\n",
        host = encode_text(&block.host),
    )
    .into_bytes()
    .into_boxed_slice()
}

/// The form a password-protected link answers with; `error` adds a line
/// above it. Nothing in it depends on the link.
pub fn password_form(error: Option<&str>) -> Vec<u8> {
    let error = error.map_or(String::new(), |text| {
        format!(
            "<p role=\"alert\" class=\"error\">{}</p>",
            encode_text(text)
        )
    });
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>Password required</title>\
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:24rem;margin:15vh auto;padding:0 1rem;color:#222}}\
label,input,button{{display:block;width:100%;box-sizing:border-box;font:inherit}}\
input{{margin:.25rem 0 1rem;padding:.5rem;border:1px solid #555;border-radius:4px}}\
button{{padding:.6rem;border:0;border-radius:4px;background:#1d4ed8;color:#fff;cursor:pointer}}\
button:focus,input:focus{{outline:3px solid #f59e0b;outline-offset:2px}}.error{{color:#b91c1c}}</style>\
</head><body><main><h1>This link is protected</h1>{error}\
<form method=\"post\"><label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" required autofocus autocomplete=\"current-password\">\
<button type=\"submit\">Continue</button></form></main></body></html>\n"
    )
    .into_bytes()
}

/// The card page of `link`, refreshing to `destination`; without one (a
/// link with a click limit, whose destination only a counted redirect may
/// reveal) the page names no destination and does not refresh.
pub fn card_page(link: &LinkRecord, card: &Card, destination: Option<&str>) -> Box<[u8]> {
    let short_link = format!("{}/{}", link.domain, link.code);
    let title = card
        .title
        .as_deref()
        .or(link.title.as_deref())
        .unwrap_or(destination.unwrap_or(&short_link));
    let attr = |text: &str| encode_double_quoted_attribute(text).into_owned();
    let mut meta = String::new();
    let mut tag = |kind: &str, name: &str, value: &str| {
        meta.push_str(&format!(
            "<meta {kind}=\"{name}\" content=\"{}\">\n",
            attr(value)
        ));
    };
    tag("property", "og:type", "website");
    tag("property", "og:title", title);
    tag("name", "twitter:title", title);
    if let Some(description) = &card.description {
        tag("property", "og:description", description);
        tag("name", "twitter:description", description);
        tag("name", "description", description);
    }
    match &card.image {
        Some(image) => {
            tag("property", "og:image", image);
            tag("name", "twitter:image", image);
            tag("name", "twitter:card", "summary_large_image");
        }
        None => tag("name", "twitter:card", "summary"),
    }
    let Some(destination) = destination else {
        let page = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n<title>{title}</title>\n{meta}\
</head><body><p>{title}</p></body></html>\n",
            title = encode_text(title),
        );
        return page.into_bytes().into_boxed_slice();
    };
    tag("property", "og:url", destination);
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\">\n<title>{title}</title>\n{meta}\
<meta http-equiv=\"refresh\" content=\"0; url={refresh}\">\n</head><body>\
<p><a href=\"{href}\">{text}</a></p></body></html>\n",
        title = encode_text(title),
        refresh = attr(destination),
        href = attr(destination),
        text = encode_text(destination),
    );
    page.into_bytes().into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_are_escaped() {
        let mut link =
            LinkRecord::new(1, "go.example", "c", "https://example.com/?a=1&b=\"2\"", 0).unwrap();
        link.title = Some("fallback".into());
        let card = Card {
            title: Some("</title><script>alert(1)</script>".into()),
            description: Some("\" onmouseover=\"alert(2)".into()),
            image: Some("https://img.example/a.png?x=\"><script>".into()),
        };
        let page = String::from_utf8(card_page(&link, &card, Some(&link.url)).to_vec()).unwrap();
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("\" onmouseover"), "{page}");
        assert!(
            page.contains("&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains(r#"<meta property="og:title" content="&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;">"#), "{page}");
        assert!(
            page.contains("twitter:card\" content=\"summary_large_image\""),
            "{page}"
        );
        assert!(
            page.contains(
                "http-equiv=\"refresh\" content=\"0; url=https://example.com/?a=1&amp;b=%222%22\""
            ),
            "{page}"
        );
    }

    #[test]
    fn the_title_falls_back_to_the_link_then_the_destination() {
        let mut link = LinkRecord::new(1, "go.example", "c", "https://example.com/", 0).unwrap();
        link.title = Some("Spring sale".into());
        let page = String::from_utf8(card_page(&link, &Card::default(), Some(&link.url)).to_vec())
            .unwrap();
        assert!(page.contains("<title>Spring sale</title>"), "{page}");
        assert!(page.contains("content=\"summary\""), "{page}");
        link.title = None;
        let page = String::from_utf8(card_page(&link, &Card::default(), Some(&link.url)).to_vec())
            .unwrap();
        assert!(
            page.contains("<title>https://example.com/</title>"),
            "{page}"
        );
    }

    #[test]
    fn the_blocked_page_names_the_host_and_escapes_the_reason() {
        let block = Block {
            host: "bad.example".into(),
            source: BlockSource::Api,
            reason: Some("<script>alert(1)</script> & more".into()),
        };
        let page = String::from_utf8(blocked_page(&block).to_vec()).unwrap();
        assert!(page.contains("<strong>bad.example</strong>"), "{page}");
        assert!(page.contains("blocked by the operators"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; more"),
            "{page}"
        );
        let threat = Block {
            source: BlockSource::ThreatList,
            reason: None,
            ..block
        };
        let page = String::from_utf8(blocked_page(&threat).to_vec()).unwrap();
        assert!(page.contains("malware or phishing"), "{page}");
        assert!(!page.contains("Reason given"), "{page}");
    }

    #[test]
    fn a_card_without_destination_names_none() {
        let mut link =
            LinkRecord::new(1, "go.example", "once", "https://secret.example/doc", 0).unwrap();
        let card = Card {
            description: Some("A one-time document".into()),
            ..Card::default()
        };
        let page = String::from_utf8(card_page(&link, &card, None).to_vec()).unwrap();
        assert!(!page.contains("secret.example"), "{page}");
        assert!(!page.contains("refresh"), "{page}");
        assert!(!page.contains("og:url"), "{page}");
        assert!(page.contains("<title>go.example/once</title>"), "{page}");
        assert!(page.contains("A one-time document"), "{page}");
        link.title = Some("Board pack".into());
        let page = String::from_utf8(card_page(&link, &card, None).to_vec()).unwrap();
        assert!(page.contains("<title>Board pack</title>"), "{page}");
    }
}
