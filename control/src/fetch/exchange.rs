//! What is fetched and what comes back: [`FetchRequest`] (a method, a URL,
//! headers, a body) and [`Fetched`] (status, headers, a body cut at the
//! policy's limit).

use url::Url;

/// Methods the fetcher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// One request to fetch, redirects included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub method: Method,
    pub url: String,
    /// Sent on every hop; `Authorization` and `Cookie` only to the first
    /// request's origin.
    pub headers: Vec<(String, String)>,
    /// Sent with `POST` (and kept by 307 and 308 redirects).
    pub body: Vec<u8>,
}

impl FetchRequest {
    pub fn get(url: &str) -> Self {
        Self {
            method: Method::Get,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn post(url: &str, body: Vec<u8>) -> Self {
        Self {
            method: Method::Post,
            body,
            ..Self::get(url)
        }
    }

    /// This request with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The final answer of a fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: u16,
    /// Headers whose values are text, names lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// At most the policy's `max_body_bytes`.
    pub body: Vec<u8>,
    /// The body went on past `max_body_bytes` (the rest was not read).
    pub truncated: bool,
    /// Redirects followed to get here.
    pub redirects: u8,
}

impl Fetched {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The media type of `Content-Type`, lowercase, without parameters
    /// (`text/html`).
    pub fn media_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        let media = value.split(';').next()?.trim().to_ascii_lowercase();
        (!media.is_empty()).then_some(media)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}
