//! Turning a host name into addresses, as a hook: [`SystemResolver`] asks
//! the system (getaddrinfo, `/etc/hosts` included) within the fetch's time
//! limit; [`StaticResolver`] answers from a fixed table, for tests and for
//! operators who pin names. The fetcher checks what either returns and then
//! connects to exactly those addresses, never resolving the name again.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

/// Resolves host names for the fetcher.
pub trait HostResolver: Send + Sync + fmt::Debug {
    /// The addresses of `host` (a domain name, never an IP literal), within
    /// `timeout`. An empty list is treated as "not found".
    fn resolve(&self, host: &str, timeout: Duration) -> io::Result<Vec<IpAddr>>;
}

/// The system's resolver, on a helper thread so a slow lookup is abandoned
/// at the time limit (the lookup itself cannot be interrupted; its thread
/// ends when the system answers).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve(&self, host: &str, timeout: Duration) -> io::Result<Vec<IpAddr>> {
        let (sender, receiver) = mpsc::sync_channel(1);
        // `name.` is the same name; the hosts file only knows it without the dot.
        let name = host.strip_suffix('.').unwrap_or(host).to_owned();
        std::thread::Builder::new()
            .name("ricochet-fetch-dns".into())
            .spawn(move || {
                // The port is not used: only the addresses are kept.
                let found = (name.as_str(), 0)
                    .to_socket_addrs()
                    .map(|addrs| addrs.map(|addr| addr.ip()).collect::<Vec<_>>());
                let _ = sender.send(found);
            })?;
        match receiver.recv_timeout(timeout) {
            Ok(found) => found,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "name resolution timed out",
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(io::Error::other("name resolution failed"))
            }
        }
    }
}

/// A fixed table of names (lowercase, without a trailing dot) and their
/// addresses; any other name is not found. No lookup leaves the process.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// This table with `name` resolving to `addresses`.
    pub fn with(mut self, name: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        self.names
            .insert(name.to_ascii_lowercase(), addresses.into_iter().collect());
        self
    }
}

impl HostResolver for StaticResolver {
    fn resolve(&self, host: &str, _timeout: Duration) -> io::Result<Vec<IpAddr>> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        self.names.get(&name).cloned().ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, "name not in the resolver's table")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_table_answers_its_names_only() {
        let resolver = StaticResolver::new().with("Public.Test", ["127.0.0.1".parse().unwrap()]);
        let wait = Duration::from_secs(1);
        assert_eq!(
            resolver.resolve("public.test.", wait).unwrap(),
            ["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            resolver.resolve("other.test", wait).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn the_system_resolver_reads_the_hosts_file() {
        let found = SystemResolver
            .resolve("localhost", Duration::from_secs(5))
            .unwrap();
        assert!(found.iter().all(IpAddr::is_loopback), "{found:?}");
        assert!(!found.is_empty());
    }
}
