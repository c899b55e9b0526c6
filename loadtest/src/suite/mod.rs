//! Suites: TOML files (see `config/loadtest/`) naming the link set and the
//! behaviour its links carry, the traffic shape and its visitors, the load
//! phases, seeding, warm-up, repeats, edits, a flood of wrong passwords or a
//! restart during the run, the targets, and the thresholds the run must
//! meet. Every mistake is reported with the file's line and column.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::behaviour::Behaviour;
use crate::edits::EditsSpec;
use crate::error::{Error, Result};
use crate::flood::{FloodSpec, MAX_ADDRESSES, MAX_CONNECTIONS};
use crate::keys::{DEFAULT_STATUS, DEFAULT_URL_PREFIX, GeneratedKeys, KeySet, valid_code};
use crate::mix::Mix;
use crate::networks::ClientNetworks;
use crate::restart::RestartSpec;
use crate::run::LoadSpec;
use crate::schedule::Mode;
use crate::target::TargetSpec;
use crate::thresholds::Threshold;
use crate::traffic::{Method, Popularity, TrafficShape};
use crate::visitors::Visitors;

pub(crate) mod locator;
mod thresholds;

use locator::Locator;
use thresholds::{RawThreshold, convert_thresholds};

/// Where a suite's keys come from.
#[derive(Debug, Clone, PartialEq)]
pub enum KeysSource {
    Generate(GeneratedKeys),
    File(PathBuf),
}

impl KeysSource {
    pub fn load(&self) -> Result<KeySet> {
        match self {
            Self::Generate(spec) => KeySet::generated(spec.clone()),
            Self::File(path) => KeySet::from_file(path),
        }
    }
}

/// How links get into the target before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedMethod {
    /// They are there already (or the target's setup imports `{links_csv}`).
    None,
    /// `POST /api/v1/links/bulk` on each target with an `api`.
    Api,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SeedSpec {
    pub method: SeedMethod,
    /// Links per bulk call.
    pub batch: usize,
    /// How long to wait until the last seeded key is served.
    pub wait: Duration,
}

/// One measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub load: LoadSpec,
}

/// A parsed, validated suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub description: String,
    pub path: Option<PathBuf>,
    /// Rounds; in each, every target runs every phase (targets alternate).
    pub repeat: usize,
    /// Host header for keys on the default domain (else the target's).
    pub host: Option<String>,
    pub keys: KeysSource,
    /// Rules and variants every link carries (`[keys] behaviour`): in the
    /// `{links_jsonl}` import file, and accepted as answers.
    pub behaviour: Option<Arc<Behaviour>>,
    pub traffic: TrafficShape,
    /// Unrecorded run before each target's phases in every round.
    pub warmup: Duration,
    pub phases: Vec<Phase>,
    pub seed: SeedSpec,
    pub edits: Option<EditsSpec>,
    /// Wrong passwords for a protected link beside the load (`[flood]`).
    pub flood: Option<FloodSpec>,
    pub restart: Option<RestartSpec>,
    pub targets: Vec<TargetSpec>,
    /// What the run must meet (`[[threshold]]`, `--threshold`).
    pub thresholds: Vec<Threshold>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: Option<String>,
    description: Option<String>,
    repeat: Option<usize>,
    host: Option<String>,
    keys: Option<RawKeys>,
    #[serde(default)]
    traffic: RawTraffic,
    #[serde(default)]
    load: RawLoad,
    #[serde(default, rename = "phase")]
    phases: Vec<RawLoad>,
    #[serde(default)]
    seed: RawSeed,
    edits: Option<RawEdits>,
    flood: Option<RawFlood>,
    restart: Option<RawRestart>,
    #[serde(default, rename = "target")]
    targets: Vec<TargetSpec>,
    #[serde(default, rename = "threshold")]
    thresholds: Vec<RawThreshold>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeys {
    generate: Option<u64>,
    file: Option<String>,
    domains: Option<Vec<String>>,
    url_prefix: Option<String>,
    status: Option<u16>,
    seed: Option<u64>,
    behaviour: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTraffic {
    popularity: Option<String>,
    exponent: Option<f64>,
    hot_keys: Option<u64>,
    hot_share: Option<f64>,
    unknown_share: Option<f64>,
    bot_share: Option<f64>,
    method: Option<String>,
    unknown_status: Option<u16>,
    seed: Option<u64>,
    visitors: Option<String>,
    client_networks: Option<Vec<String>>,
    /// A mix file (mix.rs), relative to the suite.
    mix: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    name: Option<String>,
    mode: Option<String>,
    rate: Option<f64>,
    connections: Option<usize>,
    threads: Option<usize>,
    depth: Option<usize>,
    duration: Option<String>,
    timeout: Option<String>,
    grace: Option<String>,
    warmup: Option<String>,
    max_requests: Option<u64>,
    cpus: Option<Vec<usize>>,
    settle: Option<String>,
    requests_per_connection: Option<u64>,
    tls_resumption: Option<bool>,
    source: Option<Vec<std::net::IpAddr>>,
    /// Worker addresses (`ricochet-loadtest worker`) the phase runs on.
    workers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    method: Option<String>,
    batch: Option<usize>,
    wait: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdits {
    count: Option<u64>,
    interval: Option<String>,
    timeout: Option<String>,
    domain: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlood {
    rate: Option<f64>,
    connections: Option<usize>,
    addresses: Option<u32>,
    code: Option<String>,
    timeout: Option<String>,
    phases: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    at: Option<String>,
    signal: Option<String>,
    timeout: Option<String>,
}

impl Suite {
    /// Reads and validates a suite file (and the behaviour file it names).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read suite {}", path.display()), e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut suite = Self::parse_in(&text, &path.display().to_string(), dir)?;
        suite.path = Some(path.to_path_buf());
        Ok(suite)
    }

    /// Parses suite text; `name` is used in messages and as the default
    /// name. A behaviour file is looked for from the current directory.
    pub fn parse(source: &str, name: &str) -> Result<Self> {
        Self::parse_in(source, name, Path::new("."))
    }

    /// Parses suite text whose relative behaviour path starts from `dir`.
    pub fn parse_in(source: &str, name: &str, dir: &Path) -> Result<Self> {
        let at = Locator {
            path: name.to_owned(),
            source,
        };
        let raw: RawSuite = toml::from_str(source).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at.error_at_offset(offset, e.message().trim().to_owned())
        })?;
        let behaviour = match raw.keys.as_ref().and_then(|k| k.behaviour.as_ref()) {
            None => None,
            Some(file) => Some(Arc::new(
                Behaviour::from_file(&dir.join(file))
                    .map_err(|e| at.invalid("keys", 0, "behaviour", e.to_string()))?,
            )),
        };
        let keys = convert_keys(&at, raw.keys)?;
        let mut traffic = convert_traffic(&at, &raw.traffic)?;
        if let Some(file) = &raw.traffic.mix {
            let mix = Mix::from_file(&dir.join(file))
                .map_err(|e| at.invalid("traffic", 0, "mix", e.to_string()))?;
            traffic.mix = Some(Arc::new(mix));
            traffic
                .validate()
                .map_err(|e| at.invalid("traffic", 0, "mix", e.to_string()))?;
        }
        if raw.load.name.is_some() {
            return Err(at.invalid(
                "load",
                0,
                "name",
                "[load] holds the defaults of every phase; name phases in [[phase]]",
            ));
        }
        let defaults = convert_load(&at, "load", 0, &raw.load, &LoadSpec::default())?;
        let warmup = at
            .duration("load", 0, "warmup", raw.load.warmup.as_ref())?
            .unwrap_or(Duration::ZERO);
        let mut phases = Vec::new();
        for (index, raw_phase) in raw.phases.iter().enumerate() {
            if raw_phase.warmup.is_some() {
                return Err(at.invalid("phase", index, "warmup", "warm-up is set once, in [load]"));
            }
            let load = convert_load(&at, "phase", index, raw_phase, &defaults)?;
            let name = raw_phase
                .name
                .clone()
                .unwrap_or_else(|| format!("phase-{}", index + 1));
            phases.push(Phase { name, load });
        }
        if phases.is_empty() {
            phases.push(Phase {
                name: "main".into(),
                load: defaults,
            });
        }
        let seed = convert_seed(&at, &raw.seed)?;
        if behaviour.is_some() && seed.method == SeedMethod::Api {
            return Err(at.invalid(
                "seed",
                0,
                "method",
                "links with a behaviour reach targets through {links_jsonl} (an engine import); seeding through the API sends them without it",
            ));
        }
        let edits = raw
            .edits
            .as_ref()
            .map(|e| convert_edits(&at, e))
            .transpose()?;
        let flood = raw
            .flood
            .as_ref()
            .map(|f| convert_flood(&at, f, &phases))
            .transpose()?;
        if flood.is_some() && seed.method == SeedMethod::Api {
            return Err(at.invalid(
                "seed",
                0,
                "method",
                "[flood] needs its password-protected link, which the tool adds to {links_jsonl} (an engine import); seeding through the API cannot create it: use method = \"none\" and import {links_jsonl} in the target's setup",
            ));
        }
        let restart = raw
            .restart
            .as_ref()
            .map(|r| convert_restart(&at, r))
            .transpose()?;
        let mut names = std::collections::HashSet::new();
        for (index, target) in raw.targets.iter().enumerate() {
            if target.name.is_empty()
                || !target
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(at.invalid(
                    "target",
                    index,
                    "name",
                    "each target needs a name of letters, digits, - and _",
                ));
            }
            if !names.insert(target.name.clone()) {
                return Err(at.invalid(
                    "target",
                    index,
                    "name",
                    format!("two targets are named {:?}", target.name),
                ));
            }
            if target.url.is_empty() {
                return Err(at.invalid("target", index, "url", "each target needs a url"));
            }
        }
        let thresholds = convert_thresholds(&at, &raw.thresholds, &phases, &raw.targets)?;
        let repeat = raw.repeat.unwrap_or(1);
        if repeat == 0 {
            return Err(at.invalid("", 0, "repeat", "must be at least 1"));
        }
        let default_name = Path::new(name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "suite".into());
        Ok(Self {
            name: raw.name.unwrap_or(default_name),
            description: raw.description.unwrap_or_default(),
            path: None,
            repeat,
            host: raw.host,
            keys,
            behaviour,
            traffic,
            warmup,
            phases,
            seed,
            edits,
            flood,
            restart,
            targets: raw.targets,
            thresholds,
        })
    }

    /// Checks that every threshold names phases and targets the suite has
    /// (after command-line targets replaced the file's).
    pub fn check_thresholds(&self) -> Result<()> {
        let phases: Vec<&str> = self.phases.iter().map(|p| p.name.as_str()).collect();
        let targets: Vec<&str> = self.targets.iter().map(|t| t.name.as_str()).collect();
        for threshold in &self.thresholds {
            threshold
                .check_names(&phases, &targets)
                .map_err(|m| Error::Invalid(format!("{}: {m}", threshold.origin)))?;
        }
        Ok(())
    }

    /// Changes every phase's load (command-line overrides).
    pub fn adjust_loads(&mut self, mut change: impl FnMut(&mut LoadSpec)) {
        for phase in &mut self.phases {
            change(&mut phase.load);
        }
    }
}

fn convert_keys(at: &Locator<'_>, raw: Option<RawKeys>) -> Result<KeysSource> {
    let Some(raw) = raw else {
        return Err(at.invalid(
            "",
            0,
            "[keys]",
            "missing [keys] table: give `generate = N` or `file = \"links.csv\"`",
        ));
    };
    match (raw.generate, &raw.file) {
        (Some(_), Some(_)) => {
            Err(at.invalid("keys", 0, "file", "give either generate or file, not both"))
        }
        (None, None) => Err(at.invalid(
            "keys",
            0,
            "generate",
            "give `generate = N` or `file = \"links.csv\"`",
        )),
        (None, Some(file)) => {
            for key in ["domains", "url_prefix", "status", "seed"] {
                let given = match key {
                    "domains" => raw.domains.is_some(),
                    "url_prefix" => raw.url_prefix.is_some(),
                    "status" => raw.status.is_some(),
                    _ => raw.seed.is_some(),
                };
                if given {
                    return Err(at.invalid(
                        "keys",
                        0,
                        key,
                        "only for generated keys; a key file carries its own",
                    ));
                }
            }
            Ok(KeysSource::File(PathBuf::from(file)))
        }
        (Some(count), None) => {
            if count == 0 || count > crate::keys::MAX_GENERATED {
                return Err(at.invalid(
                    "keys",
                    0,
                    "generate",
                    format!("must be between 1 and {}", crate::keys::MAX_GENERATED),
                ));
            }
            let status = raw.status.unwrap_or(DEFAULT_STATUS);
            if !matches!(status, 301 | 302 | 307 | 308) {
                return Err(at.invalid("keys", 0, "status", "must be 301, 302, 307 or 308"));
            }
            let url_prefix = raw
                .url_prefix
                .unwrap_or_else(|| DEFAULT_URL_PREFIX.to_owned());
            if !(url_prefix.starts_with("http://") || url_prefix.starts_with("https://")) {
                return Err(at.invalid(
                    "keys",
                    0,
                    "url_prefix",
                    "must start with http:// or https://",
                ));
            }
            let domains = raw.domains.unwrap_or_else(|| vec![String::new()]);
            if domains.is_empty() {
                return Err(at.invalid(
                    "keys",
                    0,
                    "domains",
                    "give at least one domain (\"\" for the default)",
                ));
            }
            Ok(KeysSource::Generate(GeneratedKeys {
                count,
                domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
                url_prefix,
                status,
                seed: raw.seed.unwrap_or(0),
            }))
        }
    }
}

fn convert_traffic(at: &Locator<'_>, raw: &RawTraffic) -> Result<TrafficShape> {
    let defaults = TrafficShape::default();
    let popularity = match raw.popularity.as_deref().unwrap_or("uniform") {
        "uniform" => Popularity::Uniform,
        "sequential" => Popularity::Sequential,
        "zipf" => Popularity::Zipf {
            exponent: raw.exponent.unwrap_or(1.0),
        },
        "hot" => Popularity::Hot {
            keys: raw.hot_keys.unwrap_or(1),
            share: raw.hot_share.unwrap_or(1.0),
        },
        other => {
            return Err(at.invalid(
                "traffic",
                0,
                "popularity",
                format!("{other:?} is not one of uniform, zipf, hot, sequential"),
            ));
        }
    };
    if raw.exponent.is_some() && !matches!(popularity, Popularity::Zipf { .. }) {
        return Err(at.invalid("traffic", 0, "exponent", "only with popularity = \"zipf\""));
    }
    if (raw.hot_keys.is_some() || raw.hot_share.is_some())
        && !matches!(popularity, Popularity::Hot { .. })
    {
        let key = if raw.hot_keys.is_some() {
            "hot_keys"
        } else {
            "hot_share"
        };
        return Err(at.invalid("traffic", 0, key, "only with popularity = \"hot\""));
    }
    let method = match raw.method.as_deref().unwrap_or("GET") {
        "GET" | "get" => Method::Get,
        "HEAD" | "head" => Method::Head,
        other => {
            return Err(at.invalid(
                "traffic",
                0,
                "method",
                format!("{other:?} is not GET or HEAD"),
            ));
        }
    };
    let visitors = match raw.visitors.as_deref().unwrap_or("plain") {
        "plain" => {
            if raw.client_networks.is_some() {
                return Err(at.invalid(
                    "traffic",
                    0,
                    "client_networks",
                    "only with visitors = \"varied\"",
                ));
            }
            Visitors::Plain
        }
        "varied" => Visitors::varied(match &raw.client_networks {
            None => ClientNetworks::generated(),
            Some(list) => Arc::new(
                ClientNetworks::given(list)
                    .map_err(|m| at.invalid("traffic", 0, "client_networks", m))?,
            ),
        }),
        other => {
            return Err(at.invalid(
                "traffic",
                0,
                "visitors",
                format!("{other:?} is not \"plain\" or \"varied\""),
            ));
        }
    };
    let shape = TrafficShape {
        popularity,
        unknown_share: raw.unknown_share.unwrap_or(0.0),
        bot_share: raw.bot_share.unwrap_or(0.0),
        method,
        unknown_status: raw.unknown_status.unwrap_or(defaults.unknown_status),
        seed: raw.seed.unwrap_or(defaults.seed),
        visitors,
        extra_headers: Vec::new(),
        mix: None,
    };
    shape.validate().map_err(|e| {
        let key = match &e {
            Error::Invalid(m) if m.starts_with("unknown_share") => "unknown_share",
            Error::Invalid(m) if m.starts_with("bot_share") => "bot_share",
            Error::Invalid(m) if m.starts_with("zipf") => "exponent",
            _ => "hot_share",
        };
        at.invalid("traffic", 0, key, e.to_string())
    })?;
    Ok(shape)
}

fn convert_load(
    at: &Locator<'_>,
    section: &str,
    index: usize,
    raw: &RawLoad,
    base: &LoadSpec,
) -> Result<LoadSpec> {
    let mut load = base.clone();
    let mode = raw.mode.as_deref();
    match mode {
        None => {}
        Some("closed") => load.mode = Mode::Closed,
        Some("open") => {
            let rate = raw.rate.or(match base.mode {
                Mode::Open { rate } => Some(rate),
                Mode::Closed => None,
            });
            let Some(rate) = rate else {
                return Err(at.invalid(
                    section,
                    index,
                    "mode",
                    "the open loop needs `rate` (requests per second)",
                ));
            };
            load.mode = Mode::Open { rate };
        }
        Some(other) => {
            return Err(at.invalid(
                section,
                index,
                "mode",
                format!("{other:?} is not \"open\" or \"closed\""),
            ));
        }
    }
    if let Some(rate) = raw.rate {
        match load.mode {
            Mode::Open { .. } => load.mode = Mode::Open { rate },
            Mode::Closed => {
                return Err(at.invalid(
                    section,
                    index,
                    "rate",
                    "a rate needs mode = \"open\" (the closed loop goes as fast as it can)",
                ));
            }
        }
    }
    if let Some(v) = raw.connections {
        load.connections = v;
    }
    if let Some(v) = raw.threads {
        load.threads = v;
    }
    if let Some(v) = raw.depth {
        load.depth = v;
    }
    if let Some(v) = raw.max_requests {
        load.max_requests = Some(v);
    }
    if let Some(v) = &raw.cpus {
        load.cpus = v.clone();
    }
    if let Some(v) = raw.requests_per_connection {
        load.requests_per_connection = Some(v);
    }
    if let Some(v) = raw.tls_resumption {
        load.tls_resumption = v;
    }
    if let Some(v) = &raw.source {
        load.source = v.clone();
    }
    if let Some(v) = &raw.workers {
        if let Some(bad) = v.iter().find(|a| !a.contains(':')) {
            return Err(at.invalid(
                section,
                index,
                "workers",
                format!("{bad:?} is not a worker address (host:port)"),
            ));
        }
        load.workers = v.clone();
    }
    if let Some(v) = at.duration(section, index, "duration", raw.duration.as_ref())? {
        load.duration = v;
    }
    if let Some(v) = at.duration(section, index, "timeout", raw.timeout.as_ref())? {
        load.timeout = v;
    }
    if let Some(v) = at.duration(section, index, "grace", raw.grace.as_ref())? {
        load.grace = v;
    }
    if let Some(v) = at.duration(section, index, "settle", raw.settle.as_ref())? {
        load.settle = v;
    }
    load.validate().map_err(|e| {
        let message = e.to_string();
        let key = [
            "requests_per_connection",
            "connections",
            "threads",
            "depth",
            "duration",
            "timeout",
            "rate",
            "workers",
        ]
        .into_iter()
        .find(|k| message.contains(k))
        .unwrap_or("mode");
        at.invalid(section, index, key, message)
    })?;
    Ok(load)
}

fn convert_seed(at: &Locator<'_>, raw: &RawSeed) -> Result<SeedSpec> {
    let method = match raw.method.as_deref().unwrap_or("none") {
        "none" => SeedMethod::None,
        "api" => SeedMethod::Api,
        other => {
            return Err(at.invalid("seed", 0, "method", format!("{other:?} is not \"none\" or \"api\" (for an engine import, use a target setup command with {{links_csv}})")));
        }
    };
    let batch = raw.batch.unwrap_or(1000);
    if batch == 0 {
        return Err(at.invalid("seed", 0, "batch", "must be at least 1"));
    }
    Ok(SeedSpec {
        method,
        batch,
        wait: at
            .duration("seed", 0, "wait", raw.wait.as_ref())?
            .unwrap_or(Duration::from_secs(60)),
    })
}

fn convert_edits(at: &Locator<'_>, raw: &RawEdits) -> Result<EditsSpec> {
    let count = raw.count.unwrap_or(100);
    if count == 0 {
        return Err(at.invalid("edits", 0, "count", "must be at least 1"));
    }
    Ok(EditsSpec {
        count,
        interval: at
            .duration("edits", 0, "interval", raw.interval.as_ref())?
            .unwrap_or(Duration::from_millis(100)),
        timeout: at
            .duration("edits", 0, "timeout", raw.timeout.as_ref())?
            .unwrap_or(Duration::from_secs(5)),
        domain: raw.domain.clone().unwrap_or_default(),
    })
}

fn convert_flood(at: &Locator<'_>, raw: &RawFlood, phases: &[Phase]) -> Result<FloodSpec> {
    let defaults = FloodSpec::default();
    let rate = raw.rate.unwrap_or(defaults.rate);
    if !(rate > 0.0 && rate.is_finite() && rate <= 1_000_000.0) {
        return Err(at.invalid(
            "flood",
            0,
            "rate",
            format!(
                "must be a number of attempts per second above 0 and at most 1000000, not {rate}"
            ),
        ));
    }
    let connections = raw.connections.unwrap_or(defaults.connections);
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        return Err(at.invalid(
            "flood",
            0,
            "connections",
            format!("must be between 1 and {MAX_CONNECTIONS}, not {connections}"),
        ));
    }
    let addresses = raw.addresses.unwrap_or(defaults.addresses);
    if !(1..=MAX_ADDRESSES).contains(&addresses) {
        return Err(at.invalid(
            "flood",
            0,
            "addresses",
            format!(
                "must be between 1 and {MAX_ADDRESSES} (client addresses come from 198.18.0.0/15), not {addresses}"
            ),
        ));
    }
    let code = raw.code.clone().unwrap_or(defaults.code);
    if !valid_code(&code) {
        return Err(at.invalid(
            "flood",
            0,
            "code",
            format!("{code:?} is not a valid code ([A-Za-z0-9_-], 1-64 characters)"),
        ));
    }
    let timeout = at
        .duration("flood", 0, "timeout", raw.timeout.as_ref())?
        .unwrap_or(defaults.timeout);
    if timeout.is_zero() {
        return Err(at.invalid("flood", 0, "timeout", "must be positive"));
    }
    let flooded = raw.phases.clone().unwrap_or_default();
    if raw.phases.is_some() && flooded.is_empty() {
        return Err(at.invalid(
            "flood",
            0,
            "phases",
            "name at least one phase (leave `phases` out to flood every phase)",
        ));
    }
    for name in &flooded {
        if !phases.iter().any(|p| &p.name == name) {
            let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
            return Err(at.invalid(
                "flood",
                0,
                "phases",
                format!(
                    "no phase is named {name:?} (the phases: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(FloodSpec {
        rate,
        connections,
        addresses,
        code,
        timeout,
        phases: flooded,
    })
}

fn convert_restart(at: &Locator<'_>, raw: &RawRestart) -> Result<RestartSpec> {
    let kill = match raw.signal.as_deref().unwrap_or("term") {
        "term" | "TERM" | "SIGTERM" => false,
        "kill" | "KILL" | "SIGKILL" => true,
        other => {
            return Err(at.invalid(
                "restart",
                0,
                "signal",
                format!("{other:?} is not \"term\" or \"kill\""),
            ));
        }
    };
    let Some(at_time) = at.duration("restart", 0, "at", raw.at.as_ref())? else {
        return Err(at.invalid(
            "restart",
            0,
            "at",
            "give the time into the run, e.g. at = \"5s\"",
        ));
    };
    Ok(RestartSpec {
        at: at_time,
        kill,
        timeout: at
            .duration("restart", 0, "timeout", raw.timeout.as_ref())?
            .unwrap_or(Duration::from_secs(120)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_suite() {
        let suite = Suite::parse("[keys]\ngenerate = 10\n", "x.toml").unwrap();
        assert_eq!(suite.name, "x");
        assert_eq!(suite.phases.len(), 1);
        assert_eq!(suite.phases[0].load, LoadSpec::default());
    }

    #[test]
    fn behaviour_and_visitors() {
        let dir = tempfile::tempdir().unwrap();
        let good = r#"{"variants": [{"url": "https://a.example/", "weight": 50}, {"url": "https://b.example/", "weight": 50}]}"#;
        std::fs::write(dir.path().join("ab.json"), good).unwrap();
        let bad = r#"{"rules": [{"url": "https://x.example/", "conditions": [{"type": "device", "value": "phone"}]}]}"#;
        std::fs::write(dir.path().join("bad.json"), bad).unwrap();
        let text = |file: &str, traffic: &str| {
            format!("[keys]\ngenerate = 10\nbehaviour = \"{file}\"\n\n[traffic]\n{traffic}\n")
        };
        let suite = Suite::parse_in(
            &text("ab.json", "visitors = \"varied\""),
            "s.toml",
            dir.path(),
        )
        .unwrap();
        let behaviour = suite.behaviour.expect("a behaviour");
        assert_eq!(behaviour.destinations().len(), 2);
        assert_eq!(suite.traffic.visitors.name(), "varied");
        let err = |file: &str, traffic: &str| {
            Suite::parse_in(&text(file, traffic), "s.toml", dir.path())
                .unwrap_err()
                .to_string()
        };
        let message = err("bad.json", "");
        assert!(
            message.starts_with("s.toml:3:1: [keys] behaviour: ")
                && message.ends_with("bad.json: rules[0].conditions[0].value: device must be one of mobile, tablet, desktop"),
            "{message}"
        );
        assert!(err("none.json", "").contains("cannot read behaviour file"));
        let message = err("ab.json", "visitors = \"many\"");
        assert!(
            message.starts_with("s.toml:6:1: [traffic] visitors"),
            "{message}"
        );
        let message = err("ab.json", "client_networks = [\"10.0.0.0/8\"]");
        assert!(
            message.contains("only with visitors = \"varied\""),
            "{message}"
        );
        let message = err(
            "ab.json",
            "visitors = \"varied\"\nclient_networks = [\"10.0.0.0/40\"]",
        );
        assert!(
            message.starts_with("s.toml:7:1: [traffic] client_networks"),
            "{message}"
        );
        let message = err("ab.json", "[seed]\nmethod = \"api\"");
        assert!(
            message.contains("[seed] method: links with a behaviour"),
            "{message}"
        );
    }

    #[test]
    fn connections_per_request_and_tls_resumption() {
        let text = "[keys]\ngenerate = 10\n\n[load]\ntls_resumption = true\n\n[[phase]]\nname = \"keep-alive\"\n\n[[phase]]\nname = \"handshakes\"\nrequests_per_connection = 1\ntls_resumption = false\n";
        let suite = Suite::parse(text, "s.toml").unwrap();
        let [keep_alive, handshakes] = &suite.phases[..] else {
            panic!("{:?}", suite.phases);
        };
        assert_eq!(keep_alive.load.requests_per_connection, None);
        assert!(keep_alive.load.tls_resumption);
        assert_eq!(handshakes.load.requests_per_connection, Some(1));
        assert!(!handshakes.load.tls_resumption);
        assert_eq!(LoadSpec::default().requests_per_connection, None);
        assert!(!LoadSpec::default().tls_resumption);

        let err = |text: &str| Suite::parse(text, "s.toml").unwrap_err().to_string();
        let message = err("[keys]\ngenerate = 10\n\n[[phase]]\nrequests_per_connection = 0\n");
        assert!(
            message.starts_with("s.toml:5:1: [phase] requests_per_connection: requests_per_connection must be at least 1"),
            "{message}"
        );
        let message = err("[keys]\ngenerate = 10\n[load]\ntls_resumption = \"yes\"\n");
        assert!(message.starts_with("s.toml:4:"), "{message}");
    }

    #[test]
    fn phases_inherit_and_errors_have_lines() {
        let text = "[keys]\ngenerate = 10\n\n[load]\nmode = \"open\"\nrate = 100\n\n[[phase]]\nname = \"a\"\n\n[[phase]]\nname = \"b\"\nduration = \"soon\"\n";
        let err = Suite::parse(text, "s.toml").unwrap_err().to_string();
        assert!(err.starts_with("s.toml:13:1: [phase] duration"), "{err}");
        let err = Suite::parse("[keys]\ngenerate = 10\n[load]\nrat = 5\n", "s.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.toml:4:"), "{err}");
    }
}
