//! Opening a database: recover the version set from the manifest, replay the WALs it does
//! not cover, and remove what a crash left behind.
//!
//! The writer's open, step by step:
//! 1. take the lock; read CURRENT and replay the manifest;
//! 2. replay every WAL numbered at or above the manifest's log number, oldest first. Only
//!    the newest WAL may end in a torn record (dropped); other damage fails the open;
//! 3. if a single intact WAL was replayed and its memtable is not full, keep appending to
//!    it (after cutting off a torn tail); otherwise flush what was replayed to an L0 table
//!    and start a new WAL;
//! 4. write a fresh manifest holding the whole state, switch CURRENT to it;
//! 5. remove orphans: tables the manifest does not name, WALs below its log number, old
//!    manifests and temporary files.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use arc_swap::ArcSwap;
use parking_lot::{Condvar, Mutex};

use super::write::{SyncState, WriteState};
use super::{CheckReport, Db, DbInner, Mode, super_version};
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::fs::FileSystem;
use crate::key::SeqNum;
use crate::lock::DirLock;
use crate::manifest::{self, VersionEdit};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::record::{self, HEADER_LEN};
use crate::sstable::BlockCache;
use crate::version::{FileMeta, TableContext, VersionSet};
use crate::wal::{self, WAL_KIND, WalHandle};

fn table_context(
    dir: &Path,
    opts: &Options,
    may_delete: bool,
) -> (Arc<BlockCache>, Arc<TableContext>) {
    let cache = Arc::new(BlockCache::new(opts.block_cache_bytes));
    let ctx = Arc::new(TableContext {
        fs: Arc::clone(&opts.fs),
        dir: dir.to_path_buf(),
        cache: Arc::clone(&cache),
        may_delete,
        delete_failures: AtomicU64::new(0),
        obsolete_held: AtomicU64::new(0),
    });
    (cache, ctx)
}

/// The version set recovered from the manifest, or an empty one for a new database.
fn recover_versions(
    dir: &Path,
    ctx: &Arc<TableContext>,
    names: &[String],
) -> Result<(VersionSet, u64, SeqNum)> {
    match VersionSet::recover(dir, Arc::clone(ctx))? {
        Some((set, r)) => Ok((set, r.log_number, r.last_sequence)),
        None => {
            // The first open creates its WAL before CURRENT, and a crash in between leaves a
            // WAL that holds at most its header: that is no data, and the open starts over.
            let fs = ctx.fs.as_ref();
            let has_data = names.iter().any(|n| match filename::parse(n) {
                Some(FileType::Table(_)) => true,
                Some(FileType::Wal(_)) => {
                    let path = dir.join(n);
                    fs.open_read(&path)
                        .and_then(|f| f.len())
                        .map_or(true, |len| len > HEADER_LEN as u64)
                }
                _ => false,
            });
            if has_data {
                return Err(Error::corruption(
                    &filename::current_path(dir),
                    0,
                    "CURRENT is missing but the directory holds tables or WALs; run `lsmdb repair`",
                ));
            }
            Ok((VersionSet::new_empty(dir, Arc::clone(ctx)), 0, 0))
        }
    }
}

fn prepare_dir(dir: &Path, opts: &Options) -> Result<()> {
    opts.validate()?;
    if !opts.fs.exists(dir) {
        if !opts.create_if_missing {
            return Err(Error::InvalidArgument(format!(
                "database directory {} does not exist",
                dir.display()
            )));
        }
        opts.fs.create_dir_all(dir).ctx("create directory", dir)?;
    }
    Ok(())
}

pub(crate) fn open_writer(dir: &Path, opts: Options) -> Result<Db> {
    prepare_dir(dir, &opts)?;
    let lock = DirLock::acquire(dir)?;
    let fs = Arc::clone(&opts.fs);
    let (cache, ctx) = table_context(dir, &opts, true);
    let names = fs.list_dir(dir).ctx("list directory", dir)?;
    let (mut versions, log_number, mut last_seq) = recover_versions(dir, &ctx, &names)?;
    for n in filename::numbers(&names) {
        versions.numbers.mark_used(n);
    }

    // Replay the WALs the manifest does not cover.
    let wals = filename::live_wals(&names, log_number);
    let mut mem = Arc::new(Memtable::new(
        wals.last().copied().unwrap_or(0),
        opts.write_buffer_size,
    ));
    let mut edit = VersionEdit::default();
    let mut added = Vec::new();
    let mut reusable = None;
    let mut torn_newest = None;
    for (i, &number) in wals.iter().enumerate() {
        let path = filename::wal_path(dir, number);
        let replayed = wal::replay(fs.as_ref(), &path, false, |first_seq, batch| {
            wal::apply_to(&mem, first_seq, batch);
            Ok(())
        })?;
        let newest = i + 1 == wals.len();
        if let Some(offset) = replayed.scan.torn_at
            && !newest
        {
            return Err(Error::corruption(
                &path,
                offset,
                "damaged record at the end of a WAL that is not the newest",
            ));
        }
        if newest && replayed.scan.torn_at.is_some() {
            torn_newest = Some((path.clone(), replayed.scan.valid_len));
        }
        if let Some(s) = replayed.last_seq {
            last_seq = last_seq.max(s);
        }
        if newest && wals.len() == 1 && replayed.scan.valid_len >= HEADER_LEN as u64 {
            reusable = Some((number, replayed.scan.valid_len));
        }
        // Flush as we go so that memory stays bounded whatever the WALs hold.
        if mem.memory_usage() >= opts.write_buffer_size {
            reusable = None;
            let number = versions.numbers.allocate();
            if let Some(f) =
                super::flush::write_level0_table(fs.as_ref(), dir, &opts, &mem, number, last_seq)?
            {
                added.push((0, Arc::new(FileMeta::new(&f, &ctx))));
                edit.added.push(f);
            }
            mem = Arc::new(Memtable::new(0, opts.write_buffer_size));
        }
    }

    let (writer, wal_number) = match reusable {
        Some((number, valid_len)) if mem.memory_usage() < opts.write_buffer_size => (
            record::Writer::reopen_log(
                fs.as_ref(),
                &filename::wal_path(dir, number),
                valid_len,
                &opts.wal_log_options(),
            )?,
            number,
        ),
        _ => {
            if !mem.is_empty() {
                let number = versions.numbers.allocate();
                if let Some(f) = super::flush::write_level0_table(
                    fs.as_ref(),
                    dir,
                    &opts,
                    &mem,
                    number,
                    last_seq,
                )? {
                    added.push((0, Arc::new(FileMeta::new(&f, &ctx))));
                    edit.added.push(f);
                }
            }
            // Only the newest WAL may end torn: cut the tail off before a newer one exists.
            if let Some((path, valid_len)) = &torn_newest {
                cut_torn_tail(fs.as_ref(), dir, path, *valid_len)?;
            }
            let number = versions.numbers.allocate();
            let path = filename::wal_path(dir, number);
            let writer =
                record::Writer::create_log(fs.as_ref(), &path, WAL_KIND, &opts.wal_log_options())?;
            writer.sync()?;
            fs.sync_dir(dir).ctx("sync directory", dir)?;
            mem = Arc::new(Memtable::new(number, opts.write_buffer_size));
            (writer, number)
        }
    };
    edit.log_number = Some(wal_number);
    // The first edit of this open writes a new manifest holding the whole state.
    versions.log_and_apply(edit, added, last_seq)?;
    remove_orphans(dir, &opts, &versions, wal_number)?;

    let version = versions.current();
    let handle = Arc::new(WalHandle::new(wal_number, &writer));
    let synced = (wal_number, writer.len());
    let write_state = WriteState::new(writer, Arc::clone(&handle), Arc::clone(&mem), last_seq);
    let sv = super_version(mem, Vec::new(), version, &opts);
    let inner = DbInner {
        dir: dir.to_path_buf(),
        mode: Mode::ReadWrite,
        lock: Mutex::new(Some(lock)),
        write: Mutex::new(Some(write_state)),
        sync: Mutex::new(SyncState {
            current: handle,
            synced,
            syncing: false,
        }),
        sync_cv: Condvar::new(),
        sv: ArcSwap::from_pointee(sv),
        sv_lock: Mutex::new(()),
        visible_seq: AtomicU64::new(last_seq),
        versions: Mutex::new(versions),
        bg: Mutex::new(super::BgState {
            compaction_requested: true,
        }),
        bg_cv: Condvar::new(),
        compaction_lock: Mutex::new(()),
        stopped: Mutex::new(None),
        stopped_flag: AtomicBool::new(false),
        snapshots: Mutex::new(Default::default()),
        counters: Default::default(),
        cache,
        table_ctx: ctx,
        shutting_down: AtomicBool::new(false),
        opts,
    };
    Ok(Db::from_inner(Arc::new(inner)))
}

/// Durably cuts a WAL back to its intact prefix, or removes it if not even its header is
/// intact (it then holds nothing).
fn cut_torn_tail(fs: &dyn FileSystem, dir: &Path, path: &Path, valid_len: u64) -> Result<()> {
    if valid_len >= HEADER_LEN as u64 {
        return fs
            .truncate(path, valid_len)
            .ctx("truncate torn tail of", path);
    }
    fs.remove_file(path).ctx("remove torn WAL", path)?;
    fs.sync_dir(dir).ctx("sync directory", dir)
}

/// Removes files no live state refers to. Runs after the new manifest is durable, so
/// nothing removed here can be needed by a crash during this open.
fn remove_orphans(
    dir: &Path,
    opts: &Options,
    versions: &VersionSet,
    log_number: u64,
) -> Result<()> {
    let fs = opts.fs.as_ref();
    let live: std::collections::HashSet<u64> = versions.current().live_numbers().collect();
    for name in fs.list_dir(dir).ctx("list directory", dir)? {
        let orphan = match filename::parse(&name) {
            Some(FileType::Table(n)) => !live.contains(&n),
            Some(FileType::Wal(n)) => n < log_number,
            Some(FileType::Manifest(n)) => n != versions.manifest_number(),
            Some(FileType::Temp) => true,
            _ => false,
        };
        if orphan {
            let path = dir.join(&name);
            fs.remove_file(&path).ctx("remove leftover file", &path)?;
        }
    }
    Ok(())
}

/// How many times a secondary open starts over when the writer deletes a file under it or
/// changes the manifest while it reads: a writer with small memtables under load does so
/// every few milliseconds.
const SECONDARY_ATTEMPTS: usize = 50;

pub(crate) fn open_secondary(dir: &Path, opts: Options, holder: Option<Option<u32>>) -> Result<Db> {
    opts.validate()?;
    if !opts.fs.exists(dir) {
        return Err(Error::InvalidArgument(format!(
            "database directory {} does not exist",
            dir.display()
        )));
    }
    let mut attempt = 0;
    loop {
        let last = attempt + 1 == SECONDARY_ATTEMPTS;
        match try_open_secondary(dir, &opts, holder) {
            Ok(Some(db)) => return Ok(db),
            // The writer logged a version edit while we read: what we replayed may miss a
            // WAL it deleted after moving its data into a table our manifest did not name.
            Ok(None) if !last => {}
            Ok(None) => {
                return Err(Error::InvalidArgument(format!(
                    "the writer holding {} changed it during each of {SECONDARY_ATTEMPTS} \
                     attempts to read a consistent state; try again",
                    dir.display()
                )));
            }
            // Either the writer removed a file we were about to read (a flush or compaction
            // finished), or we copied a page of the WAL or manifest while the writer was
            // filling it, and saw a half-written record before a whole one. Start over from
            // the manifest it now names; damage that is still there after every attempt is
            // real and reported.
            Err(e) if (e.is_not_found() || e.is_corruption()) && !last => {}
            Err(e) => return Err(e),
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(
            (2 * attempt as u64).min(20),
        ));
    }
}

/// Which manifest CURRENT names and how long it is: equal before and after an open means the
/// writer logged no version edit in between.
fn manifest_mark(fs: &dyn FileSystem, dir: &Path) -> Result<Option<(u64, u64)>> {
    let Some((number, path)) = manifest::read_current(fs, dir)? else {
        return Ok(None);
    };
    let len = fs
        .open_read(&path)
        .and_then(|f| f.len())
        .ctx("read manifest", &path)?;
    Ok(Some((number, len)))
}

/// One attempt at a consistent read-only open; `None` if the writer changed the manifest
/// meanwhile.
fn try_open_secondary(
    dir: &Path,
    opts: &Options,
    holder: Option<Option<u32>>,
) -> Result<Option<Db>> {
    let fs = Arc::clone(&opts.fs);
    let mark = manifest_mark(fs.as_ref(), dir)?;
    let (cache, ctx) = table_context(dir, opts, false);
    let (set, log_number, mut last_seq) = match VersionSet::recover(dir, Arc::clone(&ctx))? {
        Some((set, r)) => (set, r.log_number, r.last_sequence),
        None => {
            return Err(Error::InvalidArgument(format!(
                "{} holds no database (no CURRENT file)",
                dir.display()
            )));
        }
    };
    let names = fs.list_dir(dir).ctx("list directory", dir)?;
    let wals = filename::live_wals(&names, log_number);
    // Everything replayed goes into one memtable, however large: a secondary writes nothing.
    let mem = Arc::new(Memtable::new(0, opts.write_buffer_size));
    for (i, &number) in wals.iter().enumerate() {
        let path = filename::wal_path(dir, number);
        let replayed = wal::replay(fs.as_ref(), &path, false, |first_seq, batch| {
            wal::apply_to(&mem, first_seq, batch);
            Ok(())
        })?;
        if let Some(offset) = replayed.scan.torn_at
            && i + 1 != wals.len()
        {
            return Err(Error::corruption(
                &path,
                offset,
                "damaged record at the end of a WAL that is not the newest",
            ));
        }
        if let Some(s) = replayed.last_seq {
            last_seq = last_seq.max(s);
        }
    }
    // Open every table now, so a file deleted under us shows here (and we start over)
    // rather than in a later read.
    let version = set.current();
    for f in version.levels.iter().flatten() {
        f.table()?;
    }
    if manifest_mark(fs.as_ref(), dir)? != mark {
        return Ok(None);
    }
    let sv = super_version(mem, Vec::new(), version, opts);
    let placeholder = Arc::new(WalHandle {
        number: 0,
        file: Arc::new(NoFile),
        path: dir.to_path_buf(),
        appended: AtomicU64::new(0),
    });
    let inner = DbInner {
        dir: dir.to_path_buf(),
        mode: Mode::Secondary { holder },
        lock: Mutex::new(None),
        write: Mutex::new(None),
        sync: Mutex::new(SyncState {
            current: placeholder,
            synced: (0, 0),
            syncing: false,
        }),
        sync_cv: Condvar::new(),
        sv: ArcSwap::from_pointee(sv),
        sv_lock: Mutex::new(()),
        visible_seq: AtomicU64::new(last_seq),
        versions: Mutex::new(set),
        bg: Mutex::new(super::BgState::default()),
        bg_cv: Condvar::new(),
        compaction_lock: Mutex::new(()),
        stopped: Mutex::new(None),
        stopped_flag: AtomicBool::new(false),
        snapshots: Mutex::new(Default::default()),
        counters: Default::default(),
        cache,
        table_ctx: ctx,
        shutting_down: AtomicBool::new(false),
        opts: opts.clone(),
    };
    Ok(Some(Db::from_inner(Arc::new(inner))))
}

/// A WAL handle for a secondary reader, which never writes.
struct NoFile;

impl crate::fs::WritableFile for NoFile {
    fn append(&self, _data: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("read-only database"))
    }
    fn sync_data(&self) -> std::io::Result<()> {
        Ok(())
    }
}

impl DbInner {
    /// Reads every block of every live table and every record of every live WAL, checking
    /// each checksum.
    pub(crate) fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let version = self.sv.load().version.clone();
        for f in version.levels.iter().flatten() {
            let table = f.table()?;
            report.table_entries += table.verify_all()?;
            report.tables += 1;
            report.bytes += f.size;
        }
        let log_number = self.versions.lock().log_number();
        let fs = self.opts.fs.as_ref();
        let names = fs.list_dir(&self.dir).ctx("list directory", &self.dir)?;
        let wals = filename::live_wals(&names, log_number);
        for (i, &number) in wals.iter().enumerate() {
            let path = filename::wal_path(&self.dir, number);
            let replayed = wal::replay(fs, &path, false, |_, _| Ok(()))?;
            if let Some(offset) = replayed.scan.torn_at
                && (i + 1 != wals.len() || self.mode == Mode::ReadWrite)
            {
                return Err(Error::corruption(
                    &path,
                    offset,
                    "damaged record at the end of the WAL",
                ));
            }
            report.wal_files += 1;
            report.wal_records += replayed.records;
            report.bytes += replayed.scan.valid_len;
        }
        Ok(report)
    }
}
