//! The one-shot commands and `lsmdb bench`, driven through the real binary.

#[path = "../binary/mod.rs"]
mod binary;

mod bench;
mod beside_writer;
mod checkpoint;
mod commands;
mod dump_load;
mod examples;
mod generate;
mod size_limits;
