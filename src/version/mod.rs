//! A version: the set of live tables, level by level. Versions are immutable; each flush or
//! compaction installs a new one. Readers and iterators hold the version they started with,
//! so the tables they read stay on disk until the last holder lets go.

mod health;
mod level_iter;
mod set;

pub(crate) use health::ReadHealth;
pub(crate) use level_iter::LevelIter;
pub(crate) use set::{FileNumbers, VersionSet};

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, OnceLock};

use crate::error::{Error, Result};
use crate::filename;
use crate::fs::FileSystem;
use crate::key::{self, Kind};
use crate::manifest::TableFile;
use crate::options::NUM_LEVELS;
use crate::sstable::BlockCache;
use crate::sstable::Table;

/// What tables need to open themselves and to remove their file once obsolete.
pub(crate) struct TableContext {
    pub fs: Arc<dyn FileSystem>,
    pub dir: PathBuf,
    pub cache: Arc<BlockCache>,
    /// A secondary reader must never delete the writer's files.
    pub may_delete: bool,
    /// Obsolete tables whose removal failed; the next open removes them.
    pub delete_failures: AtomicU64,
    /// Tables out of the tree but still held by a reader (or the thread that replaced them),
    /// so not yet deleted.
    pub obsolete_held: AtomicU64,
    /// Tables whose reads fail.
    pub reads: Arc<ReadHealth>,
}

impl TableContext {
    /// Tables in `dir`, read through a block cache of `cache_bytes` (0 for none), and
    /// removed once obsolete if `may_delete`.
    pub(crate) fn new(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        cache_bytes: usize,
        may_delete: bool,
    ) -> Arc<TableContext> {
        Arc::new(TableContext {
            fs,
            dir: dir.to_path_buf(),
            cache: Arc::new(BlockCache::new(cache_bytes)),
            may_delete,
            delete_failures: AtomicU64::new(0),
            obsolete_held: AtomicU64::new(0),
            reads: Arc::default(),
        })
    }

    /// For reading tables outside an open database (`check`, `repair`): no cache, and
    /// nothing is ever deleted.
    pub(crate) fn read_only(fs: Arc<dyn FileSystem>, dir: &Path) -> Arc<TableContext> {
        TableContext::new(fs, dir, 0, false)
    }
}

/// A live table: its manifest record (which it dereferences to: `f.number`, `f.largest`),
/// and the table itself once opened.
pub(crate) struct FileMeta {
    file: TableFile,
    table: OnceLock<Arc<Table>>,
    /// Set once a synced manifest edit has removed the table; the file is then deleted when
    /// the last version or iterator holding it is dropped.
    obsolete: AtomicBool,
    ctx: Arc<TableContext>,
}

impl FileMeta {
    pub(crate) fn new(file: TableFile, ctx: &Arc<TableContext>) -> Self {
        FileMeta {
            file,
            table: OnceLock::new(),
            obsolete: AtomicBool::new(false),
            ctx: Arc::clone(ctx),
        }
    }

    /// A table known only by its number: a file the manifest does not name, for `check`
    /// and `repair`.
    pub(crate) fn unknown(number: u64, ctx: &Arc<TableContext>) -> Self {
        let file = TableFile {
            number,
            ..TableFile::default()
        };
        FileMeta::new(file, ctx)
    }

    pub(crate) fn path(&self) -> PathBuf {
        filename::table_path(&self.ctx.dir, self.number)
    }

    /// The open table, opening it on first use. A file of another size than the manifest
    /// records is damage (cut short, or grown), even if its footer happens to read.
    pub(crate) fn table(&self) -> Result<Arc<Table>> {
        if let Some(t) = self.table.get() {
            return Ok(Arc::clone(t));
        }
        let path = self.path();
        let table = Table::open(
            self.ctx.fs.as_ref(),
            &path,
            self.number,
            Arc::clone(&self.ctx.cache),
        );
        let table = match table {
            Ok(t) if self.size == 0 || t.file_size() == self.size => Arc::new(t),
            Ok(t) => return Err(self.size_mismatch(t.file_size())),
            // A file cut short usually loses its footer first: say so plainly.
            Err(e) if e.is_corruption() => match self.ctx.fs.open_read(&path).and_then(|f| f.len())
            {
                Ok(len) if self.size > 0 && len != self.size => return Err(self.size_mismatch(len)),
                _ => return Err(e),
            },
            Err(e) => return Err(e),
        };
        Ok(Arc::clone(self.table.get_or_init(|| table)))
    }

    fn size_mismatch(&self, len: u64) -> Error {
        Error::corruption(
            &self.path(),
            len.min(self.size),
            format!("the manifest says {} bytes, the file has {len}", self.size),
        )
    }

    pub(crate) fn mark_obsolete(&self) {
        if !self.obsolete.swap(true, AtomicOrdering::AcqRel) {
            self.ctx.obsolete_held.fetch_add(1, AtomicOrdering::Relaxed);
        }
        // Out of the tree: its reads no longer fail anyone.
        self.ctx.reads.cleared(self.number);
    }

    /// The newest entry for the user key of `lookup` in this table, keeping the record of
    /// which tables fail to read up to date.
    fn get(&self, lookup: &[u8], hash: u64) -> Result<Option<(Kind, Vec<u8>)>> {
        let found = self.table().and_then(|t| t.get(lookup, hash));
        match &found {
            Ok(_) => self.ctx.reads.cleared(self.number),
            Err(e) => self.ctx.reads.failed(self.number, e),
        }
        found
    }

    pub(crate) fn smallest_user_key(&self) -> &[u8] {
        key::user_key(&self.smallest)
    }

    pub(crate) fn largest_user_key(&self) -> &[u8] {
        key::user_key(&self.largest)
    }

    /// Whether the table's key range includes `user_key`.
    pub(crate) fn contains(&self, user_key: &[u8]) -> bool {
        self.smallest_user_key() <= user_key && user_key <= self.largest_user_key()
    }
}

impl std::ops::Deref for FileMeta {
    type Target = TableFile;

    fn deref(&self) -> &TableFile {
        &self.file
    }
}

impl Drop for FileMeta {
    fn drop(&mut self) {
        if !self.obsolete.load(AtomicOrdering::Acquire) {
            return;
        }
        self.ctx.obsolete_held.fetch_sub(1, AtomicOrdering::Relaxed);
        if self.ctx.may_delete {
            let path = self.path();
            if self.ctx.fs.remove_file(&path).is_err() && self.ctx.fs.exists(&path) {
                // Drop cannot report an error; the next open removes the leftover.
                self.ctx
                    .delete_failures
                    .fetch_add(1, AtomicOrdering::Relaxed);
            }
        }
    }
}

/// The live tables at one moment. L0 is newest first; deeper levels are sorted by key and
/// their tables do not overlap.
#[derive(Clone, Default)]
pub(crate) struct Version {
    pub levels: [Vec<Arc<FileMeta>>; NUM_LEVELS],
}

impl Version {
    /// The newest entry for `user_key` at or below the sequence number in `lookup`.
    pub(crate) fn get(&self, lookup: &[u8], hash: u64) -> Result<Option<(Kind, Vec<u8>)>> {
        let user_key = key::user_key(lookup);
        for f in &self.levels[0] {
            if f.contains(user_key)
                && let Some(found) = f.get(lookup, hash)?
            {
                return Ok(Some(found));
            }
        }
        for files in &self.levels[1..] {
            let i = files.partition_point(|f| key::compare(&f.largest, lookup) == Ordering::Less);
            if let Some(f) = files.get(i)
                && f.smallest_user_key() <= user_key
                && let Some(found) = f.get(lookup, hash)?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    pub(crate) fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|f| f.size).sum()
    }

    pub(crate) fn total_bytes(&self) -> u64 {
        (0..NUM_LEVELS).map(|l| self.level_bytes(l)).sum()
    }

    pub(crate) fn num_files(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Tables of `level` whose user-key range meets `[smallest, largest]`.
    pub(crate) fn overlapping(
        &self,
        level: usize,
        smallest: &[u8],
        largest: &[u8],
    ) -> Vec<Arc<FileMeta>> {
        self.levels[level]
            .iter()
            .filter(|f| f.largest_user_key() >= smallest && f.smallest_user_key() <= largest)
            .cloned()
            .collect()
    }

    /// Whether no level deeper than `level` may hold `user_key` (so a tombstone for it can
    /// be dropped).
    pub(crate) fn is_bottom_for(&self, level: usize, user_key: &[u8]) -> bool {
        self.levels[level + 1..]
            .iter()
            .all(|files| !files.iter().any(|f| f.contains(user_key)))
    }

    /// Opens every table (its size against the manifest's, footer, index, filter and
    /// properties), so that a table missing, unreadable or damaged outside its data blocks
    /// fails the open, naming it, rather than every later read that reaches it.
    pub(crate) fn open_tables(&self, dir: &Path) -> Result<()> {
        let tables: Vec<Error> = self
            .levels
            .iter()
            .flatten()
            .filter_map(|f| f.table().err())
            .collect();
        if tables.is_empty() {
            return Ok(());
        }
        Err(Error::TablesUnusable {
            dir: dir.to_path_buf(),
            tables,
        })
    }

    /// Every live table number.
    pub(crate) fn live_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.levels.iter().flatten().map(|f| f.number)
    }

    /// Applies an edit, returning the new version and the tables it dropped. `new_meta`
    /// builds the entry for an added table.
    pub(crate) fn apply(
        &self,
        deleted: &[(usize, u64)],
        added: Vec<(usize, Arc<FileMeta>)>,
    ) -> (Version, Vec<Arc<FileMeta>>) {
        let mut next = self.clone();
        let mut removed = Vec::new();
        for &(level, number) in deleted {
            if let Some(pos) = next.levels[level].iter().position(|f| f.number == number) {
                removed.push(next.levels[level].remove(pos));
            }
        }
        for (level, meta) in added {
            next.levels[level].push(meta);
        }
        next.levels[0].sort_by_key(|f| std::cmp::Reverse(f.number));
        for files in &mut next.levels[1..] {
            files.sort_by(|a, b| key::compare(&a.smallest, &b.smallest));
        }
        // A table moved between levels is removed and re-added: it is not obsolete.
        removed.retain(|f| !next.live_numbers().any(|n| n == f.number));
        (next, removed)
    }
}
