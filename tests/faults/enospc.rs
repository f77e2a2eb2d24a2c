//! RELIABILITY.md T8: the disk fills up during a flush, a compaction, a manifest write or
//! a WAL append. Each gives a clean error or a stall, never corruption: a flush waits and
//! retries, a compaction returns `StorageFull` and leaves its inputs in place, and a failed
//! manifest or WAL write stops writes (it may have left part of a record behind). Once
//! space is freed the engine works again (after a reopen where writes stopped) with every
//! acknowledged write.
//!
//! A bug this pinned: when a compaction output failed while being finished (its last write
//! or its sync), the partial table was left on disk, outside both the live set and the list
//! of outputs to clean up. Under a full disk the background thread retries the compaction,
//! so each retry leaked another partial table, using up what space was left.

use std::time::{Duration, Instant};

use crate::crash_harness::fault_opts;
use lsmdb::fault::{FaultFileSystem, Target};
use lsmdb::{Db, Error, SyncMode};

fn value(i: u32) -> Vec<u8> {
    format!("{i:05}").repeat(60).into_bytes()
}

fn assert_all(db: &Db, n: u32) {
    for i in 0..n {
        assert_eq!(
            db.get(format!("k{i:05}")).unwrap(),
            Some(value(i)),
            "key {i}"
        );
    }
}

fn is_no_space(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull)
}

#[test]
fn a_full_disk_stalls_flushes_until_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let opts = fault_opts(&fs, SyncMode::Always);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    fs.no_space_after(Some(Target::Table), 1000);
    // Enough to fill and freeze a memtable whose flush then fails.
    let n = 400;
    for i in 0..n {
        db.put(format!("k{i:05}"), value(i)).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.stats().immutable_memtables == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(db.stats().immutable_memtables > 0, "a flush is waiting");
    assert_eq!(db.stats().writes_stopped, None, "a full disk is not fatal");
    assert_all(&db, n);
    fs.free_space();
    db.flush().unwrap();
    assert_eq!(db.stats().immutable_memtables, 0);
    assert!(db.stats().tables > 0);
    db.put(b"more", b"writes").unwrap();
    assert_all(&db, n);
    db.check().unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    assert_all(&db, n);
}

#[test]
fn a_full_disk_fails_a_compaction_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let opts = fault_opts(&fs, SyncMode::Always);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let n = 600;
    for i in 0..n {
        db.put(format!("k{i:05}"), value(i)).unwrap();
        if i % 150 == 149 {
            db.flush().unwrap();
        }
    }
    db.flush().unwrap();
    let tables = db.stats().tables;
    fs.no_space_after(Some(Target::Table), 20_000);
    let err = db.compact().unwrap_err();
    assert!(is_no_space(&err), "{err}");
    assert_eq!(db.stats().writes_stopped, None);
    assert_eq!(db.stats().tables, tables, "the inputs stay");
    assert_all(&db, n);
    db.put(b"still", b"writable").unwrap();
    // No partial output was left behind: only live tables are on disk.
    assert_eq!(sst_files(dir.path()), tables);
    fs.free_space();
    db.compact().unwrap();
    assert_all(&db, n);
    db.check().unwrap();
    let tables = db.stats().tables;
    db.close().unwrap();
    assert_eq!(sst_files(dir.path()), tables);
}

fn sst_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("sst".as_ref()))
        .count()
}

/// A write to a file that the engine cannot take back (the manifest, the WAL) stops writes;
/// a reopen after space is freed recovers every acknowledged write.
fn full_disk_stops_writes(target: Target, action: impl Fn(&Db) -> lsmdb::Result<()>) {
    for budget in [0, 5, 40] {
        let what = format!("{target:?} with {budget} bytes left");
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFileSystem::new();
        let opts = fault_opts(&fs, SyncMode::Always);
        let db = Db::open(dir.path(), opts.clone()).unwrap();
        let n = 200;
        for i in 0..n {
            db.put(format!("k{i:05}"), value(i)).unwrap();
        }
        fs.no_space_after(Some(target), budget);
        let err = action(&db).expect_err(&what);
        assert!(
            err.to_string().contains("No space left on device"),
            "{what}: {err}"
        );
        fs.free_space();
        assert!(
            matches!(db.put(b"later", b"x"), Err(Error::WritesStopped(_))),
            "{what}"
        );
        assert_all(&db, n);
        drop(db);
        let db = Db::open(dir.path(), opts).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        assert_all(&db, n);
        db.check().unwrap();
        db.put(b"after", b"reopen").unwrap();
        db.flush().unwrap();
    }
}

#[test]
fn a_full_disk_during_a_manifest_write_stops_writes_until_a_reopen() {
    full_disk_stops_writes(Target::Manifest, Db::flush);
}

/// The WAL is the production log file, which reserves its space a window ahead (64 KiB
/// here): a full disk refuses the reservation a value larger than the window needs.
#[test]
fn a_full_disk_during_a_wal_append_stops_writes_until_a_reopen() {
    full_disk_stops_writes(Target::Wal, |db| db.put(b"big", vec![7u8; 100 << 10]));
}
