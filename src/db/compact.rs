//! The compaction thread and manual compaction.
//!
//! Order of durability, as for flushes: outputs are synced (and the directory), then the
//! manifest edit that swaps inputs for outputs is synced, and only then are the inputs
//! marked obsolete; their files go when the last reader holding them lets go.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::flush::table_options;
use super::{BgState, DbInner, background, super_version};
use crate::compaction::{self, Compaction, CompactionEnv, picker};
use crate::error::{Error, Result};

pub(crate) fn compaction_thread(db: &Arc<DbInner>) {
    let requested = |db: &DbInner, bg: &mut BgState| {
        // A request is consumed even when background compaction is off: then only
        // `Db::compact` compacts.
        std::mem::take(&mut bg.compaction_requested) && db.opts.background_compaction
    };
    background::run(db, "compaction", requested, DbInner::compact_once);
}

impl DbInner {
    /// Runs the compaction the policy wants next; false if none is due.
    fn compact_once(&self) -> Result<bool> {
        let _running = self.compaction_lock.lock();
        let picked = {
            let versions = self.versions.lock();
            let version = versions.current();
            picker::pick(&version, &self.opts, &|level| {
                versions.compact_pointer(level).to_vec()
            })
        };
        match picked {
            Some(c) => {
                self.run_compaction(&c)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Compacts everything into one sorted run (after the caller flushed the memtables).
    pub(crate) fn compact_all(&self) -> Result<()> {
        self.check_writable()?;
        let _running = self.compaction_lock.lock();
        let version = self.versions.lock().current();
        if let Some(c) = picker::full(&version, &self.opts)
            && let Err(e) = self.run_compaction(&c)
        {
            // As in the background thread: a failed write or sync is fatal, except a full
            // disk (the inputs are intact and nothing was acknowledged on the outputs).
            if !e.is_no_space() && !matches!(e, Error::Closed) {
                self.stop_writes(format!("compaction failed: {e}"));
            }
            return Err(e);
        }
        Ok(())
    }

    fn run_compaction(&self, c: &Compaction) -> Result<()> {
        let numbers = Arc::clone(&self.versions.lock().numbers);
        let env = CompactionEnv {
            fs: self.opts.fs.as_ref(),
            dir: &self.dir,
            table_opts: table_options(&self.opts),
            numbers: &numbers,
            ctx: &self.table_ctx,
            smallest_snapshot: self.smallest_snapshot(),
            stop: &self.shutting_down,
        };
        let out = compaction::run(c, &env)?;
        let mut versions = self.versions.lock();
        if let Err(e) = versions.log_and_apply(out.edit, out.added, self.visible_seq()) {
            drop(versions);
            self.stop_writes(format!("manifest update failed: {e}"));
            return Err(e);
        }
        // Published before the manifest lock is released: a flush that logs its edit after
        // this one must also publish after it, or its table would vanish from reads.
        let version = versions.current();
        self.install_super_version(|sv| {
            super_version(Arc::clone(&sv.mem), sv.imms.clone(), version, &self.opts)
        });
        drop(versions);
        let counters = &self.counters;
        if c.trivial_move {
            counters.trivial_moves.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.compactions.fetch_add(1, Ordering::Relaxed);
        }
        counters
            .compaction_bytes_read
            .fetch_add(out.bytes_read, Ordering::Relaxed);
        counters
            .compaction_bytes_written
            .fetch_add(out.bytes_written, Ordering::Relaxed);
        counters
            .compaction_entries_dropped
            .fetch_add(out.entries_dropped, Ordering::Relaxed);
        // Stalled writers may go on now.
        self.wake_background(false);
        Ok(())
    }
}
