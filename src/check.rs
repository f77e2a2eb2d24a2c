//! `lsmdb check`: verifies every checksum of every file in a database directory (CURRENT,
//! the manifest, every table block by block, every WAL record by record) and lists every
//! problem with its file and offset, rather than stopping at the first as an open does.
//!
//! Damage (a checksum or format failure) and a file that could not be read (a permission,
//! an I/O error, a file gone) are kept apart: only damage is for `lsmdb repair`.
//!
//! It writes nothing and takes no lock, so it can run beside a writer. A writer changes the
//! directory as it goes (a flush or compaction retires tables and WALs, a record is being
//! appended to the newest WAL), so a finding counts only if a second pass sees it again:
//! a file the writer retired in between, or a record it was writing, is then gone or whole.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::db::CheckReport;
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::lock;
use crate::manifest::{self, MANIFEST_KIND, VersionEdit};
use crate::options::Options;
use crate::record::{self, is_cut_short};
use crate::version::{FileMeta, TableContext, VersionSet};
use crate::wal::{self, OnDamage};

/// One damaged place, or one file that could not be read: the file, the offset when known,
/// and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub reason: String,
    /// The operating system's error number when the file could not be read (13 for a
    /// permission denied, 2 for a file that is gone); `None` for damage.
    pub os_error: Option<i32>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(offset) => write!(
                f,
                "{} at offset {offset}: {}",
                self.path.display(),
                self.reason
            ),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl Problem {
    pub(crate) fn new(path: &Path, offset: u64, reason: impl Into<String>) -> Problem {
        Problem {
            path: path.to_path_buf(),
            offset: Some(offset),
            reason: reason.into(),
            os_error: None,
        }
    }

    /// A problem from an engine error about `path`.
    pub(crate) fn from_error(path: &Path, e: Error) -> Problem {
        let os_error = os_error(&e);
        match e {
            Error::Corruption {
                path,
                offset,
                reason,
            } => Problem {
                path,
                offset: Some(offset),
                reason,
                os_error,
            },
            // The path is the problem's own: say only what was tried and what the OS said.
            Error::Io { op, source, .. } => Problem {
                path: path.to_path_buf(),
                offset: None,
                reason: format!("{op}: {source}"),
                os_error,
            },
            other => Problem {
                path: path.to_path_buf(),
                offset: None,
                reason: other.to_string(),
                os_error,
            },
        }
    }

    /// Whether the file is gone (rather than unreadable for a reason that can be fixed).
    pub fn is_missing(&self) -> bool {
        self.os_error == Some(libc::ENOENT)
    }
}

/// The OS error number of an I/O failure: a file that could not be read, which is not
/// damage. An I/O error without one (a file shorter than its layout says) is damage.
pub(crate) fn os_error(e: &Error) -> Option<i32> {
    match e {
        Error::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

/// What [`check_dir`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirCheck {
    /// Damage (a checksum or format failure): a directory with any does not open, or serves
    /// errors for some keys; `lsmdb repair` salvages around it.
    pub problems: Vec<Problem>,
    /// Files that could not be read, each with the OS error (`os_error`): a permission, a
    /// failing disk, a file the manifest names that is gone. Not damage: fix the cause and
    /// check again (`lsmdb repair` refuses while a file is unreadable, and can only drop a
    /// table that is gone).
    pub unreadable: Vec<Problem>,
    /// Worth knowing but harmless: a torn WAL tail (a write cut off by a crash, never
    /// acknowledged), leftover files the next open removes, a writer at work.
    pub notes: Vec<String>,
    /// What was checked.
    pub checked: CheckReport,
}

impl DirCheck {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.unreadable.is_empty()
    }

    /// Files the check could not read for a reason other than their being gone.
    pub fn inaccessible(&self) -> impl Iterator<Item = &Problem> {
        self.unreadable.iter().filter(|p| !p.is_missing())
    }

    /// Files of the database that are gone.
    pub fn missing(&self) -> impl Iterator<Item = &Problem> {
        self.unreadable.iter().filter(|p| p.is_missing())
    }

    /// Records a failure to check `path`: unreadable if the OS refused, damage otherwise.
    fn add(&mut self, path: &Path, e: Error) {
        let problem = Problem::from_error(path, e);
        match problem.os_error {
            Some(_) => self.unreadable.push(problem),
            None => self.problems.push(problem),
        }
    }

    /// Keeps only the findings `earlier` had too; true if nothing had to go.
    fn keep_seen_in(&mut self, earlier: &DirCheck) -> bool {
        let before = self.problems.len() + self.unreadable.len();
        self.problems.retain(|p| earlier.problems.contains(p));
        self.unreadable.retain(|p| earlier.unreadable.contains(p));
        before == self.problems.len() + self.unreadable.len()
    }
}

/// How many passes a check makes at most while its findings keep changing under a writer.
const CHECK_PASSES: u64 = 10;

/// Checks every file of the database in `dir`.
pub fn check_dir(dir: &Path, opts: &Options) -> Result<DirCheck> {
    if !opts.fs.exists(dir) {
        return Err(Error::InvalidArgument(format!(
            "database directory {} does not exist",
            dir.display()
        )));
    }
    let writer = lock::holder(dir);
    let mut found = check_pass(dir, opts, writer)?;
    for pass in 1..CHECK_PASSES {
        if found.is_clean() {
            break;
        }
        // Whatever a writer was doing during the pass is done or gone by the next one;
        // damage on disk is still there.
        std::thread::sleep(std::time::Duration::from_millis(5 * pass));
        let again = check_pass(dir, opts, writer)?;
        let mut confirmed = again.clone();
        let settled = confirmed.keep_seen_in(&found);
        if settled || pass + 1 == CHECK_PASSES {
            found = confirmed;
            break;
        }
        // Something new turned up (perhaps behind what went away): see it twice too.
        found = again;
    }
    if let Some(pid) = writer {
        found.notes.push(format!(
            "a writer (pid {pid}) holds the lock: checked the files its manifest named; \
             the record and tables it was writing meanwhile are not included"
        ));
    }
    Ok(found)
}

/// One pass over the directory, from CURRENT through the manifest to its tables and WALs.
/// `writer` is the PID of a writer at work, whose files in the making are not leftovers.
fn check_pass(dir: &Path, opts: &Options, writer: Option<u32>) -> Result<DirCheck> {
    let fs = Arc::clone(&opts.fs);
    let names = fs.list_dir(dir).ctx("list directory", dir)?;
    let mut out = DirCheck::default();
    let ctx = TableContext::read_only(Arc::clone(&fs), dir);
    let live = check_manifest(dir, &ctx, &names, writer.is_some(), &mut out);
    let (tables, log_number) = match &live {
        Some((set, _)) => (
            set.current()
                .levels
                .iter()
                .flatten()
                .map(Arc::clone)
                .collect(),
            set.log_number(),
        ),
        // Without a readable manifest, every table and WAL in the directory is checked.
        None => (unnamed_tables(&names, &HashSet::new(), &ctx), 0),
    };
    let named: HashSet<u64> = tables.iter().map(|f| f.number).collect();
    for f in &tables {
        check_table_file(f, &mut out);
    }
    if live.is_some() && writer.is_none() {
        for orphan in unnamed_tables(&names, &named, &ctx) {
            out.notes.push(format!(
                "{} is not in the manifest (left by a crash; the next open removes it)",
                orphan.path().display()
            ));
        }
    }
    check_wals(dir, opts, &names, log_number, writer.is_some(), &mut out);
    Ok(out)
}

/// Reads CURRENT and the manifest it names, listing every damaged edit; returns the
/// recovered version set if the manifest opens.
fn check_manifest(
    dir: &Path,
    ctx: &Arc<TableContext>,
    names: &[String],
    live_writer: bool,
    out: &mut DirCheck,
) -> Option<(VersionSet, u64)> {
    let fs = ctx.fs.as_ref();
    let current = filename::current_path(dir);
    let path = match manifest::read_current(fs, dir) {
        Ok(Some((_, path))) => path,
        Ok(None) => {
            let has_files = names.iter().any(|n| {
                matches!(
                    filename::parse(n),
                    Some(FileType::Table(_) | FileType::Wal(_))
                )
            });
            if has_files {
                out.problems
                    .push(Problem::new(&current, 0, "CURRENT is missing"));
            }
            return None;
        }
        Err(e) => {
            out.add(&current, e);
            return None;
        }
    };
    let data = match fs.read_all(&path) {
        Ok(data) => data,
        Err(e) => {
            out.add(&path, Error::io("read manifest", &path, e));
            return None;
        }
    };
    let before = out.problems.len();
    let scanned = record::scan(&data, &path, MANIFEST_KIND, true, |offset, payload| {
        if let Err(reason) = VersionEdit::decode(payload) {
            out.problems.push(Problem::new(
                &path,
                offset,
                format!("bad version edit: {reason}"),
            ));
        }
        Ok(())
    });
    match scanned {
        Ok(scan) => {
            for e in scan.skipped_damage(&path, MANIFEST_KIND) {
                out.add(&path, e);
            }
            if let Some(at) = scan.torn_at {
                let tail = data.get(at as usize..).unwrap_or_default();
                if at > 0 && is_cut_short(tail) {
                    // Beside a live writer, this is the edit it is appending.
                    if !live_writer {
                        out.notes.push(format!(
                            "{} ends in an edit cut short at offset {at} (a crash while it was written; the open ignores it)",
                            path.display()
                        ));
                    }
                } else {
                    out.problems.push(Problem::new(
                        &path,
                        at,
                        "damaged manifest record at the end",
                    ));
                }
            }
        }
        Err(e) => out.add(&path, e),
    }
    out.checked.bytes += data.len() as u64;
    match VersionSet::recover(dir, Arc::clone(ctx)) {
        Ok(Some((set, r))) => Some((set, r.last_sequence)),
        Ok(None) => None,
        Err(e) => {
            // Report what the open would say, unless the scan above already named the damage.
            if out.problems.len() == before {
                out.add(&path, e);
            }
            None
        }
    }
}

/// Tables in the directory whose numbers are not in `named`.
fn unnamed_tables(
    names: &[String],
    named: &HashSet<u64>,
    ctx: &Arc<TableContext>,
) -> Vec<Arc<FileMeta>> {
    filename::tables(names)
        .into_iter()
        .filter(|t| !named.contains(t))
        .map(|number| Arc::new(FileMeta::unknown(number, ctx)))
        .collect()
}

/// Opens (which checks the size the manifest records) and verifies one table.
fn check_table_file(f: &FileMeta, out: &mut DirCheck) {
    let path = f.path();
    let verified = match f.table().and_then(|table| table.verify()) {
        Ok(verified) => verified,
        Err(e) => {
            out.add(&path, e);
            return;
        }
    };
    out.checked.tables += 1;
    out.checked.table_entries += verified.entries;
    out.checked.bytes += f.size;
    for e in verified.damage {
        out.add(&path, e);
    }
}

/// Checks every live WAL record by record. A torn tail of the newest WAL is a crash's
/// unacknowledged write (or, beside a `live_writer`, the record being written), not damage.
fn check_wals(
    dir: &Path,
    opts: &Options,
    names: &[String],
    log_number: u64,
    live_writer: bool,
    out: &mut DirCheck,
) {
    let wals = filename::live_wals(names, 0);
    let newest = wals.last().copied();
    for number in wals {
        let path = filename::wal_path(dir, number);
        if number < log_number {
            // A live writer deletes it in a moment; otherwise it was left by a crash.
            if !live_writer {
                out.notes.push(format!(
                    "{} is older than the manifest's log number (the next open removes it)",
                    path.display()
                ));
            }
            continue;
        }
        let replayed = match wal::read(opts.fs.as_ref(), &path, OnDamage::Skip, |_| Ok(())) {
            Ok(replayed) => replayed,
            Err(e) => {
                // A WAL that could not be read was not checked; one whose header is damaged was.
                if os_error(&e).is_none() {
                    out.checked.wal_files += 1;
                }
                out.add(&path, e);
                continue;
            }
        };
        for e in replayed.damage {
            out.add(&path, e);
        }
        match replayed.torn_at {
            Some(_) if Some(number) == newest && live_writer => {}
            Some(at) if Some(number) == newest => out.notes.push(format!(
                "{} ends in a record cut short at offset {at} (a write the crash interrupted; never acknowledged, dropped at open)",
                path.display()
            )),
            Some(at) => out.problems.push(Problem::new(
                &path,
                at,
                "damaged record at the end of a WAL that is not the newest",
            )),
            None => {}
        }
        out.checked.bytes += replayed.valid_len;
        out.checked.wal_files += 1;
        out.checked.wal_records += replayed.records;
    }
}
