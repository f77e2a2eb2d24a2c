//! The write-ahead log: every write batch is appended here as one record before it reaches
//! the memtable (docs/FORMAT.md, "WAL records"). One WAL per memtable; a WAL is deleted once
//! its memtable is in a table and the manifest says so.
//!
//! The [`Writer`] frames each batch and appends it (when it is synced is the group commit's
//! business, in `db/write.rs`); [`read`] replays a WAL at open, and reads it record by
//! record for `check` and `repair`.

// A decoder: a damaged length or offset must be an error, never an index panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod reader;
mod writer;

pub(crate) use reader::{OnDamage, Replayed, read};
// The WAL fuzz target (src/fuzzing.rs) also checks bare batch payloads.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use reader::check_batch;
pub(crate) use writer::{SyncHandle, Writer};

use crate::record::{FileKind, Tail};

pub(crate) const WAL_KIND: FileKind = FileKind {
    magic: b"LSMDBWAL",
    version: 1,
    name: "WAL",
    // A crash while appending may leave anything in the unsynced tail.
    tail: Tail::AnyDamage,
};
