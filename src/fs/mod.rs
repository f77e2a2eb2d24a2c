//! The file-system seam: every file operation of the engine goes through [`FileSystem`], so
//! tests can swap in `lsmdb::fault::FaultFileSystem` (the `test-util` feature) to fail a sync,
//! fill the disk or cut the power. [`OsFileSystem`] is the real one.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub(crate) mod log_file;

/// A file opened for appending. Methods take `&self` so that one thread can `sync_data`
/// while another appends (the WAL's group commit relies on it).
pub trait WritableFile: Send + Sync {
    /// Appends all of `data` at the end of the file.
    fn append(&self, data: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

/// A file opened for positional reads.
pub trait RandomAccessFile: Send + Sync {
    /// Fills `buf` from `offset`; a short file is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's current length.
    fn len(&self) -> io::Result<u64>;
    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// How a log (the WAL) will be used, so the file system can pick how to write it.
#[derive(Clone, Copy, Debug)]
pub struct LogOptions {
    /// About how large the log grows (the memtable size).
    pub capacity: usize,
    /// Whether every append is followed by a sync (`SyncMode::Always`).
    pub synced_appends: bool,
}

/// The operations the engine performs on its directory.
pub trait FileSystem: Send + Sync + fmt::Debug + 'static {
    /// Creates `path` (truncating it if it exists) for appending.
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing file for appending after its current end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>>;
    /// Creates a log (a WAL): a file that takes many small appends (see [`LogOptions`]).
    /// The OS file system reserves space ahead and may write through a memory mapping
    /// (src/fs/log_file.rs), so bytes past the appended data may read as zeros until the
    /// file is closed. No default: a file system must say how its logs are written (the
    /// fault-injecting one runs the OS's log code over its model of the disk).
    fn create_log(&self, path: &Path, opts: &LogOptions) -> io::Result<Box<dyn WritableFile>>;
    /// Opens an existing log for appending after its first `len` bytes, cutting off (and
    /// making durable the cut of) whatever follows them.
    fn open_log(
        &self,
        path: &Path,
        len: u64,
        opts: &LogOptions,
    ) -> io::Result<Box<dyn WritableFile>>;
    /// Cuts `path` to `len` bytes and makes the new length durable.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Opens `path` for positional reads.
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>>;
    /// Reads the whole of `path`.
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open_read(path)?;
        let len = usize::try_from(file.len()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "file too large"))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// The names of the entries in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `dir` and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Makes the entries of `dir` (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> bool;
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

struct OsWritable(File);

impl WritableFile for OsWritable {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        (&self.0).write_all(data)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

struct OsReadable(File);

impl RandomAccessFile for OsReadable {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl FileSystem for OsFileSystem {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(OsWritable(f)))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let f = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(OsWritable(f)))
    }
    fn create_log(&self, path: &Path, opts: &LogOptions) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(log_file::LogFile::create(path, opts)?))
    }
    fn open_log(
        &self,
        path: &Path,
        len: u64,
        opts: &LogOptions,
    ) -> io::Result<Box<dyn WritableFile>> {
        Ok(Box::new(log_file::LogFile::open(path, len, opts)?))
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        Ok(Arc::new(OsReadable(File::open(path)?)))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}
