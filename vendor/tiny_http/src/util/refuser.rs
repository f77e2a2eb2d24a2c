//! Refusing connections the server will not serve (lsmdb patch).
//!
//! A connection over `max_connections`, or one no thread could be started for, gets one short
//! reply and a close. The reply is written at once, without blocking (it fits in any socket
//! buffer), and then the connection needs a lingering close like any other: closed with a
//! request still unread, the kernel would reset it and could destroy the reply. Lingering on
//! the accept thread would stall accepting and a thread per refusal is what may be missing, so
//! one thread, started with the server, lingers over every refused connection at once with
//! non-blocking reads, each for at most a second and 64 KiB.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use crate::connection::Connection;

const MAX_TIME: Duration = Duration::from_secs(1);
const MAX_BYTES: usize = 64 * 1024;
const POLL: Duration = Duration::from_millis(20);
/// Refused connections lingering at once; beyond, a refused connection is closed at once.
const MAX_LINGERING: usize = 256;

pub(crate) struct Refuser {
    lingering: SyncSender<Connection>,
}

impl Refuser {
    pub(crate) fn start() -> io::Result<Refuser> {
        let (tx, rx) = mpsc::sync_channel(64);
        thread::Builder::new()
            .name("http-refuser".into())
            .spawn(move || linger_all(&rx))?;
        Ok(Refuser { lingering: tx })
    }

    /// Writes `reply` to `conn` if it fits without waiting, then closes the connection.
    pub(crate) fn refuse(&self, conn: Connection, reply: &[u8]) {
        if conn.set_nonblocking(true).is_err() {
            return;
        }
        let mut conn = conn;
        let _ = conn.write_all(reply);
        if conn.shutdown(Shutdown::Write).is_err() {
            return;
        }
        // With too many lingering already, this one is closed now.
        let _ = self.lingering.try_send(conn);
    }
}

fn linger_all(incoming: &Receiver<Connection>) {
    let mut lingering: Vec<(Connection, Instant, usize)> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let next = if lingering.is_empty() {
            incoming.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            incoming.recv_timeout(POLL)
        };
        match next {
            Ok(conn) if lingering.len() < MAX_LINGERING => {
                lingering.push((conn, Instant::now(), 0));
            }
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) if lingering.is_empty() => return,
            Err(RecvTimeoutError::Disconnected) => thread::sleep(POLL),
        }
        lingering.retain_mut(|(conn, since, dropped)| loop {
            match conn.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    *dropped += n;
                    if *dropped > MAX_BYTES {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return since.elapsed() < MAX_TIME;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        });
    }
}
