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

/// Header lines every page answer carries besides its ETag: browsers and
/// caches revalidate each visit (a 304 costs a redirect's work), so views
/// are counted and scheduled items show on time.
macro_rules! page_headers {
    () => {
        "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: strict-origin-when-cross-origin\r\n"
    };
}

/// A 200's lines after those: `Content-Security-Policy` (no scripts, no
/// frames, no forms, styles inline, images (the avatar) over http(s) only)
/// and the type.
macro_rules! document_headers {
    () => {
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'\r\nContent-Type: text/html; charset=utf-8\r\n"
    };
}

/// The header lines after an answer's ETag, pre-rendered per kind of
/// answer, so an answer is the tag and two slice copies.
struct Lines {
    not_modified: &'static [u8],
    ok: &'static [u8],
}

/// A page without a gzip copy.
const SOLE: Lines = Lines {
    not_modified: page_headers!().as_bytes(),
    ok: concat!(page_headers!(), document_headers!()).as_bytes(),
};
/// The document as is, when a gzip copy exists.
const PLAIN: Lines = Lines {
    not_modified: concat!(page_headers!(), "Vary: Accept-Encoding\r\n").as_bytes(),
    ok: concat!(
        page_headers!(),
        "Vary: Accept-Encoding\r\n",
        document_headers!()
    )
    .as_bytes(),
};
/// The gzip copy.
const GZIP: Lines = Lines {
    not_modified: concat!(page_headers!(), "Vary: Accept-Encoding\r\n").as_bytes(),
    ok: concat!(
        page_headers!(),
        "Vary: Accept-Encoding\r\nContent-Encoding: gzip\r\n",
        document_headers!()
    )
    .as_bytes(),
};

/// Characters of a tag's base (12 digest bytes in base64url).
const TAG_BASE: usize = 16;
/// What a gzip copy's tag adds to the base: each encoding has its own
/// strong tag (RFC 9110 8.8.3), `"…"` and `"…-gz"`.
const GZIP_SUFFIX: &[u8] = b"-gz";

/// The page as served during one stretch of time.
#[derive(Debug)]
pub struct Rendition {
    /// Both encodings' tag base, in place: a revalidation reads nothing
    /// but the plan (over 100,000 pages, every other read is a cache miss).
    tag: [u8; TAG_BASE],
    /// The document as is.
    plain: Box<[u8]>,
    /// The document gzipped, when that is smaller.
    gzip: Option<Box<[u8]>>,
}

/// The encoding of a rendition one client gets.
pub struct Sent<'a> {
    rendition: &'a Rendition,
    body: &'a [u8],
    lines: &'static Lines,
    gzip: bool,
}

impl Sent<'_> {
    /// Appends `ETag: "…"` and its CRLF.
    #[inline]
    pub fn write_etag(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"ETag: \"");
        out.extend_from_slice(&self.rendition.tag);
        if self.gzip {
            out.extend_from_slice(GZIP_SUFFIX);
        }
        out.extend_from_slice(b"\"\r\n");
    }

    /// The header lines of a 304 after the tag: caching and `Vary`.
    #[inline]
    pub fn not_modified_lines(&self) -> &'static [u8] {
        self.lines.not_modified
    }

    /// The header lines of a 200 after the tag.
    #[inline]
    pub fn lines(&self) -> &'static [u8] {
        self.lines.ok
    }

    #[inline]
    pub fn body(&self) -> &[u8] {
        self.body
    }
}

impl Rendition {
    fn new(html: String) -> Self {
        let digest = Sha256::digest(html.as_bytes());
        let mut tag = [0; TAG_BASE];
        let written = URL_SAFE_NO_PAD
            .encode_slice(&digest[..12], &mut tag)
            .expect("12 bytes are 16 characters");
        debug_assert_eq!(written, TAG_BASE);
        let gzip = gzip(html.as_bytes()).filter(|packed| packed.len() < html.len());
        Self {
            tag,
            plain: html.into_bytes().into_boxed_slice(),
            gzip: gzip.map(Vec::into_boxed_slice),
        }
    }

    /// What to send a client with this `Accept-Encoding`.
    #[inline]
    pub fn for_client(&self, accept_encoding: &[u8]) -> Sent<'_> {
        match &self.gzip {
            Some(gzip) if takes_gzip(accept_encoding) => Sent {
                rendition: self,
                body: gzip,
                lines: &GZIP,
                gzip: true,
            },
            Some(_) => Sent {
                rendition: self,
                body: &self.plain,
                lines: &PLAIN,
                gzip: false,
            },
            None => Sent {
                rendition: self,
                body: &self.plain,
                lines: &SOLE,
                gzip: false,
            },
        }
    }

    /// Whether an `If-None-Match` value names this rendition in either
    /// encoding (`*`, or one of its comma-separated tags, weak or strong:
    /// RFC 9110 13.1.2 compares weakly). Both encodings are the same
    /// document, so a copy in either is current.
    #[inline]
    pub fn matches(&self, if_none_match: &[u8]) -> bool {
        if_none_match.split(|&b| b == b',').any(|candidate| {
            let candidate = candidate.trim_ascii();
            let candidate = candidate.strip_prefix(b"W/").unwrap_or(candidate);
            if candidate == b"*" {
                return true;
            }
            let Some(inner) = candidate
                .strip_prefix(b"\"")
                .and_then(|rest| rest.strip_suffix(b"\""))
            else {
                return false;
            };
            match inner.strip_prefix(&self.tag[..]) {
                Some(b"") => true,
                Some(GZIP_SUFFIX) => self.gzip.is_some(),
                _ => false,
            }
        })
    }

    /// The quoted tag of one encoding (`"…"`, `"…-gz"`).
    pub fn etag(&self, gzip: bool) -> String {
        let mut line = Vec::new();
        let sent = Sent {
            rendition: self,
            body: &[],
            lines: &SOLE,
            gzip,
        };
        sent.write_etag(&mut line);
        String::from_utf8_lossy(&line["ETag: ".len()..line.len() - 2]).into_owned()
    }

    /// The document as is.
    pub fn plain(&self) -> &[u8] {
        &self.plain
    }

    /// Its gzip copy, if it has one.
    pub fn gzipped(&self) -> Option<&[u8]> {
        self.gzip.as_deref()
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
    /// The stretch holding the compile instant: in place, so a page
    /// without a schedule is one pointer away from its link.
    first: Rendition,
    /// The instants after compilation at which the page changes, ascending.
    boundaries: Box<[UnixMillis]>,
    /// One per later stretch: between each pair of boundaries, after the last.
    later: Box<[OnceLock<Rendition>]>,
    /// The parts, kept while a later stretch may still need rendering.
    body: Option<PageBody>,
}

impl PagePlan {
    /// Compiles `body` at `now`.
    pub fn compile(body: &PageBody, now: UnixMillis) -> Self {
        let boundaries: Box<[UnixMillis]> = body.boundaries_after(now).into_boxed_slice();
        Self {
            first: Rendition::new(body.render_at(now)),
            later: boundaries.iter().map(|_| OnceLock::new()).collect(),
            body: (!boundaries.is_empty()).then(|| body.clone()),
            boundaries,
        }
    }

    /// The page at `now`.
    #[inline]
    pub fn at(&self, now: UnixMillis) -> &Rendition {
        if self.boundaries.first().is_none_or(|&next| now < next) {
            return &self.first;
        }
        // `now` is at or past the first boundary: stretch 1 or later.
        let stretch = self.boundaries.partition_point(|&at| at <= now);
        let slot = &self.later[stretch - 1];
        slot.get_or_init(|| {
            // Any instant of the stretch renders the same document: its start.
            let body = self.body.as_ref().expect("kept while stretches remain");
            Rendition::new(body.render_at(self.boundaries[stretch - 1]))
        })
    }

    /// Heap bytes the plan holds.
    pub fn heap_size(&self) -> usize {
        let size = |r: &Rendition| r.plain.len() + r.gzip.as_ref().map_or(0, |g| g.len());
        let rendered: usize = size(&self.first)
            + self
                .later
                .iter()
                .filter_map(OnceLock::get)
                .map(size)
                .sum::<usize>();
        let parts = self.body.as_ref().map_or(0, |body| {
            body.parts.iter().map(|part| part.html.len() + 48).sum()
        });
        rendered
            + parts
            + self.boundaries.len() * 8
            + self.later.len() * size_of::<OnceLock<Rendition>>()
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
        assert_eq!(before.plain(), b"<p>head</p><p>tail</p>");
        let during = plan.at(1_000);
        assert_eq!(during.plain(), b"<p>head</p><a>sale</a><p>tail</p>");
        assert_ne!(before.etag(false), during.etag(false));
        let after = plan.at(5_000);
        assert_eq!(after.plain(), b"<p>head</p><p>tail</p>");
        // Same document, same tag: a browser's copy from before the sale
        // is still current after it.
        assert_eq!(before.etag(false), after.etag(false));
        assert!(std::ptr::eq(plan.at(1_500), during));
    }

    #[test]
    fn compiled_after_a_window_keeps_no_parts() {
        let plan = PagePlan::compile(&body(), 3_000);
        assert!(plan.body.is_none() && plan.boundaries.is_empty());
        assert_eq!(plan.at(i64::MAX).plain(), b"<p>head</p><p>tail</p>");
        let inside = PagePlan::compile(&body(), 1_500);
        assert_eq!(&*inside.boundaries, [2_000]);
        assert_eq!(
            inside.at(1_999).plain(),
            b"<p>head</p><a>sale</a><p>tail</p>"
        );
        assert_eq!(inside.at(2_000).plain(), b"<p>head</p><p>tail</p>");
    }

    #[test]
    fn if_none_match_compares_weakly_and_takes_lists() {
        let plan = PagePlan::compile(&body(), 0);
        let rendition = plan.at(0);
        let tag = rendition.etag(false);
        assert!(tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18);
        assert!(rendition.matches(tag.as_bytes()));
        assert!(rendition.matches(format!("W/{tag}").as_bytes()));
        assert!(rendition.matches(format!("\"x\", {tag}").as_bytes()));
        assert!(rendition.matches(b"*"));
        assert!(!rendition.matches(b"\"other\""));
        assert!(!rendition.matches(b""));
        assert!(!rendition.matches(&tag.as_bytes()[1..]));
        assert!(!rendition.matches(&tag.as_bytes()[..tag.len() - 1]));
        assert!(!rendition.matches(format!("{}x\"", &tag[..tag.len() - 1]).as_bytes()));
    }

    /// The head an answer writes after its status line.
    fn head(sent: &Sent<'_>, not_modified: bool) -> String {
        let mut out = Vec::new();
        sent.write_etag(&mut out);
        out.extend_from_slice(match not_modified {
            true => sent.not_modified_lines(),
            false => sent.lines(),
        });
        String::from_utf8(out).unwrap()
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
        let gzip = rendition.gzipped().expect("a long page compresses");
        assert!(gzip.len() * 4 < html.len(), "{} bytes", gzip.len());
        let mut unpacked = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gzip), &mut unpacked)
            .unwrap();
        assert_eq!(unpacked, html);
        let (plain_tag, gzip_tag) = (rendition.etag(false), rendition.etag(true));
        assert_ne!(plain_tag, gzip_tag);
        assert_eq!(
            gzip_tag,
            format!("{}-gz\"", &plain_tag[..plain_tag.len() - 1])
        );
        // Either encoding's tag is a current copy.
        assert!(rendition.matches(gzip_tag.as_bytes()) && rendition.matches(plain_tag.as_bytes()));
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
            let sent = rendition.for_client(accept);
            assert_eq!(std::ptr::eq(sent.body(), gzip), gzipped, "{accept:?}");
            let ok = head(&sent, false);
            let not_modified = head(&sent, true);
            let tag = if gzipped { &gzip_tag } else { &plain_tag };
            assert!(ok.starts_with(&format!("ETag: {tag}\r\n")), "{ok}");
            assert!(not_modified.starts_with(&format!("ETag: {tag}\r\n")));
            assert_eq!(ok.contains("Content-Encoding: gzip\r\n"), gzipped, "{ok}");
            for lines in [&ok, &not_modified] {
                assert!(lines.contains("Vary: Accept-Encoding\r\n"), "{lines}");
                assert!(lines.contains("Cache-Control: no-cache\r\n"), "{lines}");
                assert!(lines.ends_with("\r\n") && !lines.contains("\r\n\r\n"));
            }
            assert!(ok.contains("Content-Security-Policy: default-src 'none';"));
            assert!(!not_modified.contains("Content-Security-Policy"));
            assert!(!not_modified.contains("Content-Type: text/html"));
            assert!(ok.contains("Content-Type: text/html; charset=utf-8\r\n"));
        }
        // A tiny document is not worth it: no copy, no `Vary`.
        let tiny = PagePlan::compile(
            &PageBody {
                parts: vec![PagePart::always("<p>x</p>")],
            },
            0,
        );
        let tiny = tiny.at(0);
        assert!(tiny.gzipped().is_none());
        let sent = tiny.for_client(b"gzip");
        assert_eq!(sent.body(), b"<p>x</p>");
        assert!(
            !head(&sent, false).contains("Vary")
                && !head(&sent, false).contains("Content-Encoding")
        );
        // Without a gzip copy, a "-gz" tag names nothing.
        assert!(!tiny.matches(tiny.etag(true).as_bytes()));
        assert!(tiny.matches(tiny.etag(false).as_bytes()));
    }
}
