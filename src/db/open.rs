//! The writer's open: recover the version set from the manifest, replay the WALs it does
//! not cover, and remove what a crash left behind. Step by step:
//! 1. take the lock; read CURRENT and replay the manifest; open every table it names (a
//!    table missing, unreadable, of another size or damaged outside its data blocks fails
//!    the open, naming each, before anything is written);
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

use super::write::WriteState;
use super::{Db, DbInner, Mode};
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::fs::FileSystem;
use crate::key::SeqNum;
use crate::lock::DirLock;
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::record::HEADER_LEN;
use crate::version::{TableContext, VersionSet};
use crate::wal::{self, OnDamage};

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
                Some(FileType::Wal(_)) => wal_holds_data(fs, &dir.join(n)),
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

/// Whether a WAL found without a CURRENT holds a record (not just a header, perhaps cut
/// short, and the zeros reserved after it, whose length says nothing).
fn wal_holds_data(fs: &dyn FileSystem, path: &Path) -> bool {
    wal::read(fs, path, OnDamage::Skip, |_| Ok(()))
        .map_or(true, |r| r.records > 0 || !r.damage.is_empty())
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
    let ctx = TableContext::new(Arc::clone(&fs), dir, opts.block_cache_bytes, true);
    let names = fs.list_dir(dir).ctx("list directory", dir)?;
    let (mut versions, log_number, mut last_seq) = recover_versions(dir, &ctx, &names)?;
    versions.current().open_tables(dir)?;
    for n in filename::numbers(&names) {
        versions.numbers.mark_used(n);
    }

    // Replay the WALs the manifest does not cover.
    let wals = filename::live_wals(&names, log_number);
    let mut mem = Arc::new(Memtable::new(
        wals.last().copied().unwrap_or(0),
        opts.write_buffer_size,
    ));
    let mut added = Vec::new();
    let numbers = Arc::clone(&versions.numbers);
    let mut flush = |mem: &Arc<Memtable>, last_seq: SeqNum| -> Result<()> {
        let number = numbers.allocate();
        if let Some(f) = super::flush::write_level0_table(&ctx, &opts, mem, number, last_seq)? {
            added.push((0, f));
        }
        Ok(())
    };
    let mut reusable = None;
    let mut torn_newest = None;
    for (i, &number) in wals.iter().enumerate() {
        let newest = i + 1 == wals.len();
        let replayed = replay_wal(fs.as_ref(), dir, number, newest, &mem, &mut last_seq)?;
        if newest && replayed.torn_at.is_some() {
            torn_newest = Some((filename::wal_path(dir, number), replayed.valid_len));
        }
        if newest && wals.len() == 1 && replayed.valid_len >= HEADER_LEN as u64 {
            reusable = Some((number, replayed.valid_len));
        }
        // Flush as we go so that memory stays bounded whatever the WALs hold.
        if mem.memory_usage() >= opts.write_buffer_size {
            reusable = None;
            flush(&mem, last_seq)?;
            mem = Arc::new(Memtable::new(0, opts.write_buffer_size));
        }
    }

    let writer = match reusable {
        Some((number, valid_len)) if mem.memory_usage() < opts.write_buffer_size => {
            wal::Writer::reopen(fs.as_ref(), dir, number, valid_len, &opts.wal_log_options())?
        }
        _ => {
            if !mem.is_empty() {
                flush(&mem, last_seq)?;
            }
            // Only the newest WAL may end torn: cut the tail off before a newer one exists.
            if let Some((path, valid_len)) = &torn_newest {
                cut_torn_tail(fs.as_ref(), dir, path, *valid_len)?;
            }
            let number = versions.numbers.allocate();
            let writer = wal::Writer::create(fs.as_ref(), dir, number, &opts.wal_log_options())?;
            writer.sync()?;
            fs.sync_dir(dir).ctx("sync directory", dir)?;
            mem = Arc::new(Memtable::new(number, opts.write_buffer_size));
            writer
        }
    };
    let wal_number = writer.number();
    let edit = VersionEdit {
        log_number: Some(wal_number),
        ..VersionEdit::default()
    };
    // The first edit of this open writes a new manifest holding the whole state.
    versions.log_and_apply(edit, added, last_seq)?;
    remove_orphans(dir, &opts, &versions, wal_number)?;

    let write_state = WriteState {
        wal: writer,
        mem: Arc::clone(&mem),
        last_seq,
    };
    Ok(DbInner::assemble(
        dir,
        opts,
        Mode::ReadWrite,
        versions,
        mem,
        last_seq,
        Some((lock, write_state)),
    ))
}

/// Replays WAL `number` into `mem`, raising `last_seq` to the last write it holds. Damage
/// fails, and so does a torn tail unless this is the `newest` WAL.
pub(super) fn replay_wal(
    fs: &dyn FileSystem,
    dir: &Path,
    number: u64,
    newest: bool,
    mem: &Memtable,
    last_seq: &mut SeqNum,
) -> Result<wal::Replayed> {
    let path = filename::wal_path(dir, number);
    let replayed = wal::read(fs, &path, OnDamage::Fail, |batch| {
        mem.apply_replayed(batch);
        Ok(())
    })?;
    replayed.check_tail(&path, newest)?;
    if let Some(s) = replayed.last_seq {
        *last_seq = (*last_seq).max(s);
    }
    Ok(replayed)
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
