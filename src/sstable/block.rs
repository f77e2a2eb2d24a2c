//! Reads a block built by [`super::block_builder::BlockBuilder`] (docs/FORMAT.md,
//! "Data and index blocks").
//!
//! A block's bytes passed their checksum before they got here, but the decoder still checks
//! every length against the block's bounds: damage that a checksum cannot catch (or a crafted
//! file) becomes an error, never a panic or an out-of-bounds read.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::coding::{decode_fixed32, decode_varint32};
use crate::key;

/// Why a block could not be decoded.
pub(crate) type BlockError = &'static str;

pub(crate) struct Block {
    data: Vec<u8>,
    /// Where the restart array begins (and entries end).
    restarts_offset: usize,
    num_restarts: usize,
}

impl Block {
    pub(crate) fn new(data: Vec<u8>) -> Result<Block, BlockError> {
        let n = data.len();
        let num_restarts = decode_fixed32(data.get(n.wrapping_sub(4)..).unwrap_or_default())
            .ok_or("block shorter than its restart count")? as usize;
        let restart_bytes = num_restarts
            .checked_mul(4)
            .and_then(|b| b.checked_add(4))
            .ok_or("restart count overflows")?;
        let restarts_offset = n
            .checked_sub(restart_bytes)
            .ok_or("restart array larger than the block")?;
        if num_restarts == 0 && restarts_offset > 0 {
            return Err("block with entries but no restart points");
        }
        Ok(Block {
            data,
            restarts_offset,
            num_restarts,
        })
    }

    /// Bytes held in memory, for the cache's accounting.
    pub(crate) fn size(&self) -> usize {
        self.data.len()
    }

    fn restart_point(&self, index: usize) -> Result<usize, BlockError> {
        let at = self.restarts_offset + 4 * index;
        let offset = self
            .data
            .get(at..)
            .and_then(decode_fixed32)
            .ok_or("truncated restart array")? as usize;
        if offset >= self.restarts_offset {
            return Err("restart point outside the block");
        }
        Ok(offset)
    }

    /// Decodes the entry header at `offset`: (shared, key delta range, value range).
    #[inline]
    fn entry_at(&self, offset: usize) -> Result<Entry, BlockError> {
        let limit = self.restarts_offset;
        let bytes = self
            .data
            .get(offset..limit)
            .ok_or("entry outside the block")?;
        // Fast path: short keys and values have three one-byte varints.
        if let [shared, unshared, value_len, ..] = *bytes
            && (shared | unshared | value_len) < 0x80
        {
            let key_start = offset + 3;
            let value_start = key_start + usize::from(unshared);
            let value_end = value_start + usize::from(value_len);
            if value_end > limit {
                return Err("entry runs past the end of the block");
            }
            return Ok(Entry {
                shared: usize::from(shared),
                key_start,
                value_start,
                value_end,
            });
        }
        let (shared, a) = decode_varint32(bytes).ok_or("bad entry header")?;
        let (unshared, b) = bytes
            .get(a..)
            .and_then(decode_varint32)
            .ok_or("bad entry header")?;
        let (value_len, c) = bytes
            .get(a + b..)
            .and_then(decode_varint32)
            .ok_or("bad entry header")?;
        let key_start = offset + a + b + c;
        let value_start = key_start
            .checked_add(unshared as usize)
            .ok_or("entry length overflows")?;
        let value_end = value_start
            .checked_add(value_len as usize)
            .ok_or("entry length overflows")?;
        if value_end > limit {
            return Err("entry runs past the end of the block");
        }
        Ok(Entry {
            shared: shared as usize,
            key_start,
            value_start,
            value_end,
        })
    }
}

/// Where an entry's parts are in the block; `entry_at` checked that they lie inside it.
#[derive(Clone, Copy)]
struct Entry {
    shared: usize,
    key_start: usize,
    value_start: usize,
    value_end: usize,
}

impl Block {
    /// The bytes of the entry's key after the prefix it shares with the previous key.
    #[inline]
    fn key_delta(&self, e: Entry) -> Result<&[u8], BlockError> {
        self.data
            .get(e.key_start..e.value_start)
            .ok_or("entry outside the block")
    }
}

/// A cursor over a block's entries. Keys are compared as internal keys.
pub(crate) struct BlockIter {
    block: Arc<Block>,
    /// Offset of the current entry; `restarts_offset` when not positioned on an entry.
    current: usize,
    next: usize,
    key: Vec<u8>,
    value: (usize, usize),
}

impl BlockIter {
    pub(crate) fn new(block: Arc<Block>) -> Self {
        let end = block.restarts_offset;
        BlockIter {
            block,
            current: end,
            next: end,
            key: Vec::new(),
            value: (0, 0),
        }
    }

    pub(crate) fn valid(&self) -> bool {
        self.current < self.block.restarts_offset
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn value(&self) -> &[u8] {
        // The range was checked against the block when the entry was decoded.
        self.block
            .data
            .get(self.value.0..self.value.1)
            .unwrap_or_default()
    }

    fn invalidate(&mut self) {
        self.current = self.block.restarts_offset;
        self.next = self.current;
    }

    /// Positions on the entry at `offset`, whose key shares a prefix with the current key.
    #[inline]
    fn decode_at(&mut self, offset: usize) -> Result<(), BlockError> {
        let e = self.block.entry_at(offset)?;
        if e.shared > self.key.len() {
            return Err("entry shares more key bytes than the previous key has");
        }
        self.key.truncate(e.shared);
        self.key.extend_from_slice(self.block.key_delta(e)?);
        self.current = offset;
        self.next = e.value_end;
        self.value = (e.value_start, e.value_end);
        Ok(())
    }

    pub(crate) fn seek_to_first(&mut self) -> Result<(), BlockError> {
        self.key.clear();
        if self.block.restarts_offset == 0 {
            self.invalidate();
            return Ok(());
        }
        self.decode_at(0)
    }

    pub(crate) fn next(&mut self) -> Result<(), BlockError> {
        if self.next >= self.block.restarts_offset {
            self.invalidate();
            return Ok(());
        }
        self.decode_at(self.next)
    }

    /// Positions on the first entry with key `>= target`, or invalid if there is none.
    pub(crate) fn seek(&mut self, target: &[u8]) -> Result<(), BlockError> {
        let block = Arc::clone(&self.block);
        if block.num_restarts == 0 || block.restarts_offset == 0 {
            self.invalidate();
            return Ok(());
        }
        // The last restart point whose key is < target: the answer lies in its interval
        // (or at the start of the next one).
        let (mut left, mut right) = (0usize, block.num_restarts - 1);
        while left < right {
            let mid = left + (right - left).div_ceil(2);
            let offset = block.restart_point(mid)?;
            let e = block.entry_at(offset)?;
            if e.shared != 0 {
                return Err("restart entry with a shared prefix");
            }
            if key::compare(block.key_delta(e)?, target) == Ordering::Less {
                left = mid;
            } else {
                right = mid - 1;
            }
        }
        self.key.clear();
        self.decode_at(block.restart_point(left)?)?;
        while self.valid() && key::compare(&self.key, target) == Ordering::Less {
            self.next()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::block_builder::BlockBuilder;
    use super::*;
    use crate::key::{Kind, internal_key};

    fn build(n: usize, interval: usize) -> (Arc<Block>, Vec<Vec<u8>>) {
        let mut b = BlockBuilder::new(interval);
        let keys: Vec<Vec<u8>> = (0..n)
            .map(|i| internal_key(format!("key{:05}", i * 2).as_bytes(), 7, Kind::Put))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            b.add(k, format!("v{i}").as_bytes());
        }
        (Arc::new(Block::new(b.finish().to_vec()).unwrap()), keys)
    }

    #[test]
    fn iterates_in_order_and_seeks_to_the_first_key_not_less() {
        for interval in [1, 3, 16] {
            let (block, keys) = build(100, interval);
            let mut it = BlockIter::new(Arc::clone(&block));
            it.seek_to_first().unwrap();
            for (i, k) in keys.iter().enumerate() {
                assert!(it.valid());
                assert_eq!(it.key(), k.as_slice());
                assert_eq!(it.value(), format!("v{i}").as_bytes());
                it.next().unwrap();
            }
            assert!(!it.valid());
            for i in 0..200usize {
                let target = internal_key(format!("key{i:05}").as_bytes(), 7, Kind::Put);
                it.seek(&target).unwrap();
                let expect = i.div_ceil(2);
                if expect < 100 {
                    assert_eq!(
                        it.key(),
                        keys[expect].as_slice(),
                        "interval {interval} seek {i}"
                    );
                } else {
                    assert!(!it.valid());
                }
            }
        }
    }

    #[test]
    fn an_empty_block_has_no_entries() {
        let mut b = BlockBuilder::new(16);
        let block = Arc::new(Block::new(b.finish().to_vec()).unwrap());
        let mut it = BlockIter::new(block);
        it.seek_to_first().unwrap();
        assert!(!it.valid());
        it.seek(b"anything").unwrap();
        assert!(!it.valid());
    }

    #[test]
    fn damaged_blocks_give_errors_not_panics() {
        let (block, _) = build(50, 4);
        let good = block.data.clone();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut data = good.clone();
                data[i] ^= flip;
                let Ok(block) = Block::new(data) else {
                    continue;
                };
                let mut it = BlockIter::new(Arc::new(block));
                let _ = it.seek(b"key00040\x01\0\0\0\0\0\0\0");
                if it.seek_to_first().is_ok() {
                    for _ in 0..100 {
                        if !it.valid() || it.next().is_err() {
                            break;
                        }
                    }
                }
            }
        }
        for cut in 0..good.len() {
            if let Ok(block) = Block::new(good[..cut].to_vec()) {
                let mut it = BlockIter::new(Arc::new(block));
                let _ = it.seek_to_first();
                let _ = it.seek(b"key");
            }
        }
    }
}
