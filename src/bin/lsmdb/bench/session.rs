//! One `lsmdb bench` run: the database it works on (opened lazily, recreated for fills),
//! the measuring of a write or read benchmark against the engine's counters, and the checks
//! that keep the figures honest (a read that must find its key and does not is a failure,
//! reported after the table, and the run exits 2).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use lsmdb::{Db, Options, SyncMode};
use serde_json::{Map, Value};

use super::measure::{Recorder, Ticker, Ui, run_workers};
use super::report::{self, Outcome, WriteFigures};
use crate::output::Out;

pub struct Session {
    pub dir: PathBuf,
    /// Whether the run may delete and recreate `dir` (it made it, or it was empty).
    pub owned: bool,
    pub opts: Options,
    pub ui: Ui,
    db: Option<Db>,
    pub outcomes: Vec<Outcome>,
    pub failures: Vec<String>,
    out: Out,
}

impl Session {
    pub fn new(dir: PathBuf, owned: bool, opts: Options, ui: Ui) -> Session {
        Session {
            dir,
            owned,
            opts,
            ui,
            db: None,
            outcomes: Vec::new(),
            failures: Vec::new(),
            out: Out::new(),
        }
    }

    pub fn syncs_every_write(&self) -> bool {
        self.opts.sync == SyncMode::Always
    }

    pub fn db(&mut self) -> anyhow::Result<&Db> {
        if self.db.is_none() {
            let db = Db::open(&self.dir, self.opts.clone())
                .with_context(|| format!("cannot open {}", self.dir.display()))?;
            self.db = Some(db);
        }
        Ok(self.db.as_ref().expect("opened just above"))
    }

    /// Starts again from an empty database, as db_bench does before fillseq and fillrandom.
    /// A directory the run does not own (`--use-existing-db`) is kept as it is.
    pub fn recreate(&mut self) -> anyhow::Result<()> {
        if !self.owned {
            return Ok(());
        }
        if let Some(db) = self.db.take() {
            db.close()
                .context("closing the database before recreating it")?;
        }
        // Empty the directory rather than remove it: it may be a mount point or have
        // permissions of its own.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries {
                let path = entry?.path();
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                removed.with_context(|| format!("cannot remove {}", path.display()))?;
            }
        }
        self.db()?;
        Ok(())
    }

    pub fn close(&mut self) -> anyhow::Result<()> {
        match self.db.take() {
            Some(db) => db.close().context("closing the database"),
            None => Ok(()),
        }
    }

    /// Runs a write benchmark on `threads` workers, then makes everything durable
    /// (`db.sync()`, timed: peerbench persists fjall the same way) and reads the engine's
    /// counters for syncs and write amplification.
    pub fn measure_writes<F>(
        &mut self,
        name: &str,
        threads: usize,
        expected_ops: u64,
        work: F,
    ) -> anyhow::Result<Outcome>
    where
        F: Fn(&Db, usize, &mut Recorder, &mut Ticker) -> anyhow::Result<()> + Sync,
    {
        let syncs_before = self.db()?.stats().wal_syncs;
        let (rec, mut elapsed) = self.run_workers(name, threads, expected_ops, work)?;
        let db = self.db()?;
        let after = db.stats();
        let t = Instant::now();
        db.sync().context("syncing after the benchmark")?;
        elapsed += t.elapsed();
        let writes = WriteFigures {
            bytes_written: rec.bytes,
            wal_syncs: after.wal_syncs - syncs_before,
            write_amp: after.write_amplification,
        };
        Ok(self.outcome(name, elapsed.as_secs_f64(), rec, Some(writes)))
    }

    /// Runs a read benchmark on `threads` workers.
    pub fn measure_reads<F>(
        &mut self,
        name: &str,
        threads: usize,
        expected_ops: u64,
        work: F,
    ) -> anyhow::Result<Outcome>
    where
        F: Fn(&Db, usize, &mut Recorder, &mut Ticker) -> anyhow::Result<()> + Sync,
    {
        let (rec, elapsed) = self.run_workers(name, threads, expected_ops, work)?;
        let mut o = self.outcome(name, elapsed.as_secs_f64(), rec, None);
        o.reads = Some(o.rec.ops);
        Ok(o)
    }

    fn run_workers<F>(
        &mut self,
        name: &str,
        threads: usize,
        expected_ops: u64,
        work: F,
    ) -> anyhow::Result<(Recorder, Duration)>
    where
        F: Fn(&Db, usize, &mut Recorder, &mut Ticker) -> anyhow::Result<()> + Sync,
    {
        let bar = self.ui.bar(name, expected_ops);
        let db = self.db()?;
        let result = run_workers(threads, &bar, |w, rec, t| work(db, w, rec, t));
        bar.finish_and_clear();
        result
    }

    pub fn bar(&self, name: &str, len: u64) -> ProgressBar {
        self.ui.bar(name, len)
    }

    pub fn outcome(
        &self,
        name: &str,
        secs: f64,
        rec: Recorder,
        writes: Option<WriteFigures>,
    ) -> Outcome {
        Outcome {
            name: name.to_string(),
            secs,
            rec,
            reads: None,
            writes,
            disk_bytes: report::dir_bytes(&self.dir),
            extra: Map::new(),
        }
    }

    /// Records a finished benchmark: its JSON line at once under `--json` (so a long run
    /// streams), its row in the table otherwise.
    pub fn finish(&mut self, outcome: Outcome) -> anyhow::Result<()> {
        if self.ui.json {
            self.out.json(&outcome.json())?;
            self.out.flush()?;
        }
        self.outcomes.push(outcome);
        Ok(())
    }

    /// Notes a broken promise of the figures (a miss where every key must be found, a
    /// write that was not synced); the run goes on and exits 2 at the end.
    pub fn expect(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    /// Checks that a read benchmark found every key, where every key it asked for exists.
    pub fn expect_all_found(&mut self, o: &Outcome) {
        let (found, ops) = (o.rec.found, o.rec.ops);
        self.expect(found == ops, || {
            format!(
                "{}: found {found} of {ops} keys, but every key it read was written",
                o.name
            )
        });
    }

    /// Checks that under `--sync` a single writer synced the WAL once per write.
    pub fn expect_synced(&mut self, o: &Outcome, threads: usize, writes_per_call: u64) {
        let Some(w) = &o.writes else { return };
        if !self.syncs_every_write() || threads != 1 {
            return;
        }
        let calls = o.rec.ops / writes_per_call.max(1);
        let syncs = w.wal_syncs;
        self.expect(syncs >= calls, || {
            format!(
                "{}: --sync made {calls} writes but the WAL was synced only {syncs} times",
                o.name
            )
        });
    }

    pub fn add_extra(o: &mut Outcome, key: &str, value: impl Into<Value>) {
        o.extra.insert(key.to_string(), value.into());
    }
}
