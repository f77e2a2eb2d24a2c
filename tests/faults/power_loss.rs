//! RELIABILITY.md T6: random histories of puts, deletes, batches, flushes, compactions,
//! syncs and reopens, with background flushes and compactions running, cut by a power loss
//! at a random file operation. The fault file system drops every byte not synced and every
//! directory change not synced. After the reopen, under sync `always` every acknowledged
//! write is there; under sync `none` the database holds a prefix of the history that
//! includes everything before the last successful sync, flush, compaction or reopen: what
//! is lost is a suffix, never a hole.

use crate::crash_harness::{Mix, Rng, check_prefix, fault_opts, gen_ops, run_until_error};
use lsmdb::fault::FaultFileSystem;
use lsmdb::{Db, SyncMode};

fn power_cut(seed: u64) {
    let mut rng = Rng::new(seed);
    let sync = if seed.is_multiple_of(2) {
        SyncMode::Always
    } else {
        SyncMode::None
    };
    let mix = Mix {
        keys: 100,
        max_value: 4000,
        ..Mix::default()
    };
    let ops = gen_ops(seed, rng.range(20, 200), &mix);
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let opts = fault_opts(&fs, sync)
        .background_compaction(true)
        .l0_compaction_trigger(2);
    fs.crash_at_op(rng.range(0, 400));
    let mut db = Db::open(dir.path(), opts.clone()).ok();
    let outcome = run_until_error(&mut db, dir.path(), &opts, &ops);
    // A history that ends before the chosen operation is cut at its end.
    let crashed_in_op = fs.has_crashed() || outcome.acked < ops.len();
    fs.crash();
    drop(db);
    fs.power_loss().unwrap();
    let what = format!(
        "seed {seed} ({sync:?}, {} of {} ops acked)",
        outcome.acked,
        ops.len()
    );
    let db = Db::open(dir.path(), opts).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
    let hi = outcome.acked + usize::from(crashed_in_op);
    check_prefix(&db, &ops, outcome.durable, hi, &what);
    db.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
}

#[test]
fn a_power_cut_loses_nothing_synced_and_only_a_suffix_of_the_rest() {
    for seed in 0..200 {
        power_cut(seed);
    }
}

#[test]
#[ignore = "long run: cargo test --release --test faults -- --ignored power_loss::"]
fn a_power_cut_loses_nothing_synced_long() {
    for seed in 1000..3000 {
        power_cut(seed);
    }
}
