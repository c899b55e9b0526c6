//! The redirect handler: `GET`/`HEAD /{code}` on the request's Host, answered
//! from the link table with the link's status and `Location`. Everything that
//! can be prepared when a link changes is prepared then (see `table::entry`);
//! per request this looks up two hashes and copies a few slices.

use std::sync::Arc;

use crate::clicks::ClickSender;
use crate::clicks::event::ClickEvent;
use crate::http::{Handler, Method, Request, ResponseWriter};
use crate::table::{Answer, LinkTable};
use ricochet_model::validate::{MAX_URL_LEN, is_valid_code};

/// Settings of the redirect handler, rendered once at start.
#[derive(Debug)]
pub struct RedirectSettings {
    /// `Cache-Control` line for 301 and 308 answers, CRLF included.
    permanent_cache_line: Box<[u8]>,
    /// Take the client address for click analytics from the last entry of
    /// `X-Forwarded-For` (set when the engine sits behind a proxy).
    trust_forwarded_for: bool,
}

impl RedirectSettings {
    pub fn new(permanent_max_age_secs: u64) -> Self {
        let line = format!("Cache-Control: public, max-age={permanent_max_age_secs}\r\n");
        Self {
            permanent_cache_line: line.into_bytes().into_boxed_slice(),
            trust_forwarded_for: false,
        }
    }

    pub fn trusting_forwarded_for(mut self, trust: bool) -> Self {
        self.trust_forwarded_for = trust;
        self
    }
}

/// The client address a proxy recorded: the last valid entry of `X-Forwarded-For`.
fn forwarded_client(value: &[u8]) -> Option<std::net::IpAddr> {
    let text = std::str::from_utf8(value).ok()?;
    text.rsplit(',').find_map(|entry| entry.trim().parse().ok())
}

/// One connection's redirect handler.
#[derive(Debug, Clone)]
pub struct RedirectHandler {
    table: Arc<LinkTable>,
    settings: Arc<RedirectSettings>,
    /// This shard's click actor, when click capture is on.
    clicks: Option<ClickSender>,
}

impl RedirectHandler {
    pub fn new(
        table: Arc<LinkTable>,
        settings: Arc<RedirectSettings>,
        clicks: Option<ClickSender>,
    ) -> Self {
        Self {
            table,
            settings,
            clicks,
        }
    }
}

const NO_STORE: &[u8] = b"Cache-Control: no-store\r\n";

impl Handler for RedirectHandler {
    #[inline]
    fn handle(&mut self, request: &Request<'_>, response: ResponseWriter<'_>) -> u16 {
        if request.method == Method::Other {
            response
                .start(405)
                .header(b"Allow", b"GET, HEAD")
                .header(b"Content-Type", b"text/plain; charset=utf-8")
                .finish(b"method not allowed\n");
            return 405;
        }
        let Some(code) = request.path.strip_prefix(b"/").filter(|c| is_valid_code(c)) else {
            return not_found(response);
        };
        let reader = self.table.reader();
        let Some(domain) = reader.domain_for_host(request.host) else {
            return not_found(response);
        };
        let Some(entry) = reader.get(domain, code) else {
            return not_found(response);
        };
        if entry.answer(response.clock().now_ms) == Answer::Gone {
            response
                .start(410)
                .raw_line(NO_STORE)
                .header(b"Content-Type", b"text/plain; charset=utf-8")
                .finish(b"this link is no longer available\n");
            return 410;
        }

        let status = entry.status();
        // A click: a GET that is not a browser prefetch (HEAD never counts).
        if let Some(clicks) = &self.clicks
            && request.method == Method::Get
            && !request.prefetch
        {
            let client = match self.settings.trust_forwarded_for {
                true => forwarded_client(request.forwarded_for).or(request.peer),
                false => request.peer,
            };
            clicks.send(ClickEvent::new(
                entry.link_id(),
                response.clock().now_ms,
                client,
                request.user_agent,
                request.referer,
                request.accept_language,
                request.query,
            ));
        }
        let mut head = response.start(status);
        let out = head.buffer();
        out.extend_from_slice(b"Location: ");
        let url = entry.url();
        if entry.forward_query() && !request.query.is_empty() {
            let start = out.len();
            let fragment = entry.fragment_at();
            out.extend_from_slice(&url[..fragment]);
            out.push(if entry.url_has_query() { b'&' } else { b'?' });
            let clean = append_query(out, request.query);
            out.extend_from_slice(&url[fragment..]);
            // A query with an encoded control byte, or a Location longer than
            // a stored destination may be, gets the destination alone.
            if !clean || out.len() - start > MAX_URL_LEN {
                out.truncate(start);
                out.extend_from_slice(url);
            }
        } else {
            out.extend_from_slice(url);
        }
        out.extend_from_slice(b"\r\n");
        if status == 301 || status == 308 {
            head = head.raw_line(&self.settings.permanent_cache_line);
        }
        head.finish(b"");
        status
    }
}

fn not_found(response: ResponseWriter<'_>) -> u16 {
    response
        .start(404)
        .raw_line(NO_STORE)
        .header(b"Content-Type", b"text/plain; charset=utf-8")
        .finish(b"no link here\n");
    404
}

/// Appends an incoming query string, percent-encoding any byte that is not
/// visible ASCII (and `#`), so nothing a client sends can end the header.
/// Returns false, with `out` part written, when the query holds a NUL, LF or
/// CR, raw or encoded (`%00`, `%0A`, `%0D`: what a stored destination may
/// not hold either); the caller then answers the destination alone.
#[inline]
fn append_query(out: &mut Vec<u8>, query: &[u8]) -> bool {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for (at, &byte) in query.iter().enumerate() {
        if (0x21..=0x7e).contains(&byte) && byte != b'#' {
            if byte == b'%' && encoded_control_at(query, at) {
                return false;
            }
            out.push(byte);
        } else if matches!(byte, 0 | b'\n' | b'\r') {
            return false;
        } else {
            out.extend_from_slice(&[b'%', HEX[(byte >> 4) as usize], HEX[(byte & 15) as usize]]);
        }
    }
    true
}

/// Whether the `%` at `at` starts `%00`, `%0A` or `%0D` (any case).
#[inline]
fn encoded_control_at(query: &[u8], at: usize) -> bool {
    query.get(at + 1) == Some(&b'0')
        && matches!(query.get(at + 2), Some(b'0' | b'a' | b'A' | b'd' | b'D'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_takes_the_last_valid_address() {
        assert_eq!(
            forwarded_client(b"203.0.113.9"),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            forwarded_client(b"10.0.0.1, 198.51.100.7 , junk"),
            Some("198.51.100.7".parse().unwrap())
        );
        assert_eq!(
            forwarded_client(b"2001:db8::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(forwarded_client(b"nonsense"), None);
        assert_eq!(forwarded_client(b""), None);
    }

    #[test]
    fn query_bytes_are_made_header_safe() {
        let mut out = Vec::new();
        assert!(append_query(&mut out, b"a=1&b= #\xff\x01%41"));
        assert_eq!(out, b"a=1&b=%20%23%FF%01%41");
        for control in [
            &b"a=\r"[..],
            b"a=\n",
            b"a=\x00",
            b"a=%00",
            b"a=%0a",
            b"a=%0D",
            b"%0d",
        ] {
            assert!(!append_query(&mut Vec::new(), control), "{control:?}");
        }
        assert!(append_query(&mut Vec::new(), b"a=%0"));
        assert!(append_query(&mut Vec::new(), b"a=%0b%"));
    }
}
