//! A link's card read from its destination, when the operator turns it on
//! (`links.fetch_card_metadata`): the page is fetched once at creation
//! through the SSRF-safe [`Fetcher`], and its Open Graph, Twitter Card,
//! `<title>` and description values become the card. Nothing here ever
//! fails a create: a refused or failed fetch, an answer that is not an HTML
//! page, or a page without metadata gives no card.
//!
//! - [`page`]: the HTML read ([`PageMetadata`]).
//! - [`text`]: cleaning and clipping texts to the card's limits.

pub mod page;
pub mod text;

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ricochet_model::behaviour::Card;
use ricochet_model::behaviour::check;
use url::Url;

use crate::fetch::{FetchRequest, Fetcher};
pub use page::PageMetadata;

/// Fetches run at once for one bulk create.
pub const BULK_FETCHES_AT_ONCE: usize = 4;

/// Media types read as HTML.
const HTML_TYPES: &[&str] = &["text/html", "application/xhtml+xml"];

/// Reads cards from destination pages.
#[derive(Debug, Clone)]
pub struct CardFetcher {
    fetcher: Fetcher,
}

impl CardFetcher {
    pub fn new(fetcher: Fetcher) -> Self {
        Self { fetcher }
    }

    /// The card the page at `url` (a validated destination) describes.
    pub fn card_for(&self, url: &str) -> Option<Card> {
        self.card_by(url, Instant::now() + self.fetcher.policy().timeout)
    }

    /// Cards for many destinations (`None` entries are skipped): at most
    /// [`BULK_FETCHES_AT_ONCE`] fetches at a time, all of them within one
    /// fetch time limit, so a bulk create waits no longer than a single
    /// create can. Destinations not reached by then get no card.
    pub fn cards_for(&self, urls: &[Option<String>]) -> Vec<Option<Card>> {
        let deadline = Instant::now() + self.fetcher.policy().timeout;
        let cards = Mutex::new(vec![None; urls.len()]);
        let next = AtomicUsize::new(0);
        let wanted = urls.iter().filter(|url| url.is_some()).count();
        let workers = wanted.min(BULK_FETCHES_AT_ONCE);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        if index >= urls.len() || Instant::now() >= deadline {
                            return;
                        }
                        let Some(url) = &urls[index] else { continue };
                        let card = self.card_by(url, deadline);
                        if card.is_some() {
                            cards.lock().expect("card slots")[index] = card;
                        }
                    }
                });
            }
        });
        cards.into_inner().expect("card slots")
    }

    fn card_by(&self, url: &str, deadline: Instant) -> Option<Card> {
        let host = Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_owned))
            .unwrap_or_default();
        let request = FetchRequest::get(url)
            .header("Accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1");
        let page = match self.fetcher.fetch_by(&request, deadline) {
            Ok(page) => page,
            Err(error) if error.is_refusal() => {
                tracing::info!(%host, %error, "card metadata: fetch refused");
                return None;
            }
            Err(error) => {
                tracing::debug!(%host, %error, "card metadata: fetch failed");
                return None;
            }
        };
        let media = page.media_type().unwrap_or_default();
        if !page.is_success() || !HTML_TYPES.contains(&media.as_str()) {
            tracing::debug!(%host, status = page.status, %media, "card metadata: not an HTML page");
            return None;
        }
        let card = PageMetadata::parse(&page.body).card(&page.url)?;
        // The service validates the card again; one it would refuse is
        // dropped here, so the fetch can never fail the create.
        let value = serde_json::to_value(&card).ok()?;
        match check::parse_card(&value) {
            Ok(card) if !card.is_empty() => {
                tracing::debug!(%host, truncated = page.truncated, "card metadata: found");
                Some(card)
            }
            _ => None,
        }
    }
}
