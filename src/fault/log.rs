//! The production WAL file (`crate::fs::log_file::LogFile`: reserved ahead with `fallocate`,
//! appended through a memory mapping or positioned writes) over the fault model. The model
//! sits beneath the log, where the log reserves, writes, syncs and trims, so a power cut
//! keeps exactly what the log's own sync made durable: a log that skipped a sync, or wrote a
//! byte where it should not, fails the power-loss tests.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Target;
use super::model::{FileId, State, crash_error, stale_error};
use crate::fs::WritableFile;
use crate::fs::log_file::{LogBacking, LogFile, reserve_space};

/// The log as the engine holds it: crashes, failed syncs and dead handles are decided here,
/// before the log runs.
pub(super) struct FaultLog {
    pub(super) log: LogFile,
    pub(super) state: Arc<Mutex<State>>,
    pub(super) id: FileId,
    pub(super) epoch: u64,
}

impl WritableFile for FaultLog {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let torn = {
            let mut st = self.state.lock();
            st.check_handle(self.epoch)?;
            st.tick()?
        };
        if torn {
            // The process dies in the middle of the copy: the first half is in the page cache.
            let _ = self.log.append(&data[..data.len() / 2]);
            return Err(crash_error());
        }
        self.log.append(data)?;
        if let Some(f) = self.state.lock().files.get_mut(&self.id) {
            f.len += data.len() as u64;
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.state
            .lock()
            .before_sync(self.epoch, self.id, Target::Wal)?;
        // Durable only if the log's own sync reaches the backing's.
        self.log.sync_data()
    }
}

/// The file beneath the log, as the fault model sees it.
pub(super) struct FaultBacking {
    pub(super) state: Arc<Mutex<State>>,
    pub(super) id: FileId,
    pub(super) epoch: u64,
    pub(super) file: File,
}

impl FaultBacking {
    /// Handles from before a crash or power cut do nothing. (A crash itself is checked by
    /// [`FaultLog`] before the log runs, so that a torn append still reaches the file.)
    fn check(&self, st: &State) -> io::Result<()> {
        if st.epoch != self.epoch {
            return Err(stale_error());
        }
        Ok(())
    }
}

impl LogBacking for FaultBacking {
    fn file(&self) -> &File {
        &self.file
    }

    fn reserve(&self, from: u64, to: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_handle(self.epoch)?;
        // A full disk shows where the real one does: at the reservation, never at a copy
        // into the mapping.
        if let Some((target, left)) = &mut st.space
            && target.is_none_or(|t| t == Target::Wal)
        {
            if to - from > *left {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            *left -= to - from;
        }
        reserve_space(&self.file, from, to)?;
        if let Some(f) = st.files.get_mut(&self.id) {
            f.reserved = f.reserved.max(to);
        }
        Ok(())
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.check(&self.state.lock())?;
        self.file.write_all_at(data, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_handle(self.epoch)?;
        if let Some(f) = st.files.get_mut(&self.id) {
            f.durable_len = f.len;
            f.durable_reserved = f.reserved;
        }
        Ok(())
    }

    fn trim(&self, len: u64) {
        let mut st = self.state.lock();
        // A process that died trims nothing: the reserved zeros stay, as after a real crash.
        if st.crashed || self.check(&st).is_err() {
            return;
        }
        if self.file.set_len(len).is_ok()
            && let Some(f) = st.files.get_mut(&self.id)
        {
            f.reserved = len;
        }
    }
}
