//! What survives a crash, a failing or full disk, and damaged files (RELIABILITY.md): child
//! processes SIGKILLed mid-write, the fault file system's crashes and power cuts, failed
//! syncs, bit flips, torn WALs, and a second writer.

#[path = "../binary/mod.rs"]
mod binary;
#[path = "../crash_harness/mod.rs"]
mod crash_harness;

mod batch_atomic;
mod enospc;
mod fsync_error_is_fatal;
mod kill9_acked;
mod lock_two_writers;
mod point_matrix;
mod power_loss;
mod recovery_crash_first_open;
mod recovery_crash_torn_wal;
mod recovery_time_bounded;
mod sst_bitflip_never_served;
mod stress_expected_state;
mod wal_corruption_failfast;
mod wal_torn_tail_every_offset;

/// The child process the kill tests spawn: this test binary run again as
/// `--exact child_process --ignored` (see `crash_harness::child`).
#[test]
#[ignore = "entry point of the child process the kill tests spawn; does nothing on its own"]
fn child_process() {
    crash_harness::child::main_if_child();
}
