//! `lsmdb load`: JSON Lines as `lsmdb dump` writes them, back into a database.
//!
//! The input is read a line at a time and applied in batches of about `--batch-bytes`, each
//! one atomic and synced (one WAL record), so memory stays bounded however long the input.
//! A bad line stops the load before its batch is applied: the error names the line and how
//! many entries the batches before it applied. `--atomic` makes the whole input one batch,
//! all or nothing, which caps it at `lsmdb::MAX_BATCH_SIZE`; a larger input is refused as
//! soon as it is seen to be larger, before anything is written.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use clap::Args;
use lsmdb::{MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE, WriteBatch};
use serde::Deserialize;

use crate::cli::Globals;
use crate::output::Out;
use crate::progress::{self, Unit};
use crate::{hex, kv};

/// The longest line an entry can take: the largest key and value, hex-encoded (the widest
/// encoding), and room for the field names. A longer line is refused before it is all read.
const MAX_LINE: u64 = 2 * (MAX_KEY_SIZE + MAX_VALUE_SIZE) as u64 + 4096;

/// Lines between two updates of the progress bar.
const TICK: u64 = 4096;

#[derive(Args, Debug)]
#[command(
    about = "Apply JSON Lines from lsmdb dump, in atomic batches",
    after_help = "Each line is {\"key\":..,\"value\":..}, with \"key_encoding\" or \"value_encoding\" set to\n\
                  \"base64\" or \"hex\" for a field so encoded. Batches are applied in order, each atomic\n\
                  and synced; a bad line stops the load before its batch, and the error names the\n\
                  line. A progress bar shows on a terminal (stderr), never in a pipe.\n\n\
                  Examples:\n  \
                  lsmdb --db restored load backup.jsonl\n  \
                  lsmdb dump | lsmdb --db copy load\n  \
                  lsmdb load --atomic changes.jsonl     # all of it or none of it"
)]
pub struct LoadArgs {
    /// Input file; "-" or nothing reads stdin.
    pub file: Option<PathBuf>,
    /// Apply the whole input as one batch: all or nothing. The input may then encode to at
    /// most 256 MiB (lsmdb::MAX_BATCH_SIZE); a larger one is refused and nothing written.
    #[arg(long)]
    pub atomic: bool,
    /// Apply the input in atomic batches of about this many bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20, conflicts_with = "atomic",
          value_parser = clap::value_parser!(u64).range(1..=MAX_BATCH_SIZE as u64 / 2))]
    pub batch_bytes: u64,
    /// Fields with no encoding marker are hex digits, as `--hex` elsewhere.
    #[arg(long)]
    pub hex: bool,
    /// Print {"success":true,"count":N} instead of OK (N entries in B batches).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short, visible_alias = "no-progress")]
    pub quiet: bool,
}

/// One line of input, as `dump` writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    #[serde(borrow)]
    key: Cow<'a, str>,
    #[serde(borrow, default)]
    key_encoding: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value: Cow<'a, str>,
    #[serde(borrow, default)]
    value_encoding: Option<Cow<'a, str>>,
}

/// What the load has applied so far, for its report and its errors.
#[derive(Default)]
struct Applied {
    entries: u64,
    batches: u64,
}

pub fn load(globals: &Globals, args: &LoadArgs) -> anyhow::Result<u8> {
    let (input, size): (Box<dyn Read>, Option<u64>) = match &args.file {
        Some(path) if path.as_os_str() != "-" => {
            let file =
                File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            let size = file.metadata().ok().map(|m| m.len()).filter(|&n| n > 0);
            (Box::new(file), size)
        }
        _ => (Box::new(io::stdin().lock()), None),
    };
    let mut input = BufReader::with_capacity(1 << 20, input);
    let db = globals.open_writer()?;
    let show = progress::wanted(args.quiet);
    let bar = match size {
        Some(total) => progress::bar(show, "load", Some(total), Unit::Bytes),
        None => progress::bar(show, "load", None, Unit::Items("lines")),
    };
    let limit = if args.atomic {
        MAX_BATCH_SIZE as u64
    } else {
        args.batch_bytes
    };

    let mut applied = Applied::default();
    let mut batch = WriteBatch::new();
    // The first line of the batch being built, which an error says was not applied.
    let mut batch_start = 1;
    let mut line = Vec::new();
    let (mut number, mut read) = (0u64, 0u64);
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_LINE + 1)
            .read_until(b'\n', &mut line)
            .context("cannot read the input")?;
        if n == 0 {
            break;
        }
        number += 1;
        read += n as u64;
        let fail = |why: String| not_applied(number, &why, &applied, batch_start, args.atomic);
        if n as u64 > MAX_LINE {
            return Err(fail(format!(
                "the line is longer than any entry can be ({MAX_LINE} bytes)"
            )));
        }
        let text = line.trim_ascii();
        if !text.is_empty() {
            let (key, value) = parse(text, args.hex).map_err(fail)?;
            batch.put(&key, &value);
        }
        if args.atomic && batch.size_in_bytes() as u64 > limit {
            return Err(fail(format!(
                "--atomic: the input is larger than one batch may be ({MAX_BATCH_SIZE} bytes \
                 encoded); load it without --atomic, in batches"
            )));
        }
        if !args.atomic && batch.size_in_bytes() as u64 >= limit {
            apply(&db, &mut batch, &mut applied)?;
            batch_start = number + 1;
        }
        if number.is_multiple_of(TICK) {
            bar.set_position(if size.is_some() { read } else { number });
        }
    }
    apply(&db, &mut batch, &mut applied).map_err(|e| {
        if args.atomic {
            e.context("--atomic: nothing was loaded")
        } else {
            e
        }
    })?;
    db.close().context("closing the database failed")?;
    bar.finish_and_clear();

    let mut out = Out::new();
    if args.json {
        out.json(&lsmdb::server::json::batch_applied(
            applied.entries as usize,
        ))?;
    } else {
        out.line(&format!(
            "OK ({} in {})",
            kv::plural(applied.entries, "entry", "entries"),
            kv::plural(applied.batches, "batch", "batches")
        ))?;
    }
    out.flush()?;
    Ok(0)
}

fn apply(db: &lsmdb::Db, batch: &mut WriteBatch, applied: &mut Applied) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    db.write(batch)
        .with_context(|| format!("cannot apply a batch ({})", loaded_before(applied)))?;
    applied.entries += batch.len() as u64;
    applied.batches += 1;
    batch.clear();
    Ok(())
}

/// The error for a bad line `number`, saying what was applied before it and what was not.
fn not_applied(
    number: u64,
    why: &str,
    applied: &Applied,
    batch_start: u64,
    atomic: bool,
) -> anyhow::Error {
    let done = if atomic || applied.entries == 0 {
        "nothing was loaded".to_string()
    } else {
        format!(
            "{} before line {batch_start}, none from there on",
            loaded_before(applied)
        )
    };
    anyhow!("line {number}: {why}; {done}")
}

/// `1 entry was loaded`, `2 entries were loaded`.
fn loaded_before(applied: &Applied) -> String {
    let verb = if applied.entries == 1 { "was" } else { "were" };
    format!(
        "{} {verb} loaded",
        kv::plural(applied.entries, "entry", "entries")
    )
}

/// The key and value a line holds.
fn parse(text: &[u8], hex: bool) -> Result<(Vec<u8>, Vec<u8>), String> {
    let line: Line = serde_json::from_slice(text).map_err(|e| {
        // serde's message ends in "at line 1 column N": the line is ours to number.
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or_default();
        format!(
            "expected {{\"key\":..,\"value\":..}}: {message} (column {})",
            e.column()
        )
    })?;
    let key = decode(&line.key, line.key_encoding.as_deref(), hex, "key")?;
    let value = decode(&line.value, line.value_encoding.as_deref(), hex, "value")?;
    if key.is_empty() {
        return Err("the key is empty; keys must not be empty".into());
    }
    if key.len() > MAX_KEY_SIZE {
        return Err(format!(
            "the key is {} bytes, over the limit of {MAX_KEY_SIZE}",
            key.len()
        ));
    }
    if value.len() > MAX_VALUE_SIZE {
        return Err(format!(
            "the value is {} bytes, over the limit of {MAX_VALUE_SIZE}",
            value.len()
        ));
    }
    Ok((key, value))
}

/// A field's bytes, by its encoding marker (`<name>_encoding`).
fn decode(text: &str, encoding: Option<&str>, hex: bool, name: &str) -> Result<Vec<u8>, String> {
    match encoding {
        None if hex => hex::decode(text).map_err(|e| format!("{name}: {e:#}")),
        None => Ok(text.as_bytes().to_vec()),
        Some("base64") => BASE64
            .decode(text)
            .map_err(|e| format!("{name} is not base64: {e}")),
        Some("hex") => hex::decode(text).map_err(|e| format!("{name}: {e:#}")),
        Some(other) => Err(format!(
            "unknown {name}_encoding {other:?} (expected \"base64\" or \"hex\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_decode_by_their_markers() {
        let ok = |line: &str| parse(line.as_bytes(), false).unwrap();
        assert_eq!(ok(r#"{"key":"k","value":""}"#), (b"k".to_vec(), vec![]));
        assert_eq!(
            ok(r#"{"key":"/w==","key_encoding":"base64","value":"0x00FF","value_encoding":"hex"}"#),
            (b"\xff".to_vec(), b"\x00\xff".to_vec())
        );
        assert_eq!(
            parse(br#"{"key":"6B","value":"76"}"#, true).unwrap(),
            (b"k".to_vec(), b"v".to_vec())
        );
        let bad = |line: &str| parse(line.as_bytes(), false).unwrap_err();
        assert!(bad(r#"{"key":"k"}"#).contains("missing field `value`"));
        assert!(bad(r#"{"key":"","value":"v"}"#).contains("the key is empty"));
        assert!(bad(r#"{"key":"k","value":"v","valeu":"x"}"#).contains("unknown field"));
        assert!(bad(r#"{"key":"k","value":"!","value_encoding":"base64"}"#).contains("base64"));
        assert!(bad(r#"{"key":"k","value":"v","value_encoding":"rot13"}"#).contains("rot13"));
        assert!(bad("not json").contains("expected {\"key\""));
    }
}
