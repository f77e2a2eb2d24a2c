//! RELIABILITY.md T16, issue 13 finding 4: `lsmdb check` beside a live writer reported
//! false damage (a WAL "No such file or directory", a table "not in the manifest (left by a
//! crash)", "a write the crash interrupted") in 2 of 99 runs beside a server taking batches:
//! it listed the directory, then read files the writer retired meanwhile, and read the
//! newest WAL while a record was being appended to it.
//!
//! A child process writes batches with a tiny memtable, so it flushes, compacts and rotates
//! its WAL every few milliseconds; the check (the library call `lsmdb check` makes, and the
//! binary now and then) must come out clean every time.

use crate::binary;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lsmdb::{Db, Options, SyncMode, WriteBatch};

const CHILD_DIR: &str = "LSMDB_CHECK_BESIDE_WRITER_DIR";

/// Options of the busy writer: tiny memtables and tables, two L0 tables trigger a compaction.
fn busy_options() -> Options {
    Options::default()
        .write_buffer_size(16 << 10)
        .target_file_size(16 << 10)
        .max_bytes_for_level_base(64 << 10)
        .l0_compaction_trigger(2)
        .sync(SyncMode::None)
}

/// Starts this test binary again as the writer child; returns once it has opened the
/// database.
fn spawn_writer(dir: &Path) -> std::process::Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "check_beside_writer::writer_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == "@ready" => break,
            Some(Ok(_)) => {}
            other => panic!("the writer did not start: {other:?}"),
        }
    }
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    child
}

fn table_numbers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.ends_with(".sst"))
        .collect();
    names.sort();
    names
}

fn after_len(dir: &Path) -> usize {
    table_numbers(dir).len()
}

fn checks_beside_a_busy_writer(runs: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = spawn_writer(dir.path());
    // Let it build a tree with a few levels first.
    let deadline = Instant::now() + Duration::from_secs(60);
    while table_numbers(dir.path()).len() < 3 {
        assert!(Instant::now() < deadline, "the writer made no tables");
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = table_numbers(dir.path());
    let started = Instant::now();
    for run in 0..runs {
        let found = lsmdb::check_dir(dir.path(), &Options::default()).unwrap();
        assert!(
            found.is_clean(),
            "check {run} of {runs} beside the writer: {found:#?}"
        );
        assert!(found.checked.tables > 0, "{found:#?}");
        if run % 50 == 0 {
            let out = binary::lsmdb(dir.path()).arg("check").output().unwrap();
            assert!(
                out.status.success(),
                "lsmdb check beside the writer: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    eprintln!(
        "{runs} checks beside the writer in {:?} (tables {} -> {})",
        started.elapsed(),
        before.len(),
        after_len(dir.path())
    );
    let after = table_numbers(dir.path());
    let _ = writer.kill();
    let _ = writer.wait();
    assert_ne!(
        before, after,
        "the writer flushed and compacted during the checks"
    );
    // And the directory the writer left, killed mid-batch, checks clean too.
    assert!(
        lsmdb::check_dir(dir.path(), &Options::default())
            .unwrap()
            .is_clean()
    );
}

#[test]
fn check_beside_a_writer_taking_batches_is_clean_200_times() {
    checks_beside_a_busy_writer(200);
}

#[test]
#[ignore = "long run: cargo test --release --test crash -- --ignored check_beside_a_writer_is_clean_1000_times_long"]
fn check_beside_a_writer_is_clean_1000_times_long() {
    checks_beside_a_busy_writer(1000);
}

#[test]
#[ignore = "entry point of the writer child process; does nothing on its own"]
fn writer_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let db = Db::open(&dir, busy_options()).unwrap();
    eprintln!("@ready");
    // Batches over a fixed set of keys, so compaction keeps the tree (and each check) small.
    for round in 0u64.. {
        let mut batch = WriteBatch::new();
        for i in 0..20 {
            let key = (round * 7919 + i * 104_729) % 20_000;
            batch.put(
                format!("key{key:05}"),
                format!("{round}:{}", "v".repeat(100)),
            );
        }
        db.write(&batch).unwrap();
    }
}
