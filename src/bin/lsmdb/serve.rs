//! `lsmdb serve`: the command line of the library's HTTP server (`lsmdb::server`, which has
//! the serving model and the routes), and the signals that stop it.
//!
//! SIGINT or SIGTERM shuts down gracefully (`Running::shutdown`: the requests in flight are
//! answered, then the database is closed); a second one exits at once.

use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, anyhow};
use clap::Args;
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
    /// Address to listen on; port 0 picks a free port (printed on stdout).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    addr: String,

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
    let db = globals.open_writer()?;
    let listener =
        TcpListener::bind(&args.addr).with_context(|| format!("cannot listen on {}", args.addr))?;
    let (threads, auth) = (config.threads, config.token.is_some());
    let running = server::start(db, listener, config)?;
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
