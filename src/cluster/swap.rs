//! Replacing the state machine's directory (`DIR/data`) by a new one in one step.
//!
//! The new database is built beside it in `DIR/data.new` and synced; then the two are
//! exchanged with `renameat2(RENAME_EXCHANGE)` (Linux 3.15+, most local file systems), so at
//! every moment `DIR/data` is one complete database, old or new. Where the exchange is not
//! supported the fallback is two renames: `data` -> `data.old`, `data.new` -> `data`; a crash
//! between them leaves no `data`, and [`recover`] puts `data.old` back. Either way a crash
//! leaves the old or the new database in place, never a mix, and the caller redoes the
//! install from the snapshot (which it made durable first) if the old one is found.
//!
//! The database in `DIR/data` must be closed before the exchange: lsmdb names its files by
//! the directory's path, so a handle left open would read and delete files of the new one.

use std::io;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::snapshot::{remove_dir, sync_dir};

/// The sibling paths the protocol uses next to `live`.
fn siblings(live: &Path) -> (PathBuf, PathBuf) {
    let name = live
        .file_name()
        .map_or_else(Default::default, |n| n.to_os_string());
    let with = |suffix: &str| {
        let mut n = name.clone();
        n.push(suffix);
        live.with_file_name(n)
    };
    (with(".new"), with(".old"))
}

/// Where to build the database that will replace `live`.
pub(crate) fn fresh_path(live: &Path) -> PathBuf {
    siblings(live).0
}

/// Puts the complete database in `fresh_path(live)` in place of `live`, durably, and removes
/// the old one.
pub(crate) fn replace(live: &Path) -> Result<()> {
    replace_using(live, exchange)
}

fn replace_using(live: &Path, exchange: fn(&Path, &Path) -> io::Result<()>) -> Result<()> {
    let (fresh, old) = siblings(live);
    let parent = live.parent().unwrap_or(Path::new("."));
    match exchange(&fresh, live) {
        Ok(()) => {
            sync_dir(parent)?;
            // `fresh` now holds the old database.
            remove_dir(&fresh)?;
        }
        Err(e) if exchange_unsupported(&e) => {
            rename(live, &old)?;
            sync_dir(parent)?;
            rename(&fresh, live)?;
            sync_dir(parent)?;
            remove_dir(&old)?;
        }
        Err(e) => return Err(Error::io("exchange", live, e)),
    }
    sync_dir(parent)
}

/// Undoes what a crash in the middle of [`replace`] (or of building the new database) left:
/// afterwards `live` is a complete database, or absent if there never was one.
pub(crate) fn recover(live: &Path) -> Result<()> {
    let (fresh, old) = siblings(live);
    if !live.exists() && old.exists() {
        rename(&old, live)?;
    }
    remove_dir(&fresh)?;
    remove_dir(&old)?;
    if let Some(parent) = live.parent().filter(|p| p.exists()) {
        sync_dir(parent)?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io("rename", from, e))
}

fn exchange_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
    };
    let (a, b) = (cstr(a)?, cstr(b)?);
    // SAFETY: both pointers are NUL-terminated strings that live across the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(dir: &Path, marker: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("marker"), marker).unwrap();
    }

    fn marker(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("marker")).unwrap()
    }

    #[test]
    fn replace_swaps_in_the_new_directory_and_removes_the_old() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("data");
        make(&live, "old");
        make(&fresh_path(&live), "new");
        replace(&live).unwrap();
        assert_eq!(marker(&live), "new");
        assert!(!fresh_path(&live).exists());
        assert!(!siblings(&live).1.exists());
    }

    #[test]
    fn replace_falls_back_to_two_renames_where_exchange_is_unsupported() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("data");
        make(&live, "old");
        make(&fresh_path(&live), "new");
        replace_using(&live, |_, _| {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        })
        .unwrap();
        assert_eq!(marker(&live), "new");
        assert!(!fresh_path(&live).exists());
        assert!(!siblings(&live).1.exists());
    }

    #[test]
    fn recover_after_a_crash_between_the_fallback_renames() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("data");
        let (fresh, old) = siblings(&live);
        make(&old, "old");
        make(&fresh, "new");
        recover(&live).unwrap();
        assert_eq!(marker(&live), "old");
        assert!(!fresh.exists() && !old.exists());
    }

    #[test]
    fn recover_drops_a_half_built_new_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let live = tmp.path().join("data");
        make(&live, "old");
        make(&fresh_path(&live), "half");
        recover(&live).unwrap();
        assert_eq!(marker(&live), "old");
        assert!(!fresh_path(&live).exists());
        // Nothing there at all: nothing to do.
        let empty = tmp.path().join("none");
        recover(&empty).unwrap();
        assert!(!empty.exists());
    }
}
