//! Appends write batches to the live WAL, one record each (docs/FORMAT.md, "WAL records").
//! This is on every write's path: a batch is encoded once, straight into a reused buffer
//! behind the space its record header takes, framed in place and appended (an append to a
//! mapped log is a `memcpy`, src/fs/log_file.rs).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::WAL_KIND;
use crate::batch::WriteBatch;
use crate::error::Result;
use crate::filename;
use crate::fs::{FileSystem, LogOptions, WritableFile};
use crate::key::SeqNum;
use crate::record::{self, RECORD_HEADER_LEN};

/// The live WAL as the sync path sees it: the file to `fdatasync` and how much has been
/// appended to it, so a sync knows what it covers. Shared between the writer, which
/// appends under the write mutex, and whichever writer runs the group commit's sync.
pub(crate) struct SyncHandle {
    pub number: u64,
    pub file: Arc<dyn WritableFile>,
    pub path: PathBuf,
    /// Bytes appended so far; stored after each append.
    appended: AtomicU64,
}

impl SyncHandle {
    pub(crate) fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }
}

/// Appends records to the live WAL.
pub(crate) struct Writer {
    log: record::Writer,
    handle: Arc<SyncHandle>,
    /// Reused buffer for the framed record.
    scratch: Vec<u8>,
}

impl Writer {
    /// Creates WAL `number` with its header. Nothing is synced: the caller syncs it and
    /// the directory before writes go to it.
    pub(crate) fn create(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        opts: &LogOptions,
    ) -> Result<Writer> {
        let path = filename::wal_path(dir, number);
        let log = record::Writer::create_log(fs, &path, WAL_KIND, opts)?;
        Ok(Writer::new(number, log))
    }

    /// Reopens WAL `number` to append after its intact prefix of `valid_len` bytes (what
    /// replay found), cutting off whatever follows.
    pub(crate) fn reopen(
        fs: &dyn FileSystem,
        dir: &Path,
        number: u64,
        valid_len: u64,
        opts: &LogOptions,
    ) -> Result<Writer> {
        let path = filename::wal_path(dir, number);
        let log = record::Writer::reopen_log(fs, &path, valid_len, opts)?;
        Ok(Writer::new(number, log))
    }

    fn new(number: u64, log: record::Writer) -> Writer {
        let handle = Arc::new(SyncHandle {
            number,
            file: log.file(),
            path: log.path().to_path_buf(),
            appended: AtomicU64::new(log.len()),
        });
        Writer {
            log,
            handle,
            scratch: Vec::new(),
        }
    }

    /// Appends `batch` as one record, its operations numbered from `first_seq`, and
    /// returns the record's size. After an error part of the record may be in the file,
    /// so nothing more may be appended.
    pub(crate) fn append(&mut self, batch: &WriteBatch, first_seq: SeqNum) -> Result<usize> {
        // Frame the record in place: header space first, then the payload.
        self.scratch.clear();
        self.scratch.resize(RECORD_HEADER_LEN, 0);
        batch.encode_payload(first_seq, &mut self.scratch);
        record::frame_in_place(&mut self.scratch);
        self.log.append_encoded(&self.scratch)?;
        self.handle
            .appended
            .store(self.log.len(), Ordering::Release);
        Ok(self.scratch.len())
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.log.sync()
    }

    pub(crate) fn number(&self) -> u64 {
        self.handle.number
    }

    /// Bytes in the WAL so far, its header included.
    pub(crate) fn len(&self) -> u64 {
        self.log.len()
    }

    /// What the sync path needs to make this WAL durable.
    pub(crate) fn sync_handle(&self) -> Arc<SyncHandle> {
        Arc::clone(&self.handle)
    }
}
