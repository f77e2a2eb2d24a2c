//! The one small trait every iterator over internal keys implements, and the merging
//! iterator (a k-way merge) that composes them. The implementations live beside what they
//! walk: the memtable's, a table's (`sstable::TableIter`), a level's (`version::LevelIter`);
//! the user-facing `DbIterator` that turns versions and tombstones into a snapshot's view
//! is the engine's (`db/iter.rs`).

mod merge;

pub(crate) use merge::MergingIter;

use crate::error::Result;

/// A cursor over entries in internal-key order.
///
/// `key` and `value` may only be called while `valid()`. Errors (a damaged block, an I/O
/// failure) are returned by the call that hit them; the cursor is then invalid.
pub(crate) trait InternalIterator: Send {
    fn valid(&self) -> bool;
    fn seek_to_first(&mut self) -> Result<()>;
    /// Positions on the first entry with internal key `>= target`.
    fn seek(&mut self, target: &[u8]) -> Result<()>;
    fn next(&mut self) -> Result<()>;
    fn key(&self) -> &[u8];
    fn value(&self) -> &[u8];
}

impl<I: InternalIterator + ?Sized> InternalIterator for Box<I> {
    fn valid(&self) -> bool {
        (**self).valid()
    }
    fn seek_to_first(&mut self) -> Result<()> {
        (**self).seek_to_first()
    }
    fn seek(&mut self, target: &[u8]) -> Result<()> {
        (**self).seek(target)
    }
    fn next(&mut self) -> Result<()> {
        (**self).next()
    }
    fn key(&self) -> &[u8] {
        (**self).key()
    }
    fn value(&self) -> &[u8] {
        (**self).value()
    }
}
