//! `lsmdb serve`: the command line of the library's HTTP server (`lsmdb::server`, which has
//! the serving model and the routes), and the signals that stop it.
//!
//! SIGINT or SIGTERM shuts down gracefully (`Running::shutdown`: the requests in flight are
//! answered, then the database is closed); a second one exits at once.
//!
//! With `--cluster` the process is a node of a replicated group (`lsmdb::cluster`,
//! docs/CLUSTER.md): `--db DIR` is the node's directory and the same routes go through the
//! group (`lsmdb::server::start_cluster`).

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use lsmdb::cluster::{self, Node, NodeConfig};
use lsmdb::server::log::{self, Level};
use lsmdb::server::{self, Config, Token};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::cli::Globals;

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
    /// Address to listen on; port 0 picks a free port (printed on stdout). An address
    /// other machines can reach needs --token (or --no-token).
    #[arg(
        long,
        visible_alias = "bind",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:8080"
    )]
    addr: String,

    /// Serve an address other machines can reach without a token: anyone who reaches it
    /// can read and write every key.
    #[arg(long, conflicts_with = "token")]
    no_token: bool,

    /// Requests answered at once (the rest wait their turn) [default: the number of cores,
    /// at least 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Require "Authorization: Bearer <TOKEN>" on every route but /health.
    #[arg(
        long,
        env = "LSMDB_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// Largest request body accepted; larger ones get 413.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().max_body)]
    max_body: usize,

    /// Connections served at once; beyond, a new connection gets 503 and is closed.
    #[arg(long, value_name = "N", default_value_t = Config::default().max_connections as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,

    /// Seconds a connection may stay idle between requests, a request head may take to
    /// arrive, and any one read or write may wait.
    #[arg(long, value_name = "SECS", default_value_t = Config::default().timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,

    /// Seconds a request body may take to arrive in full, and a reply to be taken in full,
    /// however steadily the client trickles.
    #[arg(long, value_name = "SECS", default_value_t = Config::default().body_timeout.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    body_timeout: u64,

    /// Seconds to finish in-flight requests on shutdown before closing anyway.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    shutdown_timeout: u64,

    #[command(flatten)]
    cluster: ClusterArgs,
}

/// `serve --cluster`: a node of a replicated group.
#[derive(Args, Debug)]
#[command(next_help_heading = "Cluster (docs/CLUSTER.md)")]
struct ClusterArgs {
    /// Serve as a node of a replicated group; --db DIR is then the node's directory
    /// (raft/, data/, snapshots/). Form the group with `lsmdb cluster init`.
    #[arg(long)]
    cluster: bool,

    /// This node's id in the group, for as long as the group lives: a number never given
    /// to another node.
    #[arg(long, value_name = "N", required_if_eq("cluster", "true"), requires = "cluster",
          value_parser = clap::value_parser!(u64).range(1..))]
    node_id: Option<u64>,

    /// Where Raft RPC from the other nodes is received: a port of its own, with threads of
    /// its own, so client load cannot delay heartbeats.
    #[arg(
        long,
        value_name = "HOST:PORT",
        required_if_eq("cluster", "true"),
        requires = "cluster"
    )]
    raft_addr: Option<String>,

    /// The HTTP address other nodes name to clients for this node [default: the address
    /// --addr bound]. Needed when --addr is a wildcard such as 0.0.0.0.
    #[arg(long, value_name = "HOST:PORT", requires = "cluster")]
    advertise_addr: Option<String>,

    /// The Raft address other nodes reach this node at [default: the address --raft-addr
    /// bound]. Needed when --raft-addr is a wildcard such as 0.0.0.0.
    #[arg(long, value_name = "HOST:PORT", requires = "cluster")]
    raft_advertise_addr: Option<String>,

    /// The group's shared secret: every Raft RPC between nodes, and every request to the
    /// admin routes (`lsmdb cluster`), must carry it. Without it, anyone who can reach the
    /// Raft port can write to the log.
    #[arg(
        long,
        env = "LSMDB_CLUSTER_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    cluster_token: Option<String>,

    /// Milliseconds between the leader's heartbeats; at most a tenth of the election
    /// timeout.
    #[arg(long, value_name = "MS", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(10..))]
    heartbeat_ms: u64,

    /// Milliseconds that set how fast a leader that stops is replaced: the followers wait
    /// out its lease (0.7 of this) and then a random time between 0.4 and 0.7 of this
    /// before they stand for election, so a new leader is in place within 1.1 to 1.4 times
    /// this (and a vote's round trip).
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..))]
    election_timeout_ms: u64,

    /// Milliseconds a request may wait for the group (a leader, a quorum, a commit) before
    /// it is answered with 503.
    #[arg(long, value_name = "MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(1..))]
    request_timeout_ms: u64,

    /// Log entries applied between two snapshots of the data.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    snapshot_every: u64,

    /// The largest piece of a snapshot sent to another node in one request (for tests).
    #[arg(long, value_name = "BYTES", hide = true, default_value_t = cluster::DEFAULT_CHUNK_BYTES)]
    snapshot_chunk_bytes: usize,
}

impl ClusterArgs {
    /// The node's settings; `http` is the address the HTTP server bound.
    fn node_config(&self, dir: &Path, http: SocketAddr) -> anyhow::Result<NodeConfig> {
        let (Some(id), Some(raft_addr)) = (self.node_id, &self.raft_addr) else {
            bail!("--cluster needs --node-id and --raft-addr");
        };
        let http_addr = match &self.advertise_addr {
            Some(a) => a.clone(),
            None if http.ip().is_unspecified() => bail!(
                "--addr {http} is not an address other nodes can name to clients; give --advertise-addr"
            ),
            None => http.to_string(),
        };
        let raft_advertise = match &self.raft_advertise_addr {
            Some(a) => Some(a.clone()),
            None if raft_addr
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_unspecified()) =>
            {
                bail!(
                    "--raft-addr {raft_addr} is not an address other nodes can reach; give --raft-advertise-addr"
                )
            }
            None => None,
        };
        let token = match self.cluster_token.as_deref() {
            Some("") => bail!("--cluster-token must not be empty"),
            t => t.map(str::to_string),
        };
        if self.heartbeat_ms * 10 > self.election_timeout_ms {
            bail!(
                "--heartbeat-ms {} is over a tenth of --election-timeout-ms {}",
                self.heartbeat_ms,
                self.election_timeout_ms
            );
        }
        let election = Duration::from_millis(self.election_timeout_ms);
        let mut config = NodeConfig::new(id, dir);
        config.raft_listen = raft_addr.clone();
        config.raft_advertise = raft_advertise;
        config.http_addr = http_addr;
        config.token = token;
        config.heartbeat = Duration::from_millis(self.heartbeat_ms);
        // openraft's followers wait out the leader's lease (its election_timeout_max), then
        // a random time in [min, max) drawn once per node: from 1.1 to 1.4 of the timeout
        // in all, so a new leader is in place well within twice it, ticks, a heartbeat
        // interval and a vote's round trip included, even on a loaded machine. The 0.3
        // spread (at least three heartbeats) keeps two followers from standing together.
        config.election_timeout_min = election * 2 / 5;
        config.election_timeout_max = election * 7 / 10;
        config.snapshot_every = self.snapshot_every;
        config.snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        Ok(config)
    }
}

impl ServeArgs {
    /// The server's settings; the defaults are `Config`'s.
    fn config(&self) -> anyhow::Result<Config> {
        let token = match self.token.as_deref() {
            Some(t) => Some(Token::new(t).map_err(|e| anyhow!("--token: {e}"))?),
            None => None,
        };
        let mut config = Config::default()
            .token(token)
            .max_body(self.max_body)
            .max_connections(usize::try_from(self.max_connections).unwrap_or(usize::MAX))
            .timeout(Duration::from_secs(self.timeout))
            .body_timeout(Duration::from_secs(self.body_timeout));
        if let Some(threads) = self.threads {
            config = config.threads(usize::from(threads));
        }
        if self.cluster.cluster {
            config = config.request_timeout(Duration::from_millis(self.cluster.request_timeout_ms));
        }
        Ok(config)
    }
}

/// Serves the database `--db` names until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs, globals: &Globals) -> anyhow::Result<u8> {
    log::init();
    log::forward_library_log();
    // Whichever way this returns, the lines logged so far go out first.
    let _flush = FlushOnReturn;
    let config = args.config()?;
    // Installed first: a signal that comes while the database opens is handled once the
    // server runs (a graceful stop at once) instead of killing the process mid-recovery.
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install the signal handlers")?;
    let listener =
        TcpListener::bind(&args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let (threads, auth) = (config.threads, config.token.is_some());
    let bound = listener
        .local_addr()
        .context("cannot read the listening address")?;
    // Checked before the database opens: nothing is served, not even for a moment.
    if !bound.ip().is_loopback() && !auth && !args.no_token {
        bail!(
            "refusing to serve {bound} without a token: anyone who can reach it could read and \
             write every key; give --token (or env LSMDB_TOKEN), or --no-token to serve it anyway"
        );
    }
    let running = if args.cluster.cluster {
        if globals.typed_sync() == Some(lsmdb::SyncMode::None) {
            bail!(
                "a cluster node syncs every write before it counts as done; --sync none is not for --cluster"
            );
        }
        let node_config = args.cluster.node_config(&globals.dir, bound)?;
        let id = node_config.id;
        let node = Node::start(node_config).with_context(|| {
            format!(
                "cannot start cluster node {id} in {}",
                globals.dir.display()
            )
        })?;
        let raft = node.raft_addr().to_string();
        let running = server::start_cluster(node, listener, config)?;
        log::log(
            Level::Info,
            format_args!("cluster node {id}: Raft RPC on {raft}"),
        );
        if args.cluster.cluster_token.is_none() {
            log::log(
                Level::Warning,
                format_args!(
                    "no --cluster-token: anyone who can reach {raft} can write to the log"
                ),
            );
        }
        running
    } else {
        server::start(globals.open_writer()?, listener, config)?
    };
    let local = running.local_addr();
    // Whatever LOG_LEVEL hides, the address (and the port `:0` picked) is always told.
    let _ = writeln!(std::io::stdout(), "listening on http://{local}");
    log::log(
        Level::Info,
        format_args!(
            "lsmdb {} serving {} on http://{local} ({threads} threads, auth {})",
            env!("CARGO_PKG_VERSION"),
            globals.dir.display(),
            if auth { "on" } else { "off" }
        ),
    );
    if !local.ip().is_loopback() && !auth {
        log::log(
            Level::Warning,
            format_args!("listening on {local} without --token: anyone who can reach it can write"),
        );
    }

    let signal = signals.forever().next().unwrap_or(SIGTERM);
    let name = if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    log::log(
        Level::Info,
        format_args!(
            "{name} received: finishing requests in flight (send it again to exit at once)"
        ),
    );
    arm_second_signal()?;
    running
        .shutdown(Duration::from_secs(args.shutdown_timeout))
        .map_err(|e| match e {
            server::Error::StillInUse => {
                anyhow!("--shutdown-timeout is up and a request still holds the database")
            }
            e => e.into(),
        })?;
    log::log(Level::Info, format_args!("database closed; bye"));
    Ok(0)
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
