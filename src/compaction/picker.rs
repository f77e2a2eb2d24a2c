//! Leveled compaction policy, in the manner of LevelDB and RocksDB.
//!
//! Each level gets a score: L0 by table count against `l0_compaction_trigger` (its tables
//! overlap, so every one costs a read), deeper levels by bytes against their budget
//! (`max_bytes_for_level_base * level_size_multiplier^(n-1)`). The level with the highest
//! score of at least 1 is compacted into the next one:
//! - L0: every L0 table plus the L1 tables they overlap;
//! - Ln: one table, taken round-robin after the level's compaction pointer, plus the
//!   overlapping tables of Ln+1.
//!
//! A single input table with nothing to merge below it moves down by a manifest edit alone.

use std::sync::Arc;

use super::Compaction;
use crate::options::{NUM_LEVELS, Options};
use crate::version::Version;

/// A level's score; compaction is due at 1.0 or more.
pub(crate) fn level_score(version: &Version, opts: &Options, level: usize) -> f64 {
    if level == 0 {
        version.levels[0].len() as f64 / opts.l0_compaction_trigger as f64
    } else {
        version.level_bytes(level) as f64 / opts.max_bytes_for_level(level) as f64
    }
}

/// Bytes that compaction must rewrite to bring every level within its budget (an estimate
/// in the manner of RocksDB's pending-compaction-bytes, used for backpressure and stats).
pub(crate) fn pending_compaction_bytes(version: &Version, opts: &Options) -> u64 {
    let mut pending = 0;
    if version.levels[0].len() >= opts.l0_compaction_trigger {
        pending += version.level_bytes(0) + version.level_bytes(1);
    }
    for level in 1..NUM_LEVELS - 1 {
        let bytes = version.level_bytes(level);
        let budget = opts.max_bytes_for_level(level);
        if bytes > budget {
            let excess = bytes - budget;
            // Each excess byte is merged with about `multiplier` bytes of the next level.
            pending += excess.saturating_mul(opts.level_size_multiplier + 1);
        }
    }
    pending
}

/// The compaction due next, if any.
pub(crate) fn pick(
    version: &Arc<Version>,
    opts: &Options,
    pointers: &dyn Fn(usize) -> Vec<u8>,
) -> Option<Compaction> {
    let (level, score) = (0..NUM_LEVELS - 1)
        .map(|l| (l, level_score(version, opts, l)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    if score < 1.0 {
        return None;
    }
    let inputs = if level == 0 {
        version.levels[0].clone()
    } else {
        let pointer = pointers(level);
        let files = &version.levels[level];
        let next = files
            .iter()
            .find(|f| pointer.is_empty() || f.largest_user_key() > pointer.as_slice())
            .or_else(|| files.first())?;
        vec![Arc::clone(next)]
    };
    Some(Compaction::new(
        Arc::clone(version),
        level,
        level + 1,
        inputs,
        opts,
    ))
}

/// A compaction of every table into one sorted run on the deepest level in use (at least
/// L1): what `lsmdb compact` runs. Tombstones and overwritten versions go, since nothing
/// lies below the output.
pub(crate) fn full(version: &Arc<Version>, opts: &Options) -> Option<Compaction> {
    if version.num_files() == 0 {
        return None;
    }
    let output_level = (1..NUM_LEVELS)
        .rev()
        .find(|&l| !version.levels[l].is_empty())
        .unwrap_or(1);
    let inputs = version.levels[..=output_level]
        .iter()
        .enumerate()
        .flat_map(|(level, files)| files.iter().map(move |f| (level, Arc::clone(f))))
        .collect();
    Some(Compaction {
        version: Arc::clone(version),
        level: 0,
        output_level,
        inputs,
        grandparents: Vec::new(),
        trivial_move: false,
        target_file_size: opts.target_file_size,
    })
}
