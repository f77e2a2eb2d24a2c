//! Regression: a crash while recovering from a crash made the directory unopenable.
//!
//! The first crash leaves several live WALs, the newest ending in a torn record (a write
//! cut in half). Recovery replays them, flushes what it replayed to a table and creates a
//! new, empty WAL before it writes the manifest that retires the old ones. The torn tail was
//! left in place, so a second crash after the new WAL existed but before the manifest named
//! it left a torn WAL that was no longer the newest, and every later open failed with
//! "damaged record at the end of a WAL that is not the newest". Recovery now cuts the torn
//! tail off (durably) before it creates a newer WAL.

use std::path::Path;

use crate::crash_harness::{copy_dir, crash_during_open, fault_opts, three_live_wals};
use lsmdb::fault::FaultFileSystem;
use lsmdb::{Db, SyncMode};

fn value(i: u32) -> Vec<u8> {
    format!("{i:04}").repeat(400).into_bytes()
}

/// A directory with three live WALs, the newest ending in a torn write, and the keys whose
/// writes were acknowledged.
fn crashed_directory(dir: &Path) -> u32 {
    let (fs, db, acked) = three_live_wals(dir, |i| format!("k{i:04}"), |i| value(i as u32));
    fs.crash_at_op(fs.ops());
    assert!(db.put(b"torn", value(9999)).is_err());
    drop(db);
    fs.restart();
    acked as u32
}

#[test]
fn a_crash_at_any_point_of_recovery_from_a_torn_wal_still_reopens() {
    let template = tempfile::tempdir().unwrap();
    let acked = crashed_directory(template.path());
    for power_loss in [false, true] {
        for at in 0.. {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(template.path(), dir.path());
            let fs = FaultFileSystem::new();
            let opts = fault_opts(&fs, SyncMode::Always);
            let crashed = crash_during_open(&fs, dir.path(), &opts, at, power_loss);
            let db = Db::open(dir.path(), opts)
                .unwrap_or_else(|e| panic!("crash at recovery op {at}: reopen failed: {e}"));
            for i in 0..acked {
                assert_eq!(
                    db.get(format!("k{i:04}")).unwrap(),
                    Some(value(i)),
                    "crash at recovery op {at}: key {i}"
                );
            }
            assert_eq!(db.get(b"torn").unwrap(), None);
            db.check().unwrap();
            if !crashed {
                break;
            }
        }
    }
}
