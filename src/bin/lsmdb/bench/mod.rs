//! `lsmdb bench`: the seed's performance phases (`quick`, `full`) and RocksDB db_bench's
//! workloads (`--benchmarks`), with latency percentiles, the engine's write figures, and
//! checks that reads find what was written. See docs/BENCHMARKS.md for the method.

mod keys;
mod measure;
mod phases;
mod report;
mod session;
mod workloads;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use lsmdb::{MAX_KEY_SIZE, MAX_VALUE_SIZE, Options, SyncMode};
use tempfile::TempDir;

use crate::output::Out;
use measure::Ui;
use session::Session;

const AFTER_HELP: &str = "\
Without --benchmarks, runs the seed's phases: writes (sequential, random, batches of 100),
reads from memory, range queries of 100 keys, a large data set flushed to disk, reads from
disk, range queries of 500 keys, mixed 70/30 and 90/10 reads/writes.

--benchmarks runs db_bench's workloads with db_bench's meanings: fillseq, fillrandom,
overwrite, readrandom, readseq, seekrandom, readwhilewriting. Key i is its decimal padded to
--key-size; values are random. Writes are not synced (db_bench's default) unless
`lsmdb bench --sync`, which syncs every write before it returns.

The database lives in a temporary directory, removed at the end unless --keep, or in the
--db DIR typed on the command line (never LSMDB_DIR or ./data), which must be empty or new
(or pass --use-existing-db to run on what it holds).

Examples:
  lsmdb bench quick
  lsmdb bench --benchmarks fillseq,readrandom,seekrandom --num 1000000 --seek-nexts 100
  lsmdb bench --benchmarks fillrandom --num 20000 --sync --threads 4
  lsmdb bench full --json > results.jsonl";

#[derive(Args, Debug)]
#[command(
    about = "Measure throughput and latency (the seed's phases, or db_bench's workloads)",
    after_help = AFTER_HELP
)]
pub struct BenchArgs {
    /// The seed's phases: quick (~65K operations) or full (~750K operations).
    #[arg(value_parser = ["quick", "full"], conflicts_with = "benchmarks")]
    pub suite: Option<String>,
    /// db_bench workloads to run, in order (comma-separated).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub benchmarks: Option<Vec<String>>,
    /// Keys in the key space, and writes per thread in each fill.
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub num: u64,
    /// Reads per thread in readrandom, readseq, seekrandom, readwhilewriting [default: --num].
    #[arg(long, value_name = "N")]
    pub reads: Option<u64>,
    /// Key length: key i is its decimal, zero-padded to this size.
    #[arg(long, alias = "key_size", value_name = "BYTES", default_value_t = 16)]
    pub key_size: usize,
    /// Value length (random bytes).
    #[arg(
        long,
        alias = "value_size",
        value_name = "BYTES",
        default_value_t = 100
    )]
    pub value_size: usize,
    /// Worker threads (readers in readwhilewriting, which adds one writer).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub threads: u64,
    /// Entries read after each seek in seekrandom.
    #[arg(long, alias = "seek_nexts", value_name = "N", default_value_t = 0)]
    pub seek_nexts: usize,
    /// Run on the database in --db as it is: fills write over it instead of starting empty.
    #[arg(long, alias = "use_existing_db")]
    pub use_existing_db: bool,
    /// Block cache size in MiB (db_bench's default is 8 MiB).
    #[arg(long, value_name = "MIB", default_value_t = 8)]
    pub cache_mb: usize,
    /// Memtable size in MiB (the engine's default unless given; db_bench's
    /// --write_buffer_size).
    #[arg(long, alias = "write_buffer_mb", value_name = "MIB")]
    pub write_buffer_mb: Option<usize>,
    /// Seed of the random keys and values.
    #[arg(long, default_value_t = 301)]
    pub seed: u64,
    /// Print one JSON object per benchmark on stdout, and nothing else.
    #[arg(long)]
    pub json: bool,
    /// No progress bars.
    #[arg(long, short, visible_alias = "no-progress")]
    pub quiet: bool,
    /// Keep the temporary database directory and print where it is.
    #[arg(long)]
    pub keep: bool,
    /// Multiplies the operation counts of quick and full (for tests).
    #[arg(long, hide = true, default_value_t = 1.0)]
    pub scale: f64,
}

/// Runs the benchmarks. `dir` and `sync` are the global `--db` and `--sync` only when typed
/// on the command line: bench must not take the default `./data` (or LSMDB_DIR) as a
/// directory it may empty, and its sync default is db_bench's (none), not the CLI's (always).
pub fn bench(dir: Option<&Path>, sync: Option<SyncMode>, args: &BenchArgs) -> anyhow::Result<u8> {
    check_args(args)?;
    // db_bench's default: the WAL is written but not synced; --sync syncs every write.
    let sync = sync.unwrap_or(SyncMode::None);
    let mut opts = Options::default()
        .sync(sync)
        .block_cache_bytes(args.cache_mb << 20);
    if let Some(mb) = args.write_buffer_mb {
        opts.write_buffer_size = mb << 20;
    }
    let place = Place::new(dir.map(Path::to_path_buf), args.use_existing_db, args.keep)?;
    let ui = Ui::new(args.json, args.quiet);
    let mut session = Session::new(place.dir.clone(), place.owned, opts, ui);
    let title;
    let result = match &args.benchmarks {
        Some(names) => {
            workloads::check_names(names)?;
            let p = workloads::Params {
                num: args.num,
                reads: args.reads.unwrap_or(args.num),
                key_size: args.key_size,
                value_size: args.value_size,
                threads: args.threads as usize,
                seek_nexts: args.seek_nexts,
                seed: args.seed,
            };
            title = format!(
                "lsmdb bench {}: num {}, reads {}, key {} B, value {} B, threads {}, sync {}, cache {} MiB",
                names.join(","),
                p.num,
                p.reads,
                p.key_size,
                p.value_size,
                p.threads,
                sync_name(sync),
                args.cache_mb
            );
            workloads::run_all(&mut session, names, &p)
        }
        None => {
            if args.use_existing_db {
                bail!(
                    "bench quick and full start from an empty database; --use-existing-db only goes with --benchmarks"
                );
            }
            let suite = args.suite.as_deref().unwrap_or("quick");
            let sizes = if suite == "full" {
                phases::Sizes::full(args.scale)
            } else {
                phases::Sizes::quick(args.scale)
            };
            title = format!(
                "lsmdb bench {suite}: key {} B, value {} B, sync {}, cache {} MiB",
                args.key_size,
                args.value_size,
                sync_name(sync),
                args.cache_mb
            );
            let settings = phases::Settings {
                key_size: args.key_size,
                value_size: args.value_size,
                seed: args.seed,
            };
            phases::run(&mut session, &sizes, &settings)
        }
    };
    let closed = session.close();
    if !args.json && !session.outcomes.is_empty() {
        let mut out = Out::new();
        for line in report::table(&title, &session.outcomes) {
            out.line(&line)?;
        }
        out.flush()?;
    }
    place.finish(args.keep)?;
    result?;
    closed?;
    if !session.failures.is_empty() {
        bail!(
            "the figures cannot be trusted:\n  {}",
            session.failures.join("\n  ")
        );
    }
    Ok(0)
}

fn check_args(args: &BenchArgs) -> anyhow::Result<()> {
    if args.key_size == 0 || args.key_size > MAX_KEY_SIZE {
        bail!("--key-size must be between 1 and {MAX_KEY_SIZE}");
    }
    if args.value_size > MAX_VALUE_SIZE {
        bail!("--value-size must be at most {MAX_VALUE_SIZE}");
    }
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        bail!("--scale must be a positive number");
    }
    if args.cache_mb > 1 << 20 {
        bail!("--cache-mb must be at most 1048576");
    }
    Ok(())
}

fn sync_name(sync: SyncMode) -> &'static str {
    match sync {
        SyncMode::Always => "every write",
        SyncMode::None => "none",
    }
}

/// Where the database lives: a temporary directory of the run's own, or `--db DIR`.
struct Place {
    dir: PathBuf,
    owned: bool,
    temp: Option<TempDir>,
}

impl Place {
    fn new(db: Option<PathBuf>, use_existing: bool, keep: bool) -> anyhow::Result<Place> {
        let Some(dir) = db else {
            if use_existing {
                bail!("--use-existing-db needs --db DIR");
            }
            let temp = tempfile::Builder::new()
                .prefix("lsmdb-bench-")
                .tempdir()
                .context("cannot create a temporary directory")?;
            if !keep {
                remove_on_interrupt(temp.path().to_path_buf());
            }
            return Ok(Place {
                dir: temp.path().join("db"),
                owned: true,
                temp: Some(temp),
            });
        };
        if use_existing {
            return Ok(Place {
                dir,
                owned: false,
                temp: None,
            });
        }
        let empty = match std::fs::read_dir(&dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
        };
        if !empty {
            bail!(
                "{} is not empty: bench starts from an empty database and would delete what it holds; \
                 choose a new directory, or pass --use-existing-db to run on it as it is",
                dir.display()
            );
        }
        Ok(Place {
            dir,
            owned: true,
            temp: None,
        })
    }

    /// Removes the temporary directory, or keeps it and says where.
    fn finish(self, keep: bool) -> anyhow::Result<()> {
        if let Some(temp) = self.temp {
            if keep {
                let root = temp.keep();
                eprintln!("kept the database in {}", root.join("db").display());
            } else {
                temp.close()
                    .context("cannot remove the temporary directory")?;
            }
        }
        Ok(())
    }
}

/// A full run writes hundreds of MiB into the temporary directory: Ctrl-C must not leave
/// them behind.
fn remove_on_interrupt(dir: PathBuf) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let _ = std::fs::remove_dir_all(&dir);
            std::process::exit(128 + signal);
        }
    });
}
