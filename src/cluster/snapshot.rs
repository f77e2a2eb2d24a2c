//! Snapshots on disk: each is a checkpoint of the state machine's database (`Db::checkpoint`)
//! in a directory of `DIR/snapshots/`, and its metadata (last log id, membership) is read from
//! the checkpoint's own reserved keys, never from the live state machine, which may have
//! applied more entries by the time the checkpoint is done.
//!
//! Names in `DIR/snapshots/`: `snap-<last index, 20 digits>-<snapshot id>` for a complete
//! snapshot (the newest is the current one; others wait for transfers still reading them),
//! and `tmp-...` for one being built or received, which a restart removes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use super::error::{Error, Result};
use super::reserved::read_applied_state;
use super::types::{LogId, SnapshotMeta};

/// A snapshot's directory, as openraft hands it around. Clones share it; when the last
/// handle of one that is no longer wanted (superseded, or received and never installed) is
/// dropped, the directory is removed.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    files: Arc<Files>,
}

#[derive(Debug)]
struct Files {
    path: PathBuf,
    discard: AtomicBool,
}

impl Drop for Files {
    fn drop(&mut self) {
        if self.discard.load(Ordering::Acquire) {
            // Leftovers are also removed at the next start.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

impl SnapshotDir {
    fn new(path: PathBuf, discard: bool) -> SnapshotDir {
        SnapshotDir {
            files: Arc::new(Files {
                path,
                discard: AtomicBool::new(discard),
            }),
        }
    }

    /// A directory being filled; removed when dropped unless installed.
    pub(crate) fn staging(path: PathBuf) -> SnapshotDir {
        SnapshotDir::new(path, true)
    }

    pub fn path(&self) -> &Path {
        &self.files.path
    }

    fn discard_when_unused(&self) {
        self.files.discard.store(true, Ordering::Release);
    }
}

/// Snapshot ids travel from other nodes and name directories: only a safe alphabet.
pub(crate) fn valid_snapshot_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn snapshot_dir_name(meta: &SnapshotMeta) -> String {
    let index = meta.last_log_id.map_or(0, |l| l.index);
    format!("snap-{index:020}-{}", meta.snapshot_id)
}

/// Reads the metadata of the snapshot in `dir` from its own reserved keys.
pub(crate) fn read_meta(dir: &Path, snapshot_id: String) -> Result<SnapshotMeta> {
    let db = crate::Db::open_read_only(dir, crate::Options::default())?;
    let (last_log_id, last_membership) = read_applied_state(&db)?;
    Ok(SnapshotMeta {
        last_log_id,
        last_membership,
        snapshot_id,
    })
}

/// Copies the database in `from` into `to` (which must not exist): tables hard-linked (they
/// are never modified), the small files copied, everything synced.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir(to).map_err(|e| Error::io("create directory", to, e))?;
    let entries = fs::read_dir(from).map_err(|e| Error::io("list", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", from, e))?;
        let name = entry.file_name();
        let (src, dst) = (from.join(&name), to.join(&name));
        if name.to_string_lossy().ends_with(".sst") {
            crate::db::link_or_copy(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| Error::io("copy", &src, e))?;
            sync_file(&dst)?;
        }
    }
    sync_dir(to)?;
    sync_parent(to)
}

pub(crate) fn sync_file(path: &Path) -> Result<()> {
    fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io("sync", path, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    sync_file(dir)
}

pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        _ => Ok(()),
    }
}

/// The snapshots of one node: the current one, and where new ones are made.
pub(crate) struct Snapshots {
    dir: PathBuf,
    current: Mutex<Option<(SnapshotMeta, SnapshotDir)>>,
    counter: AtomicU64,
}

impl Snapshots {
    /// Opens `dir`, removing what a crash left half-made and every snapshot but the newest.
    pub(crate) fn open(dir: &Path) -> Result<Snapshots> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let mut complete = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            match parse_dir_name(&name) {
                Some((index, id)) => complete.push((index, id.to_string(), entry.path())),
                None => remove_dir(&entry.path())?,
            }
        }
        complete.sort();
        let newest = complete.pop();
        for (_, _, path) in complete {
            remove_dir(&path)?;
        }
        let current = match newest {
            Some((index, id, path)) => {
                let meta = read_meta(&path, id)?;
                if meta.last_log_id.map_or(0, |l| l.index) != index {
                    return Err(Error::Decode(format!(
                        "snapshot {}: its name says index {index}, its contents {:?}",
                        path.display(),
                        meta.last_log_id
                    )));
                }
                Some((meta, SnapshotDir::new(path, false)))
            }
            None => None,
        };
        sync_dir(dir)?;
        Ok(Snapshots {
            dir: dir.to_path_buf(),
            current: Mutex::new(current),
            counter: AtomicU64::new(0),
        })
    }

    /// A fresh path for a snapshot being built or received.
    pub(crate) fn staging_path(&self, purpose: &str) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!("tmp-{purpose}-{}-{n}", std::process::id()))
    }

    /// A new snapshot id, unique on this node.
    pub(crate) fn new_id(&self, last: Option<LogId>) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        match last {
            Some(l) => format!(
                "{}-{}-{}-{millis}-{n}",
                l.leader_id.term, l.leader_id.node_id, l.index
            ),
            None => format!("empty-{millis}-{n}"),
        }
    }

    pub(crate) fn current(&self) -> Option<(SnapshotMeta, SnapshotDir)> {
        self.current.lock().clone()
    }

    /// Makes the complete snapshot in `src` this node's current one, durably: moved into
    /// place if it is one of ours (staged here), linked or copied otherwise. The previous
    /// snapshot goes once nothing reads it.
    pub(crate) fn adopt(&self, meta: &SnapshotMeta, src: &Path) -> Result<SnapshotDir> {
        if !valid_snapshot_id(&meta.snapshot_id) {
            return Err(Error::InvalidArgument(format!(
                "snapshot id {:?} has characters outside [A-Za-z0-9_-]",
                meta.snapshot_id
            )));
        }
        let path = self.dir.join(snapshot_dir_name(meta));
        if let Some((_, current)) = self.current.lock().as_ref()
            && current.path() == path
        {
            // Already the current one (the same snapshot offered again).
            return Ok(current.clone());
        }
        if src.parent() == Some(self.dir.as_path()) && src != path {
            if path.exists() {
                remove_dir(&path)?;
            }
            fs::rename(src, &path).map_err(|e| Error::io("rename", src, e))?;
            sync_dir(&path)?;
        } else if src != path {
            if path.exists() {
                remove_dir(&path)?;
            }
            copy_tree(src, &path)?;
        }
        sync_dir(&self.dir)?;
        let adopted = SnapshotDir::new(path, false);
        let mut current = self.current.lock();
        let newer = current
            .as_ref()
            .is_none_or(|(m, _)| m.last_log_id <= meta.last_log_id);
        if newer {
            if let Some((_, old)) = current.replace((meta.clone(), adopted.clone()))
                && old.path() != adopted.path()
            {
                old.discard_when_unused();
            }
        } else {
            adopted.discard_when_unused();
        }
        Ok(adopted)
    }
}

fn parse_dir_name(name: &str) -> Option<(u64, &str)> {
    let rest = name.strip_prefix("snap-")?;
    let (index, id) = rest.split_once('-')?;
    if index.len() != 20 || !valid_snapshot_id(id) {
        return None;
    }
    Some((index.parse().ok()?, id))
}

pub(crate) fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names_and_ids() {
        assert!(valid_snapshot_id("3-1-120-1700000000000-4"));
        assert!(!valid_snapshot_id("../../etc"));
        assert!(!valid_snapshot_id(""));
        assert!(!valid_snapshot_id(&"a".repeat(101)));
        let name = format!("snap-{:020}-{}", 42, "1-2-42-9-0");
        assert_eq!(parse_dir_name(&name), Some((42, "1-2-42-9-0")));
        assert_eq!(parse_dir_name("tmp-recv-1-0"), None);
        assert_eq!(parse_dir_name("snap-42-x"), None);
    }
}
