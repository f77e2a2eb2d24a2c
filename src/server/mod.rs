//! `lsmdb serve`: the seed's HTTP API over one engine, on a blocking tiny_http server.
//!
//! Who does what, so that no client can hold what others need (vendor/tiny_http/PATCHES.md
//! has the patches that make it so, and why):
//! - Each connection has a thread of its own (up to `--max-connections`; beyond, or when no
//!   thread can be started, a new connection gets a 503 and is closed). That thread does all
//!   of the connection's socket I/O, each part under a total deadline however steadily the
//!   client trickles: it waits `--timeout` for a request, reads the head within `--timeout`
//!   and the whole body (at most `--max-body`) within `--body-timeout`. Then it answers the
//!   complete request in one of `--threads` slots, and writes the reply within
//!   `--body-timeout` after giving the slot back. Only then does it read the next request:
//!   one request per connection is in the server at a time, whatever a client pipelines.
//! - So at most `--threads` requests do the database's work at once (but for the rest of a
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
//! Shutdown on SIGINT or SIGTERM: stop accepting, answer the requests in flight (with
//! `Connection: close`; tiny_http counts a request from its first byte, so one whose body
//! is still arriving is waited for), then `Db::close`, which syncs the WAL and releases the
//! lock. A request sent on a kept-alive connection after that gets a 503. A second signal
//! exits at once.

pub(crate) mod auth;
mod http;
pub(crate) mod log;
mod metrics;
mod routes;
mod stream;

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::Args;
use signal_hook::consts::{SIGINT, SIGTERM};
use tiny_http::Request;

use self::http::HttpError;
use self::log::{error, info, warning};

#[derive(Args, Debug)]
#[command(
    about = "Serve the HTTP API (the seed's routes, /health, /stats, /metrics)",
    after_help = "Examples:\n  lsmdb serve                                # 127.0.0.1:8080, directory ./data\n  \
                  lsmdb --db /var/lib/lsmdb serve --addr 0.0.0.0:8080 --token \"$TOKEN\"\n  \
                  curl 'http://127.0.0.1:8080/keys?key=user:1'\n\n\
                  Logs go to stderr; env LOG_LEVEL picks DEBUG, INFO (default), WARNING or ERROR.\n\
                  SIGINT or SIGTERM shuts down gracefully; a second one exits at once."
)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Requests answered at once (the rest wait their turn) [default: the number of cores,
    /// at least 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Require "Authorization: Bearer <TOKEN>" on every route but /health.
    #[arg(
        long,
        env = "LSMDB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Largest request body accepted; larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = 16 << 20)]
    pub max_body: usize,

    /// Connections served at once; beyond, a new connection gets 503 and is closed.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,

    /// Seconds a connection may stay idle between requests, a request head may take to
    /// arrive, and any one read or write may wait.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Seconds a request body may take to arrive in full, and a reply to be taken in full,
    /// however steadily the client trickles.
    #[arg(long, value_name = "SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,

    /// Seconds to finish in-flight requests on shutdown before closing anyway.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_timeout: u64,
}

/// What the requests share.
pub struct State {
    pub db: lsmdb::Db,
    pub token: Option<auth::Token>,
    /// Shared with the connections' threads, which count the requests they refuse.
    pub metrics: Arc<metrics::Metrics>,
    /// Set on the first signal to when shutdown gives up waiting: from then on replies say
    /// `Connection: close`.
    pub stop_by: OnceLock<Instant>,
}

/// Serves the database that `open` opens, in directory `dir`, until SIGINT or SIGTERM.
/// The binary's `main` passes `Cli::open_writer`; taking it as a closure keeps this module
/// free of the CLI, so the HTTP fuzz target can compile it as it is.
pub fn run(
    args: &ServeArgs,
    dir: &Path,
    open: impl FnOnce() -> anyhow::Result<lsmdb::Db>,
) -> anyhow::Result<u8> {
    log::init();
    // Whichever way this returns, the lines logged so far go out first.
    let _flush = FlushOnReturn;
    let token = match args.token.as_deref() {
        Some(t) => Some(auth::Token::new(t).map_err(|e| anyhow!("--token: {e}"))?),
        None => None,
    };
    // Installed first: a signal that comes while the database opens is handled once the
    // server runs (a graceful stop at once) instead of killing the process mid-recovery.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install the signal handlers")?;
    let db = open()?;
    let listener =
        TcpListener::bind(&args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let running = start(db, listener, args, token)?;
    let local = running.local;
    // Whatever LOG_LEVEL hides, the address (and the port `:0` picked) is always told.
    let _ = writeln!(std::io::stdout(), "listening on http://{local}");
    info!(
        "lsmdb {} serving {} on http://{local} ({} threads, auth {})",
        env!("CARGO_PKG_VERSION"),
        dir.display(),
        running.threads,
        if running.state.token.is_some() {
            "on"
        } else {
            "off"
        }
    );
    if !local.ip().is_loopback() && running.state.token.is_none() {
        warning!("listening on {local} without --token: anyone who can reach it can write");
    }

    let signal = signals.forever().next().unwrap_or(SIGTERM);
    let name = if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    info!("{name} received: finishing requests in flight (send it again to exit at once)");
    arm_second_signal()?;
    running.shutdown(Duration::from_secs(args.shutdown_timeout))?;
    info!("database closed; bye");
    Ok(0)
}

/// A server answering requests until `shutdown`.
pub struct Running {
    pub local: SocketAddr,
    server: tiny_http::Server,
    state: Arc<State>,
    threads: usize,
}

/// Starts answering on `listener` over `db`, `args.threads` requests at a time.
pub fn start(
    db: lsmdb::Db,
    listener: TcpListener,
    args: &ServeArgs,
    token: Option<auth::Token>,
) -> anyhow::Result<Running> {
    let local = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let threads = args.threads.map_or_else(default_threads, usize::from);
    let metrics = Arc::new(metrics::Metrics::default());
    let state = Arc::new(State {
        db,
        token,
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
    let timeout = Duration::from_secs(args.timeout);
    let body_timeout = Duration::from_secs(args.body_timeout);
    let config = tiny_http::ConnectionConfig {
        idle_timeout: timeout,
        head_timeout: timeout,
        body_timeout,
        reply_timeout: body_timeout,
        max_body: args.max_body,
        max_connections: usize::try_from(args.max_connections).unwrap_or(usize::MAX),
        server_header: http::SERVER.into(),
        on_event: Some(Arc::new(move |event: &tiny_http::Event<'_>| {
            observe(&metrics, event)
        })),
        handler: Some(Arc::new(handler)),
        handler_slots: threads,
    };
    log::start_flusher();
    let server = tiny_http::Server::from_listener_with_config(listener, config)
        .map_err(|e| anyhow!("cannot start the HTTP server on {local}: {e}"))?;
    Ok(Running {
        local,
        server,
        state,
        threads,
    })
}

impl Running {
    /// Stops accepting, waits for the requests in flight (with `Connection: close` on their
    /// replies), giving up after `grace`, then closes the database: its WAL synced, its
    /// lock released.
    pub fn shutdown(self, grace: Duration) -> anyhow::Result<()> {
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
                Err(_) => bail!("--shutdown-timeout is up and a request still holds the database"),
            }
        };
        let unanswered = self.server.requests_in_progress();
        if unanswered > 0 {
            warning!("--shutdown-timeout is up; {unanswered} requests in progress go unanswered");
        }
        state.db.close().context("closing the database failed")
    }
}

/// Writes out the buffered log lines when dropped.
struct FlushOnReturn;

impl Drop for FlushOnReturn {
    fn drop(&mut self) {
        log::flush_buffered();
    }
}

/// A second SIGINT or SIGTERM during shutdown ends the process at once (status 130).
fn arm_second_signal() -> anyhow::Result<()> {
    let armed = Arc::new(AtomicBool::new(true));
    for sig in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&armed))
            .context("cannot install the signal handlers")?;
    }
    Ok(())
}

fn default_threads() -> usize {
    thread::available_parallelism().map_or(2, |n| n.get().max(2))
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
/// `--max-connections`), or a failure it went on after.
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
            crate::format::escape(truncate(self.url.as_bytes(), 512)),
            self.version
        )
    }
}

fn truncate(b: &[u8], n: usize) -> &[u8] {
    &b[..b.len().min(n)]
}
