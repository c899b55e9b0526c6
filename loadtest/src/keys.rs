//! The link set a run asks for: generated (any size, nothing stored) or read
//! from a file (engine import CSV or one code a line), with each key's
//! expected target so every answer can be checked, and the behaviour (rules,
//! variants) its links may carry, whose destinations are accepted too.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::behaviour::Behaviour;
use crate::error::{Error, Result};

/// Status a generated link answers with unless configured otherwise.
pub const DEFAULT_STATUS: u16 = 301;
/// URL prefix of generated links: the URL is the prefix followed by the code.
pub const DEFAULT_URL_PREFIX: &str = "https://www.example.com/articles/";
/// Length of generated codes (base 36, lowercase: nginx's `map` is
/// case-insensitive, so codes must not differ by case only).
pub const GENERATED_CODE_LEN: usize = 8;
/// Most keys that can be generated: codes are a permutation of 40 bits.
pub const MAX_GENERATED: u64 = 1 << 40;

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
const MASK40: u64 = MAX_GENERATED - 1;

/// How generated keys look.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedKeys {
    pub count: u64,
    /// Domains the keys are spread over (key i on domain i mod len); an empty
    /// string is the target's default domain.
    pub domains: Vec<String>,
    pub url_prefix: String,
    pub status: u16,
    /// Changes every code; two sets with different seeds do not overlap.
    pub seed: u64,
}

impl Default for GeneratedKeys {
    fn default() -> Self {
        Self {
            count: 1,
            domains: vec![String::new()],
            url_prefix: DEFAULT_URL_PREFIX.to_owned(),
            status: DEFAULT_STATUS,
            seed: 0,
        }
    }
}

/// One key as plain strings (for seeding and config generation, not the hot path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub domain: String,
    pub code: String,
    /// Expected `Location`; `None` when the key file gave only the code.
    pub url: Option<String>,
    /// Expected status; `None`: any redirect status.
    pub status: Option<u16>,
}

#[derive(Debug, Clone, Copy)]
struct LoadedKey {
    domain: u32,
    code: (u32, u32),
    url: Option<(u32, u32)>,
    status: u16,
}

#[derive(Debug)]
struct LoadedKeys {
    domains: Vec<String>,
    text: String,
    keys: Vec<LoadedKey>,
}

#[derive(Debug, Clone)]
enum Source {
    Generated(GeneratedKeys),
    Loaded(Arc<LoadedKeys>),
}

/// The keys of a run, shared read-only by every generator thread.
#[derive(Debug, Clone)]
pub struct KeySet {
    source: Source,
    /// Rules and variants every link carries; their destinations are
    /// accepted besides each link's own.
    behaviour: Option<Arc<Behaviour>>,
}

impl KeySet {
    /// Keys made up on the fly from their index.
    pub fn generated(spec: GeneratedKeys) -> Result<Self> {
        if spec.count == 0 || spec.count > MAX_GENERATED {
            return Err(Error::Invalid(format!(
                "generated key count must be between 1 and {MAX_GENERATED}, not {}",
                spec.count
            )));
        }
        if spec.domains.is_empty() {
            return Err(Error::Invalid(
                "generated keys need at least one domain (\"\" for the default)".into(),
            ));
        }
        Ok(Self {
            source: Source::Generated(spec),
            behaviour: None,
        })
    }

    /// Reads a key file. Lines are `domain,code,url[,status]` (the engine's
    /// import CSV; a `domain,code,...` header is skipped) or a bare code.
    /// Empty lines and lines starting with `#` are skipped.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read key file {}", path.display()), e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses key-file text; `name` is used in error messages.
    pub fn parse(input: &str, name: &str) -> Result<Self> {
        let mut domains: Vec<String> = Vec::new();
        let mut text = String::with_capacity(input.len());
        let mut keys = Vec::new();
        let bad = |line: usize, message: String| Error::KeyFile {
            path: name.to_owned(),
            line,
            message,
        };
        for (index, raw) in input.lines().enumerate() {
            let line_no = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let record = parse_line(line).map_err(|m| bad(line_no, m))?;
            let Some(record) = record else { continue };
            let domain = match domains.iter().position(|d| *d == record.domain) {
                Some(i) => i,
                None => {
                    domains.push(record.domain.clone());
                    domains.len() - 1
                }
            };
            let mut push = |s: &str| -> Result<(u32, u32)> {
                let start = u32::try_from(text.len()).map_err(|_| {
                    bad(
                        line_no,
                        "key file too large (4 GiB of codes and URLs)".into(),
                    )
                })?;
                text.push_str(s);
                Ok((start, s.len() as u32))
            };
            let code = push(&record.code)?;
            let url = record.url.as_deref().map(&mut push).transpose()?;
            keys.push(LoadedKey {
                domain: domain as u32,
                code,
                url,
                status: record.status.unwrap_or(0),
            });
        }
        if keys.is_empty() {
            return Err(Error::KeyFile {
                path: name.to_owned(),
                line: 0,
                message: "no keys in the file".into(),
            });
        }
        Ok(Self {
            source: Source::Loaded(Arc::new(LoadedKeys {
                domains,
                text,
                keys,
            })),
            behaviour: None,
        })
    }

    /// How the keys are generated; `None` for keys from a file.
    pub fn generated_spec(&self) -> Option<&GeneratedKeys> {
        match &self.source {
            Source::Generated(spec) => Some(spec),
            Source::Loaded(_) => None,
        }
    }

    /// The same keys (shared, not copied) with `behaviour` on every link,
    /// or with none.
    pub fn with_behaviour(&self, behaviour: Option<Arc<Behaviour>>) -> Self {
        Self {
            source: self.source.clone(),
            behaviour,
        }
    }

    /// The rules and variants the links carry, if any.
    pub fn behaviour(&self) -> Option<&Arc<Behaviour>> {
        self.behaviour.as_ref()
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        match &self.source {
            Source::Generated(g) => g.count,
            Source::Loaded(loaded) => loaded.keys.len() as u64,
        }
    }

    /// Never true: a key set has at least one key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends key `index`'s code to `out`.
    pub fn write_code(&self, index: u64, out: &mut Vec<u8>) {
        match &self.source {
            Source::Generated(g) => out.extend_from_slice(&generated_code(g.seed, index)),
            Source::Loaded(loaded) => {
                let (start, len) = loaded.keys[index as usize].code;
                out.extend_from_slice(
                    &loaded.text.as_bytes()[start as usize..(start + len) as usize],
                );
            }
        }
    }

    /// Key `index`'s domain; empty for the target's default domain.
    pub fn domain(&self, index: u64) -> &str {
        match &self.source {
            Source::Generated(g) => &g.domains[(index % g.domains.len() as u64) as usize],
            Source::Loaded(loaded) => &loaded.domains[loaded.keys[index as usize].domain as usize],
        }
    }

    /// Expected status of key `index`; `None`: any redirect.
    pub fn expected_status(&self, index: u64) -> Option<u16> {
        match &self.source {
            Source::Generated(g) => Some(g.status),
            Source::Loaded(loaded) => match loaded.keys[index as usize].status {
                0 => None,
                s => Some(s),
            },
        }
    }

    /// Whether `location` is a target key `index` may redirect to: its own
    /// (always, when the key file gave no URL) or one of its behaviour's.
    pub fn location_matches(&self, index: u64, location: &[u8]) -> bool {
        self.destination_of(index, location).is_some()
    }

    /// Which of key `index`'s targets `location` is: 0 for the key's own,
    /// i + 1 for its behaviour's destination i; `None` for none of them.
    #[inline]
    pub fn destination_of(&self, index: u64, location: &[u8]) -> Option<usize> {
        let own = match &self.source {
            Source::Generated(g) => {
                let prefix = g.url_prefix.as_bytes();
                location.len() == prefix.len() + GENERATED_CODE_LEN
                    && location.starts_with(prefix)
                    && location[prefix.len()..] == generated_code(g.seed, index)
            }
            Source::Loaded(loaded) => match loaded.keys[index as usize].url {
                None => true,
                Some((start, len)) => {
                    &loaded.text.as_bytes()[start as usize..(start + len) as usize] == location
                }
            },
        };
        if own {
            return Some(0);
        }
        self.behaviour
            .as_ref()?
            .destination_of(location)
            .map(|at| at + 1)
    }

    /// Key `index` as strings.
    pub fn record(&self, index: u64) -> KeyRecord {
        let mut code = Vec::new();
        self.write_code(index, &mut code);
        let code = String::from_utf8(code).unwrap_or_default();
        let url = match &self.source {
            Source::Generated(g) => Some(format!("{}{code}", g.url_prefix)),
            Source::Loaded(loaded) => loaded.keys[index as usize]
                .url
                .map(|(start, len)| loaded.text[start as usize..(start + len) as usize].to_owned()),
        };
        KeyRecord {
            domain: self.domain(index).to_owned(),
            code,
            url,
            status: self.expected_status(index),
        }
    }

    /// Writes the set as the engine's import CSV (`domain,code,url,status`).
    /// Keys without a URL cannot be imported and are refused.
    pub fn write_import_csv(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let file = std::fs::File::create(path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut line = String::new();
        let write_err = |e| Error::io(format!("cannot write {}", path.display()), e);
        out.write_all(b"domain,code,url,status\n")
            .map_err(write_err)?;
        for index in 0..self.len() {
            let record = self.record(index);
            let Some(url) = &record.url else {
                return Err(Error::Invalid(format!(
                    "key {} has no URL: an import file needs domain,code,url lines",
                    record.code
                )));
            };
            line.clear();
            let _ = writeln!(
                line,
                "{},{},{},{}",
                record.domain,
                record.code,
                url,
                record.status.unwrap_or(DEFAULT_STATUS)
            );
            out.write_all(line.as_bytes()).map_err(write_err)?;
        }
        out.flush().map_err(write_err)
    }

    /// Writes the set as JSON Lines the engine imports (`domain`, `code`,
    /// `url`, `status`), each link with the key set's behaviour (`rules`,
    /// `variants`). Keys without a URL are refused.
    pub fn write_import_jsonl(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let file = std::fs::File::create(path)
            .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let write_err = |e| Error::io(format!("cannot write {}", path.display()), e);
        let tail = self.behaviour.as_ref().map_or("", |b| b.jsonl_tail());
        let mut line = String::new();
        let json = |text: &str| serde_json::to_string(text).expect("a string serializes");
        for index in 0..self.len() {
            let record = self.record(index);
            let Some(url) = &record.url else {
                return Err(Error::Invalid(format!(
                    "key {} has no URL: an import file needs domain,code,url lines",
                    record.code
                )));
            };
            line.clear();
            line.push('{');
            if !record.domain.is_empty() {
                let _ = write!(line, "\"domain\":{},", json(&record.domain));
            }
            let _ = writeln!(
                line,
                "\"code\":{},\"url\":{},\"status\":{}{tail}}}",
                json(&record.code),
                json(url),
                record.status.unwrap_or(DEFAULT_STATUS)
            );
            out.write_all(line.as_bytes()).map_err(write_err)?;
        }
        out.flush().map_err(write_err)
    }
}

/// Code of generated key `index`: a bijection of 40 bits, so codes never
/// repeat, written as 8 base-36 digits.
pub fn generated_code(seed: u64, index: u64) -> [u8; GENERATED_CODE_LEN] {
    let mut x = index.wrapping_add(seed.wrapping_mul(0x9E37_79B9)) & MASK40;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK40;
    x ^= x >> 20;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK40;
    x ^= x >> 20;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB) & MASK40;
    x ^= x >> 20;
    let mut code = [b'0'; GENERATED_CODE_LEN];
    for slot in code.iter_mut().rev() {
        *slot = BASE36[(x % 36) as usize];
        x /= 36;
    }
    code
}

/// A code is what the engine accepts: `[A-Za-z0-9_-]{1,64}`.
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field
        .strip_prefix('"')
        .and_then(|f| f.strip_suffix('"'))
        .unwrap_or(field)
}

/// One key-file line; `Ok(None)` for a CSV header.
fn parse_line(line: &str) -> std::result::Result<Option<KeyRecord>, String> {
    let Some((domain, rest)) = line.split_once(',') else {
        let code = unquote(line);
        if !valid_code(code) {
            return Err(format!(
                "{code:?} is not a valid code ([A-Za-z0-9_-], 1-64 characters)"
            ));
        }
        return Ok(Some(KeyRecord {
            domain: String::new(),
            code: code.to_owned(),
            url: None,
            status: None,
        }));
    };
    let domain = unquote(domain);
    let (code, rest) = rest.split_once(',').unwrap_or((rest, ""));
    let code = unquote(code);
    if domain.eq_ignore_ascii_case("domain") && code.eq_ignore_ascii_case("code") {
        return Ok(None);
    }
    if !valid_code(code) {
        return Err(format!(
            "{code:?} is not a valid code ([A-Za-z0-9_-], 1-64 characters)"
        ));
    }
    // The URL may itself hold commas: a status, if any, is the last field.
    let (url, status) = match rest.rsplit_once(',') {
        Some((url, status))
            if status.trim().len() == 3 && status.trim().bytes().all(|b| b.is_ascii_digit()) =>
        {
            (url, Some(status.trim()))
        }
        _ => (rest, None),
    };
    let url = unquote(url);
    let status = match status {
        None => None,
        Some(s) => {
            let code: u16 = s.parse().map_err(|_| format!("bad status {s:?}"))?;
            if !(100..=599).contains(&code) {
                return Err(format!("bad status {code}"));
            }
            Some(code)
        }
    };
    if url.is_empty() {
        return Err("missing URL (expected domain,code,url[,status])".into());
    }
    Ok(Some(KeyRecord {
        domain: domain.to_ascii_lowercase(),
        code: code.to_owned(),
        url: Some(url.to_owned()),
        status,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..100_000 {
            let code = generated_code(7, i);
            assert!(
                code.iter()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
            );
            assert!(seen.insert(code));
        }
    }

    #[test]
    fn key_file_lines() {
        let keys = KeySet::parse(
            "domain,code,url,status\n# comment\n,abc,https://x/?a=1,b=2,302\ngo.example,d,https://y/\njustcode\n",
            "t",
        )
        .unwrap();
        assert_eq!(keys.len(), 3);
        let r = keys.record(0);
        assert_eq!(r.url.as_deref(), Some("https://x/?a=1,b=2"));
        assert_eq!(r.status, Some(302));
        assert_eq!(keys.domain(1), "go.example");
        assert!(keys.location_matches(2, b"anything"));
        let err = KeySet::parse("a,b c,https://x/\n", "f.csv").unwrap_err();
        assert!(err.to_string().starts_with("f.csv:1:"), "{err}");
    }
}
