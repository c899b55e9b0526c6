//! [`Fetcher`]: one request under a [`FetchPolicy`], hop by hop. Each hop
//! checks the URL's scheme, resolves its host through the [`HostResolver`]
//! hook, refuses it unless every address is allowed, then has ureq connect
//! to exactly those addresses (no second lookup) without following
//! redirects itself. A redirect starts the next hop with the same checks.

use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::http;
use ureq::unversioned::transport::DefaultConnector;
use url::{Host, Url};

use super::error::FetchError;
use super::exchange::{FetchRequest, Fetched, Method};
use super::pinned::PinnedResolver;
use super::policy::FetchPolicy;
use super::resolve::{HostResolver, SystemResolver};

/// Headers sent only to the origin the request started at.
const ORIGIN_ONLY_HEADERS: &[&str] = &["authorization", "cookie", "proxy-authorization"];

/// Fetches URLs under a policy.
#[derive(Debug, Clone)]
pub struct Fetcher {
    policy: FetchPolicy,
    resolver: Arc<dyn HostResolver>,
}

impl Fetcher {
    /// With the system's resolver.
    pub fn new(policy: FetchPolicy) -> Self {
        Self::with_resolver(policy, Arc::new(SystemResolver))
    }

    pub fn with_resolver(policy: FetchPolicy, resolver: Arc<dyn HostResolver>) -> Self {
        Self { policy, resolver }
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Whether `url` could be fetched: an http(s) URL whose host is, or
    /// resolves to, only allowed addresses. Checked again at every fetch
    /// (a name may point elsewhere by then).
    pub fn check_url(&self, url: &str) -> Result<(), FetchError> {
        let url = Url::parse(url).map_err(|_| FetchError::InvalidUrl)?;
        self.pin(&url, Instant::now() + self.policy.timeout)
            .map(|_| ())
    }

    /// Sends `request` and follows redirects within the policy's time limit.
    pub fn fetch(&self, request: &FetchRequest) -> Result<Fetched, FetchError> {
        self.fetch_by(request, Instant::now() + self.policy.timeout)
    }

    /// As [`fetch`](Self::fetch), ending by `deadline` when that comes
    /// before the policy's time limit (callers sharing one budget).
    pub fn fetch_by(
        &self,
        request: &FetchRequest,
        deadline: Instant,
    ) -> Result<Fetched, FetchError> {
        let deadline = deadline.min(Instant::now() + self.policy.timeout);
        let first = Url::parse(&request.url).map_err(|_| FetchError::InvalidUrl)?;
        let mut hop = Hop {
            url: first.clone(),
            method: request.method,
            body: request.body.clone(),
        };
        let mut redirects = 0u8;
        loop {
            let addresses = self.pin(&hop.url, deadline)?;
            let same_origin = hop.url.origin() == first.origin();
            let headers = request.headers.iter().filter(|(name, _)| {
                same_origin || !ORIGIN_ONLY_HEADERS.contains(&name.to_ascii_lowercase().as_str())
            });
            let response = self.exchange(&hop, headers, addresses, deadline)?;
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .filter(|_| matches!(status, 301 | 302 | 303 | 307 | 308));
            let Some(location) = location else {
                return self.finish(hop.url, response, redirects, deadline);
            };
            let host = host_name(&hop.url);
            let next = location
                .to_str()
                .ok()
                .and_then(|location| hop.url.join(location).ok())
                .ok_or(FetchError::BadRedirect { host })?;
            if redirects == self.policy.max_redirects {
                return Err(FetchError::TooManyRedirects {
                    max: self.policy.max_redirects,
                });
            }
            redirects += 1;
            // 303, and 301/302 after a POST, continue as a GET (as browsers
            // do); 307 and 308 repeat the request as it was.
            if status == 303 || (matches!(status, 301 | 302) && hop.method == Method::Post) {
                hop.method = Method::Get;
                hop.body.clear();
            }
            hop.url = next;
        }
    }

    /// The checked addresses `url` may be connected at: its IP literal, or
    /// every address its name resolves to, each allowed by the policy.
    fn pin(&self, url: &Url, deadline: Instant) -> Result<Vec<SocketAddr>, FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Scheme {
                scheme: url.scheme().to_owned(),
            });
        }
        let port = url.port_or_known_default().ok_or(FetchError::InvalidUrl)?;
        let name = host_name(url);
        let addresses: Vec<IpAddr> = match url.host().ok_or(FetchError::InvalidUrl)? {
            Host::Ipv4(v4) => vec![IpAddr::V4(v4)],
            Host::Ipv6(v6) => vec![IpAddr::V6(v6)],
            Host::Domain(domain) => {
                let left = self.time_left(deadline)?;
                self.resolver
                    .resolve(domain, left)
                    .map_err(|error| match error.kind() {
                        std::io::ErrorKind::TimedOut => FetchError::Timeout {
                            limit: self.policy.timeout,
                        },
                        _ => FetchError::Unresolved {
                            host: name.clone(),
                            reason: error.to_string(),
                        },
                    })?
            }
        };
        if addresses.is_empty() {
            return Err(FetchError::Unresolved {
                host: name,
                reason: "no address".into(),
            });
        }
        // One address not allowed refuses the host: no partial trust in a
        // name that also points inside.
        for &address in &addresses {
            if let Err(range) = self.policy.check(address) {
                return Err(FetchError::NotPublic {
                    host: name,
                    address,
                    range,
                });
            }
        }
        Ok(addresses
            .into_iter()
            .map(|address| SocketAddr::new(address, port))
            .collect())
    }

    /// One request to `hop.url` at `addresses`, redirects not followed.
    fn exchange<'a>(
        &self,
        hop: &Hop,
        headers: impl Iterator<Item = &'a (String, String)>,
        addresses: Vec<SocketAddr>,
        deadline: Instant,
    ) -> Result<http::Response<ureq::Body>, FetchError> {
        let config = ureq::Agent::config_builder()
            .proxy(None)
            .max_redirects(0)
            .http_status_as_error(false)
            .save_redirect_history(false)
            .user_agent(self.policy.user_agent.as_str())
            // Identity bodies only: the cap counts the bytes that arrive.
            .accept_encoding("")
            .timeout_global(Some(self.time_left(deadline)?))
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            DefaultConnector::new(),
            PinnedResolver {
                host: hop.url.host_str().unwrap_or_default().to_owned(),
                addresses,
            },
        );
        let mut builder = http::Request::builder()
            .method(hop.method.as_str())
            .uri(hop.url.as_str());
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let host = host_name(&hop.url);
        let sent = match hop.method {
            Method::Get => builder.body(()).map(|request| agent.run(request)),
            Method::Post => builder
                .body(hop.body.clone())
                .map(|request| agent.run(request)),
        };
        let sent = sent.map_err(|error| FetchError::Connection {
            host: host.clone(),
            reason: format!("invalid request: {error}"),
        })?;
        sent.map_err(|error| self.failure(&host, error))
    }

    /// The final answer, its body read up to the policy's limit.
    fn finish(
        &self,
        url: Url,
        response: http::Response<ureq::Body>,
        redirects: u8,
        deadline: Instant,
    ) -> Result<Fetched, FetchError> {
        let (parts, body) = response.into_parts();
        let headers = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_owned())))
            .collect();
        let limit = self.policy.max_body_bytes;
        let mut bytes = Vec::with_capacity(limit.min(64 * 1024));
        let host = host_name(&url);
        // One byte past the limit tells a cut body from one that fits.
        body.into_reader()
            .take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| self.failure(&host, ureq::Error::from(error)))?;
        if Instant::now() > deadline {
            return Err(FetchError::Timeout {
                limit: self.policy.timeout,
            });
        }
        let truncated = bytes.len() > limit;
        bytes.truncate(limit);
        Ok(Fetched {
            url,
            status: parts.status.as_u16(),
            headers,
            body: bytes,
            truncated,
            redirects,
        })
    }

    fn time_left(&self, deadline: Instant) -> Result<Duration, FetchError> {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or(FetchError::Timeout {
                limit: self.policy.timeout,
            })
    }

    fn failure(&self, host: &str, error: ureq::Error) -> FetchError {
        match error {
            ureq::Error::Timeout(_) => FetchError::Timeout {
                limit: self.policy.timeout,
            },
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                FetchError::Timeout {
                    limit: self.policy.timeout,
                }
            }
            other => FetchError::Connection {
                host: host.to_owned(),
                reason: other.to_string(),
            },
        }
    }
}

/// One step of a fetch.
struct Hop {
    url: Url,
    method: Method,
    body: Vec<u8>,
}

/// The host of `url` as written in it (for errors and logs).
fn host_name(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}
