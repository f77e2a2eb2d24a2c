//! What the abuse tests share: the server's peak memory, a probe client that keeps asking
//! `/health` while attackers work, attackers that trickle, and a server run under a limit on
//! threads.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::binary::http::Server;

pub const MIB: u64 = 1 << 20;

/// The server's peak resident memory so far (`VmHWM`), in bytes.
pub fn peak_rss(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("the server is running");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmHWM line");
    // Shown with --nocapture, for the record.
    eprintln!("server peak RSS: {} MiB", kib >> 10);
    kib * 1024
}

/// Asks `GET /health` on a fresh connection every `every` until `stop`, and gives back how
/// long each answer took; an answer that did not come within 5 s counts as 5 s.
pub fn probe(
    addr: SocketAddr,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<Duration>> {
    thread::spawn(move || {
        let mut took = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let limit = Duration::from_secs(5);
            let answered =
                health(addr, limit).is_ok_and(|reply| reply.starts_with(b"HTTP/1.1 200"));
            took.push(if answered { started.elapsed() } else { limit });
            thread::sleep(every);
        }
        took
    })
}

fn health(addr: SocketAddr, limit: Duration) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, limit)?;
    stream.set_read_timeout(Some(limit))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply)?;
    Ok(reply)
}

/// The 99th percentile of the probes' times, after checking there were some.
pub fn p99(mut took: Vec<Duration>) -> Duration {
    assert!(took.len() >= 10, "only {} probes ran", took.len());
    took.sort();
    took[(took.len() * 99).div_ceil(100) - 1]
}

/// A client that sends `head`, then one byte of `trickle` every `every` until `stop`.
pub fn trickler(
    addr: SocketAddr,
    head: Vec<u8>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return;
        };
        let _ = stream.write_all(&head);
        while !stop.load(Ordering::SeqCst) && stream.write_all(b" ").is_ok() {
            thread::sleep(every);
        }
    })
}

/// `lsmdb serve` allowed `spare` threads more than it starts with.
///
/// RLIMIT_NPROC (`prlimit --nproc`) counts every thread of the process's real user, and does
/// not apply to root at all. So as root the server runs as a user of its own (setpriv), which
/// only it uses; otherwise the threads the user already runs are added to the limit. Only a
/// process with CAP_SYS_RESOURCE may set another's limits, which a container may not grant,
/// so the server is started once to count its threads, then again under the limit.
pub fn start_with_few_threads(dir: &Path, spare: u64, args: &[&str]) -> Server {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let uid = 4_000_000_000u32 - std::process::id();
    if root {
        std::os::unix::fs::chown(dir, Some(uid), Some(uid)).unwrap();
    }
    let command = |limit: Option<u64>| {
        let mut line: Vec<String> = Vec::new();
        if let Some(n) = limit {
            line.extend(["prlimit".into(), format!("--nproc={n}")]);
        }
        if root {
            let id = uid.to_string();
            line.extend(
                ["setpriv", "--reuid", &id, "--regid", &id, "--clear-groups"].map(String::from),
            );
        }
        let mut cmd = match line.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(crate::binary::lsmdb_path());
                cmd
            }
            None => Command::new(crate::binary::lsmdb_path()),
        };
        cmd.env_remove("LSMDB_DIR")
            .env_remove("LSMDB_TOKEN")
            .env_remove("LOG_LEVEL");
        cmd.arg("--db").arg(dir.join("db"));
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
        cmd
    };
    let own_threads = {
        let mut counted = Server::spawn(command(None));
        let n = threads_of(counted.pid());
        counted.signal(libc::SIGTERM);
        counted.wait(Duration::from_secs(10));
        n
    };
    let others = if root {
        0
    } else {
        // SAFETY: getuid has no preconditions.
        threads_of_user(unsafe { libc::getuid() })
    };
    Server::spawn(command(Some(others + own_threads + spare)))
}

fn threads_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

/// Threads of every process whose real user is `uid`, as RLIMIT_NPROC counts them.
fn threads_of_user(uid: u32) -> u64 {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return 0;
    };
    procs
        .filter_map(|p| p.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().next()?.parse::<u32>().ok())
                == Some(uid)
        })
        .map(threads_of)
        .sum()
}
