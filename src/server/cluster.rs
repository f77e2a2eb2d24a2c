//! The HTTP API over a member of a replicated group (feature `cluster`; `lsmdb serve
//! --cluster`), and the group's admin routes.
//!
//! - Writes go through Raft. A follower forwards each write once to the leader over Raft
//!   RPC and answers with the leader's outcome, so clients may talk to any node.
//! - Answers that are not a success say whether the write may have happened: 503 with
//!   `"outcome":"unknown"` when it was proposed but not known to be committed in time (it
//!   may still take effect); any other 503 (no leader, no quorum, a leader change) means
//!   nothing was written, and carries `Retry-After`. Never a success that is not committed.
//! - Reads are linearizable unless `?consistency=stale` (this node's data as it is).
//! - Keys the cluster reserves for itself are refused on writes (400) and left out of
//!   reads; a write larger than one log entry may carry gets 413.
//! - Every wait (a leader, a quorum, a commit) ends within the request timeout.
//!
//! Admin routes, behind the group's token (the one its nodes' Raft RPC uses) rather than the
//! client token: `GET /cluster/status`, `POST /cluster/init`, `/cluster/add-learner`,
//! `/cluster/promote`, `/cluster/remove`, `/cluster/snapshot`. Membership changes are made
//! by the leader; a follower answers them with 307 and the leader's address.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::backend::{Consistency, health_reply, range_of};
use super::http::{HttpError, Reply};
use super::json::{Column, Encoding};
use super::metrics::{Metrics, header, metric};
use super::stream;
use crate::cluster::{self, ClusterNode, Command, Node, NodeId, Op, ReadLease, Role};

/// How long a membership change or a snapshot may take: adding a learner waits until it has
/// caught up.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

pub(super) struct Clustered {
    node: Node,
    /// How long a request may wait for the group.
    timeout: Duration,
}

impl From<Consistency> for cluster::Consistency {
    fn from(c: Consistency) -> Self {
        match c {
            Consistency::Linearizable => cluster::Consistency::Linearizable,
            Consistency::Stale => cluster::Consistency::Stale,
        }
    }
}

/// The client's answer to a cluster error; see the module docs.
fn cluster_error(e: cluster::Error) -> HttpError {
    use cluster::Error as E;
    let retry = |e: HttpError| e.with_header("Retry-After", "1");
    match e {
        E::OutcomeUnknown(_) => HttpError::new(503, e.to_string()).with_field("outcome", "unknown"),
        E::NotLeader { ref leader } => {
            let hint = leader.as_ref().map(|(_, node)| node.http_addr.clone());
            let reply = retry(HttpError::new(503, e.to_string()));
            match hint {
                Some(addr) => reply.with_field("leader", addr),
                None => reply,
            }
        }
        E::NoQuorum(_) | E::Unavailable(_) | E::Rpc { .. } => {
            retry(HttpError::new(503, e.to_string()))
        }
        E::InvalidArgument(m) => HttpError::bad_request(m),
        E::TooLarge(m) => HttpError::new(413, m),
        E::Storage(e) => HttpError::engine(e),
        other => HttpError::new(500, other.to_string()),
    }
}

/// A range's iterator with the lease that keeps its database in place, reserved keys left
/// out.
struct Leased {
    iter: crate::DbIterator,
    _lease: ReadLease,
}

impl Iterator for Leased {
    type Item = crate::Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.iter.next() {
                Some(Ok((key, _))) if cluster::is_reserved_key(&key) => continue,
                other => return other,
            }
        }
    }
}

impl Clustered {
    pub fn new(node: Node, timeout: Duration) -> Clustered {
        Clustered { node, timeout }
    }

    pub fn get(&self, key: &[u8], consistency: Consistency) -> Result<Option<Vec<u8>>, HttpError> {
        self.node
            .get(key, consistency.into(), self.timeout)
            .map_err(cluster_error)
    }

    pub fn write(&self, command: Command) -> Result<(), HttpError> {
        self.node
            .write_or_forward(command, self.timeout)
            .map(|_| ())
            .map_err(cluster_error)
    }

    /// The parsed batch body as one log entry's operations.
    pub fn command(&self, keys: &Column, values: &Column) -> Command {
        let ops = keys.iter().zip(values.iter()).map(|(key, value)| {
            let key = key.unwrap_or_default().to_vec();
            match value {
                Some(value) => Op::Put {
                    key,
                    value: value.to_vec(),
                },
                None => Op::Delete { key },
            }
        });
        Command::Write(ops.collect())
    }

    /// The range is sent as it is read, holding a lease on the node's database until the
    /// reply is written (at most the body timeout): a snapshot install waits for it.
    pub fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: Option<usize>,
        encoding: Encoding,
        consistency: Consistency,
    ) -> Result<Reply, HttpError> {
        let lease = self
            .node
            .lease(consistency.into(), self.timeout)
            .map_err(cluster_error)?;
        let iter = range_of(&lease, start, end).map_err(HttpError::engine)?;
        let leased = Leased {
            iter,
            _lease: lease,
        };
        stream::range_reply(leased, limit, encoding).map_err(HttpError::engine)
    }

    /// `POST /admin/checkpoint` on a node: a checkpoint of this node's replica, taken once
    /// it has applied every write acknowledged before the request (a linearizable read
    /// barrier). The copy is an ordinary database; it holds the group's two reserved keys
    /// (docs/FORMAT.md) beside the data.
    pub fn checkpoint(&self, dest: &std::path::Path) -> Result<(), HttpError> {
        let lease = self
            .node
            .lease(cluster::Consistency::Linearizable, self.timeout)
            .map_err(cluster_error)?;
        lease.checkpoint(dest).map_err(HttpError::engine)
    }

    fn engine_stats(&self) -> Result<crate::Stats, HttpError> {
        self.node
            .read(cluster::Consistency::Stale, self.timeout, |db| {
                Ok(db.stats())
            })
            .map_err(cluster_error)
    }

    pub fn stats(&self) -> Result<Reply, HttpError> {
        let mut stats = serde_json::to_value(self.engine_stats()?)
            .map_err(|e| HttpError::new(500, format!("cannot encode stats: {e}")))?;
        if let Value::Object(map) = &mut stats {
            map.insert("cluster".into(), self.status_json());
        }
        Ok(Reply::json(200, &stats))
    }

    pub fn health(&self) -> Reply {
        let status = self.node.status();
        let problem = match self.engine_stats() {
            Err(e) => Some(e.message),
            Ok(stats) => stats.writes_stopped.or(stats.reads_failing),
        };
        let problem = problem.or_else(|| match (status.role, status.leader) {
            (Role::Shutdown, _) => Some("the node has stopped".to_string()),
            (_, None) => Some("no leader is known".to_string()),
            _ => None,
        });
        health_reply(problem)
    }

    pub fn metrics(&self, http: &Metrics) -> Reply {
        let mut out = match self.engine_stats() {
            Ok(stats) => http.render(&stats),
            Err(_) => String::new(),
        };
        render_cluster(&mut out, &self.node.metrics());
        Reply::metrics(out)
    }

    fn status_json(&self) -> Value {
        let s = self.node.status();
        let me = self.node.node_info();
        let followers: Vec<Value> = s
            .followers
            .iter()
            .map(|f| json!({"id": f.id, "matched": f.matched, "lag": f.lag}))
            .collect();
        json!({
            "id": s.id,
            "raft_addr": me.raft_addr,
            "http_addr": me.http_addr,
            "role": s.role,
            "term": s.term,
            "leader": s.leader,
            "last_log_index": s.last_log_index,
            "applied_index": s.applied.map(|l| l.index),
            "snapshot_index": s.snapshot.map(|l| l.index),
            "purged_index": s.purged.map(|l| l.index),
            "voters": s.voters,
            "learners": s.learners,
            "nodes": s.nodes,
            "followers": followers,
            "millis_since_quorum_ack": s.millis_since_quorum_ack,
        })
    }

    pub fn admin(&self, request: &mut tiny_http::Request, path: &str) -> Result<Reply, HttpError> {
        let authorization = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.as_str());
        if !self.node.admits(authorization) {
            return Err(HttpError::new(
                401,
                "the cluster's admin routes need \"Authorization: Bearer <cluster token>\"",
            ));
        }
        let reading = matches!(
            request.method(),
            tiny_http::Method::Get | tiny_http::Method::Head
        );
        let known = [
            "/cluster/status",
            "/cluster/init",
            "/cluster/add-learner",
            "/cluster/promote",
            "/cluster/remove",
            "/cluster/snapshot",
        ];
        match path {
            _ if !known.contains(&path) => {
                return Err(HttpError::new(404, format!("no route for {path}")));
            }
            "/cluster/status" if reading => return Ok(Reply::json(200, &self.status_json())),
            "/cluster/status" => {
                let m = request.method();
                return Err(HttpError::method_not_allowed(m, path, "GET, HEAD"));
            }
            _ if request.method() != &tiny_http::Method::Post => {
                let m = request.method();
                return Err(HttpError::method_not_allowed(m, path, "POST"));
            }
            _ => {}
        }
        let body = super::http::read_body(request)?;
        let done = || Reply::json(200, &super::json::success());
        match path {
            "/cluster/init" => {
                let body: InitBody = parse(&body)?;
                self.node.initialize(body.members).map_err(cluster_error)?;
                Ok(done())
            }
            "/cluster/add-learner" => {
                let body: LearnerBody = parse(&body)?;
                let node = ClusterNode::new(body.raft_addr, body.http_addr);
                self.leader_only(path, self.node.add_learner(body.id, node, ADMIN_TIMEOUT))?;
                Ok(done())
            }
            "/cluster/promote" => {
                let body: IdsBody = parse(&body)?;
                self.leader_only(path, self.node.promote(&body.ids, ADMIN_TIMEOUT))?;
                Ok(done())
            }
            "/cluster/remove" => {
                let body: IdBody = parse(&body)?;
                self.leader_only(path, self.node.remove(body.id, ADMIN_TIMEOUT))?;
                Ok(done())
            }
            "/cluster/snapshot" => {
                let body: SnapshotBody = parse(&body)?;
                let snapshot = self
                    .node
                    .trigger_snapshot(ADMIN_TIMEOUT)
                    .map_err(cluster_error)?;
                if body.purge {
                    self.node
                        .purge_log(snapshot.index, ADMIN_TIMEOUT)
                        .map_err(cluster_error)?;
                }
                Ok(Reply::json(
                    200,
                    &json!({"success": true, "snapshot_index": snapshot.index}),
                ))
            }
            _ => Err(HttpError::new(404, format!("no route for {path}"))),
        }
    }

    /// A membership change's outcome; on a follower, 307 to the same route on the leader.
    fn leader_only(&self, path: &str, result: cluster::Result<()>) -> Result<(), HttpError> {
        match result {
            Err(cluster::Error::NotLeader {
                leader: Some((id, node)),
            }) if id != self.node.id() => Err(HttpError::new(
                307,
                format!("node {id} leads the group; ask it at {}", node.http_addr),
            )
            .with_field("leader", node.http_addr.clone())
            .with_header("Location", format!("http://{}{path}", node.http_addr))),
            other => other.map_err(cluster_error),
        }
    }

    pub fn close(self) -> Result<(), super::Error> {
        self.node.shutdown().map_err(super::Error::Node)
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, HttpError> {
    serde_json::from_slice(body).map_err(|e| HttpError::bad_request(format!("the body: {e}")))
}

#[derive(Deserialize)]
struct InitBody {
    members: BTreeMap<NodeId, ClusterNode>,
}

#[derive(Deserialize)]
struct LearnerBody {
    id: NodeId,
    raft_addr: String,
    http_addr: String,
}

#[derive(Deserialize)]
struct IdsBody {
    ids: Vec<NodeId>,
}

#[derive(Deserialize)]
struct IdBody {
    id: NodeId,
}

#[derive(Deserialize)]
struct SnapshotBody {
    #[serde(default)]
    purge: bool,
}

/// The node's Raft figures, after the HTTP and engine ones.
fn render_cluster(out: &mut String, m: &cluster::Metrics) {
    use std::fmt::Write;
    metric(
        out,
        "lsmdb_raft_term",
        "gauge",
        "The current Raft term.",
        m.term,
    );
    metric(
        out,
        "lsmdb_raft_is_leader",
        "gauge",
        "1 while this node is the leader.",
        u8::from(m.is_leader),
    );
    metric(
        out,
        "lsmdb_raft_leader_changes_total",
        "counter",
        "Times this node saw a new leader since it started.",
        m.leader_changes,
    );
    metric(
        out,
        "lsmdb_raft_last_log_index",
        "gauge",
        "Index of the last entry in this node's log.",
        m.last_log_index,
    );
    metric(
        out,
        "lsmdb_raft_applied_index",
        "gauge",
        "Index of the last entry applied to this node's data.",
        m.applied_index,
    );
    metric(
        out,
        "lsmdb_raft_max_replication_lag_entries",
        "gauge",
        "On the leader: the largest number of entries any follower is behind.",
        m.max_replication_lag,
    );
    header(
        out,
        "lsmdb_raft_replication_lag_entries",
        "gauge",
        "On the leader: entries each follower is behind.",
    );
    for (id, lag) in &m.replication_lag {
        let _ = writeln!(
            out,
            "lsmdb_raft_replication_lag_entries{{follower=\"{id}\"}} {lag}"
        );
    }
    metric(
        out,
        "lsmdb_raft_applied_entries_total",
        "counter",
        "Log entries applied to this node's data.",
        m.apply_entries,
    );
    let name = "lsmdb_raft_apply_duration_seconds";
    header(
        out,
        name,
        "histogram",
        "Time to write one batch of applied entries to the data, its sync included.",
    );
    for (bound, n) in &m.apply_buckets {
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", m.apply_batches);
    let _ = writeln!(out, "{name}_sum {}", m.apply_seconds);
    let _ = writeln!(out, "{name}_count {}", m.apply_batches);
}
