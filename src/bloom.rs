//! The blocked bloom filter's arithmetic, shared by the table filter
//! (`sstable/filter.rs`, stored on disk: docs/FORMAT.md, "Filter block") and the memtable's
//! filter (`memtable/bloom.rs`, in memory): the key hash, the 512-bit block a hash picks, and
//! the bits its probes set there. A leaf module, so neither filter borrows from the other.
//!
//! Each key's probes all fall in one 64-byte block chosen by the high half of its hash, so a
//! lookup touches a single cache line.

/// Bits in a filter block: one 64-byte cache line. [`probes`] yields positions below it.
pub(crate) const BLOCK_BITS: u32 = 512;

/// The hash both filters are built on; computed once per lookup and shared by every table
/// and memtable the lookup visits.
#[inline]
pub(crate) fn key_hash(user_key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(user_key)
}

/// The block, out of `num_blocks`, that holds every bit of `hash`.
#[inline]
pub(crate) fn block_index(hash: u64, num_blocks: u32) -> usize {
    // Maps the high 32 bits onto [0, num_blocks) without a division.
    (((hash >> 32) * u64::from(num_blocks)) >> 32) as usize
}

/// Bit positions within the block: each probe multiplies the low hash by the golden ratio
/// and keeps the top 9 bits (a position below [`BLOCK_BITS`]).
#[inline]
pub(crate) fn probes(hash: u64, num_probes: u8) -> impl Iterator<Item = u32> {
    let mut h = hash as u32;
    (0..num_probes).map(move |_| {
        h = h.wrapping_mul(0x9e37_79b9);
        h >> (32 - 9)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_stay_inside_a_block_and_blocks_inside_the_filter() {
        for i in 0..10_000u32 {
            let h = key_hash(&i.to_le_bytes());
            assert!(probes(h, 30).all(|bit| bit < BLOCK_BITS));
            assert!(block_index(h, 7) < 7);
        }
    }
}
