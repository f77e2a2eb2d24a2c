//! The Raft log and vote, in an lsmdb database of their own (`DIR/raft/`).
//!
//! Keys (docs/FORMAT.md, "Cluster node directory"): `n` the node id, `v` the vote, `p` the
//! last purged log id, `e` + index (8 bytes, big-endian, so keys sort by index) one entry
//! each; values are postcard. Every write is one synced batch (the database runs in `SyncMode::Always`), and
//! the rules openraft relies on hold as follows:
//! - `append` calls its callback only after its batch is durable;
//! - `save_vote` returns only after the vote is durable;
//! - `truncate` removes the suffix from an index on, in one batch, never leaving a hole;
//! - `purge` never goes past the last snapshot this node holds durably (the [`PurgeGate`]):
//!   openraft asks for a purge as soon as it has *sent* a snapshot to the state machine to
//!   install, and a crash before the install finished would otherwise leave a node whose
//!   state machine is behind a log that no longer has the entries in between.
//!
//! Calls come one at a time from openraft's core (`&mut self`); the reader clones share the
//! database and only read.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{OptionalSend, RaftLogId, RaftLogReader, StorageIOError};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::error::{Error, Result, storage_error};
use super::types::{Entry, LogId, StorageError, TypeConfig, Vote, codec};
use crate::{Db, Options, SyncMode, WriteBatch};

const NODE_ID_KEY: &[u8] = b"n";
const VOTE_KEY: &[u8] = b"v";
const PURGED_KEY: &[u8] = b"p";
const ENTRY_PREFIX: u8 = b'e';

/// How long a purge waits for the snapshot that covers it before the node gives up.
const PURGE_WAIT: Duration = Duration::from_secs(120);

fn entry_key(index: u64) -> [u8; 9] {
    let mut key = [ENTRY_PREFIX; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

fn index_of(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.strip_prefix(&[ENTRY_PREFIX])?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

/// How far the log may be purged: up to the last log index of the newest snapshot that is
/// durable on this node. The state machine raises it; a purge beyond it waits.
#[derive(Clone)]
pub struct PurgeGate(Arc<watch::Sender<Option<u64>>>);

impl PurgeGate {
    pub fn new(snapshot_index: Option<u64>) -> PurgeGate {
        PurgeGate(Arc::new(watch::Sender::new(snapshot_index)))
    }

    pub(crate) fn raise(&self, snapshot_index: u64) {
        self.0.send_if_modified(|v| {
            let raise = *v < Some(snapshot_index);
            if raise {
                *v = Some(snapshot_index);
            }
            raise
        });
    }

    async fn wait_for(&self, index: u64) -> std::result::Result<(), String> {
        let mut rx = self.0.subscribe();
        let wait = rx.wait_for(|v| *v >= Some(index));
        match tokio::time::timeout(PURGE_WAIT, wait).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err("the state machine is gone".into()),
            Err(_) => Err(format!(
                "no snapshot covers log index {index} after {PURGE_WAIT:?}; refusing to purge"
            )),
        }
    }
}

/// What is in the log, kept in memory so `get_log_state` and `truncate` need no scan.
#[derive(Clone, Copy, Debug, Default)]
struct Bounds {
    last_purged: Option<LogId>,
    last: Option<LogId>,
}

struct Inner {
    db: Db,
    bounds: Mutex<Bounds>,
    gate: Option<PurgeGate>,
}

/// The log store; clones share one database.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

impl LogStore {
    /// Opens (or creates) the log in `dir`. With a `gate`, purges wait for a snapshot to
    /// cover them; without (tests of the store alone), they happen at once. `opts.sync` is
    /// forced to `Always`: the rules above depend on it.
    pub fn open(dir: &std::path::Path, gate: Option<PurgeGate>, opts: Options) -> Result<LogStore> {
        let opts = Options {
            sync: SyncMode::Always,
            ..opts
        };
        let db = Db::open(dir, opts)?;
        let last_purged: Option<LogId> = match db.get(PURGED_KEY)? {
            Some(b) => Some(codec::decode(&b, "the last purged log id")?),
            None => None,
        };
        // Check that the entries run without a hole from the purge point, and find the last.
        let mut expected = last_purged.map_or(0, |l| l.index + 1);
        let mut last_value = None;
        for item in db.prefix([ENTRY_PREFIX])? {
            let (key, value) = item?;
            let index = index_of(&key).ok_or_else(|| Error::Decode("a log key".into()))?;
            if index < expected && last_value.is_none() {
                // Entries at or below the purge point left by a purge that stopped halfway.
                continue;
            }
            if index != expected {
                return Err(Error::Decode(format!(
                    "the log in {} has a hole: entry {index} follows entry {}",
                    dir.display(),
                    expected.wrapping_sub(1)
                )));
            }
            expected += 1;
            last_value = Some(value);
        }
        let last = match last_value {
            Some(v) => Some(*codec::decode::<Entry>(&v, "a log entry")?.get_log_id()),
            None => last_purged,
        };
        Ok(LogStore {
            inner: Arc::new(Inner {
                db,
                bounds: Mutex::new(Bounds { last_purged, last }),
                gate,
            }),
        })
    }

    /// Records which node this log belongs to, or refuses if it belongs to another: a node
    /// started on another's directory would speak with that node's votes and log.
    pub fn claim_node_id(&self, id: super::types::NodeId) -> Result<()> {
        let db = &self.inner.db;
        match db.get(NODE_ID_KEY)? {
            Some(bytes) => {
                let owner: super::types::NodeId = codec::decode(&bytes, "the node id")?;
                if owner != id {
                    return Err(Error::InvalidArgument(format!(
                        "this directory belongs to node {owner}, not node {id}"
                    )));
                }
                Ok(())
            }
            None => Ok(db.put(NODE_ID_KEY, codec::encode(&id)?)?),
        }
    }

    /// Closes the database, reporting a failed final sync.
    pub fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.inner) {
            Ok(inner) => Ok(inner.db.close()?),
            // A reader clone still lives; the database closes when it is dropped.
            Err(_) => Ok(()),
        }
    }

    fn read_entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry>> {
        let db = &self.inner.db;
        let iter = match end {
            Some(end) => db.range(entry_key(start), entry_key(end))?,
            None => db.range(entry_key(start), [ENTRY_PREFIX + 1])?,
        };
        iter.map(|item| {
            let (_, value) = item?;
            codec::decode::<Entry>(&value, "a log entry")
        })
        .collect()
    }

    /// Writes `batch` durably on a blocking thread: a sync must not hold a runtime worker.
    async fn write(&self, batch: WriteBatch) -> Result<()> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.db.write(&batch))
            .await
            .map_err(|e| Error::Internal(format!("log write task failed: {e}")))??;
        Ok(())
    }

    fn entry_log_id(&self, index: u64) -> Result<Option<LogId>> {
        match self.inner.db.get(entry_key(index))? {
            Some(v) => Ok(Some(
                *codec::decode::<Entry>(&v, "a log entry")?.get_log_id(),
            )),
            None => Ok(None),
        }
    }
}

fn to_range(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> std::result::Result<Vec<Entry>, StorageError> {
        let (start, end) = to_range(&range);
        if end.is_some_and(|e| e <= start) {
            return Ok(Vec::new());
        }
        self.read_entries(start, end)
            .map_err(|e| storage_error(e, StorageIOError::read_logs))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> std::result::Result<LogState<TypeConfig>, StorageError> {
        let b = *self.inner.bounds.lock();
        Ok(LogState {
            last_purged_log_id: b.last_purged,
            last_log_id: b.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> std::result::Result<(), StorageError> {
        let mut batch = WriteBatch::new();
        let bytes =
            codec::encode(vote).map_err(|e| storage_error(e, StorageIOError::write_vote))?;
        batch.put(VOTE_KEY, bytes);
        self.write(batch)
            .await
            .map_err(|e| storage_error(e, StorageIOError::write_vote))
    }

    async fn read_vote(&mut self) -> std::result::Result<Option<Vote>, StorageError> {
        let read = || -> Result<Option<Vote>> {
            match self.inner.db.get(VOTE_KEY)? {
                Some(b) => Ok(Some(codec::decode(&b, "the vote")?)),
                None => Ok(None),
            }
        };
        read().map_err(|e| storage_error(e, StorageIOError::read_vote))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> std::result::Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = WriteBatch::new();
        let mut last = None;
        for entry in entries {
            let bytes =
                codec::encode(&entry).map_err(|e| storage_error(e, StorageIOError::write_logs))?;
            batch.put(entry_key(entry.get_log_id().index), bytes);
            last = Some(*entry.get_log_id());
        }
        match self.write(batch).await {
            Ok(()) => {
                if last.is_some() {
                    self.inner.bounds.lock().last = last;
                }
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(storage_error(e, StorageIOError::write_logs))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> std::result::Result<(), StorageError> {
        let fail = |e| storage_error(e, StorageIOError::write_logs);
        let bounds = *self.inner.bounds.lock();
        let Some(last) = bounds.last else {
            return Ok(());
        };
        let mut batch = WriteBatch::new();
        for index in log_id.index..=last.index {
            batch.delete(entry_key(index));
        }
        // What remains ends at the entry before, or at the purge point.
        let new_last = match log_id.index.checked_sub(1) {
            Some(prev) if bounds.last_purged.is_none_or(|p| prev > p.index) => {
                self.entry_log_id(prev).map_err(fail)?
            }
            _ => bounds.last_purged,
        };
        self.write(batch).await.map_err(fail)?;
        self.inner.bounds.lock().last = new_last;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> std::result::Result<(), StorageError> {
        let fail = |e| storage_error(e, StorageIOError::write_logs);
        if let Some(gate) = &self.inner.gate {
            gate.wait_for(log_id.index)
                .await
                .map_err(|reason| fail(Error::Internal(reason)))?;
        }
        let bounds = *self.inner.bounds.lock();
        if bounds.last_purged >= Some(log_id) {
            return Ok(());
        }
        let first = bounds.last_purged.map_or(0, |p| p.index + 1);
        let mut batch = WriteBatch::new();
        batch.put(PURGED_KEY, codec::encode(&log_id).map_err(fail)?);
        for index in first..=log_id.index {
            batch.delete(entry_key(index));
        }
        self.write(batch).await.map_err(fail)?;
        let mut b = self.inner.bounds.lock();
        b.last_purged = Some(log_id);
        if b.last < Some(log_id) {
            b.last = Some(log_id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_index() {
        assert!(entry_key(1) < entry_key(2));
        assert!(entry_key(255) < entry_key(256));
        assert!(entry_key(u64::MAX)[..] < [ENTRY_PREFIX + 1][..]);
        assert_eq!(index_of(&entry_key(77)), Some(77));
        assert_eq!(index_of(b"v"), None);
        assert_eq!(to_range(&(3..7)), (3, Some(7)));
        assert_eq!(to_range(&(3..=7)), (3, Some(8)));
        assert_eq!(to_range(&(3..)), (3, None));
        assert_eq!(to_range(&(..=u64::MAX)), (0, None));
    }
}
