//! The blocking API a server calls from its worker threads: writes, reads at a chosen
//! consistency, and membership changes. Each call takes a timeout and returns within about
//! it.
//!
//! Write outcomes, and why each is honest:
//! - success: committed and applied;
//! - [`Error::NotLeader`]: not proposed here (or proposed and then truncated by a new
//!   leader, which means it was never committed);
//! - [`Error::NoQuorum`]: the leader has not heard from a quorum within the timeout, so it
//!   proposed nothing;
//! - [`Error::OutcomeUnknown`]: proposed, but not known to be committed in time; it may yet
//!   be, or may be lost.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};

use super::error::{Error, Result};
use super::network::CallError;
use super::node::{Core, Node};
use super::reserved::without_reserved;
use super::rpc::{self, LeaderHint, ReadIndexReply, WriteReply};
use super::types::{ClusterNode, Command, LogId, NodeId};
use crate::Db;

/// A hold on the state machine's database (see [`Node::lease`]); dereferences to it.
pub struct ReadLease(std::sync::Arc<Db>);

impl std::ops::Deref for ReadLease {
    type Target = Db;

    fn deref(&self) -> &Db {
        &self.0
    }
}

/// How fresh a read must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Sees every write acknowledged before the read began (the leader confirms it still
    /// leads; a follower waits until it has applied the leader's read index).
    #[default]
    Linearizable,
    /// This node's data as it is: no round trip, possibly behind.
    Stale,
}

impl Core {
    fn leader_hint(&self) -> LeaderHint {
        let m = self.raft.metrics().borrow().clone();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    /// Waits until this node leads with a quorum heard from recently, or says who leads.
    async fn await_quorum(&self, deadline: Instant) -> Result<()> {
        let window = self.config.election_timeout_min.as_millis() as u64;
        let mut rx = self.raft.metrics();
        loop {
            {
                let m = rx.borrow_and_update();
                if m.state != ServerState::Leader {
                    drop(m);
                    return Err(Error::NotLeader {
                        leader: self.leader_hint(),
                    });
                }
                if m.millis_since_quorum_ack.is_some_and(|ms| ms <= window) {
                    return Ok(());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // Metrics are republished at every tick, so the wait sees fresh numbers.
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Unavailable("the node is stopping".into())),
                Err(_) => {
                    return Err(Error::NoQuorum(format!(
                        "this leader has not heard from a quorum for over {window} ms"
                    )));
                }
            }
        }
    }

    /// Proposes `cmd` as the leader and waits until it is applied.
    pub(crate) async fn write_as_leader(&self, cmd: Command, deadline: Instant) -> Result<LogId> {
        cmd.validate(self.config.max_write_bytes)?;
        self.await_quorum(deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let proposed = tokio::time::timeout(left, self.raft.client_write(cmd)).await;
        proposal_outcome(proposed, "the write", left)
    }

    /// The leader's side of a linearizable read: confirms leadership with a quorum and
    /// returns the log id the read must wait for (read_index.rs shares one confirmation
    /// among the reads that arrive together).
    pub(crate) async fn read_index_as_leader(&self, deadline: Instant) -> ReadIndexReply {
        let limit = self.config.election_timeout_min;
        self.reads.read_index(&self.raft, deadline, limit).await
    }

    /// Waits until a read here would be as fresh as `consistency` asks.
    async fn read_barrier(&self, consistency: Consistency, deadline: Instant) -> Result<()> {
        if consistency == Consistency::Stale {
            return Ok(());
        }
        let is_leader = self.raft.metrics().borrow().state == ServerState::Leader;
        let reply = if is_leader {
            self.read_index_as_leader(deadline).await
        } else {
            let (id, node) = self.await_leader(deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            self.call(id, node, rpc::READ_INDEX, (), left)
                .await
                .map_err(|e| Error::Rpc {
                    target: format!("node {id}"),
                    reason: e.to_string(),
                })?
        };
        let index = match reply {
            ReadIndexReply::Ok(read) => read.map_or(0, |l| l.index),
            ReadIndexReply::NotLeader(leader) => return Err(Error::NotLeader { leader }),
            ReadIndexReply::NoQuorum => {
                return Err(Error::NoQuorum(
                    "the leader could not confirm its leadership with a quorum".into(),
                ));
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|_| {
                Error::NoQuorum(format!(
                    "this node did not apply up to the read index in {left:?}"
                ))
            })
    }

    /// The leader, once one is known (not this node), or `NoQuorum` at the deadline.
    async fn await_leader(&self, deadline: Instant) -> Result<(NodeId, ClusterNode)> {
        let mut rx = self.raft.metrics();
        loop {
            if let Some(leader) = self.leader_hint() {
                return Ok(leader);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::Unavailable("the node is stopping".into())),
                Err(_) => return Err(Error::NoQuorum("no leader is known".into())),
            }
        }
    }

    /// A postcard call to another node, on a blocking thread.
    async fn call<Req, Resp>(
        &self,
        target: NodeId,
        node: ClusterNode,
        path: &'static str,
        request: Req,
        timeout: Duration,
    ) -> std::result::Result<Resp, CallError>
    where
        Req: serde::Serialize + Send + 'static,
        Resp: serde::de::DeserializeOwned + Send + 'static,
    {
        let client = std::sync::Arc::clone(&self.client);
        tokio::task::spawn_blocking(move || {
            client.call_value(target, &node.raft_addr, path, &request, timeout)
        })
        .await
        .map_err(|e| CallError::Broken(e.to_string()))?
    }
}

fn forwarded_outcome(
    reply: std::result::Result<WriteReply, CallError>,
    target: NodeId,
) -> Result<LogId> {
    match reply {
        Ok(WriteReply::Ok(log_id)) => Ok(log_id),
        Ok(WriteReply::NotLeader(leader)) => Err(Error::NotLeader { leader }),
        Ok(WriteReply::NoQuorum(r)) => Err(Error::NoQuorum(r)),
        Ok(WriteReply::OutcomeUnknown(r)) => Err(Error::OutcomeUnknown(r)),
        Ok(WriteReply::Invalid(r)) => Err(Error::InvalidArgument(r)),
        Ok(WriteReply::TooLarge(r)) => Err(Error::TooLarge(r)),
        Ok(WriteReply::Unavailable(r)) => Err(Error::Unavailable(r)),
        // Never delivered, or refused before anything was proposed: nothing happened.
        Err(e @ (CallError::NotSent(_) | CallError::Status(..))) => Err(Error::Rpc {
            target: format!("node {target}"),
            reason: e.to_string(),
        }),
        Err(e) => Err(Error::OutcomeUnknown(format!(
            "forwarded to the leader (node {target}): {e}"
        ))),
    }
}

/// What the leader answers a forwarded write with.
pub(crate) fn write_reply(result: Result<LogId>) -> WriteReply {
    match result {
        Ok(log_id) => WriteReply::Ok(log_id),
        Err(Error::NotLeader { leader }) => WriteReply::NotLeader(leader),
        Err(Error::NoQuorum(r)) => WriteReply::NoQuorum(r),
        Err(Error::InvalidArgument(r)) => WriteReply::Invalid(r),
        Err(Error::TooLarge(r)) => WriteReply::TooLarge(r),
        Err(Error::Unavailable(r)) => WriteReply::Unavailable(r),
        Err(e) => WriteReply::OutcomeUnknown(e.to_string()),
    }
}

impl Node {
    /// Applies `cmd` through the group if this node leads; see the module docs for what
    /// each outcome means. Returns the entry's log id.
    pub fn write(&self, cmd: Command, timeout: Duration) -> Result<LogId> {
        let deadline = Instant::now() + timeout;
        self.core
            .block_on(self.core.write_as_leader(cmd, deadline))?
    }

    /// Like [`Node::write`], but a follower forwards the write once to the leader (over Raft
    /// RPC) instead of answering `NotLeader`.
    pub fn write_or_forward(&self, cmd: Command, timeout: Duration) -> Result<LogId> {
        let deadline = Instant::now() + timeout;
        let core = &self.core;
        core.block_on(async {
            match core.write_as_leader(cmd.clone(), deadline).await {
                Err(Error::NotLeader { leader }) => {
                    let (id, node) = match leader {
                        Some(l) if l.0 != core.id => l,
                        _ => core.await_leader(deadline).await?,
                    };
                    if id == core.id {
                        return core.write_as_leader(cmd, deadline).await;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    forwarded_outcome(core.call(id, node, rpc::WRITE, cmd, left).await, id)
                }
                other => other,
            }
        })?
    }

    /// Runs `f` on the state machine's database once a read there is as fresh as
    /// `consistency` asks. `f` must finish its reading inside (an iterator must not escape):
    /// a snapshot install waits for it and then replaces the database. Reserved keys are in
    /// the database; [`Node::get`] and [`Node::range`] hide them.
    pub fn read<T>(
        &self,
        consistency: Consistency,
        timeout: Duration,
        f: impl FnOnce(&Db) -> crate::Result<T>,
    ) -> Result<T> {
        let lease = self.lease(consistency, timeout)?;
        Ok(f(&lease)?)
    }

    /// The state machine's database, once a read there is as fresh as `consistency` asks,
    /// for reads that outlive a call (a range sent as it is read). A snapshot install waits
    /// until every lease is dropped (and gives up, stopping the node, after a minute): hold
    /// one only as long as a bounded reply takes. Reserved keys are in the database;
    /// [`without_reserved`](super::without_reserved) leaves them out of a scan.
    pub fn lease(&self, consistency: Consistency, timeout: Duration) -> Result<ReadLease> {
        let deadline = Instant::now() + timeout;
        self.core
            .block_on(self.core.read_barrier(consistency, deadline))??;
        let left = deadline.saturating_duration_since(Instant::now());
        Ok(ReadLease(self.core.sm.data.lease(left)?))
    }

    /// Whether an `Authorization` header value carries this group's token (always, when
    /// the group has none): for a server's administrative routes.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        match &self.core.config.token {
            Some(token) => rpc::token_matches(token, authorization),
            None => true,
        }
    }

    /// The value under `key`, at `consistency`.
    pub fn get(
        &self,
        key: &[u8],
        consistency: Consistency,
        timeout: Duration,
    ) -> Result<Option<Vec<u8>>> {
        if super::reserved::is_reserved_key(key) {
            return Ok(None);
        }
        self.read(consistency, timeout, |db| db.get(key))
    }

    /// The pairs with keys in `[start, end)`, reserved keys left out.
    pub fn range(
        &self,
        start: &[u8],
        end: &[u8],
        consistency: Consistency,
        timeout: Duration,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.read(consistency, timeout, |db| {
            without_reserved(db.range(start, end)?).collect()
        })
    }

    /// Makes a pristine node the first member(s) of a new group. Call it on one node, with
    /// every initial member (this one included).
    pub fn initialize(&self, members: BTreeMap<NodeId, ClusterNode>) -> Result<()> {
        self.core
            .block_on(self.core.raft.initialize(members))?
            .map_err(|e| Error::InvalidArgument(e.to_string()))
    }

    /// On the leader: adds a learner (it receives the log but does not vote) and waits until
    /// it has caught up, or `timeout`.
    pub fn add_learner(&self, id: NodeId, node: ClusterNode, timeout: Duration) -> Result<()> {
        self.leads()?;
        let raft = &self.core.raft;
        let fut = async { tokio::time::timeout(timeout, raft.add_learner(id, node, true)).await };
        proposal_outcome(self.core.block_on(fut)?, "adding the learner", timeout).map(|_| ())
    }

    /// On the leader: makes the learners `ids` voters.
    pub fn promote(&self, ids: &[NodeId], timeout: Duration) -> Result<()> {
        let ids: BTreeSet<NodeId> = ids.iter().copied().collect();
        self.change(ChangeMembers::AddVoterIds(ids), timeout)
    }

    /// On the leader: removes node `id` from the group, voter or learner.
    pub fn remove(&self, id: NodeId, timeout: Duration) -> Result<()> {
        let is_voter = self.status().voters.contains(&id);
        let ids = BTreeSet::from([id]);
        let change = if is_voter {
            ChangeMembers::RemoveVoters(ids)
        } else {
            ChangeMembers::RemoveNodes(ids)
        };
        self.change(change, timeout)
    }

    fn change(&self, change: ChangeMembers<NodeId, ClusterNode>, timeout: Duration) -> Result<()> {
        self.leads()?;
        let raft = &self.core.raft;
        let fut =
            async { tokio::time::timeout(timeout, raft.change_membership(change, false)).await };
        proposal_outcome(self.core.block_on(fut)?, "the membership change", timeout).map(|_| ())
    }

    /// `NotLeader` with the leader's name unless this node leads. openraft checks a
    /// membership change against the node's own view of the membership before it checks
    /// that the node leads, so a follower whose view differs (a node just removed, or asked
    /// to promote a learner it has not heard of) would refuse a change as invalid instead of
    /// naming the leader.
    fn leads(&self) -> Result<()> {
        if self.core.raft.metrics().borrow().state == ServerState::Leader {
            return Ok(());
        }
        Err(Error::NotLeader {
            leader: self.core.leader_hint(),
        })
    }

    /// Builds a snapshot now and waits until it covers what was applied when called.
    pub fn trigger_snapshot(&self, timeout: Duration) -> Result<LogId> {
        let raft = &self.core.raft;
        let applied = raft.metrics().borrow().last_applied;
        self.core.block_on(async {
            raft.trigger()
                .snapshot()
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            let m = raft
                .wait(Some(timeout))
                .metrics(
                    |m| m.snapshot >= applied && m.snapshot.is_some(),
                    "snapshot",
                )
                .await
                .map_err(|e| Error::Unavailable(e.to_string()))?;
            m.snapshot
                .ok_or_else(|| Error::Internal("no snapshot after building one".into()))
        })?
    }

    /// Purges the log up to `index` (never past the last snapshot) and waits for it.
    pub fn purge_log(&self, index: u64, timeout: Duration) -> Result<()> {
        let raft = &self.core.raft;
        self.core.block_on(async {
            raft.trigger()
                .purge_log(index)
                .await
                .map_err(|e| Error::Internal(e.to_string()))?;
            raft.wait(Some(timeout))
                .metrics(|m| m.purged.is_some_and(|p| p.index >= index), "purge")
                .await
                .map(|_| ())
                .map_err(|e| Error::Unavailable(e.to_string()))
        })?
    }

    /// Tests only: drops Raft traffic with exactly `peers` (empty heals). Fails unless the
    /// node was started with fault injection on.
    pub fn set_blocked_peers(&self, peers: BTreeSet<NodeId>) -> Result<()> {
        self.core.faults.set(peers)
    }
}

type Proposed = std::result::Result<
    std::result::Result<
        openraft::raft::ClientWriteResponse<super::types::TypeConfig>,
        RaftError<NodeId, ClientWriteError<NodeId, ClusterNode>>,
    >,
    tokio::time::error::Elapsed,
>;

/// What became of a log entry proposed (a write or a membership change) within `waited`.
fn proposal_outcome(proposed: Proposed, what: &str, waited: Duration) -> Result<LogId> {
    match proposed {
        Ok(Ok(reply)) => Ok(reply.log_id),
        // Not proposed here, or truncated by a newer leader: never committed.
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(Error::NotLeader {
                leader: f.leader_id.zip(f.leader_node),
            })
        }
        Ok(Err(RaftError::APIError(e))) => Err(Error::InvalidArgument(e.to_string())),
        Ok(Err(RaftError::Fatal(f))) => Err(Error::OutcomeUnknown(format!(
            "the node stopped while {what} was in flight: {f}"
        ))),
        Err(_) => Err(Error::OutcomeUnknown(format!(
            "{what} was not committed within {waited:?}"
        ))),
    }
}
