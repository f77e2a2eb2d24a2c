//! Appends framed records to a record file
//! (docs/FORMAT.md, "Record files: the WAL and the manifest").

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{FileKind, encode_header, encode_record};
use crate::error::{IoContext, Result};
use crate::fs::{FileSystem, LogOptions, WritableFile};

pub(crate) struct Writer {
    file: Arc<dyn WritableFile>,
    path: PathBuf,
    len: u64,
}

impl Writer {
    /// Creates `path` with its header. Nothing is synced: the caller syncs the file and its
    /// directory before relying on it.
    pub(crate) fn create(fs: &dyn FileSystem, path: &Path, kind: FileKind) -> Result<Writer> {
        let file = fs.create(path).ctx("create", path)?;
        Writer::with_header(file.into(), path, kind)
    }

    /// Creates a log (the WAL) with its header: a file for many small appends, which the
    /// file system may write through a memory mapping.
    pub(crate) fn create_log(
        fs: &dyn FileSystem,
        path: &Path,
        kind: FileKind,
        opts: &LogOptions,
    ) -> Result<Writer> {
        let file = fs.create_log(path, opts).ctx("create", path)?;
        Writer::with_header(file.into(), path, kind)
    }

    /// Starts a new record file: its header, then records.
    fn with_header(file: Arc<dyn WritableFile>, path: &Path, kind: FileKind) -> Result<Writer> {
        let header = encode_header(kind);
        file.append(&header).ctx("write header of", path)?;
        Ok(Writer {
            file,
            path: path.to_path_buf(),
            len: header.len() as u64,
        })
    }

    /// Reopens an existing log for appending after its intact prefix of `valid_len` bytes,
    /// cutting off a torn tail first so that new records never follow damaged bytes.
    pub(crate) fn reopen_log(
        fs: &dyn FileSystem,
        path: &Path,
        valid_len: u64,
        opts: &LogOptions,
    ) -> Result<Writer> {
        let file: Arc<dyn WritableFile> = fs
            .open_log(path, valid_len, opts)
            .ctx("reopen for append", path)?
            .into();
        Ok(Writer {
            file,
            path: path.to_path_buf(),
            len: valid_len,
        })
    }

    /// Appends one record.
    pub(crate) fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        let mut buf = Vec::with_capacity(payload.len() + super::RECORD_HEADER_LEN);
        encode_record(&mut buf, payload);
        self.append_encoded(&buf)
    }

    /// Appends bytes already framed by [`encode_record`] (a group of records in one write).
    pub(crate) fn append_encoded(&mut self, framed: &[u8]) -> Result<()> {
        self.file.append(framed).ctx("append to", &self.path)?;
        self.len += framed.len() as u64;
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().ctx("sync", &self.path)
    }

    /// A handle that can sync the file while another thread appends.
    pub(crate) fn file(&self) -> Arc<dyn WritableFile> {
        Arc::clone(&self.file)
    }

    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
