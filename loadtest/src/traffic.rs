//! Traffic shapes: which key each request asks for (uniform, Zipf, hot keys,
//! sequential), a share of unknown codes and of bot user agents, who asks
//! (plain or varied visitors, `visitors.rs`, or a mix from a file,
//! `mix.rs`), and the request bytes themselves.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::KeySet;
use crate::mix::{Mix, ShapeDraw};
use crate::visitors::Visitors;

/// User agents of crawlers and link-preview fetchers (plain visitors).
pub const BOT_AGENTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Twitterbot/1.0",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "WhatsApp/2.23.20.0",
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
];

/// User agents of ordinary browsers (plain visitors).
pub const BROWSER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
];

/// How popular each key is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "popularity")]
pub enum Popularity {
    /// Every key equally likely.
    Uniform,
    /// Rank r has weight 1/r^exponent; key 0 is rank 1 (the most popular).
    Zipf { exponent: f64 },
    /// `share` of requests go to the first `keys` keys, the rest uniformly to all.
    Hot { keys: u64, share: f64 },
    /// Keys in order, round and round: exact per-key counts.
    Sequential,
}

/// HTTP method of the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Head,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
        }
    }
}

/// Everything that decides what a request looks like.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrafficShape {
    pub popularity: Popularity,
    /// Share (0..=1) of requests for codes that do not exist (expect 404).
    pub unknown_share: f64,
    /// Share (0..=1) of requests with a crawler's user agent.
    pub bot_share: f64,
    pub method: Method,
    /// Status expected for unknown codes.
    pub unknown_status: u16,
    /// Random seed of the generator threads (thread i uses seed + i).
    pub seed: u64,
    /// Who sends the requests: their User-Agent, Accept-Language and
    /// X-Forwarded-For.
    pub visitors: Visitors,
    /// Header lines every request carries besides those (each `Name: value`).
    pub extra_headers: Vec<String>,
    /// Weighted request shapes from a file: their user agents, languages,
    /// client networks, queries, methods, unknown codes and bots replace
    /// `visitors`, `method`, `unknown_share` and `bot_share`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "mix_origin")]
    pub mix: Option<Arc<Mix>>,
}

/// A mix appears in reports as the file it came from.
fn mix_origin<S: serde::Serializer>(
    mix: &Option<Arc<Mix>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    mix.as_deref().map(Mix::origin).serialize(serializer)
}

impl Default for TrafficShape {
    fn default() -> Self {
        Self {
            popularity: Popularity::Uniform,
            unknown_share: 0.0,
            bot_share: 0.0,
            method: Method::Get,
            unknown_status: 404,
            seed: 1,
            visitors: Visitors::Plain,
            extra_headers: Vec::new(),
            mix: None,
        }
    }
}

impl TrafficShape {
    /// Checks shares and parameters.
    pub fn validate(&self) -> Result<()> {
        let share = |name: &str, v: f64| {
            if (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err(Error::Invalid(format!(
                    "{name} must be between 0 and 1, not {v}"
                )))
            }
        };
        share("unknown_share", self.unknown_share)?;
        share("bot_share", self.bot_share)?;
        if let Some(mix) = &self.mix {
            let replaced = [
                ("unknown_share", self.unknown_share > 0.0),
                ("bot_share", self.bot_share > 0.0),
                ("method", self.method != Method::Get),
                ("visitors", self.visitors != Visitors::Plain),
            ];
            if let Some((name, _)) = replaced.iter().find(|(_, set)| *set) {
                return Err(Error::Invalid(format!(
                    "{name} comes from the mix {} (its shapes' shares), not from the traffic shape",
                    mix.origin()
                )));
            }
        }
        match self.popularity {
            Popularity::Zipf { exponent } if !(exponent > 0.0 && exponent.is_finite()) => Err(
                Error::Invalid(format!("zipf exponent must be positive, not {exponent}")),
            ),
            Popularity::Hot { keys, share: s } => {
                if keys == 0 {
                    return Err(Error::Invalid("hot keys must be at least 1".into()));
                }
                share("hot share", s)
            }
            _ => Ok(()),
        }
    }
}

/// What one request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Key at this index of the key set.
    Known(u64),
    /// A code that does not exist.
    Unknown,
}

/// One request to render: its key, whether a bot sends it, whether it is a
/// HEAD request, and its mix shape (zero without a mix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Draw {
    pub pick: Pick,
    pub bot: bool,
    pub head: bool,
    pub shape: ShapeDraw,
}

/// Picks keys and renders requests; one per generator thread.
#[derive(Debug)]
pub struct RequestMaker {
    rng: SmallRng,
    zipf: Option<Zipf<f64>>,
    shape: TrafficShape,
    keys_len: u64,
    next_sequential: u64,
    /// Host header for keys on the default domain.
    default_host: Vec<u8>,
}

impl RequestMaker {
    /// `thread` decorrelates generator threads; sequential traffic starts at
    /// `thread` and steps by `threads` so threads together visit keys in order.
    pub fn new(
        shape: &TrafficShape,
        keys: &KeySet,
        default_host: &str,
        thread: usize,
    ) -> Result<Self> {
        shape.validate()?;
        let zipf = match shape.popularity {
            Popularity::Zipf { exponent } => Some(
                Zipf::new(keys.len() as f64, exponent)
                    .map_err(|e| Error::Invalid(format!("zipf: {e}")))?,
            ),
            _ => None,
        };
        Ok(Self {
            rng: SmallRng::seed_from_u64(shape.seed.wrapping_add(thread as u64 * 0x9E37_79B9)),
            zipf,
            shape: shape.clone(),
            keys_len: keys.len(),
            next_sequential: thread as u64,
            default_host: default_host.as_bytes().to_vec(),
        })
    }

    /// The next request: its key, whether it comes from a bot, its method
    /// and mix shape. `stride` is the number of generator threads: with
    /// sequential traffic, thread i takes keys i, i+stride, …
    pub fn pick(&mut self, stride: u64) -> Draw {
        let (bot, unknown, head, shape) = match &self.shape.mix {
            Some(mix) => {
                let shape = mix.draw(&mut self.rng);
                let head = mix.method(shape) == Method::Head;
                (mix.bot(shape), mix.unknown(shape), head, shape)
            }
            None => {
                let bot =
                    self.shape.bot_share > 0.0 && self.rng.random::<f64>() < self.shape.bot_share;
                let unknown = self.shape.unknown_share > 0.0
                    && self.rng.random::<f64>() < self.shape.unknown_share;
                let head = self.shape.method == Method::Head;
                (bot, unknown, head, ShapeDraw { shape: 0, query: 0 })
            }
        };
        let draw = |pick| Draw {
            pick,
            bot,
            head,
            shape,
        };
        if unknown {
            return draw(Pick::Unknown);
        }
        let index = match self.shape.popularity {
            Popularity::Uniform => self.rng.random_range(0..self.keys_len),
            Popularity::Zipf { .. } => {
                let rank = self.zipf.as_ref().map_or(1.0, |z| z.sample(&mut self.rng));
                (rank as u64).clamp(1, self.keys_len) - 1
            }
            Popularity::Hot { keys, share } => {
                if self.rng.random::<f64>() < share {
                    self.rng.random_range(0..keys.min(self.keys_len))
                } else {
                    self.rng.random_range(0..self.keys_len)
                }
            }
            Popularity::Sequential => {
                let index = self.next_sequential % self.keys_len;
                self.next_sequential = self.next_sequential.wrapping_add(stride);
                index
            }
        };
        draw(Pick::Known(index))
    }

    /// Appends the request `draw` to `out`.
    pub fn render(&mut self, keys: &KeySet, draw: Draw, out: &mut Vec<u8>) {
        let method = if draw.head { Method::Head } else { Method::Get };
        out.extend_from_slice(method.as_str().as_bytes());
        out.extend_from_slice(b" /");
        let host: &[u8] = match draw.pick {
            Pick::Known(index) => {
                keys.write_code(index, out);
                let domain = keys.domain(index);
                if domain.is_empty() {
                    &self.default_host
                } else {
                    domain.as_bytes()
                }
            }
            Pick::Unknown => {
                out.extend_from_slice(b"u_");
                let mut n: u64 = self.rng.random();
                for _ in 0..10 {
                    out.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
                    n /= 36;
                }
                &self.default_host
            }
        };
        if let Some(mix) = &self.shape.mix {
            out.extend_from_slice(mix.query(draw.shape));
        }
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(host);
        let bot = draw.bot;
        match &self.shape.visitors {
            _ if self.shape.mix.is_some() => {
                out.extend_from_slice(b"\r\n");
                if let Some(mix) = &self.shape.mix {
                    mix.render_headers(draw.shape, &mut self.rng, out);
                }
            }
            Visitors::Plain => {
                out.extend_from_slice(b"\r\nUser-Agent: ");
                let agents = if bot { BOT_AGENTS } else { BROWSER_AGENTS };
                let agent = agents[self.rng.random_range(0..agents.len())];
                out.extend_from_slice(agent.as_bytes());
                out.extend_from_slice(b"\r\nAccept: */*\r\n");
            }
            Visitors::Varied(mix) => {
                out.extend_from_slice(b"\r\n");
                mix.render(&mut self.rng, bot, out);
            }
        }
        for line in &self.shape.extra_headers {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The mix's query string of `draw` (empty without a mix or a query).
    #[inline]
    pub fn query(&self, draw: ShapeDraw) -> &[u8] {
        self.shape
            .mix
            .as_ref()
            .map_or(&[][..], |mix| mix.query(draw))
    }

    pub fn unknown_status(&self) -> u16 {
        self.shape.unknown_status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::GeneratedKeys;

    #[test]
    fn zipf_prefers_the_first_keys() {
        let keys = KeySet::generated(GeneratedKeys {
            count: 1000,
            ..GeneratedKeys::default()
        })
        .unwrap();
        let shape = TrafficShape {
            popularity: Popularity::Zipf { exponent: 1.1 },
            ..TrafficShape::default()
        };
        let mut maker = RequestMaker::new(&shape, &keys, "localhost", 0).unwrap();
        let first = (0..10_000)
            .filter(|_| maker.pick(1).pick == Pick::Known(0))
            .count();
        assert!(first > 1000, "{first}");
    }

    #[test]
    fn extra_headers_end_every_request_head() {
        use crate::networks::ClientNetworks;
        let keys = KeySet::generated(GeneratedKeys {
            count: 10,
            ..GeneratedKeys::default()
        })
        .unwrap();
        for visitors in [
            Visitors::Plain,
            Visitors::varied(ClientNetworks::generated()),
        ] {
            let shape = TrafficShape {
                visitors,
                extra_headers: vec!["If-None-Match: \"abc\"".into()],
                ..TrafficShape::default()
            };
            let mut maker = RequestMaker::new(&shape, &keys, "localhost", 0).unwrap();
            let mut out = Vec::new();
            let draw = maker.pick(1);
            maker.render(&keys, draw, &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.ends_with("\r\nIf-None-Match: \"abc\"\r\n\r\n"),
                "{text}"
            );
            assert_eq!(text.matches("\r\n\r\n").count(), 1, "{text}");
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            assert!(request.parse(text.as_bytes()).unwrap().is_complete());
        }
    }

    #[test]
    fn varied_visitors_send_the_three_headers_from_their_lists() {
        use crate::networks::ClientNetworks;
        use crate::visitors::{BOTS, BROWSERS, LANGUAGES};
        let keys = KeySet::generated(GeneratedKeys {
            count: 100,
            ..GeneratedKeys::default()
        })
        .unwrap();
        let shape = TrafficShape {
            bot_share: 0.1,
            visitors: Visitors::varied(ClientNetworks::generated()),
            ..TrafficShape::default()
        };
        let mut maker = RequestMaker::new(&shape, &keys, "localhost:8080", 0).unwrap();
        let mut out = Vec::new();
        for _ in 0..4000 {
            let draw = maker.pick(1);
            maker.render(&keys, draw, &mut out);
        }
        // Back to back, as a pipelined connection sends them.
        let (mut at, mut bots, mut v6) = (0, 0, 0);
        let mut agents = std::collections::HashSet::new();
        let mut languages = std::collections::HashSet::new();
        for _ in 0..4000 {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut request = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(len) = request.parse(&out[at..]).unwrap() else {
                panic!("a partial request");
            };
            at += len;
            assert_eq!(request.method, Some("GET"));
            assert_eq!(request.path.unwrap().len(), 9);
            let header = |name: &str| {
                let found: Vec<&str> = request
                    .headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| std::str::from_utf8(h.value).unwrap())
                    .collect();
                assert!(found.len() <= 1, "{name} twice");
                found.first().copied()
            };
            assert_eq!(header("Host"), Some("localhost:8080"));
            let agent = header("User-Agent").unwrap();
            let language = header("Accept-Language");
            if let Some(&(_, bot)) = BOTS.iter().find(|(_, a)| *a == agent) {
                bots += 1;
                assert_eq!(language, None, "{bot}");
            } else {
                assert!(BROWSERS.iter().any(|(_, a)| *a == agent), "{agent}");
                let language = language.unwrap();
                assert!(LANGUAGES.iter().any(|(_, l)| *l == language), "{language}");
                languages.insert(language);
            }
            agents.insert(agent);
            let client: std::net::IpAddr = header("X-Forwarded-For").unwrap().parse().unwrap();
            v6 += usize::from(client.is_ipv6());
        }
        assert_eq!(at, out.len());
        assert!((250..550).contains(&bots), "{bots}");
        assert!((400..1000).contains(&v6), "{v6}");
        assert!(agents.len() > 30, "{}", agents.len());
        assert!(languages.len() > 10, "{}", languages.len());
    }

    #[test]
    fn renders_host_and_agent() {
        let keys = KeySet::parse("go.example,abc,https://x/\n", "t").unwrap();
        let shape = TrafficShape {
            bot_share: 1.0,
            ..TrafficShape::default()
        };
        let mut maker = RequestMaker::new(&shape, &keys, "localhost", 0).unwrap();
        let draw = maker.pick(1);
        let mut out = Vec::new();
        maker.render(&keys, draw, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("GET /abc HTTP/1.1\r\nHost: go.example\r\n"),
            "{text}"
        );
        assert!(BOT_AGENTS.iter().any(|a| text.contains(a)));
    }
}
