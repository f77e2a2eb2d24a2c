//! A table's index, decoded once at open into flat arrays
//! (docs/FORMAT.md, "Data and index blocks"). A point lookup binary-searches it with plain slice comparisons; searching the
//! encoded index block instead decoded an entry (three varints and bounds checks) at every
//! step, a fifth of a random read's time in profiles.

use std::cmp::Ordering;
use std::sync::Arc;

use super::block::{Block, BlockError, BlockIter};
use super::footer::BlockHandle;
use crate::key;

pub(crate) struct Index {
    /// Every separator key, concatenated.
    keys: Vec<u8>,
    /// Where separator `i` ends in `keys` (it starts where `i - 1` ends).
    ends: Vec<u32>,
    handles: Vec<BlockHandle>,
}

impl Index {
    /// Decodes an index block: separator keys in increasing order, each with the handle of
    /// its data block.
    pub(crate) fn decode(block: Block) -> Result<Index, BlockError> {
        let mut index = Index {
            keys: Vec::with_capacity(block.size()),
            ends: Vec::new(),
            handles: Vec::new(),
        };
        let mut it = BlockIter::new(Arc::new(block));
        it.seek_to_first()?;
        while it.valid() {
            let handle = BlockHandle::decode_varint(it.value())
                .ok_or("malformed block handle in the index")?;
            if let Some(prev) = index.len().checked_sub(1).and_then(|p| index.key(p))
                && key::compare(prev, it.key()) != Ordering::Less
            {
                return Err("index keys out of order");
            }
            index.keys.extend_from_slice(it.key());
            index
                .ends
                .push(u32::try_from(index.keys.len()).map_err(|_| "index too large")?);
            index.handles.push(handle);
            it.next()?;
        }
        Ok(index)
    }

    pub(crate) fn len(&self) -> usize {
        self.handles.len()
    }

    /// Separator `i`, if there is one.
    pub(crate) fn key(&self, i: usize) -> Option<&[u8]> {
        let start = match i.checked_sub(1) {
            Some(p) => *self.ends.get(p)? as usize,
            None => 0,
        };
        self.keys.get(start..*self.ends.get(i)? as usize)
    }

    /// The handle of block `i`, if there is one.
    pub(crate) fn handle(&self, i: usize) -> Option<BlockHandle> {
        self.handles.get(i).copied()
    }

    /// Every block's handle, in order.
    pub(crate) fn handles(&self) -> &[BlockHandle] {
        &self.handles
    }

    /// The first block whose separator is `>= target`: the only block that can hold the
    /// first entry `>= target`. `len()` if there is none.
    pub(crate) fn find(&self, target: &[u8]) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self
                .key(mid)
                .is_some_and(|k| key::compare(k, target) == Ordering::Less)
            {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub(crate) fn memory(&self) -> usize {
        self.keys.len()
            + 4 * self.ends.len()
            + std::mem::size_of::<BlockHandle>() * self.handles.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::block_builder::BlockBuilder;
    use super::*;
    use crate::key::{Kind, internal_key};

    #[test]
    fn find_returns_the_first_separator_not_less_than_the_target() {
        let mut b = BlockBuilder::new(1);
        for i in 0..100u64 {
            let mut v = Vec::new();
            BlockHandle {
                offset: i * 4096,
                size: 4000,
            }
            .encode_varint(&mut v);
            b.add(
                &internal_key(format!("k{:04}", i * 10).as_bytes(), 1, Kind::Put),
                &v,
            );
        }
        let index = Index::decode(Block::new(b.finish().to_vec()).unwrap()).unwrap();
        assert_eq!(index.len(), 100);
        assert_eq!(index.find(&internal_key(b"k0000", 1, Kind::Put)), 0);
        assert_eq!(index.find(&internal_key(b"k0005", 1, Kind::Put)), 1);
        assert_eq!(index.find(&internal_key(b"k0990", 1, Kind::Put)), 99);
        assert_eq!(index.find(&internal_key(b"k0991", 1, Kind::Put)), 100);
        assert_eq!(index.handle(1).unwrap().offset, 4096);
        assert_eq!(index.handle(100), None);
    }

    #[test]
    fn out_of_order_or_malformed_indexes_are_refused() {
        let mut b = BlockBuilder::new(1);
        b.add(&internal_key(b"b", 1, Kind::Put), &[0, 1]);
        b.add(&internal_key(b"a", 1, Kind::Put), &[0, 1]);
        assert!(Index::decode(Block::new(b.finish().to_vec()).unwrap()).is_err());
        let mut b = BlockBuilder::new(1);
        b.add(&internal_key(b"a", 1, Kind::Put), &[0x80]);
        assert!(Index::decode(Block::new(b.finish().to_vec()).unwrap()).is_err());
    }
}
