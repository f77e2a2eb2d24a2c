//! Maintenance commands: `check` verifies every checksum of every file, `repair` salvages a
//! damaged directory on request.

use anyhow::Context;
use clap::Args;

use crate::cli::{EXIT_ERROR, Globals};
use crate::output::Out;

#[derive(Args, Debug)]
#[command(
    about = "Verify every checksum of every file (exit 0 when clean, 2 when damaged)",
    after_help = "Reads every table block, WAL record and manifest edit and lists each problem\n\
                  with its file and offset. Writes nothing; runs beside a live writer.\n\n\
                  Examples:\n  lsmdb check\n  lsmdb --db /var/lib/lsmdb check --json"
)]
pub struct CheckArgs {
    /// Print the findings as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
#[command(
    about = "Salvage what is intact after corruption and report what was dropped",
    after_help = "Rebuilds the database from its intact table blocks and WAL records under a new\n\
                  manifest; damaged files move to DIR/lost/. Does nothing to a clean directory.\n\
                  Needs the write lock (stop the server first).\n\n\
                  Example:\n  lsmdb check || lsmdb repair"
)]
pub struct RepairArgs {
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub fn check(globals: &Globals, args: &CheckArgs) -> anyhow::Result<u8> {
    let found = lsmdb::check_dir(&globals.dir, &globals.existing_options())
        .with_context(|| format!("cannot check {}", globals.dir.display()))?;
    let mut out = Out::new();
    if args.json {
        out.json(&serde_json::to_value(&found)?)?;
    } else {
        for p in &found.problems {
            out.line(&format!("corrupt: {p}"))?;
        }
        for note in &found.notes {
            out.line(&format!("note: {note}"))?;
        }
        let c = &found.checked;
        out.line(&format!(
            "checked {} tables ({} entries), {} WALs ({} records), {} bytes: {}",
            c.tables,
            c.table_entries,
            c.wal_files,
            c.wal_records,
            c.bytes,
            match found.problems.len() {
                0 => "clean".to_string(),
                1 => "1 problem".to_string(),
                n => format!("{n} problems"),
            }
        ))?;
    }
    out.flush()?;
    if found.is_clean() {
        return Ok(0);
    }
    eprintln!(
        "error: {} is damaged; `lsmdb --db {} repair` salvages what is intact",
        globals.dir.display(),
        globals.dir.display()
    );
    Ok(EXIT_ERROR)
}

pub fn repair(globals: &Globals, args: &RepairArgs) -> anyhow::Result<u8> {
    let report = lsmdb::repair_dir(&globals.dir, &globals.existing_options())
        .with_context(|| format!("cannot repair {}", globals.dir.display()))?;
    let mut out = Out::new();
    if args.json {
        out.json(&serde_json::to_value(&report)?)?;
    } else {
        for p in &report.dropped {
            out.line(&format!("dropped: {p}"))?;
        }
        for path in &report.archived {
            out.line(&format!("archived: {}", path.display()))?;
        }
        for note in &report.notes {
            out.line(&format!("note: {note}"))?;
        }
        if report.repaired {
            out.line(&format!(
                "repaired {}: {} entries kept from {} tables and {} WAL records; {} damaged parts dropped",
                globals.dir.display(),
                report.entries_kept,
                report.tables_read,
                report.wal_records_read,
                report.dropped.len()
            ))?;
        }
    }
    out.flush()?;
    Ok(0)
}
