//! The rustyline helper: Tab completes command names and keys (read from the database or
//! the server by prefix), a grey hint shows the arguments still to type (`range a` hints `END [LIMIT]`),
//! known command names are shown bold, and Enter on an unclosed quote continues the line.
//!
//! Ctrl-C is bound to [`CancelLine`]: rustyline's own interrupt leaves the grey hint on the
//! screen as if it had been typed, so instead the line is accepted (which repaints it as
//! typed, marked `^C`) and then dropped by the reader.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hint, Hinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Cmd, ConditionalEventHandler, Context, Event, EventContext, RepeatCount};

use super::commands;
use super::target::Target;
use super::types::Expect;
use crate::words::{self, Open};

pub struct ShellHelper {
    target: Arc<Target>,
    color: bool,
    pub expect: Expect,
    /// Raised by Ctrl-C, lowered by the reader when it drops the line.
    pub cancelled: Arc<AtomicBool>,
}

impl ShellHelper {
    pub fn new(target: Arc<Target>, color: bool) -> ShellHelper {
        ShellHelper {
            target,
            color,
            expect: Expect::Command,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Keys starting with `prefix`, spelled so that the shell reads them back unchanged.
    fn keys(&self, prefix: &[u8]) -> Vec<Pair> {
        self.target
            .keys(prefix)
            .into_iter()
            .map(|key| Pair {
                display: words::quote(&key),
                replacement: format!("{} ", words::quote(&key)),
            })
            .collect()
    }

    /// What the words typed so far make the word at `index` (0 is the command) complete to.
    fn candidates(&self, words: &[words::Word], index: usize, prefix: &[u8]) -> Vec<Pair> {
        if self.expect == Expect::BatchEntry {
            return if index == 0 {
                self.keys(prefix)
            } else {
                Vec::new()
            };
        }
        let prefix_text = String::from_utf8_lossy(prefix).to_ascii_lowercase();
        let from = |options: &mut dyn Iterator<Item = &'static str>| -> Vec<Pair> {
            options
                .filter(|o| o.starts_with(&prefix_text))
                .map(|o| Pair {
                    display: o.to_string(),
                    replacement: format!("{o} "),
                })
                .collect()
        };
        if index == 0 {
            return from(&mut commands::names());
        }
        let name = String::from_utf8_lossy(&words[0].bytes);
        let Some(spec) = commands::find(&name) else {
            return Vec::new();
        };
        match (spec.name, index) {
            ("help", 1) => from(&mut commands::COMMANDS.iter().map(|s| s.name)),
            ("timer", 1) => from(&mut ["on", "off"].into_iter()),
            ("mode", 1) => from(&mut ["text", "json", "raw"].into_iter()),
            _ if spec.key_args.contains(&(index - 1)) => self.keys(prefix),
            _ => Vec::new(),
        }
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let lexed = words::lex(&line[..pos]);
        // The word under the cursor is replaced whole, its opening quote included.
        let (index, start, prefix) = match lexed.words.last() {
            Some(last) if lexed.ends_in_word => {
                (lexed.words.len() - 1, last.start, last.bytes.clone())
            }
            _ => (lexed.words.len(), pos, Vec::new()),
        };
        Ok((start, self.candidates(&lexed.words, index, &prefix)))
    }
}

/// Argument syntax shown after the cursor; never inserted into the line.
pub struct ArgHint(String);

impl Hint for ArgHint {
    fn display(&self) -> &str {
        &self.0
    }

    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for ShellHelper {
    type Hint = ArgHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<ArgHint> {
        if pos < line.len() {
            return None;
        }
        let lexed = words::lex(line);
        if lexed.open != Open::Nothing {
            return None;
        }
        if self.expect == Expect::BatchEntry {
            return line
                .is_empty()
                .then(|| ArgHint("KEY VALUE (a blank line applies the batch)".into()));
        }
        let first = lexed.words.first()?;
        let spec = commands::find(std::str::from_utf8(&first.bytes).ok()?)?;
        let typed = lexed.words.len() - 1;
        let rest: Vec<&str> = spec.args.split_whitespace().skip(typed).collect();
        if rest.is_empty() {
            return None;
        }
        let space = if lexed.ends_in_word { " " } else { "" };
        Some(ArgHint(format!("{space}{}", rest.join(" "))))
    }
}

impl Highlighter for ShellHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.color {
            Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }

    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if !self.color || self.expect == Expect::BatchEntry {
            return Cow::Borrowed(line);
        }
        let start = line.len() - line.trim_start().len();
        let end = line[start..]
            .find(char::is_whitespace)
            .map_or(line.len(), |i| start + i);
        if commands::find(&line[start..end]).is_none() {
            return Cow::Borrowed(line);
        }
        Cow::Owned(format!(
            "{}\x1b[1m{}\x1b[0m{}",
            &line[..start],
            &line[start..end],
            &line[end..]
        ))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        // The command word turns bold once it is complete, so every keystroke may change it.
        self.color
    }
}

impl Validator for ShellHelper {
    fn validate(&self, ctx: &mut ValidationContext<'_>) -> rustyline::Result<ValidationResult> {
        if self.cancelled.load(Ordering::Relaxed) {
            return Ok(ValidationResult::Valid(Some("^C".into())));
        }
        Ok(match words::lex(ctx.input()).open {
            Open::Nothing => ValidationResult::Valid(None),
            _ => ValidationResult::Incomplete,
        })
    }
}

impl rustyline::Helper for ShellHelper {}

/// Ctrl-C: accept the line (even inside an open quote) with the cancel flag raised.
pub struct CancelLine(pub Arc<AtomicBool>);

impl ConditionalEventHandler for CancelLine {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext<'_>) -> Option<Cmd> {
        self.0.store(true, Ordering::Relaxed);
        Some(Cmd::AcceptLine)
    }
}
