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

use super::compile::Target;
use super::key::CookieKey;

/// How long a visitor keeps their variant.
pub const COOKIE_MAX_AGE_SECS: u64 = 30 * 24 * 3600;
/// Bytes of MAC kept in a cookie value (base64url: 16 characters).
const TOKEN_BYTES: usize = 12;

/// One compiled split.
#[derive(Debug)]
pub struct Split {
    pub(super) targets: Box<[Target]>,
    /// Cumulative weights: variant `i` takes picks below `bounds[i]`.
    bounds: Box<[u8]>,
    /// The valid cookie value of each variant.
    tokens: Box<[Box<[u8]>]>,
    /// The `Set-Cookie` line (CRLF included) of each variant.
    set_cookie: Box<[Box<[u8]>]>,
    /// `name=` of the cookie.
    cookie_prefix: Box<[u8]>,
    seed: u64,
}

impl Split {
    pub fn compile(key: &CookieKey, link: &LinkRecord, by: ChosenBy, variants: &[Variant]) -> Self {
        let name = match by {
            ChosenBy::Rule(index) => format!("rc_ab_r{index}"),
            _ => "rc_ab".to_owned(),
        };
        let mut bounds = Vec::with_capacity(variants.len());
        let mut total = 0u8;
        for variant in variants {
            total = total.saturating_add(variant.weight);
            bounds.push(total);
        }
        let tokens: Vec<Box<[u8]>> = (0..variants.len())
            .map(|index| token(key, link, &name, index, variants).into_bytes().into())
            .collect();
        let set_cookie = tokens
            .iter()
            .map(|token| {
                format!(
                    "Set-Cookie: {name}={}; Path=/{}; Max-Age={COOKIE_MAX_AGE_SECS}; HttpOnly; SameSite=Lax\r\n",
                    String::from_utf8_lossy(token),
                    link.code
                )
                .into_bytes()
                .into_boxed_slice()
            })
            .collect();
        Self {
            targets: variants.iter().map(|v| Target::new(&v.url)).collect(),
            bounds: bounds.into(),
            tokens: tokens.into(),
            set_cookie,
            cookie_prefix: format!("{name}=").into_bytes().into(),
            seed: link.id ^ (u64::from(by_tag(by)) << 56),
        }
    }

    /// The variant for this visitor, and whether to (re)set their cookie.
    #[inline]
    pub fn pick(&self, cookie: &[u8], client: Option<IpAddr>, user_agent: &[u8]) -> (usize, bool) {
        if let Some(value) = cookie_value(cookie, &self.cookie_prefix)
            && let Some(index) = self.tokens.iter().position(|token| **token == *value)
        {
            return (index, false);
        }
        let mut hasher = foldhash::quality::FixedState::with_seed(self.seed).build_hasher();
        match client {
            Some(IpAddr::V4(v4)) => hasher.write(&v4.octets()),
            Some(IpAddr::V6(v6)) => hasher.write(&v6.octets()),
            None => {}
        }
        hasher.write(user_agent);
        let point = (hasher.finish() % 100) as u8;
        let index = self
            .bounds
            .iter()
            .position(|&bound| point < bound)
            .unwrap_or(self.bounds.len() - 1);
        (index, true)
    }

    pub fn target(&self, index: usize) -> &Target {
        &self.targets[index]
    }

    pub fn set_cookie_line(&self, index: usize) -> &[u8] {
        &self.set_cookie[index]
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

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

/// The value of the cookie `prefix` (`name=`) in a Cookie header.
#[inline]
fn cookie_value<'a>(header: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    header
        .split(|&b| b == b';')
        .map(<[u8]>::trim_ascii)
        .find_map(|pair| pair.strip_prefix(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let split = Split::compile(&key, &record, ChosenBy::Url, &variants);
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
        let never = Split::compile(
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
        let split = Split::compile(&key, &record, ChosenBy::Url, &variants);
        for index in 0..2 {
            let line = String::from_utf8(split.set_cookie_line(index).to_vec()).unwrap();
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
        let other_key = Split::compile(
            &CookieKey::from_secret("t"),
            &record,
            ChosenBy::Url,
            &variants,
        );
        let forged = String::from_utf8(other_key.set_cookie_line(0).to_vec()).unwrap();
        let pair = forged["Set-Cookie: ".len()..].split(';').next().unwrap();
        assert!(split.pick(pair.as_bytes(), None, b"").1);
        assert!(split.pick(b"rc_ab=0", None, b"").1);
        assert!(split.pick(b"rc_ab=", None, b"").1);
        let (_, changed) = link(&[(60, "https://a.example/"), (40, "https://b.example/")]);
        let edited = Split::compile(&key, &record, ChosenBy::Url, &changed);
        let old = String::from_utf8(split.set_cookie_line(0).to_vec()).unwrap();
        let pair = old["Set-Cookie: ".len()..].split(';').next().unwrap();
        assert!(
            edited.pick(pair.as_bytes(), None, b"").1,
            "an edited split starts over"
        );
        let rule = Split::compile(&key, &record, ChosenBy::Rule(2), &variants);
        assert!(
            String::from_utf8_lossy(rule.set_cookie_line(0)).starts_with("Set-Cookie: rc_ab_r2=")
        );
    }
}
