//! Link-in-bio pages. Keyspaces: `pages` (page id → [`PageRecord`] as
//! JSON; the id is that of the link record engines serve the page from),
//! `workspace_pages` (workspace, id) for listings, and `page_items` (item
//! link id, page id) so a change to a link finds the pages that show it and
//! renders them again in the same batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use fjall::Keyspace;

use super::workspaces::{pair, prefix};
use super::{ControlStore, StoreError, WriteTxn};
use crate::pages::content::PageRecord;

/// The keyspaces of this module.
pub(crate) struct PageSpaces {
    pages: Keyspace,
    workspace_pages: Keyspace,
    page_items: Keyspace,
    /// Whether any page shows a link: while none does, link writes skip the
    /// `page_items` lookup.
    any_items: AtomicBool,
    /// Renders pages again when links they show change (set once by the
    /// page service).
    renderer: std::sync::OnceLock<Arc<dyn PageRenderer>>,
}

/// Renders pages whose links changed, in the transaction that changed them.
pub trait PageRenderer: Send + Sync {
    fn render_again(&self, txn: &mut WriteTxn<'_>, pages: &[u64]) -> Result<(), StoreError>;
}

impl PageSpaces {
    pub(super) fn open(
        keyspace: impl Fn(&str) -> Result<Keyspace, fjall::Error>,
    ) -> Result<Self, StoreError> {
        let page_items = keyspace("page_items")?;
        Ok(Self {
            pages: keyspace("pages")?,
            workspace_pages: keyspace("workspace_pages")?,
            any_items: AtomicBool::new(!page_items.is_empty()?),
            page_items,
            renderer: std::sync::OnceLock::new(),
        })
    }
}

fn item_key(link_id: u64, page_id: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&link_id.to_be_bytes());
    key[8..].copy_from_slice(&page_id.to_be_bytes());
    key
}

impl ControlStore {
    /// Installs what renders pages again when their links change (the
    /// first call wins).
    pub fn set_page_renderer(&self, renderer: Arc<dyn PageRenderer>) {
        let _ = self.page_spaces.renderer.set(renderer);
    }

    /// The page with `id`.
    pub fn page(&self, id: u64) -> Result<Option<PageRecord>, StoreError> {
        super::read_json(&self.page_spaces.pages, id.to_be_bytes(), "page record")
    }

    /// The pages of `workspace`, oldest first.
    pub fn workspace_pages(&self, workspace: &str) -> Result<Vec<PageRecord>, StoreError> {
        let mut pages = Vec::new();
        for item in self.page_spaces.workspace_pages.prefix(prefix(workspace)) {
            let key = item.key()?;
            let id = <[u8; 8]>::try_from(&key[key.len().saturating_sub(8)..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("workspace page index".into()))?;
            if let Some(page) = self.page(id)? {
                pages.push(page);
            }
        }
        Ok(pages)
    }

    /// Ids of the pages that show link `link_id`.
    pub fn pages_showing(&self, link_id: u64) -> Result<Vec<u64>, StoreError> {
        if !self.page_spaces.any_items.load(Ordering::Acquire) {
            return Ok(Vec::new());
        }
        let mut pages = Vec::new();
        for item in self.page_spaces.page_items.prefix(link_id.to_be_bytes()) {
            let key = item.key()?;
            if let Ok(id) = <[u8; 8]>::try_from(&key[8..]) {
                pages.push(u64::from_be_bytes(id));
            }
        }
        Ok(pages)
    }
}

impl WriteTxn<'_> {
    /// Stages `page` (replacing `previous`, its stored form before this
    /// write): the record and its indexes. The link record engines serve
    /// is written apart ([`WriteTxn::put_link`]).
    pub fn put_page(&mut self, page: &PageRecord, previous: Option<&PageRecord>) {
        let spaces = &self.store.page_spaces;
        let id = page.id.to_be_bytes();
        self.batch.insert(
            &spaces.pages,
            id,
            serde_json::to_vec(page).expect("serializes"),
        );
        self.batch
            .insert(&spaces.workspace_pages, pair(&page.workspace, &id), b"");
        let links = |page: Option<&PageRecord>| -> Vec<u64> {
            let mut ids: Vec<u64> = page
                .map(|p| {
                    p.content
                        .items
                        .iter()
                        .filter_map(|i| i.kind.link_id())
                        .collect()
                })
                .unwrap_or_default();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let (before, after) = (links(previous), links(Some(page)));
        for link in before.iter().filter(|l| !after.contains(l)) {
            self.batch
                .remove(&spaces.page_items, item_key(*link, page.id));
        }
        for link in after.iter().filter(|l| !before.contains(l)) {
            self.batch
                .insert(&spaces.page_items, item_key(*link, page.id), b"");
        }
        if !after.is_empty() {
            spaces.any_items.store(true, Ordering::Release);
        }
    }

    /// Stages the removal of `page` and its indexes (its link record is
    /// purged apart).
    pub fn remove_page(&mut self, page: &PageRecord) {
        let spaces = &self.store.page_spaces;
        let id = page.id.to_be_bytes();
        self.batch.remove(&spaces.pages, id);
        self.batch
            .remove(&spaces.workspace_pages, pair(&page.workspace, &id));
        for link in page.content.items.iter().filter_map(|i| i.kind.link_id()) {
            self.batch
                .remove(&spaces.page_items, item_key(link, page.id));
        }
        self.pages_to_render.retain(|&other| other != page.id);
        self.pages_removed.push(page.id);
    }

    /// Notes that link `id` changed: the pages showing it are rendered
    /// again before the transaction commits.
    pub(super) fn note_link_changed(&mut self, id: u64) -> Result<(), StoreError> {
        for page in self.store.pages_showing(id)? {
            if !self.pages_to_render.contains(&page) && !self.pages_removed.contains(&page) {
                self.pages_to_render.push(page);
            }
        }
        Ok(())
    }

    /// Renders the pages whose links this transaction changed. Rendering
    /// writes their link records, which are pages themselves: nothing
    /// further to follow.
    pub(super) fn render_changed_pages(&mut self) -> Result<(), StoreError> {
        if self.pages_to_render.is_empty() {
            return Ok(());
        }
        let Some(renderer) = self.store.page_spaces.renderer.get().cloned() else {
            return Ok(());
        };
        let pages = std::mem::take(&mut self.pages_to_render);
        renderer.render_again(self, &pages)
    }
}
