//! The writer's lock on a database directory, held for as long as the database is open.
//!
//! Two `flock`s, both exclusive and non-blocking:
//! - on the **directory itself** (opened `O_RDONLY | O_DIRECTORY`). This is the lock that
//!   counts: a directory cannot be unlinked from under its holder while it holds files, so an
//!   operator who deletes a "stale" `LOCK` does not let a second writer in beside the first
//!   (both would append to the same WAL at their own offsets, and acknowledged writes vanish);
//! - on `DIR/LOCK`, which holds the holder's PID (for the refusal message) and is the lock older
//!   lsmdb binaries take, so an old and a new binary still exclude each other.
//!
//! `LOCK` is opened with `O_NOFOLLOW` and must be a regular file with one link: a symbolic
//! link, a hard link, a directory or a FIFO in its place is refused, never written through
//! (the PID would overwrite whatever it points at). The kernel releases a `flock` when its
//! holder dies, even by SIGKILL, so a crash never leaves a stale lock behind.
//!
//! A file system that cannot `flock` a directory (NFS emulates `flock` with byte-range locks,
//! which need a descriptor open for writing) falls back to `LOCK` alone, as older lsmdb did.
//!
//! A `flock` belongs to the open file, not to the process: a child forked by any thread of
//! this process holds copies of the lock's descriptors until it calls `exec` (which closes
//! them, as std opens every file close-on-exec). A database closed and reopened at that
//! moment would find its own old lock still held. So when the kernel names this process as
//! the holder of a lock that no open database of this process holds (`HELD`), the lock is
//! tried again for up to [`INHERITED_LOCK_WAIT`] before the refusal; a lock that another
//! open database of this process holds is refused at once, as any other holder's is.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, IoContext, Result};
use crate::filename;

/// How long a lock this process's own forked children may still hold copies of is waited
/// for: a child holds them only from its fork to its exec.
pub(crate) const INHERITED_LOCK_WAIT: Duration = Duration::from_secs(2);

/// The directories (device, inode) whose lock an open database of this process holds.
static HELD: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// `None` where the file system cannot lock a directory.
    _dir: Option<File>,
    _file: File,
    /// The directory's (device, inode), registered in `HELD` while this lock lives.
    id: (u64, u64),
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = held.iter().position(|id| *id == self.id) {
            held.swap_remove(at);
        }
    }
}

/// `file.try_lock()`, tried again for up to [`INHERITED_LOCK_WAIT`] while the lock's holder
/// is this very process but no open database of it (`dir_id` not in `HELD`): then the holder
/// is a copy of a descriptor closed here, in a child between its fork and its exec.
fn try_lock_past_inherited(
    file: &File,
    dir_id: (u64, u64),
    holder: impl Fn() -> Option<u32>,
) -> std::result::Result<(), TryLockError> {
    let give_up = Instant::now() + INHERITED_LOCK_WAIT;
    let mut pause = Duration::from_millis(1);
    let mut unlisted = 0;
    loop {
        let refused = match file.try_lock() {
            Err(TryLockError::WouldBlock) => TryLockError::WouldBlock,
            other => return other,
        };
        if Instant::now() >= give_up {
            return Err(refused);
        }
        match holder() {
            // Released between the attempt and the look (the child's exec came): try again
            // at once. A few times only, for a system without /proc/locks.
            None if unlisted < UNLISTED_RETRIES => unlisted += 1,
            Some(pid)
                if pid == std::process::id()
                    && !HELD
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .contains(&dir_id) =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            _ => return Err(refused),
        }
    }
}

/// How often a refused lock whose holder `/proc/locks` does not list is tried again.
const UNLISTED_RETRIES: u32 = 3;

impl DirLock {
    /// Takes the lock at once or fails with [`Error::Locked`]; it never waits.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = filename::lock_path(dir);
        let dir_file = File::open(dir).ctx("open directory", dir)?;
        let meta = dir_file.metadata().ctx("stat directory", dir)?;
        let id = (meta.dev(), meta.ino());
        let dir_lock = match try_lock_past_inherited(&dir_file, id, || flock_holder(id.0, id.1)) {
            Ok(()) => Some(dir_file),
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    holder_pid: holder_of(dir, &dir_file),
                    path,
                });
            }
            Err(TryLockError::Error(e)) if cannot_lock_directories(&e) => None,
            Err(TryLockError::Error(e)) => return Err(Error::io("lock directory", dir, e)),
        };
        let mut file = open_lock_file(&path)?;
        let lock_file_id = file
            .metadata()
            .map(|m| (m.dev(), m.ino()))
            .ctx("stat lock file", &path)?;
        match try_lock_past_inherited(&file, id, || flock_holder(lock_file_id.0, lock_file_id.1)) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    holder_pid: read_pid(&mut file),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        file.set_len(0).ctx("truncate lock file", &path)?;
        file.seek(SeekFrom::Start(0)).ctx("seek lock file", &path)?;
        writeln!(file, "{}", std::process::id()).ctx("write lock file", &path)?;
        HELD.lock().unwrap_or_else(|e| e.into_inner()).push(id);
        Ok(DirLock {
            _dir: dir_lock,
            _file: file,
            id,
        })
    }
}

/// Errors that mean "this file system cannot `flock` a directory", not "someone holds it".
fn cannot_lock_directories(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADF | libc::ENOLCK | libc::EOPNOTSUPP | libc::EINVAL)
    )
}

/// Opens (creating it if missing) `LOCK` without following a link, and refuses anything
/// but a regular file with one link. `O_NONBLOCK` keeps a FIFO from hanging the open.
fn open_lock_file(path: &Path) -> Result<File> {
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path);
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            return Err(match std::fs::symlink_metadata(path) {
                Ok(meta) if !meta.file_type().is_file() => not_a_lock_file(path, &meta),
                _ => Error::io("open lock file", path, e),
            });
        }
    };
    let meta = file.metadata().ctx("stat lock file", path)?;
    if !meta.file_type().is_file() {
        return Err(not_a_lock_file(path, &meta));
    }
    if meta.nlink() > 1 {
        return Err(Error::LockNotAFile {
            path: path.to_path_buf(),
            found: format!("a file with {} hard links", meta.nlink()),
        });
    }
    Ok(file)
}

fn not_a_lock_file(path: &Path, meta: &std::fs::Metadata) -> Error {
    let t = meta.file_type();
    let found = if t.is_symlink() {
        match std::fs::read_link(path) {
            Ok(target) => format!("a symbolic link to {}", target.display()),
            Err(_) => "a symbolic link".to_string(),
        }
    } else if t.is_dir() {
        "a directory".to_string()
    } else if t.is_fifo() {
        "a FIFO".to_string()
    } else if t.is_socket() {
        "a socket".to_string()
    } else {
        "a device".to_string()
    };
    Error::LockNotAFile {
        path: path.to_path_buf(),
        found,
    }
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The PID of the process holding `dir`'s lock: the kernel's record in `/proc/locks` (right
/// even after someone deleted `LOCK`), else the PID written in `LOCK`.
fn holder_of(dir: &Path, dir_file: &File) -> Option<u32> {
    let from_kernel = dir_file
        .metadata()
        .ok()
        .and_then(|m| flock_holder(m.dev(), m.ino()));
    from_kernel.or_else(|| {
        let path = filename::lock_path(dir);
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        file.metadata().ok()?.file_type().is_file().then_some(())?;
        read_pid(&mut file)
    })
}

/// The PID of the process that holds `dir`'s write lock right now, if any (from
/// `/proc/locks`: `None` where that cannot be read). Takes no lock itself, so it never keeps
/// a writer from opening.
pub(crate) fn holder(dir: &Path) -> Option<u32> {
    let meta = std::fs::metadata(dir).ok()?;
    flock_holder(meta.dev(), meta.ino()).or_else(|| {
        // A writer of an older lsmdb locks only LOCK.
        let lock = std::fs::symlink_metadata(filename::lock_path(dir)).ok()?;
        lock.file_type()
            .is_file()
            .then(|| flock_holder(lock.dev(), lock.ino()))?
    })
}

/// The PID holding a `flock` on the inode `(dev, ino)`, from `/proc/locks`.
fn flock_holder(dev: u64, ino: u64) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/locks").ok()?;
    parse_flock_holder(&text, libc::major(dev), libc::minor(dev), ino)
}

/// Reads `/proc/locks` lines such as `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF`
/// (device numbers in hex, the inode in decimal); lines with `->` are waiters, not holders.
fn parse_flock_holder(text: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    text.lines()
        .filter(|line| !line.contains("->"))
        .find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(1) != Some(&"FLOCK") {
                return None;
            }
            let pid: u32 = fields.get(4)?.parse().ok()?;
            let mut id = fields.get(5)?.split(':');
            let same = u32::from_str_radix(id.next()?, 16).ok()? == major
                && u32::from_str_radix(id.next()?, 16).ok()? == minor
                && id.next()?.parse::<u64>().ok()? == ino;
            (same && pid > 0).then_some(pid)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_in_the_same_process_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(Error::Locked { path, holder_pid }) => {
                assert_eq!(path, filename::lock_path(dir.path()));
                assert_eq!(holder_pid, Some(std::process::id()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(held);
        DirLock::acquire(dir.path()).unwrap();
    }

    /// A child forked by another thread holds copies of the lock's descriptors until its
    /// exec; a reopen in that window was refused as if another writer held the directory.
    #[test]
    fn a_lock_held_only_by_an_inherited_copy_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        // What a fork leaves behind: more descriptors of the same open files.
        let copies: Vec<File> = [held._dir.as_ref().unwrap(), &held._file]
            .into_iter()
            .map(|f| f.try_clone().unwrap())
            .collect();
        drop(held);
        let exec = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(copies);
        });
        let started = Instant::now();
        let reopened = DirLock::acquire(dir.path());
        exec.join().unwrap();
        assert!(reopened.is_ok(), "{reopened:?}");
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn a_lock_no_copy_lets_go_of_is_refused_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        let _copy = held._dir.as_ref().unwrap().try_clone().unwrap();
        drop(held);
        match DirLock::acquire(dir.path()) {
            Err(Error::Locked { holder_pid, .. }) => {
                assert_eq!(holder_pid, Some(std::process::id()))
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }

    #[test]
    fn a_deleted_lock_file_does_not_free_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let _held = DirLock::acquire(dir.path()).unwrap();
        std::fs::remove_file(filename::lock_path(dir.path())).unwrap();
        match DirLock::acquire(dir.path()) {
            Err(Error::Locked { path, holder_pid }) => {
                assert_eq!(path, filename::lock_path(dir.path()));
                assert_eq!(holder_pid, Some(std::process::id()), "from /proc/locks");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
        assert!(
            !filename::lock_path(dir.path()).exists(),
            "refused untouched"
        );
    }

    #[test]
    fn a_lock_file_that_is_not_a_regular_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let lock = filename::lock_path(dir.path());
        let target = dir.path().join("precious");
        std::fs::write(&target, b"keep me").unwrap();

        std::os::unix::fs::symlink(&target, &lock).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a symbolic link to"), "{err}");
        std::fs::remove_file(&lock).unwrap();

        std::fs::hard_link(&target, &lock).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("2 hard links"), "{err}");
        std::fs::remove_file(&lock).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep me");

        std::fs::create_dir(&lock).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a directory"), "{err}");
        std::fs::remove_dir(&lock).unwrap();

        let fifo = std::ffi::CString::new(lock.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
    }

    #[test]
    fn proc_locks_lines_are_read_for_the_holder() {
        let text = "1: POSIX  ADVISORY  WRITE 11 fd:01:77 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 99 fd:01:1234 0 EOF\n";
        assert_eq!(parse_flock_holder(text, 0xfd, 1, 1234), Some(4242));
        assert_eq!(parse_flock_holder(text, 0xfd, 1, 77), None, "not a flock");
        assert_eq!(parse_flock_holder(text, 0xfd, 2, 1234), None);
    }
}
