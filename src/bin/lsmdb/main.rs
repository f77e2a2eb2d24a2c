//! `lsmdb`: the command-line front end of the lsmdb engine. It parses arguments, opens the
//! engine, and prints; everything else lives in the library.
//!
//! Exit status: 0 on success, 1 when `get` finds no key, 2 on any error (usage included).

mod admin;
mod bench;
mod checkpoint;
mod cli;
mod client;
mod cluster;
mod dump;
mod generate;
mod hex;
mod kv;
mod load;
mod output;
mod progress;
mod serve;
mod shell;
mod text;
mod words;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use cli::{EXIT_ERROR, GlobalArgs, Globals};

const AFTER_HELP: &str = "\
Exit status: 0 success, 1 key not found (get), 2 error.

Examples:
  lsmdb put user:1 Ada
  lsmdb get user:1
  lsmdb range --prefix user:        # every key starting with \"user:\"
  lsmdb --db /var/lib/lsmdb serve   # serve the HTTP API on 127.0.0.1:8080";

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
    Dump(dump::DumpArgs),
    Load(load::LoadArgs),
    Stats(kv::StatsArgs),
    Compact(kv::CompactArgs),
    Checkpoint(checkpoint::CheckpointArgs),
    Shell(shell::ShellArgs),
    Bench(bench::BenchArgs),
    Serve(serve::ServeArgs),
    Cluster(cluster::ClusterArgs),
    Check(admin::CheckArgs),
    Repair(admin::RepairArgs),
    Completions(generate::CompletionsArgs),
    Man(generate::ManArgs),
}

fn main() -> ExitCode {
    let (command, globals) = parse();
    let result = match &command {
        Command::Put(args) => kv::put(&globals, args),
        Command::Get(args) => kv::get(&globals, args),
        Command::Delete(args) => kv::delete(&globals, args),
        Command::Range(args) => kv::range(&globals, args),
        Command::Batch(args) => kv::batch(&globals, args),
        Command::Dump(args) => dump::dump(&globals, args),
        Command::Load(args) => load::load(&globals, args),
        Command::Stats(args) => kv::stats(&globals, args),
        Command::Compact(args) => kv::compact(&globals, args),
        Command::Checkpoint(args) => checkpoint::checkpoint(&globals, args),
        Command::Shell(args) => shell::run(&globals, args),
        Command::Bench(args) => bench::bench(globals.typed_dir(), globals.typed_sync(), args),
        Command::Serve(args) => serve::run(args, &globals),
        Command::Cluster(args) => cluster::run(args),
        Command::Check(args) => admin::check(&globals, args),
        Command::Repair(args) => admin::repair(&globals, args),
        Command::Completions(args) => generate::completions(Cli::command(), args),
        Command::Man(args) => generate::man(Cli::command(), args),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// `get --help` once showed `<KEY>` with no text, and `--json` of delete, batch and stats
    /// had none either: every argument a user can type says what it is for.
    #[test]
    fn every_argument_of_every_command_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "lsmdb", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
