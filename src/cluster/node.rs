//! Starting and stopping a node: its stores, the tokio runtime openraft runs on (owned by a
//! background thread), the Raft instance and the RPC server.
//!
//! Blocking callers (HTTP workers) reach the runtime with `Handle::block_on`; that is only
//! allowed from threads outside the runtime, which every blocking call checks.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

use super::error::{Error, Result};
use super::faults::{Faults, faults_enabled_by_env};
use super::log_store::{LogStore, PurgeGate};
use super::network::{Network, RpcClient};
use super::read_index::ReadIndex;
use super::rpc_server::RpcServer;
use super::state_machine::{Shared, StateMachine};
use super::transfer::Receiver;
use super::types::{ClusterNode, NodeId, Raft};

/// How a node runs. [`NodeConfig::new`] gives the defaults; tests shorten the timeouts.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub id: NodeId,
    /// The node's directory (`raft/`, `data/`, `snapshots/`; see the module docs).
    pub dir: PathBuf,
    /// Where the Raft RPC server listens; port 0 picks a free one.
    pub raft_listen: String,
    /// The RPC address other nodes are told; the bound address if `None`.
    pub raft_advertise: Option<String>,
    /// The client HTTP address other nodes name when they redirect to this one.
    pub http_addr: String,
    /// When set, every RPC must carry it as a bearer token, and this node sends it.
    pub token: Option<String>,
    pub heartbeat: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// A snapshot is built after this many entries were applied since the last one.
    pub snapshot_every: u64,
    /// The largest write (its encoded operations) one log entry may carry.
    pub max_write_bytes: usize,
    /// The largest piece of a snapshot sent in one RPC request (transfer.rs); within
    /// [`CHUNK_BYTES_RANGE`](super::transfer::CHUNK_BYTES_RANGE).
    pub snapshot_chunk_bytes: usize,
    /// Worker threads answering Raft RPC.
    pub rpc_workers: usize,
    /// Whether the partition switch exists (tests only; `LSMDB_TEST_FAULTS=1`).
    pub fault_injection: bool,
    /// Options of the state machine's database.
    pub data_options: crate::Options,
}

impl NodeConfig {
    pub fn new(id: NodeId, dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            dir: dir.into(),
            raft_listen: "127.0.0.1:0".into(),
            raft_advertise: None,
            http_addr: String::new(),
            token: None,
            heartbeat: Duration::from_millis(150),
            election_timeout_min: Duration::from_millis(1000),
            election_timeout_max: Duration::from_millis(2000),
            snapshot_every: 10_000,
            max_write_bytes: 4 << 20,
            snapshot_chunk_bytes: super::transfer::DEFAULT_CHUNK_BYTES,
            rpc_workers: 4,
            fault_injection: faults_enabled_by_env(),
            data_options: crate::Options::default(),
        }
    }

    fn raft_config(&self) -> Result<openraft::Config> {
        let chunks = super::transfer::CHUNK_BYTES_RANGE;
        if !chunks.contains(&self.snapshot_chunk_bytes) {
            return Err(Error::InvalidArgument(format!(
                "snapshot chunks of {} bytes: they must be {} to {} bytes",
                self.snapshot_chunk_bytes,
                chunks.start(),
                chunks.end()
            )));
        }
        let ms = |d: Duration| d.as_millis() as u64;
        openraft::Config {
            cluster_name: "lsmdb".into(),
            heartbeat_interval: ms(self.heartbeat),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            // openraft bounds the send with this; ours bounds it by idle time (network.rs).
            install_snapshot_timeout: 120_000,
            max_payload_entries: 256,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            // Keep enough log that a briefly lagging follower catches up by entries.
            max_in_snapshot_log_to_keep: self.snapshot_every.min(1000),
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::InvalidArgument(format!("raft timing: {e}")))
    }
}

/// What the RPC server and the blocking API share.
pub(crate) struct Core {
    pub id: NodeId,
    pub raft: Raft,
    pub handle: tokio::runtime::Handle,
    pub sm: Arc<Shared>,
    pub client: Arc<RpcClient>,
    pub faults: Arc<Faults>,
    /// The snapshot transfer this node is receiving, if any.
    pub receiver: Receiver,
    /// The linearizable reads waiting for the leader's next read index.
    pub reads: ReadIndex,
    pub config: NodeConfig,
    pub leader_changes: Arc<AtomicU64>,
}

impl Core {
    /// Runs `f` on the runtime, from a thread outside it.
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> Result<F::Output> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::Internal(
                "a blocking cluster call was made from inside a tokio runtime".into(),
            ));
        }
        Ok(self.handle.block_on(f))
    }
}

/// A running member of a group.
pub struct Node {
    pub(crate) core: Arc<Core>,
    raft_addr: String,
    rpc: Option<RpcServer>,
    runtime: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    log: Option<LogStore>,
}

impl Node {
    /// Opens the node's directory (recovering from any crash), starts Raft and the RPC
    /// server. A new node waits to be initialized ([`Node::initialize`]) or added by a
    /// leader; a restarted one rejoins its group.
    pub fn start(config: NodeConfig) -> Result<Node> {
        let raft_config = Arc::new(config.raft_config()?);
        let gate = PurgeGate::new(None);
        let log = LogStore::open(
            &config.dir.join("raft"),
            Some(gate.clone()),
            crate::Options::default(),
        )?;
        log.claim_node_id(config.id)?;
        let sm = StateMachine::open(&config.dir, gate, config.data_options.clone())?;
        let shared = sm.shared();

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name(format!("lsmdb-raft-{}", config.id))
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
        let handle = runtime.handle().clone();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("lsmdb-raft-{}", config.id))
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stop_rx.await;
                });
                runtime.shutdown_timeout(Duration::from_secs(5));
            })
            .map_err(|e| Error::Internal(format!("cannot start the runtime thread: {e}")))?;
        let stop_runtime = |tx: oneshot::Sender<()>, thread: JoinHandle<()>| {
            let _ = tx.send(());
            let _ = thread.join();
        };

        let listener = match TcpListener::bind(&config.raft_listen) {
            Ok(l) => l,
            Err(e) => {
                stop_runtime(stop_tx, thread);
                return Err(Error::InvalidArgument(format!(
                    "cannot listen for Raft RPC on {}: {e}",
                    config.raft_listen
                )));
            }
        };
        let raft_addr = match (&config.raft_advertise, listener.local_addr()) {
            (Some(a), _) => a.clone(),
            (None, Ok(a)) => a.to_string(),
            (None, Err(e)) => {
                stop_runtime(stop_tx, thread);
                return Err(Error::Internal(format!("cannot read the RPC address: {e}")));
            }
        };

        let faults = Arc::new(Faults::new(config.fault_injection));
        let client = Arc::new(RpcClient::new(
            config.id,
            config.token.clone(),
            Arc::clone(&faults),
        ));
        let network = Network {
            client: Arc::clone(&client),
            chunk_bytes: config.snapshot_chunk_bytes,
        };
        let raft =
            match handle.block_on(Raft::new(config.id, raft_config, network, log.clone(), sm)) {
                Ok(r) => r,
                Err(e) => {
                    stop_runtime(stop_tx, thread);
                    return Err(Error::Internal(format!("cannot start Raft: {e}")));
                }
            };
        let leader_changes = Arc::new(AtomicU64::new(0));
        handle.spawn(super::status::count_leader_changes(
            raft.metrics(),
            Arc::clone(&leader_changes),
        ));
        let core = Arc::new(Core {
            id: config.id,
            raft,
            handle,
            sm: shared,
            client,
            faults,
            receiver: Receiver::default(),
            reads: ReadIndex::default(),
            config: config.clone(),
            leader_changes,
        });
        let rpc = match RpcServer::start(listener, Arc::clone(&core), config.rpc_workers) {
            Ok(s) => s,
            Err(e) => {
                let _ = core.handle.block_on(core.raft.shutdown());
                stop_runtime(stop_tx, thread);
                return Err(e);
            }
        };
        Ok(Node {
            core,
            raft_addr,
            rpc: Some(rpc),
            runtime: Some((stop_tx, thread)),
            log: Some(log),
        })
    }

    pub fn id(&self) -> NodeId {
        self.core.id
    }

    /// The address other nodes reach this node's Raft RPC at.
    pub fn raft_addr(&self) -> &str {
        &self.raft_addr
    }

    /// This node as the group's membership lists it.
    pub fn node_info(&self) -> ClusterNode {
        ClusterNode::new(self.raft_addr.clone(), self.core.config.http_addr.clone())
    }

    /// Stops serving RPC, stops Raft and the runtime, and closes both databases (their last
    /// syncs' errors are reported).
    pub fn shutdown(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(rpc) = self.rpc.take() {
            rpc.stop();
        }
        let Some((stop_tx, thread)) = self.runtime.take() else {
            return Ok(());
        };
        let raft = self.core.raft.clone();
        let stopped = self.core.block_on(raft.shutdown());
        let _ = stop_tx.send(());
        let _ = thread.join();
        let mut result =
            stopped.and_then(|r| r.map_err(|e| Error::Internal(format!("stopping Raft: {e}"))));
        if let Some(log) = self.log.take() {
            result = result.and(log.close());
        }
        result.and(self.core.sm.close())
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.core.id)
            .field("raft_addr", &self.raft_addr)
            .finish_non_exhaustive()
    }
}
