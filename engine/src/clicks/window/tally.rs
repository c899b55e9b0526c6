//! The table a window counts its (link, profile) pairs in.
//!
//! Under uniform traffic nearly every click is the first of its link in the
//! window, so the table is large (a million distinct links fill 16 MiB) and
//! each add is a cache miss. Two things keep that cheap:
//!
//! - open addressing with linear probing over 16-byte slots, so a lookup
//!   touches one cache line (a general-purpose map keeps its control bytes
//!   apart from its entries: two misses);
//! - adds are queued and applied `QUEUE` at a time in a tight loop, so the
//!   probes of a batch are independent loads the CPU overlaps instead of
//!   waiting for one miss after another between two enrichments.

use std::hash::BuildHasher;

use ricochet_model::LinkId;

/// Adds applied together.
const QUEUE: usize = 32;
/// Smallest table (slots, a power of two).
const MIN_SLOTS: usize = 1 << 10;

/// Clicks of one link with one profile; `count` 0 marks an empty slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub link: LinkId,
    pub profile: u32,
    pub count: u32,
}

#[derive(Debug)]
pub struct TallyTable {
    slots: Vec<Tally>,
    /// Occupied slots.
    len: usize,
    /// `64 - log2(slots.len())`: a hash's top bits pick the first slot.
    shift: u32,
    /// Mixed into every hash, so slot order differs between tables.
    seed: u64,
    /// Rows the tallies become: the sum of their weights.
    rows: usize,
    /// Adds not applied yet: link, profile and the profile's weight.
    queued: Vec<(LinkId, u32, u32)>,
}

impl Default for TallyTable {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            shift: 64,
            seed: std::hash::RandomState::new().hash_one(0u64),
            rows: 0,
            queued: Vec::with_capacity(QUEUE),
        }
    }
}

impl TallyTable {
    /// Counts one click of `link` with `profile`, whose tally becomes
    /// `weight` rows.
    #[inline]
    pub fn add(&mut self, link: LinkId, profile: u32, weight: u32) {
        self.queued.push((link, profile, weight));
        if self.queued.len() == QUEUE {
            self.apply_queued();
        }
    }

    /// Slots allocated (what a reused table starts with).
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Distinct (link, profile) pairs counted, leaving out the last adds
    /// still queued (at most `QUEUE - 1`).
    #[inline]
    pub fn entries(&self) -> usize {
        self.len
    }

    /// Rows the tallies become (the weights of the distinct pairs), leaving
    /// out the adds still queued.
    #[inline]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Bytes the table holds: its slots and its queue.
    pub fn memory_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Tally>()
            + self.queued.capacity() * size_of::<(LinkId, u32, u32)>()
    }

    /// Every tally, in no particular order.
    pub fn iter(&mut self) -> impl Iterator<Item = &Tally> {
        self.apply_queued();
        self.slots.iter().filter(|tally| tally.count > 0)
    }

    /// Empties the table, keeping its slots.
    pub fn clear(&mut self) {
        self.queued.clear();
        if self.len > 0 {
            self.slots.fill(Tally::default());
            self.len = 0;
            self.rows = 0;
        }
    }

    #[inline]
    fn home(&self, link: LinkId, profile: u32) -> usize {
        // Fibonacci hashing: the product's top bits are well mixed even for
        // sequential link ids.
        let key = (link ^ self.seed) ^ u64::from(profile).rotate_left(40);
        (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// Applies the queued adds, so `entries` and `rows` count them.
    pub fn apply_queued(&mut self) {
        if self.queued.is_empty() {
            return;
        }
        // At most 70 % full after this batch, so probe runs stay short.
        if (self.len + self.queued.len()) * 10 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        for index in 0..self.queued.len() {
            let (link, profile, weight) = self.queued[index];
            let mut slot = self.home(link, profile);
            loop {
                let tally = &mut self.slots[slot];
                if tally.count == 0 {
                    *tally = Tally {
                        link,
                        profile,
                        count: 1,
                    };
                    self.len += 1;
                    self.rows += weight as usize;
                    break;
                }
                if tally.link == link && tally.profile == profile {
                    tally.count = tally.count.saturating_add(1);
                    break;
                }
                slot = (slot + 1) & mask;
            }
        }
        self.queued.clear();
    }

    fn grow(&mut self) {
        let wanted = ((self.len + QUEUE) * 2).max(MIN_SLOTS).next_power_of_two();
        let old = std::mem::replace(&mut self.slots, vec![Tally::default(); wanted]);
        self.shift = 64 - wanted.trailing_zeros();
        let mask = wanted - 1;
        for tally in old.into_iter().filter(|tally| tally.count > 0) {
            let mut slot = self.home(tally.link, tally.profile);
            while self.slots[slot].count != 0 {
                slot = (slot + 1) & mask;
            }
            self.slots[slot] = tally;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn counts_every_add_through_growth_and_clear() {
        let mut table = TallyTable::default();
        let mut expected: HashMap<(LinkId, u32), u32> = HashMap::new();
        // Sequential and clustered links, a few profiles, some repeated.
        for round in 0..3u64 {
            for link in 0..5_000u64 {
                for profile in 0..(link % 3) as u32 + 1 {
                    if (link + round) % 4 == 0 && round > 0 {
                        continue;
                    }
                    table.add(link << 20, profile, profile + 1);
                    *expected.entry((link << 20, profile)).or_default() += 1;
                }
            }
        }
        assert_eq!(table.iter().count(), expected.len());
        assert_eq!(table.entries(), expected.len());
        let weights: usize = expected.keys().map(|&(_, p)| p as usize + 1).sum();
        assert_eq!(table.rows(), weights);
        let got: HashMap<(LinkId, u32), u32> = table
            .iter()
            .map(|t| ((t.link, t.profile), t.count))
            .collect();
        assert_eq!(got, expected);
        let capacity = table.capacity();
        assert!(capacity >= expected.len() * 10 / 7);

        table.clear();
        assert_eq!(table.iter().count(), 0);
        assert_eq!(table.capacity(), capacity, "clear keeps the slots");
        assert_eq!((table.entries(), table.rows()), (0, 0));
        table.add(7, 1, 2);
        table.add(7, 1, 2);
        let only: Vec<Tally> = table.iter().copied().collect();
        assert_eq!(
            only,
            vec![Tally {
                link: 7,
                profile: 1,
                count: 2
            }]
        );
    }
}
