//! Options for opening a database, with documented defaults and validation at open.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fs::{FileSystem, OsFileSystem};

/// When a write is acknowledged relative to its WAL record reaching stable storage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// `fdatasync` the WAL before a write returns. Concurrent writers share one sync
    /// (group commit). No acknowledged write is lost on a crash or power loss.
    #[default]
    Always,
    /// Leave the WAL to the OS page cache: a process crash loses nothing, a power loss may
    /// lose a suffix of recent writes (never a hole). Synced by [`crate::Db::sync`] and at close.
    None,
}

impl std::str::FromStr for SyncMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "always" => Ok(SyncMode::Always),
            "none" => Ok(SyncMode::None),
            other => Err(Error::InvalidArgument(format!(
                "unknown sync mode {other:?} (expected \"always\" or \"none\")"
            ))),
        }
    }
}

/// The largest key the engine accepts, in bytes.
pub const MAX_KEY_SIZE: usize = 64 << 10;
/// The largest value the engine accepts, in bytes.
pub const MAX_VALUE_SIZE: usize = 64 << 20;
/// The largest encoded write batch the engine accepts, in bytes.
pub const MAX_BATCH_SIZE: usize = 256 << 20;

/// How a database is opened. `Options::default()` suits most uses; change what you need
/// with the setter named after each field, or by assigning the field:
///
/// ```
/// let opts = lsmdb::Options::default()
///     .sync(lsmdb::SyncMode::None)
///     .write_buffer_size(8 << 20);
/// assert_eq!(opts.write_buffer_size, 8 << 20);
/// ```
///
/// New options may come in later versions, so it cannot be built as a struct literal.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// Create the directory and an empty database if none exists (default true).
    pub create_if_missing: bool,
    /// Durability of acknowledged writes (default [`SyncMode::Always`]).
    pub sync: SyncMode,
    /// Memtable size that triggers a flush to an SSTable (default 32 MiB). Peak memory is
    /// about twice this (a full memtable being flushed while the next one fills) plus the
    /// block cache; larger memtables mean fewer flushes and compactions.
    pub write_buffer_size: usize,
    /// Full memtables that may wait for a flush before writers stall (default 2).
    pub max_immutable_memtables: usize,
    /// Target size of an SSTable data block before checksum (default 4 KiB).
    pub block_size: usize,
    /// Keys between restart points in a data block (default 16).
    pub block_restart_interval: usize,
    /// Bloom filter bits per key; 0 disables filters (default 10, about 1% false positives).
    pub bloom_bits_per_key: u32,
    /// Capacity of the shared data-block cache in bytes (default 32 MiB).
    pub block_cache_bytes: usize,
    /// Size at which compaction starts a new output table (default 64 MiB).
    pub target_file_size: u64,
    /// Number of L0 tables that triggers an L0 -> L1 compaction (default 4).
    pub l0_compaction_trigger: usize,
    /// Number of L0 tables at which each write is delayed by a millisecond (default 20).
    pub l0_slowdown_trigger: usize,
    /// Number of L0 tables at which writes wait for compaction (default 36).
    pub l0_stop_trigger: usize,
    /// The smallest target of the level L0 compacts into (default 256 MiB). Level targets
    /// are dynamic: the bottom level is sized by the data, each level above it by
    /// `level_size_multiplier`, and levels that would be smaller than this stay empty.
    pub max_bytes_for_level_base: u64,
    /// Size ratio between adjacent levels (default 10).
    pub level_size_multiplier: u64,
    /// Bytes awaiting compaction at which writes are delayed (default 64 GiB).
    pub pending_compaction_slowdown_bytes: u64,
    /// Bytes awaiting compaction at which writes wait (default 256 GiB).
    pub pending_compaction_stop_bytes: u64,
    /// Run flushes and compactions on background threads (default true). With false,
    /// flushes still happen (inline) but compaction runs only on [`crate::Db::compact`].
    pub background_compaction: bool,
    /// Every file operation goes through this seam; tests swap in a fault-injecting one.
    pub fs: Arc<dyn FileSystem>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            create_if_missing: true,
            sync: SyncMode::Always,
            write_buffer_size: 32 << 20,
            max_immutable_memtables: 2,
            block_size: 4 << 10,
            block_restart_interval: 16,
            bloom_bits_per_key: 10,
            block_cache_bytes: 32 << 20,
            target_file_size: 64 << 20,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 20,
            l0_stop_trigger: 36,
            max_bytes_for_level_base: 256 << 20,
            level_size_multiplier: 10,
            pending_compaction_slowdown_bytes: 64 << 30,
            pending_compaction_stop_bytes: 256 << 30,
            background_compaction: true,
            fs: Arc::new(OsFileSystem),
        }
    }
}

/// One setter per field, in the builder style: `Options::default().sync(SyncMode::None)`.
/// Also for the other settings structs (`server::Config`).
macro_rules! setters {
    ($type:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        impl $type {
            $(
                #[doc = concat!("Sets [`", stringify!($type), "::", stringify!($field), "`].")]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}
#[cfg(feature = "server")]
pub(crate) use setters;

setters! {
    Options {
        create_if_missing: bool,
        sync: SyncMode,
        write_buffer_size: usize,
        max_immutable_memtables: usize,
        block_size: usize,
        block_restart_interval: usize,
        bloom_bits_per_key: u32,
        block_cache_bytes: usize,
        target_file_size: u64,
        l0_compaction_trigger: usize,
        l0_slowdown_trigger: usize,
        l0_stop_trigger: usize,
        max_bytes_for_level_base: u64,
        level_size_multiplier: u64,
        pending_compaction_slowdown_bytes: u64,
        pending_compaction_stop_bytes: u64,
        background_compaction: bool,
        fs: Arc<dyn FileSystem>,
    }
}

/// Number of levels in the tree: L0 (overlapping flushed tables) and L1..L6 (sorted runs).
pub const NUM_LEVELS: usize = 7;

impl Options {
    /// How the WAL is written, from the memtable size and the sync mode.
    pub(crate) fn wal_log_options(&self) -> crate::fs::LogOptions {
        crate::fs::LogOptions {
            capacity: self.write_buffer_size,
            synced_appends: self.sync == SyncMode::Always,
        }
    }

    /// Checks every option, naming the first one out of range.
    pub fn validate(&self) -> Result<()> {
        fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(Error::InvalidArgument(msg()))
            }
        }
        check(
            (1 << 10..=1 << 30).contains(&self.write_buffer_size),
            || {
                format!(
                    "write_buffer_size must be between 1 KiB and 1 GiB, got {}",
                    self.write_buffer_size
                )
            },
        )?;
        check((1..=16).contains(&self.max_immutable_memtables), || {
            format!(
                "max_immutable_memtables must be between 1 and 16, got {}",
                self.max_immutable_memtables
            )
        })?;
        check((64..=4 << 20).contains(&self.block_size), || {
            format!(
                "block_size must be between 64 B and 4 MiB, got {}",
                self.block_size
            )
        })?;
        check((1..=1024).contains(&self.block_restart_interval), || {
            format!(
                "block_restart_interval must be between 1 and 1024, got {}",
                self.block_restart_interval
            )
        })?;
        check(self.bloom_bits_per_key <= 64, || {
            format!(
                "bloom_bits_per_key must be at most 64, got {}",
                self.bloom_bits_per_key
            )
        })?;
        check(self.target_file_size >= 4 << 10, || {
            format!(
                "target_file_size must be at least 4 KiB, got {}",
                self.target_file_size
            )
        })?;
        check(self.l0_compaction_trigger >= 1, || {
            "l0_compaction_trigger must be at least 1".to_string()
        })?;
        check(
            self.l0_slowdown_trigger >= self.l0_compaction_trigger
                && self.l0_stop_trigger >= self.l0_slowdown_trigger,
            || {
                format!(
                    "L0 triggers must satisfy compaction ({}) <= slowdown ({}) <= stop ({})",
                    self.l0_compaction_trigger, self.l0_slowdown_trigger, self.l0_stop_trigger
                )
            },
        )?;
        check(self.max_bytes_for_level_base >= 4 << 10, || {
            "max_bytes_for_level_base must be at least 4 KiB".to_string()
        })?;
        check((2..=1000).contains(&self.level_size_multiplier), || {
            format!(
                "level_size_multiplier must be between 2 and 1000, got {}",
                self.level_size_multiplier
            )
        })?;
        check(
            self.pending_compaction_stop_bytes >= self.pending_compaction_slowdown_bytes,
            || "pending_compaction_stop_bytes must be >= the slowdown threshold".to_string(),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Options::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_option_is_named() {
        let opts = Options {
            write_buffer_size: 10,
            ..Options::default()
        };
        let err = opts.validate().unwrap_err().to_string();
        assert!(err.contains("write_buffer_size"), "{err}");
        let opts = Options {
            l0_stop_trigger: 2,
            ..Options::default()
        };
        assert!(
            opts.validate()
                .unwrap_err()
                .to_string()
                .contains("L0 triggers")
        );
    }
}
