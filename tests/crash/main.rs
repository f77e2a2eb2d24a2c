//! Real processes on one database (RELIABILITY.md T1, T2, T4, T11, T12, T14): writers
//! SIGKILLed mid-stream and the reopen checked against what they acknowledged, a second
//! writer refused, and damaged tables and WALs found and salvaged by `lsmdb check` and
//! `lsmdb repair`. The faults simulated in-process are in tests/faults/.
#[path = "../binary/mod.rs"]
mod binary;
#[path = "../crash_harness/mod.rs"]
mod crash_harness;

mod batch_atomic;
mod check_beside_writer;
mod check_repair;
mod kill9_acked;
mod lock_two_writers;
mod operator_mistakes;
mod recovery_time_bounded;
mod stress_expected_state;
mod wal_corruption_failfast;

/// The child process the kill tests spawn: this test binary run again as
/// `--exact child_process --ignored` (see `crash_harness::child`).
#[test]
#[ignore = "entry point of the child process the kill tests spawn; does nothing on its own"]
fn child_process() {
    crash_harness::child::main_if_child();
}
