//! Incoming Raft RPC (routes in rpc.rs): a tiny_http server on the node's `raft_addr` with a
//! small worker pool of its own, so client traffic on the HTTP API cannot delay heartbeats.
//! Workers are plain threads; they reach openraft with `Handle::block_on`.

use std::io::{Cursor, Read};
use std::net::TcpListener;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openraft::raft::{AppendEntriesRequest, VoteRequest};
use openraft::storage::Snapshot;
use serde::Serialize;
use tiny_http::{Method, Request, Response};

use super::api::write_reply;
use super::error::{Error, Result};
use super::node::Core;
use super::rpc::{self, ReadIndexReply};
use super::state_machine::check_contents;
use super::transfer::{self, Progress};
use super::types::{Command, NodeId, TypeConfig, codec};

/// A connection silent for this long (idle, or stalled mid-request) is dropped.
const IDLE: Duration = Duration::from_secs(30);

pub(crate) struct RpcServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl RpcServer {
    pub(crate) fn start(
        listener: TcpListener,
        core: Arc<Core>,
        workers: usize,
    ) -> Result<RpcServer> {
        // The connection threads read each request whole, at most MAX_BODY bytes, before a
        // worker sees it; snapshots come in chunks below that (transfer.rs).
        let config = tiny_http::ConnectionConfig {
            idle_timeout: IDLE,
            head_timeout: IDLE,
            body_timeout: IDLE,
            reply_timeout: IDLE,
            max_body: rpc::MAX_BODY,
            server_header: concat!("lsmdb/", env!("CARGO_PKG_VERSION"), " raft").into(),
            ..Default::default()
        };
        let server = tiny_http::Server::from_listener_with_config(listener, config)
            .map_err(|e| Error::Internal(format!("cannot start the RPC server: {e}")))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        for i in 0..workers.max(1) {
            let (s, halt, c) = (Arc::clone(&server), Arc::clone(&stop), Arc::clone(&core));
            let spawned = std::thread::Builder::new()
                .name(format!("lsmdb-rpc-{}-{i}", core.id))
                .spawn(move || worker(&s, &c, &halt));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    let started = RpcServer {
                        server,
                        stop,
                        workers: handles,
                    };
                    started.stop();
                    return Err(Error::Internal(format!("cannot start an RPC worker: {e}")));
                }
            }
        }
        Ok(RpcServer {
            server,
            stop,
            workers: handles,
        })
    }

    /// Stops accepting, lets the workers finish what they hold, and waits for them.
    pub(crate) fn stop(self) {
        self.server.stop_accepting();
        self.stop.store(true, Ordering::Release);
        for w in self.workers {
            let _ = w.join();
        }
    }
}

fn worker(server: &tiny_http::Server, core: &Core, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match server.recv_timeout(Duration::from_millis(100)) {
            Ok(Some(request)) => answer(core, request),
            Ok(None) => {}
            // A failed accept or read of one connection; the server goes on.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A reply: status and body (postcard for 200, text otherwise).
struct Reply(u16, Vec<u8>);

impl Reply {
    fn text(status: u16, text: impl Into<String>) -> Reply {
        Reply(status, text.into().into_bytes())
    }

    fn value(value: &impl Serialize) -> Reply {
        match codec::encode(value) {
            Ok(bytes) => Reply(200, bytes),
            Err(e) => Reply::text(500, e.to_string()),
        }
    }
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn answer(core: &Core, mut request: Request) {
    let handled = catch_unwind(AssertUnwindSafe(|| handle(core, &mut request)));
    let Reply(status, body) = match handled {
        Ok(Ok(reply) | Err(reply)) => reply,
        // The panic message is on stderr; the worker lives on for the next request.
        Err(_) => Reply::text(500, "internal error while handling the request"),
    };
    let len = body.len();
    let response = Response::new(
        status.into(),
        Vec::new(),
        Cursor::new(body),
        Some(len),
        None,
    );
    // The caller sees a broken connection and treats it as such.
    let _ = request.respond(response);
}

fn handle(core: &Core, request: &mut Request) -> std::result::Result<Reply, Reply> {
    if let Some(token) = &core.config.token
        && !rpc::token_matches(token, header(request, "Authorization"))
    {
        return Err(Reply::text(401, "a valid cluster token is required"));
    }
    let from: Option<NodeId> = header(request, rpc::FROM_HEADER).and_then(|v| v.parse().ok());
    if from.is_some_and(|peer| core.faults.blocks(peer)) {
        return Err(Reply::text(503, "dropped by fault injection"));
    }
    if request.method() != &Method::Post {
        return Err(Reply::text(405, "Raft RPC takes POST"));
    }
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    match path.as_str() {
        rpc::APPEND => {
            let req: AppendEntriesRequest<TypeConfig> = decode_body(request)?;
            raft_reply(core.block_on(core.raft.append_entries(req)))
        }
        rpc::VOTE => {
            let req: VoteRequest<NodeId> = decode_body(request)?;
            raft_reply(core.block_on(core.raft.vote(req)))
        }
        rpc::SNAPSHOT_BEGIN => {
            let offer: transfer::Offer = decode_body(request)?;
            let mine = my_vote(core)?;
            if offer.vote < mine {
                // A stale leader: tell it the newer vote without taking its data.
                return Ok(Reply::value(&Progress::Stale(mine)));
            }
            let held = core
                .receiver
                .begin(offer, || core.sm.receive_path())
                .map_err(refused)?;
            Ok(Reply::value(&Progress::Have(held)))
        }
        rpc::SNAPSHOT_CHUNK => {
            let body = read_body(request)?;
            let held = core.receiver.chunk(&body).map_err(refused)?;
            Ok(Reply::value(&Progress::Have(held)))
        }
        rpc::SNAPSHOT_FINISH => {
            let finish: transfer::Finish = decode_body(request)?;
            let got = core.receiver.finish(&finish.snapshot_id).map_err(refused)?;
            check_contents(&got.meta, got.dir.path())
                .map_err(|e| Reply::text(400, e.to_string()))?;
            let snapshot = Snapshot {
                meta: got.meta,
                snapshot: Box::new(got.dir),
            };
            raft_reply(core.block_on(core.raft.install_full_snapshot(got.vote, snapshot)))
        }
        rpc::READ_INDEX => {
            let deadline = Instant::now() + core.config.election_timeout_min;
            let reply: ReadIndexReply = core
                .block_on(core.read_index_as_leader(deadline))
                .map_err(internal)?;
            Ok(Reply::value(&reply))
        }
        rpc::WRITE => {
            let cmd: Command = decode_body(request)?;
            // The forwarding follower gives up at its own deadline; this one is a bound.
            let deadline = Instant::now() + core.config.election_timeout_max * 2;
            let result = core
                .block_on(core.write_as_leader(cmd, deadline))
                .map_err(internal)?;
            Ok(Reply::value(&write_reply(result)))
        }
        rpc::FAULTS if core.faults.enabled() => set_faults(core, request),
        _ => Err(Reply::text(404, format!("no route {path}"))),
    }
}

fn internal(e: Error) -> Reply {
    Reply::text(503, e.to_string())
}

fn raft_reply<T: Serialize, E: std::fmt::Display>(
    result: Result<std::result::Result<T, E>>,
) -> std::result::Result<Reply, Reply> {
    match result.map_err(internal)? {
        Ok(value) => Ok(Reply::value(&value)),
        // openraft fails these only when it has stopped.
        Err(e) => Err(Reply::text(503, e.to_string())),
    }
}

fn read_body(request: &mut Request) -> std::result::Result<Vec<u8>, Reply> {
    if request.body_length().is_some_and(|n| n > rpc::MAX_BODY) {
        return Err(Reply::text(413, "request body too large"));
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(rpc::MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reply::text(400, format!("reading the body: {e}")))?;
    if body.len() > rpc::MAX_BODY {
        return Err(Reply::text(413, "request body too large"));
    }
    Ok(body)
}

fn decode_body<T: serde::de::DeserializeOwned>(
    request: &mut Request,
) -> std::result::Result<T, Reply> {
    let body = read_body(request)?;
    codec::decode(&body, request.url()).map_err(|e| Reply::text(400, e.to_string()))
}

fn my_vote(core: &Core) -> std::result::Result<openraft::Vote<NodeId>, Reply> {
    core.block_on(core.raft.with_raft_state(|st| *st.vote_ref()))
        .map_err(internal)?
        .map_err(|e| Reply::text(503, e.to_string()))
}

fn refused(r: transfer::Refused) -> Reply {
    Reply::text(r.status(), r.to_string())
}

#[derive(serde::Deserialize)]
struct FaultsBody {
    blocked: std::collections::BTreeSet<NodeId>,
}

fn set_faults(core: &Core, request: &mut Request) -> std::result::Result<Reply, Reply> {
    let body = read_body(request)?;
    let parsed: FaultsBody =
        serde_json::from_slice(&body).map_err(|e| Reply::text(400, e.to_string()))?;
    core.faults
        .set(parsed.blocked)
        .map_err(|e| Reply::text(400, e.to_string()))?;
    let blocked = serde_json::json!({ "blocked": core.faults.blocked() });
    Ok(Reply(200, blocked.to_string().into_bytes()))
}
