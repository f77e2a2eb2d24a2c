//! The open connections, each marked while it waits for its next request (lsmdb patch 28).
//!
//! A graceful shutdown waits for the requests in progress, but a request can have reached
//! the server before its connection's thread began to read it: the connection was still in
//! the listener's queue, its thread not yet started, or busy. Such a client sent its request
//! before the shutdown and deserves a reply. The connection's thread peeks rather than reads
//! until the request is counted in progress, so the request's first bytes stay in the
//! socket, where `Waiting::arrived` finds them.
//!
//! A registration names the connection's socket by its descriptor, not by a copy of it (a
//! copy would cost every connection a third descriptor). So it must go before the socket
//! closes: it is the first field of `Accepted` and `ClientConnection` (fields drop in
//! order), removal takes the map's lock, and `arrived` peeks under that lock, so a peek
//! never reaches a closed descriptor or one reused for another file.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::connection::{has_unread_bytes, Connection, SocketId};

#[derive(Default)]
pub(crate) struct Waiting {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Watch>>>,
}

/// A connection's socket and whether it waits for a request.
struct Watch {
    socket: SocketId,
    waiting: AtomicBool,
}

/// A connection in `Waiting` for as long as this lives.
pub(crate) struct Registration {
    id: u64,
    watch: Arc<Watch>,
    all: Arc<Waiting>,
}

/// Marks a registered connection busy with a request while this lives.
pub(crate) struct Busy(Arc<Watch>);

impl Waiting {
    fn open(&self) -> MutexGuard<'_, HashMap<u64, Arc<Watch>>> {
        // The map stays consistent whatever a panicking holder was doing: each step is one
        // insert or remove.
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds `conn` as waiting for its first request.
    pub(crate) fn register(all: &Arc<Waiting>, conn: &Connection) -> Registration {
        let watch = Arc::new(Watch {
            socket: conn.socket_id(),
            waiting: AtomicBool::new(true),
        });
        let id = all.next_id.fetch_add(1, Ordering::Relaxed);
        all.open().insert(id, Arc::clone(&watch));
        Registration {
            id,
            watch,
            all: Arc::clone(all),
        }
    }

    /// Connections waiting for a request whose first bytes have arrived unread.
    pub(crate) fn arrived(&self) -> usize {
        // Under the lock: no registered socket closes meanwhile.
        self.open()
            .values()
            .filter(|w| w.waiting.load(Ordering::Acquire) && has_unread_bytes(w.socket))
            .count()
    }
}

impl Registration {
    /// Call only once the request is counted in progress, so that a shutdown looking at
    /// both never sees it in neither.
    pub(crate) fn busy(&self) -> Busy {
        self.watch.waiting.store(false, Ordering::Release);
        Busy(Arc::clone(&self.watch))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.waiting.store(true, Ordering::Release);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.all.open().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, Connection) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, Connection::from(server))
    }

    fn arrived_soon(all: &Waiting, want: usize) -> usize {
        for _ in 0..200 {
            if all.arrived() == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        all.arrived()
    }

    #[test]
    fn a_waiting_connection_counts_once_bytes_arrive_and_until_it_is_busy() {
        let all = Arc::new(Waiting::default());
        let (quiet_client, quiet) = pair();
        let (mut client, conn) = pair();
        let _quiet = Waiting::register(&all, &quiet);
        let registration = Waiting::register(&all, &conn);
        assert_eq!(all.arrived(), 0, "nothing sent yet");

        client.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        assert_eq!(arrived_soon(&all, 1), 1, "a request has arrived");
        let busy = registration.busy();
        assert_eq!(
            all.arrived(),
            0,
            "a busy connection is counted in progress instead"
        );
        drop(busy);
        assert_eq!(all.arrived(), 1, "its bytes are still unread");

        quiet_client.shutdown(std::net::Shutdown::Write).unwrap();
        drop(registration);
        assert_eq!(
            arrived_soon(&all, 0),
            0,
            "a closed peer or a gone connection is no request"
        );
        assert_eq!(all.open().len(), 1);
    }
}
