//! The manifest: a record file of version edits, and the CURRENT file naming the live
//! manifest (docs/FORMAT.md, "Manifest records" and "CURRENT").
//!
//! ```text
//! edit  := field*
//! field := 1 log_number:varint                 WALs numbered below this are obsolete
//!        | 2 next_file_number:varint
//!        | 3 last_sequence:varint
//!        | 4 level:varint number:varint        a table leaves the tree
//!        | 5 level:varint number:varint size:varint smallest:bytes largest:bytes
//!            entries:varint deletions:varint   a table joins the tree
//!        | 6 level:varint key:bytes            where the next compaction of a level starts
//! bytes := len:varint byte[len]
//! ```
//! Tags are varints. An unknown tag fails the open, as it means a newer format.

// A decoder: a damaged length or offset must be an error, never an index panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use std::path::{Path, PathBuf};

use crate::coding::{Reader, put_length_prefixed, put_varint32, put_varint64};
use crate::error::{Error, IoContext, Result};
use crate::filename;
use crate::fs::FileSystem;
use crate::options::NUM_LEVELS;
use crate::record::{self, FileKind};
use crate::sstable::TableSummary;

pub(crate) const MANIFEST_KIND: FileKind = FileKind {
    magic: b"LSMDBMAN",
    version: 1,
    name: "manifest",
    tail: record::Tail::CutShort,
};

const TAG_LOG_NUMBER: u32 = 1;
const TAG_NEXT_FILE: u32 = 2;
const TAG_LAST_SEQ: u32 = 3;
const TAG_DELETED: u32 = 4;
const TAG_ADDED: u32 = 5;
const TAG_COMPACT_POINTER: u32 = 6;

/// A table as the manifest records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableFile {
    pub number: u64,
    pub size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub entries: u64,
    pub deletions: u64,
}

impl TableFile {
    /// The record of table `number`, from what its builder summed up.
    pub(crate) fn from_summary(number: u64, summary: TableSummary) -> TableFile {
        TableFile {
            number,
            size: summary.file_size,
            smallest: summary.smallest,
            largest: summary.largest,
            entries: summary.properties.entries,
            deletions: summary.properties.deletions,
        }
    }
}

/// A change to the set of live tables and the engine's counters, applied atomically.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct VersionEdit {
    pub log_number: Option<u64>,
    pub next_file_number: Option<u64>,
    pub last_sequence: Option<u64>,
    pub deleted: Vec<(usize, u64)>,
    /// Tables joining the tree, each with its level.
    pub added: Vec<(usize, TableFile)>,
    pub compact_pointers: Vec<(usize, Vec<u8>)>,
}

impl VersionEdit {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::new();
        let put = |tag: u32, v: Option<u64>, buf: &mut Vec<u8>| {
            if let Some(v) = v {
                put_varint32(buf, tag);
                put_varint64(buf, v);
            }
        };
        put(TAG_LOG_NUMBER, self.log_number, &mut buf);
        put(TAG_NEXT_FILE, self.next_file_number, &mut buf);
        put(TAG_LAST_SEQ, self.last_sequence, &mut buf);
        for (level, key) in &self.compact_pointers {
            put_varint32(&mut buf, TAG_COMPACT_POINTER);
            put_varint32(&mut buf, *level as u32);
            put_length_prefixed(&mut buf, key);
        }
        for &(level, number) in &self.deleted {
            put_varint32(&mut buf, TAG_DELETED);
            put_varint32(&mut buf, level as u32);
            put_varint64(&mut buf, number);
        }
        for (level, f) in &self.added {
            put_varint32(&mut buf, TAG_ADDED);
            put_varint32(&mut buf, *level as u32);
            put_varint64(&mut buf, f.number);
            put_varint64(&mut buf, f.size);
            put_length_prefixed(&mut buf, &f.smallest);
            put_length_prefixed(&mut buf, &f.largest);
            put_varint64(&mut buf, f.entries);
            put_varint64(&mut buf, f.deletions);
        }
        buf
    }

    pub(crate) fn decode(src: &[u8]) -> std::result::Result<VersionEdit, String> {
        let mut r = Reader::new(src);
        let mut edit = VersionEdit::default();
        let level = |r: &mut Reader<'_>| -> std::result::Result<usize, String> {
            let l = r.varint32().ok_or("truncated level")? as usize;
            if l >= NUM_LEVELS {
                return Err(format!("level {l} out of range"));
            }
            Ok(l)
        };
        while !r.is_empty() {
            let tag = r.varint32().ok_or("truncated tag")?;
            match tag {
                TAG_LOG_NUMBER => {
                    edit.log_number = Some(r.varint64().ok_or("truncated log number")?)
                }
                TAG_NEXT_FILE => {
                    edit.next_file_number = Some(r.varint64().ok_or("truncated next file number")?)
                }
                TAG_LAST_SEQ => {
                    edit.last_sequence = Some(r.varint64().ok_or("truncated sequence")?)
                }
                TAG_DELETED => {
                    let l = level(&mut r)?;
                    edit.deleted
                        .push((l, r.varint64().ok_or("truncated file number")?));
                }
                TAG_ADDED => {
                    let l = level(&mut r)?;
                    let mut field = || r.varint64().ok_or("truncated new file");
                    let number = field()?;
                    let size = field()?;
                    let smallest = r
                        .length_prefixed()
                        .ok_or("truncated smallest key")?
                        .to_vec();
                    let largest = r.length_prefixed().ok_or("truncated largest key")?.to_vec();
                    let entries = r.varint64().ok_or("truncated entry count")?;
                    let deletions = r.varint64().ok_or("truncated deletion count")?;
                    edit.added.push((
                        l,
                        TableFile {
                            number,
                            size,
                            smallest,
                            largest,
                            entries,
                            deletions,
                        },
                    ));
                }
                TAG_COMPACT_POINTER => {
                    let l = level(&mut r)?;
                    let key = r.length_prefixed().ok_or("truncated compaction pointer")?;
                    edit.compact_pointers.push((l, key.to_vec()));
                }
                other => return Err(format!("unknown field tag {other}")),
            }
        }
        Ok(edit)
    }
}

/// Reads CURRENT: the file name of the live manifest. `Ok(None)` if there is no CURRENT.
pub(crate) fn read_current(fs: &dyn FileSystem, dir: &Path) -> Result<Option<(u64, PathBuf)>> {
    let path = filename::current_path(dir);
    if !fs.exists(&path) {
        return Ok(None);
    }
    let data = fs.read_all(&path).ctx("read", &path)?;
    let text = std::str::from_utf8(&data)
        .map_err(|_| Error::corruption(&path, 0, "CURRENT is not text"))?;
    let name = text
        .strip_suffix('\n')
        .ok_or_else(|| Error::corruption(&path, 0, "CURRENT does not end in a newline"))?;
    let number = filename::parse_manifest_name(name).ok_or_else(|| {
        Error::corruption(&path, 0, format!("CURRENT names {name:?}, not a manifest"))
    })?;
    Ok(Some((number, dir.join(name))))
}

/// Points CURRENT at manifest `number`, atomically: write a temporary file, sync it, rename
/// it over CURRENT, sync the directory.
pub(crate) fn set_current(fs: &dyn FileSystem, dir: &Path, number: u64) -> Result<()> {
    let tmp = filename::current_temp_path(dir, number);
    let file = fs.create(&tmp).ctx("create", &tmp)?;
    file.append(format!("{}\n", filename::manifest_name(number)).as_bytes())
        .ctx("write", &tmp)?;
    file.sync_data().ctx("sync", &tmp)?;
    drop(file);
    let current = filename::current_path(dir);
    fs.rename(&tmp, &current).ctx("rename to CURRENT", &tmp)?;
    fs.sync_dir(dir).ctx("sync directory", dir)
}

/// Reads every edit of a manifest. A torn last record (a crash while appending an edit that
/// was therefore never applied) is dropped; any other damage fails.
pub(crate) fn read_edits(
    fs: &dyn FileSystem,
    path: &Path,
) -> Result<(Vec<VersionEdit>, record::Scan)> {
    let data = fs.read_all(path).ctx("read manifest", path)?;
    let mut edits = Vec::new();
    let scan = record::scan(&data, path, MANIFEST_KIND, false, |offset, payload| {
        let edit = VersionEdit::decode(payload).map_err(|reason| {
            Error::corruption(path, offset, format!("bad version edit: {reason}"))
        })?;
        edits.push(edit);
        Ok(())
    })?;
    if scan.torn_at == Some(0) {
        return Err(Error::corruption(
            path,
            0,
            "manifest is empty or its header is torn",
        ));
    }
    // The first edit, the whole state, is synced before CURRENT names the manifest.
    if edits.is_empty() {
        return Err(Error::corruption(
            path,
            scan.valid_len,
            "manifest holds no complete edit",
        ));
    }
    Ok((edits, scan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_round_trip() {
        let edit = VersionEdit {
            log_number: Some(7),
            next_file_number: Some(12),
            last_sequence: Some(1 << 40),
            deleted: vec![(0, 3), (1, 4)],
            added: vec![(
                1,
                TableFile {
                    number: 11,
                    size: 4096,
                    smallest: b"a\x01\0\0\0\0\0\0\0".to_vec(),
                    largest: b"z\x01\0\0\0\0\0\0\0".to_vec(),
                    entries: 100,
                    deletions: 3,
                },
            )],
            compact_pointers: vec![(2, b"m".to_vec())],
        };
        assert_eq!(VersionEdit::decode(&edit.encode()), Ok(edit.clone()));
        let bytes = edit.encode();
        for cut in 0..bytes.len() {
            // Every strict prefix either decodes to less or fails; never panics.
            let _ = VersionEdit::decode(&bytes[..cut]);
        }
        assert!(VersionEdit::decode(&[99, 1]).is_err());
        assert!(VersionEdit::decode(&[4, 9, 1]).is_err());
    }

    #[test]
    fn current_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::fs::OsFileSystem;
        assert_eq!(read_current(&fs, dir.path()).unwrap(), None);
        set_current(&fs, dir.path(), 42).unwrap();
        let (n, path) = read_current(&fs, dir.path()).unwrap().unwrap();
        assert_eq!(n, 42);
        assert_eq!(path, dir.path().join("MANIFEST-000042"));
        std::fs::write(filename::current_path(dir.path()), "garbage").unwrap();
        assert!(read_current(&fs, dir.path()).unwrap_err().is_corruption());
    }
}
