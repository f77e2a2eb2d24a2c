//! db_bench's workloads, with db_bench's meanings (RocksDB tools/db_bench_tool.cc), so the
//! same parameters compare number for number:
//!
//! - fillseq, fillrandom: from an empty database, each of `threads` workers writes `num`
//!   keys, in order or drawn uniformly from [0, num) with replacement (so fillrandom leaves
//!   about 63% of the keys). overwrite: the same as fillrandom, on what exists.
//! - readrandom: each worker gets `reads` keys drawn from [0, num); `found` counts hits
//!   (db_bench's "(X of Y found)").
//! - readseq: each worker scans from the first key, `reads` entries at most.
//! - seekrandom: each worker makes `reads` seeks, each with a new iterator, to a random key;
//!   found when the key itself is there; then reads `seek_nexts` entries forward.
//! - readwhilewriting: `threads` workers do readrandom while one more thread writes random
//!   keys as fast as it can until the readers are done; the readers' figures are reported.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use lsmdb::Db;

use super::keys::{KeyGen, Random, Stream};
use super::measure::{Recorder, Ticker, run_workers, timed_get, timed_put};
use super::session::Session;

pub const NAMES: [&str; 7] = [
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readseq",
    "seekrandom",
    "readwhilewriting",
];

/// The settings every workload shares, named as in db_bench.
#[derive(Clone, Copy)]
pub struct Params {
    pub num: u64,
    pub reads: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub threads: usize,
    pub seek_nexts: usize,
    pub seed: u64,
}

/// What the run knows of the key space, to tell which reads must all hit.
#[derive(Clone, Copy, PartialEq)]
enum KeySpace {
    /// Every key in [0, num) is present and nothing else: fillseq ran on a fresh database
    /// (later overwrites keep it so).
    Full,
    Unknown,
}

pub fn check_names(names: &[String]) -> anyhow::Result<()> {
    for name in names {
        if !NAMES.contains(&name.as_str()) {
            bail!("unknown benchmark {name:?} (known: {})", NAMES.join(", "));
        }
    }
    Ok(())
}

pub fn run_all(s: &mut Session, names: &[String], p: &Params) -> anyhow::Result<()> {
    KeyGen::new(p.key_size, p.num)?;
    let mut space = KeySpace::Unknown;
    for (index, name) in names.iter().enumerate() {
        // Each benchmark draws new keys, as db_bench seeds each benchmark's threads anew:
        // overwrite must not replay the keys fillrandom drew.
        let p = &Params {
            seed: p.seed.wrapping_add(1000 * index as u64),
            ..*p
        };
        match name.as_str() {
            "fillseq" | "fillrandom" => {
                s.recreate()?;
                let sequential = name == "fillseq";
                write(s, name, p, sequential)?;
                space = if sequential && s.owned {
                    KeySpace::Full
                } else {
                    KeySpace::Unknown
                };
            }
            "overwrite" => write(s, name, p, false)?,
            "readrandom" => readrandom(s, p, space)?,
            "readseq" => readseq(s, p, space)?,
            "seekrandom" => seekrandom(s, p, space)?,
            "readwhilewriting" => readwhilewriting(s, p, space)?,
            other => bail!("unknown benchmark {other:?}"),
        }
    }
    Ok(())
}

fn write(s: &mut Session, name: &str, p: &Params, sequential: bool) -> anyhow::Result<()> {
    let total = p.num * p.threads as u64;
    let mut o = s.measure_writes(name, p.threads, total, |db, worker, rec, ticker| {
        let mut keys = KeyGen::new(p.key_size, p.num)?;
        let mut rng = Random::new(p.seed, Stream::Writes, worker, p.value_size);
        for i in 0..p.num {
            let k = if sequential { i } else { rng.below(p.num) };
            timed_put(db, rec, keys.key(k), rng.value())?;
            ticker.tick(1);
        }
        Ok(())
    })?;
    Session::add_extra(&mut o, "threads", p.threads);
    Session::add_extra(&mut o, "sync", s.syncs_every_write());
    s.expect_synced(&o, p.threads, 1);
    s.finish(o)
}

/// `reads` point lookups of random keys on one worker.
fn read_random(
    db: &Db,
    p: &Params,
    worker: usize,
    rec: &mut Recorder,
    ticker: &mut Ticker,
) -> anyhow::Result<()> {
    let mut keys = KeyGen::new(p.key_size, p.num)?;
    let mut rng = Random::new(p.seed, Stream::Reads, worker, 0);
    for _ in 0..p.reads {
        let k = rng.below(p.num);
        timed_get(db, rec, keys.key(k))?;
        ticker.tick(1);
    }
    Ok(())
}

fn readrandom(s: &mut Session, p: &Params, space: KeySpace) -> anyhow::Result<()> {
    let total = p.reads * p.threads as u64;
    let mut o = s.measure_reads("readrandom", p.threads, total, |db, worker, rec, ticker| {
        read_random(db, p, worker, rec, ticker)
    })?;
    Session::add_extra(&mut o, "threads", p.threads);
    if space == KeySpace::Full {
        s.expect_all_found(&o);
    }
    s.finish(o)
}

fn readseq(s: &mut Session, p: &Params, space: KeySpace) -> anyhow::Result<()> {
    let total = p.reads * p.threads as u64;
    let mut o = s.measure_reads("readseq", p.threads, total, |db, _, rec, ticker| {
        let mut it = db.iter().context("cannot create an iterator")?;
        // As db_bench's FinishedOps: each entry's time runs from the previous one's end, so
        // the first includes the seek to the first key.
        let mut t = Instant::now();
        it.seek_to_first().context("seek failed")?;
        let mut n = 0;
        while it.valid() && n < p.reads {
            black_box((it.key(), it.value()));
            it.advance().context("iteration failed")?;
            rec.record(t);
            rec.found += 1;
            ticker.tick(1);
            n += 1;
            t = Instant::now();
        }
        Ok(())
    })?;
    Session::add_extra(&mut o, "threads", p.threads);
    if space == KeySpace::Full {
        let want = p.reads.min(p.num) * p.threads as u64;
        let got = o.rec.ops;
        s.expect(got == want, || {
            format!("readseq: scanned {got} entries, but {want} were written")
        });
    }
    s.finish(o)
}

fn seekrandom(s: &mut Session, p: &Params, space: KeySpace) -> anyhow::Result<()> {
    let total = p.reads * p.threads as u64;
    let mut o = s.measure_reads("seekrandom", p.threads, total, |db, worker, rec, ticker| {
        let mut keys = KeyGen::new(p.key_size, p.num)?;
        let mut rng = Random::new(p.seed, Stream::Seeks, worker, 0);
        for _ in 0..p.reads {
            let key = keys.key(rng.below(p.num));
            let t = Instant::now();
            let mut it = db.iter().context("cannot create an iterator")?;
            it.seek(key).context("seek failed")?;
            rec.found += u64::from(it.valid() && it.key() == key);
            for _ in 0..p.seek_nexts {
                if !it.valid() {
                    break;
                }
                black_box(it.value());
                it.advance().context("iteration failed")?;
            }
            rec.record(t);
            ticker.tick(1);
        }
        Ok(())
    })?;
    Session::add_extra(&mut o, "threads", p.threads);
    Session::add_extra(&mut o, "seek_nexts", p.seek_nexts);
    if space == KeySpace::Full {
        s.expect_all_found(&o);
    }
    s.finish(o)
}

fn readwhilewriting(s: &mut Session, p: &Params, space: KeySpace) -> anyhow::Result<()> {
    let name = "readwhilewriting";
    let total = p.reads * p.threads as u64;
    let bar = s.bar(name, total);
    let db = s.db()?;
    let readers_done = AtomicUsize::new(0);
    let (readers, writer_ops) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> anyhow::Result<u64> {
            let mut keys = KeyGen::new(p.key_size, p.num)?;
            // A worker index past every reader's, so the writer draws its own keys.
            let mut rng = Random::new(p.seed, Stream::Writes, p.threads + 1, p.value_size);
            let mut written = 0;
            while readers_done.load(Ordering::Acquire) < p.threads {
                let key = keys.key(rng.below(p.num));
                db.put(key, rng.value()).context("put failed")?;
                written += 1;
            }
            Ok(written)
        });
        let readers = run_workers(p.threads, &bar, |worker, rec, ticker| {
            let result = read_random(db, p, worker, rec, ticker);
            readers_done.fetch_add(1, Ordering::AcqRel);
            result
        });
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the writer thread panicked")));
        (readers, written)
    });
    bar.finish_and_clear();
    let (rec, elapsed) = readers?;
    let writer_ops = writer_ops?;
    let mut o = s.outcome(name, elapsed.as_secs_f64(), rec, None);
    o.reads = Some(o.rec.ops);
    Session::add_extra(&mut o, "threads", p.threads);
    Session::add_extra(&mut o, "writer_ops", writer_ops);
    if space == KeySpace::Full {
        s.expect_all_found(&o);
    }
    s.finish(o)
}
