//! RELIABILITY.md T12: while a process holds the database, a second writer (another process
//! running `lsmdb put`, or this process opening it) is refused at once with an error that
//! names the lock file and the holder's pid; reads still work beside it. After the holder
//! is SIGKILLed the kernel has released its lock, and the next writer opens normally.

use std::time::{Duration, Instant};

use crate::binary;
use crate::crash_harness::child;
use lsmdb::{Db, Error, Options};
use predicates::str::contains;

#[test]
fn a_second_writer_is_refused_naming_the_lock_and_a_kill_frees_it() {
    let dir = tempfile::tempdir().unwrap();
    binary::lsmdb(dir.path())
        .args(["put", "k", "before"])
        .assert()
        .success();
    let mut holder = child::spawn("hold", dir.path(), 0, &[]);
    holder.wait_for("@ready", Duration::from_secs(60));
    let pid = holder.pid();
    let lock = dir.path().join("LOCK");

    // The lock is a non-blocking flock: the refusal does not wait (the time is printed,
    // not asserted, to show it is far under a second).
    let started = Instant::now();
    binary::lsmdb(dir.path())
        .args(["put", "k", "second writer"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(contains(lock.display().to_string()))
        .stderr(contains(format!("pid {pid}")));
    eprintln!("second writer refused after {:?}", started.elapsed());
    match Db::open(dir.path(), Options::default()) {
        Err(Error::Locked { path, holder_pid }) => {
            assert_eq!(path, lock);
            assert_eq!(holder_pid, Some(pid));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    binary::lsmdb(dir.path())
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("before");

    holder.kill();
    binary::lsmdb(dir.path())
        .args(["put", "k", "after"])
        .assert()
        .success();
    binary::lsmdb(dir.path())
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("after");
}
