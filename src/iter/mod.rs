//! Iterators over internal keys, composed from one small trait: memtable, table, level
//! (a sorted run of tables), merging (a k-way merge), and the user-facing [`DbIterator`]
//! that turns versions and tombstones into the snapshot's view of the data.

mod db_iter;
mod level;
mod merge;

pub use db_iter::DbIterator;
pub(crate) use level::LevelIter;
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
