//! What coordinator and workers say to each other: JSON lines over one TCP
//! connection per phase. The coordinator sends `prepare` (the phase: target,
//! keys, traffic, this worker's share of the load), the worker answers
//! `ready`; the coordinator sends `start` (one instant for all workers, in
//! Unix nanoseconds); the worker sends `progress` four times a second and
//! then `done` with its counts and its histograms in HdrHistogram's V2
//! serialization (base64), or `failed`. `stop` ends a phase early.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::behaviour::Behaviour;
use crate::error::{Error, Result};
use crate::hlog::{self, IntervalHistogram, IntervalRecorder};
use crate::keys::{GeneratedKeys, KeySet};
use crate::mix::Mix;
use crate::networks::ClientNetworks;
use crate::run::{LoadSpec, RunSpec};
use crate::stats::{ErrorKind, Recorder};
use crate::traffic::{Method, Popularity, TrafficShape};
use crate::visitors::Visitors;

/// The protocol's version: a worker refuses orders of another.
pub const PROTOCOL: u32 = 2;

/// Longest line either side accepts (a key file travels in one).
pub const MAX_LINE: usize = 1 << 30;

/// Coordinator to worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    Prepare(Box<Order>),
    Start { at_unix_ns: u64 },
    Stop,
}

/// Worker to coordinator.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Message {
    Ready,
    Progress(WorkerProgress),
    Done(Box<Counts>),
    Failed { message: String },
}

/// The live figures of a worker's progress line.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct WorkerProgress {
    pub responses: u64,
    pub errors: u64,
    pub in_flight: u64,
    pub max_latency_us: u64,
}

/// One worker's part of a phase.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Order {
    /// [`PROTOCOL`] of the coordinator.
    #[serde(default)]
    pub protocol: u32,
    pub target: String,
    pub phase: String,
    pub round: usize,
    pub addr: SocketAddr,
    pub host: String,
    pub tls: bool,
    /// This worker's share (its rate, connections and requests).
    pub load: LoadSpec,
    /// Added to the common start: workers' requests interleave.
    pub start_offset_ns: u64,
    pub keys: WireKeys,
    pub traffic: WireTraffic,
}

/// The key set: how to generate it, or its lines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireKeys {
    Generated {
        count: u64,
        domains: Vec<String>,
        url_prefix: String,
        status: u16,
        seed: u64,
        behaviour: Option<String>,
    },
    /// Key-file lines (`domain,code,url[,status]` or a bare code).
    Lines {
        text: String,
        behaviour: Option<String>,
    },
}

/// The traffic shape, with the mix's text and the networks' list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireTraffic {
    pub popularity: Popularity,
    pub unknown_share: f64,
    pub bot_share: f64,
    pub method: Method,
    pub unknown_status: u16,
    pub seed: u64,
    /// "plain" or "varied".
    pub visitors: String,
    /// Varied visitors' networks; `None`: the generated set.
    pub client_networks: Option<Vec<String>>,
    pub extra_headers: Vec<String>,
    /// The mix file's name and text.
    pub mix: Option<(String, String)>,
}

/// A worker's counts, histograms serialized.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Counts {
    /// V2-serialized, base64.
    pub latency: String,
    pub send_lag: String,
    pub service: String,
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<String, u64>,
    pub sent: u64,
    pub responses: u64,
    pub ok: u64,
    pub connections_opened: u64,
    pub tls_handshakes: u64,
    pub tls_resumed: u64,
    pub destinations: Vec<u64>,
    pub per_second: Vec<u64>,
    pub errors_per_second: Vec<u64>,
    pub cpu_ns: u64,
    pub elapsed_ns: u64,
    /// Latencies per second of the worker's run (for `.hlog` files): the
    /// second, and its histogram V2-serialized, base64.
    pub intervals: Vec<(usize, String)>,
}

impl Order {
    /// Worker `index`'s part of `spec`, whose load is `load`.
    pub fn new(spec: &RunSpec, load: LoadSpec, index: usize, start_offset_ns: u64) -> Self {
        let mut traffic = WireTraffic::from_shape(&spec.shape);
        // Each worker its own random sequence.
        traffic.seed = traffic.seed.wrapping_add((index as u64) << 32);
        Self {
            protocol: PROTOCOL,
            target: spec.target.clone(),
            phase: spec.phase.clone(),
            round: spec.round,
            addr: spec.addr,
            host: spec.host.clone(),
            tls: spec.tls,
            load,
            start_offset_ns,
            keys: WireKeys::from_keys(&spec.keys),
            traffic,
        }
    }

    /// The run this order describes, on this worker's CPUs (`cpus`).
    pub fn run_spec(&self, cpus: &[usize]) -> Result<RunSpec> {
        if self.protocol != PROTOCOL {
            return Err(Error::Invalid(format!(
                "the coordinator speaks protocol {}, this worker {PROTOCOL}: run the same ricochet-loadtest on both",
                self.protocol
            )));
        }
        let mut load = self.load.clone();
        load.workers.clear();
        load.cpus = cpus.to_vec();
        Ok(RunSpec {
            target: self.target.clone(),
            phase: self.phase.clone(),
            round: self.round,
            addr: self.addr,
            host: self.host.clone(),
            tls: self.tls,
            load,
            shape: self.traffic.to_shape()?,
            keys: Arc::new(self.keys.to_keys()?),
            server_pid: None,
        })
    }
}

/// Behaviour JSON from what an import row carries (`,"rules":…`).
fn behaviour_json(keys: &KeySet) -> Option<String> {
    let tail = keys.behaviour()?.jsonl_tail();
    Some(format!("{{{}}}", tail.strip_prefix(',').unwrap_or(tail)))
}

impl WireKeys {
    pub fn from_keys(keys: &KeySet) -> Self {
        let behaviour = behaviour_json(keys);
        if let Some(spec) = keys.generated_spec() {
            return Self::Generated {
                count: spec.count,
                domains: spec.domains.clone(),
                url_prefix: spec.url_prefix.clone(),
                status: spec.status,
                seed: spec.seed,
                behaviour,
            };
        }
        let mut text = String::new();
        for index in 0..keys.len() {
            let record = keys.record(index);
            match (&record.url, record.status) {
                (None, _) if record.domain.is_empty() => text.push_str(&record.code),
                (url, status) => {
                    text.push_str(&record.domain);
                    text.push(',');
                    text.push_str(&record.code);
                    text.push(',');
                    text.push_str(url.as_deref().unwrap_or_default());
                    if let Some(status) = status {
                        text.push_str(&format!(",{status}"));
                    }
                }
            }
            text.push('\n');
        }
        Self::Lines { text, behaviour }
    }

    pub fn to_keys(&self) -> Result<KeySet> {
        let (keys, behaviour) = match self {
            Self::Generated {
                count,
                domains,
                url_prefix,
                status,
                seed,
                behaviour,
            } => (
                KeySet::generated(GeneratedKeys {
                    count: *count,
                    domains: domains.clone(),
                    url_prefix: url_prefix.clone(),
                    status: *status,
                    seed: *seed,
                })?,
                behaviour,
            ),
            Self::Lines { text, behaviour } => {
                (KeySet::parse(text, "the coordinator's keys")?, behaviour)
            }
        };
        let behaviour = behaviour
            .as_deref()
            .map(|json| Behaviour::parse(json, "the coordinator's behaviour"))
            .transpose()?;
        Ok(keys.with_behaviour(behaviour.map(Arc::new)))
    }
}

impl WireTraffic {
    pub fn from_shape(shape: &TrafficShape) -> Self {
        Self {
            popularity: shape.popularity,
            unknown_share: shape.unknown_share,
            bot_share: shape.bot_share,
            method: shape.method,
            unknown_status: shape.unknown_status,
            seed: shape.seed,
            visitors: shape.visitors.name().to_owned(),
            client_networks: shape
                .visitors
                .networks()
                .and_then(|n| n.given_list())
                .map(<[String]>::to_vec),
            extra_headers: shape.extra_headers.clone(),
            mix: shape
                .mix
                .as_ref()
                .map(|mix| (mix.origin().to_owned(), mix.source().to_owned())),
        }
    }

    pub fn to_shape(&self) -> Result<TrafficShape> {
        let visitors = match (self.visitors.as_str(), &self.client_networks) {
            ("plain", _) => Visitors::Plain,
            ("varied", None) => Visitors::varied(ClientNetworks::generated()),
            ("varied", Some(list)) => Visitors::varied(Arc::new(
                ClientNetworks::given(list).map_err(Error::Invalid)?,
            )),
            (other, _) => return Err(Error::Invalid(format!("unknown visitors {other:?}"))),
        };
        let mix = self
            .mix
            .as_ref()
            .map(|(origin, source)| Mix::parse(source, origin))
            .transpose()?;
        let shape = TrafficShape {
            popularity: self.popularity,
            unknown_share: self.unknown_share,
            bot_share: self.bot_share,
            method: self.method,
            unknown_status: self.unknown_status,
            seed: self.seed,
            visitors,
            extra_headers: self.extra_headers.clone(),
            mix: mix.map(Arc::new),
        };
        shape.validate()?;
        Ok(shape)
    }
}

fn encode(histogram: &Histogram<u64>) -> Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|e| Error::Invalid(format!("cannot serialize a histogram: {e:?}")))?;
    Ok(BASE64.encode(bytes))
}

fn decode(text: &str) -> Result<Histogram<u64>> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| Error::Invalid(format!("a worker's histogram is not base64: {e}")))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| Error::Invalid(format!("a worker's histogram does not decode: {e:?}")))
}

impl Counts {
    pub fn from_recorder(recorder: &Recorder) -> Result<Self> {
        Ok(Self {
            latency: encode(&recorder.latency)?,
            send_lag: encode(&recorder.send_lag)?,
            service: encode(&recorder.service)?,
            statuses: recorder
                .statuses
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(status, n)| (status as u16, *n))
                .collect(),
            errors: ErrorKind::ALL
                .iter()
                .filter(|kind| recorder.errors_of(**kind) > 0)
                .map(|kind| (kind.as_str().to_owned(), recorder.errors_of(*kind)))
                .collect(),
            sent: recorder.sent,
            responses: recorder.responses,
            ok: recorder.ok,
            connections_opened: recorder.connections_opened,
            tls_handshakes: recorder.tls_handshakes,
            tls_resumed: recorder.tls_resumed,
            destinations: recorder.destinations.clone(),
            per_second: recorder.per_second.clone(),
            errors_per_second: recorder.errors_per_second.clone(),
            cpu_ns: recorder.cpu_ns,
            elapsed_ns: recorder.elapsed_ns,
            intervals: recorder
                .intervals
                .seconds()
                .into_iter()
                .map(|interval| (interval.second, BASE64.encode(interval.encoded)))
                .collect(),
        })
    }

    /// Back into a recorder, histograms decoded (to be merged exactly).
    pub fn to_recorder(&self) -> Result<Recorder> {
        let mut recorder = Recorder::new();
        recorder.latency = decode(&self.latency)?;
        recorder.send_lag = decode(&self.send_lag)?;
        recorder.service = decode(&self.service)?;
        for (status, n) in &self.statuses {
            let slot = recorder
                .statuses
                .get_mut(usize::from(*status))
                .ok_or_else(|| Error::Invalid(format!("a worker reported status {status}")))?;
            *slot = *n;
        }
        for (name, n) in &self.errors {
            let kind = ErrorKind::ALL
                .iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(|| Error::Invalid(format!("a worker reported error {name:?}")))?;
            recorder.errors[*kind as usize] = *n;
        }
        recorder.sent = self.sent;
        recorder.responses = self.responses;
        recorder.ok = self.ok;
        recorder.connections_opened = self.connections_opened;
        recorder.tls_handshakes = self.tls_handshakes;
        recorder.tls_resumed = self.tls_resumed;
        recorder.destinations = self.destinations.clone();
        recorder.per_second = self.per_second.clone();
        recorder.errors_per_second = self.errors_per_second.clone();
        recorder.cpu_ns = self.cpu_ns;
        recorder.elapsed_ns = self.elapsed_ns;
        let mut seconds = Vec::with_capacity(self.intervals.len());
        for (second, text) in &self.intervals {
            let encoded = BASE64
                .decode(text)
                .ok()
                .filter(|bytes| hlog::decode(bytes).is_some());
            // A damaged second is refused here, not lost in a merge later.
            let encoded = encoded.ok_or_else(|| {
                Error::Invalid(format!(
                    "a worker's latencies of second {second} do not decode"
                ))
            })?;
            seconds.push(IntervalHistogram {
                second: *second,
                encoded,
            });
        }
        recorder.intervals = IntervalRecorder::from_seconds(seconds);
        Ok(recorder)
    }
}

/// Writes one message as a JSON line.
pub fn send<T: Serialize>(out: &mut impl Write, message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Reads lines into `buffer` (kept across read timeouts) until one is
/// complete; parses it. `Ok(None)`: the peer closed the connection.
pub fn receive<T: for<'de> Deserialize<'de>>(
    input: &mut impl BufRead,
    buffer: &mut Vec<u8>,
) -> std::io::Result<Option<T>> {
    loop {
        let before = buffer.len();
        let read = input.read_until(b'\n', buffer)?;
        if read == 0 {
            return Ok(None);
        }
        if buffer.len() > MAX_LINE {
            return Err(std::io::Error::other("a line longer than 1 GiB"));
        }
        if buffer.last() != Some(&b'\n') {
            // The peer closed in the middle of a line.
            if buffer.len() > before {
                continue;
            }
            return Ok(None);
        }
        let message = serde_json::from_slice(buffer).map_err(std::io::Error::other);
        buffer.clear();
        return message.map(Some);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_travel_exactly() {
        let mut recorder = Recorder::new();
        for (latency, status) in [(120, 301), (90_000, 301), (7, 404)] {
            recorder.response(status, latency, 0);
        }
        recorder.error(ErrorKind::Timeout, 2, 1);
        recorder.response(301, 450, 1);
        recorder.sent = 6;
        recorder.service.saturating_record(80);
        let line = serde_json::to_string(&Message::Done(Box::new(
            Counts::from_recorder(&recorder).unwrap(),
        )))
        .unwrap();
        let Message::Done(counts) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        let back = counts.to_recorder().unwrap();
        assert_eq!(back.latency, recorder.latency);
        assert_eq!(back.latency.len(), 4);
        assert_eq!(back.service, recorder.service);
        assert_eq!(back.service.len(), 1);
        assert_eq!(back.statuses, recorder.statuses);
        assert_eq!(back.errors, recorder.errors);
        assert_eq!(back.errors_per_second, vec![0, 2]);
        assert_eq!(back.sent, 6);
        // Each second's latencies travel too (the `.hlog` of a run on workers).
        let seconds = back.intervals.seconds();
        assert_eq!(seconds, recorder.intervals.seconds());
        let counts: Vec<(usize, u64)> = seconds
            .iter()
            .map(|s| (s.second, hlog::decode(&s.encoded).unwrap().len()))
            .collect();
        assert_eq!(counts, vec![(0, 3), (1, 1)]);
    }

    #[test]
    fn keys_and_behaviour_travel() {
        let text = ",a,https://a.example/,301\ngo.example,b,https://b.example/x,y\nc\n";
        let behaviour = Behaviour::parse(
            r#"{"variants": [{"url": "https://v1.example/", "weight": 50}, {"url": "https://v2.example/", "weight": 50}]}"#,
            "b.json",
        )
        .unwrap();
        let keys = KeySet::parse(text, "k")
            .unwrap()
            .with_behaviour(Some(Arc::new(behaviour)));
        let back = WireKeys::from_keys(&keys).to_keys().unwrap();
        assert_eq!(back.len(), 3);
        for index in 0..3 {
            assert_eq!(back.record(index), keys.record(index));
        }
        assert_eq!(
            back.behaviour().map(|b| b.destinations().to_vec()),
            keys.behaviour().map(|b| b.destinations().to_vec())
        );
    }

    #[test]
    fn an_order_travels_and_other_versions_are_refused() {
        use crate::schedule::Mode;
        let spec = RunSpec {
            target: "t".into(),
            phase: "p".into(),
            round: 2,
            addr: "127.0.0.1:9".parse().unwrap(),
            host: "go.example".into(),
            tls: true,
            load: LoadSpec {
                mode: Mode::Open { rate: 500.0 },
                connections: 3,
                depth: 4,
                source: vec!["127.0.0.2".parse().unwrap()],
                ..LoadSpec::default()
            },
            shape: TrafficShape {
                popularity: Popularity::Zipf { exponent: 1.2 },
                bot_share: 0.1,
                visitors: Visitors::varied(Arc::new(
                    ClientNetworks::given(&["203.0.113.0/24".into()]).unwrap(),
                )),
                ..TrafficShape::default()
            },
            keys: Arc::new(KeySet::generated(GeneratedKeys::default()).unwrap()),
            server_pid: Some(1),
        };
        let order = Order::new(&spec, spec.load.clone(), 1, 1000);
        let line = serde_json::to_string(&Command::Prepare(Box::new(order))).unwrap();
        let Command::Prepare(order) = serde_json::from_str(&line).unwrap() else {
            panic!("{line}");
        };
        let back = order.run_spec(&[1]).unwrap();
        assert_eq!(back.load.cpus, [1]);
        assert_eq!(
            LoadSpec {
                cpus: Vec::new(),
                ..back.load
            },
            spec.load
        );
        assert_eq!(
            (back.host, back.tls, back.round),
            (spec.host.clone(), true, 2)
        );
        assert_eq!(back.shape.popularity, spec.shape.popularity);
        assert_eq!(back.shape.visitors, spec.shape.visitors);
        // Worker 1's own random sequence.
        assert_ne!(back.shape.seed, spec.shape.seed);
        assert_eq!(back.server_pid, None);
        let mut other = order.clone();
        other.protocol = PROTOCOL + 1;
        let message = other.run_spec(&[]).unwrap_err().to_string();
        assert!(message.contains("protocol 3, this worker 2"), "{message}");
    }
}
