//! An append-only log file (the WAL), with space reserved ahead of the appended bytes.
//!
//! Two ways to append, chosen by how the log is synced ([`LogOptions::synced_appends`]):
//! - **Mapped**, when appends are not synced one by one: bytes are copied into a
//!   `MAP_SHARED` window of the file. Through `write(2)` each small append cost a system call,
//!   half of a sequential fill in profiles; through the mapping it is a `memcpy`. Durability
//!   is the same: the bytes are in the page cache at once (a process crash loses nothing),
//!   and `fdatasync` writes back pages dirtied through the mapping as it does others.
//! - **Written**, when every append is synced: a positioned write per append. After each
//!   `fdatasync` the kernel write-protects the mapped page again, so the next `memcpy` would
//!   take a page fault, which under a hypervisor costs more than the system call it saves.
//!
//! Either way space is reserved with `fallocate` one window ahead (a sixteenth of the log's
//! expected size, between 64 KiB and 4 MiB): a full disk is then an error from `append`,
//! never a SIGBUS at a page fault, and appends never change the file's size, so a sync has
//! no size to write back. Only the current window is mapped, which keeps the log's share of
//! the process's resident memory at one window. Bytes past the appended data read as zeros
//! until the file is dropped, when it is cut to its appended length; readers treat a run of
//! zeros at the end of a record file as its end (docs/FORMAT.md, "Record files: the WAL and
//! the manifest", under "Zeros at the end").
//!
//! What decides durability (reserving, positioned writes, syncs, the final trim) goes
//! through [`LogBacking`]: the OS's file here, the fault-injecting file system's model of it
//! under the fault tests (`crate::fault`), so that those tests run this very code.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use parking_lot::Mutex;

use super::{LogOptions, WritableFile};

const MIN_WINDOW: usize = 64 << 10;
const MAX_WINDOW: usize = 4 << 20;

/// The file beneath a [`LogFile`], and the operations on it that durability depends on.
pub(crate) trait LogBacking: Send + Sync {
    /// The open file, for mapping it.
    fn file(&self) -> &File;
    /// Makes the file at least `to` bytes long with its blocks allocated (it is `from` long).
    fn reserve(&self, from: u64, to: u64) -> io::Result<()>;
    /// Writes all of `data` at `offset`, inside the reserved range.
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
    /// Makes every byte written so far, through `write_at` or the mapping, durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Cuts the reserved zeros off as the log is closed (`len` bytes were appended).
    fn trim(&self, len: u64);
}

/// Reserves `[from, to)` of `file` with `fallocate`, or where the file system has none by
/// extending its size (blocks are then allocated at write-back, as with `write`).
pub(crate) fn reserve_space(file: &File, from: u64, to: u64) -> io::Result<()> {
    let (offset, len) = (from as libc::off_t, (to - from) as libc::off_t);
    // SAFETY: fallocate on an open descriptor with in-range arguments.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EOPNOTSUPP) {
            return Err(err);
        }
        file.set_len(to)?;
    }
    Ok(())
}

/// The operating system's file.
struct OsBacking(File);

impl LogBacking for OsBacking {
    fn file(&self) -> &File {
        &self.0
    }
    fn reserve(&self, from: u64, to: u64) -> io::Result<()> {
        reserve_space(&self.0, from, to)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(data, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        // Writes back pages dirtied through the mapping too.
        self.0.sync_data()
    }
    fn trim(&self, len: u64) {
        // If this fails (or a crash comes first) the zeros stay, and readers take them for
        // the end of the log.
        let _ = self.0.set_len(len);
    }
}

pub(crate) struct LogFile {
    backing: Box<dyn LogBacking>,
    /// Bytes mapped, and reserved ahead, at a time; a multiple of the page size.
    window: usize,
    mapped: bool,
    state: Mutex<State>,
}

struct State {
    mapping: Option<Window>,
    /// Bytes appended: the log's logical length.
    len: u64,
    /// The file's size, reserved by `fallocate` ahead of the appended bytes.
    reserved: u64,
}

struct Window {
    ptr: *mut u8,
    start: u64,
    len: usize,
}

// SAFETY: the mapping is owned by the `LogFile` and only touched under its mutex.
unsafe impl Send for Window {}

impl Window {
    fn unmap(&self) {
        // SAFETY: `ptr` is a live mapping of exactly `len` bytes made by `map_window`.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

impl LogFile {
    /// Creates (or truncates) `path`.
    pub(crate) fn create(path: &Path, opts: &LogOptions) -> io::Result<LogFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Self::with_backing(Box::new(OsBacking(file)), 0, opts))
    }

    /// Opens `path` to append after its first `len` bytes, cutting off (durably) whatever
    /// follows them: a torn record, or zeros left by an earlier run.
    pub(crate) fn open(path: &Path, len: u64, opts: &LogOptions) -> io::Result<LogFile> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        file.set_len(len)?;
        file.sync_all()?;
        Ok(Self::with_backing(Box::new(OsBacking(file)), len, opts))
    }

    /// A log over `backing`, whose first `len` bytes are already appended.
    pub(crate) fn with_backing(
        backing: Box<dyn LogBacking>,
        len: u64,
        opts: &LogOptions,
    ) -> LogFile {
        LogFile {
            backing,
            window: (opts.capacity / 16)
                .next_multiple_of(MIN_WINDOW)
                .clamp(MIN_WINDOW, MAX_WINDOW),
            mapped: !opts.synced_appends,
            state: Mutex::new(State {
                mapping: None,
                len,
                reserved: len,
            }),
        }
    }

    /// Makes the file at least `upto` bytes long, with its blocks allocated.
    fn reserve(&self, st: &mut State, upto: u64) -> io::Result<()> {
        if upto <= st.reserved {
            return Ok(());
        }
        self.backing.reserve(st.reserved, upto)?;
        st.reserved = upto;
        Ok(())
    }

    /// The end of the window holding offset `at`.
    fn window_end(&self, at: u64) -> u64 {
        let window = self.window as u64;
        (at / window + 1) * window
    }

    /// Maps the window holding offset `at`.
    fn map_window(&self, st: &mut State, at: u64) -> io::Result<()> {
        if let Some(w) = st.mapping.take() {
            w.unmap();
        }
        let end = self.window_end(at);
        let start = end - self.window as u64;
        self.reserve(st, end)?;
        // SAFETY: a shared mapping of a range of the file that exists (reserved above);
        // the offset is a multiple of the page size.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                self.window,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.backing.file().as_raw_fd(),
                start as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        st.mapping = Some(Window {
            ptr: ptr.cast(),
            start,
            len: self.window,
        });
        Ok(())
    }

    fn append_mapped(&self, st: &mut State, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let in_window = st
                .mapping
                .as_ref()
                .is_some_and(|w| st.len >= w.start && st.len < w.start + w.len as u64);
            if !in_window {
                let at = st.len;
                self.map_window(st, at)?;
            }
            let Some(w) = st.mapping.as_ref() else {
                return Err(io::Error::other("log window not mapped"));
            };
            let offset = (st.len - w.start) as usize;
            let n = data.len().min(w.len - offset);
            // SAFETY: `offset + n <= w.len`, inside the live mapping, and the mutex gives
            // this thread the only access to it.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), w.ptr.add(offset), n) };
            st.len += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    fn append_written(&self, st: &mut State, data: &[u8]) -> io::Result<()> {
        let end = st.len + data.len() as u64;
        if end > st.reserved {
            self.reserve(st, self.window_end(end))?;
        }
        self.backing.write_at(data, st.len)?;
        st.len = end;
        Ok(())
    }
}

impl WritableFile for LogFile {
    fn append(&self, data: &[u8]) -> io::Result<()> {
        let mut st = self.state.lock();
        if self.mapped {
            self.append_mapped(&mut st, data)
        } else {
            self.append_written(&mut st, data)
        }
    }

    fn sync_data(&self) -> io::Result<()> {
        // Writes back pages dirtied through the mapping too; no lock, so appends go on.
        self.backing.sync_data()
    }
}

impl Drop for LogFile {
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if let Some(w) = st.mapping.take() {
            w.unmap();
        }
        if st.reserved > st.len {
            self.backing.trim(st.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appends_read_back_and_are_trimmed_on_drop(synced_appends: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let opts = LogOptions {
            capacity: 1 << 20,
            synced_appends,
        };
        let log = LogFile::create(&path, &opts).unwrap();
        let mut expected = Vec::new();
        for i in 0..3000u32 {
            let chunk = vec![(i % 251) as u8 + 1; 3001 + (i as usize % 7)];
            log.append(&chunk).unwrap();
            expected.extend_from_slice(&chunk);
        }
        log.sync_data().unwrap();
        let on_disk = std::fs::read(&path).unwrap();
        assert!(on_disk.len() > expected.len(), "space is reserved ahead");
        assert_eq!(&on_disk[..expected.len()], expected.as_slice());
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
        drop(log);
        assert_eq!(std::fs::read(&path).unwrap(), expected);

        let log = LogFile::open(&path, 10, &opts).unwrap();
        log.append(b"tail").unwrap();
        drop(log);
        let mut want = expected[..10].to_vec();
        want.extend_from_slice(b"tail");
        assert_eq!(std::fs::read(&path).unwrap(), want);
    }

    #[test]
    fn mapped_appends_across_windows_read_back() {
        appends_read_back_and_are_trimmed_on_drop(false);
    }

    #[test]
    fn written_appends_across_windows_read_back() {
        appends_read_back_and_are_trimmed_on_drop(true);
    }
}
