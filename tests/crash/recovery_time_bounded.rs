//! RELIABILITY.md T14: a child fills the WAL to its cap (the memtable size, 32 MiB by
//! default) under sync `none`, after 0 or several memtables' worth of history flushed to
//! tables, and is SIGKILLed; the parent times the reopen. The time is printed, not asserted
//! (scripts/recovery_time.sh runs it in release); what is asserted is that every write the
//! child made is there. Reopen time should follow the WAL's size, not the history's.

use std::time::{Duration, Instant};

use crate::crash_harness::{child, files_with_suffix};
use lsmdb::{Db, Options};

#[test]
#[ignore = "measurement, by script: scripts/recovery_time.sh"]
fn reopen_after_a_kill_with_a_full_wal() {
    for history in [0, 4] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = child::spawn(
            "fill",
            dir.path(),
            0,
            &[(child::HISTORY, &history.to_string())],
        );
        let full = c.wait_for("@full", Duration::from_secs(600));
        let written: u64 = full["@full ".len()..].parse().unwrap();
        c.kill();
        let wal_bytes: u64 = files_with_suffix(dir.path(), ".wal")
            .iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum();
        let started = Instant::now();
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let took = started.elapsed();
        let stats = db.stats();
        eprintln!(
            "recovery_time_bounded: history {history} memtables ({} tables, {} MiB), WAL {} MiB: reopen took {:.0} ms",
            stats.tables,
            stats.table_bytes >> 20,
            wal_bytes >> 20,
            took.as_secs_f64() * 1000.0
        );
        assert_eq!(db.iter().unwrap().count() as u64, written);
        assert!(db.get(format!("key{:010}", written - 1)).unwrap().is_some());
    }
}
