//! Tests of the cluster module: openraft's storage suite, the durability rules, and a
//! three-node group over real loopback RPC.

mod cluster;
mod durability;
mod suite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use openraft::{CommittedLeaderId, Entry, EntryPayload, Membership};

use super::{ClusterNode, Command, LogId, Node, NodeConfig, NodeId, Status, TypeConfig};

/// A server shares one node between its worker threads.
#[test]
fn a_node_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<Node>();
}

pub(crate) fn log_id(term: u64, index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

pub(crate) fn entry(term: u64, index: u64, cmd: Option<Command>) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: match cmd {
            Some(c) => EntryPayload::Normal(c),
            None => EntryPayload::Blank,
        },
    }
}

pub(crate) fn membership_entry(term: u64, index: u64, voters: &[NodeId]) -> Entry<TypeConfig> {
    let nodes: BTreeMap<NodeId, ClusterNode> = voters
        .iter()
        .map(|id| (*id, ClusterNode::new(format!("127.0.0.1:{id}"), "")))
        .collect();
    let membership = Membership::new(vec![voters.iter().copied().collect()], nodes);
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(membership),
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Polls `ok` until it holds or `within` passes; the panic names what never happened.
pub(crate) fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok() {
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How long the tests give a group to do something that takes a few election timeouts.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);
pub(crate) const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// Up to three nodes in one temporary directory, each stoppable and restartable at the same
/// RPC address.
pub(crate) struct Group {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<NodeId, Option<Node>>,
    pub addrs: BTreeMap<NodeId, String>,
    faults: bool,
}

impl Group {
    pub fn dir_of(&self, id: NodeId) -> PathBuf {
        self.dir.path().join(format!("node{id}"))
    }

    fn config(&self, id: NodeId, listen: &str) -> NodeConfig {
        let mut c = NodeConfig::new(id, self.dir_of(id));
        c.raft_listen = listen.to_string();
        c.http_addr = format!("http-of-{id}");
        c.token = Some("test-token".into());
        c.heartbeat = Duration::from_millis(100);
        c.election_timeout_min = Duration::from_millis(500);
        c.election_timeout_max = Duration::from_millis(1000);
        c.snapshot_every = 100_000;
        // Small, so a test's snapshot travels in many chunks.
        c.snapshot_chunk_bytes = 16 << 10;
        c.rpc_workers = 3;
        c.fault_injection = self.faults;
        c
    }

    /// Starts `n` nodes (ids 1..=n) and forms a group of all of them.
    pub fn start(n: u64, faults: bool) -> Group {
        let mut group = Group {
            dir: tempfile::tempdir().unwrap(),
            nodes: BTreeMap::new(),
            addrs: BTreeMap::new(),
            faults,
        };
        for id in 1..=n {
            let node = Node::start(group.config(id, "127.0.0.1:0")).unwrap();
            group.addrs.insert(id, node.raft_addr().to_string());
            group.nodes.insert(id, Some(node));
        }
        let members = group
            .nodes
            .values()
            .flatten()
            .map(|n| (n.id(), n.node_info()))
            .collect();
        group.node(1).initialize(members).unwrap();
        group
    }

    /// Starts node `id` outside the group, for `add_learner`.
    pub fn add(&mut self, id: NodeId) {
        let node = Node::start(self.config(id, "127.0.0.1:0")).unwrap();
        self.addrs.insert(id, node.raft_addr().to_string());
        self.nodes.insert(id, Some(node));
    }

    pub fn node(&self, id: NodeId) -> &Node {
        self.nodes[&id].as_ref().expect("node is running")
    }

    pub fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().flatten()
    }

    pub fn stop(&mut self, id: NodeId) {
        let node = self.nodes.get_mut(&id).and_then(Option::take).unwrap();
        node.shutdown().unwrap();
    }

    pub fn restart(&mut self, id: NodeId) {
        let listen = self.addrs[&id].clone();
        let node = Node::start(self.config(id, &listen)).unwrap();
        self.nodes.insert(id, Some(node));
    }

    /// The leader every running node agrees on, once there is one.
    pub fn leader(&self) -> NodeId {
        let mut found = None;
        wait_until("a leader all running nodes agree on", PATIENCE, || {
            let views: Vec<Status> = self.running().map(Node::status).collect();
            let leader = views[0].leader;
            found = leader;
            leader.is_some()
                && views.iter().all(|s| s.leader == leader)
                && self
                    .nodes
                    .get(&leader.unwrap())
                    .is_some_and(Option::is_some)
        });
        found.unwrap()
    }

    /// Waits until every running node has applied at least `index`.
    pub fn await_applied(&self, index: u64) {
        wait_until(&format!("every node applying {index}"), PATIENCE, || {
            self.running()
                .all(|n| n.status().applied.is_some_and(|a| a.index >= index))
        });
    }
}

pub(crate) fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

pub(crate) fn dir_has_snapshot(node_dir: &Path) -> bool {
    std::fs::read_dir(node_dir.join("snapshots"))
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("snap-"))
        })
        .unwrap_or(false)
}
