//! The leader's read index, shared by the linearizable reads that arrive together.
//!
//! Each check (openraft's `get_read_log_id`) sends a heartbeat to every voter and waits for
//! a quorum. Made once per read, 64 concurrent reads put 128 heartbeats in the followers'
//! RPC queues at once; those miss their heartbeat-long deadline and the reads fail with "no
//! quorum" while the group is healthy. So at most one check runs at a time, and the reads
//! that arrive while it runs wait for the next one, which answers them all. A check serves
//! only reads that arrived before it began: a read may not be answered by a confirmation of
//! leadership older than itself, or it could miss a write acknowledged in between.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{CheckIsLeaderError, RaftError};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::rpc::ReadIndexReply;
use super::types::Raft;

/// The pause before a read whose check gathered no quorum asks again.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// The reads waiting for the next check.
#[derive(Default)]
pub(crate) struct ReadIndex {
    batch: Arc<Mutex<Batch>>,
}

#[derive(Default)]
struct Batch {
    /// Whether a task is checking; it takes the waiters when its check is done.
    running: bool,
    waiters: Vec<oneshot::Sender<ReadIndexReply>>,
}

impl ReadIndex {
    /// The read index from a check that begins after this call, or `NoQuorum` at
    /// `deadline`; one check may take at most `limit`. A check that gathers no quorum (its
    /// heartbeats are answered only after the heartbeat interval, as on a loaded machine)
    /// is tried again until the deadline. Called on the runtime.
    pub(crate) async fn read_index(
        &self,
        raft: &Raft,
        deadline: Instant,
        limit: Duration,
    ) -> ReadIndexReply {
        loop {
            let reply = self.once(raft, deadline, limit).await;
            let left = deadline.saturating_duration_since(Instant::now());
            if !matches!(reply, ReadIndexReply::NoQuorum) || left.is_zero() {
                return reply;
            }
            tokio::time::sleep(left.min(RETRY_PAUSE)).await;
        }
    }

    async fn once(&self, raft: &Raft, deadline: Instant, limit: Duration) -> ReadIndexReply {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batch = self.batch.lock();
            batch.waiters.push(tx);
            !std::mem::replace(&mut batch.running, true)
        };
        if start {
            tokio::spawn(drive(Arc::clone(&self.batch), raft.clone(), limit));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) | Err(_) => ReadIndexReply::NoQuorum,
        }
    }
}

/// Checks for the waiting reads, batch after batch, until none is left.
async fn drive(batch: Arc<Mutex<Batch>>, raft: Raft, limit: Duration) {
    loop {
        let waiters = {
            let mut b = batch.lock();
            if b.waiters.is_empty() {
                b.running = false;
                return;
            }
            std::mem::take(&mut b.waiters)
        };
        let reply = check(&raft, limit).await;
        for waiter in waiters {
            // A reader that gave up has dropped its receiver.
            let _ = waiter.send(reply.clone());
        }
    }
}

async fn check(raft: &Raft, limit: Duration) -> ReadIndexReply {
    match tokio::time::timeout(limit, raft.get_read_log_id()).await {
        Ok(Ok((read, _applied))) => ReadIndexReply::Ok(read),
        Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
            ReadIndexReply::NotLeader(f.leader_id.zip(f.leader_node))
        }
        Ok(Err(_)) | Err(_) => ReadIndexReply::NoQuorum,
    }
}
