//! What the three bare stack servers share: argument parsing and loading the
//! benchmark's links CSV (`domain,code,url,status`, as
//! `scripts/perf/compare-nginx.sh` writes it) into a code → value map.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::time::Instant;

/// The map every server looks codes up in (FxHash, as a tuned server would use).
pub type LinkMap<V> = HashMap<String, V, BuildHasherDefault<rustc_hash::FxHasher>>;

/// Command line: `<server> LISTEN_ADDR LINKS_CSV`.
#[derive(Debug)]
pub struct Args {
    pub listen: SocketAddr,
    pub links: String,
}

impl Args {
    pub fn parse() -> Self {
        let mut args = std::env::args().skip(1);
        let usage = "usage: <server> LISTEN_ADDR LINKS_CSV";
        let listen = args
            .next()
            .expect(usage)
            .parse()
            .expect("LISTEN_ADDR is host:port");
        let links = args.next().expect(usage);
        Self { listen, links }
    }
}

/// Loads `path` into a map, turning each URL into the stored value with
/// `render` (the may_minihttp server pre-renders its `Location` line).
pub fn load_links<V>(path: &str, mut render: impl FnMut(&str) -> V) -> LinkMap<V> {
    let started = Instant::now();
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
    let mut map = LinkMap::default();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.expect("readable CSV");
        if index == 0 && line.starts_with("domain,") {
            continue;
        }
        // The generated URLs hold no commas, so a plain split is exact.
        let mut fields = line.splitn(4, ',');
        let (_domain, code, url) = match (fields.next(), fields.next(), fields.next()) {
            (Some(domain), Some(code), Some(url)) => (domain, code, url),
            _ => continue,
        };
        map.insert(format!("/{code}"), render(url));
    }
    map.shrink_to_fit();
    eprintln!(
        "loaded {} links in {:.2}s",
        map.len(),
        started.elapsed().as_secs_f64()
    );
    map
}
