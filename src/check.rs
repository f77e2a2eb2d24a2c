//! `lsmdb check`: verifies every checksum of every file in a database directory (CURRENT,
//! the manifest, every table block by block, every WAL record by record) and lists every
//! problem with its file and offset, rather than stopping at the first as an open does.
//! It writes nothing and takes no lock, so it can run beside a writer.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::db::CheckReport;
use crate::error::{Error, IoContext, Result};
use crate::filename::{self, FileType};
use crate::manifest::{self, MANIFEST_KIND, VersionEdit};
use crate::options::Options;
use crate::record::{self, is_cut_short};
use crate::version::{FileMeta, TableContext, VersionSet};
use crate::wal::{self, OnDamage};

/// One damaged place: the file, the offset when known, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: PathBuf,
    pub offset: Option<u64>,
    pub reason: String,
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
        }
    }

    /// A problem from an engine error about `path`.
    pub(crate) fn from_error(path: &Path, e: Error) -> Problem {
        match e {
            Error::Corruption {
                path,
                offset,
                reason,
            } => Problem {
                path,
                offset: Some(offset),
                reason,
            },
            other => Problem {
                path: path.to_path_buf(),
                offset: None,
                reason: other.to_string(),
            },
        }
    }
}

/// What [`check_dir`] found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirCheck {
    /// Damage: a directory with any problem does not open, or serves errors for some keys.
    pub problems: Vec<Problem>,
    /// Worth knowing but harmless: a torn WAL tail (a write cut off by a crash, never
    /// acknowledged), leftover files the next open removes.
    pub notes: Vec<String>,
    /// What was checked.
    pub checked: CheckReport,
}

impl DirCheck {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every file of the database in `dir`.
pub fn check_dir(dir: &Path, opts: &Options) -> Result<DirCheck> {
    let fs = Arc::clone(&opts.fs);
    if !fs.exists(dir) {
        return Err(Error::InvalidArgument(format!(
            "database directory {} does not exist",
            dir.display()
        )));
    }
    let names = fs.list_dir(dir).ctx("list directory", dir)?;
    let mut out = DirCheck::default();
    let ctx = TableContext::read_only(Arc::clone(&fs), dir);
    let live = check_manifest(dir, &ctx, &names, &mut out);
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
    if live.is_some() {
        for orphan in unnamed_tables(&names, &named, &ctx) {
            out.notes.push(format!(
                "{} is not in the manifest (left by a crash; the next open removes it)",
                orphan.path().display()
            ));
        }
    }
    check_wals(dir, opts, &names, log_number, &mut out);
    Ok(out)
}

/// Reads CURRENT and the manifest it names, listing every damaged edit; returns the
/// recovered version set if the manifest opens.
fn check_manifest(
    dir: &Path,
    ctx: &Arc<TableContext>,
    names: &[String],
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
            out.problems.push(Problem::from_error(&current, e));
            return None;
        }
    };
    let data = match fs.read_all(&path) {
        Ok(data) => data,
        Err(e) => {
            out.problems.push(Problem::from_error(
                &path,
                Error::io("read manifest", &path, e),
            ));
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
            out.problems.extend(
                scan.skipped_damage(&path, MANIFEST_KIND)
                    .into_iter()
                    .map(|e| Problem::from_error(&path, e)),
            );
            if let Some(at) = scan.torn_at {
                let tail = data.get(at as usize..).unwrap_or_default();
                if at > 0 && is_cut_short(tail) {
                    out.notes.push(format!(
                        "{} ends in an edit cut short at offset {at} (a crash while it was written; the open ignores it)",
                        path.display()
                    ));
                } else {
                    out.problems.push(Problem::new(
                        &path,
                        at,
                        "damaged manifest record at the end",
                    ));
                }
            }
        }
        Err(e) => out.problems.push(Problem::from_error(&path, e)),
    }
    out.checked.bytes += data.len() as u64;
    match VersionSet::recover(dir, Arc::clone(ctx)) {
        Ok(Some((set, r))) => Some((set, r.last_sequence)),
        Ok(None) => None,
        Err(e) => {
            // Report what the open would say, unless the scan above already named the damage.
            if out.problems.len() == before {
                out.problems.push(Problem::from_error(&path, e));
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

fn check_table_file(f: &FileMeta, out: &mut DirCheck) {
    let path = f.path();
    let table = match f.table() {
        Ok(t) => t,
        Err(e) => {
            out.problems.push(Problem::from_error(&path, e));
            return;
        }
    };
    let verified = match table.verify() {
        Ok(verified) => verified,
        Err(e) => {
            out.problems.push(Problem::from_error(&path, e));
            return;
        }
    };
    out.checked.tables += 1;
    out.checked.table_entries += verified.entries;
    out.checked.bytes += f.size;
    let len = table.file_size();
    if f.size > 0 && len != f.size {
        out.problems.push(Problem::new(
            &path,
            len.min(f.size),
            format!("the manifest says {} bytes, the file has {len}", f.size),
        ));
    }
    out.problems.extend(
        verified
            .damage
            .into_iter()
            .map(|e| Problem::from_error(&path, e)),
    );
}

/// Checks every live WAL record by record. A torn tail of the newest WAL is a crash's
/// unacknowledged write, not damage.
fn check_wals(dir: &Path, opts: &Options, names: &[String], log_number: u64, out: &mut DirCheck) {
    let wals = filename::live_wals(names, 0);
    let newest = wals.last().copied();
    for number in wals {
        let path = filename::wal_path(dir, number);
        if number < log_number {
            out.notes.push(format!(
                "{} is older than the manifest's log number (the next open removes it)",
                path.display()
            ));
            continue;
        }
        let replayed = match wal::read(opts.fs.as_ref(), &path, OnDamage::Skip, |_| Ok(())) {
            Ok(replayed) => replayed,
            Err(e) => {
                // A WAL that could not be read was not checked; one whose header is damaged was.
                if !matches!(e, Error::Io { .. }) {
                    out.checked.wal_files += 1;
                }
                out.problems.push(Problem::from_error(&path, e));
                continue;
            }
        };
        out.problems.extend(
            replayed
                .damage
                .into_iter()
                .map(|e| Problem::from_error(&path, e)),
        );
        match replayed.torn_at {
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
