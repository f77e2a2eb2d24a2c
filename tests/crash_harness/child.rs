//! The child process of the kill tests (RELIABILITY.md T1, T2, T11, T12, T14). A test
//! binary runs itself again as `--exact child_process --ignored`; this module, told what to
//! do by environment variables, writes and reports on stderr, one line per event: `@ready`
//! once open, `@ack N` after operation N of its seeded history returned (`@ack T N` per
//! thread under stress). The parent SIGKILLs it whenever it likes and regenerates the same
//! history from the seed to check the reopened database.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lsmdb::{Db, Options};

use super::{Mix, Model, Op, Rng, apply, contents, find_prefix, gen_op, gen_ops, run_op};

const MODE: &str = "LSMDB_CHILD_MODE";
const DIR: &str = "LSMDB_CHILD_DIR";
const SEED: &str = "LSMDB_CHILD_SEED";
const MIX: &str = "LSMDB_CHILD_MIX";
/// For `fill`: how many full memtables to flush into tables before filling the WAL.
pub const HISTORY: &str = "LSMDB_CHILD_HISTORY";

/// Small memtables and tables so that flushes and compactions run all the time.
pub fn options() -> Options {
    Options::default()
        .write_buffer_size(256 << 10)
        .target_file_size(256 << 10)
        .max_bytes_for_level_base(1 << 20)
}

/// The operation mixes: `puts` (puts and deletes, values 1 B to 64 KiB) and `batches`
/// (batches of 2 to 100 puts and deletes).
pub fn mix(name: &str) -> Mix {
    match name {
        "batches" => Mix {
            keys: 2000,
            max_value: 300,
            deletes: 0,
            batches: 100,
            max_batch: 100,
            maintenance: 0,
        },
        _ => Mix {
            keys: 500,
            max_value: 64 << 10,
            deletes: 25,
            batches: 0,
            max_batch: 0,
            maintenance: 0,
        },
    }
}

fn report(line: &str) {
    // One write per line, so a kill can only cut the last one short.
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

fn fail(what: impl std::fmt::Display) -> ! {
    report(&format!("@error {what}"));
    std::process::exit(3);
}

/// The body of the crash binary's `child_process` entry point (tests/crash/main.rs): does
/// nothing unless the environment says this process is a child.
pub fn main_if_child() {
    let Ok(mode) = std::env::var(MODE) else {
        return;
    };
    let dir = PathBuf::from(std::env::var(DIR).unwrap_or_else(|_| fail("no directory")));
    let seed: u64 = std::env::var(SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mix_name = std::env::var(MIX).unwrap_or_default();
    match mode.as_str() {
        "writer" => writer(&dir, seed, &mix(&mix_name)),
        "stress" => stress(&dir, seed),
        "hold" => {
            let _db = Db::open(&dir, options()).unwrap_or_else(|e| fail(e));
            report("@ready");
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        "fill" => fill(&dir),
        other => fail(format!("unknown mode {other}")),
    }
    std::process::exit(0);
}

fn writer(dir: &Path, seed: u64, mix: &Mix) {
    let mut db = Some(Db::open(dir, options()).unwrap_or_else(|e| fail(e)));
    report("@ready");
    let mut rng = Rng::new(seed);
    for i in 0.. {
        let op = gen_op(&mut rng, i, mix);
        if let Err(e) = run_op(&mut db, dir, &options(), &op) {
            fail(format!("op {i}: {e}"));
        }
        report(&format!("@ack {i}"));
    }
}

/// The stress mix: thread `t` owns the keys starting with `t{t}/`.
pub const THREADS: u64 = 4;

pub fn stress_mix() -> Mix {
    Mix {
        keys: 150,
        max_value: 2000,
        ..Mix::default()
    }
}

/// The first `n` operations of thread `t`.
pub fn stress_ops(seed: u64, t: u64, n: u64) -> Vec<Op> {
    let mut rng = stress_rng(seed, t);
    (0..n).map(|i| stress_op(&mut rng, t, i)).collect()
}

fn stress_rng(seed: u64, t: u64) -> Rng {
    Rng::new(seed * 100 + t)
}

/// Operation `i` of thread `t`, with its keys moved into the thread's own range.
fn stress_op(rng: &mut Rng, t: u64, i: u64) -> Op {
    let prefix = |k: &Vec<u8>| [format!("t{t}/").as_bytes(), k].concat();
    match gen_op(rng, i, &stress_mix()) {
        Op::Put(k, v) => Op::Put(prefix(&k), v),
        Op::Delete(k) => Op::Delete(prefix(&k)),
        Op::Batch(es) => Op::Batch(es.into_iter().map(|(k, v)| (prefix(&k), v)).collect()),
        // Flushes, compactions and syncs stay; reopens would need every thread.
        Op::Reopen => Op::Sync,
        other => other,
    }
}

/// The part of `all` that thread `t` owns.
pub fn partition(all: &Model, t: u64) -> Model {
    let prefix = format!("t{t}/").into_bytes();
    all.iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Several threads write at once; each checks after every write that it reads back what
/// it wrote, and scans its whole range now and then (continuous verification).
fn stress(dir: &Path, seed: u64) {
    let db = Db::open(dir, options()).unwrap_or_else(|e| fail(e));
    let start = contents(&db).unwrap_or_else(|e| fail(e));
    report("@ready");
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (db, start) = (&db, &start);
            s.spawn(move || {
                let mut model = partition(start, t);
                let mut rng = stress_rng(seed, t);
                for i in 0.. {
                    let op = &stress_op(&mut rng, t, i);
                    let result = match op {
                        Op::Put(k, v) => db.put(k, v),
                        Op::Delete(k) => db.delete(k),
                        Op::Batch(es) => db.write(&super::to_batch(es)),
                        Op::Flush => db.flush(),
                        Op::Compact => db.compact(),
                        _ => db.sync(),
                    };
                    result.unwrap_or_else(|e| fail(format!("thread {t} op {i}: {e}")));
                    report(&format!("@ack {t} {i}"));
                    apply(&mut model, op);
                    let touched: Vec<&Vec<u8>> = match op {
                        Op::Put(k, _) | Op::Delete(k) => vec![k],
                        Op::Batch(es) => es.iter().map(|(k, _)| k).collect(),
                        _ => Vec::new(),
                    };
                    for k in touched {
                        let got = db.get(k).unwrap_or_else(|e| fail(e));
                        if got.as_ref() != model.get(k) {
                            report(&format!("@mismatch thread {t} op {i}: read back {k:?}"));
                            std::process::exit(4);
                        }
                    }
                    if i % 50 == 49 {
                        // Its own range only: the other threads' keys change meanwhile.
                        let mine: Model = db
                            .prefix(format!("t{t}/"))
                            .and_then(|it| it.collect())
                            .unwrap_or_else(|e| fail(e));
                        if mine != model {
                            report(&format!("@mismatch thread {t} op {i}: scan"));
                            std::process::exit(4);
                        }
                    }
                }
            });
        }
    });
}

/// Fills the WAL to about its cap (the memtable size) after `HISTORY` memtables of tables.
fn fill(dir: &Path) {
    let history: u64 = std::env::var(HISTORY)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let opts = Options::default().sync(lsmdb::SyncMode::None);
    let db = Db::open(dir, opts.clone()).unwrap_or_else(|e| fail(e));
    let value = vec![b'v'; 1000];
    let mut n = 0u64;
    let cap = opts.write_buffer_size as u64;
    for _ in 0..history {
        while db.stats().memtable_bytes < cap * 9 / 10 {
            db.put(format!("key{n:010}"), &value)
                .unwrap_or_else(|e| fail(e));
            n += 1;
        }
        db.flush().unwrap_or_else(|e| fail(e));
    }
    while db.stats().memtable_bytes < cap * 95 / 100 {
        db.put(format!("key{n:010}"), &value)
            .unwrap_or_else(|e| fail(e));
        n += 1;
    }
    // Nothing is synced: the parent's kill leaves the whole WAL in the page cache.
    report(&format!("@full {n}"));
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// A running child and the lines it has reported.
pub struct Child {
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

/// Starts this test binary again as a child in `mode`.
pub fn spawn(mode: &str, dir: &Path, seed: u64, env: &[(&str, &str)]) -> Child {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "child_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(MODE, mode)
    .env(DIR, dir)
    .env(SEED, seed.to_string())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut process = cmd.spawn().unwrap();
    let stderr = process.stderr.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).unwrap_or(0) > 0 {
            // A line the kill cut short has no newline: it was never fully reported.
            if buf.ends_with(b"\n") {
                let _ = tx.send(String::from_utf8_lossy(&buf).trim_end().to_string());
            }
            buf.clear();
        }
    });
    Child {
        process,
        lines,
        seen: Vec::new(),
    }
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Waits for a line starting with `prefix`; panics after `timeout` or on `@error`.
    pub fn wait_for(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    assert!(!line.starts_with("@error"), "child failed: {line}");
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("no {prefix} from the child in {timeout:?}: {:?}", self.seen),
            }
        }
    }

    /// SIGKILLs the child and returns every line it reported.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.process.kill();
        let _ = self.process.wait();
        self.seen.extend(self.lines.iter());
        for line in &self.seen {
            // Anything else on stderr (a panic) is a failure of the child too.
            assert!(
                line.starts_with("@ack ")
                    || line.starts_with("@ready")
                    || line.starts_with("@full"),
                "child reported: {line}"
            );
        }
        self.seen
    }
}

/// How many operations were acknowledged, from `@ack N` lines (which must count up).
pub fn acked(lines: &[String]) -> usize {
    let mut n = 0;
    for line in lines {
        if let Some(i) = line.strip_prefix("@ack ") {
            assert_eq!(i.parse::<usize>().ok(), Some(n), "acks out of order");
            n += 1;
        }
    }
    n
}

/// The kill loop of T1 and T2: each cycle starts a writer on the same directory, SIGKILLs it
/// after a random time (now and then while it is still opening), reopens the directory and
/// checks that it holds exactly the state before the cycle plus the acknowledged operations
/// (and perhaps the one in flight). Returns the acknowledged operations in all, and in how
/// many cycles the reopened directory held tables below L0 (which only compaction writes).
pub fn kill_loop(mix_name: &str, cycles: u64, seed: u64) -> (usize, u64) {
    let dir = tempfile::tempdir().unwrap();
    let mix = mix(mix_name);
    let mut rng = Rng::new(seed);
    let mut base = Model::new();
    let mut total = 0;
    let mut compacted_cycles = 0;
    for cycle in 0..cycles {
        let child_seed = seed * 100_000 + cycle;
        let mut child = spawn("writer", dir.path(), child_seed, &[(MIX, mix_name)]);
        if rng.chance(10) {
            std::thread::sleep(Duration::from_millis(rng.range(0, 20)));
        } else {
            child.wait_for("@ready", Duration::from_secs(60));
            std::thread::sleep(Duration::from_millis(rng.range(0, 300)));
        }
        let n = acked(&child.kill());
        let ops = gen_ops(child_seed, n as u64 + 1, &mix);
        let what = format!("cycle {cycle} (seed {child_seed}, {n} acked)");
        let db = Db::open(dir.path(), options()).unwrap_or_else(|e| panic!("{what}: reopen: {e}"));
        let got = contents(&db).unwrap_or_else(|e| panic!("{what}: read: {e}"));
        let k = find_prefix(&got, &base, &ops, n, n + 1).unwrap_or_else(|e| panic!("{what}: {e}"));
        db.check().unwrap_or_else(|e| panic!("{what}: check: {e}"));
        let stats = db.stats();
        if stats.levels.iter().any(|l| l.level > 0 && l.tables > 0) {
            compacted_cycles += 1;
        }
        db.close().unwrap();
        for op in &ops[..k] {
            apply(&mut base, op);
        }
        total += n;
    }
    (total, compacted_cycles)
}

/// Cycles from `LSMDB_CRASH_CYCLES`, else `default`.
pub fn cycles(default: u64) -> u64 {
    std::env::var("LSMDB_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
