//! Text pieces of a click: the referrer host, UTM fields, values clipped to
//! [`MAX_VALUE`] bytes, case folding without copies.

use super::*;

/// Cuts `text` to at most [`MAX_VALUE`] bytes on a character boundary.
pub fn clip(text: &str) -> &str {
    if text.len() <= MAX_VALUE {
        return text;
    }
    let mut end = MAX_VALUE;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `text` in ASCII lower case, copied only when it has upper-case letters.
pub(super) fn ascii_lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// `text` in ASCII upper case, copied only when it has lower-case letters.
pub(super) fn ascii_uppercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_lowercase()) {
        Cow::Owned(text.to_ascii_uppercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// The host of a Referer header, lowercased, without `www.`; `None` when
/// absent or not an http(s) URL.
pub fn referrer_host(referer: &[u8]) -> Option<Cow<'_, str>> {
    let text = std::str::from_utf8(referer).ok()?.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    let host = host.split(':').next()?.trim_end_matches('.');
    let host = match host.as_bytes().get(..4) {
        Some(prefix) if prefix.eq_ignore_ascii_case(b"www.") => &host[4..],
        _ => host,
    };
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    valid.then(|| ascii_lowercase(host))
}

/// `utm_source`, `utm_medium` and `utm_campaign` from a query string,
/// percent-decoded, clipped; borrowed from the query unless decoding changed
/// them.
pub fn utm_fields(query: &[u8]) -> impl Iterator<Item = (&'static str, Cow<'_, str>)> {
    query.split(|&b| b == b'&').filter_map(|pair| {
        let at = pair.iter().position(|&b| b == b'=')?;
        let name = match &pair[..at] {
            b"utm_source" => "utm_source",
            b"utm_medium" => "utm_medium",
            b"utm_campaign" => "utm_campaign",
            _ => return None,
        };
        let value = match percent_decode(&pair[at + 1..]) {
            Cow::Borrowed(text) => Cow::Borrowed(clip(text.trim())),
            Cow::Owned(text) => {
                let kept = clip(text.trim());
                if kept.len() == text.len() {
                    Cow::Owned(text)
                } else {
                    Cow::Owned(kept.to_owned())
                }
            }
        };
        let keep = !value.is_empty() && !value.chars().any(char::is_control);
        keep.then_some((name, value))
    })
}

/// `input` with `%XX` escapes decoded and `+` as a space; borrowed when it
/// has neither and is valid UTF-8.
pub(super) fn percent_decode(input: &[u8]) -> Cow<'_, str> {
    if !input.iter().any(|&b| matches!(b, b'%' | b'+')) {
        return String::from_utf8_lossy(input);
    }
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if byte == b'%'
            && let Some(hex) = input.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(value) = u8::from_str_radix(text, 16)
        {
            bytes.push(value);
            i += 3;
            continue;
        }
        bytes.push(if byte == b'+' { b' ' } else { byte });
        i += 1;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Cow::Owned(text),
        Err(error) => Cow::Owned(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    }
}
