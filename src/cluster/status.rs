//! What a node reports about itself: [`Status`] for operators (`lsmdb cluster status`), and
//! [`Metrics`], plain numbers a server renders for Prometheus.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::ServerState;
use serde::Serialize;
use tokio::sync::watch;

use super::node::Node;
use super::types::{ClusterNode, LogId, NodeId};

type RaftMetrics = openraft::RaftMetrics<NodeId, ClusterNode>;

/// A node's role in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

impl From<ServerState> for Role {
    fn from(s: ServerState) -> Role {
        match s {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }
}

/// How far one follower (or learner) is, as its leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FollowerStatus {
    pub id: NodeId,
    /// The last log index known to be on its disk.
    pub matched: Option<u64>,
    /// Entries the leader has that it is not known to have.
    pub lag: u64,
}

/// A node's view of the group, at one moment.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub applied: Option<LogId>,
    pub snapshot: Option<LogId>,
    pub purged: Option<LogId>,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, ClusterNode>,
    /// Only on the leader.
    pub followers: Vec<FollowerStatus>,
    /// On the leader: how long since a quorum last answered.
    pub millis_since_quorum_ack: Option<u64>,
}

/// Numbers for a metrics endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Metrics {
    pub term: u64,
    pub is_leader: bool,
    /// Times this node saw a new leader since it started.
    pub leader_changes: u64,
    pub last_log_index: u64,
    pub applied_index: u64,
    /// On the leader: the largest lag of any follower, in entries.
    pub max_replication_lag: u64,
    /// On the leader: each follower's (and learner's) lag, in entries.
    pub replication_lag: Vec<(NodeId, u64)>,
    pub apply_batches: u64,
    pub apply_entries: u64,
    /// Time spent writing applied batches, their syncs included.
    pub apply_seconds: f64,
    /// Applied batches that took at most each bound of
    /// [`APPLY_BUCKETS`](super::APPLY_BUCKETS), cumulative as Prometheus counts them.
    pub apply_buckets: Vec<(f64, u64)>,
}

fn status_from(m: &RaftMetrics) -> Status {
    let membership = m.membership_config.membership();
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let learners: Vec<NodeId> = membership.learner_ids().collect();
    let nodes = membership
        .nodes()
        .map(|(id, node)| (*id, node.clone()))
        .collect();
    let last = m.last_log_index.unwrap_or(0);
    let followers = m
        .replication
        .iter()
        .flatten()
        .filter(|(id, _)| **id != m.id)
        .map(|(id, matched)| {
            let matched = matched.map(|l| l.index);
            FollowerStatus {
                id: *id,
                matched,
                lag: last.saturating_sub(matched.unwrap_or(0)),
            }
        })
        .collect();
    Status {
        id: m.id,
        role: m.state.into(),
        term: m.current_term,
        leader: m.current_leader,
        last_log_index: m.last_log_index,
        applied: m.last_applied,
        snapshot: m.snapshot,
        purged: m.purged,
        voters,
        learners,
        nodes,
        followers,
        millis_since_quorum_ack: m.millis_since_quorum_ack,
    }
}

impl Node {
    /// Role, leader, term, log, applied index and, on the leader, each follower's lag.
    pub fn status(&self) -> Status {
        status_from(&self.core.raft.metrics().borrow())
    }

    pub fn metrics(&self) -> Metrics {
        let status = self.status();
        let c = &self.core.sm.counters;
        Metrics {
            term: status.term,
            is_leader: status.role == Role::Leader,
            leader_changes: self.core.leader_changes.load(Ordering::Relaxed),
            last_log_index: status.last_log_index.unwrap_or(0),
            applied_index: status.applied.map_or(0, |l| l.index),
            max_replication_lag: status.followers.iter().map(|f| f.lag).max().unwrap_or(0),
            replication_lag: status.followers.iter().map(|f| (f.id, f.lag)).collect(),
            apply_batches: c.batches.load(Ordering::Relaxed),
            apply_entries: c.entries.load(Ordering::Relaxed),
            apply_seconds: c.micros.load(Ordering::Relaxed) as f64 / 1e6,
            apply_buckets: super::APPLY_BUCKETS
                .iter()
                .zip(&c.buckets)
                .scan(0, |sum, (bound, n)| {
                    *sum += n.load(Ordering::Relaxed);
                    Some((*bound, *sum))
                })
                .collect(),
        }
    }
}

/// Counts each time the known leader becomes a different node, until the metrics end.
pub(crate) async fn count_leader_changes(
    mut rx: watch::Receiver<RaftMetrics>,
    count: Arc<AtomicU64>,
) {
    let mut last = None;
    loop {
        let leader = rx.borrow_and_update().current_leader;
        if leader.is_some() && leader != last {
            count.fetch_add(1, Ordering::Relaxed);
            last = leader;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
