//! Link-in-bio pages: a workspace's page at `<domain>/<handle>` (handles
//! share the namespace of link codes), its content edited in one place and
//! rendered into the link record engines serve it from, in the same atomic
//! batch as the edit, and again whenever a link it shows changes.
//!
//! - [`content`]: what a page holds, and the checks of each value.
//! - [`input`]: what callers pass to create and edit one.
//! - [`render`]: the HTML (escaped, themed, no script), cut into parts so
//!   scheduled items show on time ([`icons`] draws the social icons).
//! - [`publish`]: pages into link records; pages rendered again when their
//!   links change.

pub mod content;
mod icons;
pub mod input;
pub mod publish;
pub mod render;

use std::sync::Arc;

use ricochet_model::behaviour::check::FieldError;
use ricochet_model::{LinkState, UnixMillis};
use thiserror::Error;

use crate::service::{LinkError, LinkService};
use crate::store::{ControlStore, StoreError, WriteTxn};
use content::{ItemKind, PageRecord};
pub use input::{ContentInput, NewPage, PageChanges};
use publish::Publisher;

/// Why a page operation was refused.
#[derive(Debug, Error)]
pub enum PageError {
    #[error("{}: {}", .0.field, .0.message)]
    Invalid(FieldError),
    /// The handle or domain was refused as a link's code or domain would be.
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("no page with id {id}")]
    NotFound { id: u64 },
    /// An item names a link the workspace does not have.
    #[error("{field}: no link with id {link_id} in this workspace")]
    UnknownLink { field: String, link_id: u64 },
    #[error(
        "order must list each of the page's {items} item ids exactly once \
         (GET the page for them)"
    )]
    BadOrder { items: usize },
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
}

impl From<FieldError> for PageError {
    fn from(error: FieldError) -> Self {
        Self::Invalid(error)
    }
}

/// Creates, edits, reorders, reads and removes pages.
#[derive(Debug, Clone)]
pub struct PageService {
    store: Arc<ControlStore>,
    links: LinkService,
    publisher: Arc<Publisher>,
}

impl PageService {
    /// The service, installing its renderer in the store so a change to a
    /// link renders the pages showing it again.
    pub fn new(links: LinkService) -> Self {
        let publisher = Arc::new(Publisher::new(links.settings().clone()));
        let store = links.store().clone();
        store.set_page_renderer(publisher.clone());
        Self {
            store,
            links,
            publisher,
        }
    }

    /// Creates a page in `workspace`.
    pub fn create(
        &self,
        workspace: &str,
        input: &NewPage,
        now: UnixMillis,
    ) -> Result<PageRecord, PageError> {
        let content = input.content.check(&[])?;
        self.store.write(|txn| {
            let (domain, _) = self
                .links
                .creatable_domain(workspace, input.domain.as_deref())?;
            self.links
                .check_free_code(txn, &domain, &input.handle)
                .map_err(handle_error)?;
            check_item_links(txn, workspace, &content.items)?;
            let page = PageRecord {
                id: txn.next_id(),
                workspace: workspace.to_owned(),
                domain,
                handle: input.handle.clone(),
                at_root: input.at_root,
                content,
                created_at: now,
                updated_at: now,
            };
            txn.claim_link(workspace, page.id);
            self.publish(txn, &page, None, now)?;
            self.place_at_root(txn, &page, false, now)?;
            Ok(page)
        })
    }

    /// Applies `changes` to page `id`.
    pub fn update(
        &self,
        workspace: &str,
        id: u64,
        changes: &PageChanges,
        now: UnixMillis,
    ) -> Result<PageRecord, PageError> {
        self.store.write(|txn| {
            let before = self.page(workspace, id)?;
            let mut input = ContentInput::from(&before.content);
            let PageChanges {
                at_root,
                title,
                bio,
                avatar_url,
                theme,
                socials,
                items,
                card,
            } = changes.clone();
            if let Some(title) = title {
                input.title = title;
            }
            if let Some(bio) = bio {
                input.bio = bio;
            }
            if let Some(avatar_url) = avatar_url {
                input.avatar_url = avatar_url;
            }
            if let Some(theme) = theme {
                input.theme = theme;
            }
            if let Some(socials) = socials {
                input.socials = socials;
            }
            if let Some(items) = items {
                input.items = items;
            }
            if let Some(card) = card {
                input.card = card;
            }
            let known: Vec<String> = before.content.items.iter().map(|i| i.id.clone()).collect();
            let content = input.check(&known)?;
            check_item_links(txn, workspace, &content.items)?;
            let page = PageRecord {
                content,
                at_root: at_root.unwrap_or(before.at_root),
                updated_at: now,
                ..before.clone()
            };
            self.publish(txn, &page, Some(&before), now)?;
            self.place_at_root(txn, &page, before.at_root, now)?;
            Ok(page)
        })
    }

    /// Puts page `id`'s items in `order` (each item id once).
    pub fn reorder(
        &self,
        workspace: &str,
        id: u64,
        order: &[String],
        now: UnixMillis,
    ) -> Result<PageRecord, PageError> {
        self.store.write(|txn| {
            let before = self.page(workspace, id)?;
            let items = &before.content.items;
            let mut reordered = Vec::with_capacity(items.len());
            for item_id in order {
                match items.iter().find(|item| &item.id == item_id) {
                    Some(item) if !reordered.iter().any(|i: &content::Item| &i.id == item_id) => {
                        reordered.push(item.clone());
                    }
                    _ => return Err(PageError::BadOrder { items: items.len() }),
                }
            }
            if reordered.len() != items.len() {
                return Err(PageError::BadOrder { items: items.len() });
            }
            let mut page = before.clone();
            page.content.items = reordered;
            page.updated_at = now;
            self.publish(txn, &page, Some(&before), now)?;
            Ok(page)
        })
    }

    /// Removes page `id` for good: engines answer 404 for its handle, which
    /// is free again.
    pub fn delete(&self, workspace: &str, id: u64) -> Result<(), PageError> {
        self.store.write(|txn| {
            let mut page = self.page(workspace, id)?;
            let was_at_root = page.at_root;
            page.at_root = false;
            self.place_at_root(txn, &page, was_at_root, ricochet_model::now_millis())?;
            let record = txn.link(id)?.ok_or(PageError::NotFound { id })?;
            txn.purge_link(workspace, &record)?;
            Ok(())
        })
    }

    /// Page `id` of `workspace`.
    pub fn page(&self, workspace: &str, id: u64) -> Result<PageRecord, PageError> {
        self.store
            .page(id)?
            .filter(|page| page.workspace == workspace)
            .ok_or(PageError::NotFound { id })
    }

    /// The pages of `workspace`, oldest first.
    pub fn list(&self, workspace: &str) -> Result<Vec<PageRecord>, PageError> {
        Ok(self.store.workspace_pages(workspace)?)
    }

    /// The public URL of `page`.
    pub fn url(&self, page: &PageRecord) -> Result<String, PageError> {
        Ok(self.publisher.page_url(&self.store, page)?)
    }

    /// Whether engines serve `page` (its workspace is not deleted).
    pub fn is_live(&self, page: &PageRecord) -> Result<bool, PageError> {
        Ok(self
            .store
            .link(page.id)?
            .is_some_and(|record| record.state == LinkState::Active))
    }

    /// The HTML `input` would render as on `workspace`'s default or given
    /// domain at `now`, stored nowhere (the console's live preview).
    pub fn preview(
        &self,
        workspace: &str,
        handle: &str,
        input: &ContentInput,
        now: UnixMillis,
    ) -> Result<String, PageError> {
        let content = input.check(&[])?;
        let page = PageRecord {
            id: 0,
            workspace: workspace.to_owned(),
            domain: self.links.settings().default_domain.clone(),
            handle: handle.to_owned(),
            at_root: false,
            content,
            created_at: now,
            updated_at: now,
        };
        // Rendered in a transaction that is never committed.
        let outcome = self.store.write(|txn| {
            check_item_links(txn, workspace, &page.content.items)?;
            let record = self.publisher.record(txn, &page, now)?;
            let html = (record.extensions.page)
                .map(|body| body.render_at(now))
                .unwrap_or_default();
            Err::<(), _>(PreviewOutcome::Rendered(html))
        });
        match outcome {
            Err(PreviewOutcome::Rendered(html)) => Ok(html),
            Err(PreviewOutcome::Failed(error)) => Err(error),
            Ok(()) => unreachable!("a preview never commits"),
        }
    }

    /// Puts `page` at its domain's root (or takes it off, `was` saying
    /// where it was): the domain's settings name it, and a page that was
    /// there before is there no longer.
    fn place_at_root(
        &self,
        txn: &mut WriteTxn<'_>,
        page: &PageRecord,
        was: bool,
        now: UnixMillis,
    ) -> Result<(), PageError> {
        if page.at_root == was {
            return Ok(());
        }
        let mut domain =
            txn.store()
                .domain(&page.domain)?
                .ok_or_else(|| LinkError::DomainNotFound {
                    domain: page.domain.clone(),
                })?;
        if page.at_root && domain.workspace_id != page.workspace {
            return Err(PageError::Invalid(FieldError::new(
                "at_root",
                "only a domain of this workspace can be dedicated to a page (not the shared default domain)",
            )));
        }
        if page.at_root {
            if let Some(previous) = domain.root_page.take() {
                self.leave_root(txn, &page.domain, &previous)?;
            }
            domain.root_page = Some(page.handle.clone());
        } else if domain.root_page.as_deref() == Some(page.handle.as_str()) {
            domain.root_page = None;
        } else {
            return Ok(());
        }
        domain.updated_at = now;
        txn.put_domain_settings(&page.domain, &domain);
        Ok(())
    }

    /// Marks the page at `handle` on `domain` as no longer at the root.
    fn leave_root(
        &self,
        txn: &mut WriteTxn<'_>,
        domain: &str,
        handle: &str,
    ) -> Result<(), PageError> {
        let key = ricochet_model::LinkKey {
            domain: domain.to_owned(),
            code: handle.to_owned(),
        };
        let Some(id) = txn.code_owner(&key)? else {
            return Ok(());
        };
        if let Some(before) = self.store.page(id)? {
            let page = PageRecord {
                at_root: false,
                ..before.clone()
            };
            txn.put_page(&page, Some(&before));
        }
        Ok(())
    }

    /// Stages `page` (replacing `before`) and its record.
    fn publish(
        &self,
        txn: &mut WriteTxn<'_>,
        page: &PageRecord,
        before: Option<&PageRecord>,
        now: UnixMillis,
    ) -> Result<(), PageError> {
        let record = self.publisher.record(txn, page, now)?;
        record.validate().map_err(|error| {
            PageError::Invalid(FieldError::new(
                "items",
                format!("the page cannot be served: {error}"),
            ))
        })?;
        txn.put_page(page, before);
        txn.put_link(record)?;
        Ok(())
    }
}

/// How a preview's transaction ends: never committed, it carries the
/// rendered page out as its error.
enum PreviewOutcome {
    Rendered(String),
    Failed(PageError),
}

impl From<PageError> for PreviewOutcome {
    fn from(error: PageError) -> Self {
        Self::Failed(error)
    }
}

impl From<StoreError> for PreviewOutcome {
    fn from(error: StoreError) -> Self {
        Self::Failed(error.into())
    }
}

/// A refused code, said of the handle.
fn handle_error(error: LinkError) -> PageError {
    match error {
        LinkError::Invalid(invalid) => {
            PageError::Invalid(FieldError::new("handle", format!("{invalid}")))
        }
        other => PageError::Link(other),
    }
}

/// Refuses items naming links `workspace` does not have.
fn check_item_links(
    txn: &WriteTxn<'_>,
    workspace: &str,
    items: &[content::Item],
) -> Result<(), PageError> {
    for (index, item) in items.iter().enumerate() {
        let ItemKind::Link { link_id, .. } = item.kind else {
            continue;
        };
        let owned = txn.link_workspace(link_id)?.as_deref() == Some(workspace);
        if !owned || txn.link(link_id)?.is_none() {
            return Err(PageError::UnknownLink {
                field: format!("items[{index}].link_id"),
                link_id,
            });
        }
    }
    Ok(())
}
