//! The engine through its public API alone: its contract, compaction, a large data set, the
//! model test against a `BTreeMap`, and FORMAT.md's worked example.

mod basics;
mod compaction;
mod format_examples;
mod large_data_set;
mod model;
