use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;

use std::sync::mpsc::Receiver;

use crate::common::{HTTPVersion, Method};
use crate::{Header, Response, StatusCode};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriter, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // lsmdb patch: tells, once the previous request is dropped, whether its body was read to
    // the end; if not, the stream is mid-body and no further request can be parsed from it
    previous_body_done: Option<Receiver<bool>>,
    // lsmdb patch: the writer of a request that `read` refused after taking its place in
    // the sequence of replies; the refusal goes through it, after the earlier replies.
    refused_writer: Option<SequentialWriter<BufWriter<RefinedTcpStream>>>,

    // lsmdb patch: bytes of the current request's head read so far, to tell an idle
    // keep-alive connection (closed quietly on timeout) from a stalled request (408)
    head_bytes: usize,
}

/// The longest request line or header line accepted (lsmdb patch: upstream had no limit, so
/// a client could grow a line in memory without end).
const MAX_LINE: usize = 8 * 1024;

/// The most header lines accepted in one request (lsmdb patch).
const MAX_HEADERS: usize = 100;

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    /// the `Content-Length` header is not a number (lsmdb patch)
    BadContentLength(HTTPVersion),
    /// a line is longer than `MAX_LINE` or there are more than `MAX_HEADERS` (lsmdb patch)
    HeadTooLarge,
    ReadIoError(IoError),
}

/// A reply tiny_http writes itself, before or instead of handing a request over; the
/// connection closes after it. lsmdb patch: upstream sent these with an empty body; lsmdb's
/// clients get every error as JSON `{"error":"..."}`.
fn error_reply(status: u16, message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    let body = format!("{{\"error\":\"{}\"}}", message);
    Response::from_data(body)
        .with_status_code(StatusCode(status))
        .with_header(Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).unwrap())
        .with_header(Header::from_bytes(&b"Connection"[..], &b"close"[..]).unwrap())
}

fn is_timeout(err: &IoError) -> bool {
    // A socket read timeout is EAGAIN (`WouldBlock`) on Unix and `TimedOut` on Windows.
    matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            previous_body_done: None,
            refused_writer: None,
            head_bytes: 0,
        }
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    fn read_next_line(&mut self) -> Result<AsciiString, ReadError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b.map_err(ReadError::ReadIoError)?,
                None => {
                    let err = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                    return Err(ReadError::ReadIoError(err));
                }
            };
            self.head_bytes += 1;

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                // lsmdb patch: a line that is not ASCII is a malformed request (400), where
                // upstream closed the connection without a reply.
                return AsciiString::from_ascii(buf).map_err(|_| ReadError::WrongRequestLine);
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
            if buf.len() > MAX_LINE {
                return Err(ReadError::HeadTooLarge);
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    /// lsmdb patch: a lingering close, as other servers do. Closing a socket with input still
    /// unread (the rest of a refused request, a body the handler did not want, requests
    /// pipelined after them) makes the kernel reset the connection, and a reset can destroy
    /// the last reply on its way to the client. So the write half is shut first, which tells
    /// the client the replies are over, and input is read and dropped until the client
    /// closes: at most 64 KiB and about a second, so a client that keeps sending cannot hold
    /// the thread.
    fn linger(&mut self) {
        const MAX_BYTES: usize = 64 * 1024;
        const MAX_TIME: std::time::Duration = std::time::Duration::from_secs(1);
        // A writer of our own waits its turn: the reply before it (whose body reader may
        // have been dropped before the reply was written) must be out before the write half
        // is shut.
        let mut last = self.sink.next().unwrap();
        if last.flush().is_err() {
            return;
        }
        let ended = self
            .sink
            .with_writer(|w| w.get_mut().end_writes(std::time::Duration::from_millis(200)));
        drop(last);
        if ended.is_err() {
            return;
        }
        let started = std::time::Instant::now();
        let mut buf = [0u8; 8192];
        let mut dropped = 0;
        while dropped < MAX_BYTES && started.elapsed() < MAX_TIME {
            match self.next_header_source.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => dropped += n,
            }
        }
    }

    fn read(&mut self) -> Result<Request, ReadError> {
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                self.head_bytes = 0;
                let line = self.read_next_line()?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line()?;

                    if line.is_empty() {
                        break;
                    };
                    if headers.len() == MAX_HEADERS {
                        return Err(ReadError::HeadTooLarge);
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // lsmdb patch: upstream unwrapped this, panicking the connection's thread when the
        // peer was gone before its address could be read.
        let remote_addr = match &self.remote_addr {
            Ok(addr) => *addr,
            Err(e) => return Err(ReadError::ReadIoError(IoError::new(e.kind(), e.to_string()))),
        };

        // building the next reader
        let (request, body_done) = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            remote_addr,
            data_source,
            writer,
        )
        .map_err(|(e, writer)| {
            use crate::request;
            self.refused_writer = Some(writer);
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
                request::RequestCreationError::BadContentLength => {
                    ReadError::BadContentLength(version)
                }
            }
        })?;
        self.previous_body_done = body_done;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        // lsmdb patch: waits until the previous request is dropped (upstream waited the same,
        // inside the next read); a body left partly unread means the stream is mid-body and
        // the rest must not be parsed as a request, so the connection closes.
        if let Some(done) = self.previous_body_done.take() {
            if done.recv() != Ok(true) {
                self.linger();
                return None;
            }
        }

        loop {
            // lsmdb patch: each refusal below is a JSON reply, and the connection closes
            // after it since where the next request would start is unknown.
            let refusal = match self.read() {
                Ok(rq) => Ok(rq),
                Err(ReadError::WrongRequestLine) => {
                    Err((HTTPVersion(1, 1), 400, "malformed request line or header"))
                }
                Err(ReadError::WrongHeader(ver)) => Err((ver, 400, "malformed header")),
                Err(ReadError::BadContentLength(ver)) => {
                    Err((ver, 400, "the Content-Length header is not a valid length"))
                }
                Err(ReadError::HeadTooLarge) => Err((
                    HTTPVersion(1, 1),
                    431,
                    "request line or headers too large",
                )),
                Err(ReadError::ExpectationFailed(ver)) => {
                    Err((ver, 417, "only Expect: 100-continue is supported"))
                }
                // lsmdb patch: a timeout before any byte of a request is an idle keep-alive
                // connection, closed quietly as other servers do; a request cut off in the
                // middle gets a 408. Upstream recognised only `TimedOut`, which Unix sockets
                // never report.
                Err(ReadError::ReadIoError(ref err)) if is_timeout(err) && self.head_bytes > 0 => {
                    Err((HTTPVersion(1, 1), 408, "timed out reading the request"))
                }
                Err(ReadError::ReadIoError(_)) => return None,
            };
            let rq = match refusal {
                Ok(rq) => rq,
                Err((ver, status, message)) => {
                    let writer = match self.refused_writer.take() {
                        Some(writer) => writer,
                        None => self.sink.next().unwrap(),
                    };
                    let do_not_send_body = false;
                    error_reply(status, message)
                        .raw_print(writer, ver, &[], do_not_send_body, None)
                        .ok();
                    self.linger();
                    return None;
                }
            };

            // checking HTTP version
            // lsmdb patch: upstream wrote the 505 on a writer of its own and then dropped
            // `rq` unanswered, which sent an empty 500 after it; the reply now goes through
            // the request's own writer and the connection closes.
            if *rq.http_version() > (1, 1) {
                let writer = rq.into_writer();
                let response = error_reply(505, "only HTTP/1.0 and HTTP/1.1 are supported");
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                return None;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
