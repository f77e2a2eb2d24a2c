//! `lsmdb checkpoint DEST`: a consistent, openable copy of the database as of one moment
//! (`Db::checkpoint`: tables hard-linked where DEST is on the same file system, copied
//! otherwise). A checkpoint needs the writer, which can flush the memtable; when another
//! process holds it, the checkpoint is taken by that process: `--connect URL` asks the
//! `lsmdb serve` there (`POST /admin/checkpoint`).

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;

use crate::cli::Globals;
use crate::client::ServerArgs;
use crate::kv::plural;
use crate::output::Out;

#[derive(Args, Debug)]
#[command(
    about = "Write a consistent copy of the database to DEST, alone or through a running server",
    after_help = "DEST must be new or empty. Tables are hard-linked where DEST is on the database's file\n\
                  system and copied otherwise, so a checkpoint costs little space until the data\n\
                  changes. The copy is an ordinary database directory: open it with --db DEST.\n\n\
                  While lsmdb serve holds the database, this process cannot take the checkpoint:\n\
                  --connect (or LSMDB_URL) names the server, which takes it instead, with the\n\
                  token from --token or LSMDB_TOKEN. DEST is then a path on the server's machine\n\
                  (made absolute here when it is relative).\n\n\
                  Examples:\n  \
                  lsmdb checkpoint /backups/lsmdb-monday\n  \
                  lsmdb checkpoint /backups/lsmdb-monday --connect http://127.0.0.1:8080"
)]
pub struct CheckpointArgs {
    /// Directory to write the copy into (new or empty).
    pub dest: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub fn checkpoint(globals: &Globals, args: &CheckpointArgs) -> anyhow::Result<u8> {
    let dest = absolute(&args.dest)?;
    let (tables, bytes) = match args.server.client()? {
        // The server opens the copy to count it, as below.
        Some(client) => client.checkpoint(&dest)?,
        None => {
            let db = globals
                .open_writer()
                .map_err(|e| hint_at_the_server(e, &dest))?;
            db.checkpoint(&dest)
                .with_context(|| format!("cannot write a checkpoint to {}", dest.display()))?;
            db.close().context("closing the database failed")?;
            // Opened as any reader would, which checks that the copy is a database.
            let options = lsmdb::Options::default().create_if_missing(false);
            let copy = lsmdb::Db::open_read_only(&dest, options)
                .with_context(|| format!("the checkpoint in {} does not open", dest.display()))?;
            let stats = copy.stats();
            (stats.tables as u64, stats.table_bytes)
        }
    };
    let mut out = Out::new();
    out.line(&format!(
        "checkpoint written to {}: {} ({bytes} bytes)",
        dest.display(),
        plural(tables, "table", "tables"),
    ))?;
    out.flush()?;
    Ok(0)
}

/// `path` made absolute against the current directory, so that a server started elsewhere
/// writes where the user meant.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// A lock held by another process: say how to take the checkpoint through it.
fn hint_at_the_server(e: anyhow::Error, dest: &Path) -> anyhow::Error {
    let locked = e
        .chain()
        .any(|c| matches!(c.downcast_ref(), Some(lsmdb::Error::Locked { .. })));
    if !locked {
        return e;
    }
    anyhow!(
        "{e:#}; if that is lsmdb serve, take the checkpoint through it: \
         lsmdb checkpoint {} --connect http://HOST:PORT",
        dest.display()
    )
}
