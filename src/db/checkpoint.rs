//! Checkpoints: a consistent, openable copy of the database at one moment, made cheaply.
//!
//! The steps, and why each is safe while writes, flushes and compactions go on:
//! 1. Freeze the active memtable and wait until it, and every memtable frozen before it, is
//!    in a table. Every write acknowledged before the call is then in a table; writes that
//!    come later go to the new memtable, which the checkpoint leaves out.
//! 2. Take the current version. Holding it keeps its tables on disk: an obsolete table is
//!    deleted only when the last version naming it is dropped. The tables of a version hold
//!    exactly the writes up to some sequence number (memtables are flushed oldest first and
//!    compaction keeps the newest version of every key), so the copy is one moment's state.
//! 3. Hard-link every table into the destination (copy it when the file system refuses:
//!    another device, or no links). Tables are never modified after they are written, so a
//!    link is a copy.
//! 4. Write a fresh manifest naming exactly those tables, then CURRENT; sync the files and
//!    the directories. No WAL is needed: everything is in the tables.
//!
//! The result is an ordinary database directory (docs/FORMAT.md): `Db::open` and
//! `Db::open_read_only` take it as they take any other.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::DbInner;
use crate::error::{Error, IoContext, Result};
use crate::filename::{manifest_path, table_path};
use crate::fs::{FileSystem, OsFileSystem};
use crate::manifest::{self, MANIFEST_KIND, TableFile, VersionEdit};
use crate::memtable::Memtable;
use crate::record;
use crate::version::Version;

impl DbInner {
    pub(crate) fn checkpoint(&self, dest: &Path) -> Result<()> {
        if self.mode != super::Mode::ReadWrite {
            return Err(Error::ReadOnly(
                " (a checkpoint needs the writer, which can flush the memtable)".into(),
            ));
        }
        prepare_dest(dest)?;
        self.flush_frozen_now()?;
        let version = Arc::clone(&self.sv.load().version);
        // Every sequence number in those tables is at or below what is visible now.
        let last_sequence = self.visible_seq();
        let result = write_checkpoint(&self.dir, dest, &version, last_sequence, self);
        if result.is_err() {
            // A half-made checkpoint must not look like a database.
            let _ = fs::remove_dir_all(dest);
        }
        result
    }

    /// Freezes the active memtable and waits until it and all older memtables are flushed.
    /// Unlike [`DbInner::flush`] it does not wait for memtables frozen later, which a steady
    /// stream of writes could keep coming.
    fn flush_frozen_now(&self) -> Result<()> {
        self.check_writable()?;
        let pending: Vec<Arc<Memtable>> = {
            let mut guard = self.write.lock();
            let ws = guard.as_mut().ok_or(Error::Closed)?;
            if !ws.mem.is_empty() {
                self.rotate(ws)?;
            }
            self.sv.load().imms.clone()
        };
        let mut bg = self.bg.lock();
        loop {
            self.check_writable()?;
            let sv = self.sv.load();
            if !sv
                .imms
                .iter()
                .any(|m| pending.iter().any(|p| Arc::ptr_eq(m, p)))
            {
                return Ok(());
            }
            self.bg_cv.notify_all();
            self.bg_cv.wait_for(&mut bg, Duration::from_millis(100));
        }
    }
}

/// Creates `dest`, refusing one that exists with anything in it.
fn prepare_dest(dest: &Path) -> Result<()> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::InvalidArgument(format!(
                    "checkpoint destination {} exists and is not empty",
                    dest.display()
                )));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).ctx("create directory", dest)?;
            if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        Err(e) => return Err(Error::io("open checkpoint destination", dest, e)),
    }
    Ok(())
}

fn write_checkpoint(
    src: &Path,
    dest: &Path,
    version: &Version,
    last_sequence: u64,
    db: &DbInner,
) -> Result<()> {
    let mut edit = VersionEdit::default();
    let mut highest = 0;
    for (level, files) in version.levels.iter().enumerate() {
        for f in files {
            link_or_copy(&table_path(src, f.number), &table_path(dest, f.number))?;
            edit.added.push((level, TableFile::clone(f)));
            highest = highest.max(f.number);
        }
    }
    let manifest_number = highest + 1;
    // No WAL holds anything: the first open starts a new one above every number used here.
    edit.log_number = Some(manifest_number + 1);
    edit.next_file_number = Some(manifest_number + 1);
    edit.last_sequence = Some(last_sequence);
    let fs = db.opts.fs.as_ref();
    let path = manifest_path(dest, manifest_number);
    let mut writer = record::Writer::create(fs, &path, MANIFEST_KIND)?;
    writer.add_record(&edit.encode())?;
    writer.sync()?;
    drop(writer);
    // Also syncs `dest`, and with it the names of the linked tables.
    manifest::set_current(fs, dest, manifest_number)
}

/// Links `from` to `to`, or copies it (and syncs the copy) where links cannot be made. The
/// caller syncs the directory holding `to`.
pub(crate) fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e) if link_refused(&e) => {
            fs::copy(from, to).ctx("copy", from)?;
            fs::File::open(to)
                .and_then(|f| f.sync_all())
                .ctx("sync", to)
        }
        Err(e) => Err(Error::io("link", from, e)),
    }
}

/// Errors that mean "this file system or device pair cannot link", not "something is wrong".
fn link_refused(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::CrossesDevices
        || matches!(
            e.raw_os_error(),
            Some(libc::EXDEV | libc::EPERM | libc::EMLINK | libc::EOPNOTSUPP)
        )
}

fn sync_dir(dir: &Path) -> Result<()> {
    OsFileSystem.sync_dir(dir).ctx("sync directory", dir)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use crate::{Db, Options};

    fn small() -> Options {
        Options {
            write_buffer_size: 64 << 10,
            ..Options::default()
        }
    }

    fn key(writer: u64, i: u64) -> Vec<u8> {
        format!("w{writer}-{i:08}").into_bytes()
    }

    /// Writers keep going during the checkpoint; everything acknowledged before it began must
    /// be in the copy, which opens read-write and read-only, and the source keeps working.
    #[test]
    fn checkpoint_under_writes_holds_every_acknowledged_write() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let db = std::sync::Arc::new(Db::open(&src, small()).unwrap());
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let acked: Vec<_> = (0..3)
            .map(|_| std::sync::Arc::new(AtomicU64::new(0)))
            .collect();
        let writers: Vec<_> = (0..3u64)
            .map(|w| {
                let (db, stop, acked) = (db.clone(), stop.clone(), acked[w as usize].clone());
                std::thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        db.put(key(w, i), vec![b'v'; 300]).unwrap();
                        i += 1;
                        acked.store(i, Ordering::Release);
                    }
                })
            })
            .collect();
        while acked.iter().any(|a| a.load(Ordering::Acquire) < 300) {
            std::thread::yield_now();
        }
        let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
        let dest = dir.path().join("copy");
        db.checkpoint(&dest).unwrap();
        // More flushes and compactions while the copy is checked.
        db.compact().unwrap();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        db.put(b"after", b"1").unwrap();
        assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"1"[..]));

        let ro = Db::open_read_only(&dest, Options::default()).unwrap();
        for (w, &n) in before.iter().enumerate() {
            for i in 0..n {
                assert!(ro.get(key(w as u64, i)).unwrap().is_some(), "w{w} {i} lost");
            }
        }
        assert_eq!(ro.get(b"after").unwrap(), None);
        drop(ro);
        let rw = Db::open(&dest, Options::default()).unwrap();
        assert!(rw.get(key(0, 0)).unwrap().is_some());
        rw.put(b"new", b"2").unwrap();
        rw.close().unwrap();
        let rw = Db::open(&dest, Options::default()).unwrap();
        assert_eq!(rw.get(b"new").unwrap().as_deref(), Some(&b"2"[..]));
        // The source's own files were never touched by the copy's writes.
        assert_eq!(db.get(b"new").unwrap(), None);
        rw.check().unwrap();
        db.check().unwrap();
    }

    #[test]
    fn checkpoint_of_a_memtable_only_database_and_into_an_empty_dir() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("src"), Options::default()).unwrap();
        db.put(b"a", b"1").unwrap();
        db.delete(b"a").unwrap();
        db.put(b"b", b"2").unwrap();
        let dest = dir.path().join("empty");
        std::fs::create_dir(&dest).unwrap();
        db.checkpoint(&dest).unwrap();
        let copy = Db::open(&dest, Options::default()).unwrap();
        assert_eq!(copy.get(b"a").unwrap(), None);
        assert_eq!(copy.get(b"b").unwrap().as_deref(), Some(&b"2"[..]));
        // Sequence numbers go on above the copied ones: a new write wins over an old one.
        copy.put(b"b", b"3").unwrap();
        copy.compact().unwrap();
        assert_eq!(copy.get(b"b").unwrap().as_deref(), Some(&b"3"[..]));
    }

    #[test]
    fn checkpoint_refuses_a_destination_that_is_not_empty() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("src"), Options::default()).unwrap();
        db.put(b"a", b"1").unwrap();
        let dest = dir.path().join("full");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("keep.txt"), b"mine").unwrap();
        let err = db.checkpoint(&dest).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(std::fs::read(dest.join("keep.txt")).unwrap(), b"mine");
        let ro = Db::open_read_only(dir.path().join("src"), Options::default()).unwrap();
        assert!(ro.checkpoint(dir.path().join("ro")).is_err());
    }
}
