//! A/B splits. A visitor keeps their variant through a cookie scoped to the
//! short link's path (HttpOnly, SameSite=Lax). Its value is a MAC, under
//! the engines' cookie key, of the link, the split, the variant and the
//! whole variant list, so it cannot be forged to pick a destination the
//! split does not list, and an edit of the split starts visitors over. The
//! valid values are computed when the link is compiled: a request compares
//! a cookie against at most eight of them and computes no MAC. A visitor
//! without a valid cookie gets a pick from a hash of their address and user
//! agent (the same pick on every engine of a cluster) and the cookie.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ricochet_model::LinkRecord;
use ricochet_model::behaviour::{ChosenBy, Variant};
use sha2::Sha256;

use super::compile::{Span, Target, TargetSpan, TextBuilder};
use super::key::CookieKey;
use ricochet_model::behaviour::MAX_VARIANTS;

/// How long a visitor keeps their variant.
pub const COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;
/// Bytes of MAC kept in a cookie value (base64url: 16 characters).
const TOKEN_BYTES: usize = 12;

/// One compiled split; its strings are in the plan's text.
#[derive(Debug)]
pub struct Split {
    count: u8,
    /// Cumulative weights: variant `i` takes picks below `bounds[i]`.
    bounds: [u8; MAX_VARIANTS],
    targets: [TargetSpan; MAX_VARIANTS],
    /// The valid cookie value of each variant (`TOKEN_LEN` bytes each).
    tokens: [Span; MAX_VARIANTS],
    /// The cookie's name.
    name: Span,
    seed: u64,
}

impl Split {
    /// `variants` are validated: 2 to `MAX_VARIANTS` of them.
    pub(super) fn compile(
        key: &CookieKey,
        link: &LinkRecord,
        by: ChosenBy,
        variants: &[Variant],
        text: &mut TextBuilder,
    ) -> Self {
        let name = match by {
            ChosenBy::Rule(index) => format!("rc_ab_r{index}"),
            _ => "rc_ab".to_owned(),
        };
        let variants = &variants[..variants.len().min(MAX_VARIANTS)];
        let mut split = Self {
            count: variants.len() as u8,
            bounds: [0; MAX_VARIANTS],
            targets: [TargetSpan::default(); MAX_VARIANTS],
            tokens: [Span::default(); MAX_VARIANTS],
            name: text.push(name.as_bytes()),
            seed: link.id ^ (u64::from(by_tag(by)) << 56),
        };
        let mut total = 0u8;
        for (index, variant) in variants.iter().enumerate() {
            total = total.saturating_add(variant.weight);
            split.bounds[index] = total;
            split.targets[index] = text.target(&variant.url);
            split.tokens[index] = text.push(token(key, link, &name, index, variants).as_bytes());
        }
        split
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// A split with the plan text its spans point into.
#[derive(Debug, Clone, Copy)]
pub struct SplitRef<'p> {
    pub(super) split: &'p Split,
    pub(super) text: &'p [u8],
}

impl<'p> SplitRef<'p> {
    /// The variant for this visitor, and whether to (re)set their cookie.
    #[inline]
    pub fn pick(&self, cookie: &[u8], client: Option<IpAddr>, user_agent: &[u8]) -> (usize, bool) {
        let split = self.split;
        let count = split.len();
        if let Some(value) = cookie_value(cookie, split.name.of(self.text))
            && let Some(index) = split.tokens[..count]
                .iter()
                .position(|token| token.of(self.text) == value)
        {
            return (index, false);
        }
        let mut hasher = foldhash::quality::FixedState::with_seed(split.seed).build_hasher();
        match client {
            Some(IpAddr::V4(v4)) => hasher.write(&v4.octets()),
            Some(IpAddr::V6(v6)) => hasher.write(&v6.octets()),
            None => {}
        }
        hasher.write(user_agent);
        let point = (hasher.finish() % 100) as u8;
        let index = split.bounds[..count]
            .iter()
            .position(|&bound| point < bound)
            .unwrap_or(count - 1);
        (index, true)
    }

    pub fn target(&self, index: usize) -> Target<'p> {
        self.split.targets[index].resolve(self.text)
    }

    /// Appends the `Set-Cookie` line (CRLF included) that keeps variant
    /// `index` for the short link `code`.
    #[inline]
    pub fn write_set_cookie(&self, out: &mut Vec<u8>, index: usize, code: &[u8]) {
        out.extend_from_slice(b"Set-Cookie: ");
        out.extend_from_slice(self.split.name.of(self.text));
        out.push(b'=');
        out.extend_from_slice(self.split.tokens[index].of(self.text));
        out.extend_from_slice(b"; Path=/");
        out.extend_from_slice(code);
        out.extend_from_slice(COOKIE_ATTRIBUTES);
    }

    /// The `Set-Cookie` line of variant `index` for `code`, on its own.
    pub fn set_cookie_line(&self, index: usize, code: &[u8]) -> Box<[u8]> {
        let mut line = Vec::with_capacity(96 + code.len());
        self.write_set_cookie(&mut line, index, code);
        line.into()
    }
}

/// What follows a split cookie's path.
const COOKIE_ATTRIBUTES: &[u8] = b"; Max-Age=2592000; HttpOnly; SameSite=Lax\r\n";
const _: () = assert!(COOKIE_MAX_AGE_SECS == 2_592_000);

fn by_tag(by: ChosenBy) -> u8 {
    match by {
        ChosenBy::Rule(index) => index + 1,
        _ => 0,
    }
}

/// The MAC of (link, split, variant, variant list), base64url.
fn token(
    key: &CookieKey,
    link: &LinkRecord,
    name: &str,
    index: usize,
    variants: &[Variant],
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(b"ricochet-ab-v1\0");
    mac.update(&link.id.to_le_bytes());
    mac.update(name.as_bytes());
    mac.update(&[0, index as u8]);
    for variant in variants {
        mac.update(&[variant.weight]);
        mac.update(variant.url.as_bytes());
        mac.update(&[0]);
    }
    let digest = mac.finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&digest[..TOKEN_BYTES])
}

/// The value of the cookie `name` in a Cookie header.
#[inline]
fn cookie_value<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix(b"="))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A split compiled on its own (its text leaked: tests only).
    fn compiled(
        key: &CookieKey,
        link: &LinkRecord,
        by: ChosenBy,
        variants: &[Variant],
    ) -> SplitRef<'static> {
        let mut text = TextBuilder::default();
        let split = Split::compile(key, link, by, variants, &mut text);
        SplitRef {
            split: Box::leak(Box::new(split)),
            text: Box::leak(text.into_bytes().into_boxed_slice()),
        }
    }

    fn link(variants: &[(u8, &str)]) -> (LinkRecord, Vec<Variant>) {
        let record = LinkRecord::new(42, "go.example", "ab", "https://example.com/", 0).unwrap();
        let variants = variants
            .iter()
            .map(|&(weight, url)| Variant {
                url: url.to_owned(),
                weight,
            })
            .collect();
        (record, variants)
    }

    #[test]
    fn picks_follow_the_weights_and_are_deterministic() {
        let key = CookieKey::from_secret("s");
        let (record, variants) = link(&[(20, "https://a.example/"), (80, "https://b.example/")]);
        let split = compiled(&key, &record, ChosenBy::Url, &variants);
        let mut counts = [0usize; 2];
        for n in 0..10_000u32 {
            let ip = IpAddr::from(n.to_be_bytes());
            let (index, set) = split.pick(b"", Some(ip), b"UA");
            assert!(set);
            assert_eq!(
                split.pick(b"", Some(ip), b"UA").0,
                index,
                "same visitor, same pick"
            );
            counts[index] += 1;
        }
        assert!((1_700..2_300).contains(&counts[0]), "{counts:?}");
        let (zero, _) = link(&[(0, "https://a.example/"), (100, "https://b.example/")]);
        let never = compiled(
            &key,
            &zero,
            ChosenBy::Url,
            &link(&[(0, "https://a.example/"), (100, "https://b.example/")]).1,
        );
        for n in 0..1_000u32 {
            assert_eq!(
                never.pick(b"", Some(IpAddr::from(n.to_be_bytes())), b"").0,
                1
            );
        }
    }

    #[test]
    fn a_valid_cookie_keeps_the_variant_and_a_forged_one_does_not() {
        let key = CookieKey::from_secret("s");
        let (record, variants) = link(&[(50, "https://a.example/"), (50, "https://b.example/")]);
        let split = compiled(&key, &record, ChosenBy::Url, &variants);
        for index in 0..2 {
            let line = String::from_utf8(split.set_cookie_line(index, b"ab").to_vec()).unwrap();
            assert!(line.starts_with("Set-Cookie: rc_ab="), "{line}");
            assert!(
                line.ends_with("; Path=/ab; Max-Age=2592000; HttpOnly; SameSite=Lax\r\n"),
                "{line}"
            );
            let pair = line["Set-Cookie: ".len()..].split(';').next().unwrap();
            let header = format!("other=1; {pair}; more=2");
            assert_eq!(split.pick(header.as_bytes(), None, b""), (index, false));
        }
        // A value for another index, key, link or list is not accepted.
        let other_key = compiled(
            &CookieKey::from_secret("t"),
            &record,
            ChosenBy::Url,
            &variants,
        );
        let forged = String::from_utf8(other_key.set_cookie_line(0, b"ab").to_vec()).unwrap();
        let pair = forged["Set-Cookie: ".len()..].split(';').next().unwrap();
        assert!(split.pick(pair.as_bytes(), None, b"").1);
        assert!(split.pick(b"rc_ab=0", None, b"").1);
        assert!(split.pick(b"rc_ab=", None, b"").1);
        let (_, changed) = link(&[(60, "https://a.example/"), (40, "https://b.example/")]);
        let edited = compiled(&key, &record, ChosenBy::Url, &changed);
        let old = String::from_utf8(split.set_cookie_line(0, b"ab").to_vec()).unwrap();
        let pair = old["Set-Cookie: ".len()..].split(';').next().unwrap();
        assert!(
            edited.pick(pair.as_bytes(), None, b"").1,
            "an edited split starts over"
        );
        let rule = compiled(&key, &record, ChosenBy::Rule(2), &variants);
        assert!(
            String::from_utf8_lossy(&rule.set_cookie_line(0, b"ab"))
                .starts_with("Set-Cookie: rc_ab_r2=")
        );
    }
}
