//! Issue 13 finding 7: a background compaction failing for lack of space was logged nowhere
//! (only `stats.background_errors` moved), so an operator saw writes stall with no reason.
//! Now each run of failures is one WARN line through the `log` crate (target `lsmdb`) and
//! its recovery one INFO line, however many retries there were in between.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::crash_harness::fault_opts;
use lsmdb::fault::{FaultFileSystem, Target};
use lsmdb::{Db, SyncMode};

/// Every record the library logs about this test's database, kept for the test to read.
/// The logger is process-wide and other tests in this binary fill disks too, so records
/// that do not name this test's directory (every engine record names its directory) are
/// left out.
struct Captured(Mutex<Vec<(log::Level, String)>>);

static WATCHED_DIR: OnceLock<String> = OnceLock::new();

impl log::Log for Captured {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.target().starts_with("lsmdb")
    }
    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = record.args().to_string();
        if WATCHED_DIR
            .get()
            .is_some_and(|dir| line.contains(dir.as_str()))
        {
            self.0.lock().unwrap().push((record.level(), line));
        }
    }
    fn flush(&self) {}
}

static CAPTURED: Captured = Captured(Mutex::new(Vec::new()));

fn lines(level: log::Level) -> Vec<String> {
    let all = CAPTURED.0.lock().unwrap();
    all.iter()
        .filter(|(l, _)| *l == level)
        .map(|(_, line)| line.clone())
        .collect()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_compaction_out_of_space_is_logged_once_and_its_recovery_once() {
    log::set_logger(&CAPTURED).unwrap();
    log::set_max_level(log::LevelFilter::Info);
    let dir = tempfile::tempdir().unwrap();
    WATCHED_DIR.set(dir.path().display().to_string()).unwrap();
    let fs = FaultFileSystem::new();
    // Three L0 tables, written while no compaction is due.
    let opts = fault_opts(&fs, SyncMode::None).background_compaction(true);
    let db = Db::open(dir.path(), opts.clone().l0_compaction_trigger(10)).unwrap();
    let value = vec![b'v'; 300];
    for i in 0..600u32 {
        db.put(format!("key{i:05}"), &value).unwrap();
        if i % 200 == 199 {
            db.flush().unwrap();
        }
    }
    db.close().unwrap();
    // Then the disk is full, and the reopened database wants to compact them.
    fs.no_space_after(Some(Target::Table), 0);
    let db = Db::open(dir.path(), opts.l0_compaction_trigger(2)).unwrap();
    wait_until("three failed compactions", || {
        db.stats().background_errors >= 3
    });
    let warnings = lines(log::Level::Warn);
    let all = CAPTURED.0.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "one line per run of failures: {all:?}");
    assert!(
        warnings[0].contains("compaction") && warnings[0].contains("No space left on device"),
        "{warnings:?}"
    );
    assert!(lines(log::Level::Info).is_empty());

    fs.free_space();
    wait_until("the compaction to succeed", || db.stats().compactions > 0);
    wait_until("the recovery line", || !lines(log::Level::Info).is_empty());
    let infos = lines(log::Level::Info);
    assert_eq!(infos.len(), 1, "{infos:?}");
    assert!(
        infos[0].contains("compaction") && infos[0].contains("works again"),
        "{infos:?}"
    );
    assert_eq!(lines(log::Level::Warn).len(), 1);
    assert!(lines(log::Level::Error).is_empty(), "writes never stopped");
    db.close().unwrap();
}
