//! Traffic mixes from a file (`--mix FILE`, a suite's `mix = "…"`): weighted
//! request shapes, each with its user agents, Accept-Language values, client
//! networks for `X-Forwarded-For`, query strings, method, and whether it asks
//! for unknown codes or comes from a bot. A mix is compiled once into header
//! lines and weighted tables, so a request costs a few draws and slice copies.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rand::Rng;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::networks::ClientNetworks;
use crate::suite::locator::Locator;
use crate::traffic::Method;

/// What browsers accept for a navigation; bots and tools send `*/*`.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const ANY_ACCEPT: &str = "*/*";
/// Most shapes a mix may have (draws carry the shape as a `u16`).
const MAX_SHAPES: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMix {
    name: Option<String>,
    description: Option<String>,
    /// `X-Forwarded-For` networks of shapes without their own; absent: the
    /// generated set (50,000 IPv4 /24s and 10,000 IPv6 /48s).
    networks: Option<Vec<String>>,
    #[serde(default, rename = "shape")]
    shapes: Vec<RawShape>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShape {
    name: Option<String>,
    weight: Option<toml::Value>,
    user_agents: Option<toml::Value>,
    accept: Option<String>,
    accept_language: Option<toml::Value>,
    queries: Option<toml::Value>,
    method: Option<String>,
    unknown: Option<bool>,
    bot: Option<bool>,
    networks: Option<Vec<String>>,
    forwarded_for: Option<bool>,
}

/// Values drawn for one header or the query, each with its weight.
struct Choices {
    values: Vec<Box<[u8]>>,
    /// `None`: one value, or all equally likely.
    weights: Option<WeightedIndex<f64>>,
}

impl Choices {
    #[inline]
    fn pick(&self, rng: &mut SmallRng) -> usize {
        match &self.weights {
            Some(weights) => rng.sample(weights),
            None if self.values.len() == 1 => 0,
            None => rng.random_range(0..self.values.len()),
        }
    }
}

/// One compiled request shape.
struct Shape {
    name: String,
    share: f64,
    method: Method,
    unknown: bool,
    bot: bool,
    /// `User-Agent: …\r\n` lines.
    agents: Choices,
    /// `Accept: …\r\n`.
    accept: Box<[u8]>,
    /// `Accept-Language: …\r\n` lines, if the shape sends one.
    languages: Option<Choices>,
    /// Query strings with their `?` (an empty one for none).
    queries: Option<Choices>,
    /// Where `X-Forwarded-For` addresses come from; `None`: no such header.
    networks: Option<Arc<ClientNetworks>>,
}

/// One draw from a mix: which shape, and which of its query strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShapeDraw {
    pub shape: u16,
    /// Index into the shape's queries (0 when it has none).
    pub query: u16,
}

/// A compiled mix, shared read-only by every generator thread.
pub struct Mix {
    name: String,
    description: String,
    /// Where it came from, for messages and reports.
    origin: String,
    /// The file's text: workers compile the same mix from it.
    source: String,
    shapes: Vec<Shape>,
    weights: WeightedIndex<f64>,
}

impl std::fmt::Debug for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mix")
            .field("name", &self.name)
            .field("origin", &self.origin)
            .field("shapes", &self.shapes.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Mix {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Shares of a mix's requests, from its weights.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MixShares {
    pub head: f64,
    pub unknown: f64,
    pub bot: f64,
}

impl Mix {
    /// Reads and compiles a mix file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read mix {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and compiles mix text; `origin` names it in messages.
    pub fn parse(source: &str, origin: &str) -> Result<Self> {
        let at = Locator {
            path: origin.to_owned(),
            source,
        };
        let raw: RawMix = toml::from_str(source).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            at.error_at_offset(offset, e.message().trim().to_owned())
        })?;
        if raw.shapes.is_empty() {
            return Err(at.invalid(
                "",
                0,
                "[[shape]]",
                "a mix needs at least one [[shape]] with a weight and user_agents",
            ));
        }
        if raw.shapes.len() > MAX_SHAPES {
            return Err(at.invalid(
                "shape",
                MAX_SHAPES,
                "weight",
                format!("at most {MAX_SHAPES} shapes"),
            ));
        }
        let default_networks = match &raw.networks {
            None => ClientNetworks::generated(),
            Some(list) => {
                Arc::new(ClientNetworks::given(list).map_err(|m| at.invalid("", 0, "networks", m))?)
            }
        };
        let mut shapes = Vec::with_capacity(raw.shapes.len());
        for (index, shape) in raw.shapes.iter().enumerate() {
            shapes.push(compile_shape(&at, index, shape, &default_networks)?);
        }
        let total: f64 = shapes.iter().map(|s| s.share).sum();
        for shape in &mut shapes {
            shape.share /= total;
        }
        let weights = WeightedIndex::new(shapes.iter().map(|s| s.share))
            .map_err(|e| at.invalid("shape", 0, "weight", e.to_string()))?;
        let default_name = Path::new(origin)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mix".into());
        Ok(Self {
            name: raw.name.unwrap_or(default_name),
            description: raw.description.unwrap_or_default(),
            origin: origin.to_owned(),
            source: source.to_owned(),
            shapes,
            weights,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// The file's text (what a worker is sent).
    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Each shape's name and share of requests.
    pub fn shape_shares(&self) -> Vec<(&str, f64)> {
        self.shapes
            .iter()
            .map(|s| (s.name.as_str(), s.share))
            .collect()
    }

    /// Shares of HEAD requests, unknown codes and bots.
    pub fn shares(&self) -> MixShares {
        let of = |keep: &dyn Fn(&Shape) -> bool| {
            self.shapes
                .iter()
                .filter(|s| keep(s))
                .map(|s| s.share)
                .sum()
        };
        MixShares {
            head: of(&|s| s.method == Method::Head),
            unknown: of(&|s| s.unknown),
            bot: of(&|s| s.bot),
        }
    }

    /// Whether any shape sends HEAD requests.
    pub fn has_head(&self) -> bool {
        self.shapes.iter().any(|s| s.method == Method::Head)
    }

    /// The next request's shape and query.
    #[inline]
    pub fn draw(&self, rng: &mut SmallRng) -> ShapeDraw {
        let shape = rng.sample(&self.weights);
        let query = self.shapes[shape]
            .queries
            .as_ref()
            .map_or(0, |q| q.pick(rng));
        ShapeDraw {
            shape: shape as u16,
            query: query as u16,
        }
    }

    #[inline]
    pub fn method(&self, draw: ShapeDraw) -> Method {
        self.shapes[draw.shape as usize].method
    }

    #[inline]
    pub fn unknown(&self, draw: ShapeDraw) -> bool {
        self.shapes[draw.shape as usize].unknown
    }

    #[inline]
    pub fn bot(&self, draw: ShapeDraw) -> bool {
        self.shapes[draw.shape as usize].bot
    }

    /// The query string of the draw, with its `?` (empty for none).
    #[inline]
    pub fn query(&self, draw: ShapeDraw) -> &[u8] {
        self.shapes[draw.shape as usize]
            .queries
            .as_ref()
            .map_or(&[][..], |q| &q.values[draw.query as usize])
    }

    /// Appends the shape's header lines (each ending in CRLF).
    #[inline]
    pub fn render_headers(&self, draw: ShapeDraw, rng: &mut SmallRng, out: &mut Vec<u8>) {
        let shape = &self.shapes[draw.shape as usize];
        out.extend_from_slice(&shape.agents.values[shape.agents.pick(rng)]);
        out.extend_from_slice(&shape.accept);
        if let Some(languages) = &shape.languages {
            out.extend_from_slice(&languages.values[languages.pick(rng)]);
        }
        if let Some(networks) = &shape.networks {
            out.extend_from_slice(b"X-Forwarded-For: ");
            networks.write_address(rng, out);
            out.extend_from_slice(b"\r\n");
        }
    }
}

fn compile_shape(
    at: &Locator<'_>,
    index: usize,
    raw: &RawShape,
    default_networks: &Arc<ClientNetworks>,
) -> Result<Shape> {
    let bad = |key: &str, message: String| at.invalid("shape", index, key, message);
    let weight = match &raw.weight {
        None => return Err(bad("weight", "each shape needs a weight above 0".into())),
        Some(value) => number(value)
            .filter(|w| *w > 0.0 && w.is_finite())
            .ok_or_else(|| bad("weight", format!("must be a number above 0, not {value}")))?,
    };
    let Some(agents) = &raw.user_agents else {
        return Err(bad(
            "user_agents",
            "each shape needs user_agents (a list, or a table of agent = weight)".into(),
        ));
    };
    let bot = raw.bot.unwrap_or(false);
    let agents = choices(at, index, "user_agents", agents, |v| {
        header_line("User-Agent", v)
    })?;
    let accept_value =
        raw.accept
            .as_deref()
            .unwrap_or(if bot { ANY_ACCEPT } else { BROWSER_ACCEPT });
    let accept = header_line("Accept", accept_value).map_err(|m| bad("accept", m))?;
    let languages = raw
        .accept_language
        .as_ref()
        .map(|v| {
            choices(at, index, "accept_language", v, |v| {
                header_line("Accept-Language", v)
            })
        })
        .transpose()?;
    let queries = raw
        .queries
        .as_ref()
        .map(|v| choices(at, index, "queries", v, query))
        .transpose()?;
    let method = match raw.method.as_deref().unwrap_or("GET") {
        "GET" | "get" => Method::Get,
        "HEAD" | "head" => Method::Head,
        other => return Err(bad("method", format!("{other:?} is not GET or HEAD"))),
    };
    let networks = match (raw.forwarded_for.unwrap_or(true), &raw.networks) {
        (false, Some(_)) => {
            return Err(bad(
                "networks",
                "a shape with forwarded_for = false sends no X-Forwarded-For".into(),
            ));
        }
        (false, None) => None,
        (true, None) => Some(default_networks.clone()),
        (true, Some(list)) => Some(Arc::new(
            ClientNetworks::given(list).map_err(|m| bad("networks", m))?,
        )),
    };
    Ok(Shape {
        name: raw
            .name
            .clone()
            .unwrap_or_else(|| format!("shape-{}", index + 1)),
        share: weight,
        method,
        unknown: raw.unknown.unwrap_or(false),
        bot,
        agents,
        accept,
        languages,
        queries,
        networks,
    })
}

fn number(value: &toml::Value) -> Option<f64> {
    match value {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// A list of values (equally likely) or a table of value = weight.
fn choices(
    at: &Locator<'_>,
    index: usize,
    key: &str,
    value: &toml::Value,
    render: impl Fn(&str) -> std::result::Result<Box<[u8]>, String>,
) -> Result<Choices> {
    let bad = |message: String| at.invalid("shape", index, key, message);
    let mut weighted: Vec<(String, f64)> = Vec::new();
    let mut plain = true;
    match value {
        toml::Value::Array(items) => {
            for item in items {
                let Some(text) = item.as_str() else {
                    return Err(bad(format!("{item} is not a string")));
                };
                weighted.push((text.to_owned(), 1.0));
            }
        }
        toml::Value::Table(table) => {
            plain = false;
            let sorted: BTreeMap<&String, &toml::Value> = table.iter().collect();
            for (text, weight) in sorted {
                let weight = number(weight)
                    .filter(|w| *w > 0.0 && w.is_finite())
                    .ok_or_else(|| {
                        bad(format!(
                            "the weight of {text:?} must be a number above 0, not {weight}"
                        ))
                    })?;
                weighted.push((text.clone(), weight));
            }
        }
        toml::Value::String(text) => weighted.push((text.clone(), 1.0)),
        other => {
            return Err(bad(format!(
                "{other} is not a list of strings or a table of value = weight"
            )));
        }
    }
    if weighted.is_empty() {
        return Err(bad("give at least one value".into()));
    }
    if weighted.len() > usize::from(u16::MAX) {
        return Err(bad(format!("at most {} values", u16::MAX)));
    }
    let values = weighted
        .iter()
        .map(|(text, _)| render(text).map_err(&bad))
        .collect::<Result<Vec<_>>>()?;
    let weights = match plain {
        true => None,
        false => Some(
            WeightedIndex::new(weighted.iter().map(|(_, w)| *w)).map_err(|e| bad(e.to_string()))?,
        ),
    };
    Ok(Choices { values, weights })
}

/// `Name: value\r\n`, refusing values that would break the request.
fn header_line(name: &str, value: &str) -> std::result::Result<Box<[u8]>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("an empty {name}"));
    }
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("{value:?} has a line break or NUL"));
    }
    Ok(format!("{name}: {value}\r\n").into_bytes().into())
}

/// A query string: empty, or `?` and visible ASCII without `#`.
fn query(value: &str) -> std::result::Result<Box<[u8]>, String> {
    if value.is_empty() {
        return Ok(Box::default());
    }
    let valid = value.starts_with('?') && value.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
    if !valid {
        return Err(format!(
            "{value:?} is not a query string: \"\" or \"?\" followed by visible ASCII without spaces or #"
        ));
    }
    Ok(value.as_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const SMALL: &str = r#"
name = "small"
networks = ["203.0.113.0/24"]

[[shape]]
name = "phones"
weight = 3
user_agents = { "Phone/1" = 3, "Phone/2" = 1 }
accept_language = ["de-DE,de;q=0.9"]
queries = ["", "?utm_source=x"]

[[shape]]
name = "checkers"
weight = 1
user_agents = ["Checker/1"]
method = "HEAD"
bot = true
forwarded_for = false
"#;

    #[test]
    fn shares_follow_weights_and_headers_are_rendered_once() {
        let mix = Mix::parse(SMALL, "small.toml").unwrap();
        let shares = mix.shares();
        assert_eq!((shares.head, shares.bot, shares.unknown), (0.25, 0.25, 0.0));
        let mut rng = SmallRng::seed_from_u64(1);
        let (mut heads, mut phone1, mut queries) = (0, 0, 0);
        for _ in 0..4000 {
            let draw = mix.draw(&mut rng);
            let mut out = Vec::new();
            mix.render_headers(draw, &mut rng, &mut out);
            let text = String::from_utf8(out).unwrap();
            if mix.method(draw) == Method::Head {
                heads += 1;
                assert!(mix.bot(draw));
                assert_eq!(text, "User-Agent: Checker/1\r\nAccept: */*\r\n");
                continue;
            }
            phone1 += usize::from(text.starts_with("User-Agent: Phone/1\r\n"));
            queries += usize::from(!mix.query(draw).is_empty());
            assert!(
                text.contains("Accept-Language: de-DE,de;q=0.9\r\n"),
                "{text}"
            );
            assert!(text.contains("X-Forwarded-For: 203.0.113."), "{text}");
        }
        assert!((800..1200).contains(&heads), "{heads}");
        assert!((2000..2500).contains(&phone1), "{phone1}");
        assert!((1300..1700).contains(&queries), "{queries}");
    }

    #[test]
    fn mistakes_name_file_line_and_key() {
        let err = |text: &str| Mix::parse(text, "m.toml").unwrap_err().to_string();
        let shape = "[[shape]]\nuser_agents = [\"A/1\"]\n";
        let message = err(&format!("{shape}weight = 0\n"));
        assert!(
            message.starts_with("m.toml:3:1: [shape] weight: must be a number above 0"),
            "{message}"
        );
        let message = err(&format!("{shape}weight = -2.5\n"));
        assert!(
            message.starts_with("m.toml:3:1: [shape] weight"),
            "{message}"
        );
        let message = err(&format!(
            "{shape}weight = 1\n\n[[shape]]\nweight = 1\nuser_agents = {{ \"B/1\" = 0 }}\n"
        ));
        assert!(
            message.starts_with("m.toml:7:1: [shape] user_agents: the weight of \"B/1\""),
            "{message}"
        );
        let message = err(&format!(
            "{shape}weight = 1\nnetworks = [\"10.0.0.0/33\"]\n"
        ));
        assert!(
            message.starts_with("m.toml:4:1: [shape] networks: "),
            "{message}"
        );
        let message = err(&format!(
            "networks = [\"300.1.2.0/24\"]\n{shape}weight = 1\n"
        ));
        assert!(message.starts_with("m.toml:1:1: networks: "), "{message}");
        let message = err(&format!("{shape}weight = 1\nwieght = 2\n"));
        assert!(message.starts_with("m.toml:4:"), "{message}");
        assert!(message.contains("wieght"), "{message}");
        let message = err(&format!("{shape}weight = 1\nqueries = [\"utm=1\"]\n"));
        assert!(
            message.starts_with("m.toml:4:1: [shape] queries"),
            "{message}"
        );
        let message = err(&format!("{shape}weight = 1\nmethod = \"POST\"\n"));
        assert!(
            message.starts_with("m.toml:4:1: [shape] method"),
            "{message}"
        );
        let message = err("[[shape]]\nweight = 1\n");
        assert!(
            message.starts_with("m.toml:1:1: [shape] user_agents"),
            "{message}"
        );
        let message = err("name = \"x\"\n");
        assert!(message.contains("at least one [[shape]]"), "{message}");
        let message = err(&format!(
            "{shape}weight = 1\nuser_agents = [\"A\\r\\nHost: evil\"]\n"
        ));
        assert!(message.starts_with("m.toml:4:"), "{message}");
    }

    #[test]
    fn the_shipped_default_mix_is_realistic() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/loadtest/mixes/default.toml");
        let mix = Mix::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let shares = mix.shares();
        assert!((0.01..=0.03).contains(&shares.head), "{shares:?}");
        assert!((0.02..=0.04).contains(&shares.unknown), "{shares:?}");
        assert!((0.02..=0.08).contains(&shares.bot), "{shares:?}");
        let share = |prefix: &str| -> f64 {
            mix.shape_shares()
                .iter()
                .filter(|(name, _)| name.starts_with(prefix))
                .map(|(_, s)| s)
                .sum()
        };
        let (mobile, desktop) = (share("mobile"), share("desktop"));
        let mobile_part = mobile / (mobile + desktop);
        assert!((0.55..=0.65).contains(&mobile_part), "{mobile_part}");
    }
}
