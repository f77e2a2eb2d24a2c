//! Raw bytes sent to a running server (RELIABILITY.md T13): `lsmdb::server`, the server
//! `lsmdb serve` runs, started in this process, so libFuzzer sees the coverage of the
//! patched tiny_http's request parser, the routing, the query and body decoding and the
//! engine calls behind them.
//!
//! Each input goes over a fresh connection, whose write side is then shut. Whatever the
//! bytes, every reply must be a well-formed HTTP/1.x status line, never a 5xx (505, the
//! standard answer to an HTTP version other than 1.x, aside), framed by its
//! `Content-Length`, by well-formed chunks, or by the close, and the server must go on
//! answering: the next input would fail to connect or time out otherwise.
#![no_main]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::LazyLock;
use std::time::Duration;

use lsmdb::server;

// Serves until the process ends; held in a static so that nothing of it counts as a leak.
static SERVER: LazyLock<server::Running> = LazyLock::new(|| {
    // Quiet: a request log line per input would drown libFuzzer's own output.
    // SAFETY: set before any other thread of this process reads the environment.
    unsafe { std::env::set_var("LOG_LEVEL", "ERROR") };
    let dir = tempfile::tempdir().expect("temporary directory").keep();
    let options = lsmdb::Options::default()
        .sync(lsmdb::SyncMode::None)
        .write_buffer_size(1 << 20);
    let db = lsmdb::Db::open(&dir, options).expect("open the database");
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let config = server::Config::default()
        .threads(2)
        .max_body(64 << 10)
        .max_connections(64)
        .timeout(Duration::from_secs(2))
        .body_timeout(Duration::from_secs(2));
    server::start(db, listener, config).expect("start the server")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut conn = TcpStream::connect(SERVER.local_addr()).expect("the server stopped accepting connections");
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may close before reading everything (a bad request line, say): not a failure.
    let _ = conn.write_all(data);
    let _ = conn.shutdown(Shutdown::Write);
    let mut reply = Vec::new();
    // A server that closes with some of the input unread (after refusing a request) makes
    // the kernel reset the connection, which can cut off what it had sent: then the last
    // reply may be incomplete, but everything before must be well-formed.
    let reset = match conn.read_to_end(&mut reply) {
        Ok(_) => false,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => true,
        Err(e) => panic!("reading the reply failed: {e} (server hung?)"),
    };
    // Pipelined requests get one reply each: walk them by their heads and Content-Length.
    let mut rest = &reply[..];
    while !rest.is_empty() {
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            assert!(reset, "a reply head cut short on a clean close");
            break;
        };
        let head = std::str::from_utf8(&rest[..head_end]).expect("an ASCII reply head");
        let status = head.split("\r\n").next().unwrap_or_default();
        let code: u16 = status
            .strip_prefix("HTTP/1.")
            .and_then(|s| s.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("malformed status line {status:?}"));
        assert!(
            (100..500).contains(&code) || code == 505,
            "bad input got {status:?}"
        );
        let header = |wanted: &str| {
            head.split("\r\n").skip(1).find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case(wanted).then(|| value.trim())
            })
        };
        let length = header("content-length")
            .map(|v| v.parse::<usize>().expect("a numeric Content-Length"));
        let chunked = header("transfer-encoding") == Some("chunked");
        assert!(length.is_none() || !chunked, "both framings in {head:?}");
        let after_head = &rest[head_end + 4..];
        // A reply to HEAD announces its body but sends none; every body the server sends is
        // JSON or Prometheus text, which never starts like a status line.
        let bodiless = after_head.is_empty() || after_head.starts_with(b"HTTP/1.");
        let next = match (code, length) {
            (100, _) => Some(after_head),
            _ if bodiless && (length.is_some() || chunked) => Some(after_head),
            (_, Some(n)) => after_head.get(n..),
            (_, None) if chunked => after_chunks(after_head),
            // No length: the body runs to the end of the connection.
            (_, None) => break,
        };
        let Some(next) = next else {
            assert!(reset, "a body cut short on a clean close");
            break;
        };
        rest = next;
    }
});

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// What follows a chunked body, checking its framing; `None` if it is cut short.
fn after_chunks(mut body: &[u8]) -> Option<&[u8]> {
    loop {
        let line_end = find(body, b"\r\n")?;
        let size = std::str::from_utf8(&body[..line_end]).expect("an ASCII chunk size");
        let size = usize::from_str_radix(size, 16).expect("a hex chunk size");
        let data = body.get(line_end + 2..line_end + 2 + size + 2)?;
        assert_eq!(&data[size..], b"\r\n", "a chunk not ended by CRLF");
        body = &body[line_end + 2 + size + 2..];
        if size == 0 {
            return Some(body);
        }
    }
}
