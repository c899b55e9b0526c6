//! Writes an import file of generated links (unique random-looking codes on
//! one domain, 60-byte URLs) for measuring `ricochet-engine import` and
//! `ricochet-control import` (docs/PERFORMANCE.md, "Imports"):
//! `cargo run --release -p ricochet-benches --bin import-data -- --links 1000000 --output /tmp/links-1m.csv`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use ricochet_benches::data;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// `domain,code,url` rows, no header (the engine's positional CSV).
    Csv,
    /// `{"domain":…,"code":…,"url":…}` lines.
    Jsonl,
}

/// Writes `--links` generated links as CSV or JSON Lines.
#[derive(Debug, Parser)]
#[command(name = "import-data")]
struct Args {
    #[arg(long)]
    links: u64,
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    #[arg(long)]
    output: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let file = File::create(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for index in 0..args.links {
        let code = data::code(index);
        let code = std::str::from_utf8(&code).expect("codes are ASCII");
        let url = data::url(index);
        match args.format {
            Format::Csv => writeln!(out, "{},{code},{url}", data::DOMAIN)?,
            Format::Jsonl => writeln!(
                out,
                r#"{{"domain":"{}","code":"{code}","url":"{url}"}}"#,
                data::DOMAIN
            )?,
        }
    }
    out.flush()?;
    Ok(())
}
