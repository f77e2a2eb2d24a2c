//! Real processes on one database (RELIABILITY.md T1, T2, T4, T11, T12, T14): writers
//! SIGKILLed mid-stream and the reopen checked against what they acknowledged, a second
//! writer refused, and damaged tables and WALs found and salvaged by `lsmdb check` and
//! `lsmdb repair`. The faults simulated in-process are in tests/faults/.
//!
//! Each of these tests hands a directory from this process to a child or back, and they
//! run one at a time ([`one_at_a_time`]): a child holds copies of the parent's descriptors,
//! the LOCK file's among them, from the fork until its exec, so a writer that opens a
//! directory while another test is spawning a child can be refused as if another writer
//! held it (the flock lives while any copy of its descriptor does).

use std::sync::{Mutex, MutexGuard, PoisonError};

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

/// Held for the whole of every test here; see the module doc for why they cannot overlap.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    // A test that failed while holding it must not fail the ones after it.
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The child process the kill tests spawn: this test binary run again as
/// `--exact child_process --ignored` (see `crash_harness::child`).
#[test]
#[ignore = "entry point of the child process the kill tests spawn; does nothing on its own"]
fn child_process() {
    crash_harness::child::main_if_child();
}
