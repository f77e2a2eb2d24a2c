//! The state machine: the user's data in an ordinary lsmdb database (`DIR/data`), plus the
//! snapshots of it (`DIR/snapshots/`).
//!
//! Applying: each run of entries becomes one synced `WriteBatch` holding their puts and
//! deletes together with the last applied log id and membership (reserved keys), so a crash
//! leaves the data and "how far it is" in agreement: an entry is never applied twice and the
//! state never goes backwards. Entries at or below the recorded log id are skipped, so a
//! repeated apply is harmless.
//!
//! Installing a snapshot, in an order that survives a crash at any step: check the
//! snapshot's own reserved keys against its metadata; make it this node's current snapshot
//! (durable); build `DIR/data.new` from it; drain readers and close the database; swap the
//! directories (`swap.rs`); reopen. A restart that finds the current snapshot ahead of the
//! data redoes the install from the snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Db, Options, WriteBatch};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, OptionalSend, RaftLogId, RaftSnapshotBuilder, StorageIOError};
use parking_lot::Mutex;

use super::data_slot::DataSlot;
use super::error::{Error, Result, storage_error};
use super::log_store::PurgeGate;
use super::reserved::{APPLIED_KEY, MEMBERSHIP_KEY, is_reserved_key, read_applied_state};
use super::snapshot::{SnapshotDir, Snapshots, copy_tree, read_meta, remove_dir};
use super::swap;
use super::types::{
    Applied, Command, Entry, LogId, Op, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
    codec,
};

/// A batch this large is written out before the rest of the run is added.
const APPLY_BATCH_BYTES: usize = 16 << 20;

/// Upper bounds, in seconds, of the buckets of [`ApplyCounters::buckets`]: from a batch
/// synced on a fast disk to one stuck behind a stall.
pub const APPLY_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Work done applying entries, for the metrics.
#[derive(Debug, Default)]
pub struct ApplyCounters {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    /// Time spent writing applied batches (including their sync), in microseconds.
    pub micros: AtomicU64,
    /// Applied batches by how long each took to write, per bucket of [`APPLY_BUCKETS`]
    /// (not cumulative; slower ones are only in `batches`).
    pub buckets: [AtomicU64; APPLY_BUCKETS.len()],
}

pub(crate) struct Shared {
    data_dir: PathBuf,
    pub(crate) data: DataSlot,
    snapshots: Snapshots,
    gate: PurgeGate,
    applied: Mutex<(Option<LogId>, StoredMembership)>,
    opts: Options,
    pub(crate) counters: ApplyCounters,
}

/// The state machine of one node; openraft drives it, readers lease its database.
pub struct StateMachine {
    shared: Arc<Shared>,
}

fn blocking_error(e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("a blocking task failed: {e}"))
}

impl StateMachine {
    /// Opens the state machine of the node directory `node_dir` (`data/`, `snapshots/`),
    /// finishing or undoing what a crash during a snapshot install left. `gate` learns the
    /// newest durable snapshot so the log is never purged past it. `opts.sync` is forced to
    /// `Always`: an applied entry must be durable before openraft counts it applied.
    pub fn open(node_dir: &Path, gate: PurgeGate, opts: Options) -> Result<StateMachine> {
        let opts = Options {
            sync: crate::SyncMode::Always,
            ..opts
        };
        let data_dir = node_dir.join("data");
        std::fs::create_dir_all(node_dir).map_err(|e| Error::io("create", node_dir, e))?;
        swap::recover(&data_dir)?;
        let snapshots = Snapshots::open(&node_dir.join("snapshots"))?;
        let mut db = Db::open(&data_dir, opts.clone())?;
        let mut state = read_applied_state(&db)?;
        if let Some((meta, snap)) = snapshots.current() {
            if meta.last_log_id > state.0 {
                // The snapshot was made durable but the swap did not happen: do it now.
                db.close()?;
                rebuild_data(&data_dir, snap.path())?;
                db = Db::open(&data_dir, opts.clone())?;
                state = read_applied_state(&db)?;
            }
            if let Some(last) = meta.last_log_id {
                gate.raise(last.index);
            }
        }
        Ok(StateMachine {
            shared: Arc::new(Shared {
                data_dir,
                data: DataSlot::new(db),
                snapshots,
                gate,
                applied: Mutex::new(state),
                opts,
                counters: ApplyCounters::default(),
            }),
        })
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    async fn apply_entries(&self, entries: Vec<Entry>) -> Result<Vec<Applied>> {
        let replies = vec![Applied; entries.len()];
        let (mut applied, mut membership) = self.shared.applied.lock().clone();
        let mut batch = WriteBatch::new();
        let mut pending = 0;
        for entry in entries {
            let log_id = *entry.get_log_id();
            if Some(log_id) <= applied {
                continue;
            }
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(Command::Write(ops)) => {
                    for op in ops {
                        match op {
                            // A leader validates keys; this guards the markers regardless.
                            Op::Put { key, .. } | Op::Delete { key } if is_reserved_key(&key) => {}
                            Op::Put { key, value } => {
                                batch.put(key, value);
                            }
                            Op::Delete { key } => {
                                batch.delete(key);
                            }
                        }
                    }
                }
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(log_id), m);
                }
            }
            applied = Some(log_id);
            pending += 1;
            if batch.size_in_bytes() >= APPLY_BATCH_BYTES {
                self.write_applied(&mut batch, applied, &membership, pending)
                    .await?;
                pending = 0;
            }
        }
        if pending > 0 {
            self.write_applied(&mut batch, applied, &membership, pending)
                .await?;
        }
        Ok(replies)
    }

    /// Writes `batch` with the markers saying how far it goes, as one synced batch.
    async fn write_applied(
        &self,
        batch: &mut WriteBatch,
        applied: Option<LogId>,
        membership: &StoredMembership,
        entries: u64,
    ) -> Result<()> {
        batch.put(APPLIED_KEY, codec::encode(&applied)?);
        batch.put(MEMBERSHIP_KEY, codec::encode(membership)?);
        let db = self.shared.data.lease(Duration::ZERO)?;
        let full = std::mem::take(batch);
        let started = Instant::now();
        tokio::task::spawn_blocking(move || db.write(&full))
            .await
            .map_err(blocking_error)??;
        let c = &self.shared.counters;
        let took = started.elapsed();
        c.micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if let Some(i) = APPLY_BUCKETS.iter().position(|&b| took.as_secs_f64() <= b) {
            c.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.entries.fetch_add(entries, Ordering::Relaxed);
        *self.shared.applied.lock() = (applied, membership.clone());
        Ok(())
    }

    async fn install(&self, meta: &SnapshotMeta, snapshot: SnapshotDir) -> Result<()> {
        let shared = Arc::clone(&self.shared);
        let meta_copy = meta.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            check_contents(&meta_copy, snapshot.path())?;
            // From here on a restart finishes the install from this snapshot.
            let adopted = shared.snapshots.adopt(&meta_copy, snapshot.path())?;
            let fresh = swap::fresh_path(&shared.data_dir);
            remove_dir(&fresh)?;
            copy_tree(adopted.path(), &fresh)
        })
        .await
        .map_err(blocking_error)??;
        let old = self.shared.data.take().await?;
        let shared = Arc::clone(&self.shared);
        let db = tokio::task::spawn_blocking(move || -> Result<Db> {
            // Its data is being replaced: a failed last sync of it loses nothing needed.
            let _ = old.close();
            swap::replace(&shared.data_dir)?;
            Ok(Db::open(&shared.data_dir, shared.opts.clone())?)
        })
        .await
        .map_err(blocking_error)??;
        let state = read_applied_state(&db)?;
        self.shared.data.put(db);
        if state.0 != meta.last_log_id {
            return Err(Error::Internal(format!(
                "the installed data says applied {:?}, the snapshot {:?}",
                state.0, meta.last_log_id
            )));
        }
        *self.shared.applied.lock() = state;
        if let Some(last) = meta.last_log_id {
            self.shared.gate.raise(last.index);
        }
        Ok(())
    }
}

/// Replaces `data_dir` by a copy of the snapshot in `snapshot` (used when no database is
/// open on it).
fn rebuild_data(data_dir: &Path, snapshot: &Path) -> Result<()> {
    let fresh = swap::fresh_path(data_dir);
    remove_dir(&fresh)?;
    copy_tree(snapshot, &fresh)?;
    swap::replace(data_dir)
}

/// Whether the snapshot in `dir` holds what `meta` says: its own reserved keys decide.
pub(crate) fn check_contents(meta: &SnapshotMeta, dir: &Path) -> Result<()> {
    let found = read_meta(dir, meta.snapshot_id.clone())?;
    if found.last_log_id != meta.last_log_id || found.last_membership != meta.last_membership {
        return Err(Error::InvalidArgument(format!(
            "snapshot {} holds state up to {:?}, its metadata says {:?}",
            meta.snapshot_id, found.last_log_id, meta.last_log_id
        )));
    }
    Ok(())
}

/// Builds a snapshot from a lease taken when openraft asked for the builder, so the database
/// cannot be swapped away mid-build.
pub struct SnapshotBuilder {
    shared: Arc<Shared>,
    db: Option<Arc<Db>>,
}

impl SnapshotBuilder {
    async fn build(&mut self) -> Result<Snapshot<TypeConfig>> {
        let db = match self.db.take() {
            Some(db) => db,
            None => self.shared.data.lease(Duration::ZERO)?,
        };
        let shared = Arc::clone(&self.shared);
        let (meta, dir) = tokio::task::spawn_blocking(move || -> Result<_> {
            let staging = shared.snapshots.staging_path("build");
            db.checkpoint(&staging)?;
            drop(db);
            // The checkpoint's own markers, not the live state machine's: entries may have
            // been applied since.
            let staged = read_meta(&staging, String::new());
            let mut meta = match staged {
                Ok(meta) => meta,
                Err(e) => {
                    let _ = remove_dir(&staging);
                    return Err(e);
                }
            };
            meta.snapshot_id = shared.snapshots.new_id(meta.last_log_id);
            let dir = shared.snapshots.adopt(&meta, &staging)?;
            Ok((meta, dir))
        })
        .await
        .map_err(blocking_error)??;
        if let Some(last) = meta.last_log_id {
            self.shared.gate.raise(last.index);
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(dir),
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> std::result::Result<Snapshot<TypeConfig>, StorageError> {
        self.build()
            .await
            .map_err(|e| storage_error(e, |e| StorageIOError::write_snapshot(None, e)))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> std::result::Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok(self.shared.applied.lock().clone())
    }

    async fn apply<I>(&mut self, entries: I) -> std::result::Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.apply_entries(entries.into_iter().collect())
            .await
            .map_err(|e| storage_error(e, StorageIOError::write_state_machine))
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            shared: Arc::clone(&self.shared),
            db: self.shared.data.lease(Duration::ZERO).ok(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> std::result::Result<Box<SnapshotDir>, StorageError> {
        let path = self.shared.snapshots.staging_path("recv");
        std::fs::create_dir(&path).map_err(|e| {
            storage_error(Error::io("create", &path, e), |e| {
                StorageIOError::write_snapshot(None, e)
            })
        })?;
        Ok(Box::new(SnapshotDir::staging(path)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotDir>,
    ) -> std::result::Result<(), StorageError> {
        self.install(meta, *snapshot).await.map_err(|e| {
            StorageIOError::write_snapshot(Some(meta.signature()), openraft::AnyError::new(&e))
                .into()
        })
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> std::result::Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(self.shared.snapshots.current().map(|(meta, dir)| Snapshot {
            meta,
            snapshot: Box::new(dir),
        }))
    }
}

impl Shared {
    /// Closes the database, reporting a failed final sync (unless a reader still holds it;
    /// it then closes when that reader lets go).
    pub(crate) fn close(&self) -> Result<()> {
        match self.data.take_now().map(Arc::try_unwrap) {
            Some(Ok(db)) => Ok(db.close()?),
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    pub(crate) fn adopt_snapshot(&self, meta: &SnapshotMeta, path: &Path) -> Result<SnapshotDir> {
        self.snapshots.adopt(meta, path)
    }

    /// A staging directory for a snapshot arriving over the network.
    pub(crate) fn receive_path(&self) -> PathBuf {
        self.snapshots.staging_path("recv")
    }
}
