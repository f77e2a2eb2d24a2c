//! The one-shot commands: put, get, delete, range, batch, stats, compact.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use lsmdb::server::json;

use crate::cli::{EXIT_NOT_FOUND, Globals};
use crate::hex::arg_bytes;
use crate::output::Out;
use crate::{hex, text, words};

#[derive(Args, Debug)]
#[command(
    about = "Store a value under a key",
    after_help = "Examples:\n  lsmdb put user:1 Ada\n  lsmdb put photo - < photo.jpg\n  lsmdb put config --value-file settings.toml\n  lsmdb put --hex 00FF 0x0102            # key 00 FF, value 01 02"
)]
pub struct PutArgs {
    /// The key (any bytes but NUL, which no argument can hold; with --hex, any bytes).
    pub key: OsString,
    /// The value; "-" or nothing reads it from stdin.
    pub value: Option<OsString>,
    /// Read the value from this file, byte for byte (with --hex too).
    #[arg(long, value_name = "PATH", conflicts_with = "value")]
    pub value_file: Option<PathBuf>,
    #[arg(long, help = HEX_HELP)]
    pub hex: bool,
    /// Print {"success":true} instead of OK.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Print the value stored under a key (exit 1 if there is none)",
    after_help = "Examples:\n  lsmdb get user:1\n  lsmdb get user:1 --json       # {\"key\":\"user:1\",\"value\":\"Ada\"}\n  lsmdb get photo > photo.jpg   # the value's bytes exactly\n  lsmdb get --hex 00FF          # prints the value as 0x..."
)]
pub struct GetArgs {
    /// The key whose value to print.
    pub key: OsString,
    #[arg(long, help = HEX_HELP)]
    pub hex: bool,
    /// Print the seed's {"key":..,"value":..} (value null when missing; still exit 1).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Delete a key (prints 1 if it existed, 0 if not)",
    after_help = "Examples:\n  lsmdb delete user:1\n  lsmdb del --hex 00FF"
)]
pub struct DeleteArgs {
    /// The key to delete.
    pub key: OsString,
    #[arg(long, help = HEX_HELP)]
    pub hex: bool,
    /// Print {"success":true,"deleted":1} (0 if the key was not there) instead of the count.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "List keys in [START, END) in order",
    after_help = "Examples:\n  lsmdb range user:100 user:200\n  lsmdb range --prefix user: --limit 10\n  lsmdb range user: 'user;'         # the same keys: \"user;\" is the first key after them\n  lsmdb scan                        # every key\n  lsmdb range a z --json            # {\"results\":[{\"key\":..,\"value\":..}]}\n  lsmdb range --hex 00 01           # keys from 00 to 01, printed as 0x...\n\n\
                  Each key and value is printed on one line as a shell word: as it is, or\n\
                  quoted (\"two words\", $'\\xff\\t'), so that it can be pasted back into\n\
                  bash or lsmdb shell."
)]
pub struct RangeArgs {
    #[command(flatten)]
    pub span: KeySpan,
    #[arg(long, help = HEX_HELP)]
    pub hex: bool,
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
    /// Print the seed's {"success":true,"count":N} instead of OK (N operations).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Show tables per level, cache and compaction figures",
    after_help = "Example:\n  lsmdb stats --json"
)]
pub struct StatsArgs {
    /// Print every figure as one JSON object (what GET /stats answers).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Compact every table into one sorted run and wait for it",
    after_help = "Example:\n  lsmdb compact"
)]
pub struct CompactArgs {}

/// Which keys a listing (`range`, `dump`) covers: `[START, END)`, or those starting with
/// `--prefix`.
#[derive(Args, Debug)]
pub struct KeySpan {
    /// First key (inclusive); the start of the keyspace if omitted.
    pub start: Option<OsString>,
    /// End key (exclusive); the end of the keyspace if omitted.
    pub end: Option<OsString>,
    /// Only keys starting with this prefix.
    #[arg(long, conflicts_with_all = ["start", "end"])]
    pub prefix: Option<OsString>,
}

impl KeySpan {
    /// Whether it covers every key.
    pub fn is_everything(&self) -> bool {
        self.start.is_none() && self.prefix.is_none()
    }

    /// The entries it covers in `db`, in key order, its keys typed as hex digits if `hex`.
    pub fn iter(&self, db: &lsmdb::Db, hex: bool) -> anyhow::Result<lsmdb::DbIterator> {
        let bytes = |arg: &Option<OsString>| arg.as_ref().map(|a| arg_bytes(a, hex)).transpose();
        let iter = match (bytes(&self.prefix)?, bytes(&self.start)?, bytes(&self.end)?) {
            (Some(p), _, _) => db.prefix(p),
            (None, Some(s), Some(e)) => db.range(s, e),
            (None, Some(s), None) => db.range_from(s),
            (None, None, _) => db.iter(),
        };
        iter.context("cannot read the database")
    }
}

/// The help of every `--hex`.
pub const HEX_HELP: &str = "Keys and values typed and printed as hex digits (0x6B6579 or 6b6579), as ldb's --hex; --json output stays as it is";

/// The key an argument stands for, which must not be empty.
fn key_arg(arg: &OsString, hex: bool) -> anyhow::Result<Vec<u8>> {
    let key = arg_bytes(arg, hex)?;
    if key.is_empty() {
        bail!("the key must not be empty");
    }
    Ok(key)
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
    let key = key_arg(&args.key, args.hex)?;
    let value = match (&args.value, &args.value_file) {
        (Some(v), None) if v != "-" => arg_bytes(v, args.hex)?,
        (_, Some(path)) => read_input(Some(path))?,
        _ if args.hex => {
            let text = String::from_utf8(read_input(None)?)
                .map_err(|_| anyhow::anyhow!("--hex: the value on stdin is not hex"))?;
            hex::decode(text.trim())?
        }
        _ => read_input(None)?,
    };
    let db = globals.open_writer()?;
    db.put(&key, &value).context("put failed")?;
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
    let key = key_arg(&args.key, args.hex)?;
    let db = globals.open_reader()?;
    let value = db.get(&key).context("get failed")?;
    let mut out = Out::new();
    if args.json {
        out.json(&json::key_value(&key, value.as_deref()))?;
    } else if let (Some(v), true) = (&value, args.hex) {
        out.line(&hex::encode(v))?;
    } else if let Some(v) = &value {
        out.bytes(v)?;
        // `get photo > photo.jpg` must write the stored bytes and nothing else; at a
        // terminal, as `cat` users expect, the prompt still starts on a line of its own.
        if std::io::stdout().is_terminal() && !v.ends_with(b"\n") {
            out.bytes(b"\n")?;
        }
    }
    out.flush()?;
    Ok(if value.is_some() { 0 } else { EXIT_NOT_FOUND })
}

pub fn delete(globals: &Globals, args: &DeleteArgs) -> anyhow::Result<u8> {
    let key = key_arg(&args.key, args.hex)?;
    let db = globals.open_writer()?;
    // This process holds the write lock, so nothing can change the key in between.
    let existed = db.get(&key).context("get failed")?.is_some();
    db.delete(&key).context("delete failed")?;
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
    let iter = args.span.iter(&db, args.hex)?;
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut out = Out::new();
    let mut pairs = Vec::new();
    for item in iter.take(limit) {
        let (k, v) = item.context("cannot read the database")?;
        if args.json {
            pairs.push((k, v));
        } else {
            let show = |b: &[u8]| {
                if args.hex {
                    hex::encode(b)
                } else {
                    words::quote(b)
                }
            };
            out.line(&format!("{}\t{}", show(&k), show(&v)))?;
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
    // Flushed first, apart from the compaction, so that the report can say what the
    // memtable held: a small database may have nothing but that.
    db.flush().context("flushing the memtable failed")?;
    let flushed = db.stats();
    db.compact().context("compaction failed")?;
    let after = db.stats();
    db.close().context("closing the database failed")?;
    let mut out = Out::new();
    for line in compact_report(&before, &flushed, &after) {
        out.line(&line)?;
    }
    out.flush()?;
    Ok(0)
}

/// What `compact` did, from the figures before it, after the flush, and at the end.
fn compact_report(
    before: &lsmdb::Stats,
    flushed: &lsmdb::Stats,
    after: &lsmdb::Stats,
) -> Vec<String> {
    let entries = |s: &lsmdb::Stats| s.levels.iter().map(|l| l.entries).sum::<u64>();
    let flushed_entries = entries(flushed).saturating_sub(entries(before));
    let mut lines = Vec::new();
    if flushed.tables > before.tables {
        lines.push(format!(
            "flushed the memtable: {} into {} ({} bytes)",
            plural(flushed_entries, "entry", "entries"),
            plural((flushed.tables - before.tables) as u64, "table", "tables"),
            flushed.table_bytes.saturating_sub(before.table_bytes),
        ));
    }
    if flushed.tables == 0 {
        lines.push("nothing to compact: the database holds no data".to_string());
    } else {
        lines.push(format!(
            "compacted {} ({} bytes) into {} ({} bytes)",
            plural(flushed.tables as u64, "table", "tables"),
            flushed.table_bytes,
            plural(after.tables as u64, "table", "tables"),
            after.table_bytes
        ));
    }
    lines
}

/// `1 table`, `2 tables`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
