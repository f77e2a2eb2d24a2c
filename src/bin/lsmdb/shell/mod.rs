//! `lsmdb shell`: an interactive session on one database, after redis-cli and the sqlite3
//! shell. At a terminal it shows a banner, edits lines, keeps history, completes commands and
//! keys, and quotes replies. With stdin from a pipe or a file it runs a script: no prompt, no
//! banner, no colour, raw replies, and an exit status that says whether any command failed.

mod commands;
mod complete;
mod input;
mod render;
mod session;
mod target;
mod types;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;

use crate::cli::{EXIT_ERROR, Globals};
use crate::client::ServerArgs;
use crate::words;
use input::{Input, Line, Script, Tty};
use render::Printer;
use session::{Flow, Session};
use types::{Expect, Failure, Mode};

/// A command slower than this shows its time even with the timer off, as in redis-cli.
const SLOW: Duration = Duration::from_millis(500);

#[derive(Args, Debug)]
#[command(
    about = "Open an interactive shell on the database (or run a script from stdin)",
    after_help = "At a terminal: line editing, Tab completion of commands and keys, and history kept\n\
                  in ~/.lsmdb_history (LSMDB_HISTFILE overrides; empty turns it off). Type \"help\".\n\
                  With stdin from a file or pipe, each line is a command; the exit status is 2 if\n\
                  any command failed. If another process holds the write lock, the shell opens\n\
                  the database read-only; --connect talks to the server instead, and can write.\n\n\
                  Examples:\n  lsmdb shell\n  printf 'put a 1\\nget a\\n' | lsmdb shell\n  lsmdb shell --bail < setup.txt\n  \
                  lsmdb shell --connect http://127.0.0.1:8080   # token from LSMDB_TOKEN"
)]
pub struct ShellArgs {
    /// Stop at the first failed command (exit status 2), as sqlite3's .bail does.
    #[arg(long, short = 'e')]
    pub bail: bool,
    /// Print values as they are even at a terminal (the default when stdout is not one).
    #[arg(long, conflicts_with = "no_raw")]
    pub raw: bool,
    /// Print quoted, aligned replies even when stdout is not a terminal.
    #[arg(long)]
    pub no_raw: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Default)]
struct Outcome {
    failures: usize,
    bailed: bool,
}

pub fn run(globals: &Globals, args: &ShellArgs) -> anyhow::Result<u8> {
    let interactive = io::stdin().is_terminal();
    let to_terminal = io::stdout().is_terminal();
    let target = target::open(&args.server, globals)?;
    let color = interactive && to_terminal && color_wanted();
    let mode = match (args.raw, args.no_raw) {
        (true, _) => Mode::Raw,
        (_, true) => Mode::Text,
        _ if interactive && to_terminal => Mode::Text,
        _ => Mode::Raw,
    };
    let dir = globals.dir.display().to_string();
    let place = match &args.server.connect {
        Some(_) => target.name(&dir),
        None => dir.clone(),
    };
    let mut session = Session::new(target, Printer::new(mode, color), interactive, &dir);

    let outcome = if interactive {
        // While a command runs the terminal is not in raw mode, so Ctrl-C is a signal; it
        // stops the command instead of the shell.
        signal_hook::flag::register(
            signal_hook::consts::SIGINT,
            Arc::clone(&session.interrupted),
        )
        .context("cannot handle Ctrl-C")?;
        let mut tty = Tty::new(Arc::clone(&session.target), color)?;
        banner(&mut session, &place)?;
        repl(&mut session, &mut tty, args.bail)
        // `tty` (and the handle its completer holds) is dropped here, before close.
    } else {
        repl(&mut session, &mut Script::new(), args.bail)
    };
    let closed = session.close();
    let outcome = outcome?;
    closed?;
    let failed = outcome.bailed || (!interactive && outcome.failures > 0);
    Ok(if failed { EXIT_ERROR } else { 0 })
}

fn color_wanted() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

fn banner(session: &mut Session, place: &str) -> io::Result<()> {
    let version = format!("lsmdb {} shell on {place}", env!("CARGO_PKG_VERSION"));
    session.printer.line(&version)?;
    if let Some(reason) = session.read_only_reason() {
        // A read-only handle does not follow the writer: say so, or a user waits in vain
        // for the writer's new keys to show up.
        for warning in [
            format!("Opened read-only: {reason}."),
            "Reads see the data as it was when the shell started; put, delete and batch are refused."
                .to_string(),
        ] {
            let warning = session.printer.paint("33", &warning);
            session.printer.line(&warning)?;
        }
    }
    session.printer.line("Type \"help\" for usage hints.")?;
    session.printer.flush()
}

/// Reads and runs commands until `exit`, the end of input, or (with `bail`) a failure.
fn repl(session: &mut Session, input: &mut dyn Input, bail: bool) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    loop {
        let command = match input.read(&session.prompt(Expect::Command), Expect::Command)? {
            // A script may carry comments, as a shell script does.
            Line::Text(text) if text.trim_start().starts_with('#') => continue,
            Line::Text(text) => {
                words::split(&text).and_then(|w| commands::parse(w).map_err(|u| u.to_string()))
            }
            Line::Interrupted => continue,
            Line::Eof => break,
            Line::Unreadable(why) => Err(why),
        };
        // Taken before a batch reads its lines, so that an error names the command's line.
        let line_number = input.line_number();
        session.started = Instant::now();
        let mut timed = false;
        let result = match command {
            Ok(None) => continue,
            Ok(Some(command)) => {
                timed = command.touches_data();
                session.execute(command, input)
            }
            Err(why) => Err(Failure::Command(anyhow!(why))),
        };
        let flow = match result {
            Ok(flow) => flow,
            Err(Failure::Output(e)) => return Err(e.into()),
            Err(Failure::Command(e)) => {
                let message = match line_number {
                    Some(n) => format!("line {n}: {}", crate::output::error_line(&e)),
                    None => crate::output::error_line(&e),
                };
                session.printer.error(&message)?;
                outcome.failures += 1;
                outcome.bailed = bail;
                if bail {
                    break;
                }
                Flow::Continue
            }
        };
        session.printer.flush()?;
        let elapsed = session.started.elapsed();
        if timed && (session.timer || (session.interactive && elapsed >= SLOW)) {
            session.printer.timing(elapsed)?;
        }
        if flow == Flow::Exit {
            break;
        }
    }
    session.printer.flush()?;
    Ok(outcome)
}
