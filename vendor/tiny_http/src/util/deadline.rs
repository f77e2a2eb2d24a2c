//! A socket with a total deadline on top of the per-call timeout (lsmdb patch).
//!
//! A socket timeout bounds each read or write, not their sum: a client that sends one byte
//! every few seconds, or reads one, never trips it. So each call here first checks the
//! deadline (failing with `TimedOut` once it has passed) and, when less time is left than the
//! per-call timeout, lowers the socket's timeout to what is left. The socket option is changed
//! only when it is off by more than `SLACK`, so the usual request, well within its deadline,
//! costs no extra system call.

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use crate::connection::Connection;

/// How far past its deadline one call may block, in exchange for not resetting the socket's
/// timeout on every call.
const SLACK: Duration = Duration::from_millis(50);

pub(crate) struct DeadlineStream {
    conn: Connection,
    /// The longest any one read or write may wait.
    per_call: Duration,
    deadline: Option<Instant>,
    /// The timeouts last set on the socket.
    read_set: Option<Duration>,
    write_set: Option<Duration>,
}

impl DeadlineStream {
    pub(crate) fn new(conn: Connection, per_call: Duration) -> DeadlineStream {
        DeadlineStream {
            conn,
            per_call,
            deadline: None,
            read_set: None,
            write_set: None,
        }
    }

    /// From now on every call fails with `TimedOut` once `deadline` has passed (`None`: only
    /// the per-call timeout applies).
    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub(crate) fn set_per_call(&mut self, per_call: Duration) {
        self.per_call = per_call;
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn into_connection(self) -> Connection {
        self.conn
    }

    /// How long the next call may wait.
    fn wait(&self) -> io::Result<Duration> {
        let Some(deadline) = self.deadline else {
            return Ok(self.per_call);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(left.min(self.per_call))
    }
}

/// Sets the socket's timeout to `wanted` unless the one set is already within `SLACK` of it.
fn arm(
    set: &mut Option<Duration>,
    wanted: Duration,
    apply: impl FnOnce(Duration) -> io::Result<()>,
) -> io::Result<()> {
    let stale = set.is_none_or(|now| now > wanted + SLACK || now + SLACK < wanted);
    if stale {
        apply(wanted)?;
        *set = Some(wanted);
    }
    Ok(())
}

/// A socket timeout shows as `WouldBlock` (EAGAIN) on Unix; callers look for `TimedOut`.
fn timed_out<T>(result: io::Result<T>) -> io::Result<T> {
    result.map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            io::Error::new(io::ErrorKind::TimedOut, e)
        } else {
            e
        }
    })
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wait = self.wait()?;
        let conn = &self.conn;
        arm(&mut self.read_set, wait, |t| conn.set_read_timeout(t))?;
        timed_out(self.conn.read(buf))
    }
}

impl DeadlineStream {
    /// Waits as `read` would for the peer to send something, leaving it in the socket:
    /// `Ok(0)` when the peer has closed.
    pub(crate) fn peek(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wait = self.wait()?;
        let conn = &self.conn;
        arm(&mut self.read_set, wait, |t| conn.set_read_timeout(t))?;
        timed_out(self.conn.peek(buf))
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wait = self.wait()?;
        let conn = &self.conn;
        arm(&mut self.write_set, wait, |t| conn.set_write_timeout(t))?;
        timed_out(self.conn.write(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_trickle_is_cut_off_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let writer = std::thread::spawn(move || {
            // One byte every 20 ms: each read is quick, only the total is too long.
            while client.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut stream = DeadlineStream::new(Connection::from(server), Duration::from_secs(5));
        let started = Instant::now();
        stream.set_deadline(Some(started + Duration::from_millis(300)));
        let mut buf = [0u8; 16];
        let err = loop {
            if let Err(e) = stream.read(&mut buf) {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        // Generous: this catches a deadline that is not enforced, not a slow machine.
        assert!(started.elapsed() < Duration::from_secs(3));
        drop(stream);
        writer.join().unwrap();
    }
}
