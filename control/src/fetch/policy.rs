//! What a fetch may do: which addresses it may connect to, how long it may
//! take, how much it reads and how many redirects it follows. Every address
//! a host resolves to is checked with [`FetchPolicy::check`] before any
//! connection, on the first request and on every redirect.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use super::address::{NonPublic, classify};

/// Time limit of one fetch, redirects and reading the body included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a body read; the rest is never read.
pub const DEFAULT_MAX_BODY_BYTES: usize = 512 * 1024;
/// Most redirects followed.
pub const DEFAULT_MAX_REDIRECTS: u8 = 5;

/// The limits one fetch runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Also reach loopback, RFC 1918, carrier-grade NAT and unique-local
    /// addresses ([`NonPublic::is_private_use`]). Link-local (cloud
    /// metadata), unspecified, multicast and reserved addresses stay refused.
    pub allow_private: bool,
    /// Networks reachable whatever their range: an operator's explicit
    /// exception, such as one internal host.
    pub allowed_networks: Vec<IpNet>,
    /// Time limit of the whole fetch: resolving, connecting, every redirect
    /// and reading the body.
    pub timeout: Duration,
    /// Most body bytes read; the answer says when a body was cut.
    pub max_body_bytes: usize,
    /// Most redirects followed; one more is refused.
    pub max_redirects: u8,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            allowed_networks: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            user_agent: concat!("Ricochet/", env!("CARGO_PKG_VERSION"), " (link preview)")
                .to_owned(),
        }
    }
}

impl FetchPolicy {
    /// Whether a connection to `address` is allowed; the range that forbids
    /// it otherwise.
    pub fn check(&self, address: IpAddr) -> Result<(), NonPublic> {
        let address = canonical(address);
        if self
            .allowed_networks
            .iter()
            .any(|net| net.contains(&address))
        {
            return Ok(());
        }
        match classify(address) {
            None => Ok(()),
            Some(range) if self.allow_private && range.is_private_use() => Ok(()),
            Some(range) => Err(range),
        }
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address, so allowed networks
/// written in IPv4 match it too.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_default_policy_allows_only_public_addresses() {
        let policy = FetchPolicy::default();
        assert_eq!(policy.check(ip("93.184.216.34")), Ok(()));
        assert_eq!(policy.check(ip("2606:4700::1")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.1")), Err(NonPublic::Loopback));
        assert_eq!(policy.check(ip("10.0.0.1")), Err(NonPublic::Private));
        assert_eq!(
            policy.check(ip("169.254.169.254")),
            Err(NonPublic::LinkLocal)
        );
        assert_eq!(policy.check(ip("::1")), Err(NonPublic::Loopback));
        assert_eq!(policy.timeout, Duration::from_secs(5));
        assert_eq!(policy.max_body_bytes, 512 * 1024);
        assert_eq!(policy.max_redirects, 5);
    }

    #[test]
    fn allow_private_opens_private_use_ranges_but_never_metadata() {
        let policy = FetchPolicy {
            allow_private: true,
            ..FetchPolicy::default()
        };
        for open in [
            "127.0.0.1",
            "::1",
            "10.1.2.3",
            "192.168.1.1",
            "100.64.0.1",
            "fd00::1",
        ] {
            assert_eq!(policy.check(ip(open)), Ok(()), "{open}");
        }
        for (closed, range) in [
            ("169.254.169.254", NonPublic::LinkLocal),
            ("::ffff:169.254.169.254", NonPublic::LinkLocal),
            ("fe80::1", NonPublic::LinkLocal),
            ("0.0.0.0", NonPublic::Unspecified),
            ("::", NonPublic::Unspecified),
            ("224.0.0.1", NonPublic::Multicast),
            ("192.0.2.1", NonPublic::Documentation),
        ] {
            assert_eq!(policy.check(ip(closed)), Err(range), "{closed}");
        }
    }

    #[test]
    fn allowed_networks_are_exceptions_for_exactly_their_addresses() {
        let policy = FetchPolicy {
            allowed_networks: vec![
                "127.0.0.1/32".parse().unwrap(),
                "fd00:1::/64".parse().unwrap(),
            ],
            ..FetchPolicy::default()
        };
        assert_eq!(policy.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("::ffff:127.0.0.1")), Ok(()));
        assert_eq!(policy.check(ip("fd00:1::5")), Ok(()));
        assert_eq!(policy.check(ip("127.0.0.2")), Err(NonPublic::Loopback));
        assert_eq!(policy.check(ip("fd00:2::5")), Err(NonPublic::UniqueLocal));
        assert_eq!(
            policy.check(ip("169.254.169.254")),
            Err(NonPublic::LinkLocal)
        );
    }
}
