//! A small HTTP/1.1 server core shared by the redirect port and the admin port:
//! request parsing is `httparse`'s; this module owns connection handling
//! (keep-alive, pipelining, limits, timeouts) and response framing.

mod clock;
mod conn;
mod response;

use std::future::Future;
use std::pin::Pin;

pub use clock::{BatchClock, Clock};
pub use conn::{ConnectionLimits, serve_connection};
pub use response::{ResponseWriter, status_reason};

/// Request methods the engine distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Only password forms take it; everything else answers 405.
    Post,
    Other,
}

/// One parsed request, borrowed from the connection's read buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    /// The path of the request target, without the query string.
    pub path: &'a [u8],
    /// The query string without its `?`; empty when absent.
    pub query: &'a [u8],
    /// Host: from an absolute-form target, else the Host header.
    pub host: Option<&'a [u8]>,
    /// A browser prefetch or prerender (`Sec-Purpose`/`Purpose` header).
    pub prefetch: bool,
    /// `User-Agent`, `Referer` and `Accept-Language` values (empty when absent).
    pub user_agent: &'a [u8],
    pub referer: &'a [u8],
    pub accept_language: &'a [u8],
    /// `Cookie` value (empty when absent; the last one when repeated).
    pub cookie: &'a [u8],
    /// `X-Forwarded-For` value (empty when absent); trusted only when configured.
    pub forwarded_for: &'a [u8],
    /// `If-None-Match` value (empty when absent): pages answer 304 when it
    /// names their ETag.
    pub if_none_match: &'a [u8],
    /// `Accept-Encoding` value (empty when absent): pages are sent gzipped
    /// when it takes gzip.
    pub accept_encoding: &'a [u8],
    /// The client's address.
    pub peer: Option<std::net::IpAddr>,
    /// Whether the request came over TLS.
    pub secure: bool,
    /// The request body (POST forms; at most `server.max_header_bytes`).
    pub body: &'a [u8],
}

/// An answer written once asynchronous work is done.
pub type DeferredAnswer = Box<dyn for<'w> FnOnce(ResponseWriter<'w>) -> u16>;

/// Work a request needs off the worker's thread (a password check, a
/// click-limit count): the connection awaits it, then writes its answer in
/// the request's place.
pub type Deferred = Pin<Box<dyn Future<Output = DeferredAnswer>>>;

/// What a handler made of one request.
pub enum Handled {
    /// The response is written; its status.
    Answered(u16),
    /// Nothing is written yet: the answer comes when the work is done.
    Deferred(Deferred),
}

/// Answers requests on one connection. Implementations either append exactly
/// one complete response through the [`ResponseWriter`] and return its
/// status, or write nothing and return the work their answer waits on.
pub trait Handler {
    fn handle(&mut self, request: &Request<'_>, response: ResponseWriter<'_>) -> Handled;
}

/// Counts a worker keeps about its connections and responses.
pub trait ConnectionObserver {
    fn response(&self, status: u16);
    fn header_timeout(&self);
    fn idle_timeout(&self);
    fn bad_request(&self);
    /// A request was refused over its client's request rate (429).
    fn request_limited(&self) {}
}
