//! The control plane's configuration: defaults in code, an optional TOML file,
//! `RICOCHET_CONTROL_<SECTION>__<KEY>` environment variables, then flags;
//! `validate()` after all of them. `config/control.toml` is the reference.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Prefix of environment overrides, e.g. `RICOCHET_CONTROL_SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "RICOCHET_CONTROL_";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub links: LinksConfig,
    pub bus: BusConfig,
    pub rate_limit: RateLimitConfig,
    /// Users, sign-in sessions and the first owner.
    pub accounts: AccountsConfig,
    /// The click store: what engines ship is kept here, and analytics read it.
    pub clicks: ricochet_clickstore::ClickStoreConfig,
    /// How custom domains prove who owns them.
    pub domains: DomainsConfig,
    /// Certificates from an ACME certificate authority.
    pub acme: AcmeConfig,
    /// Destinations no link may point to.
    pub denylist: DenylistConfig,
    /// Webhook deliveries and the event history.
    pub webhooks: WebhooksConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Endpoints may be at private-use addresses (10/8, 172.16/12,
    /// 192.168/16, loopback, fc00::/7, 100.64/10); link-local and metadata
    /// addresses stay refused.
    pub allow_private: bool,
    /// Networks endpoints may be in besides public addresses, e.g.
    /// `["10.1.0.0/16"]`.
    pub allowed_networks: Vec<String>,
    /// How long a receiver has to answer.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Waits before each retry of a failed delivery; after the last, the
    /// delivery goes to the dead-letter list.
    #[serde(with = "durations")]
    pub retry_delays: Vec<Duration>,
    /// An endpoint whose every attempt failed this long is disabled.
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// Endpoints per workspace.
    pub max_endpoints: usize,
    /// Deliveries attempted at once.
    pub workers: usize,
    /// How long events (the stream's resumable history) and finished
    /// deliveries (the delivery log) are kept.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// Events kept at most, whatever their age.
    pub max_events: u64,
    /// Links a window's `link.clicked` events carry at most per workspace
    /// (those with the most clicks); the others are summed in `other_links`.
    pub clicked_links_per_window: usize,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let settings = crate::webhooks::WebhookSettings::default();
        Self {
            allow_private: false,
            allowed_networks: Vec::new(),
            timeout: settings.policy.timeout,
            retry_delays: settings.retry_delays,
            disable_after: settings.disable_after,
            max_endpoints: settings.max_endpoints,
            workers: settings.workers,
            retention: settings.retention,
            max_events: settings.max_events,
            clicked_links_per_window: 1000,
        }
    }
}

/// A list of durations written as humantime strings (`["1m", "5m"]`).
mod durations {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &[Duration], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            value
                .iter()
                .map(|d| humantime::format_duration(*d).to_string()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(deserializer)?
            .iter()
            .map(|text| humantime::parse_duration(text).map_err(serde::de::Error::custom))
            .collect()
    }
}

impl WebhooksConfig {
    /// The settings deliveries run with.
    pub fn settings(&self) -> crate::webhooks::WebhookSettings {
        let policy = crate::webhooks::delivery_policy(crate::fetch::FetchPolicy {
            allow_private: self.allow_private,
            allowed_networks: self
                .allowed_networks
                .iter()
                .filter_map(|net| net.parse().ok())
                .collect(),
            ..crate::fetch::FetchPolicy::default()
        });
        crate::webhooks::WebhookSettings {
            policy: crate::fetch::FetchPolicy {
                timeout: self.timeout,
                ..policy
            },
            retry_delays: self.retry_delays.clone(),
            disable_after: self.disable_after,
            max_endpoints: self.max_endpoints,
            workers: self.workers,
            retention: self.retention,
            max_events: self.max_events,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenylistConfig {
    /// A hosts file (one host or address per line); empty: none.
    pub file: String,
    /// A threat list in URLhaus's CSV format; empty: none.
    pub threat_list: String,
    /// Whether a threat list's URLs block themselves or their hosts.
    pub threat_list_match: crate::denylist::ThreatMatch,
    /// How often the files are checked for changes.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for DenylistConfig {
    fn default() -> Self {
        Self {
            file: String::new(),
            threat_list: String::new(),
            threat_list_match: crate::denylist::ThreatMatch::Url,
            refresh_interval: Duration::from_secs(60),
        }
    }
}

impl DenylistConfig {
    /// The settings the denylist reads its files with.
    pub fn settings(&self) -> crate::denylist::DenylistSettings {
        let path = |p: &str| (!p.is_empty()).then(|| std::path::PathBuf::from(p));
        crate::denylist::DenylistSettings {
            file: path(&self.file),
            threat_list: path(&self.threat_list),
            threat_match: self.threat_list_match,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    /// The authority's directory URL; empty: no ACME (uploaded certificates only).
    pub directory_url: String,
    /// A PEM file with the root the authority's own HTTPS chains to (a test
    /// authority such as Pebble); empty: the system's roots.
    pub root_certificate: String,
    /// Contact URIs of the account, e.g. `mailto:ops@example.com`.
    pub contact: Vec<String>,
    /// The challenge engines answer: `http-01` (on the plain HTTP port, 80
    /// for a public authority) or `tls-alpn-01` (on the HTTPS port, 443).
    pub challenge: AcmeChallenge,
    /// Time engines get to apply a challenge answer before the authority checks it.
    #[serde(with = "humantime_serde")]
    pub challenge_delay: Duration,
    /// How often domains due a certificate (new, renewal, retry) are looked for.
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            directory_url: String::new(),
            root_certificate: String::new(),
            contact: Vec::new(),
            challenge: AcmeChallenge::default(),
            challenge_delay: Duration::from_secs(2),
            check_interval: Duration::from_secs(60),
        }
    }
}

/// How engines prove control of a domain to the ACME authority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcmeChallenge {
    /// A token answered at `/.well-known/acme-challenge/` on plain HTTP.
    #[default]
    #[serde(rename = "http-01")]
    Http01,
    /// A certificate answered to handshakes offering ALPN `acme-tls/1`.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
}

/// How a registered domain is verified before links can live on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerificationMode {
    /// A DNS TXT record `_ricochet-challenge.<domain>` must hold the token.
    #[default]
    Dns,
    /// Every registered domain counts as verified (installations whose
    /// operators register every domain themselves).
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DomainsConfig {
    pub verification: VerificationMode,
    /// The DNS server TXT records are asked of (`host:port`); empty: the
    /// system's resolvers (`/etc/resolv.conf`).
    pub dns_server: String,
    /// Time a look-up may take before it counts as a timeout.
    #[serde(with = "humantime_serde")]
    pub dns_timeout: Duration,
    /// How often the background task looks for domains due a check
    /// (pending ones with backoff, verified ones daily).
    #[serde(with = "humantime_serde")]
    pub check_interval: Duration,
}

impl Default for DomainsConfig {
    fn default() -> Self {
        Self {
            verification: VerificationMode::Dns,
            dns_server: String::new(),
            dns_timeout: Duration::from_secs(5),
            check_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the REST API.
    pub listen: SocketAddr,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Directory of the control plane's fjall store.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinksConfig {
    /// Domain that always exists and is used when a request names none.
    pub default_domain: String,
    /// Base of short URLs on the default domain as people should type them
    /// (the console, QR codes), e.g. `https://sho.rt`. Empty:
    /// `http://<default_domain>`.
    pub short_url_base: String,
    /// Length of random codes (62-character alphabet).
    pub code_length: usize,
    /// Most items in one `POST /links/bulk` call.
    pub max_bulk: usize,
    /// Codes nobody may take, on top of the built-in list.
    pub reserved_codes: Vec<String>,
    /// A link created without a card (API and bulk, not import) gets the
    /// title, description and image its destination's page declares,
    /// fetched once at creation (public addresses only, see `crate::fetch`).
    pub fetch_card_metadata: bool,
    /// Those fetches may also reach loopback, RFC 1918, carrier-grade NAT
    /// and unique-local addresses (never link-local such as cloud metadata).
    pub fetch_allow_private: bool,
    /// Time limit of one such fetch, redirects and body included (a bulk
    /// create's fetches share one).
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusConfig {
    /// `redis://host:port/` to publish on Redis; empty for the in-process bus.
    pub url: String,
    /// Redis channel of change messages.
    pub channel: String,
    /// Token engines present to `/internal/v1/changes`. Empty: one is
    /// generated at first start and kept in the store.
    pub cluster_token: String,
    /// Interval of heartbeats carrying the latest version.
    #[serde(with = "humantime_serde")]
    pub heartbeat_interval: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Sustained requests per second allowed per API key.
    pub requests_per_second: u32,
    /// Requests a key may make in a burst.
    pub burst: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Email of the owner created at first start (or on the first start of a
    /// store that has no user yet), with a generated password shown once.
    pub first_owner_email: String,
    /// A session unused this long has expired.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A session this old has expired, however much it is used.
    #[serde(with = "humantime_serde")]
    pub session_absolute_timeout: Duration,
    /// The control plane is served to browsers over HTTPS (by a proxy in
    /// front of it): the session cookie is always `Secure`. Otherwise it is
    /// `Secure` when the request says it came over HTTPS.
    pub behind_https: bool,
    /// Sign-in attempts per email per minute (a burst of as many); over it: 429.
    pub sign_in_per_account_per_minute: u32,
    /// Sign-in attempts per client address per minute; over it: 429.
    pub sign_in_per_address_per_minute: u32,
    /// How long an invitation link can be accepted.
    #[serde(with = "humantime_serde")]
    pub invitation_ttl: Duration,
    /// How long a deleted workspace can be restored before it is purged.
    #[serde(with = "humantime_serde")]
    pub workspace_retention: Duration,
    /// The console's address (e.g. `https://links.example.com/console`), for
    /// invitation links (`<console_url>/invite#<token>`). Empty: the links are
    /// relative (`/console/invite#<token>`).
    pub console_url: String,
    /// SMTP server that also mails invitation links: `smtp://host:port`
    /// (`?tls=required` for STARTTLS) or `smtps://host:port`, with
    /// `user:password@` to log in. Empty: invitations are not mailed.
    pub smtp_url: String,
    /// Sender of invitation mail.
    pub smtp_from: String,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            first_owner_email: "owner@ricochet.local".to_owned(),
            session_idle_timeout: Duration::from_secs(7 * 24 * 3600),
            session_absolute_timeout: Duration::from_secs(30 * 24 * 3600),
            behind_https: false,
            sign_in_per_account_per_minute: 5,
            sign_in_per_address_per_minute: 20,
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            workspace_retention: Duration::from_secs(30 * 24 * 3600),
            console_url: String::new(),
            smtp_url: String::new(),
            smtp_from: "Ricochet <ricochet@localhost>".to_owned(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            workers: 0,
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data/control"),
        }
    }
}

impl Default for LinksConfig {
    fn default() -> Self {
        Self {
            default_domain: "localhost".to_owned(),
            short_url_base: String::new(),
            code_length: 7,
            max_bulk: 1000,
            reserved_codes: Vec::new(),
            fetch_card_metadata: false,
            fetch_allow_private: false,
            fetch_timeout: crate::fetch::policy::DEFAULT_TIMEOUT,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            channel: ricochet_model::bus::DEFAULT_CHANNEL.to_owned(),
            cluster_token: String::new(),
            heartbeat_interval: Duration::from_secs(1),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            burst: 200,
        }
    }
}

impl ControlConfig {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, String> {
        ricochet_model::startup::load_config(ControlConfig::default(), file, ENV_PREFIX)
    }

    /// Checks values that parse but make no sense.
    /// A copy safe to print (`--check-config`): the cluster token and any
    /// SMTP credentials are replaced by `***`.
    pub fn redacted(&self) -> Self {
        let mut shown = self.clone();
        if !shown.bus.cluster_token.is_empty() {
            shown.bus.cluster_token = "***".into();
        }
        let url = &mut shown.accounts.smtp_url;
        if let Some(scheme_end) = url.find("://")
            && let Some(at) = url.rfind('@')
            && at > scheme_end
        {
            url.replace_range(scheme_end + 3..at, "***");
        }
        shown
    }

    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if let Err(problem) = self.clicks.validate("clicks").and_then(|()| {
            self.clicks
                .resolve(ricochet_clickstore::config::Role::ControlPlane, "clicks")
        }) {
            problems.push(problem);
        }
        if !self.domains.dns_server.is_empty()
            && self.domains.dns_server.parse::<SocketAddr>().is_err()
        {
            problems.push(
                "domains.dns_server must be empty (the system's resolvers) or an IP address and port, e.g. 127.0.0.1:53"
                    .to_owned(),
            );
        }
        if !self.acme.directory_url.is_empty() && !self.acme.directory_url.starts_with("https://") {
            problems
                .push("acme.directory_url must be an https:// URL (or empty: no ACME)".to_owned());
        }
        let webhooks = &self.webhooks;
        if !(Duration::from_millis(10)..=Duration::from_secs(60)).contains(&webhooks.timeout) {
            problems.push("webhooks.timeout must be from 10ms to 60s".to_owned());
        }
        if webhooks.retry_delays.len() > 10 || webhooks.retry_delays.iter().any(Duration::is_zero) {
            problems.push(
                "webhooks.retry_delays: at most 10 waits, each above 0 (e.g. [\"1m\", \"5m\", \"30m\"])"
                    .to_owned(),
            );
        }
        if let Some(bad) = webhooks
            .allowed_networks
            .iter()
            .find(|net| net.parse::<ipnet::IpNet>().is_err())
        {
            problems.push(format!(
                "webhooks.allowed_networks: {bad:?} is not a network such as 10.1.0.0/16"
            ));
        }
        if webhooks.disable_after.is_zero()
            || webhooks.retention.is_zero()
            || !(1..=64).contains(&webhooks.workers)
            || !(1..=1000).contains(&webhooks.max_endpoints)
            || webhooks.max_events < 100
            || !(1..=100_000).contains(&webhooks.clicked_links_per_window)
        {
            problems.push(
                "webhooks: disable_after and retention above 0, workers 1 to 64, max_endpoints 1 to 1000, max_events at least 100, clicked_links_per_window 1 to 100000"
                    .to_owned(),
            );
        }
        if self.denylist.refresh_interval.is_zero() {
            problems.push("denylist.refresh_interval must be above 0".to_owned());
        }
        if self.acme.check_interval.is_zero() {
            problems.push("acme.check_interval must be above 0".to_owned());
        }
        if self.domains.dns_timeout.is_zero() || self.domains.check_interval.is_zero() {
            problems
                .push("domains.dns_timeout and domains.check_interval must be above 0".to_owned());
        }
        if !(4..=64).contains(&self.links.code_length) {
            problems.push("links.code_length must be between 4 and 64".to_owned());
        }
        if !(1..=100_000).contains(&self.links.max_bulk) {
            problems.push("links.max_bulk must be between 1 and 100000".to_owned());
        }
        if !(Duration::from_millis(10)..=crate::fetch::policy::DEFAULT_TIMEOUT)
            .contains(&self.links.fetch_timeout)
        {
            problems.push("links.fetch_timeout must be from 10ms to 5s".to_owned());
        }
        let base = &self.links.short_url_base;
        if !(base.is_empty()
            || ((base.starts_with("http://") || base.starts_with("https://"))
                && url::Url::parse(base).is_ok_and(|u| u.path() == "/" && u.query().is_none())))
        {
            problems.push(
                "links.short_url_base must be empty or an http(s) URL without path or query, \
                 such as https://sho.rt"
                    .to_owned(),
            );
        }
        match ricochet_model::normalize_domain(&self.links.default_domain) {
            Ok(normalized) if normalized == self.links.default_domain => {}
            Ok(normalized) => problems.push(format!(
                "links.default_domain must be normalized: write {normalized:?}"
            )),
            Err(err) => problems.push(format!("links.default_domain: {err}")),
        }
        if !self.bus.url.is_empty() && !self.bus.url.starts_with("redis://") {
            problems.push("bus.url must be empty or a redis:// URL".to_owned());
        }
        if self.bus.heartbeat_interval.is_zero() {
            problems.push("bus.heartbeat_interval must be above 0".to_owned());
        }
        if self.rate_limit.requests_per_second == 0 || self.rate_limit.burst == 0 {
            problems.push("rate_limit.requests_per_second and burst must be above 0".to_owned());
        }
        let accounts = &self.accounts;
        if let Err(reason) = crate::accounts::email::normalize_email(&accounts.first_owner_email) {
            problems.push(format!("accounts.first_owner_email: {reason}"));
        }
        if accounts.session_idle_timeout < Duration::from_secs(60)
            || accounts.session_absolute_timeout < accounts.session_idle_timeout
        {
            problems.push(
                "accounts.session_idle_timeout must be at least 1m and at most session_absolute_timeout"
                    .to_owned(),
            );
        }
        if accounts.sign_in_per_account_per_minute == 0
            || accounts.sign_in_per_address_per_minute == 0
        {
            problems.push("accounts.sign_in_per_*_per_minute must be above 0".to_owned());
        }
        if accounts.invitation_ttl < Duration::from_secs(60) {
            problems.push("accounts.invitation_ttl must be at least 1m".to_owned());
        }
        if accounts.workspace_retention < Duration::from_secs(3600) {
            problems.push("accounts.workspace_retention must be at least 1h".to_owned());
        }
        if let Err(problem) = crate::mailer::Mailer::new(&accounts.smtp_url, &accounts.smtp_from) {
            problems.push(problem);
        }
        if !accounts.smtp_url.is_empty() && accounts.console_url.is_empty() {
            problems.push(
                "accounts.console_url must be set when accounts.smtp_url is: mailed invitation \
                 links must be absolute"
                    .to_owned(),
            );
        }
        let url = &accounts.console_url;
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            problems.push("accounts.console_url must be empty or an http(s) URL".to_owned());
        }
        if self.server.max_body_bytes < 1024 {
            problems.push("server.max_body_bytes must be at least 1024".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_file_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/control.toml");
        let loaded = ControlConfig::load(Some(&path)).unwrap();
        assert_eq!(loaded, ControlConfig::default());
        loaded.validate().unwrap();
    }

    #[test]
    fn bad_values_are_reported() {
        let mut config = ControlConfig::default();
        config.links.code_length = 2;
        config.bus.url = "http://nope".into();
        config.accounts.first_owner_email = "not an email".into();
        config.accounts.session_idle_timeout = Duration::from_secs(3600 * 24 * 90);
        config.links.fetch_timeout = Duration::from_secs(6);
        let err = config.validate().unwrap_err();
        assert!(err.contains("links.fetch_timeout"), "{err}");
        assert!(
            err.contains("code_length") && err.contains("bus.url"),
            "{err}"
        );
        assert!(
            err.contains("first_owner_email") && err.contains("session_idle_timeout"),
            "{err}"
        );
    }

    #[test]
    fn the_printed_configuration_hides_secrets() {
        let mut config = ControlConfig::default();
        config.bus.cluster_token = "token-secret".into();
        config.accounts.smtp_url = "smtp://mailer:pa@ss@mail.example:587?tls=required".into();
        let shown = toml::to_string_pretty(&config.redacted()).unwrap();
        assert!(
            !shown.contains("token-secret") && !shown.contains("pa@ss"),
            "{shown}"
        );
        assert!(
            shown.contains("smtp://***@mail.example:587?tls=required"),
            "{shown}"
        );
        let plain = ControlConfig::default().redacted();
        assert_eq!(plain, ControlConfig::default());
    }
}
