//! Timing one benchmark: a latency histogram per worker, merged at the end; worker threads
//! started together and timed from the first start to the last finish (db_bench's
//! elapsed time); and a progress bar on stderr.

use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use lsmdb::Db;

use crate::progress;

/// Operations and their latencies, as one worker saw them.
pub struct Recorder {
    pub hist: Histogram<u64>,
    pub ops: u64,
    /// Reads that found their key (or range queries that returned every key asked for).
    pub found: u64,
    /// Bytes of keys and values written.
    pub bytes: u64,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            // Nanoseconds up to an hour at 0.1% resolution; anything longer saturates.
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("constant bounds are valid"),
            ops: 0,
            found: 0,
            bytes: 0,
        }
    }

    /// One operation that started at `started` and has just finished.
    #[inline]
    pub fn record(&mut self, started: Instant) {
        self.record_n(started, 1);
    }

    /// One call that did `n` operations (a batch): its latency counts once, its ops `n` times.
    #[inline]
    pub fn record_n(&mut self, started: Instant, n: u64) {
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.hist.saturating_record(nanos.max(1));
        self.ops += n;
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Both histograms have the same bounds, so adding cannot run out of range.
        let _ = self.hist.add(&other.hist);
        self.ops += other.ops;
        self.found += other.found;
        self.bytes += other.bytes;
    }

    /// Latency at quantile `q`, in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        self.hist.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.hist.max() as f64 / 1000.0
    }
}

/// One timed put, counted with the bytes it wrote.
pub fn timed_put(db: &Db, rec: &mut Recorder, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
    let t = Instant::now();
    db.put(key, value).context("put failed")?;
    rec.record(t);
    rec.bytes += (key.len() + value.len()) as u64;
    Ok(())
}

/// One timed get, counted as found when the key is there.
pub fn timed_get(db: &Db, rec: &mut Recorder, key: &[u8]) -> anyhow::Result<()> {
    let t = Instant::now();
    let hit = db.get(key).context("get failed")?.is_some();
    rec.record(t);
    rec.found += u64::from(hit);
    Ok(())
}

/// How results and progress are shown.
#[derive(Clone, Copy)]
pub struct Ui {
    pub json: bool,
    pub progress: bool,
}

impl Ui {
    /// Progress bars only where someone watches (`crate::progress`).
    pub fn new(json: bool, quiet: bool) -> Ui {
        Ui {
            json,
            progress: progress::wanted(quiet),
        }
    }

    pub fn bar(&self, name: &str, len: u64) -> ProgressBar {
        progress::bar(self.progress, name, Some(len), progress::Unit::Items("ops"))
    }
}

/// Batches progress updates: a bar update per operation would cost more than a read.
pub struct Ticker {
    bar: ProgressBar,
    pending: u64,
}

impl Ticker {
    const EVERY: u64 = 1024;

    pub fn new(bar: &ProgressBar) -> Ticker {
        Ticker {
            bar: bar.clone(),
            pending: 0,
        }
    }

    #[inline]
    pub fn tick(&mut self, n: u64) {
        self.pending += n;
        if self.pending >= Self::EVERY {
            self.bar.inc(self.pending);
            self.pending = 0;
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.bar.inc(self.pending);
    }
}

/// Runs `work(worker, recorder, ticker)` on `threads` threads at once and returns their
/// merged figures and the elapsed time from the start of the first to the end of the last.
pub fn run_workers<F>(
    threads: usize,
    bar: &ProgressBar,
    work: F,
) -> anyhow::Result<(Recorder, Duration)>
where
    F: Fn(usize, &mut Recorder, &mut Ticker) -> anyhow::Result<()> + Sync,
{
    let start = Instant::now();
    let results: Vec<anyhow::Result<Recorder>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|worker| {
                let work = &work;
                s.spawn(move || {
                    let mut rec = Recorder::new();
                    let mut ticker = Ticker::new(bar);
                    work(worker, &mut rec, &mut ticker).map(|()| rec)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark thread panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut total = Recorder::new();
    for r in results {
        total.merge(&r?);
    }
    Ok((total, elapsed))
}
