//! Runs a compaction: merges the inputs, drops what no reader can see any more, writes the
//! outputs, and returns the version edit that swaps inputs for outputs. The caller logs the
//! edit (after the outputs are synced) and only then are the inputs deleted.

use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};

use super::Compaction;
use crate::error::{Error, IoContext, Result};
use crate::filename::table_path;
use crate::fs::FileSystem;
use crate::iter::{InternalIterator, MergingIter};
use crate::key::{self, Kind, SeqNum};
use crate::manifest::{TableFile, VersionEdit};
use crate::sstable::{TableBuilder, TableOptions};
use crate::version::{FileMeta, FileNumbers, TableContext};

/// Decides, entry by entry in internal-key order, which versions a flush or compaction may
/// drop: a version hidden by a newer one of the same key that every snapshot can see, and a
/// tombstone that every snapshot can see when nothing older may lie below it.
pub(crate) struct VersionFilter {
    smallest_snapshot: SeqNum,
    current_key: Vec<u8>,
    has_current: bool,
    /// Sequence number of the previous entry of the current key.
    last_seq: u64,
}

impl VersionFilter {
    pub(crate) fn new(smallest_snapshot: SeqNum) -> Self {
        VersionFilter {
            smallest_snapshot,
            current_key: Vec::new(),
            has_current: false,
            last_seq: u64::MAX,
        }
    }

    /// Whether the entry can go. `is_bottom` says whether no older data for the key can
    /// exist outside the inputs; it is only asked about visible tombstones.
    pub(crate) fn drop(
        &mut self,
        user_key: &[u8],
        seq: SeqNum,
        kind: Kind,
        is_bottom: impl FnOnce() -> bool,
    ) -> bool {
        if !self.has_current || self.current_key != user_key {
            self.current_key.clear();
            self.current_key.extend_from_slice(user_key);
            self.has_current = true;
            self.last_seq = u64::MAX;
        }
        let drop = if self.last_seq <= self.smallest_snapshot {
            true
        } else {
            kind == Kind::Delete && seq <= self.smallest_snapshot && is_bottom()
        };
        self.last_seq = seq;
        drop
    }
}

/// What a compaction needs from the engine.
pub(crate) struct CompactionEnv<'a> {
    pub fs: &'a dyn FileSystem,
    pub dir: &'a Path,
    pub table_opts: TableOptions,
    pub numbers: &'a FileNumbers,
    pub ctx: &'a Arc<TableContext>,
    pub smallest_snapshot: SeqNum,
    /// Set when the engine is closing: the compaction stops early and changes nothing.
    pub stop: &'a AtomicBool,
}

pub(crate) struct CompactionOutput {
    /// The inputs out, and the next compaction pointer; the outputs are `added`.
    pub edit: VersionEdit,
    /// The tables the compaction wrote (or moved), with their level.
    pub added: Vec<(usize, Arc<FileMeta>)>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub entries_dropped: u64,
}

pub(crate) fn run(c: &Compaction, env: &CompactionEnv<'_>) -> Result<CompactionOutput> {
    let mut edit = VersionEdit {
        deleted: c
            .inputs
            .iter()
            .map(|(level, f)| (*level, f.number))
            .collect(),
        ..VersionEdit::default()
    };
    if c.level > 0
        && let Some(largest) = c
            .inputs
            .iter()
            .filter(|(l, _)| *l == c.level)
            .map(|(_, f)| f.largest_user_key())
            .max()
    {
        edit.compact_pointers.push((c.level, largest.to_vec()));
    }
    if c.trivial_move {
        let added = c
            .inputs
            .iter()
            .map(|(_, f)| (c.output_level, Arc::clone(f)))
            .collect();
        return Ok(CompactionOutput {
            edit,
            added,
            bytes_read: 0,
            bytes_written: 0,
            entries_dropped: 0,
        });
    }

    let mut outputs = Outputs {
        env,
        builder: None,
        finished: Vec::new(),
    };
    match merge(c, env, &mut outputs) {
        Ok(dropped) => {
            let mut added = Vec::new();
            let mut bytes_written = 0;
            for (number, summary) in outputs.finished.drain(..) {
                bytes_written += summary.file_size;
                let file = TableFile::from_summary(number, summary);
                added.push((c.output_level, Arc::new(FileMeta::new(file, env.ctx))));
            }
            if !added.is_empty() {
                env.fs.sync_dir(env.dir).ctx("sync directory", env.dir)?;
            }
            Ok(CompactionOutput {
                edit,
                added,
                bytes_read: c.input_bytes(),
                bytes_written,
                entries_dropped: dropped,
            })
        }
        Err(e) => {
            outputs.abandon();
            Err(e)
        }
    }
}

/// Merges the inputs into `outputs`, returning how many entries were dropped.
fn merge(c: &Compaction, env: &CompactionEnv<'_>, outputs: &mut Outputs<'_>) -> Result<u64> {
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::with_capacity(c.inputs.len());
    for (_, f) in &c.inputs {
        children.push(Box::new(f.table()?.iter_uncached()));
    }
    let mut iter = MergingIter::new(children);
    iter.seek_to_first()?;
    let mut filter = VersionFilter::new(env.smallest_snapshot);
    let mut grandparents = GrandparentCut::new(c);
    let mut last_user_key: Vec<u8> = Vec::new();
    let mut dropped = 0;
    while iter.valid() {
        if env.stop.load(AtomicOrdering::Relaxed) {
            return Err(Error::Closed);
        }
        let ikey = iter.key();
        let parsed = key::parse(ikey).ok_or_else(|| {
            Error::corruption(
                env.dir,
                0,
                format!("malformed internal key {ikey:?} in a compaction input"),
            )
        })?;
        let new_user_key = outputs.builder.is_none() || parsed.user_key != last_user_key.as_slice();
        if filter.drop(parsed.user_key, parsed.seq, parsed.kind, || {
            c.version.is_bottom_for(c.output_level, parsed.user_key)
        }) {
            dropped += 1;
            iter.next()?;
            continue;
        }
        // Cut only between user keys, so all versions of a key stay in one table.
        if new_user_key {
            let cut = grandparents.should_cut_before(ikey, c.target_file_size);
            if let Some((_, b)) = &outputs.builder
                && (b.file_size() >= c.target_file_size || cut)
            {
                outputs.finish_current()?;
            }
            last_user_key.clear();
            last_user_key.extend_from_slice(parsed.user_key);
        }
        outputs.add(ikey, iter.value())?;
        iter.next()?;
    }
    outputs.finish_current()?;
    Ok(dropped)
}

/// The tables a compaction is writing.
struct Outputs<'a> {
    env: &'a CompactionEnv<'a>,
    builder: Option<(u64, TableBuilder)>,
    finished: Vec<(u64, crate::sstable::TableSummary)>,
}

impl Outputs<'_> {
    fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        if self.builder.is_none() {
            let number = self.env.numbers.allocate();
            let path = table_path(self.env.dir, number);
            let b = TableBuilder::create(self.env.fs, &path, &self.env.table_opts)?;
            self.builder = Some((number, b));
        }
        match &mut self.builder {
            Some((_, b)) => b.add(ikey, value),
            None => Ok(()),
        }
    }

    fn finish_current(&mut self) -> Result<()> {
        if let Some((number, b)) = self.builder.take() {
            match b.finish() {
                Ok(summary) => self.finished.push((number, summary)),
                Err(e) => {
                    // Out of `builder`, so `abandon` would not see it: remove it here.
                    let _ = self.env.fs.remove_file(&table_path(self.env.dir, number));
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Removes the outputs of a failed compaction; whatever cannot be removed now is an
    /// orphan that the next open removes.
    fn abandon(&mut self) {
        let numbers = self
            .builder
            .take()
            .map(|(n, _)| n)
            .into_iter()
            .chain(self.finished.drain(..).map(|(n, _)| n));
        for number in numbers {
            let _ = self.env.fs.remove_file(&table_path(self.env.dir, number));
        }
    }
}

/// Cuts an output before it overlaps too many bytes of the grandparent level (LevelDB's
/// rule): a later compaction of that output would otherwise have to rewrite them all.
struct GrandparentCut<'a> {
    grandparents: &'a [Arc<FileMeta>],
    index: usize,
    seen_key: bool,
    overlapped: u64,
}

impl<'a> GrandparentCut<'a> {
    fn new(c: &'a Compaction) -> Self {
        GrandparentCut {
            grandparents: &c.grandparents,
            index: 0,
            seen_key: false,
            overlapped: 0,
        }
    }

    fn should_cut_before(&mut self, ikey: &[u8], target: u64) -> bool {
        while let Some(gp) = self.grandparents.get(self.index)
            && key::compare(ikey, &gp.largest) == Ordering::Greater
        {
            if self.seen_key {
                self.overlapped += gp.size;
            }
            self.index += 1;
        }
        self.seen_key = true;
        if self.overlapped > 10 * target {
            self.overlapped = 0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_keeps_what_a_snapshot_can_see() {
        // Snapshot at 5: of k's versions 9, 7, 4, 2, versions 9 and 7 are above the
        // snapshot and 4 is what the snapshot sees; 2 is hidden from everyone.
        let mut f = VersionFilter::new(5);
        assert!(!f.drop(b"k", 9, Kind::Put, || true));
        assert!(!f.drop(b"k", 7, Kind::Put, || true));
        assert!(!f.drop(b"k", 4, Kind::Put, || true));
        assert!(f.drop(b"k", 2, Kind::Put, || true));
        // A visible tombstone goes only at the bottom, and what it hides goes with it.
        assert!(f.drop(b"m", 3, Kind::Delete, || true));
        assert!(f.drop(b"m", 1, Kind::Put, || true));
        assert!(!f.drop(b"n", 3, Kind::Delete, || false));
        assert!(f.drop(b"n", 1, Kind::Put, || false));
        // A tombstone above the snapshot stays.
        assert!(!f.drop(b"p", 6, Kind::Delete, || true));
        assert!(!f.drop(b"p", 1, Kind::Put, || true));
    }
}
