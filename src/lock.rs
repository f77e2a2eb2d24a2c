//! The writer's lock on a database directory: an exclusive `flock` on `DIR/LOCK`, held for
//! as long as the database is open. The file holds the holder's PID so that a refused writer
//! can say who holds it. The kernel releases a `flock` when its holder dies, even by SIGKILL,
//! so a crash never leaves a stale lock behind (docs/FORMAT.md, "The directory").

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::filename;

/// Holds the lock until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock at once or fails with [`Error::Locked`]; it never waits.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = filename::lock_path(dir);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .ctx("open lock file", &path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    holder_pid: read_holder(&mut file),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", &path, e)),
        }
        file.set_len(0).ctx("truncate lock file", &path)?;
        file.seek(SeekFrom::Start(0)).ctx("seek lock file", &path)?;
        writeln!(file, "{}", std::process::id()).ctx("write lock file", &path)?;
        Ok(DirLock { _file: file })
    }
}

fn read_holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
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
}
