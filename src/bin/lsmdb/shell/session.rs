//! One target (an open database, or a server) and the settings a session changes (`.mode`,
//! `.timer`), and what each command does to them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow};

use super::commands::{self, Command};
use super::input::{Input, Line};
use super::render::Printer;
use super::target::Target;
use super::types::{Expect, Failure};
use crate::{text, words};

/// What the loop does after a command.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Exit,
}

pub struct Session {
    pub target: Arc<Target>,
    pub printer: Printer,
    pub timer: bool,
    pub interactive: bool,
    /// Raised by Ctrl-C while a command runs (the terminal is not in raw mode then).
    pub interrupted: Arc<AtomicBool>,
    /// When the running command started; an inline batch restarts it once its lines are
    /// typed, so that the timer measures the database and not the typist.
    pub started: Instant,
    prompt: String,
}

impl Session {
    pub fn new(target: Target, printer: Printer, interactive: bool, dir: &str) -> Session {
        let read_only = match target.read_only_reason() {
            Some(_) => "(read-only)",
            None => "",
        };
        let prompt = format!("{}{read_only}", target.name(dir));
        Session {
            target: Arc::new(target),
            printer,
            timer: false,
            interactive,
            interrupted: Arc::new(AtomicBool::new(false)),
            started: Instant::now(),
            prompt,
        }
    }

    /// Closes the database, reporting what `Drop` could not. Every other handle (the
    /// completer's) must be gone by now.
    pub fn close(self) -> anyhow::Result<()> {
        match Arc::try_unwrap(self.target) {
            Ok(target) => target.close(),
            Err(_) => Err(anyhow!(
                "the database is still in use and was not closed cleanly"
            )),
        }
    }

    pub fn prompt(&self, expect: Expect) -> String {
        match expect {
            Expect::Command => format!("{}> ", self.prompt),
            Expect::BatchEntry => format!("{}(batch)> ", self.prompt),
        }
    }

    /// Why writes are refused, when they are.
    pub fn read_only_reason(&self) -> Option<String> {
        self.target.read_only_reason()
    }

    pub fn execute(&mut self, command: Command, input: &mut dyn Input) -> Result<Flow, Failure> {
        self.interrupted.store(false, Ordering::Relaxed);
        match command {
            Command::Get(key) => {
                let value = self.target.get(&key)?;
                self.printer.value(&key, value.as_deref())?;
            }
            Command::Put(key, value) => {
                self.target.put(&key, &value)?;
                self.printer.ok()?;
            }
            Command::Delete(key) => {
                let existed = self.target.delete(&key)?;
                self.printer.deleted(existed)?;
            }
            Command::Range { start, end, limit } => {
                let iter = self.target.range(&start, end.as_deref())?;
                let limit = limit.unwrap_or(usize::MAX);
                self.printer.entries(iter.take(limit), &self.interrupted)?;
            }
            Command::BatchFile(path) => {
                let input = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let entries = text::parse_batch(&input)
                    .map_err(|e| anyhow!("bad batch in {}: {e}", path.display()))?;
                self.apply(&entries)?;
            }
            Command::BatchLines => return self.batch_lines(input),
            Command::Stats => self.printer.stats(&self.target.stats()?)?,
            Command::Help(topic) => {
                let lines = commands::help(topic.as_deref())?;
                self.printer.lines(&lines)?;
            }
            Command::Timer(on) => self.timer = on,
            Command::Mode(mode) => self.printer.mode = mode,
            Command::Clear => input.clear_screen()?,
            Command::Exit => return Ok(Flow::Exit),
        }
        Ok(Flow::Continue)
    }

    fn apply(&mut self, entries: &text::Entries) -> Result<(), Failure> {
        self.target.write(entries)?;
        self.printer.batch(entries.len())?;
        Ok(())
    }

    /// Reads `KEY VALUE` lines up to a blank one and applies them as one batch. At a
    /// terminal a bad line is reported and the batch stays open; in a script it fails the
    /// whole batch, since applying the rest would not be what the script says.
    fn batch_lines(&mut self, input: &mut dyn Input) -> Result<Flow, Failure> {
        if self.interactive
            && let Some(reason) = self.read_only_reason()
        {
            return Err(
                anyhow!("cannot start a batch: the database is open read-only ({reason})").into(),
            );
        }
        let mut entries = Vec::new();
        let mut bad = None;
        let prompt = self.prompt(Expect::BatchEntry);
        loop {
            let line = match input.read(&prompt, Expect::BatchEntry)? {
                Line::Text(line) if line.trim().is_empty() => break,
                Line::Text(line) => line,
                Line::Eof if !self.interactive => break,
                // At a terminal, as sqlite does with an open transaction: leaving discards.
                // Nothing ran, so the clock restarts: the time spent typing is not a timing.
                Line::Eof => {
                    self.started = Instant::now();
                    self.printer.note("(batch discarded)")?;
                    return Ok(Flow::Exit);
                }
                Line::Interrupted => {
                    self.started = Instant::now();
                    self.printer.note("(batch discarded)")?;
                    return Ok(Flow::Continue);
                }
                Line::Unreadable(why) => {
                    bad.get_or_insert_with(|| at(input, &why));
                    continue;
                }
            };
            match entry(&line) {
                Ok(e) => entries.push(e),
                Err(why) if self.interactive => {
                    self.printer
                        .error(&format!("{why}; the line was skipped"))?;
                }
                Err(why) => {
                    bad.get_or_insert_with(|| at(input, &why));
                }
            }
        }
        self.started = Instant::now();
        if let Some(why) = bad {
            return Err(anyhow!("batch not applied: {why}").into());
        }
        self.apply(&entries)?;
        Ok(Flow::Continue)
    }
}

fn at(input: &dyn Input, why: &str) -> String {
    match input.line_number() {
        Some(n) => format!("line {n}: {why}"),
        None => why.to_string(),
    }
}

/// One `KEY VALUE` line of an inline batch.
fn entry(line: &str) -> Result<(Vec<u8>, Option<Vec<u8>>), String> {
    let mut words = words::split(line)?;
    if words.len() != 2 {
        return Err(format!(
            "expected KEY VALUE, got {} word{}",
            words.len(),
            if words.len() == 1 { "" } else { "s" }
        ));
    }
    let value = words.pop().unwrap_or_default();
    let key = words.pop().unwrap_or_default();
    if key.is_empty() {
        return Err("the key must not be empty".into());
    }
    Ok((key, Some(value)))
}
