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
//! The fault file system never calls `fsync`: its own model decides what survives, and
//! tests stay fast. Directories themselves are taken as durable once created; the `LOCK` file
//! is the kernel's `flock` and is left alone.
//!
//! # Faults
//! - [`fail_sync`](FaultFileSystem::fail_sync): the n-th next sync of a WAL, table,
//!   manifest or directory fails with `EIO`, once.
//! - [`no_space_after`](FaultFileSystem::no_space_after): appends fail with `ENOSPC` once
//!   a byte budget is spent, after writing the part that fits;
//!   [`free_space`](FaultFileSystem::free_space) ends it.
//! - [`crash_at_op`](FaultFileSystem::crash_at_op): the n-th mutating operation (create,
//!   append, sync, truncate, rename, remove) does not happen (an append writes half its
//!   bytes: a torn write), and every operation after it fails, as if the process had died.
//!   Drop the `Db`, then call [`power_loss`](FaultFileSystem::power_loss) or
//!   [`restart`](FaultFileSystem::restart) before reopening.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::fs::{FileSystem, OsFileSystem, RandomAccessFile, WritableFile};

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
        if name.ends_with(".wal") {
            Target::Wal
        } else if name.ends_with(".sst") {
            Target::Table
        } else if name.starts_with("MANIFEST-") || name.starts_with("CURRENT") {
            Target::Manifest
        } else {
            Target::Other
        }
    }
}

type FileId = u64;

/// One file (an inode): where it lives now and what of it would survive a power cut.
#[derive(Default)]
struct FileState {
    /// Its current name; `None` once removed or renamed over.
    path: Option<PathBuf>,
    len: u64,
    durable_len: u64,
    /// The durable prefix, read into memory when the file lost its name while a durable
    /// directory entry still names it.
    saved: Option<Vec<u8>>,
    /// Byte ranges a failed sync lost.
    lost: Vec<(u64, u64)>,
}

#[derive(Default)]
struct State {
    files: HashMap<FileId, FileState>,
    next_id: FileId,
    live: BTreeMap<PathBuf, FileId>,
    durable: BTreeMap<PathBuf, FileId>,
    known_dirs: HashSet<PathBuf>,
    /// Bumped by every power cut or restart: handles from before stop working.
    epoch: u64,
    crashed: bool,
    ops: u64,
    crash_at: Option<u64>,
    /// Per target, how many more syncs succeed before one fails.
    sync_faults: HashMap<Target, u64>,
    /// Bytes that may still be appended (to files of the given target, or any), if limited.
    space: Option<(Option<Target>, u64)>,
}

fn crash_error() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

fn stale_error() -> io::Error {
    io::Error::other("file handle from before a simulated crash")
}

impl State {
    fn check_alive(&self) -> io::Result<()> {
        if self.crashed {
            return Err(crash_error());
        }
        Ok(())
    }

    /// Counts a mutating operation; true when it is the one chosen to crash.
    fn tick(&mut self) -> io::Result<bool> {
        self.check_alive()?;
        let n = self.ops;
        self.ops += 1;
        if self.crash_at == Some(n) {
            self.crashed = true;
            return Ok(true);
        }
        Ok(false)
    }

    /// Whether this sync is the one chosen to fail.
    fn sync_fails(&mut self, target: Target) -> bool {
        match self.sync_faults.get_mut(&target) {
            Some(0) => {
                self.sync_faults.remove(&target);
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }

    /// Registers the files of `dir` as durable the first time the model meets it.
    fn know_dir(&mut self, dir: &Path) {
        if self.known_dirs.contains(dir) {
            return;
        }
        self.known_dirs.insert(dir.to_path_buf());
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if !is_file
                || path
                    .file_name()
                    .is_some_and(|n| n == crate::lock::LOCK_FILE)
            {
                continue;
            }
            let len = entry.metadata().map_or(0, |m| m.len());
            let id = self.new_file(&path, len);
            self.durable.insert(path, id);
        }
    }

    fn know_parent(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.know_dir(dir);
        }
    }

    fn new_file(&mut self, path: &Path, len: u64) -> FileId {
        let id = self.next_id;
        self.next_id += 1;
        self.files.insert(
            id,
            FileState {
                path: Some(path.to_path_buf()),
                len,
                durable_len: len,
                ..FileState::default()
            },
        );
        self.live.insert(path.to_path_buf(), id);
        id
    }

    /// The file at `path` is about to lose its name: keep its durable prefix in memory if
    /// a durable directory entry still names it.
    fn detach(&mut self, id: FileId) -> io::Result<()> {
        let durably_named = self.durable.values().any(|&d| d == id);
        let Some(f) = self.files.get_mut(&id) else {
            return Ok(());
        };
        if durably_named
            && f.saved.is_none()
            && let Some(path) = &f.path
        {
            f.saved = Some(read_prefix(path, f.durable_len)?);
        }
        f.path = None;
        Ok(())
    }

    /// The bytes a power cut leaves of file `id`.
    fn durable_bytes(&self, id: FileId) -> io::Result<Vec<u8>> {
        let Some(f) = self.files.get(&id) else {
            return Ok(Vec::new());
        };
        let mut data = match (&f.saved, &f.path) {
            (Some(saved), _) => saved.clone(),
            (None, Some(path)) => read_prefix(path, f.durable_len)?,
            (None, None) => Vec::new(),
        };
        zero_lost(&mut data, &f.lost);
        Ok(data)
    }
}

fn read_prefix(path: &Path, len: u64) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    File::open(path)?.take(len).read_to_end(&mut data)?;
    Ok(data)
}

fn zero_lost(data: &mut [u8], lost: &[(u64, u64)]) {
    for &(start, end) in lost {
        let end = (end as usize).min(data.len());
        let start = (start as usize).min(end);
        data[start..end].fill(0);
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
        // Read every durable image first: a rename may have put one file's bytes where
        // another's must go back.
        let mut restore = Vec::new();
        for (path, &id) in &st.durable {
            let f = &st.files[&id];
            if st.live.get(path) == Some(&id) && f.saved.is_none() {
                // Same file, same name: cut it back in place.
                restore.push((path.clone(), None, f.durable_len, f.lost.clone()));
            } else {
                restore.push((path.clone(), Some(st.durable_bytes(id)?), 0, Vec::new()));
            }
        }
        for (path, &id) in &st.live {
            if st.durable.get(path) != Some(&id) {
                std::fs::remove_file(path)?;
            }
        }
        for (path, bytes, durable_len, lost) in restore {
            match bytes {
                Some(bytes) => std::fs::write(&path, bytes)?,
                None => {
                    let file = OpenOptions::new().read(true).write(true).open(&path)?;
                    file.set_len(durable_len)?;
                    for (start, end) in lost {
                        let end = end.min(durable_len);
                        if start < end {
                            use std::os::unix::fs::FileExt;
                            file.write_all_at(&vec![0u8; (end - start) as usize], start)?;
                        }
                    }
                }
            }
        }
        // The surviving image is the new starting point, all of it durable.
        let durable = std::mem::take(&mut st.durable);
        st.files.clear();
        st.live.clear();
        for path in durable.keys() {
            let len = std::fs::metadata(path)?.len();
            let id = st.new_file(path, len);
            st.durable.insert(path.clone(), id);
        }
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

impl FaultWritable {
    fn check(&self, st: &State) -> io::Result<()> {
        st.check_alive()?;
        if st.epoch != self.epoch {
            return Err(stale_error());
        }
        Ok(())
    }
}

impl WritableFile for FaultWritable {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        self.check(&st)?;
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
        self.check(&st)?;
        if st.tick()? {
            return Err(crash_error());
        }
        let fails = st.sync_fails(self.target);
        if let Some(f) = st.files.get_mut(&self.id) {
            if fails {
                if f.len > f.durable_len {
                    f.lost.push((f.durable_len, f.len));
                }
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            f.durable_len = f.len;
        }
        Ok(())
    }
}

impl FileSystem for FaultFileSystem {
    fn create(&self, path: &Path) -> io::Result<Box<dyn WritableFile>> {
        let created = {
            let mut st = self.state.lock();
            st.know_parent(path);
            if st.tick()? {
                return Err(crash_error());
            }
            if let Some(old) = st.live.get(path).copied() {
                st.detach(old)?;
            }
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)?;
            (st.new_file(path, 0), file)
        };
        let (id, file) = created;
        Ok(self.handle(id, Target::of(path), file))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(fs: &FaultFileSystem, path: &Path, data: &[u8], sync: bool) {
        let f = fs.create(path).unwrap();
        f.append(data).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
    }

    #[test]
    fn power_loss_keeps_synced_bytes_and_synced_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fs = FaultFileSystem::new();
        write(&fs, &d.join("a.wal"), b"synced", true);
        write(&fs, &d.join("b.sst"), b"unsynced", false);
        fs.sync_dir(d).unwrap();
        let a = fs.open_append(&d.join("a.wal")).unwrap();
        a.append(b" and more").unwrap();
        write(&fs, &d.join("c.sst"), b"synced data, unsynced entry", true);
        fs.remove_file(&d.join("b.sst")).unwrap();
        fs.power_loss().unwrap();
        assert_eq!(std::fs::read(d.join("a.wal")).unwrap(), b"synced");
        assert_eq!(std::fs::read(d.join("b.sst")).unwrap(), b"");
        assert!(!d.join("c.sst").exists());
        // The old handle is dead.
        assert!(a.append(b"x").is_err());
    }

    #[test]
    fn an_unsynced_rename_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fs = FaultFileSystem::new();
        write(&fs, &d.join("CURRENT"), b"old\n", true);
        write(&fs, &d.join("CURRENT.tmp"), b"new\n", true);
        fs.sync_dir(d).unwrap();
        fs.rename(&d.join("CURRENT.tmp"), &d.join("CURRENT"))
            .unwrap();
        assert_eq!(std::fs::read(d.join("CURRENT")).unwrap(), b"new\n");
        fs.power_loss().unwrap();
        assert_eq!(std::fs::read(d.join("CURRENT")).unwrap(), b"old\n");
        assert_eq!(std::fs::read(d.join("CURRENT.tmp")).unwrap(), b"new\n");
        // Once the directory is synced the rename holds.
        fs.rename(&d.join("CURRENT.tmp"), &d.join("CURRENT"))
            .unwrap();
        fs.sync_dir(d).unwrap();
        fs.power_loss().unwrap();
        assert_eq!(std::fs::read(d.join("CURRENT")).unwrap(), b"new\n");
        assert!(!d.join("CURRENT.tmp").exists());
    }

    #[test]
    fn a_failed_sync_loses_its_bytes_even_after_a_later_sync() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let fs = FaultFileSystem::new();
        let f = fs.create(&d.join("1.wal")).unwrap();
        fs.sync_dir(d).unwrap();
        f.append(b"aaaa").unwrap();
        f.sync_data().unwrap();
        f.append(b"bbbb").unwrap();
        fs.fail_sync(Target::Table, 1);
        fs.fail_sync(Target::Wal, 1);
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
        f.append(b"cccc").unwrap();
        f.sync_data().unwrap();
        fs.power_loss().unwrap();
        assert_eq!(std::fs::read(d.join("1.wal")).unwrap(), b"aaaa\0\0\0\0cccc");
    }

    #[test]
    fn a_full_disk_writes_what_fits_then_works_again() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFileSystem::new();
        let path = dir.path().join("1.sst");
        let f = fs.create(&path).unwrap();
        fs.no_space_after(Some(Target::Table), 3);
        let err = f.append(b"hello").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read(&path).unwrap(), b"hel");
        fs.free_space();
        f.append(b"lo").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
    }

    #[test]
    fn a_crash_tears_the_write_and_stops_everything_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFileSystem::new();
        let path = dir.path().join("1.wal");
        let f = fs.create(&path).unwrap();
        assert_eq!(fs.ops(), 1);
        fs.crash_at_op(1);
        assert!(f.append(b"abcdef").is_err());
        assert!(fs.has_crashed());
        assert!(f.sync_data().is_err());
        assert!(fs.list_dir(dir.path()).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        fs.restart();
        assert!(f.append(b"x").is_err(), "handles die with the process");
        fs.open_append(&path).unwrap().append(b"x").unwrap();
    }
}
