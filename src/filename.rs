//! Every file a database directory holds, its name and how a name is read back
//! (docs/FORMAT.md, "The directory"), in the manner of LevelDB's `filename.cc`. Nothing
//! else in the engine spells a file name.
//!
//! ```text
//! LOCK                 the writer's lock
//! CURRENT              names the live manifest
//! CURRENT.NNNNNN.tmp   CURRENT being replaced (the only temporary file)
//! MANIFEST-NNNNNN      a manifest
//! NNNNNN.wal           a write-ahead log
//! NNNNNN.sst           a table
//! lost/                damaged files `lsmdb repair` set aside
//! ```
//! `NNNNNN` is a file number, zero-padded to at least six digits; WALs, tables and manifests
//! share one counter.

use std::path::{Path, PathBuf};

pub(crate) const LOCK: &str = "LOCK";
pub(crate) const CURRENT: &str = "CURRENT";
/// The folder, inside the database directory, where `lsmdb repair` moves damaged files.
pub(crate) const LOST_DIR: &str = "lost";

const MANIFEST_PREFIX: &str = "MANIFEST-";
const WAL_SUFFIX: &str = ".wal";
const TABLE_SUFFIX: &str = ".sst";
const TEMP_SUFFIX: &str = ".tmp";

/// The kinds of files a database directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileType {
    Wal(u64),
    Table(u64),
    Manifest(u64),
    Current,
    Lock,
    Temp,
}

/// What `name` (a file name, not a path) is, or `None` for a file the engine did not
/// write, which it leaves alone.
pub(crate) fn parse(name: &str) -> Option<FileType> {
    if name == CURRENT {
        return Some(FileType::Current);
    }
    if name == LOCK {
        return Some(FileType::Lock);
    }
    if name.ends_with(TEMP_SUFFIX) {
        return Some(FileType::Temp);
    }
    let number = |digits: &str| digits.parse().ok();
    if let Some(n) = name.strip_prefix(MANIFEST_PREFIX).and_then(number) {
        return Some(FileType::Manifest(n));
    }
    if let Some(n) = name.strip_suffix(WAL_SUFFIX).and_then(number) {
        return Some(FileType::Wal(n));
    }
    if let Some(n) = name.strip_suffix(TABLE_SUFFIX).and_then(number) {
        return Some(FileType::Table(n));
    }
    None
}

pub(crate) fn manifest_name(number: u64) -> String {
    format!("{MANIFEST_PREFIX}{number:06}")
}

/// Reads the manifest number out of a name CURRENT holds.
pub(crate) fn parse_manifest_name(name: &str) -> Option<u64> {
    match parse(name)? {
        FileType::Manifest(n) => Some(n),
        _ => None,
    }
}

pub(crate) fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}{WAL_SUFFIX}"))
}

pub(crate) fn table_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:06}{TABLE_SUFFIX}"))
}

pub(crate) fn manifest_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(manifest_name(number))
}

pub(crate) fn current_path(dir: &Path) -> PathBuf {
    dir.join(CURRENT)
}

/// Where CURRENT is written before it is renamed into place, naming manifest `number`.
pub(crate) fn current_temp_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{CURRENT}.{number:06}{TEMP_SUFFIX}"))
}

pub(crate) fn lock_path(dir: &Path) -> PathBuf {
    dir.join(LOCK)
}

pub(crate) fn lost_dir(dir: &Path) -> PathBuf {
    dir.join(LOST_DIR)
}

/// The numbers of the WALs among `names` numbered at or above `log_number`, oldest first:
/// the WALs whose data is not yet in a table.
pub(crate) fn live_wals(names: &[String], log_number: u64) -> Vec<u64> {
    let mut wals: Vec<u64> = names
        .iter()
        .filter_map(|n| match parse(n) {
            Some(FileType::Wal(w)) if w >= log_number => Some(w),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    wals
}

/// Every file number `names` use (WALs, tables, manifests), so that new files get higher
/// ones.
pub(crate) fn numbers(names: &[String]) -> impl Iterator<Item = u64> + '_ {
    names.iter().filter_map(|n| match parse(n)? {
        FileType::Wal(n) | FileType::Table(n) | FileType::Manifest(n) => Some(n),
        FileType::Current | FileType::Lock | FileType::Temp => None,
    })
}

/// The numbers of the tables among `names`, in order.
pub(crate) fn tables(names: &[String]) -> Vec<u64> {
    let mut tables: Vec<u64> = names
        .iter()
        .filter_map(|n| match parse(n) {
            Some(FileType::Table(t)) => Some(t),
            _ => None,
        })
        .collect();
    tables.sort_unstable();
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_the_engine_writes_parses_back() {
        let dir = Path::new("db");
        let name = |p: PathBuf| p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(name(wal_path(dir, 7)), "000007.wal");
        assert_eq!(name(table_path(dir, 1234567)), "1234567.sst");
        assert_eq!(parse(&name(wal_path(dir, 7))), Some(FileType::Wal(7)));
        assert_eq!(parse(&name(table_path(dir, 8))), Some(FileType::Table(8)));
        assert_eq!(
            parse(&name(manifest_path(dir, 9))),
            Some(FileType::Manifest(9))
        );
        assert_eq!(parse(&name(current_path(dir))), Some(FileType::Current));
        assert_eq!(
            parse(&name(current_temp_path(dir, 9))),
            Some(FileType::Temp)
        );
        assert_eq!(parse(&name(lock_path(dir))), Some(FileType::Lock));
        assert_eq!(parse_manifest_name("MANIFEST-000042"), Some(42));
        for other in ["lost", "notes.txt", "x.wal", "MANIFEST-", "000001.sst.bak"] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn live_wals_are_the_wals_at_or_above_the_log_number_oldest_first() {
        let names: Vec<String> = ["000009.wal", "000003.wal", "000005.sst", "000004.wal"]
            .map(String::from)
            .to_vec();
        assert_eq!(live_wals(&names, 4), vec![4, 9]);
        assert_eq!(tables(&names), vec![5]);
    }
}
