//! Flushing: an immutable memtable becomes an L0 table.
//!
//! Order of durability: the table is written and synced, the directory is synced, then the
//! manifest edit (adding the table and advancing the oldest live WAL) is appended and
//! synced; only then is the memtable dropped and its WAL deleted. A crash at any point
//! leaves either the WAL (replayed at open) or the table (named by the manifest), and any
//! unnamed table is an orphan that the next open removes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{DbInner, super_version};
use crate::compaction::VersionFilter;
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::fs::FileSystem;
use crate::iter::InternalIterator;
use crate::key::{self, SeqNum};
use crate::manifest::{NewFile, VersionEdit};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::sstable::{TableBuilder, TableOptions};
use crate::version::FileMeta;

pub(crate) fn table_options(opts: &Options) -> TableOptions {
    TableOptions {
        block_size: opts.block_size,
        restart_interval: opts.block_restart_interval,
        bloom_bits_per_key: opts.bloom_bits_per_key,
    }
}

/// Writes `mem` to table `number` in `dir`, dropping versions no snapshot at or above
/// `smallest_snapshot` can see (tombstones stay: older data may lie below). Syncs the table
/// and the directory. Returns `None` if nothing was left to write.
pub(crate) fn write_level0_table(
    fs: &dyn FileSystem,
    dir: &Path,
    opts: &Options,
    mem: &Arc<Memtable>,
    number: u64,
    smallest_snapshot: SeqNum,
) -> Result<Option<NewFile>> {
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
        Ok(Some(NewFile {
            level: 0,
            number,
            size: summary.file_size,
            smallest: summary.smallest,
            largest: summary.largest,
            entries: summary.properties.entries,
            deletions: summary.properties.deletions,
        }))
    })();
    if !matches!(result, Ok(Some(_))) {
        // Nothing names this file; remove it now rather than at the next open.
        let _ = fs.remove_file(&path);
    }
    result
}

pub(crate) fn flush_thread(db: &Arc<DbInner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        {
            let mut bg = db.bg.lock();
            loop {
                if db.shutting_down.load(Ordering::Acquire) {
                    return;
                }
                if !db.sv.load().imms.is_empty() && !db.stopped_flag.load(Ordering::Acquire) {
                    break;
                }
                db.bg_cv.wait(&mut bg);
            }
        }
        match db.flush_oldest() {
            Ok(()) => backoff = Duration::from_millis(50),
            Err(e) if e.is_no_space() => {
                // Out of space writing the table: nothing is lost (the memtable and its WAL
                // stay), writers stall on the full memtables, and the flush is retried.
                db.counters
                    .background_errors
                    .fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => db.stop_writes(format!("flush failed: {e}")),
        }
    }
}

impl DbInner {
    /// Flushes the oldest immutable memtable.
    fn flush_oldest(&self) -> Result<()> {
        let sv = self.sv.load_full();
        let Some(imm) = sv.imms.last().cloned() else {
            return Ok(());
        };
        // WALs older than the oldest memtable still unflushed are obsolete after this.
        let log_number = sv.imms.iter().rev().nth(1).unwrap_or(&sv.mem).wal_number();
        drop(sv);
        let number = self.versions.lock().numbers.allocate();
        let new_file = write_level0_table(
            self.opts.fs.as_ref(),
            &self.dir,
            &self.opts,
            &imm,
            number,
            self.smallest_snapshot(),
        )?;
        let mut edit = VersionEdit {
            log_number: Some(log_number),
            ..VersionEdit::default()
        };
        let mut versions = self.versions.lock();
        let mut added = Vec::new();
        if let Some(f) = new_file {
            self.counters
                .flush_bytes
                .fetch_add(f.size, Ordering::Relaxed);
            added.push((0, Arc::new(FileMeta::new(&f, &self.table_ctx))));
            edit.added.push(f);
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
        Ok(())
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
