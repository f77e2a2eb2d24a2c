//! The version set: the current version, the manifest it is logged to, and the counters that
//! must survive a restart (next file number, oldest live WAL, last sequence number).
//!
//! Crash safety: an edit is appended to the manifest and synced before the new version is
//! installed, and the files it obsoletes are deleted only after that. A new manifest is
//! fully written and synced before CURRENT is switched to it by an atomic rename.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{FileMeta, TableContext, Version};
use crate::error::{Error, IoContext, Result};
use crate::filename;
use crate::manifest::{self, MANIFEST_KIND, TableFile, VersionEdit};
use crate::options::NUM_LEVELS;
use crate::record;

/// A manifest larger than this is rewritten as a snapshot at the next edit.
const MAX_MANIFEST_SIZE: u64 = 16 << 20;

/// Hands out file numbers for WALs, tables and manifests; shared with the write path.
#[derive(Debug, Default)]
pub(crate) struct FileNumbers(AtomicU64);

impl FileNumbers {
    pub(crate) fn allocate(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn peek(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Makes sure numbers from now on are above `used`.
    pub(crate) fn mark_used(&self, used: u64) {
        self.0.fetch_max(used + 1, Ordering::Relaxed);
    }
}

/// The state recovered from a manifest.
pub(crate) struct Recovered {
    pub log_number: u64,
    pub last_sequence: u64,
}

/// What an edit changes, assembled before it is made durable and installed.
struct State {
    version: Arc<Version>,
    log_number: u64,
    last_sequence: u64,
    compact_pointers: [Vec<u8>; NUM_LEVELS],
}

pub(crate) struct VersionSet {
    dir: PathBuf,
    ctx: Arc<TableContext>,
    pub(crate) numbers: Arc<FileNumbers>,
    current: Arc<Version>,
    manifest: Option<record::Writer>,
    manifest_number: u64,
    /// WALs numbered below this hold nothing that is not in a table.
    log_number: u64,
    /// The last sequence number recorded in the manifest.
    last_sequence: u64,
    compact_pointers: [Vec<u8>; NUM_LEVELS],
}

impl VersionSet {
    /// An empty version set for a directory that has no manifest yet; nothing is written
    /// until [`Self::write_snapshot`].
    pub(crate) fn new_empty(dir: &Path, ctx: Arc<TableContext>) -> VersionSet {
        let numbers = Arc::new(FileNumbers::default());
        numbers.mark_used(0);
        VersionSet {
            dir: dir.to_path_buf(),
            ctx,
            numbers,
            current: Arc::new(Version::default()),
            manifest: None,
            manifest_number: 0,
            log_number: 0,
            last_sequence: 0,
            compact_pointers: Default::default(),
        }
    }

    /// Rebuilds the state by replaying the manifest that CURRENT names.
    pub(crate) fn recover(
        dir: &Path,
        ctx: Arc<TableContext>,
    ) -> Result<Option<(VersionSet, Recovered)>> {
        let fs = Arc::clone(&ctx.fs);
        let Some((manifest_number, path)) = manifest::read_current(fs.as_ref(), dir)? else {
            return Ok(None);
        };
        let (edits, _) = manifest::read_edits(fs.as_ref(), &path)?;
        let mut set = VersionSet::new_empty(dir, ctx);
        set.numbers.mark_used(manifest_number);
        let mut version = Version::default();
        for (i, edit) in edits.iter().enumerate() {
            let added = edit
                .added
                .iter()
                .map(|(level, f)| (*level, Arc::new(FileMeta::new(f.clone(), &set.ctx))))
                .collect();
            for &(level, number) in &edit.deleted {
                if !version.levels[level].iter().any(|f| f.number == number) {
                    return Err(Error::corruption(
                        &path,
                        0,
                        format!(
                            "edit {i} deletes table {number} from L{level}, which does not hold it"
                        ),
                    ));
                }
            }
            (version, _) = version.apply(&edit.deleted, added);
            if let Some(n) = edit.log_number {
                set.log_number = n;
            }
            if let Some(n) = edit.next_file_number {
                set.numbers.mark_used(n.saturating_sub(1));
            }
            if let Some(s) = edit.last_sequence {
                set.last_sequence = s;
            }
            for (level, key) in &edit.compact_pointers {
                set.compact_pointers[*level] = key.clone();
            }
        }
        for number in version.live_numbers() {
            set.numbers.mark_used(number);
        }
        set.current = Arc::new(version);
        set.manifest_number = manifest_number;
        let recovered = Recovered {
            log_number: set.log_number,
            last_sequence: set.last_sequence,
        };
        Ok(Some((set, recovered)))
    }

    pub(crate) fn current(&self) -> Arc<Version> {
        Arc::clone(&self.current)
    }

    /// How this set's tables are opened and removed.
    pub(crate) fn table_context(&self) -> &Arc<TableContext> {
        &self.ctx
    }

    pub(crate) fn log_number(&self) -> u64 {
        self.log_number
    }

    pub(crate) fn manifest_number(&self) -> u64 {
        self.manifest_number
    }

    pub(crate) fn compact_pointer(&self, level: usize) -> &[u8] {
        &self.compact_pointers[level]
    }

    fn switch_manifest(&mut self, state: &State) -> Result<()> {
        let number = self.numbers.allocate();
        let path = filename::manifest_path(&self.dir, number);
        let fs = Arc::clone(&self.ctx.fs);
        let mut writer = record::Writer::create(fs.as_ref(), &path, MANIFEST_KIND)?;
        let mut edit = VersionEdit {
            log_number: Some(state.log_number),
            next_file_number: Some(self.numbers.peek()),
            last_sequence: Some(state.last_sequence),
            ..VersionEdit::default()
        };
        for (level, files) in state.version.levels.iter().enumerate() {
            edit.added
                .extend(files.iter().map(|f| (level, TableFile::clone(f))));
        }
        for (level, key) in state.compact_pointers.iter().enumerate() {
            if !key.is_empty() {
                edit.compact_pointers.push((level, key.clone()));
            }
        }
        writer.add_record(&edit.encode())?;
        writer.sync()?;
        manifest::set_current(fs.as_ref(), &self.dir, number)?;
        let old = std::mem::replace(&mut self.manifest_number, number);
        self.manifest = Some(writer);
        self.remove_manifest(old);
        Ok(())
    }

    fn install(&mut self, state: State) {
        self.current = state.version;
        self.log_number = state.log_number;
        self.last_sequence = state.last_sequence;
        self.compact_pointers = state.compact_pointers;
    }

    /// Logs `edit`, with `added` as the tables it adds, to the manifest, syncs it, and
    /// installs the resulting version. Returns the tables the edit made obsolete, already
    /// marked for deletion. On error nothing changes.
    pub(crate) fn log_and_apply(
        &mut self,
        mut edit: VersionEdit,
        added: Vec<(usize, Arc<FileMeta>)>,
        last_sequence: u64,
    ) -> Result<Vec<Arc<FileMeta>>> {
        debug_assert!(edit.added.is_empty(), "the added tables come from `added`");
        edit.added = added
            .iter()
            .map(|(level, f)| (*level, TableFile::clone(f)))
            .collect();
        edit.next_file_number = Some(self.numbers.peek());
        edit.last_sequence = Some(last_sequence.max(self.last_sequence));
        let (version, removed) = self.current.apply(&edit.deleted, added);
        let mut state = State {
            version: Arc::new(version),
            log_number: edit.log_number.unwrap_or(self.log_number),
            last_sequence: last_sequence.max(self.last_sequence),
            compact_pointers: self.compact_pointers.clone(),
        };
        for (level, key) in &edit.compact_pointers {
            state.compact_pointers[*level] = key.clone();
        }
        match self.manifest.as_mut() {
            Some(m) if m.len() <= MAX_MANIFEST_SIZE => {
                m.add_record(&edit.encode())?;
                m.sync()?;
            }
            // Too large (or none yet): the new manifest's snapshot includes this edit.
            _ => self.switch_manifest(&state)?,
        }
        self.install(state);
        for f in &removed {
            f.mark_obsolete();
        }
        Ok(removed)
    }

    fn remove_manifest(&self, number: u64) {
        if number != 0 && number != self.manifest_number {
            let path = filename::manifest_path(&self.dir, number);
            // A leftover manifest is harmless (CURRENT does not name it) and is removed at
            // the next open.
            let _ = self
                .ctx
                .fs
                .remove_file(&path)
                .ctx("remove old manifest", &path);
        }
    }
}
