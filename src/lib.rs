//! lsmdb: an embeddable LSM-tree key-value store.
//!
//! Keys and values are arbitrary bytes. Writes go to a checksummed write-ahead log and a
//! memtable; full memtables are flushed to sorted tables (SSTables) that background
//! compaction merges level by level. Reads see a consistent snapshot. See
//! `docs/ARCHITECTURE.md` for how the parts fit and `docs/FORMAT.md` for every byte on disk.
//!
//! ```
//! # fn main() -> lsmdb::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = lsmdb::Db::open(dir.path(), lsmdb::Options::default())?;
//! let mut batch = lsmdb::WriteBatch::new();
//! batch.put(b"a", b"1").put(b"b", b"2").delete(b"c");
//! db.write(&batch)?;
//! assert_eq!(db.get(b"a")?.as_deref(), Some(&b"1"[..]));
//! let keys: Vec<Vec<u8>> = db.range(b"a", b"z")?.map(|kv| kv.map(|(k, _)| k)).collect::<Result<_, _>>()?;
//! assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec()]);
//! # Ok(())
//! # }
//! ```
//!
//! With the feature `server` (on by default, with the binary's), [`server`] serves a `Db`
//! over the HTTP API that `lsmdb serve` serves:
//!
//! ```
//! # #[cfg(feature = "server")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let db = lsmdb::Db::open(dir.path(), lsmdb::Options::default())?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! let running = lsmdb::server::start(db, listener, lsmdb::server::Config::default())?;
//! println!("serving on http://{}", running.local_addr());
//! running.shutdown(std::time::Duration::from_secs(10))?; // answers what is in flight, closes the Db
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "server"))]
//! # fn main() {}
//! ```

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod batch;
mod bloom;
mod check;
#[cfg(feature = "cluster")]
pub mod cluster;
mod coding;
mod compaction;
mod db;
mod error;
#[cfg(any(test, feature = "test-util"))]
pub mod fault;
mod filename;
pub mod fs;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod iter;
mod key;
mod lock;
mod manifest;
mod memtable;
mod options;
mod record;
mod repair;
#[cfg(feature = "server")]
pub mod server;
mod sstable;
mod version;
mod wal;

pub use batch::WriteBatch;
pub use check::{DirCheck, Problem, check_dir};
pub use db::{CacheStats, CheckReport, Db, DbIterator, LevelStats, Snapshot, Stats};
pub use error::{Error, Result};
pub use options::{MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE, NUM_LEVELS, Options, SyncMode};
pub use repair::{RepairReport, repair_dir};
