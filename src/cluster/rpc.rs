//! The Raft RPC protocol between nodes: HTTP/1.1 POSTs to a node's `raft_addr`, bodies in
//! postcard (`types::codec`).
//!
//! | route | request body | 200 reply body |
//! |---|---|---|
//! | `/raft/append` | `AppendEntriesRequest` | `AppendEntriesResponse` |
//! | `/raft/vote` | `VoteRequest` | `VoteResponse` |
//! | `/raft/snapshot/begin` | `Offer` (transfer.rs) | `Progress` |
//! | `/raft/snapshot/chunk` | a chunk of a snapshot file (transfer.rs) | `Progress` |
//! | `/raft/snapshot/finish` | `Finish` | `SnapshotResponse` |
//! | `/raft/read-index` | empty | [`ReadIndexReply`] |
//! | `/raft/write` | `Command` (a write forwarded by a follower) | [`WriteReply`] |
//! | `/raft/faults` | JSON `{"blocked":[ids]}`; only with fault injection on | JSON |
//!
//! Every request names its sender in `X-Lsmdb-From` and, when the group has a token, carries
//! `Authorization: Bearer <token>` (401 without it: anyone who can reach the port could
//! otherwise inject log entries). Any other status has a plain-text reason: 400 malformed,
//! 401, 404, 409 a snapshot chunk out of place (begin again), 413 too large, 503 this node
//! cannot serve (stopped, or the fault switch drops the sender).

use serde::{Deserialize, Serialize};

use super::types::{ClusterNode, LogId, NodeId};

pub(crate) const APPEND: &str = "/raft/append";
pub(crate) const VOTE: &str = "/raft/vote";
pub(crate) const SNAPSHOT_BEGIN: &str = "/raft/snapshot/begin";
pub(crate) const SNAPSHOT_CHUNK: &str = "/raft/snapshot/chunk";
pub(crate) const SNAPSHOT_FINISH: &str = "/raft/snapshot/finish";
pub(crate) const READ_INDEX: &str = "/raft/read-index";
pub(crate) const WRITE: &str = "/raft/write";
pub(crate) const FAULTS: &str = "/raft/faults";

pub(crate) const FROM_HEADER: &str = "X-Lsmdb-From";

/// The largest request body a node accepts (the RPC server reads each request whole);
/// snapshots travel in chunks below it.
pub(crate) const MAX_BODY: usize = 64 << 20;

/// The leader this node knows, as replies carry it.
pub(crate) type LeaderHint = Option<(NodeId, ClusterNode)>;

/// The leader's answer to a follower asking where a linearizable read must wait until.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum ReadIndexReply {
    /// Apply at least up to this log id, then read.
    Ok(Option<LogId>),
    NotLeader(LeaderHint),
    NoQuorum,
}

/// The leader's answer to a forwarded write.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum WriteReply {
    Ok(LogId),
    NotLeader(LeaderHint),
    NoQuorum(String),
    OutcomeUnknown(String),
    Invalid(String),
    Unavailable(String),
    TooLarge(String),
}

/// The bearer token check, in constant time for equal lengths.
pub(crate) fn token_matches(expected: &str, header: Option<&str>) -> bool {
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_check() {
        assert!(token_matches("s3cret", Some("Bearer s3cret")));
        assert!(!token_matches("s3cret", Some("Bearer s3cre")));
        assert!(!token_matches("s3cret", Some("s3cret")));
        assert!(!token_matches("s3cret", None));
    }
}
