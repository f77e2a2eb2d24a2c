//! Reads work while another process holds the write lock; writes are refused with the lock
//! error. The writer here is this test process (a flock conflicts between processes), busy
//! flushing and compacting while `lsmdb get` and `lsmdb range` run beside it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::binary::lsmdb;
use lsmdb::{Db, Options, SyncMode};
use predicates::prelude::*;

#[test]
fn get_returns_the_latest_acknowledged_value_while_a_writer_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"greeting", b"hello").unwrap();
    lsmdb(dir.path())
        .args(["get", "greeting"])
        .assert()
        .success()
        .stdout("hello");
    db.put(b"greeting", b"hello again").unwrap();
    db.flush().unwrap();
    db.put(b"greeting", b"third").unwrap();
    lsmdb(dir.path())
        .args(["get", "greeting"])
        .assert()
        .success()
        .stdout("third");
    db.delete(b"greeting").unwrap();
    lsmdb(dir.path()).args(["get", "greeting"]).assert().code(1);

    let pid = std::process::id().to_string();
    for args in [vec!["put", "k", "v"], vec!["delete", "k"], vec!["compact"]] {
        lsmdb(dir.path())
            .args(&args)
            .timeout(std::time::Duration::from_secs(5))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("LOCK").and(predicate::str::contains(pid.as_str())));
    }
    // The refused writer changed nothing.
    assert_eq!(db.get(b"k").unwrap(), None);
}

#[test]
fn reads_stay_correct_while_the_writer_flushes_and_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .write_buffer_size(32 << 10)
        .target_file_size(32 << 10)
        .max_bytes_for_level_base(128 << 10)
        .sync(SyncMode::None);
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    // Key "counter" always holds the number of the last completed round; "round-N" keys
    // are written before it, so a reader that sees counter = N must see round-N too.
    let done = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, done, acked) = (Arc::clone(&db), Arc::clone(&done), Arc::clone(&acked));
        std::thread::spawn(move || {
            let mut round = 0u64;
            while !done.load(Ordering::Relaxed) {
                round += 1;
                for i in 0..50 {
                    db.put(format!("filler-{round}-{i}"), [b'x'; 200]).unwrap();
                }
                db.put(format!("round-{round}"), round.to_string()).unwrap();
                db.put("counter", round.to_string()).unwrap();
                acked.store(round, Ordering::Release);
            }
        })
    };
    // "counter" exists once the first round is done; on a loaded machine the writer thread
    // may not even have started when the first reader would run.
    let started = std::time::Instant::now();
    while acked.load(Ordering::Acquire) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the writer made no round"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    for _ in 0..15 {
        let before = acked.load(Ordering::Acquire);
        let out = lsmdb(dir.path()).args(["get", "counter"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let seen: u64 = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            seen >= before,
            "saw round {seen} after round {before} was acknowledged"
        );
        lsmdb(dir.path())
            .args(["get", &format!("round-{seen}")])
            .assert()
            .success()
            .stdout(seen.to_string());
        lsmdb(dir.path())
            .args(["range", "round-", "round.", "--limit", "3"])
            .assert()
            .success();
    }
    done.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let stats = db.stats();
    assert!(
        stats.flushes > 0,
        "the writer should have flushed while readers ran: {stats:?}"
    );
}
