//! The HTTP API over one engine (feature `server`): the seed's routes, kept exactly (paths,
//! methods, JSON shapes), plus `/health`, `/stats` and `/metrics`, on a blocking tiny_http
//! server. `lsmdb serve` is a command line over [`start`]; a program embedding lsmdb can
//! serve its own [`Db`](crate::Db) the same way (the crate's front page has an example).
//!
//! Who does what, so that no client can hold what others need (vendor/tiny_http/PATCHES.md
//! has the patches that make it so, and why):
//! - Each connection has a thread of its own (up to [`Config::max_connections`]; beyond, or
//!   when no thread can be started, a new connection gets a 503 and is closed). That thread
//!   does all of the connection's socket I/O, each part under a total deadline however
//!   steadily the client trickles: it waits [`Config::timeout`] for a request, reads the head
//!   within `timeout` and the whole body (at most [`Config::max_body`]) within
//!   [`Config::body_timeout`]. Then it answers the complete request in one of
//!   [`Config::threads`] slots, and writes the reply within `body_timeout` after giving the
//!   slot back. Only then does it read the next request: one request per connection is in
//!   the server at a time, whatever a client pipelines.
//! - So at most `threads` requests do the database's work at once (but for the rest of a
//!   streamed reply, below), and a slot is never held while waiting on a client: a slow or
//!   hostile client holds its own connection's thread, until a deadline, and nothing else.
//!   The slots replace worker threads that took requests from a queue: with them each
//!   request crossed between threads twice more, which cost a quarter of the GET throughput
//!   on two cores (docs/BENCHMARKS.md). Reads never wait for a write's sync, and writers
//!   that arrive together share one (the engine's group commit).
//! - A reply too large to build whole (a long range, a large value) is made as it is sent:
//!   the first piece while the slot is held, the rest as the connection's thread writes it,
//!   at the client's pace (`stream.rs`). So memory per connection is bounded by one
//!   request's body and a piece of a reply.
//!
//! [`Running::shutdown`]: stop accepting, answer the requests in flight (with
//! `Connection: close`; tiny_http counts a request from its first byte, so one whose body
//! is still arriving is waited for), then `Db::close`, which syncs the WAL and releases the
//! lock. A request sent on a kept-alive connection after that gets a 503. (Which signal
//! starts it is the embedding program's business: `lsmdb serve` takes SIGINT and SIGTERM.)
//!
//! Every request and every failure is logged to stderr ([`log`], filtered by env
//! `LOG_LEVEL`).
//!
//! With the feature `cluster`, [`start_cluster`] serves a member of a replicated group the
//! same way: the routes then read and write through the group (`cluster.rs` says how each
//! answer is made), and `/cluster/...` administers it.
//!
//! Modules: `routes` (what each route does), `backend` (what the routes read and write
//! through: a database, or a cluster node in `cluster`), `http` (what they share: replies,
//! errors, query strings, bodies), [`json`], `stream` (replies made as sent), `auth`,
//! `metrics`, [`log`].

mod auth;
mod backend;
#[cfg(feature = "cluster")]
mod cluster;
mod config;
mod error;
mod http;
pub mod json;
pub mod log;
mod metrics;
mod routes;
mod stream;

use std::net::{SocketAddr, TcpListener};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::Request;

pub use self::auth::Token;
pub use self::config::Config;
pub use self::error::Error;
use self::http::HttpError;
use self::log::{error, info, warning};

/// What the requests share.
struct State {
    backend: backend::Backend,
    token: Option<Token>,
    /// Shared with the connections' threads, which count the requests they refuse.
    metrics: Arc<metrics::Metrics>,
    /// Set when shutdown begins to when it gives up waiting: from then on replies say
    /// `Connection: close`.
    stop_by: OnceLock<Instant>,
}

/// A server answering requests until `shutdown`.
///
/// Dropped instead, it stops accepting connections at once, and the database closes when
/// the last request in flight lets go of it, unsynced under `SyncMode::None`.
pub struct Running {
    local: SocketAddr,
    server: tiny_http::Server,
    state: Arc<State>,
}

/// Starts answering on `listener` over `db`, `config.threads` requests at a time, on
/// threads of its own; returns once the server accepts connections.
pub fn start(db: crate::Db, listener: TcpListener, config: Config) -> Result<Running, Error> {
    start_backend(backend::Backend::Local(db), listener, config)
}

/// Starts answering on `listener` for the cluster node `node`, as [`start`] does for a
/// database: writes go through the group, reads are linearizable unless a request asks for
/// `consistency=stale`, and every wait for the group ends within `config.request_timeout`.
/// [`Running::shutdown`] stops the node.
#[cfg(feature = "cluster")]
pub fn start_cluster(
    node: crate::cluster::Node,
    listener: TcpListener,
    config: Config,
) -> Result<Running, Error> {
    let clustered = cluster::Clustered::new(node, config.request_timeout);
    start_backend(backend::Backend::Cluster(clustered), listener, config)
}

fn start_backend(
    backend: backend::Backend,
    listener: TcpListener,
    config: Config,
) -> Result<Running, Error> {
    config.validate()?;
    log::init();
    let local = listener.local_addr().map_err(Error::Listener)?;
    let metrics = Arc::new(metrics::Metrics::default());
    let state = Arc::new(State {
        backend,
        token: config.token,
        metrics: Arc::clone(&metrics),
        stop_by: OnceLock::new(),
    });
    // Connections hold the handler as long as they live, so it holds the state weakly:
    // shutdown takes the database back once the requests in flight are answered.
    let handler = {
        let state = Arc::downgrade(&state);
        move |request: Request| match state.upgrade() {
            Some(state) => answer(&state, request),
            None => closing(request),
        }
    };
    let tiny_config = tiny_http::ConnectionConfig {
        idle_timeout: config.timeout,
        head_timeout: config.timeout,
        body_timeout: config.body_timeout,
        reply_timeout: config.body_timeout,
        max_body: config.max_body,
        max_connections: config.max_connections,
        server_header: http::SERVER.into(),
        on_event: Some(Arc::new(move |event: &tiny_http::Event<'_>| {
            observe(&metrics, event)
        })),
        handler: Some(Arc::new(handler)),
        handler_slots: config.threads,
    };
    log::start_flusher();
    let server =
        tiny_http::Server::from_listener_with_config(listener, tiny_config).map_err(|source| {
            Error::Start {
                addr: local,
                source,
            }
        })?;
    Ok(Running {
        local,
        server,
        state,
    })
}

impl Running {
    /// The address the server listens on (with the port the system picked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting, waits for the requests in flight (with `Connection: close` on their
    /// replies), giving up after `grace`, then closes the database: its WAL synced, its
    /// lock released (a cluster node is stopped, then its databases closed).
    pub fn shutdown(self, grace: Duration) -> Result<(), Error> {
        self.server.stop_accepting();
        let deadline = Instant::now() + grace;
        let _ = self.state.stop_by.set(deadline);
        while self.server.requests_in_progress() > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let mut state = self.state;
        // A request a kept-alive connection sent meanwhile holds the state until answered.
        let state = loop {
            match Arc::try_unwrap(state) {
                Ok(state) => break state,
                Err(held) if Instant::now() < deadline => {
                    state = held;
                    thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return Err(Error::StillInUse),
            }
        };
        let unanswered = self.server.requests_in_progress();
        if unanswered > 0 {
            warning!(
                "the shutdown grace period is up; {unanswered} requests in progress go unanswered"
            );
        }
        state.backend.close()
    }
}

fn answer(state: &State, mut request: Request) {
    let started = Instant::now();
    let method = metrics::method_label(request.method());
    let outcome = catch_unwind(AssertUnwindSafe(|| routes::handle(state, &mut request)));
    let (route, mut reply) = outcome.unwrap_or_else(|_| {
        // The panic message is already on stderr; the client gets a JSON 500, not tiny_http's
        // empty one, and the server goes on.
        let e = HttpError::new(500, "internal error while handling the request");
        (routes::Route::Unknown, e.into_reply())
    });
    if state.stop_by.get().is_some() {
        reply = reply.with_header("Connection", "close");
    }
    let (status, len) = (reply.status, BodyLen(reply.body_len()));
    if status >= 500 {
        error!("{} {} -> {status}", method, request.url());
    }
    // Counted before the reply leaves, so a scrape that follows a client's answer always
    // includes its request.
    let took = started.elapsed();
    state.metrics.record(method, route.label(), status, took);
    let response = reply.into_response();
    if !log::enabled(log::Level::Info) {
        let _ = request.respond(response);
        return;
    }
    // Logged once the reply is written, off the time the client waits.
    let line = RequestLine::of(&request);
    request.respond_then(response, move || {
        info!("{line} {status} {len} {:.3}ms", took.as_secs_f64() * 1e3);
    });
}

/// The answer once shutdown has taken the database back.
fn closing(request: Request) {
    let reply = HttpError::new(503, "the server is shutting down").into_reply();
    let _ = request.respond(reply.with_header("Connection", "close").into_response());
}

/// Counts and logs what tiny_http did on its own: a request or connection it refused (a
/// malformed or oversized head, a body too large or too slow, a connection over
/// `Config::max_connections`), or a failure it went on after.
fn observe(metrics: &metrics::Metrics, event: &tiny_http::Event<'_>) {
    match event {
        tiny_http::Event::Refused(r) => {
            let method = r.method.map_or("UNKNOWN", metrics::method_label);
            let route = r.path.map_or(routes::Route::Unknown, |p| {
                routes::Route::from_path(p.split_once('?').map_or(p, |(path, _)| path))
            });
            metrics.record(method, route.label(), r.status, Duration::ZERO);
            match (r.method, r.path, r.version) {
                (Some(method), Some(url), Some(version)) => {
                    let line = RequestLine {
                        addr: r.remote_addr,
                        method: method.clone(),
                        url: url.to_string(),
                        version: version.clone(),
                    };
                    info!("{line} {} {} -", r.status, r.body_bytes);
                }
                // The request line could not be read.
                _ => {
                    let addr = r.remote_addr.map_or("-".to_string(), |a| a.to_string());
                    info!("{addr} \"-\" {} {} -", r.status, r.body_bytes);
                }
            }
        }
        tiny_http::Event::Error(message) => error!("{message}"),
    }
}

/// A body length in the request log: `-` for a reply streamed without one.
struct BodyLen(Option<usize>);

impl std::fmt::Display for BodyLen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}"),
            None => f.write_str("-"),
        }
    }
}

/// `ADDR "METHOD URL HTTP/V"`, as the request log shows a request.
struct RequestLine {
    addr: Option<SocketAddr>,
    method: tiny_http::Method,
    url: String,
    version: tiny_http::HTTPVersion,
}

impl RequestLine {
    fn of(r: &Request) -> RequestLine {
        RequestLine {
            addr: r.remote_addr().copied(),
            method: r.method().clone(),
            url: r.url().to_string(),
            version: r.http_version().clone(),
        }
    }
}

impl std::fmt::Display for RequestLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            Some(a) => write!(f, "{a}")?,
            None => f.write_str("-")?,
        }
        write!(
            f,
            " \"{} {} HTTP/{}\"",
            self.method,
            log::OneLine(truncate(&self.url, 512)),
            self.version
        )
    }
}

/// At most `n` bytes of `s`, cut at a character boundary. (By hand: `floor_char_boundary`
/// needs Rust 1.91, above the crate's rust-version.)
fn truncate(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
