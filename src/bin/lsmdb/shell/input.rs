//! Where command lines come from: a terminal, edited with rustyline and with history kept
//! across runs; or a script on stdin, read as it is with no prompt. Both hand back whole
//! logical lines: a line that ends inside a quote continues on the next one, so a value can
//! hold newlines.

use std::collections::VecDeque;
use std::io::{self, BufRead, StdinLock};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::Context;
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Editor, EventHandler, KeyEvent};

use super::complete::{CancelLine, ShellHelper};
use super::target::Target;
use super::types::Expect;
use crate::words::{self, Open};

pub enum Line {
    Text(String),
    /// Ctrl-C: the line being typed was dropped.
    Interrupted,
    /// Ctrl-D, or the end of the script.
    Eof,
    /// A script line that cannot be a command (not UTF-8).
    Unreadable(String),
}

pub trait Input {
    fn read(&mut self, prompt: &str, expect: Expect) -> anyhow::Result<Line>;
    fn clear_screen(&mut self) -> anyhow::Result<()>;
    /// The number of the first physical line of the last line read, for a script's errors.
    fn line_number(&self) -> Option<usize>;
}

/// Where history lives: `$LSMDB_HISTFILE`, else `~/.lsmdb_history`. An empty
/// `LSMDB_HISTFILE` turns history files off.
pub fn history_path() -> Option<PathBuf> {
    match std::env::var_os("LSMDB_HISTFILE") {
        Some(path) if path.is_empty() => None,
        Some(path) => Some(PathBuf::from(path)),
        None => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".lsmdb_history")),
    }
}

pub struct Tty {
    editor: Editor<ShellHelper, DefaultHistory>,
    /// The lines after the first of a multi-line paste, still to run.
    pending: VecDeque<String>,
    history: Option<PathBuf>,
    color: bool,
}

impl Tty {
    pub fn new(target: Arc<Target>, color: bool) -> anyhow::Result<Tty> {
        let config = Config::builder()
            .max_history_size(1000)?
            .history_ignore_dups(true)?
            // As in bash: a line typed with a leading space (a secret value, say) is not kept.
            .history_ignore_space(true)
            .completion_type(CompletionType::List)
            .build();
        let mut editor =
            Editor::with_config(config).context("cannot set up the terminal for editing")?;
        let helper = ShellHelper::new(target, color);
        let cancel = CancelLine(Arc::clone(&helper.cancelled));
        editor.bind_sequence(
            KeyEvent::ctrl('c'),
            EventHandler::Conditional(Box::new(cancel)),
        );
        editor.set_helper(Some(helper));
        let history = history_path();
        if let Some(path) = history.as_ref().filter(|p| p.exists())
            && let Err(e) = editor.load_history(path)
        {
            eprintln!("warning: cannot read history from {}: {e}", path.display());
        }
        Ok(Tty {
            editor,
            pending: VecDeque::new(),
            history,
            color,
        })
    }

    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || !self.editor.add_history_entry(line).unwrap_or(false) {
            return;
        }
        // Saved after every line, as redis-cli does, so a killed shell keeps its history.
        if let Some(path) = &self.history
            && let Err(e) = self.editor.append_history(path)
        {
            eprintln!("warning: cannot save history to {}: {e}", path.display());
            self.history = None;
        }
    }
}

impl Input for Tty {
    fn read(&mut self, prompt: &str, expect: Expect) -> anyhow::Result<Line> {
        if let Some(line) = self.pending.pop_front() {
            return Ok(Line::Text(line));
        }
        if let Some(helper) = self.editor.helper_mut() {
            helper.expect = expect;
        }
        let styled = if self.color {
            format!("\x1b[1m{prompt}\x1b[0m")
        } else {
            prompt.to_string()
        };
        let result = self.editor.readline(&(prompt, styled.as_str()));
        let cancelled = self
            .editor
            .helper()
            .is_some_and(|h| h.cancelled.swap(false, Ordering::Relaxed));
        match result {
            Ok(_) if cancelled => Ok(Line::Interrupted),
            Ok(text) => {
                let mut lines = words::logical_lines(&text).into_iter();
                let first = lines.next().unwrap_or_default();
                self.pending.extend(lines);
                self.remember(&first);
                for line in self.pending.clone() {
                    self.remember(&line);
                }
                Ok(Line::Text(first))
            }
            Err(ReadlineError::Interrupted) => Ok(Line::Interrupted),
            Err(ReadlineError::Eof) => Ok(Line::Eof),
            Err(e) => Err(e).context("cannot read from the terminal"),
        }
    }

    fn clear_screen(&mut self) -> anyhow::Result<()> {
        self.editor
            .clear_screen()
            .context("cannot clear the screen")
    }

    fn line_number(&self) -> Option<usize> {
        None
    }
}

pub struct Script {
    stdin: StdinLock<'static>,
    lines_read: usize,
    first_line: usize,
}

impl Script {
    pub fn new() -> Script {
        Script {
            stdin: io::stdin().lock(),
            lines_read: 0,
            first_line: 0,
        }
    }
}

impl Input for Script {
    fn read(&mut self, _prompt: &str, _expect: Expect) -> anyhow::Result<Line> {
        let mut text = String::new();
        let mut buf = Vec::new();
        self.first_line = self.lines_read + 1;
        loop {
            buf.clear();
            if self
                .stdin
                .read_until(b'\n', &mut buf)
                .context("cannot read stdin")?
                == 0
            {
                // An unclosed quote at the end of the script is left for the parser to report.
                let started = self.lines_read >= self.first_line;
                return Ok(if started { Line::Text(text) } else { Line::Eof });
            }
            self.lines_read += 1;
            let physical = buf.strip_suffix(b"\n").unwrap_or(&buf);
            let physical = physical.strip_suffix(b"\r").unwrap_or(physical);
            let Ok(physical) = std::str::from_utf8(physical) else {
                return Ok(Line::Unreadable("the line is not valid UTF-8".into()));
            };
            if self.lines_read > self.first_line {
                text.push('\n');
            }
            text.push_str(physical);
            if words::lex(&text).open == Open::Nothing {
                return Ok(Line::Text(text));
            }
        }
    }

    fn clear_screen(&mut self) -> anyhow::Result<()> {
        Ok(())
    }

    fn line_number(&self) -> Option<usize> {
        Some(self.first_line)
    }
}
