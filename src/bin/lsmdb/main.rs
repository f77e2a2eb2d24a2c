//! `lsmdb`: the command-line front end of the lsmdb engine. It parses arguments, opens the
//! engine, and prints; everything else lives in the library.
//!
//! Exit status: 0 on success, 1 when `get` finds no key, 2 on any error (usage included).

mod admin;
mod bench;
mod format;
mod kv;
mod output;
mod serve;
mod shell;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for "not found" (as grep does for "no match").
pub const EXIT_NOT_FOUND: u8 = 1;
/// Exit status for errors, usage errors included (as clap does).
pub const EXIT_ERROR: u8 = 2;

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 key not found (get), 2 error.

Examples:
  lsmdb put user:1 Ada
  lsmdb get user:1
  lsmdb range user: user;          # every key starting with \"user:\"
  lsmdb --db /var/lib/lsmdb serve  # serve the HTTP API on 127.0.0.1:8080";

#[derive(Parser, Debug)]
#[command(name = "lsmdb", version, about = "An embeddable LSM-tree key-value store", after_help = AFTER_HELP)]
pub struct Cli {
    /// Database directory (created on first write).
    #[arg(
        long,
        global = true,
        env = "LSMDB_DIR",
        default_value = "./data",
        value_name = "DIR"
    )]
    pub db: PathBuf,

    /// When writes reach the disk: "always" syncs before acknowledging (default), "none"
    /// leaves it to the OS. A bare `--sync` means "always" (as db_bench's `--sync`).
    #[arg(long, global = true, value_name = "MODE", default_value = "always", value_parser = ["always", "none"],
          num_args = 0..=1, default_missing_value = "always")]
    pub sync: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Put(kv::PutArgs),
    Get(kv::GetArgs),
    #[command(visible_alias = "del")]
    Delete(kv::DeleteArgs),
    #[command(visible_alias = "scan")]
    Range(kv::RangeArgs),
    Batch(kv::BatchArgs),
    Stats(kv::StatsArgs),
    Compact(kv::CompactArgs),
    Shell(shell::ShellArgs),
    Bench(bench::BenchArgs),
    Serve(serve::ServeArgs),
    Check(admin::CheckArgs),
    Repair(admin::RepairArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Put(args) => kv::put(&cli, args),
        Command::Get(args) => kv::get(&cli, args),
        Command::Delete(args) => kv::delete(&cli, args),
        Command::Range(args) => kv::range(&cli, args),
        Command::Batch(args) => kv::batch(&cli, args),
        Command::Stats(args) => kv::stats(&cli, args),
        Command::Compact(args) => kv::compact(&cli, args),
        Command::Shell(args) => shell::run(&cli, args),
        Command::Bench(args) => bench::bench(&cli, args),
        Command::Serve(args) => serve::run(args, &cli.db, || cli.open_writer()),
        Command::Check(args) => admin::check(&cli, args),
        Command::Repair(args) => admin::repair(&cli, args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", output::error_line(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

impl Cli {
    /// Engine options from the global flags.
    pub fn options(&self) -> anyhow::Result<lsmdb::Options> {
        Ok(lsmdb::Options::default().sync(self.sync.parse()?))
    }

    /// Opens the database for writing; a directory locked by another writer is an error
    /// that names the lock and its holder.
    pub fn open_writer(&self) -> anyhow::Result<lsmdb::Db> {
        use anyhow::Context;
        lsmdb::Db::open(&self.db, self.options()?)
            .with_context(|| format!("cannot open database {} for writing", self.db.display()))
    }

    /// Opens the database for reading beside whatever writer may hold it.
    pub fn open_reader(&self) -> anyhow::Result<lsmdb::Db> {
        use anyhow::Context;
        let opts = self.options()?.create_if_missing(false);
        lsmdb::Db::open_read_only(&self.db, opts)
            .with_context(|| format!("cannot open database {} for reading", self.db.display()))
    }
}
