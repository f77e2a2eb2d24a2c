//! What a power cut would leave: each file's durable prefix and each directory's durable
//! entries (see the module documentation of `fault`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Target;
use crate::filename::{self, FileType};

pub(super) type FileId = u64;

/// One file (an inode): where it lives now and what of it would survive a power cut.
#[derive(Default)]
pub(super) struct FileState {
    /// Its current name; `None` once removed or renamed over.
    pub(super) path: Option<PathBuf>,
    pub(super) len: u64,
    pub(super) durable_len: u64,
    /// The durable prefix, read into memory when the file lost its name while a durable
    /// directory entry still names it.
    pub(super) saved: Option<Vec<u8>>,
    /// Byte ranges a failed sync lost.
    pub(super) lost: Vec<(u64, u64)>,
    /// A log's size as reserved ahead of its appended bytes (zeros past `len`), now and as
    /// of its last sync: a power cut leaves the file that long, ending in zeros.
    pub(super) reserved: u64,
    pub(super) durable_reserved: u64,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) files: HashMap<FileId, FileState>,
    pub(super) next_id: FileId,
    pub(super) live: BTreeMap<PathBuf, FileId>,
    pub(super) durable: BTreeMap<PathBuf, FileId>,
    pub(super) known_dirs: HashSet<PathBuf>,
    /// Bumped by every power cut or restart: handles from before stop working.
    pub(super) epoch: u64,
    pub(super) crashed: bool,
    pub(super) ops: u64,
    pub(super) crash_at: Option<u64>,
    /// Per target, how many more syncs succeed before one fails.
    pub(super) sync_faults: HashMap<Target, u64>,
    /// Bytes that may still be appended (to files of the given target, or any), if limited.
    pub(super) space: Option<(Option<Target>, u64)>,
}

pub(super) fn crash_error() -> io::Error {
    io::Error::other("simulated crash: the process is dead")
}

pub(super) fn stale_error() -> io::Error {
    io::Error::other("file handle from before a simulated crash")
}

impl State {
    pub(super) fn check_alive(&self) -> io::Result<()> {
        if self.crashed {
            return Err(crash_error());
        }
        Ok(())
    }

    /// Whether a handle opened in `epoch` may act: the process is alive, and no crash or
    /// power cut came since the handle was opened.
    pub(super) fn check_handle(&self, epoch: u64) -> io::Result<()> {
        self.check_alive()?;
        if self.epoch != epoch {
            return Err(stale_error());
        }
        Ok(())
    }

    /// The faults a sync of file `id` (of kind `target`) through a handle from `epoch` may
    /// meet before it makes anything durable: a dead handle, the chosen crash, or a failed
    /// sync, which loses the bytes it should have written (they read as zeros after a power
    /// cut, even if a later sync succeeds).
    pub(super) fn before_sync(&mut self, epoch: u64, id: FileId, target: Target) -> io::Result<()> {
        self.check_handle(epoch)?;
        if self.tick()? {
            return Err(crash_error());
        }
        if self.sync_fails(target) {
            if let Some(f) = self.files.get_mut(&id)
                && f.len > f.durable_len
            {
                f.lost.push((f.durable_len, f.len));
            }
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        Ok(())
    }

    /// Counts a mutating operation; true when it is the one chosen to crash.
    pub(super) fn tick(&mut self) -> io::Result<bool> {
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
    pub(super) fn sync_fails(&mut self, target: Target) -> bool {
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
    pub(super) fn know_dir(&mut self, dir: &Path) {
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
                || entry.file_name().to_str().and_then(filename::parse) == Some(FileType::Lock)
            {
                continue;
            }
            let len = entry.metadata().map_or(0, |m| m.len());
            let id = self.new_file(&path, len);
            self.durable.insert(path, id);
        }
    }

    pub(super) fn know_parent(&mut self, path: &Path) {
        if let Some(dir) = path.parent() {
            self.know_dir(dir);
        }
    }

    pub(super) fn new_file(&mut self, path: &Path, len: u64) -> FileId {
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
    pub(super) fn detach(&mut self, id: FileId) -> io::Result<()> {
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
    pub(super) fn durable_bytes(&self, id: FileId) -> io::Result<Vec<u8>> {
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

impl State {
    /// Rewrites every known directory to its durable image: each durable name gets back
    /// the durable bytes of the file it named, every other file goes. The image is then
    /// the new starting point, all of it durable.
    pub(super) fn power_cut(&mut self) -> io::Result<()> {
        // Read every durable image first: a rename may have put one file's bytes where
        // another's must go back.
        let mut restore = Vec::new();
        for (path, &id) in &self.durable {
            let f = &self.files[&id];
            let size = f.durable_reserved.max(f.durable_len);
            if self.live.get(path) == Some(&id) && f.saved.is_none() {
                // Same file, same name: cut it back in place.
                restore.push((path.clone(), None, f.durable_len, f.lost.clone(), size));
            } else {
                let bytes = self.durable_bytes(id)?;
                restore.push((path.clone(), Some(bytes), 0, Vec::new(), size));
            }
        }
        for (path, &id) in &self.live {
            if self.durable.get(path) != Some(&id) {
                std::fs::remove_file(path)?;
            }
        }
        for (path, bytes, durable_len, lost, size) in restore {
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
            // A log's reserved zeros survive as its size did (fdatasync writes back a size).
            let file = OpenOptions::new().write(true).open(&path)?;
            if file.metadata()?.len() < size {
                file.set_len(size)?;
            }
        }
        // The surviving image is the new starting point, all of it durable.
        let durable = std::mem::take(&mut self.durable);
        self.files.clear();
        self.live.clear();
        for path in durable.keys() {
            let len = std::fs::metadata(path)?.len();
            let id = self.new_file(path, len);
            self.durable.insert(path.clone(), id);
        }
        Ok(())
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
