//! `lsmdb`: the command-line front end of the lsmdb engine. It parses arguments, opens the
//! engine, and prints; everything else lives in the library.
//!
//! Exit status: 0 on success, 1 when `get` finds no key, 2 on any error (usage included).

mod admin;
mod bench;
mod cli;
mod cluster;
mod kv;
mod output;
mod serve;
mod shell;
mod text;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cli::{EXIT_ERROR, GlobalArgs, Globals};

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 key not found (get), 2 error.

Examples:
  lsmdb put user:1 Ada
  lsmdb get user:1
  lsmdb range user: user;          # every key starting with \"user:\"
  lsmdb --db /var/lib/lsmdb serve  # serve the HTTP API on 127.0.0.1:8080";

#[derive(Parser, Debug)]
#[command(name = "lsmdb", version, about = "An embeddable LSM-tree key-value store", after_help = AFTER_HELP)]
struct Cli {
    #[command(flatten)]
    globals: GlobalArgs,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    Cluster(cluster::ClusterArgs),
    Check(admin::CheckArgs),
    Repair(admin::RepairArgs),
}

fn main() -> ExitCode {
    let (command, globals) = parse();
    let result = match &command {
        Command::Put(args) => kv::put(&globals, args),
        Command::Get(args) => kv::get(&globals, args),
        Command::Delete(args) => kv::delete(&globals, args),
        Command::Range(args) => kv::range(&globals, args),
        Command::Batch(args) => kv::batch(&globals, args),
        Command::Stats(args) => kv::stats(&globals, args),
        Command::Compact(args) => kv::compact(&globals, args),
        Command::Shell(args) => shell::run(&globals, args),
        Command::Bench(args) => bench::bench(globals.typed_dir(), globals.typed_sync(), args),
        Command::Serve(args) => serve::run(args, &globals),
        Command::Cluster(args) => cluster::run(args),
        Command::Check(args) => admin::check(&globals, args),
        Command::Repair(args) => admin::repair(&globals, args),
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

/// Parses the command line as `Cli::parse` does (exiting with clap's message and status on
/// a usage error), keeping clap's record of which options were typed to resolve the global
/// ones.
fn parse() -> (Command, Globals) {
    let matches = Cli::command().get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(Cli { globals, command }) => (command, globals.resolve(&matches)),
        Err(e) => e.format(&mut Cli::command()).exit(),
    }
}
