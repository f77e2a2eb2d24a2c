//! RELIABILITY.md T3: a WAL cut at every byte offset inside its last record, or followed
//! by zeros or junk, opens cleanly with exactly its complete records; the torn tail is cut
//! off, so writes after the reopen are not hidden behind damaged bytes.

use std::path::Path;

use crate::crash_harness::{copy_dir, files_with_suffix, record_ranges};
use lsmdb::{Db, Options};

const KEYS: usize = 10;

fn template() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..KEYS {
        db.put(format!("k{i}"), format!("value number {i}"))
            .unwrap();
    }
    db.close().unwrap();
    dir
}

/// Opens the damaged copy: the first `complete` keys must be there and no others; a write
/// after the open must survive another reopen.
fn opens_with(dir: &Path, complete: usize, what: &str) {
    let db = Db::open(dir, Options::default()).unwrap_or_else(|e| panic!("{what}: {e}"));
    for i in 0..KEYS {
        let want = (i < complete).then(|| format!("value number {i}").into_bytes());
        assert_eq!(db.get(format!("k{i}")).unwrap(), want, "{what}: k{i}");
    }
    db.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
    db.put(b"after", b"reopen").unwrap();
    db.close().unwrap();
    let db =
        Db::open(dir, Options::default()).unwrap_or_else(|e| panic!("{what}: second open: {e}"));
    assert_eq!(
        db.get(b"after").unwrap().as_deref(),
        Some(&b"reopen"[..]),
        "{what}"
    );
    assert_eq!(db.iter().unwrap().count(), complete + 1, "{what}");
}

fn damaged_copy(template: &Path, damage: impl FnOnce(&mut Vec<u8>)) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template, dir.path());
    let wal = &files_with_suffix(dir.path(), ".wal")[0];
    let mut data = std::fs::read(wal).unwrap();
    damage(&mut data);
    std::fs::write(wal, data).unwrap();
    dir
}

#[test]
fn a_wal_cut_anywhere_in_its_last_record_keeps_exactly_the_complete_records() {
    let template = template();
    let wal = std::fs::read(&files_with_suffix(template.path(), ".wal")[0]).unwrap();
    let records = record_ranges(&wal);
    assert_eq!(records.len(), KEYS);
    let (start, end) = records[KEYS - 1];
    assert_eq!(end, wal.len());
    for cut in start..end {
        let dir = damaged_copy(template.path(), |d| d.truncate(cut));
        opens_with(dir.path(), KEYS - 1, &format!("cut at {cut}"));
    }
}

#[test]
fn zeros_or_junk_after_the_last_record_are_dropped() {
    let template = template();
    let tails: [(&str, Vec<u8>); 4] = [
        ("zeros", vec![0; 4096]),
        ("a few zeros", vec![0; 5]),
        (
            "junk",
            b"\x13\x37 this is not a record at all \xff\xfe".to_vec(),
        ),
        (
            "a record header with a huge length",
            [&[1, 2, 3, 4][..], &u32::MAX.to_le_bytes(), &[1]].concat(),
        ),
    ];
    for (what, tail) in tails {
        let dir = damaged_copy(template.path(), |d| d.extend_from_slice(&tail));
        opens_with(dir.path(), KEYS, what);
    }
}
