//! `lsmdb repair`: salvages what is intact in a damaged database, on request only (an open
//! never drops data silently).
//!
//! 1. Take the lock. If [`check_dir`] finds nothing wrong, change nothing. If it cannot read
//!    a file (a permission, an I/O error), refuse, naming it: an unreadable file is not
//!    damage, and dropping it would lose intact data. A table the manifest names that is
//!    gone is the exception: nothing can be read back from it, so it is dropped (reported).
//! 2. Pick the files to salvage: the tables and WALs the manifest names if it is readable;
//!    otherwise every table and WAL in the directory (then data deleted long ago may come
//!    back from obsolete files a crash left behind, and the report says so).
//! 3. Keep every table whose blocks are all intact; rewrite the intact blocks of a damaged
//!    table into a new one; replay every intact WAL record into new tables.
//! 4. Merge all of it into one sorted run (as a full compaction: the newest version of each
//!    key wins by sequence number, whatever file it came from) and write a fresh manifest
//!    naming only the merged tables; CURRENT switches to it atomically.
//! 5. Only then move the damaged files to `lost/` and remove the replaced ones.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use serde::Serialize;

use crate::check::{Problem, check_dir, os_error};
use crate::compaction::{self, CompactionEnv, picker};
use crate::db::{table_options, write_level0_table};
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::fs::FileSystem;
use crate::iter::InternalIterator;
use crate::key::{self, Kind};
use crate::lock::DirLock;
use crate::manifest::{TableFile, VersionEdit};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::sstable::BlockCache;
use crate::sstable::{Table, TableBuilder};
use crate::version::{FileMeta, TableContext, Version, VersionSet};
use crate::wal::{self, OnDamage};

/// What [`repair_dir`] did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairReport {
    /// False when the directory was clean and nothing was changed.
    pub repaired: bool,
    /// Whether the live files came from the manifest or, the manifest being unreadable,
    /// from every file in the directory.
    pub rebuilt_from_manifest: bool,
    pub tables_read: u64,
    pub wal_records_read: u64,
    /// Entries in the rebuilt tables (after newer versions replaced older ones).
    pub entries_kept: u64,
    /// What was lost: each damaged block, record or file that could not be read.
    pub dropped: Vec<Problem>,
    /// Damaged files moved into `lost/` (kept for inspection, no longer used).
    pub archived: Vec<PathBuf>,
    pub notes: Vec<String>,
}

/// Salvages the database in `dir` (see the module documentation).
pub fn repair_dir(dir: &Path, opts: &Options) -> Result<RepairReport> {
    opts.validate()?;
    let fs = Arc::clone(&opts.fs);
    if !fs.exists(dir) {
        return Err(Error::InvalidArgument(format!(
            "database directory {} does not exist",
            dir.display()
        )));
    }
    let _lock = DirLock::acquire(dir)?;
    let mut report = RepairReport::default();
    let found = check_dir(dir, opts)?;
    if found.is_clean() {
        report
            .notes
            .push("no damage found; nothing was changed".into());
        return Ok(report);
    }
    if let Some(p) = found.inaccessible().next() {
        return Err(unreadable(&p.path, p.os_error));
    }
    report.repaired = true;
    let names = fs.list_dir(dir).ctx("list directory", dir)?;
    let ctx = TableContext::read_only(Arc::clone(&fs), dir);
    let mut set = VersionSet::new_empty(dir, Arc::clone(&ctx));
    for n in filename::numbers(&names) {
        set.numbers.mark_used(n);
    }
    let (tables, log_number, mut last_seq) = match VersionSet::recover(dir, Arc::clone(&ctx)) {
        // A manifest that cannot be read is not damaged: rebuilding without it would bring
        // back data deleted long ago.
        Err(e) if os_error(&e).is_some() => return Err(e),
        Ok(Some((old, r))) => {
            report.rebuilt_from_manifest = true;
            let live = old.current().live_numbers().collect::<Vec<_>>();
            (live, r.log_number, r.last_sequence)
        }
        _ => {
            report.notes.push(
                "the manifest is unreadable: rebuilt from every table and WAL in the directory; \
                 keys deleted long ago may reappear from obsolete files"
                    .into(),
            );
            (filename::tables(&names), 0, 0)
        }
    };

    let mut salvager = Salvager {
        fs: fs.as_ref(),
        dir,
        opts,
        ctx: &ctx,
        set: &set,
        report: &mut report,
        inputs: Vec::new(),
        damaged: HashSet::new(),
        last_seq: &mut last_seq,
    };
    for number in tables {
        salvager.table(number)?;
    }
    salvager.wals(&names, log_number)?;
    let Salvager {
        inputs, damaged, ..
    } = salvager;

    // Merge everything into one sorted run and name only that in a new manifest.
    let version = Arc::new(
        Version::default()
            .apply(&[], inputs.into_iter().map(|f| (0, f)).collect())
            .0,
    );
    let mut added = Vec::new();
    if let Some(c) = picker::full(&version, opts) {
        let stop = AtomicBool::new(false);
        let env = CompactionEnv {
            fs: fs.as_ref(),
            dir,
            table_opts: table_options(opts),
            numbers: &set.numbers,
            ctx: &ctx,
            smallest_snapshot: last_seq,
            stop: &stop,
        };
        let out = compaction::run(&c, &env)?;
        added = out.added;
    }
    report.entries_kept = added.iter().map(|(_, f)| f.entries).sum();
    let edit = VersionEdit {
        log_number: Some(set.numbers.allocate()),
        ..VersionEdit::default()
    };
    set.log_and_apply(edit, added, last_seq)?;

    let live: HashSet<u64> = set.current().live_numbers().collect();
    clean_up(fs.as_ref(), dir, &set, &live, &damaged, &mut report)?;
    Ok(report)
}

/// Reads what is intact out of tables and WALs, as tables to merge.
struct Salvager<'a> {
    fs: &'a dyn FileSystem,
    dir: &'a Path,
    opts: &'a Options,
    ctx: &'a Arc<TableContext>,
    set: &'a VersionSet,
    report: &'a mut RepairReport,
    inputs: Vec<Arc<FileMeta>>,
    /// Files with damage, to archive rather than remove.
    damaged: HashSet<PathBuf>,
    last_seq: &'a mut u64,
}

impl Salvager<'_> {
    fn table(&mut self, number: u64) -> Result<()> {
        let path = filename::table_path(self.dir, number);
        let table = match Table::open(self.fs, &path, number, Arc::new(BlockCache::new(0))) {
            Ok(t) => Arc::new(t),
            // Gone: there is nothing to read back, or to set aside.
            Err(e) if os_error(&e) == Some(libc::ENOENT) => {
                self.report.dropped.push(Problem::from_error(&path, e));
                return Ok(());
            }
            Err(e) if os_error(&e).is_some() => return Err(e),
            Err(e) => {
                self.report.dropped.push(Problem::from_error(&path, e));
                self.damaged.insert(path);
                return Ok(());
            }
        };
        self.report.tables_read += 1;
        let verified = table.verify()?;
        // A block that could not be read is not damage: never drop it.
        if let Some(e) = verified.damage.iter().find(|e| os_error(e).is_some()) {
            return Err(unreadable(&path, os_error(e)));
        }
        if verified.damage.is_empty() {
            let meta = describe(&table, number, self.ctx)?;
            *self.last_seq = (*self.last_seq).max(meta.1);
            self.inputs.push(meta.0);
            return Ok(());
        }
        self.report.dropped.extend(
            verified
                .damage
                .into_iter()
                .map(|e| Problem::from_error(&path, e)),
        );
        self.damaged.insert(path);
        // Copy the entries of the intact blocks into a new table, in order.
        let new_number = self.set.numbers.allocate();
        let new_path = filename::table_path(self.dir, new_number);
        let mut builder = TableBuilder::create(self.fs, &new_path, &table_options(self.opts))?;
        if let Err(e) = table.verify_and_copy(&mut |key, value| builder.add(key, value)) {
            let _ = self.fs.remove_file(&new_path);
            return Err(e);
        }
        if builder.entries() == 0 {
            let _ = self.fs.remove_file(&new_path);
            return Ok(());
        }
        builder.finish()?;
        let table = Arc::new(Table::open(
            self.fs,
            &new_path,
            new_number,
            Arc::new(BlockCache::new(0)),
        )?);
        let meta = describe(&table, new_number, self.ctx)?;
        *self.last_seq = (*self.last_seq).max(meta.1);
        self.inputs.push(meta.0);
        Ok(())
    }

    /// Replays every intact record of the WALs at or above `log_number` into tables.
    fn wals(&mut self, names: &[String], log_number: u64) -> Result<()> {
        let wals = filename::live_wals(names, log_number);
        let mut mem = Arc::new(Memtable::new(0, self.opts.write_buffer_size));
        for (i, &number) in wals.iter().enumerate() {
            let path = filename::wal_path(self.dir, number);
            let replayed = wal::read(self.fs, &path, OnDamage::Skip, |batch| {
                mem.apply_replayed(batch);
                Ok(())
            })?;
            if let Some(s) = replayed.last_seq {
                *self.last_seq = (*self.last_seq).max(s);
            }
            self.report.wal_records_read += replayed.records;
            let mut dropped: Vec<Problem> = replayed
                .damage
                .into_iter()
                .map(|e| Problem::from_error(&path, e))
                .collect();
            match replayed.torn_at {
                Some(at) if i + 1 == wals.len() => self.report.notes.push(format!(
                    "{} ended in a write cut short at offset {at} (never acknowledged)",
                    path.display()
                )),
                Some(at) => dropped.push(Problem::new(&path, at, "damaged end of a WAL")),
                None => {}
            }
            if !dropped.is_empty() {
                self.damaged.insert(path);
                self.report.dropped.extend(dropped);
            }
            if mem.memory_usage() >= self.opts.write_buffer_size || i + 1 == wals.len() {
                self.flush(&mem)?;
                mem = Arc::new(Memtable::new(0, self.opts.write_buffer_size));
            }
        }
        Ok(())
    }

    fn flush(&mut self, mem: &Arc<Memtable>) -> Result<()> {
        let number = self.set.numbers.allocate();
        if let Some(f) = write_level0_table(self.ctx, self.opts, mem, number, *self.last_seq)? {
            self.inputs.push(f);
        }
        Ok(())
    }
}

/// The refusal to repair while `path` cannot be read.
fn unreadable(path: &Path, os_error: Option<i32>) -> Error {
    let source = os_error.map_or_else(
        || std::io::Error::other("unreadable"),
        std::io::Error::from_raw_os_error,
    );
    Error::io(
        "nothing was changed: repair needs to read every file, and cannot read",
        path,
        source,
    )
}

/// A table's manifest record, read from its entries, and its largest sequence number.
fn describe(
    table: &Arc<Table>,
    number: u64,
    ctx: &Arc<TableContext>,
) -> Result<(Arc<FileMeta>, u64)> {
    let mut f = TableFile {
        number,
        size: table.file_size(),
        ..TableFile::default()
    };
    let mut max_seq = 0;
    let mut it = table.iter_uncached();
    it.seek_to_first()?;
    while it.valid() {
        if f.entries == 0 {
            f.smallest = it.key().to_vec();
        }
        f.largest.clear();
        f.largest.extend_from_slice(it.key());
        f.entries += 1;
        if let Some(k) = key::parse(it.key()) {
            max_seq = max_seq.max(k.seq);
            f.deletions += u64::from(k.kind == Kind::Delete);
        }
        it.next()?;
    }
    Ok((Arc::new(FileMeta::new(f, ctx)), max_seq))
}

/// After the new manifest is durable: damaged files go to `lost/`, replaced ones are removed.
fn clean_up(
    fs: &dyn FileSystem,
    dir: &Path,
    set: &VersionSet,
    live: &HashSet<u64>,
    damaged: &HashSet<PathBuf>,
    report: &mut RepairReport,
) -> Result<()> {
    let lost = filename::lost_dir(dir);
    for name in fs.list_dir(dir).ctx("list directory", dir)? {
        let path = dir.join(&name);
        let replaced = match filename::parse(&name) {
            Some(FileType::Table(n)) => !live.contains(&n),
            Some(FileType::Wal(n)) => n < set.log_number(),
            Some(FileType::Manifest(n)) => n != set.manifest_number(),
            Some(FileType::Temp) => true,
            _ => false,
        };
        if !replaced {
            continue;
        }
        let is_damaged_manifest = matches!(filename::parse(&name), Some(FileType::Manifest(_)))
            && !report.rebuilt_from_manifest;
        if damaged.contains(&path) || is_damaged_manifest {
            fs.create_dir_all(&lost).ctx("create", &lost)?;
            let to = lost.join(&name);
            fs.rename(&path, &to).ctx("move to lost/", &path)?;
            report.archived.push(to);
        } else {
            fs.remove_file(&path).ctx("remove replaced file", &path)?;
        }
    }
    fs.sync_dir(dir).ctx("sync directory", dir)
}
