//! Outgoing Raft RPC: openraft's network traits over a small blocking HTTP client (ureq, no
//! TLS) run on the runtime's blocking threads. Every call has a deadline: openraft's own for
//! appends and votes (the heartbeat interval), and for each piece of a snapshot one sized
//! by its bytes (transfer.rs).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, PayloadTooLarge, RPCError, RaftError, ReplicationClosed, StreamingError,
    Timeout, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::Snapshot;
use openraft::{OptionalSend, RPCTypes};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::faults::Faults;
use super::rpc;
use super::transfer;
use super::types::{ClusterNode, NodeId, TypeConfig, Vote, codec};

/// An append request larger than this is cut (openraft retries with fewer entries), so one
/// message fits the heartbeat-long deadline.
const MAX_APPEND_BYTES: usize = 8 << 20;

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Nothing reached the peer: no connection, or the fault switch dropped it.
    NotSent(String),
    /// Sent, but no complete answer in time.
    Timeout,
    /// Sent, and the connection broke before a complete answer.
    Broken(String),
    /// The peer answered with an error status and this reason.
    Status(u16, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::NotSent(r) => write!(f, "not delivered: {r}"),
            CallError::Timeout => f.write_str("no answer in time"),
            CallError::Broken(r) => write!(f, "connection broke: {r}"),
            CallError::Status(s, r) => write!(f, "answered {s}: {r}"),
        }
    }
}

impl std::error::Error for CallError {}

/// The client every outgoing call of one node goes through.
pub(crate) struct RpcClient {
    agent: ureq::Agent,
    token: Option<String>,
    from: NodeId,
    pub(crate) faults: Arc<Faults>,
}

impl RpcClient {
    pub(crate) fn new(from: NodeId, token: Option<String>, faults: Arc<Faults>) -> RpcClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(Duration::from_secs(1)))
            // Under the RPC server's idle timeout, so a pooled connection is not reused
            // just as the server closes it.
            .max_idle_age(Duration::from_secs(5))
            .no_delay(true)
            .build()
            .into();
        RpcClient {
            agent,
            token,
            from,
            faults,
        }
    }

    /// POSTs `body` to `path` on `addr` and returns the 200 reply's body; `timeout` bounds
    /// the whole exchange.
    pub(crate) fn call(
        &self,
        target: NodeId,
        addr: &str,
        path: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        if self.faults.blocks(target) {
            return Err(CallError::NotSent(format!(
                "fault injection drops node {target}"
            )));
        }
        let mut request = self
            .agent
            .post(format!("http://{addr}{path}"))
            .header(rpc::FROM_HEADER, self.from.to_string());
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let request = request.config().timeout_global(Some(timeout)).build();
        let mut response = request.send(body).map_err(classify)?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(rpc::MAX_BODY as u64)
            .read_to_vec()
            .map_err(classify)?;
        if status == 200 {
            Ok(bytes)
        } else {
            Err(CallError::Status(
                status,
                String::from_utf8_lossy(&bytes).into_owned(),
            ))
        }
    }

    /// A call whose request and reply are postcard values.
    pub(crate) fn call_value<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        target: NodeId,
        addr: &str,
        path: &str,
        request: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let body = codec::encode(request).map_err(|e| CallError::NotSent(e.to_string()))?;
        let reply = self.call(target, addr, path, &body, timeout)?;
        codec::decode(&reply, path).map_err(|e| CallError::Broken(e.to_string()))
    }
}

fn classify(e: ureq::Error) -> CallError {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect) => {
            CallError::NotSent("connect timed out".into())
        }
        ureq::Error::Timeout(_) => CallError::Timeout,
        ureq::Error::HostNotFound => CallError::NotSent("host not found".into()),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::AddrNotAvailable | ErrorKind::NotFound
            ) =>
        {
            CallError::NotSent(io.to_string())
        }
        ureq::Error::Io(io) if io.kind() == ErrorKind::TimedOut => CallError::Timeout,
        other => CallError::Broken(other.to_string()),
    }
}

/// openraft's view of a failed call: unreachable (openraft backs off) or a plain network
/// error.
fn rpc_error<E: std::error::Error>(
    e: CallError,
    action: RPCTypes,
    from: NodeId,
    target: NodeId,
    timeout: Duration,
) -> RPCError<NodeId, ClusterNode, E> {
    match e {
        CallError::Timeout => RPCError::Timeout(Timeout {
            action,
            id: from,
            target,
            timeout,
        }),
        CallError::NotSent(_) | CallError::Status(503, _) => {
            RPCError::Unreachable(Unreachable::new(&e))
        }
        other => RPCError::Network(NetworkError::new(&other)),
    }
}

/// Makes a connection per peer; all share one client.
pub(crate) struct Network {
    pub(crate) client: Arc<RpcClient>,
    /// The largest piece of a snapshot sent in one request.
    pub(crate) chunk_bytes: usize,
}

pub(crate) struct Connection {
    client: Arc<RpcClient>,
    target: NodeId,
    addr: String,
    chunk_bytes: usize,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &ClusterNode) -> Connection {
        Connection {
            client: Arc::clone(&self.client),
            target,
            addr: node.raft_addr.clone(),
            chunk_bytes: self.chunk_bytes,
        }
    }
}

impl Connection {
    async fn call<Req, Resp>(
        &self,
        path: &'static str,
        request: Req,
        action: RPCTypes,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, ClusterNode, RaftError<NodeId>>>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        let (client, target, addr) = (Arc::clone(&self.client), self.target, self.addr.clone());
        let from = client.from;
        tokio::task::spawn_blocking(move || {
            client.call_value(target, &addr, path, &request, timeout)
        })
        .await
        .map_err(|e| RPCError::Network(NetworkError::new(&e)))?
        .map_err(|e| rpc_error(e, action, from, target, timeout))
    }
}

/// How many of `entries` fit one append request, if not all do.
fn entries_that_fit(request: &AppendEntriesRequest<TypeConfig>) -> Option<u64> {
    if request.entries.len() <= 1 {
        return None;
    }
    let total = postcard::experimental::serialized_size(request).ok()?;
    if total <= MAX_APPEND_BYTES {
        return None;
    }
    let mut size = 0;
    let mut fit = 0;
    for entry in &request.entries {
        size += postcard::experimental::serialized_size(entry).ok()?;
        if size > MAX_APPEND_BYTES && fit > 0 {
            break;
        }
        fit += 1;
    }
    Some(fit)
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, ClusterNode, RaftError<NodeId>>>
    {
        if let Some(fit) = entries_that_fit(&rpc) {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(fit),
            ));
        }
        self.call(rpc::APPEND, rpc, RPCTypes::AppendEntries, option.hard_ttl())
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, ClusterNode, RaftError<NodeId>>> {
        self.call(rpc::VOTE, rpc, RPCTypes::Vote, option.hard_ttl())
            .await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, target, addr) = (Arc::clone(&self.client), self.target, self.addr.clone());
        let (from, chunk_bytes) = (client.from, self.chunk_bytes);
        let stop_sender = Arc::clone(&stop);
        let send = tokio::task::spawn_blocking(move || {
            // The handle keeps the directory on disk until the transfer is done.
            let dir = snapshot.snapshot;
            let mut post = |path: &'static str, body: &[u8], timeout: Duration| {
                client.call(target, &addr, path, body, timeout)
            };
            transfer::send(
                &mut post,
                vote,
                &snapshot.meta,
                dir.path(),
                chunk_bytes,
                &stop_sender,
            )
        });
        tokio::select! {
            done = send => {
                let result = done.map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
                result.map_err(|e| {
                    let timeout = Duration::ZERO;
                    match rpc_error::<Fatal<NodeId>>(e, RPCTypes::InstallSnapshot, from, target, timeout) {
                        RPCError::Timeout(t) => StreamingError::Timeout(t),
                        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
                        RPCError::Network(n) => StreamingError::Network(n),
                        other => StreamingError::Network(NetworkError::new(&other)),
                    }
                })
            }
            closed = cancel => {
                stop.store(true, Ordering::Relaxed);
                Err(StreamingError::Closed(closed))
            }
        }
    }
}
