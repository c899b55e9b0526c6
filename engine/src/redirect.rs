//! The redirect handler: `GET`/`HEAD /{code}` on the request's Host, answered
//! from the link table with the link's status and `Location`. Everything that
//! can be prepared when a link changes is prepared then (see `table::entry`);
//! per request this looks up two hashes and copies a few slices. `POST
//! /{code}` takes a password form; links with a click limit answer once their
//! counter took a use (`limited`).

mod limited;

use std::sync::Arc;

use std::sync::LazyLock;

use crate::behaviour::bio_page::PagePlan;
use crate::behaviour::page::{GONE_PAGE, PAGE_POLICY, password_form};
use crate::behaviour::password::{Refused, Verifier, form_password};
use crate::behaviour::{Choice, Compiled, SplitRef, Target, Visitor};
use crate::clicks::ClickSender;
use crate::clicks::enrich::GeoDatabase;
use crate::clicks::event::ClickEvent;
use crate::http::{Deferred, DeferredAnswer, Handled, Handler, Method, Request, ResponseWriter};
use crate::limits::LimitCounter;
use crate::table::{Answer, LinkEntry, LinkTable, strip_port};
use ricochet_model::behaviour::Chosen;
use ricochet_model::block::BLOCKED_STATUS;
use ricochet_model::validate::{MAX_URL_LEN, is_valid_code};

/// Settings of the redirect handler, rendered once at start.
#[derive(Debug)]
pub struct RedirectSettings {
    /// `Cache-Control` line for 301 and 308 answers, CRLF included.
    permanent_cache_line: Box<[u8]>,
    /// Take the client address for click analytics from the last entry of
    /// `X-Forwarded-For` (set when the engine sits behind a proxy).
    trust_forwarded_for: bool,
    /// The GeoIP database country and city conditions read.
    geo: Option<Arc<GeoDatabase>>,
    /// Checks passwords of protected links off the workers.
    verifier: Option<Arc<Verifier>>,
    /// Counts the uses of links with a click limit; without one, they answer 503.
    counter: Option<Arc<dyn LimitCounter>>,
    /// The port redirects to HTTPS name (none when 443).
    https_port: u16,
}

impl RedirectSettings {
    pub fn new(permanent_max_age_secs: u64) -> Self {
        let line = format!("Cache-Control: public, max-age={permanent_max_age_secs}\r\n");
        Self {
            permanent_cache_line: line.into_bytes().into_boxed_slice(),
            trust_forwarded_for: false,
            geo: None,
            verifier: None,
            counter: None,
            https_port: 443,
        }
    }

    /// The port plain-HTTP requests are sent to on domains with
    /// `https_redirect` (what clients reach the HTTPS listener on).
    pub fn with_https_port(mut self, port: u16) -> Self {
        self.https_port = port;
        self
    }

    pub fn with_counter(mut self, counter: Option<Arc<dyn LimitCounter>>) -> Self {
        self.counter = counter;
        self
    }

    pub fn with_verifier(mut self, verifier: Option<Arc<Verifier>>) -> Self {
        self.verifier = verifier;
        self
    }

    pub fn with_geo(mut self, geo: Option<Arc<GeoDatabase>>) -> Self {
        self.geo = geo;
        self
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
    fn handle(&mut self, request: &Request<'_>, response: ResponseWriter<'_>) -> Handled {
        if matches!(request.method, Method::Post | Method::Other) {
            if request.method == Method::Post
                && let Some(work) = self.check_password(request)
            {
                return Handled::Deferred(work);
            }
            response
                .start(405)
                .header(b"Allow", b"GET, HEAD")
                .header(b"Content-Type", b"text/plain; charset=utf-8")
                .finish(b"method not allowed\n");
            return Handled::Answered(405);
        }
        let reader = self.table.reader();
        let Some(domain) = reader.domain_for_host(request.host) else {
            if let Some(token) = acme_token(request.path)
                && let Some(answer) = self.table.tls().current().http01(token)
            {
                return Handled::Answered(acme_answer(response, answer));
            }
            return Handled::Answered(not_found(response));
        };
        let transport = reader.transport(domain);
        let response = match transport {
            None => response.with_line(b""),
            Some(transport) if !request.secure => {
                if transport.https_redirect && !request.path.starts_with(ACME_CHALLENGE_PATH) {
                    return Handled::Answered(to_https(
                        response,
                        request,
                        self.settings.https_port,
                    ));
                }
                response.with_line(b"")
            }
            Some(transport) => response.with_line(transport.hsts.as_deref().unwrap_or_default()),
        };
        let code = request.path.strip_prefix(b"/").filter(|c| is_valid_code(c));
        let Some(entry) = code.and_then(|code| reader.get(domain, code)) else {
            if let Some(token) = acme_token(request.path)
                && let Some(answer) = self.table.tls().current().http01(token)
            {
                return Handled::Answered(acme_answer(response, answer));
            }
            let root = request.path == b"/";
            // A domain dedicated to a page answers its root with the page.
            if root
                && let Some(entry) = reader.root_page(domain)
                && let Some(plan) = entry.plan()
            {
                return self.answer_planned(request, response, entry, plan);
            }
            // The domain's settings say where its root and unknown codes go.
            return Handled::Answered(match reader.miss(domain, root) {
                Some(url) => to_fallback(response, url),
                None => not_found(response),
            });
        };
        if let Some(plan) = entry.plan() {
            return self.answer_planned(request, response, entry, plan);
        }
        if entry.answer(response.clock().now_ms) == Answer::Gone {
            return Handled::Answered(gone(response));
        }

        let status = entry.status();
        self.count(request, &response, entry, Chosen::NONE);
        let mut head = response.start(status);
        let out = head.buffer();
        out.extend_from_slice(b"Location: ");
        write_location(
            out,
            entry.url(),
            entry.fragment_at(),
            entry.url_has_query(),
            entry.forward_query(),
            request.query,
        );
        out.extend_from_slice(b"\r\n");
        if status == 301 || status == 308 {
            head = head.raw_line(&self.settings.permanent_cache_line);
        }
        head.finish(b"");
        Handled::Answered(status)
    }
}

impl RedirectHandler {
    /// A password form's POST: checked on the verifier thread, answered 303
    /// back to the link with a pass, 403 with the form again, 429 or 503.
    /// `None` when the link has no password (the POST then gets 405).
    fn check_password(&self, request: &Request<'_>) -> Option<Deferred> {
        let code = request
            .path
            .strip_prefix(b"/")
            .filter(|c| is_valid_code(c))?;
        let reader = self.table.reader();
        let entry = reader.get(reader.domain_for_host(request.host)?, code)?;
        let plan = entry.plan()?;
        let now = ricochet_model::now_millis();
        if entry.answer(now) == Answer::Gone {
            return None;
        }
        let gate = plan.password.as_ref()?;
        let Some(password) = form_password(request.body) else {
            return Some(ready(page_answer(400, &FORM_EMPTY, None)));
        };
        let Some(verifier) = &self.settings.verifier else {
            return Some(ready(page_answer(
                503,
                &FORM_BUSY,
                Some(b"Retry-After: 1\r\n"),
            )));
        };
        let answer = match verifier.submit(gate, self.client(request), password) {
            Ok(answer) => answer,
            Err(Refused::TooMany) => {
                return Some(ready(page_answer(
                    429,
                    &FORM_TOO_MANY,
                    Some(b"Retry-After: 60\r\n"),
                )));
            }
            Err(Refused::Busy) => {
                return Some(ready(page_answer(
                    503,
                    &FORM_BUSY,
                    Some(b"Retry-After: 1\r\n"),
                )));
            }
        };
        let mut location = Vec::with_capacity(request.path.len() + request.query.len() + 1);
        location.extend_from_slice(request.path);
        if !request.query.is_empty() {
            location.push(b'?');
            if !append_query(&mut location, request.query) || location.len() > MAX_URL_LEN {
                location.truncate(request.path.len());
            }
        }
        let pass = gate.pass_line(now);
        Some(Box::pin(async move {
            match answer.await {
                Ok(true) => Box::new(move |response: ResponseWriter<'_>| -> u16 {
                    let mut head = response.start(303).raw_line(NO_STORE).raw_line(&pass);
                    let out = head.buffer();
                    out.extend_from_slice(b"Location: ");
                    out.extend_from_slice(&location);
                    out.extend_from_slice(b"\r\n");
                    head.finish(b"");
                    303
                }) as DeferredAnswer,
                Ok(false) => page_answer(403, &FORM_WRONG, None),
                Err(_) => page_answer(503, &FORM_BUSY, Some(b"Retry-After: 1\r\n")),
            }
        }))
    }
}

static FORM: LazyLock<Vec<u8>> = LazyLock::new(|| password_form(None));
static FORM_EMPTY: LazyLock<Vec<u8>> = LazyLock::new(|| password_form(Some("Enter the password.")));
static FORM_WRONG: LazyLock<Vec<u8>> =
    LazyLock::new(|| password_form(Some("That password is not right. Try again.")));
static FORM_TOO_MANY: LazyLock<Vec<u8>> =
    LazyLock::new(|| password_form(Some("Too many attempts. Wait a minute, then try again.")));
static FORM_BUSY: LazyLock<Vec<u8>> =
    LazyLock::new(|| password_form(Some("The server is busy. Try again in a moment.")));

fn ready(answer: DeferredAnswer) -> Deferred {
    Box::pin(std::future::ready(answer))
}

/// An HTML page answer (the password form in one of its states).
fn page_answer(
    status: u16,
    page: &'static LazyLock<Vec<u8>>,
    extra: Option<&'static [u8]>,
) -> DeferredAnswer {
    Box::new(move |response: ResponseWriter<'_>| -> u16 {
        let mut head = response
            .start(status)
            .raw_line(NO_STORE)
            .raw_line(PAGE_POLICY);
        if let Some(line) = extra {
            head = head.raw_line(line);
        }
        head.header(b"Content-Type", b"text/html; charset=utf-8")
            .finish(page);
        status
    })
}

impl RedirectHandler {
    /// The client address clicks and rules see.
    #[inline]
    fn client(&self, request: &Request<'_>) -> Option<std::net::IpAddr> {
        match self.settings.trust_forwarded_for {
            true => forwarded_client(request.forwarded_for).or(request.peer),
            false => request.peer,
        }
    }

    /// Hands a click to the shard's actor: a GET that is not a browser
    /// prefetch (HEAD never counts).
    #[inline]
    fn count(
        &self,
        request: &Request<'_>,
        response: &ResponseWriter<'_>,
        entry: &LinkEntry,
        destination: u16,
    ) {
        if let Some(clicks) = &self.clicks
            && let Some(event) = self.click_event(request, response, entry, destination)
        {
            clicks.send(event);
        }
    }

    /// The click a GET that is not a browser prefetch makes, when clicks are
    /// captured.
    #[inline]
    fn click_event(
        &self,
        request: &Request<'_>,
        response: &ResponseWriter<'_>,
        entry: &LinkEntry,
        destination: u16,
    ) -> Option<ClickEvent> {
        if self.clicks.is_none() || request.method != Method::Get || request.prefetch {
            return None;
        }
        Some(
            ClickEvent::new(
                entry.link_id(),
                response.clock().now_ms,
                self.client(request),
                request.user_agent,
                request.referer,
                request.accept_language,
                request.query,
            )
            .with_destination(destination),
        )
    }

    /// A link with a plan: fallback, password, card, click limit, rules and splits.
    fn answer_planned(
        &self,
        request: &Request<'_>,
        response: ResponseWriter<'_>,
        entry: &LinkEntry,
        plan: &Compiled,
    ) -> Handled {
        if let Some(page) = &plan.blocked {
            return Handled::Answered(blocked(response, page));
        }
        let now = response.clock().now_ms;
        if entry.answer(now) == Answer::Gone {
            return Handled::Answered(match plan.fallback() {
                Some(fallback) => to_fallback(response, fallback.url()),
                None => gone(response),
            });
        }
        if let Some(page) = &plan.page {
            return Handled::Answered(self.answer_page(request, response, entry, page, now));
        }
        if let Some(gate) = &plan.password
            && !gate.admits(request.cookie, now)
        {
            response
                .start(200)
                .raw_line(NO_STORE)
                .raw_line(PAGE_POLICY)
                .header(b"Content-Type", b"text/html; charset=utf-8")
                .finish(&FORM);
            return Handled::Answered(200);
        }
        let mut visitor = Visitor::new(
            request.user_agent,
            request.accept_language,
            request.query,
            request.cookie,
            self.client(request),
            now,
            self.settings.geo.as_deref(),
        );
        if let Some(card) = &plan.card
            && visitor.agent().crawler
        {
            let destination = if plan.varies {
                Chosen::url().pack()
            } else {
                Chosen::NONE
            };
            self.count(request, &response, entry, destination);
            response
                .start(200)
                .raw_line(NO_STORE)
                .raw_line(PAGE_POLICY)
                .header(b"Content-Type", b"text/html; charset=utf-8")
                .finish(card);
            return Handled::Answered(200);
        }
        if plan.limit.is_some() && request.prefetch {
            return Handled::Answered(limited::decline_prefetch(response));
        }
        let (by, choice) = plan.choose(&mut visitor);
        // A split names the variant, and the cookie to set when the visitor
        // has no valid one.
        let (target, variant, cookie): (Target<'_>, Option<u8>, Option<(SplitRef<'_>, usize)>) =
            match choice {
                Choice::One(target) => (target, None, None),
                Choice::Split(split) => {
                    let (index, set) =
                        split.pick(visitor.cookie, visitor.client, visitor.user_agent);
                    (
                        split.target(index),
                        Some(index as u8),
                        set.then_some((split, index)),
                    )
                }
            };
        let destination = match plan.varies {
            true => Chosen { by, variant }.pack(),
            false => Chosen::NONE,
        };
        if let Some(limit) = &plan.limit {
            let pick = limited::Pick {
                target,
                cookie,
                destination,
            };
            return self.answer_limited(request, response, entry, plan, limit, pick);
        }
        self.count(request, &response, entry, destination);
        let status = entry.status();
        let mut head = response.start(status);
        let out = head.buffer();
        out.extend_from_slice(b"Location: ");
        write_location(
            out,
            target.url(),
            target.fragment_at(),
            target.has_query(),
            entry.forward_query(),
            request.query,
        );
        out.extend_from_slice(b"\r\n");
        if let Some((split, index)) = cookie {
            split.write_set_cookie(out, index, entry.code());
        }
        // An answer that depends on the visitor must not be cached for others.
        if plan.varies {
            head = head.raw_line(PRIVATE_NO_CACHE);
        } else if status == 301 || status == 308 {
            head = head.raw_line(&self.settings.permanent_cache_line);
        }
        head.finish(b"");
        Handled::Answered(status)
    }
}

const PRIVATE_NO_CACHE: &[u8] = b"Cache-Control: private, no-cache\r\n";

impl RedirectHandler {
    /// A link-in-bio page: the document of this instant, or 304 when the
    /// visitor's copy is current. A GET counts as a view (`page_view`),
    /// revalidations too.
    fn answer_page(
        &self,
        request: &Request<'_>,
        response: ResponseWriter<'_>,
        entry: &LinkEntry,
        page: &PagePlan,
        now: i64,
    ) -> u16 {
        let rendition = page.at(now);
        self.count(request, &response, entry, Chosen::page_view().pack());
        let sent = rendition.for_client(request.accept_encoding);
        if !request.if_none_match.is_empty() && rendition.matches(request.if_none_match) {
            let mut head = response.start(304);
            sent.write_etag(head.buffer());
            head.raw_line(sent.not_modified_lines())
                .finish_without_body(sent.body().len());
            return 304;
        }
        let mut head = response.start(200);
        sent.write_etag(head.buffer());
        head.raw_line(sent.lines()).finish(sent.body());
        200
    }
}

/// Writes the destination, with the request's query appended when the link
/// forwards it. A query with an encoded control byte, or one making the
/// Location longer than a stored destination may be, gets the destination alone.
#[inline]
fn write_location(
    out: &mut Vec<u8>,
    url: &[u8],
    fragment: usize,
    url_has_query: bool,
    forward_query: bool,
    query: &[u8],
) {
    if forward_query && !query.is_empty() {
        let start = out.len();
        out.extend_from_slice(&url[..fragment]);
        out.push(if url_has_query { b'&' } else { b'?' });
        let clean = append_query(out, query);
        out.extend_from_slice(&url[fragment..]);
        if !clean || out.len() - start > MAX_URL_LEN {
            out.truncate(start);
            out.extend_from_slice(url);
        }
    } else {
        out.extend_from_slice(url);
    }
}

/// 302 to a gone link's fallback or a domain's root or unknown-code
/// destination, not cached.
fn to_fallback(response: ResponseWriter<'_>, url: &[u8]) -> u16 {
    let mut head = response.start(302).raw_line(NO_STORE);
    let out = head.buffer();
    out.extend_from_slice(b"Location: ");
    out.extend_from_slice(url);
    out.extend_from_slice(b"\r\n");
    head.finish(b"");
    302
}

/// Where ACME HTTP-01 challenges are asked (RFC 8555 section 8.3).
const ACME_CHALLENGE_PATH: &[u8] = b"/.well-known/acme-challenge/";

/// The token of an HTTP-01 challenge path.
#[inline]
fn acme_token(path: &[u8]) -> Option<&[u8]> {
    path.strip_prefix(ACME_CHALLENGE_PATH)
}

/// 200 with a challenge's key authorization.
fn acme_answer(response: ResponseWriter<'_>, key_authorization: &[u8]) -> u16 {
    response
        .start(200)
        .raw_line(NO_STORE)
        .header(b"Content-Type", b"application/octet-stream")
        .finish(key_authorization);
    200
}

/// 308 to the same host, path and query over HTTPS.
fn to_https(response: ResponseWriter<'_>, request: &Request<'_>, port: u16) -> u16 {
    let host = request.host.map(strip_port).unwrap_or_default();
    let mut head = response.start(308).raw_line(NO_STORE);
    let out = head.buffer();
    out.extend_from_slice(b"Location: https://");
    out.extend_from_slice(host);
    if port != 443 {
        out.extend_from_slice(format!(":{port}").as_bytes());
    }
    out.extend_from_slice(request.path);
    if !request.query.is_empty() {
        out.push(b'?');
        out.extend_from_slice(request.query);
    }
    out.extend_from_slice(b"\r\n");
    head.finish(b"");
    308
}

/// 410 with a small HTML page: disabled, deleted, expired, limit reached.
fn gone(response: ResponseWriter<'_>) -> u16 {
    response
        .start(410)
        .raw_line(NO_STORE)
        .raw_line(PAGE_POLICY)
        .header(b"Content-Type", b"text/html; charset=utf-8")
        .finish(GONE_PAGE);
    410
}

/// A blocked link's page: 451, never cached (the block may be lifted).
fn blocked(response: ResponseWriter<'_>, page: &[u8]) -> u16 {
    response
        .start(BLOCKED_STATUS)
        .raw_line(NO_STORE)
        .raw_line(PAGE_POLICY)
        .header(b"Content-Type", b"text/html; charset=utf-8")
        .finish(page);
    BLOCKED_STATUS
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
