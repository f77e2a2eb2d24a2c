//! How replies look. `text` is for a person at a terminal, after redis-cli: values quoted
//! (spelled as the shell reads them back, `crate::words::quoted`), `(nil)`, `(integer) 1`,
//! ranges as aligned rows with a count. `raw` is for scripts and matches the one-shot CLI:
//! values as they are, ranges as `KEY<TAB>VALUE` lines with each spelled as a word.
//! `json` prints the HTTP API's shapes, as the CLI's `--json` does.
//!
//! Replies go to stdout; errors, notes and timings to stderr, so that a script's output holds
//! only data.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lsmdb::server::json;

use super::types::{Failure, Mode};
use crate::kv;
use crate::output::Out;
use crate::words::{quote, quoted};

/// Rows aligned together; a longer range is printed in blocks of this many, so that memory
/// stays bounded however many keys it spans.
const ALIGN_BLOCK: usize = 500;

pub struct Printer {
    out: Out,
    pub mode: Mode,
    color: bool,
}

impl Printer {
    pub fn new(mode: Mode, color: bool) -> Printer {
        Printer {
            out: Out::new(),
            mode,
            color,
        }
    }

    /// A successful write with nothing to show (`put`).
    pub fn ok(&mut self) -> io::Result<()> {
        match self.mode {
            Mode::Json => self.json(&json::success()),
            Mode::Text | Mode::Raw => self.line("OK"),
        }
    }

    pub fn value(&mut self, key: &[u8], value: Option<&[u8]>) -> io::Result<()> {
        match (self.mode, value) {
            (Mode::Json, _) => self.json(&json::key_value(key, value)),
            (Mode::Text, Some(v)) => self.line(&quoted(v)),
            (Mode::Text, None) => self.line("(nil)"),
            // As redis-cli --raw does: a missing key is an empty line, keeping one line per
            // command. `.mode json` tells a missing key from an empty value.
            (Mode::Raw, v) => {
                self.out.bytes(v.unwrap_or_default())?;
                self.out.bytes(b"\n")
            }
        }
    }

    pub fn deleted(&mut self, existed: bool) -> io::Result<()> {
        let n = u8::from(existed);
        match self.mode {
            Mode::Json => self.json(&json::deleted(existed)),
            Mode::Text => self.line(&format!("(integer) {n}")),
            Mode::Raw => self.line(&n.to_string()),
        }
    }

    pub fn batch(&mut self, count: usize) -> io::Result<()> {
        match self.mode {
            Mode::Json => self.json(&json::batch_applied(count)),
            Mode::Text | Mode::Raw => self.line(&format!("OK ({count} operations)")),
        }
    }

    pub fn stats(&mut self, stats: &lsmdb::Stats) -> io::Result<()> {
        match self.mode {
            Mode::Json => self.json(&serde_json::to_value(stats)?),
            Mode::Text | Mode::Raw => {
                for line in kv::stats_table(stats) {
                    self.line(&line)?;
                }
                Ok(())
            }
        }
    }

    /// Prints a range as it is read, stopping early when `stop` is raised (Ctrl-C).
    /// Returns how many entries were printed.
    pub fn entries(
        &mut self,
        entries: impl Iterator<Item = anyhow::Result<(Vec<u8>, Vec<u8>)>>,
        stop: &AtomicBool,
    ) -> Result<usize, Failure> {
        let mut count = 0;
        let mut block = Vec::new();
        if self.mode == Mode::Json {
            self.out.bytes(b"{\"results\":[")?;
        }
        for entry in entries {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let (key, value) = entry.map_err(Failure::Command)?;
            match self.mode {
                Mode::Json => {
                    if count > 0 {
                        self.out.bytes(b",")?;
                    }
                    let item = json::key_value(&key, Some(&value));
                    self.out.json_part(&item)?;
                }
                Mode::Raw => self.line(&format!("{}\t{}", quote(&key), quote(&value)))?,
                Mode::Text => {
                    block.push((quoted(&key), quoted(&value)));
                    if block.len() == ALIGN_BLOCK {
                        self.aligned(&mut block)?;
                    }
                }
            }
            count += 1;
        }
        let interrupted = stop.load(Ordering::Relaxed);
        let noun = if count == 1 { "entry" } else { "entries" };
        match self.mode {
            Mode::Json => self.out.bytes(b"]}\n")?,
            Mode::Raw => {}
            Mode::Text => {
                self.aligned(&mut block)?;
                let how = if interrupted { ", interrupted" } else { "" };
                self.line(&format!("({count} {noun}{how})"))?;
            }
        }
        if interrupted && self.mode != Mode::Text {
            self.note(&format!("(interrupted after {count} {noun})"))?;
        }
        Ok(count)
    }

    fn aligned(&mut self, rows: &mut Vec<(String, String)>) -> io::Result<()> {
        let width = rows.iter().map(|(k, _)| k.chars().count()).max();
        for (key, value) in rows.drain(..) {
            let pad = width.unwrap_or(0) - key.chars().count();
            self.line(&format!("{key}{:pad$}  {value}", ""))?;
        }
        Ok(())
    }

    /// Lines of text that are the reply itself (`help`).
    pub fn lines(&mut self, lines: &[String]) -> io::Result<()> {
        lines.iter().try_for_each(|l| self.line(l))
    }

    /// A failed command, as redis-cli shows one.
    pub fn error(&mut self, message: &str) -> io::Result<()> {
        let label = self.paint("31", "(error)");
        self.note(&format!("{label} {message}"))
    }

    pub fn timing(&mut self, elapsed: Duration) -> io::Result<()> {
        let secs = elapsed.as_secs_f64();
        let text = if secs < 1.0 {
            format!("({:.3} ms)", secs * 1000.0)
        } else {
            format!("({secs:.2} s)")
        };
        let text = self.paint("2", &text);
        self.note(&text)
    }

    /// A line about the session rather than the data, on stderr after any pending reply.
    pub fn note(&mut self, text: &str) -> io::Result<()> {
        self.out.flush()?;
        let mut err = io::stderr().lock();
        writeln!(err, "{text}")?;
        err.flush()
    }

    /// Wraps `text` in an SGR colour when colour is on.
    pub fn paint(&self, sgr: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn line(&mut self, s: &str) -> io::Result<()> {
        self.out.line(s)
    }

    fn json(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        self.out.json(value)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
