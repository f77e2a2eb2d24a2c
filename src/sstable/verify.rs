//! The one table verifier, for `lsmdb check`, `lsmdb repair` and `Db::check`: reads every
//! data block on its own (so one damaged block does not hide the next) and checks its
//! checksum, each key's form and that keys increase through the whole table. The open has
//! already checked everything outside the data blocks.

use std::cmp::Ordering;
use std::sync::Arc;

use super::block::{Block, BlockIter};
use super::table::Table;
use crate::error::{Error, Result};
use crate::key;

/// What verifying a table found.
#[derive(Debug, Default)]
pub(crate) struct Verified {
    /// Entries that checked out: every entry of an intact block, and those before the
    /// damage in a damaged one.
    pub entries: u64,
    /// One error per damaged block, in file order: [`Error::Corruption`] naming the table
    /// and the block's offset, or the [`Error::Io`] that kept the block from being read.
    /// Kept typed, so a caller can tell damage from an I/O failure.
    pub damage: Vec<Error>,
}

/// Where the entries of intact blocks go, when a caller salvages them.
type CopyTo<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<()>;

impl Table {
    /// Verifies every data block. Errors are only for what stops the walk itself; damage
    /// is in [`Verified::damage`].
    pub(crate) fn verify(&self) -> Result<Verified> {
        self.walk(None)
    }

    /// Verifies every data block as [`Self::verify`] does, and hands each entry of each
    /// intact block, in order, to `copy` (`lsmdb repair` salvaging a damaged table). The
    /// entries increase through the whole table, whatever lies between them. An error from
    /// `copy` stops the walk and is returned.
    pub(crate) fn verify_and_copy(&self, copy: CopyTo<'_>) -> Result<Verified> {
        self.walk(Some(copy))
    }

    fn walk(&self, mut copy: Option<CopyTo<'_>>) -> Result<Verified> {
        let mut out = Verified::default();
        // The last key that checked out, for the order check across blocks.
        let mut prev: Option<Vec<u8>> = None;
        self.for_each_block(|offset, block| {
            let checked =
                block.and_then(|block| self.check_block(offset, block, &mut prev, &mut out));
            match (checked, copy.as_deref_mut()) {
                (Ok(block), Some(copy)) => self.copy_block(offset, block, copy),
                (Ok(_), None) => Ok(()),
                (Err(e), _) => {
                    out.damage.push(e);
                    Ok(())
                }
            }
        })?;
        Ok(out)
    }

    /// Hands the entries of a block [`Self::check_block`] passed to `copy`.
    fn copy_block(&self, offset: u64, block: Arc<Block>, copy: CopyTo<'_>) -> Result<()> {
        let corrupt = |reason: &str| Error::corruption(self.path(), offset, reason);
        let mut it = BlockIter::new(block);
        it.seek_to_first().map_err(corrupt)?;
        while it.valid() {
            copy(it.key(), it.value())?;
            it.next().map_err(corrupt)?;
        }
        Ok(())
    }

    /// Walks one block's entries; the first bad one makes the block damaged.
    fn check_block(
        &self,
        offset: u64,
        block: Arc<Block>,
        prev: &mut Option<Vec<u8>>,
        out: &mut Verified,
    ) -> Result<Arc<Block>> {
        let corrupt = |reason: &str| Error::corruption(self.path(), offset, reason);
        let mut it = BlockIter::new(Arc::clone(&block));
        it.seek_to_first().map_err(corrupt)?;
        while it.valid() {
            if key::parse(it.key()).is_none() {
                return Err(corrupt("malformed internal key"));
            }
            if prev
                .as_deref()
                .is_some_and(|p| key::compare(p, it.key()) != Ordering::Less)
            {
                return Err(corrupt("keys out of order"));
            }
            let last = prev.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(it.key());
            out.entries += 1;
            it.next().map_err(corrupt)?;
        }
        Ok(block)
    }
}
