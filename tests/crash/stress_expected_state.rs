//! RELIABILITY.md T11: a child process runs several writer threads at once (puts, deletes,
//! batches, flushes, compactions), each owning a range of keys, reading back every write
//! and scanning its range now and then against its own expected state; the parent SIGKILLs
//! it every so often and checks after each reopen that each thread's range holds its state
//! before the cycle plus exactly its acknowledged operations (and perhaps the one in flight).
//!
//! A long run, by script: `LSMDB_CRASH_CYCLES=100 cargo test --release --test crash --
//! --ignored --exact stress_expected_state::stress_with_kills --nocapture`.

use std::time::Duration;

use crate::crash_harness::child::{self, THREADS, partition, stress_ops};
use crate::crash_harness::{Model, Rng, apply, contents, find_prefix};
use lsmdb::Db;

#[test]
#[ignore = "long run by script: LSMDB_CRASH_CYCLES (default 50) cycles"]
fn stress_with_kills() {
    let cycles = child::cycles(50);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(11);
    let mut base = Model::new();
    let mut total = 0;
    for cycle in 0..cycles {
        let seed = 1000 + cycle;
        let mut child = child::spawn("stress", dir.path(), seed, &[]);
        child.wait_for("@ready", Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(rng.range(50, 1500)));
        let lines = child.kill();

        let db = Db::open(dir.path(), child::options()).unwrap();
        let got = contents(&db).unwrap();
        let mut next = Model::new();
        for t in 0..THREADS {
            let acked = lines
                .iter()
                .filter(|l| l.starts_with(&format!("@ack {t} ")))
                .count();
            total += acked;

            let ops = stress_ops(seed, t, acked as u64 + 1);
            let mine = partition(&base, t);
            let k = find_prefix(&partition(&got, t), &mine, &ops, acked, acked + 1)
                .unwrap_or_else(|e| panic!("cycle {cycle} thread {t}: {e}"));
            let mut state = mine;
            for op in &ops[..k] {
                apply(&mut state, op);
            }
            next.extend(state);
        }
        assert_eq!(
            got, next,
            "cycle {cycle}: keys outside every thread's range"
        );
        db.check().unwrap();
        db.close().unwrap();
        base = next;
    }
    eprintln!(
        "stress_expected_state: {cycles} kills, {total} acknowledged operations, 0 mismatches"
    );
}
