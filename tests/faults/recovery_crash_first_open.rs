//! Regression: a crash during the very first open of a new directory made it unopenable.
//!
//! The first open creates its WAL, then writes the first manifest and points CURRENT at
//! it. A crash in between left a WAL (holding nothing but its header) and no CURRENT, and
//! every later open refused the directory: "CURRENT is missing but the directory holds
//! tables or WALs; run `lsmdb repair`". No write can have been acknowledged before CURRENT
//! exists, so a WAL that holds no record is not data: the open now starts over.

use crate::crash_harness::{crash_during_open, fault_opts};
use lsmdb::fault::FaultFileSystem;
use lsmdb::{Db, SyncMode};

#[test]
fn a_crash_at_any_point_of_the_first_open_leaves_a_directory_that_opens() {
    for power_loss in [false, true] {
        for at in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let fs = FaultFileSystem::new();
            let opts = fault_opts(&fs, SyncMode::Always);
            let crashed = crash_during_open(&fs, dir.path(), &opts, at, power_loss);
            let db = Db::open(dir.path(), opts.clone())
                .unwrap_or_else(|e| panic!("crash at op {at} of the first open: {e}"));
            db.put(b"k", b"v").unwrap();
            db.close().unwrap();
            let db = Db::open(dir.path(), opts).unwrap();
            assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
            if !crashed {
                break;
            }
        }
    }
}

#[test]
fn a_wal_with_records_and_no_current_is_still_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), lsmdb::Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    db.close().unwrap();
    std::fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let err = Db::open(dir.path(), lsmdb::Options::default()).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("lsmdb repair"), "{err}");
}
