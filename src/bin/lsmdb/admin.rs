//! Maintenance commands: `check` verifies every checksum of every file, `repair` salvages a
//! damaged directory on request.

use anyhow::Context;
use clap::Args;

use crate::cli::{EXIT_ERROR, Globals};
use crate::output::Out;

#[derive(Args, Debug)]
#[command(
    about = "Verify every checksum of every file (exit 0 when clean, 2 when damaged or unreadable)",
    after_help = "Reads every table block, WAL record and manifest edit and lists each problem\n\
                  with its file and offset (corrupt: damage; unreadable: the OS refused, not damage).\n\
                  Writes nothing; runs beside a live writer.\n\n\
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
                  Refuses, changing nothing, while a file cannot be read (fix access first);\n\
                  a table that is gone is dropped. Needs the write lock (stop the server first).\n\n\
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
        for p in &found.unreadable {
            out.line(&format!("unreadable: {p}"))?;
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
            summary(&found)
        ))?;
    }
    out.flush()?;
    if found.is_clean() {
        return Ok(0);
    }
    let db = globals.dir.display();
    // Only damage is for `repair`; a file that cannot be read is not damaged.
    let advice = if found.inaccessible().next().is_some() {
        "files that cannot be read are not damage: restore access to them (permissions, the \
         disk) and check again; `lsmdb repair` refuses to run while any is unreadable"
            .to_string()
    } else if found.problems.is_empty() {
        format!(
            "tables the manifest names are gone: restore them, or `lsmdb --db {db} repair` \
             rebuilds the database without them"
        )
    } else {
        format!("`lsmdb --db {db} repair` salvages what is intact")
    };
    eprintln!("error: {db} is not clean; {advice}");
    Ok(EXIT_ERROR)
}

/// "clean", or how many problems and unreadable files were found.
fn summary(found: &lsmdb::DirCheck) -> String {
    let count = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    match (found.problems.len(), found.unreadable.len()) {
        (0, 0) => "clean".to_string(),
        (p, 0) => count(p, "problem", "problems"),
        (0, u) => count(u, "unreadable file", "unreadable files"),
        (p, u) => format!(
            "{}, {}",
            count(p, "problem", "problems"),
            count(u, "unreadable file", "unreadable files")
        ),
    }
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
