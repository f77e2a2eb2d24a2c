//! HTTP itself against the real server: keep-alive, HTTP/1.0, pipelining, malformed request
//! lines and headers, bad or missing Content-Length, 100-continue, chunked bodies, and idle,
//! half-closed, stalled and trickling clients, which must never hang a worker for long nor
//! stop the server from answering others.

use std::io::Write;
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::binary::http::{Conn, Server};
use serde_json::json;

fn short_timeouts(dir: &std::path::Path) -> Server {
    Server::start(dir, &["--timeout", "1", "--body-timeout", "2"])
}

#[test]
fn keep_alive_carries_many_requests_and_pipelined_replies_come_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    let mut conn = server.connect();
    for i in 0..20 {
        let body = format!(r#"{{"key":"k{i}","value":"v{i}"}}"#);
        assert_eq!(
            conn.request("PUT", "/keys", &[], Some(body.as_bytes()))
                .status,
            200
        );
    }
    conn.send(
        b"GET /keys?key=k1 HTTP/1.1\r\nHost: x\r\n\r\nGET /keys?key=k2 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(conn.read_response().unwrap().json()["value"], "v1");
    assert_eq!(conn.read_response().unwrap().json()["value"], "v2");
}

#[test]
fn http_1_0_clients_get_a_reply_and_a_closed_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    let mut conn = server.connect();
    conn.send(b"GET /health HTTP/1.0\r\n\r\n");
    let r = conn.read_response().unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, r#"{"health":"true"}"#));
    assert!(conn.is_closed_by_server());

    let mut conn = server.connect();
    let body = br#"{"key":"old","value":"client"}"#;
    conn.send(
        format!(
            "PUT /keys HTTP/1.0\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    conn.send(body);
    assert_eq!(conn.read_response().unwrap().status, 200);
    assert_eq!(server.get("/keys?key=old").json()["value"], "client");
}

#[test]
fn malformed_requests_get_json_errors_and_the_server_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    let long_header = format!(
        "GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let many_headers = format!("GET /health HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(200));
    let cases: [(&[u8], u16, &str); 10] = [
        (b"HELLO\r\n\r\n", 400, "malformed request line"),
        (b"GET /keys\r\n\r\n", 400, "malformed request line"),
        (b"GET /keys HTTP/9.9\r\n\r\n", 400, "malformed request line"),
        (
            "GET /ключ HTTP/1.1\r\n\r\n".as_bytes(),
            400,
            "malformed request line",
        ),
        (
            b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n",
            400,
            "malformed header",
        ),
        (
            b"GET /health HTTP/2.0\r\n\r\n",
            505,
            "only HTTP/1.0 and HTTP/1.1",
        ),
        (
            b"GET /health HTTP/2.0\r\nno colon here\r\n\r\n",
            400,
            "malformed header",
        ),
        (long_header.as_bytes(), 431, "too large"),
        (many_headers.as_bytes(), 431, "too large"),
        (
            b"GET /health HTTP/1.1\r\nExpect: tea\r\n\r\n",
            417,
            "100-continue",
        ),
    ];
    for (raw, status, needle) in cases {
        let mut conn = server.connect();
        conn.send(raw);
        let r = conn
            .read_response()
            .unwrap_or_else(|| panic!("no reply to {:?}", String::from_utf8_lossy(raw)));
        let message = r.error(status);
        assert!(message.contains(needle), "{message:?}");
        assert!(
            conn.is_closed_by_server(),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn a_refused_request_is_answered_after_the_requests_pipelined_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    for refused in [
        "GET /health HTTP/1.1\r\nExpect: tea\r\n\r\n",
        "PUT /keys HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ] {
        let mut conn = server.connect();
        conn.send(format!("GET /keys?key=k HTTP/1.1\r\n\r\n{refused}").as_bytes());
        let first = conn.read_response().unwrap();
        assert_eq!(
            first.status, 200,
            "{refused:?}: the first reply is the GET's"
        );
        assert_eq!(first.json(), json!({"key": "k", "value": null}));
        let second = conn.read_response().unwrap();
        assert!(
            second.status == 417 || second.status == 400,
            "{refused:?}: {second:?}"
        );
        assert!(conn.is_closed_by_server());
    }
}

#[test]
fn a_refusal_ends_in_a_clean_close_even_with_unread_input_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    let mut raw = b"PUT /keys HTTP/1.1\r\nContent-Length: abc\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'x', 32 * 1024));
    let mut conn = server.connect();
    conn.send(&raw);
    // Time for the server to refuse and close. Closing with the 32 KiB unread would make the
    // kernel reset the connection, and a reset can destroy a reply still on its way.
    thread::sleep(Duration::from_millis(300));
    let r = conn
        .read_response()
        .expect("the refusal reached the client");
    assert!(r.error(400).contains("Content-Length"));
    let mut rest = Vec::new();
    assert!(matches!(conn.read_to_end(&mut rest), Ok(0)));
    // Over loopback the reply arrives before a reset could destroy it, but the socket
    // records the reset; over a real network the reply could still be in flight.
    let error = conn.stream().take_error().unwrap();
    assert!(
        error.is_none(),
        "the server reset the connection: {error:?}"
    );
}

#[test]
fn bad_or_missing_content_length_is_refused_without_reading_the_body_as_a_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    // The "body" is a request of its own: it must never run.
    let smuggled = b"DELETE /keys?key=keep HTTP/1.1\r\n\r\n";
    server.put_json("keep", "me");
    for length in ["abc", "-1", "99999999999999999999999", "5, 6"] {
        let mut conn = server.connect();
        conn.send(format!("PUT /keys HTTP/1.1\r\nContent-Length: {length}\r\n\r\n").as_bytes());
        conn.send(smuggled);
        let r = conn.read_response().unwrap();
        assert!(r.error(400).contains("Content-Length"), "{length}");
        assert!(conn.is_closed_by_server());
    }
    let mut conn = server.connect();
    conn.send(b"PUT /keys HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd");
    conn.read_response().unwrap().error(400);

    let mut conn = server.connect();
    conn.send(b"PUT /keys HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = conn.read_response().unwrap();
    assert!(r.error(411).contains("Content-Length"));

    // A body shorter than announced, then the client stops writing: a 400, not a hang.
    let mut conn = server.connect();
    conn.send(b"PUT /keys HTTP/1.1\r\nContent-Length: 5000\r\n\r\n{\"key\":");
    conn.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(conn.read_response().unwrap().status, 400);

    assert_eq!(server.get("/keys?key=keep").json()["value"], "me");
}

#[test]
fn expect_100_continue_and_chunked_bodies_work() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    let body = br#"{"key":"cont","value":"inued"}"#;
    let mut conn = server.connect();
    conn.send(
        format!(
            "PUT /keys HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(conn.read_response().unwrap().status, 100);
    conn.send(body);
    assert_eq!(conn.read_response().unwrap().status, 200);

    // Refused before the body is sent: the client is not left waiting to send it.
    conn.send(b"PUT /keys HTTP/1.1\r\nContent-Length: 999999999\r\nExpect: 100-continue\r\n\r\n");
    conn.read_response().unwrap().error(413);

    let mut conn = server.connect();
    conn.send(
        b"POST /keys/batch HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
          10\r\n{\"keys\":[\"c\"],\"v\r\n\
          b\r\nalues\":[\"h\"\r\n\
          2\r\n]}\r\n0\r\n\r\n",
    );
    assert_eq!(
        conn.read_response().unwrap().text(),
        r#"{"success":true,"count":1}"#
    );
    assert_eq!(server.get("/keys?key=cont").json()["value"], "inued");
    assert_eq!(server.get("/keys?key=c").json()["value"], "h");
}

#[test]
fn idle_and_half_closed_connections_are_let_go() {
    let dir = tempfile::tempdir().unwrap();
    let server = short_timeouts(dir.path());
    let mut idle = server.connect();
    assert_eq!(idle.request("GET", "/health", &[], None).status, 200);
    // Idle past --timeout: closed quietly, with no stray reply.
    assert!(idle.is_closed_by_server());

    let mut half = server.connect();
    half.send(b"GET /health HTTP/1.1\r\n\r\n");
    half.stream().shutdown(Shutdown::Write).unwrap();
    assert_eq!(half.read_response().unwrap().status, 200);
    assert!(half.is_closed_by_server());

    // A request head cut off in the middle gets a 408 once the timeout passes.
    let mut stalled = server.connect();
    stalled.send(b"GET /health HTTP/1.1\r\nHost: x\r\n");
    stalled.read_response().unwrap().error(408);

    // So does a body that stops arriving (--timeout 1), and one that trickles in for longer
    // than --body-timeout 2.
    // (Once two paths, one for bodies up to 1 KiB and one for larger ones: both time out.)
    for length in [100, 5000] {
        let mut stalled = server.connect();
        stalled
            .send(format!("PUT /keys HTTP/1.1\r\nContent-Length: {length}\r\n\r\n{{").as_bytes());
        assert!(
            stalled
                .read_response()
                .unwrap()
                .error(408)
                .contains("timed out")
        );
    }
    let mut trickle = server.connect();
    trickle.send(b"PUT /keys HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
    let reply = loop {
        let _ = trickle.try_send(b" ");
        trickle
            .stream()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Some(r) = trickle.read_response() {
            break r;
        }
    };
    assert!(reply.error(408).contains("body"));
    assert_eq!(server.get("/health").status, 200);
}

#[test]
fn slow_clients_do_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--threads", "4", "--timeout", "10", "--body-timeout", "10"],
    );
    // Clients stuck in their request heads or bodies, or trickling them, are held by their
    // connections' own threads until the timeout, never by a worker (tests/http/abuse.rs
    // pins that). None of them keeps the others from being answered meanwhile.
    let stuck: Vec<Conn> = (0..20)
        .map(|i| {
            let mut c = server.connect();
            c.send(format!("GET /keys?key=slow{i} HTT").as_bytes());
            c
        })
        .collect();
    let mut stuck_body = server.connect();
    stuck_body.send(b"PUT /keys HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"key\"");
    let trickle = server.connect();
    let stop = Arc::new(AtomicBool::new(false));
    let trickler = {
        let mut stream = trickle.stream().try_clone().unwrap();
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let _ = stream.write_all(b"PUT /keys HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
            while !stop.load(Ordering::SeqCst) && stream.write_all(b" ").is_ok() {
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let mut conn = server.connect();
    for i in 0..50 {
        let body = format!(r#"{{"key":"fast{i}","value":"{i}"}}"#);
        assert_eq!(
            conn.request("PUT", "/keys", &[], Some(body.as_bytes()))
                .status,
            200
        );
        assert_eq!(
            conn.request("GET", &format!("/keys?key=fast{i}"), &[], None)
                .status,
            200
        );
    }
    // The fast requests were answered while the slow ones were still pending (the slow ones
    // get their 408 only after the 10 s timeout; tests above cover those replies).
    let mut peek = [0u8; 1];
    stuck_body.stream().set_nonblocking(true).unwrap();
    let pending = stuck_body.stream().peek(&mut peek);
    assert!(
        matches!(&pending, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the stalled body was already answered or dropped: {pending:?}"
    );
    stop.store(true, Ordering::SeqCst);
    trickler.join().unwrap();
    drop(stuck);
    assert_eq!(server.get("/health").status, 200);
}
