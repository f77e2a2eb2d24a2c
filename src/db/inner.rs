//! The engine's shared state, [`DbInner`], which the public handle, the write and read
//! paths and the background threads all hold, and the one place it is put together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};

use super::Db;
use super::stats::Counters;
use super::write::{SyncState, WriteState};
use crate::error::{Error, Result};
use crate::key::SeqNum;
use crate::lock::DirLock;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::version::{TableContext, Version, VersionSet};

/// What readers see: the active memtable, the immutable ones waiting for a flush (newest
/// first), and the live tables. Replaced as a whole, never modified.
pub(crate) struct SuperVersion {
    pub mem: Arc<Memtable>,
    pub imms: Vec<Arc<Memtable>>,
    pub version: Arc<Version>,
    /// Computed once per version for the write path's backpressure.
    pub pending_compaction_bytes: u64,
}

/// How the database was opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    ReadWrite,
    /// A secondary reader: a snapshot of the directory as of open. `why` is set when it was
    /// opened read-only because a writable open was not possible.
    Secondary {
        why: Option<WhyReadOnly>,
    },
}

/// Why [`crate::Db::open_or_read_only`] opened read-only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WhyReadOnly {
    /// Another process holds the write lock (its PID, if known).
    Locked(Option<u32>),
    /// This process may not write to the directory (the OS error says why).
    NoPermission(String),
}

impl WhyReadOnly {
    pub(crate) fn text(&self) -> String {
        match self {
            WhyReadOnly::Locked(Some(pid)) => format!("process {pid} holds the write lock"),
            WhyReadOnly::Locked(None) => "another process holds the write lock".to_string(),
            WhyReadOnly::NoPermission(why) => why.clone(),
        }
    }
}

pub(crate) struct DbInner {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) mode: Mode,
    pub(super) lock: Mutex<Option<DirLock>>,
    /// The writer's state; `None` for a secondary reader and after close.
    pub(super) write: Mutex<Option<WriteState>>,
    pub(super) sync: Mutex<SyncState>,
    pub(super) sync_cv: Condvar,
    pub(super) sv: ArcSwap<SuperVersion>,
    pub(super) sv_lock: Mutex<()>,
    /// Every write with a sequence number at or below this is readable (and, under
    /// `SyncMode::Always`, durable).
    pub(super) visible_seq: AtomicU64,
    pub(super) versions: Mutex<VersionSet>,
    /// Paired with `bg_cv`: background threads wait for work on it, stalled writers and
    /// `flush()` wait for background progress on it.
    pub(super) bg: Mutex<BgState>,
    pub(super) bg_cv: Condvar,
    /// Held by whichever compaction runs, background or manual.
    pub(super) compaction_lock: Mutex<()>,
    /// Set once a write, sync or manifest update fails: the reason writes are refused.
    pub(super) stopped: Mutex<Option<String>>,
    pub(super) stopped_flag: AtomicBool,
    pub(super) snapshots: Mutex<BTreeMap<SeqNum, usize>>,
    pub(crate) counters: Counters,
    /// How tables are opened and removed, the block cache included.
    pub(super) table_ctx: Arc<TableContext>,
    pub(super) shutting_down: AtomicBool,
}

pub(super) struct BgState {
    pub(super) compaction_requested: bool,
}

impl DbInner {
    /// The one place the engine's state is put together, once an open has recovered it: a
    /// writer brings its lock and write state; a secondary reader neither.
    pub(super) fn assemble(
        dir: &Path,
        opts: Options,
        mode: Mode,
        versions: VersionSet,
        mem: Arc<Memtable>,
        last_seq: SeqNum,
        writer: Option<(DirLock, WriteState)>,
    ) -> Db {
        let (lock, write) = writer.unzip();
        let sync = SyncState {
            current: write.as_ref().map(|ws| ws.wal.sync_handle()),
            // What the open left is durable: it synced the WAL it created, or replayed the
            // one it reuses from the disk.
            synced: write
                .as_ref()
                .map_or((0, 0), |ws| (ws.wal.number(), ws.wal.len())),
            syncing: false,
        };
        let sv = super_version(mem, Vec::new(), versions.current(), &opts);
        let inner = DbInner {
            dir: dir.to_path_buf(),
            bg: Mutex::new(BgState {
                // A writer looks for due compactions as soon as it opens.
                compaction_requested: mode == Mode::ReadWrite,
            }),
            mode,
            lock: Mutex::new(lock),
            write: Mutex::new(write),
            sync: Mutex::new(sync),
            sync_cv: Condvar::new(),
            sv: ArcSwap::from_pointee(sv),
            sv_lock: Mutex::new(()),
            visible_seq: AtomicU64::new(last_seq),
            table_ctx: Arc::clone(versions.table_context()),
            versions: Mutex::new(versions),
            bg_cv: Condvar::new(),
            compaction_lock: Mutex::new(()),
            stopped: Mutex::new(None),
            stopped_flag: AtomicBool::new(false),
            snapshots: Mutex::new(BTreeMap::new()),
            counters: Counters::default(),
            shutting_down: AtomicBool::new(false),
            opts,
        };
        Db::from_inner(Arc::new(inner))
    }

    pub(crate) fn check_writable(&self) -> Result<()> {
        if let Mode::Secondary { why } = &self.mode {
            let why = match why {
                Some(WhyReadOnly::Locked(Some(pid))) => {
                    format!(" (another process, pid {pid}, holds the write lock)")
                }
                Some(WhyReadOnly::Locked(None)) => {
                    " (another process holds the write lock)".to_string()
                }
                Some(WhyReadOnly::NoPermission(why)) => format!(" ({why})"),
                None => String::new(),
            };
            return Err(Error::ReadOnly(why));
        }
        if self.stopped_flag.load(Ordering::Acquire) {
            let reason = self.stopped.lock().clone().unwrap_or_default();
            return Err(Error::WritesStopped(reason));
        }
        Ok(())
    }

    /// Refuses all later writes: the first failure of a WAL, table or manifest write or
    /// sync. Reads go on; a reopen recovers from the WAL.
    pub(crate) fn stop_writes(&self, reason: String) {
        {
            let mut stopped = self.stopped.lock();
            if stopped.is_none() {
                log::error!(
                    target: "lsmdb",
                    "writes to {} stopped: {reason}; reads go on, a reopen recovers",
                    self.dir.display()
                );
                *stopped = Some(reason);
            }
        }
        self.stopped_flag.store(true, Ordering::Release);
        {
            let _bg = self.bg.lock();
            self.bg_cv.notify_all();
        }
        let _s = self.sync.lock();
        self.sync_cv.notify_all();
    }

    pub(crate) fn visible_seq(&self) -> SeqNum {
        self.visible_seq.load(Ordering::Acquire)
    }

    /// The oldest sequence number a reader may still ask for.
    pub(crate) fn smallest_snapshot(&self) -> SeqNum {
        let visible = self.visible_seq();
        self.snapshots
            .lock()
            .keys()
            .next()
            .map_or(visible, |&s| s.min(visible))
    }

    /// Publishes a new super-version built from the current one by `change`.
    pub(crate) fn install_super_version(&self, change: impl FnOnce(&SuperVersion) -> SuperVersion) {
        let _g = self.sv_lock.lock();
        let current = self.sv.load();
        self.sv.store(Arc::new(change(&current)));
    }

    pub(crate) fn wake_background(&self, compaction: bool) {
        let mut bg = self.bg.lock();
        if compaction {
            bg.compaction_requested = true;
        }
        self.bg_cv.notify_all();
    }
}

pub(crate) fn super_version(
    mem: Arc<Memtable>,
    imms: Vec<Arc<Memtable>>,
    version: Arc<Version>,
    opts: &Options,
) -> SuperVersion {
    let pending_compaction_bytes =
        crate::compaction::picker::pending_compaction_bytes(&version, opts);
    SuperVersion {
        mem,
        imms,
        version,
        pending_compaction_bytes,
    }
}
