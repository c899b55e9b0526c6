//! A link-in-bio page, compiled: the document for each stretch of time
//! between the instants its scheduled items appear or disappear, each with
//! its strong ETag, and gzipped once for clients that take it (every
//! browser: a quarter of the bytes to send). The stretch holding the compile
//! instant is built then;
//! a later one the first time a request falls in it (once; later requests
//! read it without locks), so a scheduled item appears on time without an
//! edit and a request never renders.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ricochet_model::UnixMillis;
use ricochet_model::page::PageBody;
use sha2::{Digest, Sha256};

/// `Content-Security-Policy` of a page: no scripts, no frames, no forms,
/// styles inline, images (the avatar) over http(s) only.
pub const PAGE_POLICY: &[u8] = b"Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\n";

/// Header lines every page answer carries besides its ETag: browsers and
/// caches revalidate each visit (a 304 costs a redirect's work), so views
/// are counted and scheduled items show on time.
pub const PAGE_HEADERS: &[u8] = b"Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: strict-origin-when-cross-origin\r\n";

/// The page as served during one stretch of time.
#[derive(Debug)]
pub struct Rendition {
    /// The document as is.
    pub plain: Encoded,
    /// The document gzipped, when that is smaller.
    pub gzip: Option<Encoded>,
}

/// One encoding of a rendition: its ETag header line (each encoding has its
/// own strong tag, RFC 9110 8.8.3) and its bytes.
#[derive(Debug)]
pub struct Encoded {
    /// `ETag: "…"\r\n`.
    etag_line: Box<[u8]>,
    pub body: Box<[u8]>,
}

impl Encoded {
    /// The `ETag` header line, CRLF included.
    #[inline]
    pub fn etag_line(&self) -> &[u8] {
        &self.etag_line
    }

    /// The quoted entity tag (`"…"`).
    #[inline]
    pub fn etag(&self) -> &[u8] {
        &self.etag_line[b"ETag: ".len()..self.etag_line.len() - 2]
    }
}

impl Rendition {
    fn new(html: String) -> Self {
        let digest = Sha256::digest(html.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(&digest[..12]);
        let line = |suffix: &str| {
            format!("ETag: \"{tag}{suffix}\"\r\n")
                .into_bytes()
                .into_boxed_slice()
        };
        let gzip = gzip(html.as_bytes())
            .filter(|packed| packed.len() < html.len())
            .map(|packed| Encoded {
                etag_line: line("-gz"),
                body: packed.into_boxed_slice(),
            });
        Self {
            plain: Encoded {
                etag_line: line(""),
                body: html.into_bytes().into_boxed_slice(),
            },
            gzip,
        }
    }

    /// The encoding to send to a client with this `Accept-Encoding`, and
    /// whether it is gzip.
    #[inline]
    pub fn for_client(&self, accept_encoding: &[u8]) -> (&Encoded, bool) {
        match &self.gzip {
            Some(gzip) if takes_gzip(accept_encoding) => (gzip, true),
            _ => (&self.plain, false),
        }
    }

    /// Whether an `If-None-Match` value names this rendition in either
    /// encoding (`*`, or one of its comma-separated tags, weak or strong:
    /// RFC 9110 13.1.2 compares weakly). Both encodings are the same
    /// document, so a copy in either is current.
    pub fn matches(&self, if_none_match: &[u8]) -> bool {
        let plain = self.plain.etag();
        let gzip = self.gzip.as_ref().map(Encoded::etag);
        if_none_match.split(|&b| b == b',').any(|candidate| {
            let candidate = candidate.trim_ascii();
            let candidate = candidate.strip_prefix(b"W/").unwrap_or(candidate);
            candidate == b"*" || candidate == plain || Some(candidate) == gzip
        })
    }
}

/// `bytes` gzipped at the best ratio (once per document).
fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

/// Whether an `Accept-Encoding` value takes gzip: it names `gzip` (or
/// `x-gzip`, or `*`) without `q=0`.
fn takes_gzip(accept_encoding: &[u8]) -> bool {
    accept_encoding.split(|&b| b == b',').any(|coding| {
        let mut parts = coding.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        let named = name.eq_ignore_ascii_case(b"gzip")
            || name.eq_ignore_ascii_case(b"x-gzip")
            || name == b"*";
        named
            && !parts.any(|parameter| {
                let parameter = parameter.trim_ascii();
                parameter.len() >= 3
                    && parameter[..2].eq_ignore_ascii_case(b"q=")
                    && parameter[2..].iter().all(|&b| b == b'0' || b == b'.')
            })
    })
}

/// A compiled page.
#[derive(Debug)]
pub struct PagePlan {
    /// The instants after compilation at which the page changes, ascending.
    boundaries: Box<[UnixMillis]>,
    /// One per stretch: before `boundaries[0]`, between each pair, after
    /// the last.
    renditions: Box<[OnceLock<Rendition>]>,
    /// The parts, kept while a later stretch may still need rendering.
    body: Option<PageBody>,
}

impl PagePlan {
    /// Compiles `body` at `now`.
    pub fn compile(body: &PageBody, now: UnixMillis) -> Self {
        let boundaries: Box<[UnixMillis]> = body.boundaries_after(now).into_boxed_slice();
        let renditions: Box<[OnceLock<Rendition>]> =
            (0..=boundaries.len()).map(|_| OnceLock::new()).collect();
        let _ = renditions[0].set(Rendition::new(body.render_at(now)));
        Self {
            body: (!boundaries.is_empty()).then(|| body.clone()),
            boundaries,
            renditions,
        }
    }

    /// The page at `now`.
    #[inline]
    pub fn at(&self, now: UnixMillis) -> &Rendition {
        let stretch = match self.boundaries.is_empty() {
            true => 0,
            false => self.boundaries.partition_point(|&at| at <= now),
        };
        let slot = &self.renditions[stretch];
        if let Some(rendition) = slot.get() {
            return rendition;
        }
        slot.get_or_init(|| {
            // Any instant of the stretch renders the same document: its start.
            let start = stretch
                .checked_sub(1)
                .map_or(UnixMillis::MIN, |index| self.boundaries[index]);
            let body = self.body.as_ref().expect("kept while stretches remain");
            Rendition::new(body.render_at(start))
        })
    }

    /// Heap bytes the plan holds.
    pub fn heap_size(&self) -> usize {
        let size = |e: &Encoded| e.body.len() + e.etag_line.len();
        let rendered: usize = self
            .renditions
            .iter()
            .filter_map(OnceLock::get)
            .map(|r| size(&r.plain) + r.gzip.as_ref().map_or(0, size))
            .sum();
        let parts = self.body.as_ref().map_or(0, |body| {
            body.parts.iter().map(|part| part.html.len() + 48).sum()
        });
        rendered
            + parts
            + self.boundaries.len() * 8
            + self.renditions.len() * size_of::<OnceLock<Rendition>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ricochet_model::page::PagePart;

    fn body() -> PageBody {
        PageBody {
            parts: vec![
                PagePart::always("<p>head</p>"),
                PagePart {
                    html: "<a>sale</a>".into(),
                    from: Some(1_000),
                    until: Some(2_000),
                },
                PagePart::always("<p>tail</p>"),
            ],
        }
    }

    #[test]
    fn each_stretch_serves_its_own_document_and_tag() {
        let plan = PagePlan::compile(&body(), 0);
        let before = plan.at(999);
        assert_eq!(&*before.plain.body, b"<p>head</p><p>tail</p>");
        let during = plan.at(1_000);
        assert_eq!(&*during.plain.body, b"<p>head</p><a>sale</a><p>tail</p>");
        assert_ne!(before.plain.etag(), during.plain.etag());
        let after = plan.at(5_000);
        assert_eq!(&*after.plain.body, b"<p>head</p><p>tail</p>");
        // Same document, same tag: a browser's copy from before the sale
        // is still current after it.
        assert_eq!(before.plain.etag(), after.plain.etag());
        assert!(std::ptr::eq(plan.at(1_500), during));
    }

    #[test]
    fn compiled_after_a_window_keeps_no_parts() {
        let plan = PagePlan::compile(&body(), 3_000);
        assert!(plan.body.is_none() && plan.boundaries.is_empty());
        assert_eq!(&*plan.at(i64::MAX).plain.body, b"<p>head</p><p>tail</p>");
        let inside = PagePlan::compile(&body(), 1_500);
        assert_eq!(&*inside.boundaries, [2_000]);
        assert_eq!(
            &*inside.at(1_999).plain.body,
            b"<p>head</p><a>sale</a><p>tail</p>"
        );
        assert_eq!(&*inside.at(2_000).plain.body, b"<p>head</p><p>tail</p>");
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let plan = PagePlan::compile(&body(), 0);
        let rendition = plan.at(0);
        let tag = std::str::from_utf8(rendition.plain.etag())
            .unwrap()
            .to_owned();
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18);
        assert!(rendition.matches(tag.as_bytes()));
        assert!(rendition.matches(format!("W/{tag}").as_bytes()));
        assert!(rendition.matches(format!("\"x\", {tag}").as_bytes()));
        assert!(rendition.matches(b"*"));
        assert!(!rendition.matches(b"\"other\""));
        assert!(!rendition.matches(b""));
        assert!(!rendition.matches(&tag.as_bytes()[1..]));
    }

    #[test]
    fn documents_are_gzipped_once_for_clients_that_take_it() {
        let html = format!(
            "<!doctype html>{}",
            "<li><a href=\"/x\">An item</a></li>".repeat(100)
        );
        let plan = PagePlan::compile(
            &PageBody {
                parts: vec![PagePart::always(html.clone())],
            },
            0,
        );
        let rendition = plan.at(0);
        let gzip = rendition.gzip.as_ref().expect("a long page compresses");
        assert!(
            gzip.body.len() * 4 < html.len(),
            "{} bytes",
            gzip.body.len()
        );
        let mut unpacked = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&gzip.body[..]),
            &mut unpacked,
        )
        .unwrap();
        assert_eq!(unpacked, html);
        assert_ne!(gzip.etag(), rendition.plain.etag());
        // Either encoding's tag is a current copy.
        assert!(rendition.matches(gzip.etag()) && rendition.matches(rendition.plain.etag()));
        for (accept, gzipped) in [
            (&b"gzip, deflate, br, zstd"[..], true),
            (b"br;q=1.0, GZIP;q=0.5", true),
            (b"*", true),
            (b"x-gzip", true),
            (b"gzip;q=0", false),
            (b"gzip; q=0.0, identity", false),
            (b"br, deflate", false),
            (b"", false),
            (b"gzipped", false),
        ] {
            assert_eq!(rendition.for_client(accept).1, gzipped, "{accept:?}");
        }
        // A tiny document is not worth it.
        let tiny = PagePlan::compile(
            &PageBody {
                parts: vec![PagePart::always("<p>x</p>")],
            },
            0,
        );
        assert!(tiny.at(0).gzip.is_none());
        assert!(!tiny.at(0).for_client(b"gzip").1);
    }
}
