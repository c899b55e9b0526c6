//! TXT look-ups for domain verification through hickory's resolver: the
//! system's resolvers, or one DNS server (`domains.dns_server`; tests point
//! it at `pebble-challtestsrv`). Each look-up runs on this resolver's own
//! small runtime, so the service calls it from its blocking threads.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};

use crate::service::{TxtAnswer, TxtLookup};

/// A resolver for TXT records.
pub struct DnsLookup {
    resolver: TokioResolver,
    /// Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for DnsLookup {
    /// The lookup is dropped with the API's state, inside actix's runtime,
    /// where dropping another runtime the ordinary way panics.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for DnsLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsLookup").finish_non_exhaustive()
    }
}

impl DnsLookup {
    /// A resolver asking `server` (or the system's resolvers when `None`),
    /// giving up after `timeout`.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the DNS runtime: {e}"))?;
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(server) => {
                let connection = |mut config: ConnectionConfig| {
                    config.port = server.port();
                    config
                };
                let name_server = NameServerConfig::new(
                    server.ip(),
                    true,
                    vec![
                        connection(ConnectionConfig::udp()),
                        connection(ConnectionConfig::tcp()),
                    ],
                );
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![name_server]),
                    provider,
                )
            }
            None => Resolver::builder(provider)
                .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?,
        };
        let options = builder.options_mut();
        options.timeout = timeout;
        options.attempts = 1;
        // Verification must see a record as soon as it is created.
        options.cache_size = 0;
        let resolver = {
            let _entered = runtime.enter();
            builder
                .build()
                .map_err(|e| format!("cannot build the DNS resolver: {e}"))?
        };
        Ok(Self {
            resolver,
            runtime: Some(runtime),
        })
    }
}

impl TxtLookup for DnsLookup {
    fn txt(&self, name: &str) -> TxtAnswer {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let Some(runtime) = &self.runtime else {
            return TxtAnswer::Failed("the resolver is shutting down".to_owned());
        };
        match runtime.block_on(self.resolver.txt_lookup(fqdn.as_str())) {
            Ok(lookup) => {
                let values: Vec<String> = lookup
                    .answers()
                    .iter()
                    .filter_map(|record| match &record.data {
                        RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|part| String::from_utf8_lossy(part))
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                if values.is_empty() {
                    TxtAnswer::NoRecord
                } else {
                    TxtAnswer::Found(values)
                }
            }
            Err(error) if error.is_nx_domain() => TxtAnswer::NxDomain,
            Err(error) if error.is_no_records_found() => TxtAnswer::NoRecord,
            Err(hickory_resolver::net::NetError::Timeout) => TxtAnswer::Timeout,
            Err(error) => TxtAnswer::Failed(error.to_string()),
        }
    }
}
