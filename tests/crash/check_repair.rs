//! `lsmdb check` passes a clean directory and finds a planted corruption (a flipped bit in
//! a table block) with its file and offset; `lsmdb repair` leaves a clean directory alone,
//! and salvages a damaged one into a directory that checks clean.

use crate::binary;
use crate::crash_harness::files_with_suffix;
use lsmdb::{Db, Options};
use predicates::str::contains;

fn filled(dir: &std::path::Path) {
    let opts = Options::default().block_size(256);
    let db = Db::open(dir, opts).unwrap();
    for i in 0..500 {
        db.put(format!("key{i:04}"), format!("value {i}")).unwrap();
    }
    db.flush().unwrap();
    db.put(b"in the wal", b"too").unwrap();
    db.close().unwrap();
}

#[test]
fn check_passes_a_clean_directory_and_repair_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    binary::lsmdb(dir.path())
        .arg("check")
        .assert()
        .success()
        .stdout(contains(
            "checked 1 tables (500 entries), 1 WALs (1 records)",
        ))
        .stdout(contains("clean"));
    let json = binary::lsmdb(dir.path())
        .args(["check", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(v["problems"], serde_json::json!([]));
    binary::lsmdb(dir.path())
        .arg("repair")
        .assert()
        .success()
        .stdout(contains("nothing was changed"));
    assert!(!dir.path().join("lost").exists());
}

#[test]
fn check_finds_a_flipped_bit_in_a_table_and_repair_salvages_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    filled(dir.path());
    let table = files_with_suffix(dir.path(), ".sst").remove(0);
    let mut data = std::fs::read(&table).unwrap();
    data[1000] ^= 0x01; // inside the fourth or so 256-byte data block
    std::fs::write(&table, data).unwrap();
    let out = binary::lsmdb(dir.path()).arg("check").assert().code(2);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        stdout.contains(&format!("corrupt: {} at offset", table.display())),
        "{stdout}"
    );
    assert!(stdout.contains("block checksum mismatch"), "{stdout}");
    assert!(stdout.contains("1 problem"), "{stdout}");
    binary::lsmdb(dir.path())
        .arg("repair")
        .assert()
        .success()
        .stdout(contains(format!("dropped: {} at offset", table.display())));
    binary::lsmdb(dir.path()).arg("check").assert().success();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let keys = db.iter().unwrap().count();
    assert!(
        (480..500).contains(&keys),
        "one block's keys are lost, the rest kept: {keys}"
    );
    assert_eq!(db.get(b"in the wal").unwrap().as_deref(), Some(&b"too"[..]));
    assert_eq!(
        db.get(b"key0499").unwrap().as_deref(),
        Some(&b"value 499"[..])
    );
}

#[test]
fn check_of_a_missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    binary::lsmdb(&dir.path().join("nope"))
        .arg("check")
        .assert()
        .code(2)
        .stderr(contains("does not exist"));
}
