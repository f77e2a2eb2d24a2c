//! Flushing: an immutable memtable becomes an L0 table.
//!
//! Order of durability: the table is written and synced, the directory is synced, then the
//! manifest edit (adding the table and advancing the oldest live WAL) is appended and
//! synced; only then is the memtable dropped and its WAL deleted. A crash at any point
//! leaves either the WAL (replayed at open) or the table (named by the manifest), and any
//! unnamed table is an orphan that the next open removes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{DbInner, background, super_version};
use crate::compaction::VersionFilter;
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::iter::InternalIterator;
use crate::key::{self, SeqNum};
use crate::manifest::{TableFile, VersionEdit};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::sstable::{TableBuilder, TableOptions};
use crate::version::{FileMeta, TableContext};

pub(crate) fn table_options(opts: &Options) -> TableOptions {
    TableOptions {
        block_size: opts.block_size,
        restart_interval: opts.block_restart_interval,
        bloom_bits_per_key: opts.bloom_bits_per_key,
    }
}

/// Writes `mem` to table `number` in the directory of `ctx`, dropping versions no snapshot
/// at or above `smallest_snapshot` can see (tombstones stay: older data may lie below).
/// Syncs the table and the directory, and returns the new table for level 0, or `None` if
/// nothing was left to write.
pub(crate) fn write_level0_table(
    ctx: &Arc<TableContext>,
    opts: &Options,
    mem: &Arc<Memtable>,
    number: u64,
    smallest_snapshot: SeqNum,
) -> Result<Option<Arc<FileMeta>>> {
    let (fs, dir) = (ctx.fs.as_ref(), ctx.dir.as_path());
    let path = filename::table_path(dir, number);
    let result = (|| {
        let mut builder = TableBuilder::create(fs, &path, &table_options(opts))?;
        let mut filter = VersionFilter::new(smallest_snapshot);
        let mut it = mem.iter();
        it.seek_to_first()?;
        while it.valid() {
            let parsed = key::parse(it.key())
                .ok_or_else(|| Error::corruption(&path, 0, "malformed key in a memtable"))?;
            if !filter.drop(parsed.user_key, parsed.seq, parsed.kind, || false) {
                builder.add(it.key(), it.value())?;
            }
            it.next()?;
        }
        if builder.entries() == 0 {
            return Ok(None);
        }
        let summary = builder.finish()?;
        fs.sync_dir(dir).ctx("sync directory", dir)?;
        let file = TableFile::from_summary(number, summary);
        Ok(Some(Arc::new(FileMeta::new(file, ctx))))
    })();
    if !matches!(result, Ok(Some(_))) {
        // Nothing names this file; remove it now rather than at the next open.
        let _ = fs.remove_file(&path);
    }
    result
}

pub(crate) fn flush_thread(db: &Arc<DbInner>) {
    background::run(
        db,
        "flush",
        |db, _| !db.sv.load().imms.is_empty(),
        DbInner::flush_oldest,
    );
}

impl DbInner {
    /// Flushes the oldest immutable memtable; false if there was none.
    fn flush_oldest(&self) -> Result<bool> {
        let sv = self.sv.load_full();
        let Some(imm) = sv.imms.last().cloned() else {
            return Ok(false);
        };
        // WALs older than the oldest memtable still unflushed are obsolete after this.
        let log_number = sv.imms.iter().rev().nth(1).unwrap_or(&sv.mem).wal_number();
        drop(sv);
        let number = self.versions.lock().numbers.allocate();
        let new_table = write_level0_table(
            &self.table_ctx,
            &self.opts,
            &imm,
            number,
            self.smallest_snapshot(),
        )?;
        let edit = VersionEdit {
            log_number: Some(log_number),
            ..VersionEdit::default()
        };
        let mut versions = self.versions.lock();
        let mut added = Vec::new();
        if let Some(f) = new_table {
            self.counters
                .flush_bytes
                .fetch_add(f.size, Ordering::Relaxed);
            added.push((0, f));
        }
        if let Err(e) = versions.log_and_apply(edit, added, self.visible_seq()) {
            // The manifest may hold part of the edit: it cannot take another one.
            drop(versions);
            self.stop_writes(format!("manifest update failed: {e}"));
            return Err(e);
        }
        // Published before the manifest lock is released, so super-versions follow the
        // manifest's order. Otherwise a compaction that logged its edit before this one but
        // published after it would put back a version without the new table, after this
        // flush had already dropped the memtable that held its keys: reads would miss them.
        let version = versions.current();
        self.install_super_version(|sv| {
            let imms = sv
                .imms
                .iter()
                .filter(|m| !Arc::ptr_eq(m, &imm))
                .cloned()
                .collect();
            super_version(Arc::clone(&sv.mem), imms, version, &self.opts)
        });
        drop(versions);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        self.remove_obsolete_wals(log_number);
        self.wake_background(true);
        Ok(true)
    }

    /// Deletes WALs numbered below `log_number`: the manifest says their data is in tables.
    pub(crate) fn remove_obsolete_wals(&self, log_number: u64) {
        let fs = self.opts.fs.as_ref();
        let Ok(names) = fs.list_dir(&self.dir) else {
            // Listing failed; the next open removes what is left.
            return;
        };
        for name in names {
            if let Some(FileType::Wal(n)) = filename::parse(&name)
                && n < log_number
            {
                let _ = fs.remove_file(&filename::wal_path(&self.dir, n));
            }
        }
    }
}

impl Error {
    /// An out-of-space error while writing (not syncing) a file: the one failure the
    /// background threads retry.
    pub(crate) fn is_no_space(&self) -> bool {
        matches!(self, Error::Io { op, source, .. }
            if source.kind() == std::io::ErrorKind::StorageFull && !op.starts_with("sync"))
    }
}
