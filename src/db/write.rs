//! The write path: append the batch to the WAL, insert it into the memtable, then (under
//! `SyncMode::Always`) wait until an `fdatasync` covers it before making it visible and
//! returning. Syncs are shared: whoever finds no sync running starts one covering everything
//! appended so far, and every writer whose record it covers returns (group commit).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{DbInner, super_version};
use crate::batch::WriteBatch;
use crate::error::{Error, IoContext, Result};
use crate::key::SeqNum;
use crate::memtable::Memtable;
use crate::options::SyncMode;
use crate::wal;

/// What the write mutex guards: the live WAL and memtable, and the last sequence number
/// handed out.
pub(crate) struct WriteState {
    pub wal: wal::Writer,
    pub mem: Arc<Memtable>,
    pub last_seq: SeqNum,
}

/// How far the WAL is known to be durable, and whether a sync is under way.
pub(crate) struct SyncState {
    /// The live WAL; `None` for a secondary reader, which has none.
    pub current: Option<Arc<wal::SyncHandle>>,
    /// (WAL number, bytes) covered by the last completed sync. A newer WAL number means
    /// every older WAL is fully durable (rotation syncs the old WAL first).
    pub synced: (u64, u64),
    pub syncing: bool,
}

impl DbInner {
    pub(crate) fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.check_writable()?;
        if batch.is_empty() {
            return Ok(());
        }
        batch.validate()?;
        let (wal_number, wal_end, last_seq) = {
            let mut guard = self.write.lock();
            let ws = guard.as_mut().ok_or(Error::Closed)?;
            self.check_writable()?;
            self.make_room(ws)?;
            let first_seq = ws.last_seq + 1;
            let last_seq = ws.last_seq + batch.len() as u64;

            let record_len = match ws.wal.append(batch, first_seq) {
                Ok(len) => len,
                Err(e) => {
                    // Part of the record may be on disk; nothing more may follow it.
                    self.stop_writes(format!("WAL append failed: {e}"));
                    return Err(e);
                }
            };
            ws.mem
                .apply(first_seq, batch.ops().filter_map(|op| op.ok()));
            ws.last_seq = last_seq;
            self.counters
                .writes
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.counters
                .user_bytes
                .fetch_add(batch.data_bytes() as u64, Ordering::Relaxed);
            self.counters
                .wal_bytes
                .fetch_add(record_len as u64, Ordering::Relaxed);
            if self.opts.sync == SyncMode::None {
                self.visible_seq.store(last_seq, Ordering::Release);
            }
            (ws.wal.number(), ws.wal.len(), last_seq)
        };
        if self.opts.sync == SyncMode::Always {
            self.sync_wal_to(wal_number, wal_end)?;
            self.visible_seq.fetch_max(last_seq, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Returns once an `fdatasync` has covered the WAL up to `(wal_number, offset)`,
    /// running one if none is under way.
    pub(crate) fn sync_wal_to(&self, wal_number: u64, offset: u64) -> Result<()> {
        let mut st = self.sync.lock();
        loop {
            if st.synced >= (wal_number, offset) {
                return Ok(());
            }
            if self.stopped_flag.load(Ordering::Acquire) {
                let reason = self.stopped.lock().clone().unwrap_or_default();
                return Err(Error::WritesStopped(reason));
            }
            if st.syncing {
                self.sync_cv.wait(&mut st);
                continue;
            }
            let Some(handle) = st.current.clone() else {
                return Err(Error::Closed);
            };
            st.syncing = true;
            let result = parking_lot::MutexGuard::unlocked(&mut st, || {
                let upto = handle.appended();
                handle
                    .file
                    .sync_data()
                    .ctx("sync WAL", &handle.path)
                    .map(|()| upto)
            });
            st.syncing = false;
            self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(upto) => {
                    if (handle.number, upto) > st.synced {
                        st.synced = (handle.number, upto);
                    }
                }
                Err(e) => {
                    // The page cache may have dropped the data: never retry and ack.
                    drop(st);
                    self.stop_writes(format!("{e}"));
                    st = self.sync.lock();
                }
            }
            self.sync_cv.notify_all();
        }
    }

    /// Where the live WAL ends, `(number, bytes)`: what a sync must cover for every write
    /// so far to be durable. `None` without a writer (a secondary, or after close).
    fn wal_end(&self) -> Option<(u64, u64)> {
        let guard = self.write.lock();
        guard.as_ref().map(|ws| (ws.wal.number(), ws.wal.len()))
    }

    /// Makes every write so far durable.
    pub(crate) fn sync_all(&self) -> Result<()> {
        match self.wal_end() {
            Some((number, end)) => self.sync_wal_to(number, end),
            None => Ok(()),
        }
    }

    /// Waits or slows down while memtables or L0 are over their limits, and switches to a
    /// new memtable and WAL when the active one is full.
    fn make_room(&self, ws: &mut WriteState) -> Result<()> {
        let mut slowed = false;
        loop {
            self.check_writable()?;
            let sv = self.sv.load();
            let l0 = sv.version.levels[0].len();
            let auto = self.opts.background_compaction;
            let pending = sv.pending_compaction_bytes;
            if auto
                && !slowed
                && (l0 >= self.opts.l0_slowdown_trigger
                    || pending >= self.opts.pending_compaction_slowdown_bytes)
            {
                // Spread the delay over many writes instead of stopping later.
                slowed = true;
                self.counters
                    .stall_slowdowns
                    .fetch_add(1, Ordering::Relaxed);
                let start = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                self.counters
                    .stall_micros
                    .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                continue;
            }
            if ws.mem.memory_usage() < self.opts.write_buffer_size {
                return Ok(());
            }
            let too_many_imms = sv.imms.len() >= self.opts.max_immutable_memtables;
            let l0_full = auto && l0 >= self.opts.l0_stop_trigger;
            let pending_full = auto && pending >= self.opts.pending_compaction_stop_bytes;
            if too_many_imms || l0_full || pending_full {
                drop(sv);
                self.counters.stall_stops.fetch_add(1, Ordering::Relaxed);
                let start = Instant::now();
                {
                    let mut bg = self.bg.lock();
                    if l0_full || pending_full {
                        bg.compaction_requested = true;
                    }
                    self.bg_cv.notify_all();
                    self.bg_cv.wait_for(&mut bg, Duration::from_millis(100));
                }
                self.counters
                    .stall_micros
                    .fetch_add(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                continue;
            }
            drop(sv);
            return self.rotate(ws);
        }
    }

    /// Freezes the active memtable and starts a new memtable and WAL.
    pub(crate) fn rotate(&self, ws: &mut WriteState) -> Result<()> {
        // The old WAL is made durable before the new one takes writes, so that a power loss
        // can only lose a suffix of the writes, never a hole.
        self.sync_wal_to(ws.wal.number(), ws.wal.len())?;
        let number = self.versions.lock().numbers.allocate();
        let writer = wal::Writer::create(
            self.opts.fs.as_ref(),
            &self.dir,
            number,
            &self.opts.wal_log_options(),
        )?;
        let durable = writer.sync().and_then(|()| {
            self.opts
                .fs
                .sync_dir(&self.dir)
                .ctx("sync directory", &self.dir)
        });
        if let Err(e) = durable {
            self.stop_writes(format!("{e}"));
            return Err(e);
        }
        {
            let mut st = self.sync.lock();
            st.current = Some(writer.sync_handle());
            st.synced = st.synced.max((number, writer.len()));
        }
        let mem = Arc::new(Memtable::new(number, self.opts.write_buffer_size));
        let old = std::mem::replace(&mut ws.mem, Arc::clone(&mem));
        ws.wal = writer;
        self.install_super_version(|sv| {
            let mut imms = Vec::with_capacity(sv.imms.len() + 1);
            imms.push(Arc::clone(&old));
            imms.extend(sv.imms.iter().cloned());
            super_version(Arc::clone(&mem), imms, Arc::clone(&sv.version), &self.opts)
        });
        // Everything in the frozen memtable is durable now.
        self.visible_seq.fetch_max(ws.last_seq, Ordering::AcqRel);
        self.wake_background(false);
        Ok(())
    }

    /// Freezes the active memtable (if it holds anything) and waits until every frozen
    /// memtable is in a table.
    pub(crate) fn flush(&self) -> Result<()> {
        self.check_writable()?;
        {
            let mut guard = self.write.lock();
            let ws = guard.as_mut().ok_or(Error::Closed)?;
            if !ws.mem.is_empty() {
                self.rotate(ws)?;
            }
        }
        let mut bg = self.bg.lock();
        loop {
            self.check_writable()?;
            if self.sv.load().imms.is_empty() {
                return Ok(());
            }
            self.bg_cv.notify_all();
            self.bg_cv.wait_for(&mut bg, Duration::from_millis(100));
        }
    }

    /// At close: sync the WAL so that `SyncMode::None` loses nothing on a clean shutdown.
    pub(crate) fn close_wal(&self) -> Result<()> {
        let Some((number, end)) = self.wal_end() else {
            return Ok(());
        };
        // After a failure this reports the reason writes stopped, even when the WAL itself
        // was already durable (a background flush or compaction failed).
        let result = self
            .sync_wal_to(number, end)
            .and_then(|()| self.check_writable());
        *self.write.lock() = None;
        result
    }
}
