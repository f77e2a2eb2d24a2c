//! `lsmdb completions SHELL` and `lsmdb man`: generated (clap_complete, clap_mangen) from the
//! very definition the binary parses its arguments with, so they cannot drift from it.

use anyhow::{Context, anyhow};
use clap::Args;
use clap_complete::Shell;

use crate::output::Out;

#[derive(Args, Debug)]
#[command(
    about = "Print a completion script for a shell",
    after_help = "Examples:\n  \
                  lsmdb completions bash > ~/.local/share/bash-completion/completions/lsmdb\n  \
                  lsmdb completions zsh > ~/.zfunc/_lsmdb       # a directory on $fpath\n  \
                  lsmdb completions fish > ~/.config/fish/completions/lsmdb.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
#[command(
    about = "Print the manual page (roff), of lsmdb or of one command",
    after_help = "Examples:\n  \
                  lsmdb man | man -l -\n  \
                  lsmdb man dump | man -l -\n  \
                  lsmdb man > /usr/local/share/man/man1/lsmdb.1"
)]
pub struct ManArgs {
    /// A command, for its own page (lsmdb-COMMAND); lsmdb's page if omitted.
    pub command: Option<String>,
}

pub fn completions(mut cli: clap::Command, args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "lsmdb", &mut out);
    write(&out)
}

pub fn man(mut cli: clap::Command, args: &ManArgs) -> anyhow::Result<u8> {
    // Built first, so that the global options (--db, --sync) appear on every command's page.
    cli.build();
    let page = match &args.command {
        None => cli,
        Some(name) => {
            let command = cli
                .find_subcommand(name)
                .ok_or_else(|| anyhow!("no command named {name:?} (see lsmdb --help)"))?;
            let title = format!("lsmdb-{}", command.get_name());
            command.clone().name(title)
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut out)
        .context("cannot render the manual page")?;
    write(&out)
}

fn write(bytes: &[u8]) -> anyhow::Result<u8> {
    let mut out = Out::new();
    out.bytes(bytes)?;
    out.flush()?;
    Ok(0)
}
