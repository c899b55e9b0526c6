//! A page into the link record engines serve it from: its items resolved
//! against the links they show (a link that is gone, blocked or of another
//! workspace is left out; one that expires hides its item then), rendered
//! once, and written with the next version. Also what renders pages again
//! when a link they show changes, in that change's transaction.

use ricochet_model::{LinkRecord, LinkState, RedirectStatus, UnixMillis, validate};

use super::content::{ItemKind, PageRecord};
use super::render::{self, ResolvedItem, ResolvedKind};
use crate::service::LinkSettings;
use crate::service::short_url::base_url;
use crate::store::{PageRenderer, StoreError, WriteTxn};

/// Builds pages' records.
#[derive(Debug, Clone)]
pub struct Publisher {
    settings: LinkSettings,
}

impl Publisher {
    pub fn new(settings: LinkSettings) -> Self {
        Self { settings }
    }

    /// The public URL of `page`.
    pub fn page_url(
        &self,
        txn_store: &crate::store::ControlStore,
        page: &PageRecord,
    ) -> Result<String, StoreError> {
        Ok(format!(
            "{}/{}",
            base_url(&self.settings, txn_store, &page.domain)?,
            page.handle
        ))
    }

    /// The record engines serve `page` from, rendered at `now` from the
    /// links as `txn` sees them.
    pub fn record(
        &self,
        txn: &WriteTxn<'_>,
        page: &PageRecord,
        now: UnixMillis,
    ) -> Result<LinkRecord, StoreError> {
        let store = txn.store();
        let page_url = self.page_url(store, page)?;
        let mut items = Vec::with_capacity(page.content.items.len());
        for item in &page.content.items {
            let kind = match &item.kind {
                ItemKind::Header { text } => ResolvedKind::Header { text: text.clone() },
                ItemKind::Link { link_id, label } => {
                    let Some(link) = self.showable(txn, page, *link_id)? else {
                        continue;
                    };
                    let short = format!(
                        "{}/{}",
                        base_url(&self.settings, store, &link.domain)?,
                        link.code
                    );
                    let label = label
                        .clone()
                        .or_else(|| link.title.clone().filter(|t| !t.trim().is_empty()))
                        .unwrap_or_else(|| without_scheme(&short).to_owned());
                    let href = match link.domain == page.domain {
                        true => format!("/{}", link.code),
                        false => short,
                    };
                    let until = match (item.visible_until, link.expires_at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if let (Some(from), Some(until)) = (item.visible_from, until)
                        && from >= until
                    {
                        continue;
                    }
                    items.push(ResolvedItem {
                        kind: ResolvedKind::Link { href, label },
                        from: item.visible_from,
                        until,
                    });
                    continue;
                }
            };
            items.push(ResolvedItem {
                kind,
                from: item.visible_from,
                until: item.visible_until,
            });
        }
        let body = render::render(page, &page_url, &items);
        let previous = txn.link(page.id)?;
        Ok(LinkRecord {
            id: page.id,
            domain: page.domain.clone(),
            code: page.handle.clone(),
            url: validate::validate_destination(&page_url)
                .map_err(|e| StoreError::Corrupt(format!("page URL {page_url}: {e}")))?,
            status: RedirectStatus::Found,
            // A suspended workspace's pages stay as suspension left them.
            state: previous.as_ref().map_or(LinkState::Active, |p| p.state),
            expires_at: None,
            forward_query: false,
            title: Some(page.content.title.clone()),
            tags: Vec::new(),
            created_at: page.created_at,
            updated_at: now,
            version: 0,
            extensions: ricochet_model::LinkExtensions {
                page: Some(body),
                ..Default::default()
            },
        })
    }

    /// Link `id` when `page` may show it: the page's workspace's, active,
    /// not blocked.
    fn showable(
        &self,
        txn: &WriteTxn<'_>,
        page: &PageRecord,
        id: u64,
    ) -> Result<Option<LinkRecord>, StoreError> {
        if txn.link_workspace(id)?.as_deref() != Some(page.workspace.as_str()) {
            return Ok(None);
        }
        Ok(txn
            .link(id)?
            .filter(|link| link.state == LinkState::Active && link.extensions.blocked.is_none()))
    }
}

impl PageRenderer for Publisher {
    fn render_again(&self, txn: &mut WriteTxn<'_>, pages: &[u64]) -> Result<(), StoreError> {
        let now = ricochet_model::now_millis();
        for &id in pages {
            let Some(page) = txn.store().page(id)? else {
                continue;
            };
            let record = self.record(txn, &page, now)?;
            txn.put_link(record)?;
        }
        Ok(())
    }
}

fn without_scheme(url: &str) -> &str {
    url.split_once("://").map_or(url, |(_, rest)| rest)
}
