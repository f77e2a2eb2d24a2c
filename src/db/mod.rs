//! The database: ties the WAL, memtables, tables, manifest and background work together.
//!
//! Concurrency, in one paragraph: writers serialize on `write` only for the WAL append and
//! the memtable insert; the `fdatasync` happens outside it and is shared by every writer
//! waiting on it (group commit). Readers take no lock: they load the visible sequence
//! number, then the current `SuperVersion` (memtables + version, in `inner.rs`) through an
//! `ArcSwap`. A flush thread turns immutable memtables into L0 tables and a compaction thread merges
//! levels; both log their edits to the manifest under `versions` and publish a new
//! super-version under `sv_lock`. Lock order: `write` -> `sv_lock`, `versions` -> `sv_lock`,
//! `write` -> `sync`.

mod background;
mod checkpoint;
mod compact;
mod flush;
mod inner;
mod iter;
mod open;
mod read;
mod secondary;
mod stats;
mod verify;
mod write;

#[cfg(feature = "cluster")]
pub(crate) use checkpoint::link_or_copy;
pub(crate) use flush::{table_options, write_level0_table};
pub use iter::DbIterator;
pub use read::Snapshot;
pub use stats::{CacheStats, LevelStats, Stats};

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use crate::WriteBatch;
use crate::error::{Error, Result};
use crate::options::Options;
use inner::{BgState, DbInner, Mode, WhyReadOnly, super_version};
/// An open database. Share it between threads by reference or in an `Arc`.
///
/// ```
/// # fn main() -> lsmdb::Result<()> {
/// let dir = tempfile::tempdir().unwrap();
/// let db = lsmdb::Db::open(dir.path(), lsmdb::Options::default())?;
/// db.put(b"user:1", b"Ada")?;
/// assert_eq!(db.get(b"user:1")?, Some(b"Ada".to_vec()));
/// for item in db.range(b"user:", b"user;")? {
///     let (key, value) = item?;
///     println!("{} = {}", String::from_utf8_lossy(&key), String::from_utf8_lossy(&value));
/// }
/// db.close()?;
/// # Ok(())
/// # }
/// ```
pub struct Db {
    inner: Arc<DbInner>,
    threads: Vec<JoinHandle<()>>,
}

impl Db {
    /// Opens (or creates) the database in `dir` for reading and writing, taking the
    /// directory's lock. Fails with [`Error::Locked`] if another writer holds it.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        open::open_writer(dir.as_ref(), opts)
    }

    /// Opens the database in `dir` read-only, beside a writer that may hold the lock, in the
    /// manner of RocksDB's secondary instance: it reads the manifest, the tables it names and
    /// the WALs (up to the last complete record), writes nothing and takes no lock. It sees
    /// the data as of the moment it opened.
    pub fn open_read_only(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        secondary::open_secondary(dir.as_ref(), opts, None)
    }

    /// Opens for writing if it can, and read-only if another process holds the directory's
    /// lock or this process may not write to the directory (a user without write permission,
    /// a read-only mount). [`Db::is_read_only`] tells which, [`Db::read_only_reason`] why.
    pub fn open_or_read_only(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let dir = dir.as_ref();
        // Asked first, so that a user who cannot write never takes (even briefly) the lock a
        // writer starting at that moment needs.
        if let Some(why) = not_writable(dir) {
            return secondary::open_secondary(dir, opts, Some(WhyReadOnly::NoPermission(why)));
        }
        match open::open_writer(dir, opts.clone()) {
            Err(Error::Locked { holder_pid, .. }) => {
                secondary::open_secondary(dir, opts, Some(WhyReadOnly::Locked(holder_pid)))
            }
            Err(e @ Error::Io { .. }) if is_permission_error(&e) => {
                secondary::open_secondary(dir, opts, Some(WhyReadOnly::NoPermission(e.to_string())))
            }
            other => other,
        }
    }

    fn from_inner(inner: Arc<DbInner>) -> Db {
        let mut threads = Vec::new();
        if inner.mode == Mode::ReadWrite {
            let flusher = Arc::clone(&inner);
            threads.push(spawn("lsmdb-flush", move || flush::flush_thread(&flusher)));
            let compactor = Arc::clone(&inner);
            threads.push(spawn("lsmdb-compact", move || {
                compact::compaction_thread(&compactor)
            }));
        }
        Db { inner, threads }
    }

    /// Stores `value` under `key`, replacing any previous value.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.put(key, value);
        self.write(&batch)
    }

    /// Removes `key` (writes a tombstone). Deleting a missing key is not an error.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = WriteBatch::new();
        batch.delete(key);
        self.write(&batch)
    }

    /// Applies every operation of `batch` atomically, with one WAL record and one sync.
    pub fn write(&self, batch: &WriteBatch) -> Result<()> {
        self.inner.write(batch)
    }

    /// The value stored under `key`, or `None`.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        self.inner.get(key.as_ref(), None)
    }

    /// An iterator over every key, in order.
    pub fn iter(&self) -> Result<DbIterator> {
        self.inner.iter(None, None, None)
    }

    /// An iterator over keys in `[start, end)`, in order.
    pub fn range(&self, start: impl AsRef<[u8]>, end: impl AsRef<[u8]>) -> Result<DbIterator> {
        self.inner.iter(
            Some(start.as_ref().to_vec()),
            Some(end.as_ref().to_vec()),
            None,
        )
    }

    /// An iterator over keys at or after `start`, in order.
    pub fn range_from(&self, start: impl AsRef<[u8]>) -> Result<DbIterator> {
        self.inner.iter(Some(start.as_ref().to_vec()), None, None)
    }

    /// An iterator over the keys that start with `prefix`.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Result<DbIterator> {
        let prefix = prefix.as_ref();
        self.inner.iter(
            Some(prefix.to_vec()),
            crate::key::prefix_successor(prefix),
            None,
        )
    }

    /// A consistent point-in-time view: reads through it ignore later writes, and
    /// compaction keeps the versions it needs until it is dropped.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(Arc::clone(&self.inner))
    }

    /// Writes the active memtable to a table and waits until every memtable is flushed.
    pub fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    /// Compacts every table into one sorted run on the deepest level, dropping overwritten
    /// versions and tombstones no snapshot needs, and waits for it.
    pub fn compact(&self) -> Result<()> {
        self.inner.flush()?;
        self.inner.compact_all()
    }

    /// Writes a consistent copy of the database as of this call into `dest`, an ordinary
    /// database directory that [`Db::open`] and [`Db::open_read_only`] take. Tables are
    /// hard-linked (copied where the file system cannot link), so it is fast and takes
    /// little space; writes, flushes and compactions may go on meanwhile. `dest` must not
    /// exist or be empty. Needs the writer: a read-only handle gets [`Error::ReadOnly`].
    pub fn checkpoint(&self, dest: impl AsRef<Path>) -> Result<()> {
        self.inner.checkpoint(dest.as_ref())
    }

    /// Makes every write so far durable (useful under `SyncMode::None`).
    pub fn sync(&self) -> Result<()> {
        self.inner.sync_all()
    }

    /// Figures about the tree, the cache and the work done so far.
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// Whether this handle is a read-only secondary (see [`Db::open_read_only`]).
    pub fn is_read_only(&self) -> bool {
        self.inner.mode != Mode::ReadWrite
    }

    /// The PID of the process holding the write lock, for a read-only handle opened by
    /// [`Db::open_or_read_only`] when it could be read.
    pub fn lock_holder(&self) -> Option<u32> {
        match &self.inner.mode {
            Mode::Secondary {
                why: Some(WhyReadOnly::Locked(pid)),
            } => *pid,
            _ => None,
        }
    }

    /// Why [`Db::open_or_read_only`] opened this handle read-only: another process holds the
    /// write lock, or this one may not write to the directory.
    pub fn read_only_reason(&self) -> Option<String> {
        match &self.inner.mode {
            Mode::Secondary { why } => why.as_ref().map(WhyReadOnly::text),
            Mode::ReadWrite => None,
        }
    }

    /// Verifies every checksum of every live file, returning what was checked.
    pub fn check(&self) -> Result<CheckReport> {
        self.inner.check()
    }

    /// Stops background work, syncs the WAL and releases the lock, reporting any error.
    /// Dropping a `Db` does the same but cannot report errors.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        self.inner.shutting_down.store(true, Ordering::SeqCst);
        {
            let _bg = self.inner.bg.lock();
            self.inner.bg_cv.notify_all();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        let result = self.inner.close_wal();
        *self.inner.lock.lock() = None;
        result
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.dir)
            .field("mode", &self.inner.mode)
            .finish_non_exhaustive()
    }
}

/// What [`Db::check`] verified.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub tables: u64,
    pub table_entries: u64,
    pub wal_files: u64,
    pub wal_records: u64,
    pub bytes: u64,
}

/// Why this process may not write to `dir`, if it may not: the directory exists and the
/// OS denies write access to it (permissions, a read-only mount).
fn not_writable(dir: &Path) -> Option<String> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path; faccessat has no other preconditions.
    let rc =
        unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), libc::W_OK, libc::AT_EACCESS) };
    if rc == 0 {
        return None;
    }
    let e = std::io::Error::last_os_error();
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::EPERM | libc::EROFS)
    )
    .then(|| format!("this user cannot write to {}: {e}", dir.display()))
}

fn is_permission_error(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. }
        if matches!(source.raw_os_error(), Some(libc::EACCES | libc::EPERM | libc::EROFS)))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    match std::thread::Builder::new().name(name.to_string()).spawn(f) {
        Ok(h) => h,
        // Without its background threads the engine cannot flush; failing to start one
        // means the process is out of resources, which nothing here can recover from.
        Err(e) => panic!("cannot start thread {name}: {e}"),
    }
}
