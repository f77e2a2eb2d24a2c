//! A fault-injecting file system for tests (RELIABILITY.md T6-T9), in the manner of
//! LevelDB's and RocksDB's fault-injection environments.
//!
//! # The model
//! Every operation is applied to the real files at once, as a page cache would hold it, so
//! the engine reads back what it wrote. Beside that, [`FaultFileSystem`] keeps what a power
//! cut would leave of each file and directory:
//! - a file's *durable length*: the bytes covered by its last successful sync. The engine
//!   only ever appends, so what survives of a file is a prefix;
//! - a directory's *durable entries*: which name held which file as of the directory's last
//!   sync. A file created, renamed or removed since then is, after a power cut, missing,
//!   back under its old name, or back again (with its durable prefix) respectively.
//!
//! [`FaultFileSystem::power_loss`] rewrites the directories to that image. A failed sync
//! also loses the bytes it should have written: they read as zeros after a power cut even if
//! a later sync succeeds (Linux reports a failed write-back once and marks the pages clean).
//!
//! The WAL is the production log file (`src/fs/log_file.rs`, mapped and reserved ahead),
//! with this model beneath it (`log.rs`): what its own sync reaches is what survives.
//!
//! The fault file system never calls `fsync`: its own model decides what survives, and
//! tests stay fast. Directories themselves are taken as durable once created; the `LOCK` file
//! is the kernel's `flock` and is left alone.
//!
//! # Faults
//! - [`fail_sync`](FaultFileSystem::fail_sync): the n-th next sync of a WAL, table,
//!   manifest or directory fails with `EIO`, once.
//! - [`no_space_after`](FaultFileSystem::no_space_after): appends fail with `ENOSPC` once
//!   a byte budget is spent, after writing the part that fits (a WAL, which reserves its
//!   space ahead, fails at the reservation that does not fit);
//!   [`free_space`](FaultFileSystem::free_space) ends it.
//! - [`crash_at_op`](FaultFileSystem::crash_at_op): the n-th mutating operation (create,
//!   append, sync, truncate, rename, remove) does not happen (an append writes half its
//!   bytes: a torn write), and every operation after it fails, as if the process had died.
//!   Drop the `Db`, then call [`power_loss`](FaultFileSystem::power_loss) or
//!   [`restart`](FaultFileSystem::restart) before reopening.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::filename::{self, FileType};
use crate::fs::{FileSystem, OsFileSystem, RandomAccessFile, WritableFile};

mod log;
mod model;
#[cfg(test)]
mod tests;

use crate::fs::LogOptions;
use crate::fs::log_file::LogFile;
use log::{FaultBacking, FaultLog};
use model::{FileId, State, crash_error};

/// The kinds of file a fault can target, told apart by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// `NNNNNN.wal`
    Wal,
    /// `NNNNNN.sst`
    Table,
    /// `MANIFEST-NNNNNN` and `CURRENT` (with its temporary file).
    Manifest,
    /// A directory sync.
    Directory,
    /// Anything else.
    Other,
}

impl Target {
    /// The kind of `path`, from its file name.
    pub fn of(path: &Path) -> Target {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        match filename::parse(name) {
            Some(FileType::Wal(_)) => Target::Wal,
            Some(FileType::Table(_)) => Target::Table,
            // The engine's only temporary file is CURRENT's.
            Some(FileType::Manifest(_) | FileType::Current | FileType::Temp) => Target::Manifest,
            Some(FileType::Lock) | None => Target::Other,
        }
    }
}
/// A [`FileSystem`] over the real one that can fail syncs, run out of space, crash and lose
/// power. Clone the `Arc` to keep a handle for the test while the `Db` holds the other.
#[derive(Default)]
pub struct FaultFileSystem {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FaultFileSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("FaultFileSystem")
            .field("ops", &st.ops)
            .field("crashed", &st.crashed)
            .finish_non_exhaustive()
    }
}

impl FaultFileSystem {
    pub fn new() -> Arc<FaultFileSystem> {
        Arc::new(FaultFileSystem::default())
    }

    /// Makes the `nth` next sync of `target` files fail with `EIO` (1 = the next one).
    pub fn fail_sync(&self, target: Target, nth: u64) {
        self.state
            .lock()
            .sync_faults
            .insert(target, nth.saturating_sub(1));
    }

    /// Lets only `bytes` more be appended (to `target` files, or to any file if `None`);
    /// the append that crosses the limit writes what fits and fails with `ENOSPC`.
    pub fn no_space_after(&self, target: Option<Target>, bytes: u64) {
        self.state.lock().space = Some((target, bytes));
    }

    /// Ends [`Self::no_space_after`]: space was freed.
    pub fn free_space(&self) {
        self.state.lock().space = None;
    }

    /// Crashes at mutating operation number `n` (counted from 0 since the file system was
    /// made or last restarted; see [`Self::ops`]).
    pub fn crash_at_op(&self, n: u64) {
        self.state.lock().crash_at = Some(n);
    }

    /// Crashes now: every operation from here on fails.
    pub fn crash(&self) {
        self.state.lock().crashed = true;
    }

    /// Mutating operations performed so far.
    pub fn ops(&self) -> u64 {
        self.state.lock().ops
    }

    /// Whether a crash has happened (and no restart since).
    pub fn has_crashed(&self) -> bool {
        self.state.lock().crashed
    }

    /// A process crash without power loss: what was written stays, handles from before stop
    /// working, faults are cleared and operations work again.
    pub fn restart(&self) {
        let mut st = self.state.lock();
        st.epoch += 1;
        st.crashed = false;
        st.crash_at = None;
        st.ops = 0;
        st.sync_faults.clear();
        st.space = None;
    }

    /// A power cut: every byte written since its file's last sync and every directory change
    /// since its directory's last sync is lost. Then the machine comes back ([`Self::restart`]).
    pub fn power_loss(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        st.crashed = true;
        st.power_cut()?;
        drop(st);
        self.restart();
        Ok(())
    }

    fn handle(&self, id: FileId, target: Target, file: File) -> Box<dyn WritableFile> {
        let epoch = self.state.lock().epoch;
        Box::new(FaultWritable {
            state: Arc::clone(&self.state),
            id,
            epoch,
            target,
            file,
        })
    }
}

struct FaultWritable {
    state: Arc<Mutex<State>>,
    id: FileId,
    epoch: u64,
    target: Target,
    file: File,
}

impl WritableFile for FaultWritable {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        st.check_handle(self.epoch)?;
        if st.tick()? {
            // Torn write: the first half reaches the file.
            (&self.file).write_all(&data[..data.len() / 2])?;
            return Err(crash_error());
        }
        let mut allowed = data.len();
        if let Some((target, left)) = &mut st.space
            && target.is_none_or(|t| t == self.target)
        {
            allowed = allowed.min(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= allowed as u64;
        }
        (&self.file).write_all(&data[..allowed])?;
        if let Some(f) = st.files.get_mut(&self.id) {
            f.len += allowed as u64;
        }
        if allowed < data.len() {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut st = self.state.lock();
        st.before_sync(self.epoch, self.id, self.target)?;
        if let Some(f) = st.files.get_mut(&self.id) {
            f.durable_len = f.len;
        }
        Ok(())
    }
}

impl FaultFileSystem {
    /// Creates (or truncates) the real file and its entry in the model.
    fn create_file(&self, path: &Path) -> io::Result<(FileId, File)> {
        let mut st = self.state.lock();
        st.know_parent(path);
        if st.tick()? {
            return Err(crash_error());
        }
        if let Some(old) = st.live.get(path).copied() {
            st.detach(old)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok((st.new_file(path, 0), file))
    }

    /// The production log over `file`, the model beneath it.
    fn log(&self, id: FileId, file: File, len: u64, opts: &LogOptions) -> Box<dyn WritableFile> {
        let epoch = self.state.lock().epoch;
        let backing = FaultBacking {
            state: Arc::clone(&self.state),
            id,
            epoch,
            file,
        };
        Box::new(FaultLog {
            log: LogFile::with_backing(Box::new(backing), len, opts),
            state: Arc::clone(&self.state),
            id,
            epoch,
        })
    }
}

impl FileSystem for FaultFileSystem {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let (id, file) = self.create_file(path)?;
        Ok(self.handle(id, Target::of(path), file))
    }

    fn create_log(&self, path: &Path, opts: &LogOptions) -> io::Result<Box<dyn WritableFile>> {
        let (id, file) = self.create_file(path)?;
        Ok(self.log(id, file, 0, opts))
    }

    fn open_log(
        &self,
        path: &Path,
        len: u64,
        opts: &LogOptions,
    ) -> io::Result<Box<dyn WritableFile>> {
        // As the OS's log does: the cut is made durable before anything is appended.
        self.truncate(path, len)?;
        let id = match self.state.lock().live.get(path) {
            Some(&id) => id,
            None => return Err(io::Error::from(io::ErrorKind::NotFound)),
        };
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(self.log(id, file, len, opts))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let id = {
            let mut st = self.state.lock();
            st.check_alive()?;
            st.know_parent(path);
            match st.live.get(path) {
                Some(&id) => id,
                None => return Err(io::Error::from(io::ErrorKind::NotFound)),
            }
        };
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(self.handle(id, Target::of(path), file))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.state.lock();
        st.know_parent(path);
        if st.tick()? {
            return Err(crash_error());
        }
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(len)?;
        // Truncation syncs the whole file (the real one calls sync_all).
        if let Some(&id) = st.live.get(path)
            && let Some(f) = st.files.get_mut(&id)
        {
            f.len = len;
            f.durable_len = len;
            f.reserved = len;
            f.durable_reserved = len;
            f.lost.retain(|&(start, _)| start < len);
        }
        Ok(())
    }

    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        self.state.lock().check_alive()?;
        OsFileSystem.open_read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.know_parent(from);
        st.know_parent(to);
        if st.tick()? {
            return Err(crash_error());
        }
        if let Some(old) = st.live.get(to).copied() {
            st.detach(old)?;
        }
        std::fs::rename(from, to)?;
        if let Some(id) = st.live.remove(from) {
            st.live.insert(to.to_path_buf(), id);
            if let Some(f) = st.files.get_mut(&id) {
                f.path = Some(to.to_path_buf());
            }
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.know_parent(path);
        if st.tick()? {
            return Err(crash_error());
        }
        if let Some(id) = st.live.get(path).copied() {
            st.detach(id)?;
        }
        std::fs::remove_file(path)?;
        st.live.remove(path);
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut st = self.state.lock();
        st.check_alive()?;
        st.know_dir(dir);
        OsFileSystem.list_dir(dir)
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.state.lock().check_alive()?;
        OsFileSystem.create_dir_all(dir)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        st.know_dir(dir);
        if st.tick()? {
            return Err(crash_error());
        }
        if st.sync_fails(Target::Directory) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let in_dir = |p: &PathBuf| p.parent() == Some(dir);
        st.durable.retain(|p, _| !in_dir(p));
        let entries: Vec<_> = st
            .live
            .iter()
            .filter(|(p, _)| in_dir(p))
            .map(|(p, &id)| (p.clone(), id))
            .collect();
        st.durable.extend(entries);
        // Forget files that no name, durable or live, refers to any more.
        let referenced: HashSet<FileId> = st
            .live
            .values()
            .chain(st.durable.values())
            .copied()
            .collect();
        st.files.retain(|id, _| referenced.contains(id));
        Ok(())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
}
