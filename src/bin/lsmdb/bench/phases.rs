//! `lsmdb bench quick` and `lsmdb bench full`: the seed's performance phases
//! (test_performance.py) on one fresh database, single-threaded.
//!
//! The key layout makes every read's answer known, so each read phase must find all its
//! keys: keys [0, n) are written in order, then overwritten at random; [n, 2n) in batches of
//! 100; [2n, 2n + large) as the large data set, then flushed so the later reads come from
//! tables on disk. Mixed phases write only over existing keys.

use std::time::Instant;

use anyhow::Context;
use lsmdb::WriteBatch;

use super::keys::{KeyGen, Random, Stream};
use super::measure::{Recorder, timed_get, timed_put};
use super::session::Session;

/// How many operations each phase does.
pub struct Sizes {
    /// Writes in each of the three write phases, and reads in each point-read phase.
    pub n: u64,
    /// Writes that build the large data set (the seed's 200K in the full run).
    pub large: u64,
    pub ranges_100: u64,
    pub ranges_500: u64,
    /// Operations in each mixed phase.
    pub mixed: u64,
}

impl Sizes {
    /// About 65K operations: a few seconds.
    pub fn quick(scale: f64) -> Sizes {
        Sizes::scaled(5_000, 20_000, 100, 20, 5_000, scale)
    }

    /// About 750K operations, as the seed's full run.
    pub fn full(scale: f64) -> Sizes {
        Sizes::scaled(50_000, 200_000, 1_000, 200, 100_000, scale)
    }

    fn scaled(n: u64, large: u64, r100: u64, r500: u64, mixed: u64, scale: f64) -> Sizes {
        let s = |x: u64| ((x as f64 * scale).round() as u64).max(1);
        Sizes {
            n: s(n),
            large: s(large),
            ranges_100: s(r100),
            ranges_500: s(r500),
            mixed: s(mixed),
        }
    }
}

const BATCH: u64 = 100;

pub struct Settings {
    pub key_size: usize,
    pub value_size: usize,
    pub seed: u64,
}

pub fn run(s: &mut Session, z: &Sizes, c: &Settings) -> anyhow::Result<()> {
    let (n, large) = (z.n, z.large);
    let total = 2 * n + large;
    KeyGen::new(c.key_size, total)?;
    s.recreate()?;

    // Phase 1: writes, into the memtable and the WAL.
    put_keys(s, c, "seq_write", n, |i, _| i)?;
    put_keys(s, c, "random_write", n, |_, rng| rng.below(n))?;
    batch_write(s, c, n)?;

    // Phase 2: reads of the small data set, still in memory.
    get_keys(s, c, "seq_read_mem", n, |i, _| i)?;
    get_keys(s, c, "random_read_mem", n, |_, rng| rng.below(2 * n))?;
    ranges(s, c, "range_100", z.ranges_100, 100, 2 * n)?;

    // Phase 3: the large data set, flushed to tables.
    put_keys(s, c, "large_write", large, |i, _| 2 * n + i)?;
    let flushed = Instant::now();
    s.db()?.flush().context("flush failed")?;
    if let Some(o) = s.outcomes.last_mut() {
        o.secs += flushed.elapsed().as_secs_f64();
        Session::add_extra(o, "includes_flush", true);
    }

    // Phase 4: reads from disk.
    get_keys(s, c, "seq_read_disk", n, |i, _| i * total / n)?;
    get_keys(s, c, "random_read_disk", n, |_, rng| rng.below(total))?;
    ranges(s, c, "range_500", z.ranges_500, 500, total)?;

    // Phase 5: mixed reads and writes over the whole key space.
    mixed(s, c, "mixed_70_30", z.mixed, 0.7, total)?;
    mixed(s, c, "mixed_90_10", z.mixed, 0.9, total)?;
    Ok(())
}

fn put_keys(
    s: &mut Session,
    c: &Settings,
    name: &str,
    count: u64,
    key_of: impl Fn(u64, &mut Random) -> u64 + Sync,
) -> anyhow::Result<()> {
    let o = s.measure_writes(name, 1, count, |db, _, rec, ticker| {
        let mut keys = KeyGen::unchecked(c.key_size);
        let mut rng = Random::new(c.seed, Stream::Writes, 0, c.value_size);
        for i in 0..count {
            let k = key_of(i, &mut rng);
            timed_put(db, rec, keys.key(k), rng.value())?;
            ticker.tick(1);
        }
        Ok(())
    })?;
    s.expect_synced(&o, 1, 1);
    s.finish(o)
}

fn batch_write(s: &mut Session, c: &Settings, n: u64) -> anyhow::Result<()> {
    let mut o = s.measure_writes("batch_write", 1, n, |db, _, rec, ticker| {
        let mut keys = KeyGen::unchecked(c.key_size);
        let mut rng = Random::new(c.seed, Stream::Writes, 1, c.value_size);
        let mut next = n;
        while next < 2 * n {
            let end = (next + BATCH).min(2 * n);
            let mut batch = WriteBatch::new();
            for k in next..end {
                let (key, value) = (keys.key(k), rng.value());
                rec.bytes += (key.len() + value.len()) as u64;
                batch.put(key, value);
            }
            let t = Instant::now();
            db.write(&batch).context("batch write failed")?;
            rec.record_n(t, end - next);
            ticker.tick(end - next);
            next = end;
        }
        Ok(())
    })?;
    Session::add_extra(&mut o, "batch_size", BATCH);
    s.expect_synced(&o, 1, BATCH);
    s.finish(o)
}

fn get_keys(
    s: &mut Session,
    c: &Settings,
    name: &str,
    count: u64,
    key_of: impl Fn(u64, &mut Random) -> u64 + Sync,
) -> anyhow::Result<()> {
    let o = s.measure_reads(name, 1, count, |db, _, rec, ticker| {
        let mut keys = KeyGen::unchecked(c.key_size);
        let mut rng = Random::new(c.seed, Stream::Reads, 0, 0);
        for i in 0..count {
            let k = key_of(i, &mut rng);
            timed_get(db, rec, keys.key(k))?;
            ticker.tick(1);
        }
        Ok(())
    })?;
    s.expect_all_found(&o);
    s.finish(o)
}

/// `queries` range queries of `len` keys each, starting at random keys of [0, space); a
/// query is found when it returns all `len` keys.
fn ranges(
    s: &mut Session,
    c: &Settings,
    name: &str,
    queries: u64,
    len: u64,
    space: u64,
) -> anyhow::Result<()> {
    let len = len.min(space);
    let mut o = s.measure_reads(name, 1, queries, |db, _, rec, ticker| {
        let mut keys = KeyGen::unchecked(c.key_size);
        let mut rng = Random::new(c.seed, Stream::Ranges, 0, 0);
        for _ in 0..queries {
            let first = rng.below(space - len + 1);
            let (start, end) = (keys.owned(first), keys.owned(first + len));
            let t = Instant::now();
            let mut got = 0;
            for kv in db.range(&start, &end).context("range failed")? {
                std::hint::black_box(kv.context("range failed")?);
                got += 1;
            }
            rec.record(t);
            rec.found += u64::from(got == len);
            ticker.tick(1);
        }
        Ok(())
    })?;
    Session::add_extra(&mut o, "keys_per_query", len);
    s.expect_all_found(&o);
    s.finish(o)
}

/// `count` operations over [0, space): a get with probability `read_share`, else a put of
/// an existing key. Reads and writes also get their own median latency.
fn mixed(
    s: &mut Session,
    c: &Settings,
    name: &str,
    count: u64,
    read_share: f64,
    space: u64,
) -> anyhow::Result<()> {
    let split: parking_lot::Mutex<Option<(Recorder, Recorder)>> = parking_lot::Mutex::new(None);
    let mut o = s.measure_writes(name, 1, count, |db, _, rec, ticker| {
        let mut keys = KeyGen::unchecked(c.key_size);
        let mut rng = Random::new(c.seed, Stream::Mixed, 0, c.value_size);
        let (mut reads, mut writes) = (Recorder::new(), Recorder::new());
        for _ in 0..count {
            let k = rng.below(space);
            if rng.chance(read_share) {
                timed_get(db, &mut reads, keys.key(k))?;
            } else {
                timed_put(db, &mut writes, keys.key(k), rng.value())?;
            }
            ticker.tick(1);
        }
        rec.merge(&reads);
        rec.merge(&writes);
        *split.lock() = Some((reads, writes));
        Ok(())
    })?;
    if let Some((reads, writes)) = split.into_inner() {
        Session::add_extra(&mut o, "reads", reads.ops);
        Session::add_extra(&mut o, "writes", writes.ops);
        Session::add_extra(&mut o, "read_p50_us", reads.quantile_us(0.5));
        Session::add_extra(&mut o, "write_p50_us", writes.quantile_us(0.5));
        o.reads = Some(reads.ops);
        let missed = reads.ops - reads.found;
        s.expect(missed == 0, || {
            format!(
                "{name}: {missed} of {} reads missed keys that exist",
                reads.ops
            )
        });
    }
    s.finish(o)
}
