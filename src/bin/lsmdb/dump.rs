//! `lsmdb dump`: keys and values out as JSON Lines, one `{"key":..,"value":..}` a line, in
//! key order, for `lsmdb load`, `jq` and other tools (the shape of `get --json`). A key or
//! value that is not UTF-8 is base64 with `"key_encoding"`/`"value_encoding":"base64"`
//! beside it; with `--hex`, every one is hex with `"hex"` there.
//!
//! The dump streams: an iterator over one snapshot, written through a buffer, so memory
//! stays the same however large the database. It opens the database read-only, so it runs
//! beside `lsmdb serve` and sees the data as of its start.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use lsmdb::server::json;

use crate::cli::Globals;
use crate::hex;
use crate::kv::{self, KeySpan};
use crate::progress::{self, Unit};

/// Entries between two updates of the progress bar.
const TICK: u64 = 4096;

#[derive(Args, Debug)]
#[command(
    about = "Write keys and values in [START, END) as JSON Lines, for lsmdb load",
    after_help = "Each line is {\"key\":..,\"value\":..}; bytes that are not UTF-8 are base64, marked\n\
                  \"key_encoding\":\"base64\" or \"value_encoding\":\"base64\". Reads a snapshot, beside a\n\
                  running server too. A progress bar shows on a terminal (stderr), never in a pipe.\n\n\
                  Examples:\n  \
                  lsmdb dump > backup.jsonl\n  \
                  lsmdb dump --output backup.jsonl      # whole or not at all\n  \
                  lsmdb dump --prefix user: | jq -r .key\n  \
                  lsmdb dump | lsmdb --db copy load     # copy a database"
)]
pub struct DumpArgs {
    #[command(flatten)]
    pub span: KeySpan,
    /// Write to FILE instead of stdout: first under a temporary name beside it, then synced
    /// and renamed, so FILE is never a partial dump (one killed midway leaves only its
    /// .lsmdb-dump-* file).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// START, END and --prefix typed as hex; every key and value written as hex digits with
    /// "key_encoding":"hex" and "value_encoding":"hex".
    #[arg(long)]
    pub hex: bool,
    /// No progress bar.
    #[arg(long, short, visible_alias = "no-progress")]
    pub quiet: bool,
}

pub fn dump(globals: &Globals, args: &DumpArgs) -> anyhow::Result<u8> {
    let db = globals.open_reader()?;
    // A whole dump's length is about the live entries in the tables (the memtable's are not
    // counted, overwritten ones are): good enough for an ETA.
    let estimate = args.span.is_everything().then(|| {
        let levels = &db.stats().levels;
        levels
            .iter()
            .map(|l| l.entries - l.deletions.min(l.entries))
            .sum::<u64>()
    });
    let iter = args.span.iter(&db, args.hex)?;

    let bar = progress::bar(
        progress::wanted(args.quiet),
        "dump",
        estimate.filter(|&n| n > 0),
        Unit::Items("entries"),
    );
    let mut sink = Sink::open(args.output.as_deref())?;
    let mut count = 0u64;
    let mut line = Vec::new();
    for entry in iter {
        let (key, value) = entry.context("cannot read the database")?;
        line.clear();
        encode_line(&mut line, &key, &value, args.hex);
        sink.writer().write_all(&line).map_err(|e| sink.error(e))?;
        count += 1;
        if count.is_multiple_of(TICK) {
            if bar.length().is_some_and(|len| count > len) {
                bar.set_length(count);
            }
            bar.set_position(count);
        }
    }
    bar.finish_and_clear();
    sink.finish()?;
    // A word for the person watching; a script learns as much from the exit status.
    if let (Some(path), true) = (&args.output, progress::wanted(args.quiet)) {
        eprintln!(
            "dumped {} to {}",
            kv::plural(count, "entry", "entries"),
            path.display()
        );
    }
    Ok(0)
}

/// One line: the shape of `get --json`, or with `hex` every field as hex digits.
fn encode_line(out: &mut Vec<u8>, key: &[u8], value: &[u8], hex: bool) {
    if hex {
        out.extend_from_slice(br#"{"key":""#);
        out.extend_from_slice(hex::digits(key).as_bytes());
        out.extend_from_slice(br#"","key_encoding":"hex","value":""#);
        out.extend_from_slice(hex::digits(value).as_bytes());
        out.extend_from_slice(br#"","value_encoding":"hex"}"#);
    } else {
        // Serializing our own type into memory cannot fail.
        let _ = serde_json::to_writer(&mut *out, &json::key_value(key, Some(value)));
    }
    out.push(b'\n');
}

/// Where the lines go: stdout, or a temporary file renamed to `--output` once complete.
enum Sink {
    Stdout(BufWriter<io::StdoutLock<'static>>),
    File {
        writer: BufWriter<tempfile::NamedTempFile>,
        path: PathBuf,
    },
}

impl Sink {
    fn open(output: Option<&Path>) -> anyhow::Result<Sink> {
        let Some(path) = output else {
            let stdout = io::stdout().lock();
            return Ok(Sink::Stdout(BufWriter::with_capacity(1 << 16, stdout)));
        };
        // Beside the destination, so that the rename stays on one file system.
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Made as `> FILE` would make it (tempfile's default is private to the owner).
        let temp = tempfile::Builder::new()
            .prefix(".lsmdb-dump-")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        Ok(Sink::File {
            writer: BufWriter::with_capacity(1 << 16, temp),
            path: path.to_path_buf(),
        })
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File { writer, .. } => writer,
        }
    }

    /// A failed write, with the file it was for (a closed stdout stays a bare I/O error, so
    /// that `main` ends quietly on a broken pipe).
    fn error(&self, e: io::Error) -> anyhow::Error {
        match self {
            Sink::Stdout(_) => e.into(),
            Sink::File { path, .. } => {
                anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
            }
        }
    }

    /// Flushes stdout; or syncs the file, renames it into place and syncs its directory.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(mut w) => Ok(w.flush()?),
            Sink::File { writer, path } => {
                let failed = |what: &str| format!("cannot {what} {}", path.display());
                let temp = writer
                    .into_inner()
                    .map_err(|e| anyhow::Error::new(e.into_error()))
                    .with_context(|| failed("write"))?;
                temp.as_file().sync_all().with_context(|| failed("sync"))?;
                temp.persist(&path)
                    .map_err(|e| anyhow::Error::new(e.error))
                    .with_context(|| failed("rename the finished dump to"))?;
                let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
                File::open(dir.unwrap_or(Path::new(".")))
                    .and_then(|d| d.sync_all())
                    .with_context(|| failed("sync the directory of"))
            }
        }
    }
}
