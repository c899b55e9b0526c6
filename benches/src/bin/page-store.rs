//! Writes an engine data directory holding generated links and link-in-bio
//! pages, and the load tester's key files for them, for measuring page
//! answers against redirects in one engine (docs/PERFORMANCE.md, "Pages"):
//! `cargo run --release -p ricochet-benches --bin page-store -- --links 1000000 --pages 100000 --data-dir /tmp/pages-engine --keys-dir /tmp/pages-keys`
//!
//! Key files (`domain,code,url,status`): `links.csv` (302), `pages.csv`
//! (200), `pages-304.csv` (304, to send with `--header 'If-None-Match: …'`:
//! every page has the same document, so one tag for all).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use ricochet_benches::data;
use ricochet_engine::stats::EngineStats;
use ricochet_engine::store::LinkStore;
use ricochet_engine::{ChangeIntake, LinkTable};
use ricochet_model::page::{PageBody, PagePart};
use ricochet_model::{Change, ChangeOp};

/// Records applied per batch.
const BATCH: usize = 10_000;

#[derive(Debug, Parser)]
#[command(name = "page-store")]
struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    links: u64,
    #[arg(long, default_value_t = 100_000)]
    pages: u64,
    /// Bytes of each page's document.
    #[arg(long, default_value_t = 6_000)]
    page_bytes: usize,
    /// The engine's data directory to write (must not hold links).
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    keys_dir: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.keys_dir)?;
    let store = LinkStore::open(&args.data_dir)
        .with_context(|| format!("cannot open {}", args.data_dir.display()))?;
    let intake = ChangeIntake::new(
        store,
        Arc::new(LinkTable::new(Some(data::DOMAIN))),
        Arc::new(EngineStats::default()),
    )?;
    anyhow::ensure!(
        intake.last_applied() == 0,
        "{} already holds links",
        args.data_dir.display()
    );
    let html = document(args.page_bytes);
    let keys = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let path = args.keys_dir.join(name);
        Ok(BufWriter::new(File::create(&path).with_context(|| {
            format!("cannot create {}", path.display())
        })?))
    };
    let (mut links, mut pages, mut revalidations) = (
        keys("links.csv")?,
        keys("pages.csv")?,
        keys("pages-304.csv")?,
    );
    let total = args.links + args.pages;
    let mut batch = Vec::with_capacity(BATCH);
    for index in 0..total {
        let mut record = data::record(index);
        if index < args.links {
            writeln!(links, "{},{},{},302", data::DOMAIN, record.code, record.url)?;
        } else {
            record.url = format!("http://{}/{}", data::DOMAIN, record.code);
            record.extensions.page = Some(PageBody {
                parts: vec![PagePart::always(html.clone())],
            });
            for (out, status) in [(&mut pages, 200), (&mut revalidations, 304)] {
                writeln!(
                    out,
                    "{},{},{},{status}",
                    data::DOMAIN,
                    record.code,
                    record.url
                )?;
            }
        }
        record.version = index + 1;
        batch.push(Change {
            version: index + 1,
            op: ChangeOp::Upsert { link: record },
        });
        if batch.len() == BATCH || index + 1 == total {
            intake.apply(&batch)?;
            batch.clear();
        }
    }
    for out in [&mut links, &mut pages, &mut revalidations] {
        out.flush()?;
    }
    println!(
        "{} links and {} pages in {} (every page has the same document: read its ETag with curl -sI)",
        args.links,
        args.pages,
        args.data_dir.display()
    );
    Ok(())
}

/// A page document of `bytes` bytes shaped like a rendered page: a
/// stylesheet, then buttons with distinct addresses and labels, so it
/// compresses about as well as a real page does (3 to 4 times), not as a
/// repeated string would.
fn document(bytes: usize) -> String {
    const WORDS: &[&str] = &[
        "spring",
        "notes",
        "talk",
        "shop",
        "newsletter",
        "podcast",
        "video",
        "essay",
        "gallery",
        "events",
        "tickets",
        "store",
        "music",
        "tour",
        "recipes",
        "journal",
    ];
    let mut rng = data::SplitMix64::new(bytes as u64);
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>A page</title><style>",
    );
    for rule in 0..24 {
        html.push_str(&format!(
            ".c{rule}{{margin:{}rem {}rem;color:#{:06x};border-radius:{}px}}",
            rng.next_u64() % 4,
            rng.next_u64() % 3,
            rng.next_u64() % 0xff_ffff,
            rng.next_u64() % 16
        ));
    }
    html.push_str("</style></head><body><main><ul class=\"items\">");
    while html.len() < bytes {
        let code = data::code(rng.next_u64() % 1_000_000);
        let label =
            |rng: &mut data::SplitMix64| WORDS[(rng.next_u64() % WORDS.len() as u64) as usize];
        html.push_str(&format!(
            "<li><a class=\"button\" href=\"/{}\">My {} {} {}</a></li>",
            std::str::from_utf8(&code).expect("codes are ASCII"),
            label(&mut rng),
            label(&mut rng),
            rng.next_u64() % 1000
        ));
    }
    html.truncate(bytes);
    html
}
