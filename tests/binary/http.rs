//! A real `lsmdb serve` on a free port, and a small blocking HTTP/1.1 client that writes
//! requests byte by byte as given, so tests can send malformed ones too.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `lsmdb --db DIR serve --addr 127.0.0.1:0 ARGS...` and waits for its start-up
    /// line, which names the port the kernel picked (no race for a "free" port).
    pub fn start(dir: &Path, args: &[&str]) -> Server {
        let mut cmd = Command::new(super::lsmdb_path());
        cmd.env_remove("LSMDB_DIR")
            .env_remove("LSMDB_TOKEN")
            .env_remove("LSMDB_URL")
            .env_remove("LOG_LEVEL");
        cmd.arg("--db").arg(dir);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
        Server::spawn(cmd)
    }

    pub fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lsmdb serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(String::new()));
        let addr = read_start_line(stderr, Arc::clone(&log));
        Server { child, addr, log }
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    pub fn connect(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on a fresh connection.
    pub fn request(&self, method: &str, target: &str, body: Option<&[u8]>) -> Response {
        self.connect().request(method, target, &[], body)
    }

    pub fn get(&self, target: &str) -> Response {
        self.request("GET", target, None)
    }

    pub fn put_json(&self, key: &str, value: &str) -> Response {
        let body = serde_json::json!({"key": key, "value": value}).to_string();
        self.request("PUT", "/keys", Some(body.as_bytes()))
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once it contains `needle`: a request's line is written after its reply.
    pub fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits for the server to exit, failing the test after `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the log reader catch the last lines.
                thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit in {limit:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_start_line(stderr: ChildStderr, log: Arc<Mutex<String>>) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        let mut tx = Some(tx);
        while let Some(Ok(line)) = lines.next() {
            log.lock().unwrap().push_str(&line);
            log.lock().unwrap().push('\n');
            if let Some(addr) = line.split("on http://").nth(1) {
                let addr = addr.split(' ').next().unwrap().parse::<SocketAddr>();
                if let (Some(tx), Ok(addr)) = (tx.take(), addr) {
                    let _ = tx.send(addr);
                }
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(30))
        .expect("lsmdb serve printed no start-up line")
}

/// A parsed reply.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a JSON error reply with this status, returning its message.
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "body: {}", self.text());
        assert_eq!(self.header("Content-Type"), Some("application/json"));
        let json = self.json();
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"error\" string in {json}"))
            .to_string()
    }
}

/// One connection, usable for several requests (keep-alive).
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.try_send(raw).expect("send");
    }

    pub fn try_send(&mut self, raw: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(raw)
    }

    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: lsmdb\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if let Some(body) = body {
            raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        raw.push_str("\r\n");
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(body.unwrap_or_default());
        self.send(&raw);
        self.read_reply(method == "HEAD")
            .unwrap_or_else(|| panic!("connection closed without a reply to {method} {target}"))
    }

    /// Reads one reply (framed by `Content-Length`, or chunked as long ranges are); `None`
    /// when the server closed the connection before a status line.
    pub fn read_response(&mut self) -> Option<Response> {
        self.read_reply(false)
    }

    /// As `read_response`; a reply to HEAD has a `Content-Length` but no body.
    pub fn read_reply(&mut self, head: bool) -> Option<Response> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        // Whatever version the request line claimed, the reply speaks HTTP/1.x.
        let status = status_line
            .strip_prefix("HTTP/1.")
            .and_then(|rest| rest.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header has a colon");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if response.header("Transfer-Encoding") == Some("chunked") && !head {
            response.body = self.read_chunks();
            return Some(response);
        }
        let len: usize = match response.header("Content-Length") {
            _ if head => 0,
            None => 0,
            Some(l) => l.parse().expect("numeric Content-Length"),
        };
        response.body = vec![0; len];
        self.reader.read_exact(&mut response.body).expect("body");
        Some(response)
    }

    fn read_chunks(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let mut size = String::new();
            self.reader.read_line(&mut size).expect("chunk size");
            let size = usize::from_str_radix(size.trim_end(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line {size:?}"));
            let start = body.len();
            body.resize(start + size + 2, 0);
            self.reader.read_exact(&mut body[start..]).expect("chunk");
            assert_eq!(body.split_off(start + size), b"\r\n", "chunk end");
            if size == 0 {
                return body;
            }
        }
    }

    /// True when the server has closed the connection (reads end of stream).
    /// Reads until the server closes; an error here is a reset, not a close.
    pub fn read_to_end(&mut self, rest: &mut Vec<u8>) -> std::io::Result<usize> {
        self.reader.read_to_end(rest)
    }

    pub fn is_closed_by_server(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
}

/// Percent-encodes every byte outside the unreserved set.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
