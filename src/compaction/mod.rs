//! Compaction: merging tables of one level into the next so that reads touch few tables,
//! and overwritten versions and tombstones free their space. `picker` decides what to
//! compact; `run` merges and writes the outputs.

pub(crate) mod picker;
mod run;

pub(crate) use run::{CompactionEnv, VersionFilter, run};

use std::sync::Arc;

use crate::options::{NUM_LEVELS, Options};
use crate::version::{FileMeta, Version};

/// A unit of compaction work: input tables, each with its level, merged into new tables on
/// `output_level`.
pub(crate) struct Compaction {
    pub version: Arc<Version>,
    /// The level whose score chose this compaction (for the compaction pointer).
    pub level: usize,
    pub output_level: usize,
    /// Every input, the overlapping tables of the output level included.
    pub inputs: Vec<(usize, Arc<FileMeta>)>,
    /// Tables one level below the output, used to cut outputs so that a later compaction
    /// of an output does not have to merge too much of that level.
    pub grandparents: Vec<Arc<FileMeta>>,
    /// Move the single input down by a manifest edit alone.
    pub trivial_move: bool,
    pub target_file_size: u64,
}

impl Compaction {
    /// Compacts `inputs` of `level` with whatever overlaps them on `output_level`.
    pub(crate) fn new(
        version: Arc<Version>,
        level: usize,
        output_level: usize,
        upper: Vec<Arc<FileMeta>>,
        opts: &Options,
    ) -> Self {
        let (smallest, largest) = key_range(&upper);
        let lower = version.overlapping(output_level, &smallest, &largest);
        let grandparents = if output_level + 1 < NUM_LEVELS {
            version.overlapping(output_level + 1, &smallest, &largest)
        } else {
            Vec::new()
        };
        let grandparent_bytes: u64 = grandparents.iter().map(|f| f.size).sum();
        let trivial_move =
            upper.len() == 1 && lower.is_empty() && grandparent_bytes <= 10 * opts.target_file_size;
        let mut inputs: Vec<_> = upper.into_iter().map(|f| (level, f)).collect();
        inputs.extend(lower.into_iter().map(|f| (output_level, f)));
        Compaction {
            version,
            level,
            output_level,
            inputs,
            grandparents,
            trivial_move,
            target_file_size: opts.target_file_size,
        }
    }

    pub(crate) fn input_bytes(&self) -> u64 {
        self.inputs.iter().map(|(_, f)| f.size).sum()
    }
}

/// The user-key range covered by `files`.
fn key_range(files: &[Arc<FileMeta>]) -> (Vec<u8>, Vec<u8>) {
    let smallest = files
        .iter()
        .map(|f| f.smallest_user_key())
        .min()
        .unwrap_or_default();
    let largest = files
        .iter()
        .map(|f| f.largest_user_key())
        .max()
        .unwrap_or_default();
    (smallest.to_vec(), largest.to_vec())
}
