//! The size limits (`lsmdb::MAX_KEY_SIZE` 64 KiB, `MAX_VALUE_SIZE` 64 MiB, `MAX_BATCH_SIZE`
//! 256 MiB) are enforced before anything is written, with an error that gives the size and
//! the limit: in the library, and through it at the command line (exit 2, one line).

use crate::binary;
use lsmdb::{Db, Error, MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE, Options, WriteBatch};
use predicates::str::contains;

#[test]
fn the_cli_refuses_an_oversized_key_or_value_and_takes_one_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let too_long = "k".repeat(MAX_KEY_SIZE + 1);
    binary::lsmdb(dir.path())
        .args(["put", &too_long, "v"])
        .assert()
        .code(2)
        .stderr(format!(
            "error: put failed: invalid argument: key of {} bytes is over the limit of {MAX_KEY_SIZE} bytes\n",
            MAX_KEY_SIZE + 1
        ));
    let longest = "k".repeat(MAX_KEY_SIZE);
    binary::lsmdb(dir.path())
        .args(["put", &longest, "v"])
        .assert()
        .success();
    binary::lsmdb(dir.path())
        .args(["get", &longest])
        .assert()
        .success()
        .stdout("v");

    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; MAX_VALUE_SIZE + 1]).unwrap();
    binary::lsmdb(dir.path())
        .args(["put", "big", "--value-file"])
        .arg(&big)
        .assert()
        .code(2)
        .stderr(contains(format!(
            "value of {} bytes is over the limit of {MAX_VALUE_SIZE} bytes",
            MAX_VALUE_SIZE + 1
        )));
    binary::lsmdb(dir.path())
        .args(["get", "big"])
        .assert()
        .code(1);
}

#[test]
fn a_batch_with_one_oversized_key_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = format!("a\t1\n{}\t2\n", "k".repeat(MAX_KEY_SIZE + 1));
    binary::lsmdb(dir.path())
        .args(["batch", "-"])
        .write_stdin(input)
        .assert()
        .code(2)
        .stderr(contains("over the limit of 65536 bytes"));
    binary::lsmdb(dir.path())
        .args(["get", "a"])
        .assert()
        .code(1);
}

#[test]
fn the_library_refuses_a_batch_over_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let value = vec![7u8; MAX_VALUE_SIZE];
    let mut batch = WriteBatch::new();
    for i in 0..MAX_BATCH_SIZE / MAX_VALUE_SIZE {
        batch.put(format!("k{i}"), &value);
    }
    match db.write(&batch) {
        Err(Error::InvalidArgument(msg)) => {
            assert!(
                msg.contains(&format!("over the limit of {MAX_BATCH_SIZE} bytes")),
                "{msg}"
            )
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
    assert_eq!(db.get(b"k0").unwrap(), None);
    assert!(matches!(
        db.put(b"k", vec![0u8; MAX_VALUE_SIZE + 1]),
        Err(Error::InvalidArgument(_))
    ));
}
