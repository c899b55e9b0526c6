//! The dashmap contender: a sharded `RwLock` hash set holding the engine's own
//! compact [`LinkEntry`] values, looked up by `(domain, code)` without
//! allocating.

use std::hash::BuildHasher;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use foldhash::fast::RandomState;
use papaya::Equivalent;
use ricochet_engine::table::{DomainId, EntryKey, LinkEntry};
use ricochet_model::LinkRecord;

/// `(domain, code)` → [`LinkEntry`] in a [`DashMap`] used as a set.
///
/// `DashMap::get` needs `K: Borrow<Q>`, which a composite borrowed key cannot
/// offer, so lookups do what `get` does through dashmap's `raw-api`: hash,
/// pick the shard, take its read lock, probe its table.
pub struct DashTable {
    links: DashMap<LinkEntry, (), RandomState>,
}

impl std::fmt::Debug for DashTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashTable")
            .field("links", &self.links.len())
            .finish()
    }
}

impl DashTable {
    /// An empty table sized for `capacity` links, with dashmap's default
    /// shard count (4 × cores, rounded up to a power of two).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            links: DashMap::with_capacity_and_hasher(capacity, RandomState::default()),
        }
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// Inserts or replaces (key and URL alike) the entry for `record`.
    pub fn upsert(&self, domain: DomainId, record: &LinkRecord) {
        match self.links.entry(LinkEntry::new(domain, record)) {
            // `insert` on an occupied entry would keep the old key, and the
            // key is the whole entry here.
            Entry::Occupied(occupied) => drop(occupied.replace_entry(())),
            Entry::Vacant(vacant) => drop(vacant.insert(())),
        }
    }

    /// Calls `visit` with the entry at (domain, code) while its shard's read
    /// lock is held.
    #[inline]
    pub fn with_entry<R>(
        &self,
        domain: DomainId,
        code: &[u8],
        visit: impl FnOnce(Option<&LinkEntry>) -> R,
    ) -> R {
        let key = EntryKey { domain, code };
        let hash = self.links.hasher().hash_one(key);
        let shard = self.links.shards()[self.links.determine_shard(hash as usize)].read();
        visit(
            shard
                .get(hash, |(entry, _)| key.equivalent(entry))
                .map(|(entry, _)| entry),
        )
    }

    /// Heap bytes the table asked for: every shard's buckets (16-byte entry
    /// plus one control byte each) and every entry's own allocation.
    pub fn heap_estimate(&self) -> HeapEstimate {
        let buckets: usize = self.links.shards().iter().map(|s| s.read().buckets()).sum();
        let entry_bytes = self.links.iter().map(|item| item.key().heap_size()).sum();
        HeapEstimate {
            slot_bytes: buckets * (size_of::<(LinkEntry, ())>() + 1),
            node_bytes: 0,
            entry_bytes,
        }
    }
}

/// Heap bytes a table requested from the allocator, by part (allocator
/// rounding and headers not included; RSS shows those).
#[derive(Debug, Clone, Copy, Default)]
pub struct HeapEstimate {
    /// The hash table's own arrays (slots, metadata bytes).
    pub slot_bytes: usize,
    /// Per-link nodes the map allocates besides the entry (papaya boxes each).
    pub node_bytes: usize,
    /// The entries' own allocations (`LinkEntry` bytes).
    pub entry_bytes: usize,
}

impl HeapEstimate {
    pub fn total(&self) -> usize {
        self.slot_bytes + self.node_bytes + self.entry_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    #[test]
    fn lookups_and_upserts() {
        let table = DashTable::with_capacity(16);
        for i in 0..100 {
            table.upsert(0, &data::record(i));
        }
        let code = data::code(42);
        let url = table.with_entry(0, &code, |e| e.map(|e| e.url().to_vec()));
        assert_eq!(url.unwrap(), data::url(42).as_bytes());
        table.upsert(0, &data::record_with_url(42, "https://other.example/"));
        assert_eq!(table.len(), 100);
        let url = table.with_entry(0, &code, |e| e.map(|e| e.url().to_vec()));
        assert_eq!(url.unwrap(), b"https://other.example/");
        assert!(table.with_entry(1, &code, |e| e.is_none()));
        assert!(table.heap_estimate().total() > 100 * data::URL_LEN);
    }
}
