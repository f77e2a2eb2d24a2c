//! A bloom filter over a memtable's user keys, so that a point lookup for a key the memtable
//! does not hold skips the skiplist search: a chain of a dozen or more cache misses, the
//! largest cost of `get` in profiles once tables hold most keys. It has the table filter's
//! hashing and cache-line blocks (`crate::bloom`), in atomic words so the writer sets bits
//! while readers test them.
//!
//! Readers see every bit of a visible write: bits are set before the entry is inserted, and
//! the entry is visible only after the release store of the visible sequence number that the
//! reader loads with acquire.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::bloom::{BLOCK_BITS, block_index, probes};

const WORDS_PER_BLOCK: usize = BLOCK_BITS as usize / 64;
const BITS_PER_KEY: usize = 10;
const NUM_PROBES: u8 = 7;

pub(super) struct MemBloom {
    words: Box<[AtomicU64]>,
    num_blocks: u32,
}

impl MemBloom {
    /// A filter sized for `expected_keys` at about 1% false positives (more if the memtable
    /// ends up holding more, smaller entries).
    pub(super) fn new(expected_keys: usize) -> Self {
        let num_blocks = (expected_keys * BITS_PER_KEY)
            .div_ceil(WORDS_PER_BLOCK * 64)
            .clamp(1, u32::MAX as usize);
        let words = (0..num_blocks * WORDS_PER_BLOCK)
            .map(|_| AtomicU64::new(0))
            .collect();
        MemBloom {
            words,
            num_blocks: num_blocks as u32,
        }
    }

    /// Sets the key's bits. Only the memtable's writer (holding its writer lock) calls
    /// this, so a plain load and store does; a locked `fetch_or` would cost more than the
    /// rest of the insert's bookkeeping.
    pub(super) fn add(&self, hash: u64) {
        let block =
            &self.words[block_index(hash, self.num_blocks) * WORDS_PER_BLOCK..][..WORDS_PER_BLOCK];
        for bit in probes(hash, NUM_PROBES) {
            let word = &block[(bit / 64) as usize];
            word.store(
                word.load(Ordering::Relaxed) | (1 << (bit % 64)),
                Ordering::Relaxed,
            );
        }
    }

    /// False means the memtable certainly does not hold the key.
    pub(super) fn may_contain(&self, hash: u64) -> bool {
        let block =
            &self.words[block_index(hash, self.num_blocks) * WORDS_PER_BLOCK..][..WORDS_PER_BLOCK];
        probes(hash, NUM_PROBES)
            .all(|bit| block[(bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64)) != 0)
    }

    pub(super) fn memory(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::key_hash;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let bloom = MemBloom::new(50_000);
        for i in 0..50_000 {
            bloom.add(key_hash(format!("key{i}").as_bytes()));
        }
        assert!((0..50_000).all(|i| bloom.may_contain(key_hash(format!("key{i}").as_bytes()))));
        let fp = (0..50_000)
            .filter(|i| bloom.may_contain(key_hash(format!("other{i}").as_bytes())))
            .count();
        assert!(fp < 1000, "{fp} false positives in 50000");
    }
}
