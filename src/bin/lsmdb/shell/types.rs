//! The types the shell's parts hand one another: how replies look ([`Mode`]), what the next
//! line is expected to be ([`Expect`]), and why a command did not complete ([`Failure`]).
//! They live here, apart from the code that makes and reads them, so that the shell's
//! modules depend on one another in one direction only: `types` at the bottom (with
//! `crate::words`, the lexer and quoting the shell shares with `lsmdb range`), then `commands`, `complete`, `input`, `render`, `session`, and `mod` on top.

use std::io;
use std::str::FromStr;

/// How replies look: `text` for a person, `raw` for scripts, `json` the HTTP API's shapes
/// (`render` prints each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Text,
    Json,
    Raw,
}

impl FromStr for Mode {
    type Err = ();
    fn from_str(s: &str) -> Result<Mode, ()> {
        match s {
            "text" => Ok(Mode::Text),
            "json" => Ok(Mode::Json),
            "raw" => Ok(Mode::Raw),
            _ => Err(()),
        }
    }
}

/// What the next line is expected to be, which changes completion and hints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Command,
    BatchEntry,
}

/// Why a command did not complete. A `Command` failure is reported and the session goes on;
/// an `Output` failure (stdout closed or full) ends it, since nothing more can be shown.
#[derive(Debug)]
pub enum Failure {
    Command(anyhow::Error),
    Output(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Output(e)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Command(e)
    }
}
