//! Issue 13 finding 6: the fault-injecting file system never ran the production WAL. Its
//! `FileSystem` took the trait's default `create_log`/`open_log`, so the power-loss and
//! ENOSPC tests wrote WALs through plain appends, never through the memory-mapped,
//! `fallocate`d log file (src/fs/log_file.rs) every real database uses. Now the fault model
//! sits beneath that log file and the trait has no default.
//!
//! This test fails if the log loses a synced byte: for instance if its sync skipped the
//! mapped path (checked by breaking `LogFile::sync_data` for mapped logs once: every seed
//! then lost synced writes at the power cut).

use crate::crash_harness::fault_opts;
use lsmdb::fault::FaultFileSystem;
use lsmdb::{Db, SyncMode};

fn key(i: u32) -> String {
    format!("key{i:06}")
}

fn value(i: u32) -> Vec<u8> {
    format!("{i}:").repeat(40).into_bytes()
}

/// Writes through several of the log's windows, syncing now and then, cuts the power, and
/// checks that everything up to the last sync came back (and that what came back after it,
/// if anything, is a prefix of the rest).
fn power_cut_after_synced_appends(sync: SyncMode) {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    // A memtable large enough that nothing is flushed: the WAL alone holds the writes.
    let opts = fault_opts(&fs, sync).write_buffer_size(4 << 20);
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut synced = 0;
    for i in 0..4000 {
        db.put(key(i), value(i)).unwrap();
        if i % 700 == 699 {
            db.sync().unwrap();
            synced = i + 1;
        }
    }
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension() == Some("wal".as_ref()))
        .unwrap();
    // The production log reserves its space a window (256 KiB here) ahead of its bytes.
    let size = std::fs::metadata(&wal).unwrap().len();
    assert_eq!(
        size % (256 << 10),
        0,
        "{sync:?}: {size} bytes is not reserved space"
    );
    assert_eq!(db.stats().tables, 0, "{sync:?}: nothing was flushed");

    fs.crash();
    drop(db);
    fs.power_loss().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    let mut present = 0;
    for i in 0..4000 {
        match db.get(key(i)).unwrap() {
            Some(v) => {
                assert_eq!(v, value(i), "{sync:?}: key {i}");
                assert_eq!(present, i, "{sync:?}: key {i} is back after a hole");
                present += 1;
            }
            None => assert!(i >= synced, "{sync:?}: synced key {i} of {synced} was lost"),
        }
    }
    assert!(present >= synced);
    db.check().unwrap();
}

#[test]
fn a_power_cut_keeps_every_byte_the_mapped_wal_synced() {
    power_cut_after_synced_appends(SyncMode::None);
}

#[test]
fn a_power_cut_keeps_every_byte_the_written_wal_synced() {
    power_cut_after_synced_appends(SyncMode::Always);
}
