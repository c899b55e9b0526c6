//! Answers of links with a click limit. A prefetch is declined without
//! taking a use; any other request that would redirect takes one use from the
//! engine's counter, and the redirect is written only once the use is
//! granted (deferred while the counter works), with `Cache-Control:
//! no-store` so no cache repeats it. A reached limit answers the fallback or
//! 410; a counter that cannot answer in time, 503: a limit is a promise.

use crate::behaviour::page::{PAGE_POLICY, UNAVAILABLE_PAGE};
use crate::behaviour::{Compiled, SplitRef, Target};
use crate::clicks::ClickSender;
use crate::clicks::event::ClickEvent;
use crate::http::{DeferredAnswer, Handled, Request, ResponseWriter};
use crate::limits::{ClickLimit, CountError, ReachedMarker, Taken, Taking};
use crate::table::LinkEntry;

use super::{NO_STORE, RedirectHandler, gone, to_fallback, write_location};

/// What the plan chose for this visitor.
pub(super) struct Pick<'p> {
    pub target: Target<'p>,
    /// A split and the variant whose cookie to set.
    pub cookie: Option<(SplitRef<'p>, usize)>,
    /// The packed destination clicks record.
    pub destination: u16,
}

impl RedirectHandler {
    /// Takes a use of `limit`, then redirects, or answers the reached limit
    /// or 503.
    pub(super) fn answer_limited(
        &self,
        request: &Request<'_>,
        response: ResponseWriter<'_>,
        entry: &LinkEntry,
        plan: &Compiled,
        limit: &ClickLimit,
        pick: Pick<'_>,
    ) -> Handled {
        let fallback = plan.fallback().map(|target| target.url());
        if limit.is_reached() {
            return Handled::Answered(limit_reached(response, fallback));
        }
        let Some(counter) = &self.settings.counter else {
            return Handled::Answered(unavailable(response));
        };
        let pending = match counter.take(entry.link_id(), limit.max) {
            Taking::Ready(Ok(Taken::Granted)) => None,
            Taking::Ready(Ok(Taken::Reached)) => {
                limit.mark_reached();
                return Handled::Answered(limit_reached(response, fallback));
            }
            Taking::Ready(Err(_)) => return Handled::Answered(unavailable(response)),
            pending @ Taking::Pending { .. } => Some(pending),
        };
        let mut location = Vec::with_capacity(pick.target.url().len() + request.query.len() + 1);
        write_location(
            &mut location,
            pick.target.url(),
            pick.target.fragment_at(),
            pick.target.has_query(),
            entry.forward_query(),
            request.query,
        );
        let answer = LimitedAnswer {
            status: entry.status(),
            location,
            cookie: (pick.cookie).map(|(split, index)| split.set_cookie_line(index, entry.code())),
            fallback: fallback.map(Box::from),
            reached: limit.marker(),
            click: self.clicks.clone().zip(self.click_event(
                request,
                &response,
                entry,
                pick.destination,
            )),
        };
        let Some(pending) = pending else {
            return Handled::Answered(answer.write(Ok(Taken::Granted), response));
        };
        Handled::Deferred(Box::pin(async move {
            let outcome = pending.outcome().await;
            Box::new(move |response: ResponseWriter<'_>| answer.write(outcome, response))
                as DeferredAnswer
        }))
    }
}

/// Everything a limited link's answer needs once the plan is out of reach.
struct LimitedAnswer {
    status: u16,
    location: Vec<u8>,
    cookie: Option<Box<[u8]>>,
    fallback: Option<Box<[u8]>>,
    reached: ReachedMarker,
    click: Option<(ClickSender, ClickEvent)>,
}

impl LimitedAnswer {
    fn write(self, outcome: Result<Taken, CountError>, response: ResponseWriter<'_>) -> u16 {
        match outcome {
            Ok(Taken::Granted) => {
                if let Some((clicks, event)) = self.click {
                    clicks.send(event);
                }
                let mut head = response.start(self.status).raw_line(NO_STORE);
                let out = head.buffer();
                out.extend_from_slice(b"Location: ");
                out.extend_from_slice(&self.location);
                out.extend_from_slice(b"\r\n");
                if let Some(line) = &self.cookie {
                    head = head.raw_line(line);
                }
                head.finish(b"");
                self.status
            }
            Ok(Taken::Reached) => {
                self.reached.mark();
                limit_reached(response, self.fallback.as_deref())
            }
            Err(_) => unavailable(response),
        }
    }
}

/// The limit is used up: the fallback when the link has one, else 410.
fn limit_reached(response: ResponseWriter<'_>, fallback: Option<&[u8]>) -> u16 {
    match fallback {
        Some(url) => to_fallback(response, url),
        None => gone(response),
    }
}

/// 503 with a small page: the counter did not answer (down, slow, full).
fn unavailable(response: ResponseWriter<'_>) -> u16 {
    response
        .start(503)
        .raw_line(NO_STORE)
        .raw_line(PAGE_POLICY)
        .header(b"Retry-After", b"1")
        .header(b"Content-Type", b"text/html; charset=utf-8")
        .finish(UNAVAILABLE_PAGE);
    503
}

/// A browser prefetch or prerender of a limited link: an error status, so
/// the browser keeps nothing and the visitor's own navigation, if it comes,
/// takes the use (a 2xx such as 204 would be kept in the prefetch cache and
/// shown on navigation).
pub(super) fn decline_prefetch(response: ResponseWriter<'_>) -> u16 {
    response
        .start(503)
        .raw_line(NO_STORE)
        .header(b"Vary", b"Sec-Purpose, Purpose")
        .finish(b"");
    503
}
