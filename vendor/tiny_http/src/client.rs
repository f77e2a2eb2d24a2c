//! One client connection, served from its first byte to its close on a thread of its own.
//!
//! lsmdb patch, the connection model. Upstream read request heads on this thread and queued
//! each request for the application's workers as soon as its head was in, then read on: it
//! parsed pipelined requests ahead without limit (a client that sent requests and never read
//! the replies grew the queue by hundreds of megabytes a second), and the workers read the
//! bodies, drained unread ones and wrote the replies at whatever pace the client chose, so
//! two clients trickling bodies or reading slowly held every worker.
//!
//! Now this thread does all of a request's I/O, each part under a total deadline (see
//! `util/deadline.rs`): it waits up to `idle_timeout` for a request to begin, reads its head
//! within `head_timeout` and its whole body, at most `max_body` bytes, within `body_timeout`,
//! has the complete request answered, and writes the response within `reply_timeout`. Only
//! then does it read the next request: a connection has one request in the server at a time,
//! and pipelined requests wait in the socket (their replies still come in order).
//!
//! With a `handler`, the request is answered on this thread, in one of `handler_slots` slots,
//! taken when the request is complete and given back before the reply is written; without
//! one, it goes to the queue `Server::recv` reads. A slot is what a worker thread was, minus
//! the two hand-offs between threads per request a worker costs (a quarter of the GET
//! throughput on two cores), and like a worker it never waits on a client: a client can hold
//! only its own connection's thread, and only until a deadline.
//!
//! Requests whose framing is ambiguous are refused and the connection closed (RFC 9112 6.1
//! and 6.3), since a proxy in front may have split the bytes differently: `Content-Length`
//! together with `Transfer-Encoding`, any coding but a lone `chunked`, `Transfer-Encoding` in
//! HTTP/1.0, a `Content-Length` that is not digits or disagrees with another, folded header
//! lines, and a CR or LF anywhere but at the end of a line.

use std::borrow::Cow;
use std::io::{self, BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Method};
use crate::connection::Connection;
use crate::request::Head;
use crate::util::body::{read_chunked, read_exact_into, BodyError};
use crate::util::Registration;
use crate::util::lines::{read_line, LineError};
use crate::util::{DeadlineStream, MessagesQueue, Slots};
use crate::{ConnectionConfig, Event, Header, Refused, Request, Response, StatusCode};

/// The longest request line or header line accepted (lsmdb patch: upstream had no limit, so
/// a client could grow a line in memory without end).
const MAX_LINE: usize = 8 * 1024;

/// The most header lines accepted in one request (lsmdb patch).
const MAX_HEADERS: usize = 100;

/// A lingering close reads and drops at most this much, for at most this long.
const LINGER_BYTES: usize = 64 * 1024;
const LINGER_TIME: Duration = Duration::from_secs(1);

pub(crate) struct ClientConnection {
    /// This connection among those a graceful shutdown looks at; first, so that it is
    /// dropped before the socket closes (`util/waiting.rs`).
    registration: Registration,
    reader: BufReader<DeadlineStream>,
    writer: BufWriter<DeadlineStream>,
    remote_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
    config: Arc<ConnectionConfig>,
    /// Scratch space for the line being read.
    line: Vec<u8>,
    /// Whether a request has been read on this connection yet.
    kept_alive: bool,
}

/// What the connections' threads share.
pub(crate) struct Shared {
    pub(crate) config: Arc<ConnectionConfig>,
    /// Where complete requests go when there is no handler.
    pub(crate) queue: Arc<MessagesQueue<Request>>,
    pub(crate) slots: Slots,
    /// Requests begun and not yet answered.
    pub(crate) in_progress: Arc<AtomicUsize>,
}

/// A request counted in `Shared::in_progress` while this lives.
struct InProgress<'a>(&'a AtomicUsize);

impl<'a> InProgress<'a> {
    fn new(count: &'a AtomicUsize) -> InProgress<'a> {
        count.fetch_add(1, Ordering::AcqRel);
        InProgress(count)
    }
}

impl Drop for InProgress<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a connection cannot carry another request.
enum Ending {
    /// Nothing to say: the client closed, stayed idle, vanished or stopped reading.
    Quiet,
    /// An error reply, then the connection closes: where the next request would start is
    /// unknown.
    Refused(Refusal),
}

struct Refusal {
    status: u16,
    message: Cow<'static, str>,
    /// What was read of the request line, if it could be parsed.
    request: Option<(Method, String, HTTPVersion)>,
}

fn refusal(status: u16, message: impl Into<Cow<'static, str>>, head: Option<&Head>) -> Ending {
    Ending::Refused(Refusal {
        status,
        message: message.into(),
        request: head.map(|h| (h.method.clone(), h.path.clone(), h.version.clone())),
    })
}

/// A reply tiny_http writes itself. lsmdb patch: upstream sent these with an empty body;
/// lsmdb's clients get every error as JSON `{"error":"..."}`.
pub(crate) fn error_reply(status: u16, message: &str) -> Response<io::Cursor<Vec<u8>>> {
    let mut escaped = String::with_capacity(message.len());
    for c in message.chars() {
        match c {
            '"' | '\\' => escaped.extend(['\\', c]),
            c if c.is_control() => {}
            c => escaped.push(c),
        }
    }
    let body = format!("{{\"error\":\"{}\"}}", escaped);
    Response::from_data(body)
        .with_status_code(StatusCode(status))
        .with_header(Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap())
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

/// How the request's body is delimited.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

impl ClientConnection {
    pub(crate) fn new(
        mut conn: Connection,
        shared: Arc<Shared>,
        registration: Registration,
    ) -> io::Result<ClientConnection> {
        // lsmdb patch: upstream unwrapped the address, panicking the connection's thread
        // when the peer was gone before it could be read.
        let halves = conn
            .peer_addr()
            .and_then(|remote_addr| Ok((remote_addr, conn.try_clone()?)));
        let (remote_addr, write_half) = match halves {
            Ok(halves) => halves,
            Err(e) => {
                // Before `conn` closes, as `util/waiting.rs` requires.
                drop(registration);
                return Err(e);
            }
        };
        let config = Arc::clone(&shared.config);
        let per_call = config.idle_timeout;
        Ok(ClientConnection {
            registration,
            reader: BufReader::with_capacity(8 * 1024, DeadlineStream::new(conn, per_call)),
            writer: BufWriter::with_capacity(8 * 1024, DeadlineStream::new(write_half, per_call)),
            remote_addr,
            shared,
            config,
            line: Vec::with_capacity(256),
            kept_alive: false,
        })
    }

    /// Serves requests until the connection ends.
    pub(crate) fn serve(mut self) {
        loop {
            match self.exchange() {
                Ok(true) => {}
                Ok(false) => return self.linger(),
                Err(Ending::Quiet) => return,
                Err(Ending::Refused(refusal)) => return self.refuse(refusal),
            }
        }
    }

    /// Reads one request, has it answered and writes the reply; `Ok(true)` when the
    /// connection may carry another request.
    fn exchange(&mut self) -> Result<bool, Ending> {
        // A timeout before any byte of a request is an idle keep-alive connection, closed
        // quietly as other servers do.
        self.reader.get_mut().set_deadline(None);
        if self.reader.buffer().is_empty() {
            let arrived = if self.kept_alive {
                // A request sent on an idle kept-alive connection just as the server closes
                // it is the race every HTTP client must expect (RFC 9112 9.3.1); a peek
                // before each such request cost up to a fifth of GET throughput.
                self.reader.fill_buf().map(|buffered| buffered.len())
            } else {
                // A peek, not a read: until the first request is counted in progress its
                // bytes stay in the socket, where a graceful shutdown sees them
                // (`util/waiting.rs`).
                self.reader.get_mut().peek(&mut [0u8])
            };
            match arrived {
                Ok(n) if n > 0 => {}
                _ => return Err(Ending::Quiet),
            }
        }
        self.kept_alive = true;
        let shared = Arc::clone(&self.shared);
        let _busy = InProgress::new(&shared.in_progress);
        // Dropped before `_busy`: waiting again before the request stops counting.
        let _marked = self.registration.busy();
        let head_deadline = Instant::now() + self.config.head_timeout;
        self.reader.get_mut().set_deadline(Some(head_deadline));
        let head = self.read_head()?;
        let framing = framing(&head, self.config.max_body)?;
        if expects_continue(&head)? && framing != Framing::None {
            self.send_continue()?;
        }
        let body_deadline = Instant::now() + self.config.body_timeout;
        self.reader.get_mut().set_deadline(Some(body_deadline));
        let body = self.read_body(framing, &head)?;

        let version = head.version.clone();
        let is_head = head.method == Method::Head;
        let wants_close = wants_close(&head);
        let length = match framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let (request, reply) = Request::new(head, body, length, self.remote_addr);
        match &self.config.handler {
            Some(handler) => {
                // Held only while the handler works: no client I/O happens under a slot.
                let _slot = shared.slots.take();
                handler(request);
            }
            None => shared.queue.push(request),
        }
        let (response, then) = reply.recv().map_err(|_| Ending::Quiet)?;

        // A body of unknown length to an HTTP/1.0 client ends where the connection does.
        let close = wants_close
            || response.closes_connection()
            || (version <= (1, 0) && response.data_length().is_none());
        let reply_deadline = Instant::now() + self.config.reply_timeout;
        self.writer.get_mut().set_deadline(Some(reply_deadline));
        let server = self.config.server();
        let printed = response.raw_print(&mut self.writer, version, is_head, server, close);
        let written = printed.is_ok() && self.writer.flush().is_ok();
        if let Some(then) = then {
            then();
        }
        // If not, the client went away or reads too slowly: no one left to tell.
        written.then_some(!close).ok_or(Ending::Quiet)
    }

    fn read_head(&mut self) -> Result<Head, Ending> {
        self.read_head_line(None)?;
        let request_line = std::str::from_utf8(&self.line)
            .ok()
            .filter(|l| l.is_ascii())
            .and_then(|l| parse_request_line(l.trim()));
        let Some((method, path, version)) = request_line else {
            return Err(refusal(400, "malformed request line or header", None));
        };
        let mut head = Head {
            method,
            path,
            version,
            headers: Vec::new(),
        };
        loop {
            self.read_head_line(Some(&head))?;
            if self.line.is_empty() {
                break;
            }
            if head.headers.len() == MAX_HEADERS {
                return Err(refusal(431, "request line or headers too large", Some(&head)));
            }
            match parse_header(&self.line) {
                Some(header) => head.headers.push(header),
                None => return Err(refusal(400, "malformed header", Some(&head))),
            }
        }
        if head.version > (1, 1) {
            let message = "only HTTP/1.0 and HTTP/1.1 are supported";
            return Err(refusal(505, message, Some(&head)));
        }
        Ok(head)
    }

    fn read_head_line(&mut self, head: Option<&Head>) -> Result<(), Ending> {
        match read_line(&mut self.reader, MAX_LINE, &mut self.line) {
            Ok(()) => Ok(()),
            Err(LineError::TooLong) => Err(refusal(431, "request line or headers too large", head)),
            Err(LineError::Malformed) => Err(refusal(400, "malformed request line or header", head)),
            Err(LineError::Io(e)) if is_timeout(&e) => {
                Err(refusal(408, "timed out reading the request", head))
            }
            Err(LineError::Eof) | Err(LineError::Io(_)) => Err(Ending::Quiet),
        }
    }

    fn send_continue(&mut self) -> Result<(), Ending> {
        let deadline = Instant::now() + self.config.reply_timeout;
        self.writer.get_mut().set_deadline(Some(deadline));
        self.writer
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .and_then(|()| self.writer.flush())
            .map_err(|_| Ending::Quiet)
    }

    fn read_body(&mut self, framing: Framing, head: &Head) -> Result<Vec<u8>, Ending> {
        let mut body = Vec::new();
        let read = match framing {
            Framing::None => Ok(()),
            Framing::Length(n) => read_exact_into(&mut self.reader, &mut body, n),
            Framing::Chunked => read_chunked(
                &mut self.reader,
                self.config.max_body,
                MAX_LINE,
                MAX_HEADERS,
                &mut body,
                &mut self.line,
            ),
        };
        match read {
            Ok(()) => Ok(body),
            Err(BodyError::TooLarge) => Err(refusal(413, too_large(self.config.max_body), Some(head))),
            Err(BodyError::Malformed) => Err(refusal(400, "malformed chunked body", Some(head))),
            Err(BodyError::Eof) => Err(refusal(400, "the request body is shorter than announced", Some(head))),
            Err(BodyError::Io(e)) if is_timeout(&e) => {
                Err(refusal(408, "timed out reading the request body", Some(head)))
            }
            Err(BodyError::Io(_)) => Err(Ending::Quiet),
        }
    }

    /// Reports the refusal, writes it, and closes.
    fn refuse(mut self, refusal: Refusal) {
        let reply = error_reply(refusal.status, &refusal.message);
        let request = refusal.request.as_ref();
        // Counted before the reply leaves, so that a client that has it finds it counted.
        self.config.report(&Event::Refused(Refused {
            status: refusal.status,
            message: &refusal.message,
            method: request.map(|r| &r.0),
            path: request.map(|r| r.1.as_str()),
            version: request.map(|r| &r.2),
            remote_addr: self.remote_addr,
            body_bytes: reply.data_length().unwrap_or(0),
        }));
        let version = request.map_or(HTTPVersion(1, 1), |r| r.2.clone());
        let deadline = Instant::now() + self.config.reply_timeout;
        self.writer.get_mut().set_deadline(Some(deadline));
        let server = self.config.server();
        if reply.raw_print(&mut self.writer, version, false, server, true).is_ok() {
            self.linger();
        }
    }

    /// A lingering close, as other servers do. Closing a socket with input still unread (the
    /// rest of a refused request, requests pipelined after the last one answered) makes the
    /// kernel reset the connection, and a reset can destroy the last reply on its way to the
    /// client. So the write half is shut first, which tells the client the replies are over,
    /// and input is read and dropped until the client closes: at most 64 KiB and about a
    /// second, so a client that keeps sending cannot hold the thread.
    fn linger(mut self) {
        if self.writer.flush().is_err() {
            return;
        }
        let ended = self.writer.get_ref().connection().shutdown(Shutdown::Write);
        if ended.is_err() {
            return;
        }
        let stream = self.reader.get_mut();
        stream.set_per_call(Duration::from_millis(200));
        stream.set_deadline(Some(Instant::now() + LINGER_TIME));
        let mut buf = [0u8; 8192];
        let mut dropped = 0;
        while dropped < LINGER_BYTES {
            match self.reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    }
}

fn too_large(max_body: usize) -> String {
    format!("the request body is over the limit of {} bytes", max_body)
}

/// Decides how the body is delimited, refusing anything ambiguous (see the module docs) and
/// an announced length over `max_body`.
fn framing(head: &Head, max_body: usize) -> Result<Framing, Ending> {
    let values = |name: &'static str| {
        head.headers
            .iter()
            .filter(move |h| h.field.equiv(name))
            .map(|h| h.value.as_str())
    };
    let codings: Vec<&str> = values("Transfer-Encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if !codings.is_empty() {
        let message = if values("Content-Length").next().is_some() {
            "a request must not have both Content-Length and Transfer-Encoding"
        } else if head.version <= (1, 0) {
            "Transfer-Encoding is not allowed in HTTP/1.0"
        } else if codings.len() != 1 || !codings[0].eq_ignore_ascii_case("chunked") {
            "the only Transfer-Encoding supported is chunked"
        } else {
            return Ok(Framing::Chunked);
        };
        return Err(refusal(400, message, Some(head)));
    }
    let mut length = None;
    for value in values("Content-Length") {
        let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        let n = value.parse::<usize>().ok().filter(|_| digits);
        if n.is_none() || (length.is_some() && length != n) {
            let message = "the Content-Length header is not a valid length";
            return Err(refusal(400, message, Some(head)));
        }
        length = n;
    }
    match length {
        None => Ok(Framing::None),
        Some(n) if n > max_body => Err(refusal(413, too_large(max_body), Some(head))),
        Some(n) => Ok(Framing::Length(n)),
    }
}

/// `Expect: 100-continue` is the only expectation there is (RFC 9110 10.1.1); an HTTP/1.0
/// client's is ignored, as the RFC asks.
fn expects_continue(head: &Head) -> Result<bool, Ending> {
    let expect = head.headers.iter().find(|h| h.field.equiv("Expect"));
    match expect.map(|h| h.value.as_str()) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("100-continue") => Ok(head.version > (1, 0)),
        Some(_) => Err(refusal(417, "only Expect: 100-continue is supported", Some(head))),
    }
}

/// Whether the client said this is its last request: `Connection: close`, or HTTP/1.0
/// without `keep-alive`. `upgrade` is not supported, so it ends the connection too.
fn wants_close(head: &Head) -> bool {
    let connection = head
        .headers
        .iter()
        .find(|h| h.field.equiv("Connection"))
        .map(|h| h.value.as_str().to_ascii_lowercase());
    match connection {
        Some(v) if v.contains("close") || v.contains("upgrade") => true,
        Some(v) => head.version <= (1, 0) && !v.contains("keep-alive"),
        None => head.version <= (1, 0),
    }
}

/// `name: value`, with no whitespace before the name (an obsolete folded line, which RFC 9112
/// 5.2 lets a server refuse) or the colon, and no control character but tab in the value.
fn parse_header(line: &[u8]) -> Option<Header> {
    let line = std::str::from_utf8(line).ok().filter(|l| l.is_ascii())?;
    let clean_value = |v: &str| v.bytes().all(|b| b == b'\t' || !b.is_ascii_control());
    let (name, value) = line.split_once(':')?;
    if name.is_empty() || !clean_value(value) {
        return None;
    }
    line.parse().ok()
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Option<HTTPVersion> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return None,
    };

    Some(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Option<(Method, String, HTTPVersion)> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(parse_http_version);

    method.and_then(|method| Some((method, path?, version?)))
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_none());
        assert!(super::parse_request_line("qsd qsd qsd").is_none());
    }

    #[test]
    fn headers_are_parsed_strictly() {
        let parse = |l: &str| super::parse_header(l.as_bytes()).is_some();
        assert!(parse("Transfer-Encoding: chunked"));
        assert!(parse("X-Tab:\tvalue"));
        assert!(!parse(" Transfer-Encoding: chunked"), "a folded line");
        assert!(!parse("Transfer-Encoding : chunked"));
        assert!(!parse(": no name"));
        assert!(!parse("X: a\u{0}b"));
        assert!(!parse("X: ключ"));
    }
}
