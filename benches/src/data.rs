//! Deterministic link data for benchmarks: unique random-looking 7-character
//! codes, URLs of exactly [`URL_LEN`] bytes on one domain, and shuffles.

use ricochet_model::LinkRecord;

/// The one domain every generated link lives on.
pub const DOMAIN: &str = "go.example";
/// Length of every generated code.
pub const CODE_LEN: usize = 7;
/// Length of every generated URL.
pub const URL_LEN: usize = 60;
/// `created_at` of generated records (2026-11-24T00:00:00Z).
pub const CREATED_AT: i64 = 1_795_478_400_000;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Number of distinct codes: 62^7.
const CODE_SPACE: u64 = 3_521_614_606_208;
const MASK_42: u64 = (1 << 42) - 1;

/// A bijection on 42-bit integers (xorshifts and odd multiplications).
fn mix42(mut x: u64) -> u64 {
    x ^= x >> 21;
    x = x.wrapping_mul(0x2545_F491_4F6C_DD1D) & MASK_42;
    x ^= x >> 17;
    x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) & MASK_42;
    x ^= x >> 23;
    x
}

/// The code of link `index`: base62 of a pseudo-random permutation of
/// `0..62^7` (cycle-walking [`mix42`]), so codes never repeat.
pub fn code(index: u64) -> [u8; CODE_LEN] {
    assert!(index < CODE_SPACE, "index beyond the code space");
    let mut x = mix42(index);
    while x >= CODE_SPACE {
        x = mix42(x);
    }
    let mut code = [0u8; CODE_LEN];
    for byte in code.iter_mut().rev() {
        *byte = ALPHABET[(x % 62) as usize];
        x /= 62;
    }
    code
}

/// The destination of link `index`, exactly [`URL_LEN`] bytes and already in
/// the normalized form the model's validation produces.
pub fn url(index: u64) -> String {
    let url = format!(
        "https://shop.example.com/catalog/{:06}/item-{:08x}?ref={:02}",
        index % 1_000_000,
        mix42(index ^ 0x5A5A) as u32,
        index % 100
    );
    debug_assert_eq!(url.len(), URL_LEN);
    url
}

/// A validated active record for link `index` (id `index + 1`).
pub fn record(index: u64) -> LinkRecord {
    record_with_url(index, &url(index))
}

/// A validated active record for link `index` pointing at `url`.
pub fn record_with_url(index: u64, url: &str) -> LinkRecord {
    let code = code(index);
    let code = std::str::from_utf8(&code).expect("codes are ASCII");
    LinkRecord::new(index + 1, DOMAIN, code, url, CREATED_AT).expect("generated links are valid")
}

/// SplitMix64: a small, fast, seedable generator for shuffles.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (Lemire's multiply-shift, bias negligible here).
    pub fn below(&mut self, bound: u64) -> u64 {
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }
}

/// `0..n` in a random order (Fisher–Yates).
pub fn shuffled(n: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = SplitMix64::new(seed);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// The codes of links `0..n` in a random order: the lookup sequence of a
/// benchmark.
pub fn shuffled_codes(n: usize, seed: u64) -> Vec<[u8; CODE_LEN]> {
    shuffled(n, seed)
        .into_iter()
        .map(|i| code(i as u64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_valid() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200_000 {
            let code = code(i);
            assert!(ricochet_model::validate::is_valid_code(&code));
            assert!(seen.insert(code), "code {i} repeats");
        }
    }

    #[test]
    fn records_keep_their_url() {
        for i in [0, 1, 999_999, 12_345_678] {
            let record = record(i);
            assert_eq!(record.url.len(), URL_LEN);
            assert_eq!(record.url, url(i));
            assert_eq!(record.domain, DOMAIN);
        }
    }

    #[test]
    fn shuffles_are_permutations() {
        let mut order = shuffled(1000, 7);
        order.sort_unstable();
        assert!(order.iter().copied().eq(0..1000));
    }
}
