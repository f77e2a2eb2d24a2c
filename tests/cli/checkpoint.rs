//! `lsmdb checkpoint DEST` alone: a copy that opens and holds every write, tables
//! hard-linked; refused into a directory that is not empty; beside a lock holder, an error
//! that says how to take it through the server. (Through a running server: tests/http.)

use std::os::unix::fs::MetadataExt;

use crate::binary::lsmdb;
use lsmdb::{Db, Options};
use predicates::prelude::*;

#[test]
fn a_checkpoint_opens_holds_every_write_and_links_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    {
        let db = Db::open(&source, Options::default()).unwrap();
        for i in 0..1000 {
            db.put(format!("flushed{i:04}"), vec![b'x'; 100]).unwrap();
        }
        db.flush().unwrap();
        // Left in the memtable and the WAL: the checkpoint must hold these too.
        // (No delete: a table of tombstones would be compacted away at once, and with it
        // the source's link to the table checked below.)
        db.put(b"in the memtable", b"yes").unwrap();
        db.put(b"flushed0000", b"overwritten").unwrap();
        db.close().unwrap();
    }
    let dest = dir.path().join("copy");
    lsmdb(&source)
        .arg("checkpoint")
        .arg(&dest)
        .assert()
        .success()
        .stdout(
            predicate::str::is_match(r"^checkpoint written to .*copy: 2 tables \(\d+ bytes\)\n$")
                .unwrap(),
        );
    let dump = |dir: &std::path::Path| lsmdb(dir).arg("dump").output().unwrap().stdout;
    let copied = dump(&dest);
    assert_eq!(copied, dump(&source));
    assert_eq!(String::from_utf8_lossy(&copied).lines().count(), 1001);

    // Same file system: the tables are hard links, not copies.
    let table = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "sst"))
        .expect("a table in the checkpoint");
    assert!(
        table.metadata().unwrap().nlink() >= 2,
        "{} was copied",
        table.display()
    );

    // The copy is a database of its own: writes to it leave the source alone.
    lsmdb(&dest)
        .args(["put", "only in the copy", "1"])
        .assert()
        .success();
    lsmdb(&source)
        .args(["get", "only in the copy"])
        .assert()
        .code(1);
}

#[test]
fn a_checkpoint_is_refused_into_a_directory_that_holds_files() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    lsmdb(&source).args(["put", "k", "v"]).assert().success();
    let dest = dir.path().join("busy");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("precious.txt"), "keep me").unwrap();
    lsmdb(&source)
        .arg("checkpoint")
        .arg(&dest)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("exists and is not empty"));
    assert_eq!(
        std::fs::read_to_string(dest.join("precious.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn beside_another_writer_the_error_says_to_go_through_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    let dest = dir.path().with_extension("copy");
    lsmdb(dir.path())
        .arg("checkpoint")
        .arg(&dest)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("LOCK")
                .and(predicate::str::contains(std::process::id().to_string()))
                .and(predicate::str::contains("--connect http://HOST:PORT")),
        );
    assert!(!dest.exists());
}
