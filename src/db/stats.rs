//! Counters kept as the engine works, and the [`Stats`] snapshot built from them.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::DbInner;
use crate::options::NUM_LEVELS;

#[derive(Default)]
pub(crate) struct Counters {
    pub writes: AtomicU64,
    pub gets: AtomicU64,
    pub user_bytes: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_syncs: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub trivial_moves: AtomicU64,
    pub compaction_bytes_read: AtomicU64,
    pub compaction_bytes_written: AtomicU64,
    pub compaction_entries_dropped: AtomicU64,
    pub stall_slowdowns: AtomicU64,
    pub stall_stops: AtomicU64,
    pub stall_micros: AtomicU64,
    pub background_errors: AtomicU64,
}

/// One level of the tree.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LevelStats {
    pub level: usize,
    pub tables: usize,
    pub bytes: u64,
    pub entries: u64,
    pub deletions: u64,
    /// Bytes over the level's budget (or L0 tables over the trigger); compaction is due at 1.
    pub score: f64,
}

/// The block cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    pub capacity_bytes: u64,
    pub usage_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub hit_rate: f64,
}

/// A snapshot of the engine's figures ([`crate::Db::stats`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub read_only: bool,
    /// Why writes are refused, if an earlier failure stopped them.
    pub writes_stopped: Option<String>,
    /// Why reads of some keys fail for a reason that is not the caller's (a table that
    /// cannot be read, or is damaged), if they do: set by the read that failed, cleared when
    /// a read of that table succeeds again or compaction replaces it.
    pub reads_failing: Option<String>,
    pub levels: Vec<LevelStats>,
    pub tables: usize,
    pub table_bytes: u64,
    pub memtable_bytes: u64,
    pub immutable_memtables: usize,
    pub last_sequence: u64,
    pub block_cache: CacheStats,
    /// Memory held by open tables' indexes and filters.
    pub table_index_filter_bytes: u64,
    pub writes: u64,
    pub gets: u64,
    /// Bytes of keys and values written by users.
    pub user_bytes_written: u64,
    pub wal_bytes_written: u64,
    pub wal_syncs: u64,
    pub flushes: u64,
    pub flush_bytes_written: u64,
    pub compactions: u64,
    pub trivial_moves: u64,
    pub compaction_bytes_read: u64,
    pub compaction_bytes_written: u64,
    pub compaction_entries_dropped: u64,
    /// (WAL + flush + compaction bytes written) / user bytes written.
    pub write_amplification: f64,
    pub pending_compaction_bytes: u64,
    /// Whether the compaction policy has work to do (or is doing it) right now.
    pub compaction_due: bool,
    pub stall_slowdowns: u64,
    pub stall_stops: u64,
    pub stall_micros: u64,
    pub background_errors: u64,
    pub obsolete_file_delete_failures: u64,
    /// Tables compacted away but still held by an open iterator; deleted when it is dropped.
    pub obsolete_tables_held: u64,
}

impl DbInner {
    pub(crate) fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let sv = self.sv.load_full();
        let version = &sv.version;
        let mut levels = Vec::with_capacity(NUM_LEVELS);
        let mut pinned = 0u64;
        let targets = crate::compaction::picker::level_targets(version, &self.opts);
        for (level, files) in version.levels.iter().enumerate() {
            for f in files {
                if let Ok(t) = f.table() {
                    pinned += t.pinned_memory() as u64;
                }
            }
            levels.push(LevelStats {
                level,
                tables: files.len(),
                bytes: files.iter().map(|f| f.size).sum(),
                entries: files.iter().map(|f| f.entries).sum(),
                deletions: files.iter().map(|f| f.deletions).sum(),
                score: crate::compaction::picker::level_score(version, &self.opts, &targets, level),
            });
        }
        let hits = self.table_ctx.cache.hits();
        let misses = self.table_ctx.cache.misses();
        let user = get(&c.user_bytes);
        let written = get(&c.wal_bytes) + get(&c.flush_bytes) + get(&c.compaction_bytes_written);
        Stats {
            read_only: self.mode != super::Mode::ReadWrite,
            writes_stopped: self.stopped.lock().clone(),
            reads_failing: self.table_ctx.reads.reason(),
            tables: version.num_files(),
            table_bytes: version.total_bytes(),
            levels,
            memtable_bytes: std::iter::once(&sv.mem)
                .chain(&sv.imms)
                .map(|m| m.allocated_memory() as u64)
                .sum(),
            immutable_memtables: sv.imms.len(),
            last_sequence: self.visible_seq(),
            block_cache: CacheStats {
                capacity_bytes: self.table_ctx.cache.capacity(),
                usage_bytes: self.table_ctx.cache.usage(),
                hits,
                misses,
                hit_rate: if hits + misses > 0 {
                    hits as f64 / (hits + misses) as f64
                } else {
                    0.0
                },
            },
            table_index_filter_bytes: pinned,
            writes: get(&c.writes),
            gets: get(&c.gets),
            user_bytes_written: user,
            wal_bytes_written: get(&c.wal_bytes),
            wal_syncs: get(&c.wal_syncs),
            flushes: get(&c.flushes),
            flush_bytes_written: get(&c.flush_bytes),
            compactions: get(&c.compactions),
            trivial_moves: get(&c.trivial_moves),
            compaction_bytes_read: get(&c.compaction_bytes_read),
            compaction_bytes_written: get(&c.compaction_bytes_written),
            compaction_entries_dropped: get(&c.compaction_entries_dropped),
            write_amplification: if user > 0 {
                written as f64 / user as f64
            } else {
                0.0
            },
            pending_compaction_bytes: sv.pending_compaction_bytes,
            compaction_due: self.mode == super::Mode::ReadWrite && {
                let versions = self.versions.lock();
                let current = versions.current();
                crate::compaction::picker::pick(&current, &self.opts, &|l| {
                    versions.compact_pointer(l).to_vec()
                })
                .is_some()
            },
            stall_slowdowns: get(&c.stall_slowdowns),
            stall_stops: get(&c.stall_stops),
            stall_micros: get(&c.stall_micros),
            background_errors: get(&c.background_errors),
            obsolete_file_delete_failures: self.table_ctx.delete_failures.load(Ordering::Relaxed),
            obsolete_tables_held: self.table_ctx.obsolete_held.load(Ordering::Relaxed),
        }
    }
}
