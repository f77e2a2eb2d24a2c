//! The write-ahead log: every write batch is appended here as one record before it reaches
//! the memtable (docs/FORMAT.md, "WAL records"). One WAL per memtable; a WAL is deleted once
//! its memtable is in a table and the manifest says so.
//!
//! The writer frames each batch and appends it (the write path's group commit, in
//! `db/write.rs`, decides when it is synced); the reader replays a WAL at open, and reads
//! it record by record for `check` and `repair`.

mod reader;

pub(crate) use reader::*;
