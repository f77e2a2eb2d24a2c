//! The engine through its public API alone: its contract, compaction, a large data set, the
//! model test against a `BTreeMap`, FORMAT.md's worked example, and the committed format-v1
//! fixture.

mod basics;
mod compaction;
mod format_examples;
mod format_fixture;
mod large_data_set;
mod model;
