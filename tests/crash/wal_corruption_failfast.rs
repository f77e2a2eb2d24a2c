//! RELIABILITY.md T4: a flipped bit in a WAL record that valid records follow, or at the end
//! of a WAL that is not the newest, fails the open with an error naming the file and the
//! record's offset: no acknowledged write is dropped silently. `lsmdb check` reports the
//! same place and exits 2; `lsmdb repair` salvages every other record, reports what it
//! dropped, and leaves a directory that opens and checks clean.

use std::path::Path;

use crate::binary;
use crate::crash_harness::{files_with_suffix, record_ranges, three_live_wals};
use lsmdb::{Db, Error, Options};
use predicates::str::contains;

fn value(i: usize) -> String {
    format!("value {i} ").repeat(20)
}

/// Flips a bit in record `index` of `wal`; returns the record's offset.
fn flip_record(wal: &Path, index: usize) -> u64 {
    let mut data = std::fs::read(wal).unwrap();
    let (start, end) = record_ranges(&data)[index];
    data[(start + end) / 2] ^= 0x08;
    std::fs::write(wal, data).unwrap();
    start as u64
}

fn open_fails_at(dir: &Path, wal: &Path, offset: u64) {
    match Db::open(dir, Options::default()) {
        Err(Error::Corruption {
            path, offset: at, ..
        }) => {
            assert_eq!((path.as_path(), at), (wal, offset));
        }
        other => panic!(
            "expected corruption in {} at {offset}, got {other:?}",
            wal.display()
        ),
    }
}

/// Checks, repairs, and returns the keys that survived.
fn check_then_repair(dir: &Path, wal: &Path, offset: u64) -> Vec<Vec<u8>> {
    let place = format!("{} at offset {offset}", wal.display());
    binary::lsmdb(dir)
        .arg("check")
        .assert()
        .code(2)
        .stdout(contains(format!("corrupt: {place}")))
        .stderr(contains("lsmdb"));
    binary::lsmdb(dir)
        .arg("repair")
        .assert()
        .success()
        .stdout(contains(format!("dropped: {place}")))
        .stdout(contains("archived:"));
    binary::lsmdb(dir)
        .arg("check")
        .assert()
        .success()
        .stdout(contains("clean"));
    assert!(dir.join("lost").join(wal.file_name().unwrap()).exists());
    let db = Db::open(dir, Options::default()).unwrap();
    db.check().unwrap();
    db.iter().unwrap().map(|kv| kv.unwrap().0).collect()
}

#[test]
fn a_damaged_record_followed_by_valid_ones_fails_the_open_and_repair_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    for i in 0..10 {
        db.put(format!("k{i}"), value(i)).unwrap();
    }
    db.close().unwrap();
    let wal = files_with_suffix(dir.path(), ".wal").remove(0);
    let offset = flip_record(&wal, 4);
    open_fails_at(dir.path(), &wal, offset);
    let keys = check_then_repair(dir.path(), &wal, offset);
    let want: Vec<Vec<u8>> = (0..10)
        .filter(|&i| i != 4)
        .map(|i| format!("k{i}").into_bytes())
        .collect();
    assert_eq!(
        keys, want,
        "repair keeps every intact record and only those"
    );
}

#[test]
fn a_damaged_end_of_an_older_wal_fails_the_open_and_repair_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (_, db, n) = three_live_wals(
        dir.path(),
        |i| format!("k{i:03}"),
        |i| value(i).into_bytes(),
    );
    drop(db);
    let wals = files_with_suffix(dir.path(), ".wal");
    let records = record_ranges(&std::fs::read(&wals[0]).unwrap()).len();
    // The last record of the oldest WAL: a torn tail would be legal only in the newest.
    let offset = flip_record(&wals[0], records - 1);
    open_fails_at(dir.path(), &wals[0], offset);
    let keys = check_then_repair(dir.path(), &wals[0], offset);
    assert_eq!(keys.len(), n - 1);
    assert!(!keys.contains(&format!("k{:03}", records - 1).into_bytes()));
}
