//! The read path. A read first loads the visible sequence number, then the super-version:
//! in that order, because every write at or below the sequence number is already in that
//! super-version's memtables or tables (the reverse order could miss a write that rotated
//! into a memtable the older super-version does not have).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::DbInner;
use super::DbIterator;
use crate::bloom::key_hash;
use crate::error::Result;
use crate::iter::{InternalIterator, MergingIter};
use crate::key::{self, Kind, SeqNum};
use crate::memtable::Lookup;
use crate::version::LevelIter;

impl DbInner {
    pub(crate) fn get(&self, user_key: &[u8], snapshot: Option<SeqNum>) -> Result<Option<Vec<u8>>> {
        self.counters.gets.fetch_add(1, Ordering::Relaxed);
        let seq = snapshot.unwrap_or_else(|| self.visible_seq());
        let sv = self.sv.load();
        let lookup = key::lookup_key(user_key, seq);
        let hash = key_hash(user_key);
        for mem in std::iter::once(&sv.mem).chain(&sv.imms) {
            match mem.get(&lookup, hash) {
                Lookup::Found(v) => return Ok(Some(v.to_vec())),
                Lookup::Deleted => return Ok(None),
                Lookup::Absent => {}
            }
        }
        match sv.version.get(&lookup, hash)? {
            Some((Kind::Put, value)) => Ok(Some(value)),
            Some((Kind::Delete, _)) | None => Ok(None),
        }
    }

    /// An iterator over `[lower, upper)` at `snapshot` (or now), positioned on its first key.
    pub(crate) fn iter(
        &self,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        snapshot: Option<SeqNum>,
    ) -> Result<DbIterator> {
        let seq = snapshot.unwrap_or_else(|| self.visible_seq());
        let sv = self.sv.load_full();
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        children.push(Box::new(sv.mem.iter()));
        for imm in &sv.imms {
            children.push(Box::new(imm.iter()));
        }
        let in_range = |f: &crate::version::FileMeta| {
            lower.as_deref().is_none_or(|l| f.largest_user_key() >= l)
                && upper.as_deref().is_none_or(|u| f.smallest_user_key() < u)
        };
        for f in sv.version.levels[0].iter().filter(|f| in_range(f)) {
            let table = f
                .table()
                .inspect_err(|e| self.table_ctx.reads.failed(f.number, e))?;
            children.push(Box::new(table.iter()));
        }
        for files in &sv.version.levels[1..] {
            let files: Vec<_> = files.iter().filter(|f| in_range(f)).cloned().collect();
            if !files.is_empty() {
                children.push(Box::new(LevelIter::new(files)));
            }
        }
        let version = Arc::clone(&sv.version);
        let health = Arc::clone(&self.table_ctx.reads);
        let mut it = DbIterator::new(
            MergingIter::new(children),
            version,
            seq,
            lower,
            upper,
            health,
        );
        it.seek_to_first()?;
        Ok(it)
    }

    fn register_snapshot(&self) -> SeqNum {
        let mut snapshots = self.snapshots.lock();
        // Read under the lock so compaction never sees a snapshot older than the smallest
        // it computed.
        let seq = self.visible_seq();
        *snapshots.entry(seq).or_insert(0) += 1;
        seq
    }

    fn release_snapshot(&self, seq: SeqNum) {
        let mut snapshots = self.snapshots.lock();
        if let Some(n) = snapshots.get_mut(&seq) {
            *n -= 1;
            if *n == 0 {
                snapshots.remove(&seq);
            }
        }
    }
}

/// A consistent point-in-time view of the database (see [`crate::Db::snapshot`]).
pub struct Snapshot {
    inner: Arc<DbInner>,
    seq: SeqNum,
}

impl Snapshot {
    pub(crate) fn new(inner: Arc<DbInner>) -> Snapshot {
        let seq = inner.register_snapshot();
        Snapshot { inner, seq }
    }

    /// The value `key` had when the snapshot was taken.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.get(key.as_ref(), Some(self.seq))
    }

    /// The keys in `[start, end)` as they were when the snapshot was taken.
    pub fn range(&self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Result<DbIterator> {
        self.inner.iter(
            Some(start.as_ref().to_vec()),
            Some(end.as_ref().to_vec()),
            Some(self.seq),
        )
    }

    /// Every key as it was when the snapshot was taken.
    pub fn iter(&self) -> Result<DbIterator> {
        self.inner.iter(None, None, Some(self.seq))
    }

    /// The snapshot's sequence number.
    pub fn sequence(&self) -> u64 {
        self.seq
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.inner.release_snapshot(self.seq);
    }
}
