//! The write-ahead log: every write batch is appended here as one record before it reaches
//! the memtable (docs/FORMAT.md, "WAL"). One WAL per memtable; a WAL is deleted once its
//! memtable is in a table and the manifest says so.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::Payload;
use crate::error::{Error, IoContext, Result};
use crate::fs::{FileSystem, WritableFile};
use crate::key::SeqNum;
use crate::memtable::Memtable;
use crate::record::{self, FileKind, Scan};

pub(crate) const WAL_KIND: FileKind = FileKind {
    magic: b"LSMDBWAL",
    version: 1,
    name: "WAL",
    tail: record::Tail::AnyDamage,
};

pub(crate) fn wal_name(number: u64) -> String {
    format!("{number:06}.wal")
}

pub(crate) fn wal_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(wal_name(number))
}

/// The live WAL as the sync path sees it: the file to `fdatasync` and how much has been
/// appended to it, so a sync knows what it covers.
pub(crate) struct WalHandle {
    pub number: u64,
    pub file: Arc<dyn WritableFile>,
    pub path: PathBuf,
    /// Bytes appended so far; stored after each append.
    pub appended: AtomicU64,
}

impl WalHandle {
    pub(crate) fn new(number: u64, writer: &record::Writer) -> Self {
        WalHandle {
            number,
            file: writer.file(),
            path: writer.path().to_path_buf(),
            appended: AtomicU64::new(writer.len()),
        }
    }

    pub(crate) fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }
}

/// What replaying one WAL found.
pub(crate) struct Replayed {
    pub scan: Scan,
    /// The highest sequence number in the WAL, if it held any record.
    pub last_seq: Option<SeqNum>,
    pub records: u64,
}

/// Replays a WAL's batches in order, handing each to `apply` with its first sequence number
/// and the memtable to insert into. A torn tail is reported in the result; any other damage
/// (or, in `salvage` mode, nothing: damage is skipped and listed) fails with the file and
/// offset.
pub(crate) fn replay(
    fs: &dyn FileSystem,
    path: &Path,
    salvage: bool,
    mut apply: impl FnMut(SeqNum, &Payload<'_>) -> Result<()>,
) -> Result<Replayed> {
    let data = fs.read_all(path).ctx("read WAL", path)?;
    let mut last_seq = None;
    let mut records = 0;
    let scan = record::scan(&data, path, WAL_KIND, salvage, |offset, payload| {
        let batch = Payload::decode(payload).map_err(|reason| {
            Error::corruption(path, offset, format!("bad WAL record: {reason}"))
        })?;
        if let Some(Err(reason)) = batch.ops().find(|op| op.is_err()) {
            return Err(Error::corruption(
                path,
                offset,
                format!("bad WAL record: {reason}"),
            ));
        }
        if batch.count > 0 {
            let last = batch.first_seq + u64::from(batch.count) - 1;
            last_seq = Some(last_seq.map_or(last, |s: SeqNum| s.max(last)));
        }
        records += 1;
        apply(batch.first_seq, &batch)
    })?;
    Ok(Replayed {
        scan,
        last_seq,
        records,
    })
}

/// Inserts a replayed batch into a memtable.
pub(crate) fn apply_to(mem: &Memtable, first_seq: SeqNum, batch: &Payload<'_>) {
    // Ops were validated by `replay` before `apply` was called.
    mem.apply(first_seq, batch.ops().filter_map(|op| op.ok()));
}
