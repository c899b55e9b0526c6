//! Memory readings: the process's resident set from `/proc/self/status`, and
//! what the papaya link table asks the allocator for, from its layout.

use ricochet_engine::table::LinkEntry;

use crate::dash::HeapEstimate;

/// Resident set size of this process in bytes (`VmRSS`), 0 where unknown.
pub fn resident_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Peak resident set size of this process in bytes (`VmHWM`).
pub fn peak_resident_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

fn status_kib(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Slots papaya allocates for `capacity` entries (its `probe::entries_for`:
/// capacity × 4/3, rounded up to a power of two).
pub fn papaya_slots(capacity: usize) -> usize {
    (capacity * 8 / 6).next_power_of_two()
}

/// What a papaya `HashSet<LinkEntry>` pre-sized for `capacity` and holding
/// `links` entries whose own allocations total `entry_bytes` asks for: one
/// metadata byte and one pointer per slot, and one boxed node per link (papaya
/// boxes every entry; the node holds the `LinkEntry`'s fat pointer).
pub fn papaya_estimate(capacity: usize, links: usize, entry_bytes: usize) -> HeapEstimate {
    HeapEstimate {
        slot_bytes: papaya_slots(capacity.max(links)) * (1 + size_of::<usize>()),
        node_bytes: links * size_of::<LinkEntry>(),
        entry_bytes,
    }
}

/// The global allocator this build uses.
pub const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "glibc"
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_rss() {
        assert!(resident_bytes() > 0);
        assert!(peak_resident_bytes() >= resident_bytes() / 2);
        assert_eq!(papaya_slots(1_000_000), 1 << 21);
        assert_eq!(papaya_slots(10_000_000), 1 << 24);
    }
}
