//! A blocked bloom filter over a table's user keys (docs/FORMAT.md, "Filter block").
//!
//! Each key's probes all fall in one 64-byte (512-bit) block chosen by the high half of its
//! 64-bit hash (the arithmetic is in `crate::bloom`), so a lookup touches a single cache
//! line. The false-positive rate at 10 bits
//! per key is about 1%, a little above a classic bloom filter's 0.8%, for a several-times
//! cheaper probe.
//!
//! ```text
//! filter := bits[64 * num_blocks] num_probes:u8 num_blocks:u32
//! ```

use crate::bloom::{BLOCK_BITS, block_index, probes};

const BLOCK_BYTES: usize = BLOCK_BITS as usize / 8;

pub(crate) struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl FilterBuilder {
    pub(crate) fn new(bits_per_key: u32) -> Self {
        FilterBuilder {
            bits_per_key,
            hashes: Vec::new(),
        }
    }

    pub(crate) fn add(&mut self, hash: u64) {
        if self.hashes.last() != Some(&hash) {
            self.hashes.push(hash);
        }
    }

    pub(crate) fn finish(&self) -> Vec<u8> {
        let total_bits = (self.hashes.len() as u64 * u64::from(self.bits_per_key)).max(1);
        let num_blocks = total_bits
            .div_ceil(u64::from(BLOCK_BITS))
            .min(u64::from(u32::MAX)) as u32;
        // k = bits_per_key * ln 2 minimizes false positives.
        let num_probes = ((f64::from(self.bits_per_key) * 0.69).round() as u8).clamp(1, 30);
        let mut out = vec![0u8; num_blocks as usize * BLOCK_BYTES];
        for &h in &self.hashes {
            let block = block_index(h, num_blocks) * BLOCK_BYTES;
            for bit in probes(h, num_probes) {
                // In range: `block_index` is below `num_blocks`, `bit` below BLOCK_BITS.
                if let Some(byte) = out.get_mut(block + (bit / 8) as usize) {
                    *byte |= 1 << (bit % 8);
                }
            }
        }
        out.push(num_probes);
        out.extend_from_slice(&num_blocks.to_le_bytes());
        out
    }
}

/// A filter read back from a table.
pub(crate) struct Filter {
    bits: Vec<u8>,
    num_blocks: u32,
    num_probes: u8,
}

impl Filter {
    pub(crate) fn decode(mut data: Vec<u8>) -> Result<Filter, &'static str> {
        let n = data.len();
        let Some(&[num_probes, ref count @ ..]) = data.last_chunk::<5>() else {
            return Err("filter block shorter than its trailer");
        };
        let num_blocks = u32::from_le_bytes(*count);
        if num_probes == 0 || num_probes > 30 {
            return Err("filter probe count out of range");
        }
        if u64::from(num_blocks) * BLOCK_BYTES as u64 != (n - 5) as u64 {
            return Err("filter size does not match its block count");
        }
        data.truncate(n - 5);
        Ok(Filter {
            bits: data,
            num_blocks,
            num_probes,
        })
    }

    /// False means the key is certainly absent; true means it may be present.
    #[inline]
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        if self.num_blocks == 0 {
            return true;
        }
        let start = block_index(hash, self.num_blocks) * BLOCK_BYTES;
        // `decode` checked that the bits hold `num_blocks` whole blocks; were one missing,
        // "may contain" is the answer that never hides a key.
        let Some(block) = self.bits.get(start..start + BLOCK_BYTES) else {
            return true;
        };
        probes(hash, self.num_probes).all(|bit| {
            block
                .get((bit / 8) as usize)
                .is_none_or(|byte| byte & (1 << (bit % 8)) != 0)
        })
    }

    pub(crate) fn size(&self) -> usize {
        self.bits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::key_hash;

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let mut b = FilterBuilder::new(10);
        let n = 100_000;
        for i in 0..n {
            b.add(key_hash(format!("key{i}").as_bytes()));
        }
        let f = Filter::decode(b.finish()).unwrap();
        for i in 0..n {
            assert!(f.may_contain(key_hash(format!("key{i}").as_bytes())));
        }
        let fp = (0..n)
            .filter(|i| f.may_contain(key_hash(format!("other{i}").as_bytes())))
            .count();
        let rate = fp as f64 / n as f64;
        assert!(rate < 0.02, "false positive rate {rate}");
    }

    #[test]
    fn an_empty_filter_is_valid() {
        let f = Filter::decode(FilterBuilder::new(10).finish()).unwrap();
        assert!(!f.may_contain(key_hash(b"x")) || f.size() == 64);
    }

    #[test]
    fn malformed_filters_are_refused() {
        assert!(Filter::decode(vec![1, 2, 3]).is_err());
        let mut data = FilterBuilder::new(10).finish();
        data.push(0);
        assert!(Filter::decode(data).is_err());
    }
}
