//! The cluster's typed error: what a server tells a client, and whether retrying can help.

use super::types::{ClusterNode, NodeId};

/// Every error of the replication layer. Each variant maps to one client answer: see the
/// comments for the HTTP status a server would give.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// This node is not the leader; the write was not made here. `leader` is the leader this
    /// node knows of, if any (a server forwards to it or names it: 307 or 503).
    #[error("this node is not the leader{}", leader_text(leader))]
    NotLeader {
        leader: Option<(NodeId, ClusterNode)>,
    },

    /// The write was proposed but its fate is unknown: it may still commit, or it may have
    /// been lost with a leader change. Never reported as success (503, `"outcome":"unknown"`).
    #[error("the write's outcome is unknown: {0}")]
    OutcomeUnknown(String),

    /// No leader with a quorum behind it could be found or confirmed in the time allowed;
    /// for a write, nothing was proposed (503). The text says what was missing.
    #[error("no quorum: {0}")]
    NoQuorum(String),

    /// Temporarily unable to serve (the state machine is being replaced by a snapshot, the
    /// node is starting or stopping); retrying later can succeed (503 with Retry-After).
    #[error("unavailable, retry later: {0}")]
    Unavailable(String),

    /// The request is wrong in itself (400).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A write larger than one log entry may carry (`NodeConfig::max_write_bytes`), refused
    /// before anything was proposed (413).
    #[error("{0}")]
    TooLarge(String),

    /// The storage engine failed.
    #[error(transparent)]
    Storage(#[from] crate::Error),

    /// Bytes from disk or the network that do not decode.
    #[error("cannot decode {0}")]
    Decode(String),

    /// A call to another node failed.
    #[error("rpc to {target}: {reason}")]
    Rpc { target: String, reason: String },

    /// openraft stopped (a storage error, a panic, a shutdown) or broke an expectation.
    #[error("{0}")]
    Internal(String),
}

fn leader_text(leader: &Option<(NodeId, ClusterNode)>) -> String {
    match leader {
        Some((id, node)) => format!("; the leader is node {id} at {}", node.http_addr),
        None => "; no leader is known".to_string(),
    }
}

impl Error {
    /// Whether the same request may succeed if tried again (here or at the leader).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::NotLeader { .. }
                | Error::NoQuorum(_)
                | Error::Unavailable(_)
                | Error::Rpc { .. }
        )
    }

    pub(crate) fn io(what: &str, path: &std::path::Path, e: std::io::Error) -> Error {
        Error::Internal(format!("{what} {}: {e}", path.display()))
    }
}

/// The cluster's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Turns an error into openraft's storage error, which stops the Raft node: only for
/// failures after which the node must not go on (the engine's own rule for a failed sync).
pub(crate) fn storage_error(
    e: impl std::error::Error + 'static,
    make: fn(openraft::AnyError) -> openraft::StorageIOError<NodeId>,
) -> openraft::StorageError<NodeId> {
    make(openraft::AnyError::new(&e)).into()
}
