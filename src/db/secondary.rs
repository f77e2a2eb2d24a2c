//! The secondary's open (`Db::open_read_only`), in the manner of RocksDB's secondary
//! instance: it reads CURRENT, the manifest, every table it names and every live WAL up to
//! the last complete record, writes nothing and takes no lock, so it can read a directory
//! another process is writing.
//!
//! The writer may log a version edit, or delete a file it no longer needs, while a
//! secondary reads; the secondary then starts over from the manifest the writer now names.

use std::path::Path;
use std::sync::Arc;

use super::inner::WhyReadOnly;
use super::open::replay_wal;
use super::{Db, DbInner, Mode};
use crate::error::{Error, IoContext, Result};
use crate::filename;
use crate::fs::FileSystem;
use crate::manifest;
use crate::memtable::Memtable;
use crate::options::Options;
use crate::version::{TableContext, VersionSet};

/// How many times a secondary open starts over when the writer deletes a file under it or
/// changes the manifest while it reads: a writer with small memtables under load does so
/// every few milliseconds.
const SECONDARY_ATTEMPTS: usize = 50;

pub(crate) fn open_secondary(dir: &Path, opts: Options, why: Option<WhyReadOnly>) -> Result<Db> {
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
        match try_open_secondary(dir, &opts, why.clone()) {
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
            Err(e) if may_be_the_writer_at_work(&e) && !last => {}
            Err(e) => return Err(e),
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(
            (2 * attempt as u64).min(20),
        ));
    }
}

/// Whether `e` may come from reading a file while the writer changed it: a file it removed
/// (NotFound), or a record it was still writing (seen as damage).
fn may_be_the_writer_at_work(e: &Error) -> bool {
    match e {
        Error::TablesUnusable { tables, .. } => tables.iter().all(may_be_the_writer_at_work),
        e => e.is_not_found() || e.is_corruption(),
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
fn try_open_secondary(dir: &Path, opts: &Options, why: Option<WhyReadOnly>) -> Result<Option<Db>> {
    let fs = Arc::clone(&opts.fs);
    let mark = manifest_mark(fs.as_ref(), dir)?;
    let ctx = TableContext::new(Arc::clone(&fs), dir, opts.block_cache_bytes, false);
    let (set, log_number, mut last_seq) = match VersionSet::recover(dir, ctx)? {
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
        let newest = i + 1 == wals.len();
        replay_wal(fs.as_ref(), dir, number, newest, &mem, &mut last_seq)?;
    }
    // Open every table now, so a file deleted under us shows here (and we start over)
    // rather than in a later read.
    set.current().open_tables(dir)?;
    if manifest_mark(fs.as_ref(), dir)? != mark {
        return Ok(None);
    }
    Ok(Some(DbInner::assemble(
        dir,
        opts.clone(),
        Mode::Secondary { why },
        set,
        mem,
        last_seq,
        None,
    )))
}
