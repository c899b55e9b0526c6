//! The only resolver ureq is given: it answers with the addresses the
//! fetcher already checked for this one request, so the connection goes to
//! exactly those addresses and the name is never looked up a second time
//! (a DNS answer cannot change between the check and the connect).
//! ureq's resolver hook is in its `unversioned` API, which changes only in
//! minor releases; `Cargo.lock` holds the version this is written for.

use std::net::SocketAddr;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

#[derive(Debug)]
pub(crate) struct PinnedResolver {
    /// The host of the one request this agent sends (as in its URI).
    pub host: String,
    /// Its checked addresses, with the port.
    pub addresses: Vec<SocketAddr>,
}

impl Resolver for PinnedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // Anything else (a proxy, a redirect ureq should never follow) is
        // not found rather than looked up.
        let host = uri.host().unwrap_or_default();
        if !host.eq_ignore_ascii_case(&self.host) {
            return Err(ureq::Error::HostNotFound);
        }
        let mut pinned = self.empty();
        for address in self.addresses.iter().take(16) {
            pinned.push(*address);
        }
        if self.addresses.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(pinned)
    }
}
