//! What every command gets besides its own arguments: the global options (`--db`, `--sync`),
//! resolved once in `main`, and the exit statuses. Command modules take these from here, so
//! none of them depends on `main`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use lsmdb::{Db, Options, SyncMode};

/// Exit status for "not found" (as grep does for "no match").
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit status for errors, usage errors included (as clap does).
pub const EXIT_ERROR: u8 = 2;

/// The global options as clap reads them.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Database directory (created on first write).
    #[arg(
        long,
        global = true,
        env = "LSMDB_DIR",
        default_value = "./data",
        value_name = "DIR"
    )]
    db: PathBuf,

    /// When writes reach the disk: "always" syncs before acknowledging (default), "none"
    /// leaves it to the OS. A bare `--sync` means "always" (as db_bench's `--sync`).
    #[arg(long, global = true, value_name = "MODE", default_value = "always",
          value_parser = PossibleValuesParser::new(["always", "none"]).try_map(|s| s.parse::<SyncMode>()),
          num_args = 0..=1, default_missing_value = "always")]
    sync: SyncMode,
}

impl GlobalArgs {
    /// The options with what `matches` knows of where each came from.
    pub fn resolve(self, matches: &ArgMatches) -> Globals {
        Globals {
            dir_typed: typed(matches, "db"),
            sync_typed: typed(matches, "sync"),
            dir: self.db,
            sync: self.sync,
        }
    }
}

/// Whether a global option was typed on the command line, rather than defaulted or taken
/// from the environment. A global option typed after the subcommand is recorded there.
fn typed(matches: &ArgMatches, id: &str) -> bool {
    let here = |m: &ArgMatches| m.value_source(id) == Some(ValueSource::CommandLine);
    here(matches) || matches.subcommand().is_some_and(|(_, sub)| here(sub))
}

/// The global options, resolved.
#[derive(Debug)]
pub struct Globals {
    pub dir: PathBuf,
    pub sync: SyncMode,
    dir_typed: bool,
    sync_typed: bool,
}

impl Globals {
    /// `--db DIR` if it was typed: never the default `./data` nor `LSMDB_DIR`.
    pub fn typed_dir(&self) -> Option<&Path> {
        self.dir_typed.then_some(self.dir.as_path())
    }

    /// `--sync MODE` if it was typed, rather than the default.
    pub fn typed_sync(&self) -> Option<SyncMode> {
        self.sync_typed.then_some(self.sync)
    }

    /// Engine options from the global flags.
    pub fn options(&self) -> Options {
        Options::default().sync(self.sync)
    }

    /// The options for a command that works on a database that must exist already.
    pub fn existing_options(&self) -> Options {
        self.options().create_if_missing(false)
    }

    /// Opens the database for writing; a directory locked by another writer is an error
    /// that names the lock and its holder.
    pub fn open_writer(&self) -> anyhow::Result<Db> {
        Db::open(&self.dir, self.options())
            .with_context(|| format!("cannot open database {} for writing", self.dir.display()))
    }

    /// Opens the database for reading beside whatever writer may hold it.
    pub fn open_reader(&self) -> anyhow::Result<Db> {
        Db::open_read_only(&self.dir, self.existing_options())
            .with_context(|| format!("cannot open database {} for reading", self.dir.display()))
    }
}
