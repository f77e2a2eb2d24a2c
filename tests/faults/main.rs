//! Faults simulated inside this process (RELIABILITY.md T3, T5-T9): the fault file system's
//! crashes at every file operation and power cuts, a full disk, failed syncs, flipped bits
//! and torn WALs, each followed by a reopen that must keep every acknowledged write.
//!
//! None of them spawns a process: the process tests are in tests/crash/.

#[path = "../crash_harness/mod.rs"]
mod crash_harness;

mod background_errors_logged;
mod enospc;
mod fsync_error_is_fatal;
mod point_matrix;
mod power_loss;
mod production_wal;
mod recovery_crash_first_open;
mod recovery_crash_torn_wal;
mod sst_bitflip_never_served;
mod wal_torn_tail_every_offset;
