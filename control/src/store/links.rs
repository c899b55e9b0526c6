//! Reading links: by id, by (domain, code), and pages of a filtered, sorted
//! listing with an opaque cursor.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ricochet_model::codec;
use ricochet_model::{LinkKey, LinkRecord, LinkState};

use super::{ControlStore, StoreError};

/// Order of a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSort {
    /// Newest first (the default).
    NewestFirst,
    OldestFirst,
    /// By domain, then code.
    Code,
}

/// What a listing keeps.
#[derive(Debug, Clone, Default)]
pub struct LinkFilter {
    /// Only links of this workspace (`None`: every link, for operators' tools).
    pub workspace: Option<String>,
    pub domain: Option<String>,
    pub tag: Option<String>,
    pub state: Option<LinkState>,
    /// Case-insensitive text searched in code, title and destination.
    pub search: Option<String>,
}

impl LinkFilter {
    fn keeps(&self, link: &LinkRecord) -> bool {
        // A page's record is listed with the pages, not the links.
        if link.extensions.page.is_some() {
            return false;
        }
        if self.domain.as_ref().is_some_and(|d| *d != link.domain)
            || self.state.is_some_and(|s| s != link.state)
            || self.tag.as_ref().is_some_and(|t| !link.tags.contains(t))
        {
            return false;
        }
        let Some(search) = &self.search else {
            return true;
        };
        let needle = search.to_lowercase();
        link.code.to_lowercase().contains(&needle)
            || link.url.to_lowercase().contains(&needle)
            || link
                .title
                .as_ref()
                .is_some_and(|t| t.to_lowercase().contains(&needle))
    }
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct LinkPage {
    pub links: Vec<LinkRecord>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// The page stopped after examining [`MAX_EXAMINED`] links that did
    /// not match: more may match after `next_cursor`.
    pub partial: bool,
}

/// Most links one page of a filtered listing examines: a search that
/// matches little of a large workspace answers in bounded time with what it
/// found and a cursor to go on from, instead of reading every link at once.
pub const MAX_EXAMINED: usize = 20_000;

/// Why a cursor was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCursor;

impl ControlStore {
    /// The link with `id`.
    pub fn link(&self, id: u64) -> Result<Option<LinkRecord>, StoreError> {
        match self.links.get(id.to_be_bytes())? {
            Some(bytes) => Ok(Some(codec::decode_record(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The id of the link at (domain, code).
    pub fn id_for_key(&self, key: &LinkKey) -> Result<Option<u64>, StoreError> {
        Ok(self
            .codes
            .get(key.storage_key())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    /// Number of links (any state).
    pub fn link_count(&self) -> usize {
        self.links.approximate_len()
    }

    /// Every link, by id (for export).
    pub fn for_each_link(
        &self,
        mut visit: impl FnMut(LinkRecord) -> bool,
    ) -> Result<(), StoreError> {
        for item in self.links.iter() {
            let (_, value) = item.into_inner()?;
            if !visit(codec::decode_record(&value)?) {
                break;
            }
        }
        Ok(())
    }

    /// A page of links matching `filter`, in `sort` order, after `cursor`.
    pub fn list_links(
        &self,
        filter: &LinkFilter,
        sort: LinkSort,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Result<LinkPage, BadCursor>, StoreError> {
        let after = match cursor.map(decode_cursor) {
            None => None,
            Some(Some(position)) => Some(position),
            Some(None) => return Ok(Err(BadCursor)),
        };
        let mut links = Vec::with_capacity(limit.min(1000));
        let mut last_position = None;
        let mut more = false;
        let mut partial = false;
        let mut examined = 0usize;
        let mut take = |position: Vec<u8>, link: LinkRecord| {
            examined += 1;
            if !filter.keeps(&link) {
                if examined >= MAX_EXAMINED {
                    more = true;
                    partial = true;
                    last_position = Some(position);
                    return false;
                }
                return true;
            }
            if links.len() == limit {
                more = true;
                return false;
            }
            last_position = Some(position);
            links.push(link);
            true
        };
        match sort {
            LinkSort::Code => {
                let start = after.map(|mut p| {
                    p.push(0xff);
                    p
                });
                let iter = match &start {
                    Some(start) => self.codes.range(start.as_slice()..),
                    None => self.codes.iter(),
                };
                for item in iter {
                    let (key, value) = item.into_inner()?;
                    let id = <[u8; 8]>::try_from(value.as_ref())
                        .map(u64::from_be_bytes)
                        .unwrap_or(0);
                    if let Some(workspace) = &filter.workspace
                        && self.link_workspace(id)?.as_deref() != Some(workspace.as_str())
                    {
                        continue;
                    }
                    let Some(link) = self.link(id)? else { continue };
                    if !take(key.to_vec(), link) {
                        break;
                    }
                }
            }
            LinkSort::OldestFirst | LinkSort::NewestFirst => {
                let after_id = after
                    .and_then(|p| <[u8; 8]>::try_from(p.as_slice()).ok())
                    .map(u64::from_be_bytes);
                let newest_first = sort == LinkSort::NewestFirst;
                if let Some(workspace) = &filter.workspace {
                    for id in self.workspace_link_ids(workspace, after_id, newest_first) {
                        let id = id?;
                        let Some(link) = self.link(id)? else { continue };
                        if !take(id.to_be_bytes().to_vec(), link) {
                            break;
                        }
                    }
                } else {
                    let visit = |item: fjall::Guard,
                                 take: &mut dyn FnMut(Vec<u8>, LinkRecord) -> bool|
                     -> Result<bool, StoreError> {
                        let (key, value) = item.into_inner()?;
                        Ok(take(key.to_vec(), codec::decode_record(&value)?))
                    };
                    if !newest_first {
                        let start = after_id.map_or(0, |id| id + 1).to_be_bytes();
                        for item in self.links.range(start..) {
                            if !visit(item, &mut take)? {
                                break;
                            }
                        }
                    } else {
                        let end = after_id.unwrap_or(u64::MAX).to_be_bytes();
                        let iter = match after_id {
                            Some(_) => self.links.range(..end),
                            None => self.links.range(..=end),
                        };
                        for item in iter.rev() {
                            if !visit(item, &mut take)? {
                                break;
                            }
                        }
                    }
                }
            }
        }
        let next_cursor = if more {
            last_position.map(|p| encode_cursor(&p))
        } else {
            None
        };
        Ok(Ok(LinkPage {
            links,
            next_cursor,
            partial,
        }))
    }
}

const CURSOR_PREFIX: &[u8] = b"rc1:";

fn encode_cursor(position: &[u8]) -> String {
    let mut raw = CURSOR_PREFIX.to_vec();
    raw.extend_from_slice(position);
    URL_SAFE_NO_PAD.encode(raw)
}

fn decode_cursor(cursor: &str) -> Option<Vec<u8>> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let position = raw.strip_prefix(CURSOR_PREFIX)?;
    (!position.is_empty() && position.len() <= 512).then(|| position.to_vec())
}
