//! Why a fetch gave no answer: refused by the policy before any connection
//! ([`FetchError::is_refusal`]), or failed on the way. Messages name the host
//! at most, never a path or query, so they are safe to log.

use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

use super::address::NonPublic;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    /// Not an absolute URL with a host.
    #[error("not an absolute URL with a host")]
    InvalidUrl,
    /// Only `http` and `https` are fetched.
    #[error("the scheme {scheme:?} is not http or https")]
    Scheme { scheme: String },
    /// `host` is, or resolves to, an address the policy does not allow.
    #[error("{host} is {address}, which is {range}: not a public address")]
    NotPublic {
        host: String,
        address: IpAddr,
        range: NonPublic,
    },
    /// A redirect beyond the policy's `max_redirects`.
    #[error("more than {max} redirects")]
    TooManyRedirects { max: u8 },
    /// A redirect whose `Location` is not a URL.
    #[error("a redirect from {host} has no usable Location")]
    BadRedirect { host: String },
    /// The name has no address.
    #[error("{host} does not resolve: {reason}")]
    Unresolved { host: String, reason: String },
    /// The time limit passed (the answer so far is dropped).
    #[error("no complete answer within {limit:?}")]
    Timeout { limit: Duration },
    /// Connecting, TLS, or the exchange failed.
    #[error("{host}: {reason}")]
    Connection { host: String, reason: String },
}

impl FetchError {
    /// Whether the policy refused the fetch (no connection was made for the
    /// refused step), rather than the network failing it.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl
                | Self::Scheme { .. }
                | Self::NotPublic { .. }
                | Self::TooManyRedirects { .. }
        )
    }
}
