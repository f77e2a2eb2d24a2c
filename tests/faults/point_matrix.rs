//! RELIABILITY.md T9: crash at every file operation of a history that goes through the
//! first open, WAL appends and syncs, WAL rotation, flushes, a compaction, manifest edits,
//! reopens (each writes a new manifest and switches CURRENT) and orphan removal. After each
//! crash the directory is reopened, once as it was left (a process crash) and once after a
//! power cut that drops everything not synced, and sometimes the recovery itself is crashed
//! too. Every reopened state must hold every acknowledged write, nothing else but the one
//! write in flight, pass `check()`, and take new writes.

use crate::crash_harness::{
    Mix, Op, Rng, check_prefix, crash_during_open, fault_opts, gen_op, run_until_error, settle,
};
use lsmdb::fault::FaultFileSystem;
use lsmdb::{Db, SyncMode};

/// Writes in groups of eight with a maintenance step after each group.
fn history() -> Vec<Op> {
    let mix = Mix {
        keys: 40,
        max_value: 3000,
        maintenance: 0,
        ..Mix::default()
    };
    let mut rng = Rng::new(9);
    let steps = [
        Op::Flush,
        Op::Flush,
        Op::Compact,
        Op::Reopen,
        Op::Flush,
        Op::Reopen,
    ];
    let mut ops = Vec::new();
    for step in steps {
        for _ in 0..8 {
            ops.push(gen_op(&mut rng, ops.len() as u64, &mix));
        }
        ops.push(step);
    }
    ops
}

/// Crashes the history at operation `at`, then (if `recovery_crash`) the reopen at that
/// operation too, and checks the final reopen.
fn crash_and_check(ops: &[Op], at: u64, power_loss: bool, recovery_crash: Option<u64>) {
    let what =
        format!("crash at op {at}, power loss {power_loss}, recovery crash {recovery_crash:?}");
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let opts = fault_opts(&fs, SyncMode::Always);
    fs.crash_at_op(at);
    let mut db = Db::open(dir.path(), opts.clone()).ok();
    let outcome = run_until_error(&mut db, dir.path(), &opts, ops);
    let finished = outcome.acked == ops.len() && !fs.has_crashed();
    drop(db);
    settle(&fs, power_loss);
    if let Some(r) = recovery_crash {
        crash_during_open(&fs, dir.path(), &opts, r, power_loss);
    }
    let db = Db::open(dir.path(), opts.clone()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    let hi = if finished {
        outcome.acked
    } else {
        outcome.acked + 1
    };
    check_prefix(&db, ops, outcome.acked, hi, &what);
    db.check()
        .unwrap_or_else(|e| panic!("{what}: check after reopen: {e}"));
    db.put(b"after", b"crash")
        .unwrap_or_else(|e| panic!("{what}: write after reopen: {e}"));
    db.close().unwrap();
    let db = Db::open(dir.path(), opts).unwrap();
    assert_eq!(db.get(b"after").unwrap().as_deref(), Some(&b"crash"[..]));
}

/// How many file operations the whole history performs.
fn total_ops(ops: &[Op]) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let opts = fault_opts(&fs, SyncMode::Always);
    let mut db = Some(Db::open(dir.path(), opts.clone()).unwrap());
    let outcome = run_until_error(&mut db, dir.path(), &opts, ops);
    assert_eq!(outcome.acked, ops.len(), "the history runs cleanly");
    db.take().unwrap().close().unwrap();
    fs.ops()
}

#[test]
fn every_crash_point_reopens_with_every_acknowledged_write() {
    let ops = history();
    let total = total_ops(&ops);
    assert!(total > 100, "the history touches files {total} times");
    for at in 0..total {
        crash_and_check(&ops, at, false, None);
        crash_and_check(&ops, at, true, None);
        // A crash in the middle of recovering from the crash.
        crash_and_check(&ops, at, true, Some(at % 23));
    }
}
