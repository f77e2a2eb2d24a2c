//! The one-shot commands and `lsmdb bench`, driven through the real binary.

#[path = "../binary/mod.rs"]
mod binary;
#[path = "../crash_harness/mod.rs"]
mod crash_harness;

mod bench;
mod beside_writer;
mod check_repair;
mod commands;
mod size_limits;
