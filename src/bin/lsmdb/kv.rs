//! The one-shot commands: put, get, delete, range, batch, stats, compact.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use lsmdb::server::json;

use crate::cli::{EXIT_NOT_FOUND, Globals};
use crate::output::Out;
use crate::text;

#[derive(Args, Debug)]
#[command(
    about = "Store a value under a key",
    after_help = "Examples:\n  lsmdb put user:1 Ada\n  lsmdb put photo - < photo.jpg\n  lsmdb put config --value-file settings.toml"
)]
pub struct PutArgs {
    /// The key (any non-empty string).
    pub key: String,
    /// The value; "-" or nothing reads it from stdin.
    pub value: Option<String>,
    /// Read the value from this file (binary-safe).
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub value_file: Option<PathBuf>,
    /// Print {"success":true} instead of OK.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Print the value stored under a key (exit 1 if there is none)",
    after_help = "Examples:\n  lsmdb get user:1\n  lsmdb get user:1 --json      # {\"key\":\"user:1\",\"value\":\"Ada\"}\n  lsmdb get photo > photo.jpg   # values are printed as they are"
)]
pub struct GetArgs {
    pub key: String,
    /// Print the seed's {"key":..,"value":..} (value null when missing; still exit 1).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Delete a key (prints 1 if it existed, 0 if not)",
    after_help = "Example:\n  lsmdb delete user:1"
)]
pub struct DeleteArgs {
    pub key: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "List keys in [START, END) in order",
    after_help = "Examples:\n  lsmdb range user:100 user:200\n  lsmdb range --prefix user: --limit 10\n  lsmdb scan                       # every key\n  lsmdb range a z --json           # {\"results\":[{\"key\":..,\"value\":..}]}"
)]
pub struct RangeArgs {
    /// First key (inclusive); the start of the keyspace if omitted.
    pub start: Option<String>,
    /// End key (exclusive); the end of the keyspace if omitted.
    pub end: Option<String>,
    /// Only keys starting with this prefix.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub prefix: Option<String>,
    /// Stop after this many keys.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Print the seed's {"results":[...]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Apply many puts atomically (all or none survive a crash)",
    after_help = "Input is either the seed's JSON body {\"keys\":[...],\"values\":[...]} (a null value\n\
                  deletes its key) or one KEY<TAB>VALUE per line.\n\n\
                  Examples:\n  lsmdb batch users.json\n  printf 'a\\t1\\nb\\t2\\n' | lsmdb batch -"
)]
pub struct BatchArgs {
    /// Input file; "-" or nothing reads stdin.
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Show tables per level, cache and compaction figures",
    after_help = "Example:\n  lsmdb stats --json"
)]
pub struct StatsArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Compact every table into one sorted run and wait for it",
    after_help = "Example:\n  lsmdb compact"
)]
pub struct CompactArgs {}

fn check_key(key: &str) -> anyhow::Result<()> {
    if key.is_empty() {
        bail!("the key must not be empty");
    }
    Ok(())
}

fn read_input(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match path {
        Some(p) if p.as_os_str() != "-" => {
            buf = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
        }
        _ => {
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read stdin")?;
        }
    }
    Ok(buf)
}

pub fn put(globals: &Globals, args: &PutArgs) -> anyhow::Result<u8> {
    check_key(&args.key)?;
    let value = match (&args.value, &args.value_file) {
        (Some(v), None) if v != "-" => v.clone().into_bytes(),
        (_, Some(path)) => read_input(Some(path))?,
        _ => read_input(None)?,
    };
    let db = globals.open_writer()?;
    db.put(&args.key, &value).context("put failed")?;
    db.close().context("closing the database failed")?;
    let mut out = Out::new();
    if args.json {
        out.json(&json::success())?;
    } else {
        out.line("OK")?;
    }
    out.flush()?;
    Ok(0)
}

pub fn get(globals: &Globals, args: &GetArgs) -> anyhow::Result<u8> {
    check_key(&args.key)?;
    let db = globals.open_reader()?;
    let value = db.get(&args.key).context("get failed")?;
    let mut out = Out::new();
    if args.json {
        out.json(&json::key_value(args.key.as_bytes(), value.as_deref()))?;
    } else if let Some(v) = &value {
        out.bytes(v)?;
        out.bytes(b"\n")?;
    }
    out.flush()?;
    Ok(if value.is_some() { 0 } else { EXIT_NOT_FOUND })
}

pub fn delete(globals: &Globals, args: &DeleteArgs) -> anyhow::Result<u8> {
    check_key(&args.key)?;
    let db = globals.open_writer()?;
    // This process holds the write lock, so nothing can change the key in between.
    let existed = db.get(&args.key).context("get failed")?.is_some();
    db.delete(&args.key).context("delete failed")?;
    db.close().context("closing the database failed")?;
    let mut out = Out::new();
    if args.json {
        out.json(&json::deleted(existed))?;
    } else {
        out.line(if existed { "1" } else { "0" })?;
    }
    out.flush()?;
    Ok(0)
}

pub fn range(globals: &Globals, args: &RangeArgs) -> anyhow::Result<u8> {
    let db = globals.open_reader()?;
    let iter = match (&args.prefix, &args.start, &args.end) {
        (Some(p), _, _) => db.prefix(p),
        (None, Some(s), Some(e)) => db.range(s, e),
        (None, Some(s), None) => db.range_from(s),
        (None, None, _) => db.iter(),
    }
    .context("range failed")?;
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut out = Out::new();
    let mut pairs = Vec::new();
    for item in iter.take(limit) {
        let (k, v) = item.context("range failed")?;
        if args.json {
            pairs.push((k, v));
        } else {
            out.line(&format!("{}\t{}", text::escape(&k), text::escape(&v)))?;
        }
    }
    if args.json {
        out.json(&json::results(&pairs))?;
    }
    out.flush()?;
    Ok(0)
}

pub fn batch(globals: &Globals, args: &BatchArgs) -> anyhow::Result<u8> {
    let input = read_input(args.file.as_ref())?;
    let entries = text::parse_batch(&input).map_err(|e| anyhow::anyhow!("bad batch input: {e}"))?;
    let db = globals.open_writer()?;
    db.write(&text::to_batch(&entries))
        .context("batch failed")?;
    db.close().context("closing the database failed")?;
    let mut out = Out::new();
    if args.json {
        out.json(&json::batch_applied(entries.len()))?;
    } else {
        out.line(&format!("OK ({} operations)", entries.len()))?;
    }
    out.flush()?;
    Ok(0)
}

pub fn stats(globals: &Globals, args: &StatsArgs) -> anyhow::Result<u8> {
    let db = globals.open_reader()?;
    let stats = db.stats();
    let mut out = Out::new();
    if args.json {
        out.json(&serde_json::to_value(&stats)?)?;
    } else {
        for line in stats_table(&stats) {
            out.line(&line)?;
        }
    }
    out.flush()?;
    Ok(0)
}

/// Human-readable stats, shared with the shell.
pub fn stats_table(s: &lsmdb::Stats) -> Vec<String> {
    let mut lines = vec![format!(
        "{:<6}{:>8}{:>14}{:>12}{:>11}{:>8}",
        "level", "tables", "bytes", "entries", "deletions", "score"
    )];
    for l in &s.levels {
        lines.push(format!(
            "L{:<5}{:>8}{:>14}{:>12}{:>11}{:>8.2}",
            l.level, l.tables, l.bytes, l.entries, l.deletions, l.score
        ));
    }
    lines.push(format!("tables: {} ({} bytes)", s.tables, s.table_bytes));
    lines.push(format!(
        "memtables: {} bytes, {} waiting for flush",
        s.memtable_bytes, s.immutable_memtables
    ));
    lines.push(format!(
        "block cache: {} / {} bytes, hit rate {:.1}% ({} hits, {} misses)",
        s.block_cache.usage_bytes,
        s.block_cache.capacity_bytes,
        s.block_cache.hit_rate * 100.0,
        s.block_cache.hits,
        s.block_cache.misses
    ));
    lines.push(format!(
        "write amplification: {:.2} ({} user bytes, {} flushed, {} compacted)",
        s.write_amplification,
        s.user_bytes_written,
        s.flush_bytes_written,
        s.compaction_bytes_written
    ));
    lines.push(format!(
        "pending compaction: {} bytes",
        s.pending_compaction_bytes
    ));
    lines.push(format!(
        "stalls: {} slowdowns, {} stops, {} us",
        s.stall_slowdowns, s.stall_stops, s.stall_micros
    ));
    lines.push(format!("last sequence: {}", s.last_sequence));
    if s.read_only {
        lines.push("opened read-only (counters cover this process only)".into());
    }
    if let Some(reason) = &s.writes_stopped {
        lines.push(format!("WRITES STOPPED: {reason}"));
    }
    lines
}

pub fn compact(globals: &Globals, _args: &CompactArgs) -> anyhow::Result<u8> {
    let db = globals.open_writer()?;
    let before = db.stats();
    db.compact().context("compaction failed")?;
    let after = db.stats();
    db.close().context("closing the database failed")?;
    let mut out = Out::new();
    out.line(&format!(
        "compacted {} tables ({} bytes) into {} tables ({} bytes)",
        before.tables, before.table_bytes, after.tables, after.table_bytes
    ))?;
    out.flush()?;
    Ok(0)
}
