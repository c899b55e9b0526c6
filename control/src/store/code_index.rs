//! The code index of an open bulk load: storage key (domain, 0, code) → link
//! id, for millions of links. Keys sit back to back in one buffer and the
//! hash table holds only a 4-byte entry number and 4 bytes of the key's
//! hash: about 40 bytes a link in a few large allocations, where a map of
//! boxed keys took about 100 in one allocation per key, and the table is
//! small enough that looking up a new code, the common case of an import,
//! costs one cache miss rather than two or three.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;
use hashbrown::HashTable;
use hashbrown::hash_table::Entry;
use ricochet_model::link::storage_key_order;

#[derive(Default)]
pub(crate) struct CodeIndex {
    /// Every key, back to back.
    keys: Vec<u8>,
    /// Per entry: where its key ends in `keys` (it starts where the previous
    /// one ends) and its id.
    entries: Vec<(u64, u64)>,
    /// (entry number, the high 32 bits of its key's hash).
    table: HashTable<(u32, u32)>,
    hasher: RandomState,
}

/// The table's hash of an entry, from the 32 bits it keeps, so growing the
/// table never reads the keys.
fn spread(tag: u32) -> u64 {
    u64::from(tag).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl CodeIndex {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn tag(&self, key: &[u8]) -> u32 {
        (self.hasher.hash_one(key) >> 32) as u32
    }

    /// The id of `key`, if the index holds it.
    pub(crate) fn get(&self, key: &[u8]) -> Option<u64> {
        let tag = self.tag(key);
        self.table
            .find(spread(tag), |&(entry, t)| {
                t == tag && key_at(&self.keys, &self.entries, entry) == key
            })
            .map(|&(entry, _)| self.entries[entry as usize].1)
    }

    /// Sets the id of `key`.
    pub(crate) fn insert(&mut self, key: &[u8], id: u64) {
        let tag = self.tag(key);
        let Self {
            keys,
            entries,
            table,
            ..
        } = self;
        match table.entry(
            spread(tag),
            |&(entry, t)| t == tag && key_at(keys, entries, entry) == key,
            |&(_, t)| spread(t),
        ) {
            Entry::Occupied(found) => entries[found.get().0 as usize].1 = id,
            Entry::Vacant(slot) => {
                let entry = u32::try_from(entries.len()).expect("fewer than 2^32 links a load");
                keys.extend_from_slice(key);
                entries.push((keys.len() as u64, id));
                slot.insert((entry, tag));
            }
        }
    }

    /// Every (key, id) in the order first inserted.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], u64)> {
        (0..self.entries.len() as u32).map(|entry| {
            (
                key_at(&self.keys, &self.entries, entry),
                self.entries[entry as usize].1,
            )
        })
    }

    /// Every (key, id) in ascending key order, for ingestion. Sorting takes
    /// 16 bytes a key and reads keys from the index in place.
    pub(crate) fn sorted(&self) -> impl Iterator<Item = (&[u8], u64)> {
        let order = storage_key_order(self.entries.len(), |entry| {
            key_at(&self.keys, &self.entries, entry as u32)
        });
        order.into_iter().map(|entry| {
            (
                key_at(&self.keys, &self.entries, entry),
                self.entries[entry as usize].1,
            )
        })
    }
}

fn key_at<'a>(keys: &'a [u8], entries: &[(u64, u64)], entry: u32) -> &'a [u8] {
    let entry = entry as usize;
    let start = match entry {
        0 => 0,
        _ => entries[entry - 1].0 as usize,
    };
    &keys[start..entries[entry].0 as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(domain: &str, code: &str) -> Vec<u8> {
        let mut key = domain.as_bytes().to_vec();
        key.push(0);
        key.extend(code.as_bytes());
        key
    }

    #[test]
    fn finds_updates_and_sorts() {
        let mut index = CodeIndex::default();
        let n = 100_000u64;
        for i in 0..n {
            // Descending codes over two domains.
            let domain = if i % 2 == 0 { "b.example" } else { "a.example" };
            index.insert(&key(domain, &format!("c{:06}", n - i)), i);
        }
        assert_eq!(index.len(), n as usize);
        assert_eq!(index.get(&key("b.example", &format!("c{:06}", n))), Some(0));
        assert_eq!(index.get(&key("a.example", &format!("c{:06}", n))), None);
        index.insert(&key("b.example", &format!("c{:06}", n)), 7);
        assert_eq!(index.len(), n as usize, "an update adds no entry");
        assert_eq!(index.get(&key("b.example", &format!("c{:06}", n))), Some(7));
        let sorted: Vec<(Vec<u8>, u64)> =
            index.sorted().map(|(key, id)| (key.to_vec(), id)).collect();
        assert_eq!(sorted.len(), n as usize);
        assert!(sorted.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert!(sorted[0].0.starts_with(b"a.example\0"));
        assert!(sorted.contains(&(key("b.example", &format!("c{:06}", n)), 7)));
    }
}
