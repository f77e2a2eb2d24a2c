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

    /// Another writer holds the directory's lock (`path` is the directory's `LOCK`; the lock
    /// is on the directory itself too, so deleting `LOCK` does not free it).
    #[error("{} is locked by another writer{}", path.display(), holder_text(*holder_pid))]
    Locked {
        path: PathBuf,
        holder_pid: Option<u32>,
    },

    /// The directory's `LOCK` is not a regular file of its own (a symbolic link, a hard link,
    /// a directory, a FIFO): lsmdb refuses to write its PID through it.
    #[error("{} is {found}, not a lock file; lsmdb does not write through it: remove it and retry", path.display())]
    LockNotAFile { path: PathBuf, found: String },

    /// Tables the manifest names cannot be used: missing, unreadable, not the size the
    /// manifest records, or damaged outside their data blocks. Each entry is the
    /// [`Error::Io`] or [`Error::Corruption`] for one table. The open refuses rather than
    /// serve an error for every read that reaches them.
    #[error("{}", unusable_text(dir, tables))]
    TablesUnusable { dir: PathBuf, tables: Vec<Error> },

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

fn unusable_text(dir: &Path, tables: &[Error]) -> String {
    let list: Vec<String> = tables.iter().map(Error::to_string).collect();
    let any_io = tables.iter().any(|e| matches!(e, Error::Io { .. }));
    format!(
        "{n} table{s} the manifest of {dir} names cannot be used: {list}. {fix}",
        n = tables.len(),
        s = if tables.len() == 1 { "" } else { "s" },
        dir = dir.display(),
        list = list.join("; "),
        fix = if any_io {
            "Restore the files (or the access to them) and open again, or run `lsmdb repair` \
             to rebuild without the missing ones (it refuses while a file is unreadable)"
        } else {
            "Run `lsmdb repair` to rebuild from what is intact"
        }
    )
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

    /// True when the error reports damaged bytes on disk (for [`Error::TablesUnusable`]:
    /// in every table it lists).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Corruption { .. } => true,
            Error::TablesUnusable { tables, .. } => tables.iter().all(Error::is_corruption),
            _ => false,
        }
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
