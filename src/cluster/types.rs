//! What the replicated log carries, who the nodes are, and the binary encoding of both.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::reserved::is_reserved_key;

/// A node's identity in the group: chosen by the operator, never reused for another machine.
pub type NodeId = u64;

/// Where a node is reached: `raft_addr` for Raft RPC between nodes (its own port and worker
/// pool, so client load cannot delay heartbeats), `http_addr` for clients (what a follower
/// names or forwards to when it is not the leader).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    pub raft_addr: String,
    pub http_addr: String,
}

impl ClusterNode {
    pub fn new(raft_addr: impl Into<String>, http_addr: impl Into<String>) -> ClusterNode {
        ClusterNode {
            raft_addr: raft_addr.into(),
            http_addr: http_addr.into(),
        }
    }
}

impl fmt::Display for ClusterNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft {} http {}", self.raft_addr, self.http_addr)
    }
}

/// One change to the user's data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// A log entry's payload. Variants are only ever appended: the log on disk holds their
/// index (docs/FORMAT.md, "Cluster node directory").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Puts and deletes applied atomically, in order.
    Write(Vec<Op>),
}

impl Command {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Command {
        Command::Write(vec![Op::Put {
            key: key.into(),
            value: value.into(),
        }])
    }

    pub fn delete(key: impl Into<Vec<u8>>) -> Command {
        Command::Write(vec![Op::Delete { key: key.into() }])
    }

    /// Checks what the state machine would otherwise fail on after the entry is committed,
    /// when nothing could be done about it: reserved keys, the engine's size limits, and the
    /// group's limit on one entry (`max_bytes`, so an entry fits one replication message).
    pub fn validate(&self, max_bytes: usize) -> Result<()> {
        let Command::Write(ops) = self;
        if ops.is_empty() {
            return Err(Error::InvalidArgument(
                "a write needs at least one operation".into(),
            ));
        }
        let mut batch = crate::WriteBatch::new();
        for op in ops {
            let key = match op {
                Op::Put { key, value } => {
                    batch.put(key, value);
                    key
                }
                Op::Delete { key } => {
                    batch.delete(key);
                    key
                }
            };
            if key.is_empty() {
                return Err(Error::InvalidArgument("a key must not be empty".into()));
            }
            if is_reserved_key(key) {
                return Err(Error::InvalidArgument(
                    "the key is in the range the cluster reserves for itself".into(),
                ));
            }
            if key.len() > crate::MAX_KEY_SIZE {
                return Err(Error::InvalidArgument(format!(
                    "a key of {} bytes is over the limit of {}",
                    key.len(),
                    crate::MAX_KEY_SIZE
                )));
            }
        }
        if batch.size_in_bytes() > max_bytes {
            return Err(Error::TooLarge(format!(
                "a write of {} bytes is over the cluster's limit of {max_bytes} bytes per write",
                batch.size_in_bytes()
            )));
        }
        Ok(())
    }
}

/// What applying an entry returns to the writer. Nothing yet: the log id of the entry says
/// where it landed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied;

/// A directory holding one snapshot (see `snapshot.rs`).
pub use super::snapshot::SnapshotDir;

openraft::declare_raft_types!(
    /// The openraft type configuration of an lsmdb group.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = NodeId,
        Node = ClusterNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotDir,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, ClusterNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, ClusterNode>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;

/// The binary encoding of stored log entries, state-machine metadata and RPC bodies:
/// postcard 1.x, whose wire format is specified and frozen for the 1.x line. Byte strings
/// cost their length plus a varint, not a number per byte as in JSON.
pub(crate) mod codec {
    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use crate::cluster::error::{Error, Result};

    pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
        postcard::to_allocvec(value).map_err(|e| Error::Internal(format!("cannot encode: {e}")))
    }

    /// Decodes exactly one value filling all of `bytes`; `what` names it in the error.
    pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
        match postcard::take_from_bytes(bytes) {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(Error::Decode(format!(
                "{what}: {} bytes left over after the value",
                rest.len()
            ))),
            Err(e) => Err(Error::Decode(format!("{what}: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the encodings docs/FORMAT.md ("Cluster node directory") shows.
    #[test]
    fn stored_values_encode_as_documented() {
        let log_id = LogId::new(openraft::CommittedLeaderId::new(2, 1), 300);
        assert_eq!(codec::encode(&log_id).unwrap(), [2, 1, 0xAC, 0x02]);
        assert_eq!(codec::encode(&Some(log_id)).unwrap(), [1, 2, 1, 0xAC, 0x02]);
        assert_eq!(codec::encode(&Vote::new(3, 2)).unwrap(), [3, 2, 0]);
        let entry = Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(2, 1), 5),
            payload: openraft::EntryPayload::Normal(Command::Write(vec![
                Op::Put {
                    key: b"k".to_vec(),
                    value: b"vv".to_vec(),
                },
                Op::Delete { key: b"x".to_vec() },
            ])),
        };
        let bytes = codec::encode(&entry).unwrap();
        assert_eq!(
            bytes,
            [2, 1, 5, 1, 0, 2, 0, 1, b'k', 2, b'v', b'v', 1, 1, b'x']
        );
        let back: Entry = codec::decode(&bytes, "an entry").unwrap();
        assert_eq!(back.log_id, entry.log_id);
        assert!(codec::decode::<Entry>(&bytes[..bytes.len() - 1], "a cut entry").is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(codec::decode::<Entry>(&longer, "an entry and a byte").is_err());
    }
}
