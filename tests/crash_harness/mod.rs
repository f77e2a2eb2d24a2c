//! What the crash and fault tests share: a seeded operation generator, a `BTreeMap` model,
//! and the check that a reopened database holds a state the model allows.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lsmdb::fault::FaultFileSystem;
use lsmdb::{Db, Options, SyncMode, WriteBatch};

pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

pub mod child;

/// A small deterministic generator (splitmix64): a parent process regenerates exactly the
/// operations a child ran from the same seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5eed_1234_abcd_0001)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    Flush,
    Compact,
    Sync,
    Reopen,
}

impl Op {
    pub fn is_write(&self) -> bool {
        matches!(self, Op::Put(..) | Op::Delete(_) | Op::Batch(_))
    }
}

pub fn key(n: u64) -> Vec<u8> {
    format!("key{n:05}").into_bytes()
}

/// A value whose bytes say which key and operation wrote it, `len` bytes long.
pub fn value(key: u64, op: u64, len: usize) -> Vec<u8> {
    let tag = format!("{key}:{op}:");
    tag.bytes()
        .chain((0..).map(|i| b'a' + (i % 26) as u8))
        .take(len.max(1))
        .collect()
}

/// A length from 1 B to `max` bytes, small ones more likely (log-uniform).
pub fn value_len(rng: &mut Rng, max: usize) -> usize {
    let bits = rng.range(0, (usize::BITS - max.leading_zeros()) as u64);
    (rng.range(1, 1 << bits.max(1)) as usize).clamp(1, max)
}

/// How a generated history is mixed.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    pub keys: u64,
    pub max_value: usize,
    /// Percentages of deletes and batches among writes; the rest are puts.
    pub deletes: u64,
    pub batches: u64,
    pub max_batch: u64,
    /// Percentage of flush / compact / sync / reopen steps.
    pub maintenance: u64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            keys: 200,
            max_value: 2048,
            deletes: 20,
            batches: 10,
            max_batch: 20,
            maintenance: 4,
        }
    }
}

/// Operation number `i` of the history seeded with `seed`.
pub fn gen_op(rng: &mut Rng, i: u64, mix: &Mix) -> Op {
    if rng.chance(mix.maintenance) {
        return match rng.range(0, 8) {
            0..=3 => Op::Flush,
            4 => Op::Compact,
            5 | 6 => Op::Sync,
            _ => Op::Reopen,
        };
    }
    let roll = rng.range(0, 100);
    if roll < mix.batches {
        let n = rng.range(2, mix.max_batch + 1);
        let entries = (0..n)
            .map(|_| {
                let k = rng.range(0, mix.keys);
                let v = (!rng.chance(15)).then(|| value(k, i, value_len(rng, mix.max_value)));
                (key(k), v)
            })
            .collect();
        Op::Batch(entries)
    } else if roll < mix.batches + mix.deletes {
        Op::Delete(key(rng.range(0, mix.keys)))
    } else {
        let k = rng.range(0, mix.keys);
        Op::Put(key(k), value(k, i, value_len(rng, mix.max_value)))
    }
}

pub fn gen_ops(seed: u64, n: u64, mix: &Mix) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| gen_op(&mut rng, i, mix)).collect()
}

pub fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            model.remove(k);
        }
        Op::Batch(entries) => {
            for (k, v) in entries {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
        }
        _ => {}
    }
}

pub fn to_batch(entries: &[(Vec<u8>, Option<Vec<u8>>)]) -> WriteBatch {
    let mut batch = WriteBatch::new();
    for (k, v) in entries {
        match v {
            Some(v) => batch.put(k, v),
            None => batch.delete(k),
        };
    }
    batch
}

/// Runs one operation; `Reopen` closes and reopens `db` in place.
pub fn run_op(db: &mut Option<Db>, dir: &Path, opts: &Options, op: &Op) -> lsmdb::Result<()> {
    let Some(d) = db.as_ref() else {
        return Err(lsmdb::Error::Closed);
    };
    match op {
        Op::Put(k, v) => d.put(k, v),
        Op::Delete(k) => d.delete(k),
        Op::Batch(entries) => d.write(&to_batch(entries)),
        Op::Flush => d.flush(),
        Op::Compact => d.compact(),
        Op::Sync => d.sync(),
        Op::Reopen => {
            let closed = db.take().map_or(Ok(()), Db::close);
            closed?;
            *db = Some(Db::open(dir, opts.clone())?);
            Ok(())
        }
    }
}

/// Every key and value, by a full scan (checked against point reads of each key).
pub fn contents(db: &Db) -> lsmdb::Result<Model> {
    let mut all = Model::new();
    for kv in db.iter()? {
        let (k, v) = kv?;
        all.insert(k, v);
    }
    for (k, v) in &all {
        assert_eq!(db.get(k)?.as_ref(), Some(v), "get disagrees with the scan");
    }
    Ok(all)
}

/// Describes how `got` differs from `want`, for a failure message.
pub fn diff(got: &Model, want: &Model) -> String {
    let mut out = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push(format!("lost {}", String::from_utf8_lossy(k))),
            Some(g) if g != v => out.push(format!(
                "{}: got {:?}.. want {:?}..",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&g[..g.len().min(20)]),
                String::from_utf8_lossy(&v[..v.len().min(20)])
            )),
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        out.push(format!("phantom {}", String::from_utf8_lossy(k)));
    }
    out.truncate(8);
    out.join("; ")
}

/// The outcome of running a history until its first error.
pub struct Outcome {
    /// Operations that returned Ok.
    pub acked: usize,
    /// Operations after which everything before was durable (a sync, flush, compaction or
    /// reopen returned Ok): under `SyncMode::None` a power cut keeps at least these.
    pub durable: usize,
}

/// Runs `ops` until the first error.
pub fn run_until_error(db: &mut Option<Db>, dir: &Path, opts: &Options, ops: &[Op]) -> Outcome {
    let mut out = Outcome {
        acked: 0,
        durable: 0,
    };
    for op in ops {
        if run_op(db, dir, opts, op).is_err() {
            break;
        }
        out.acked += 1;
        if opts.sync == SyncMode::Always || !op.is_write() {
            out.durable = out.acked;
        }
    }
    out
}

/// Checks that the reopened `db` holds the model after `k` operations for some `k` in
/// `lo..=hi`: a prefix of the history, with nothing acknowledged missing and no holes.
/// Returns the `k` found.
pub fn check_prefix(db: &Db, ops: &[Op], lo: usize, hi: usize, what: &str) -> usize {
    let got = contents(db).unwrap_or_else(|e| panic!("{what}: reading after reopen failed: {e}"));
    find_prefix(&got, &Model::new(), ops, lo, hi).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The `k` in `lo..=hi` for which `got` is `base` with `ops[..k]` applied, or what is wrong.
pub fn find_prefix(
    got: &Model,
    base: &Model,
    ops: &[Op],
    lo: usize,
    hi: usize,
) -> Result<usize, String> {
    let mut model = base.clone();
    for op in &ops[..lo] {
        apply(&mut model, op);
    }
    let first = model.clone();
    for k in lo..=hi.min(ops.len()) {
        if k > lo {
            apply(&mut model, &ops[k - 1]);
        }
        if *got == model {
            return Ok(k);
        }
    }
    Err(format!(
        "the database holds no prefix of ops {lo}..={hi}; against the first: {}",
        diff(got, &first)
    ))
}

/// Options for tests that inject faults: small memtables and tables, no background
/// compaction (so the sequence of file operations is the same on every run).
pub fn fault_opts(fs: &Arc<FaultFileSystem>, sync: SyncMode) -> Options {
    Options::default()
        .write_buffer_size(64 << 10)
        .block_size(512)
        .target_file_size(16 << 10)
        .max_bytes_for_level_base(64 << 10)
        .background_compaction(false)
        .sync(sync)
        .fs(Arc::clone(fs) as Arc<dyn lsmdb::fs::FileSystem>)
}

/// Opens `dir` with a crash at file operation `at`, drops whatever opened, and lets the
/// crash settle: a power cut, or a plain process restart. Returns whether it crashed (false
/// once `at` lies past the last operation of the open).
pub fn crash_during_open(
    fs: &FaultFileSystem,
    dir: &Path,
    opts: &Options,
    at: u64,
    power_loss: bool,
) -> bool {
    fs.crash_at_op(at);
    let opened = Db::open(dir, opts.clone());
    let crashed = fs.has_crashed();
    drop(opened);
    settle(fs, power_loss);
    crashed
}

/// After a crash: a power cut, or a plain process restart.
pub fn settle(fs: &FaultFileSystem, power_loss: bool) {
    if power_loss {
        fs.power_loss()
            .expect("the power cut restores the durable image");
    } else {
        fs.restart();
    }
}

/// Copies a closed database directory (the lock file aside).
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The `(start, end)` byte ranges of the records of a WAL or manifest file
/// (docs/FORMAT.md, "Record files": a 16-byte header, then `crc:u32 len:u32 type:u8
/// payload[len]` each).
pub fn record_ranges(data: &[u8]) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut at = 16;
    while at + 9 <= data.len() {
        let len = u32::from_le_bytes(data[at + 4..at + 8].try_into().unwrap()) as usize;
        let end = at + 9 + len;
        if end > data.len() {
            break;
        }
        ranges.push((at, end));
        at = end;
    }
    ranges
}

/// The files in `dir` whose names end with `suffix`, sorted.
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(suffix)))
        .collect();
    files.sort();
    files
}

/// Opens `dir` with flushes failing for want of space (they are retried, so nothing is
/// lost) and writes `key(i) = value(i)` until two full memtables wait and a third holds a
/// write: the directory then has three live WALs. Returns the fault file system, the open
/// database and how many keys were written.
pub fn three_live_wals(
    dir: &Path,
    key: impl Fn(usize) -> String,
    value: impl Fn(usize) -> Vec<u8>,
) -> (Arc<FaultFileSystem>, Db, usize) {
    let fs = FaultFileSystem::new();
    let opts = fault_opts(&fs, SyncMode::Always).write_buffer_size(4 << 10);
    fs.no_space_after(Some(lsmdb::fault::Target::Table), 0);
    let db = Db::open(dir, opts).unwrap();
    let mut n = 0;
    while db.stats().immutable_memtables < 2 {
        db.put(key(n), value(n)).unwrap();
        n += 1;
    }
    db.put(key(n), value(n)).unwrap();
    assert_eq!(files_with_suffix(dir, ".wal").len(), 3);
    (fs, db, n + 1)
}
