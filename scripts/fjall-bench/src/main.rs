//! fjall on the db_bench workloads that ../shared/peerbench leaves out, with the meanings
//! `lsmdb bench` gives them (docs/BENCHMARKS.md), one JSON line per benchmark:
//!
//! - `fillseq`, `fillrandom`: recreate the database empty, then each of `--threads` writers
//!   puts `--num` keys, in order or uniform in [0, num); with `--sync`, every put is
//!   persisted (`PersistMode::SyncData`) before the writer goes on. Ends with a timed
//!   `persist(SyncAll)`, as peerbench does.
//! - `readwhilewriting`: on the existing database, `--threads` readers each get `--num` random
//!   keys while one more thread puts random keys as fast as it can until the readers finish;
//!   the readers' figures are reported.
//!
//! Key i is `format!("{i:016}")`, values random bytes; no compression; an 8 MiB cache.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use hdrhistogram::Histogram;
use rand::{rngs::SmallRng, Rng, RngCore, SeedableRng};

struct Args {
    db: String,
    benchmarks: Vec<String>,
    num: u64,
    threads: u64,
    value_size: usize,
    sync: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        db: "/tmp/fjall-bench".into(),
        benchmarks: vec!["fillseq".into(), "readwhilewriting".into()],
        num: 100_000,
        threads: 1,
        value_size: 100,
        sync: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        if flag == "--sync" {
            a.sync = true;
            continue;
        }
        let value = argv.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--db" => a.db = value,
            "--benchmarks" => a.benchmarks = value.split(',').map(String::from).collect(),
            "--num" => a.num = value.parse().expect("--num"),
            "--threads" => a.threads = value.parse().expect("--threads"),
            "--value-size" => a.value_size = value.parse().expect("--value-size"),
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(a.threads >= 1, "--threads must be at least 1");
    a
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k.copy_from_slice(format!("{i:016}").as_bytes());
    k
}

fn open(path: &str) -> fjall::Result<(Database, Keyspace)> {
    let db = Database::builder(path).cache_size(8 << 20).open()?;
    let ks = db.keyspace("bench", || {
        KeyspaceCreateOptions::default()
            .data_block_compression_policy(fjall::config::CompressionPolicy::disabled())
            .index_block_compression_policy(fjall::config::CompressionPolicy::disabled())
    })?;
    Ok((db, ks))
}

/// What one worker did: its operations, hits and latencies.
struct Tally {
    ops: u64,
    found: u64,
    hist: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally { ops: 0, found: 0, hist: Histogram::new(3).expect("histogram") }
    }
    fn record(&mut self, t: Instant) {
        self.ops += 1;
        let _ = self.hist.record(t.elapsed().as_nanos() as u64);
    }
}

fn report(name: &str, tallies: Vec<Tally>, started: Instant, threads: u64, sync: bool) {
    let secs = started.elapsed().as_secs_f64();
    let mut all = Tally::new();
    for t in tallies {
        all.ops += t.ops;
        all.found += t.found;
        all.hist.add(&t.hist).expect("merge histograms");
    }
    let us = |q: f64| all.hist.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{{\"engine\":\"fjall\",\"benchmark\":\"{name}\",\"ops\":{},\"found\":{},\"secs\":{secs:.3},\
         \"ops_per_sec\":{:.0},\"p50_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2},\"threads\":{threads},\"sync\":{sync}}}",
        all.ops,
        all.found,
        all.ops as f64 / secs,
        us(0.5),
        us(0.99),
        all.hist.max() as f64 / 1000.0
    );
}

fn fill(a: &Args, db: &Database, ks: &Keyspace, random: bool) -> fjall::Result<Vec<Tally>> {
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..a.threads)
            .map(|w| {
                s.spawn(move || -> fjall::Result<Tally> {
                    let mut rng = SmallRng::seed_from_u64(301 + w);
                    let mut value = vec![0u8; a.value_size];
                    let mut tally = Tally::new();
                    for i in 0..a.num {
                        let k = if random { rng.gen_range(0..a.num) } else { i };
                        rng.fill_bytes(&mut value);
                        let t = Instant::now();
                        ks.insert(key(k), value.as_slice())?;
                        if a.sync {
                            db.persist(PersistMode::SyncData)?;
                        }
                        tally.record(t);
                    }
                    Ok(tally)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a writer panicked")).collect()
    })
}

fn read_while_writing(a: &Args, ks: &Keyspace) -> fjall::Result<Vec<Tally>> {
    let readers_done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let writer = s.spawn(|| -> fjall::Result<()> {
            let mut rng = SmallRng::seed_from_u64(7);
            let mut value = vec![0u8; a.value_size];
            while !readers_done.load(Ordering::Relaxed) {
                rng.fill_bytes(&mut value);
                ks.insert(key(rng.gen_range(0..a.num)), value.as_slice())?;
            }
            Ok(())
        });
        let readers: Vec<_> = (0..a.threads)
            .map(|r| {
                s.spawn(move || -> fjall::Result<Tally> {
                    let mut rng = SmallRng::seed_from_u64(1000 + r);
                    let mut tally = Tally::new();
                    for _ in 0..a.num {
                        let k = key(rng.gen_range(0..a.num));
                        let t = Instant::now();
                        if ks.get(k)?.is_some() {
                            tally.found += 1;
                        }
                        tally.record(t);
                    }
                    Ok(tally)
                })
            })
            .collect();
        let tallies: fjall::Result<Vec<Tally>> =
            readers.into_iter().map(|r| r.join().expect("a reader panicked")).collect();
        readers_done.store(true, Ordering::Relaxed);
        writer.join().expect("the writer panicked")?;
        tallies
    })
}

fn main() -> fjall::Result<()> {
    let a = parse_args();
    let (mut db, mut ks) = open(&a.db)?;
    for b in &a.benchmarks {
        let started;
        let tallies = match b.as_str() {
            "fillseq" | "fillrandom" => {
                drop((ks, db));
                std::fs::remove_dir_all(&a.db).expect("remove the old database");
                (db, ks) = open(&a.db)?;
                started = Instant::now();
                let t = fill(&a, &db, &ks, b == "fillrandom")?;
                db.persist(PersistMode::SyncAll)?;
                t
            }
            "readwhilewriting" => {
                started = Instant::now();
                read_while_writing(&a, &ks)?
            }
            other => panic!("unknown benchmark {other}"),
        };
        report(b, tallies, started, a.threads, a.sync);
    }
    Ok(())
}
