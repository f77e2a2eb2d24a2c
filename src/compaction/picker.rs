//! Leveled compaction policy with dynamic level targets, in the manner of RocksDB's
//! `level_compaction_dynamic_level_bytes` (its default since 8.4).
//!
//! Levels: L0 holds overlapping flushed tables; L1..L6 are sorted runs. The bottom level
//! (L6) is sized by the data itself and each level above it gets a tenth
//! (`level_size_multiplier`) of the level below. Levels whose target would fall under
//! `max_bytes_for_level_base` are left empty, and L0 compacts straight into the first level
//! in use (the base level). So a small database is L0 plus L6, most data always sits in the
//! bottom level, and the space taken by overwritten versions and tombstones above it stays
//! near a tenth of the data.
//!
//! What runs next, by priority:
//! 1. the level with the highest score of at least 1: L0 by table count against
//!    `l0_compaction_trigger`; a level between base and bottom by bytes against its target;
//!    a level above the base that still holds data (the tree shrank) always;
//!    - L0: every L0 table plus the base-level tables they overlap;
//!    - Ln: one table, round-robin after the level's compaction pointer, plus the
//!      overlapping tables of Ln+1;
//! 2. otherwise a table above the bottom whose entries are at least 30% tombstones, so that
//!    deleted data frees its space without waiting for the level to fill.
//!
//! A single input table with nothing to merge below it moves down by a manifest edit alone.

use std::sync::Arc;

use super::Compaction;
use crate::options::{NUM_LEVELS, Options};
use crate::version::Version;

const BOTTOM: usize = NUM_LEVELS - 1;

/// A table whose tombstones reach this share of its entries is compacted down even when
/// its level is within target.
const TOMBSTONE_RATIO: f64 = 0.3;

/// The size targets of the levels for the data a version holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LevelTargets {
    /// The level L0 compacts into.
    pub base_level: usize,
    /// Target bytes per level; 0 for L0 (sized by count) and for levels above the base.
    pub bytes: [u64; NUM_LEVELS],
}

pub(crate) fn level_targets(version: &Version, opts: &Options) -> LevelTargets {
    let base_bytes = opts.max_bytes_for_level_base;
    let mut bytes = [0u64; NUM_LEVELS];
    let mut size = version.level_bytes(BOTTOM).max(base_bytes);
    bytes[BOTTOM] = size;
    let mut base_level = BOTTOM;
    while base_level > 1 && size / opts.level_size_multiplier >= base_bytes {
        size /= opts.level_size_multiplier;
        base_level -= 1;
        bytes[base_level] = size;
    }
    LevelTargets { base_level, bytes }
}

/// A level's score; compaction is due at 1.0 or more. The bottom level is never due.
pub(crate) fn level_score(
    version: &Version,
    opts: &Options,
    targets: &LevelTargets,
    level: usize,
) -> f64 {
    let bytes = version.level_bytes(level);
    match level {
        0 => version.levels[0].len() as f64 / opts.l0_compaction_trigger as f64,
        BOTTOM => 0.0,
        l if l < targets.base_level => {
            // Data above the base level (left there when the tree was smaller or shrank)
            // moves down.
            if bytes == 0 {
                0.0
            } else {
                1.0 + bytes as f64 / opts.max_bytes_for_level_base as f64
            }
        }
        l => bytes as f64 / targets.bytes[l] as f64,
    }
}

/// Bytes that compaction must rewrite to bring every level within its target (an estimate
/// in the manner of RocksDB's pending-compaction-bytes, used for backpressure and stats).
pub(crate) fn pending_compaction_bytes(version: &Version, opts: &Options) -> u64 {
    let targets = level_targets(version, opts);
    let mut pending = 0;
    if version.levels[0].len() >= opts.l0_compaction_trigger {
        pending += version.level_bytes(0) + version.level_bytes(targets.base_level);
    }
    for level in 1..BOTTOM {
        let bytes = version.level_bytes(level);
        let target = if level < targets.base_level {
            0
        } else {
            targets.bytes[level]
        };
        if bytes > target {
            // Each excess byte is merged with about `multiplier` bytes of the next level.
            pending += (bytes - target).saturating_mul(opts.level_size_multiplier + 1);
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
    let targets = level_targets(version, opts);
    let best = (0..BOTTOM)
        .map(|l| (l, level_score(version, opts, &targets, l)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((level, score)) = best
        && score >= 1.0
    {
        return Some(compaction_of(version, opts, &targets, level, pointers));
    }
    pick_tombstone_heavy(version, opts, &targets)
}

fn output_level(targets: &LevelTargets, level: usize) -> usize {
    if level == 0 {
        targets.base_level
    } else {
        level + 1
    }
}

fn compaction_of(
    version: &Arc<Version>,
    opts: &Options,
    targets: &LevelTargets,
    level: usize,
    pointers: &dyn Fn(usize) -> Vec<u8>,
) -> Compaction {
    let inputs = if level == 0 {
        version.levels[0].clone()
    } else {
        let pointer = pointers(level);
        let files = &version.levels[level];
        let next = files
            .iter()
            .find(|f| pointer.is_empty() || f.largest_user_key() > pointer.as_slice())
            .or_else(|| files.first());
        next.into_iter().cloned().collect()
    };
    Compaction::new(
        Arc::clone(version),
        level,
        output_level(targets, level),
        inputs,
        opts,
    )
}

/// A table above the bottom level whose tombstones are a large share of its entries.
fn pick_tombstone_heavy(
    version: &Arc<Version>,
    opts: &Options,
    targets: &LevelTargets,
) -> Option<Compaction> {
    for level in 0..BOTTOM {
        let Some(heavy) = version.levels[level]
            .iter()
            .find(|f| f.entries > 0 && f.deletions as f64 >= TOMBSTONE_RATIO * f.entries as f64)
        else {
            continue;
        };
        let inputs = if level == 0 {
            version.levels[0].clone()
        } else {
            vec![Arc::clone(heavy)]
        };
        let mut c = Compaction::new(
            Arc::clone(version),
            level,
            output_level(targets, level),
            inputs,
            opts,
        );
        // Moving the table down without merging would carry its tombstones along.
        c.trivial_move = false;
        return Some(c);
    }
    None
}

/// A compaction of every table into one sorted run on the bottom level: what `lsmdb
/// compact` runs. Tombstones and overwritten versions go, since nothing lies below.
pub(crate) fn full(version: &Arc<Version>, opts: &Options) -> Option<Compaction> {
    if version.num_files() == 0 {
        return None;
    }
    let inputs = version
        .levels
        .iter()
        .enumerate()
        .flat_map(|(level, files)| files.iter().map(move |f| (level, Arc::clone(f))))
        .collect();
    Some(Compaction {
        version: Arc::clone(version),
        level: 0,
        output_level: BOTTOM,
        inputs,
        grandparents: Vec::new(),
        trivial_move: false,
        target_file_size: opts.target_file_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_grow_upward_from_the_bottom_level() {
        let opts = Options::default()
            .max_bytes_for_level_base(100)
            .level_size_multiplier(10);
        let empty = Version::default();
        let t = level_targets(&empty, &opts);
        assert_eq!(
            t.base_level, BOTTOM,
            "a small tree is L0 plus the bottom level"
        );
        assert_eq!(t.bytes[BOTTOM], 100);
    }
}
