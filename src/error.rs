//! The library's typed error: what failed and where, so a user can act on it.

use std::io;
use std::path::{Path, PathBuf};

/// Every error the engine returns. A missing key is `Ok(None)`, never an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call on a file failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Bytes on disk do not match their checksum or their documented layout.
    /// Corrupted data is never returned as data; this error is returned instead.
    #[error("corruption in {} at offset {offset}: {reason}", path.display())]
    Corruption {
        path: PathBuf,
        offset: u64,
        reason: String,
    },

    /// Another writer holds the directory's lock file.
    #[error("{} is locked by another writer{}", path.display(), holder_text(*holder_pid))]
    Locked {
        path: PathBuf,
        holder_pid: Option<u32>,
    },

    /// A caller-supplied argument or option is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A file was written by a format version this build cannot read.
    #[error("{} has format version {found_version}, this build reads version {supported}", path.display())]
    Unsupported {
        path: PathBuf,
        found_version: u32,
        supported: u32,
    },

    /// A write or sync failed earlier; the engine no longer accepts writes because the
    /// page cache can no longer be trusted to hold what was written. Reopen to recover.
    #[error("writes are disabled after an earlier failure ({0}); reopen the database to recover")]
    WritesStopped(String),

    /// The database was opened as a read-only secondary and cannot write.
    #[error("the database is open read-only{0}")]
    ReadOnly(String),

    /// The database has been closed.
    #[error("the database is closed")]
    Closed,
}

fn holder_text(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid})"),
        None => String::new(),
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corruption(path: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corruption {
            path: path.to_path_buf(),
            offset,
            reason: reason.into(),
        }
    }

    /// True when the error reports damaged bytes on disk.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// True when a file the operation needed has gone (a secondary reader racing a writer
    /// that deleted an obsolete file).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Attaches an operation name and path to `io::Result`s.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|e| Error::io(op, path, e))
    }
}
