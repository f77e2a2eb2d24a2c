//! Iterates a sorted run of non-overlapping tables (one level below L0) as one sequence,
//! opening each table only when the scan reaches it.

use std::cmp::Ordering;
use std::sync::Arc;

use super::FileMeta;
use crate::error::Result;
use crate::iter::InternalIterator;
use crate::key;
use crate::sstable::TableIter;

pub(crate) struct LevelIter {
    files: Vec<Arc<FileMeta>>,
    index: usize,
    current: Option<TableIter>,
}

impl LevelIter {
    /// `files` must be sorted by key range and not overlap.
    pub(crate) fn new(files: Vec<Arc<FileMeta>>) -> Self {
        LevelIter {
            files,
            index: 0,
            current: None,
        }
    }

    fn open(&mut self, index: usize) -> Result<()> {
        self.index = index;
        self.current = match self.files.get(index) {
            Some(f) => Some(f.table()?.iter()),
            None => None,
        };
        Ok(())
    }

    fn skip_exhausted_tables(&mut self) -> Result<()> {
        while self.current.as_ref().is_some_and(|c| !c.valid()) {
            self.open(self.index + 1)?;
            if let Some(c) = &mut self.current {
                c.seek_to_first()?;
            }
        }
        Ok(())
    }
}

impl InternalIterator for LevelIter {
    fn valid(&self) -> bool {
        self.current.as_ref().is_some_and(|c| c.valid())
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.open(0)?;
        if let Some(c) = &mut self.current {
            c.seek_to_first()?;
        }
        self.skip_exhausted_tables()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        let index = self
            .files
            .partition_point(|f| key::compare(&f.largest, target) == Ordering::Less);
        self.open(index)?;
        if let Some(c) = &mut self.current {
            c.seek(target)?;
        }
        self.skip_exhausted_tables()
    }

    fn next(&mut self) -> Result<()> {
        if let Some(c) = &mut self.current {
            c.next()?;
        }
        self.skip_exhausted_tables()
    }

    fn key(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |c| c.key())
    }

    fn value(&self) -> &[u8] {
        self.current.as_ref().map_or(&[], |c| c.value())
    }
}
