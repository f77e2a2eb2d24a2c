//! Reads a WAL back (docs/FORMAT.md, "WAL records").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::batch::Payload;
use crate::error::{Error, IoContext, Result};
use crate::fs::{FileSystem, WritableFile};
use crate::key::{MAX_SEQ, SeqNum};
use crate::memtable::Memtable;
use crate::record::{self, FileKind, Scan};

pub(crate) const WAL_KIND: FileKind = FileKind {
    magic: b"LSMDBWAL",
    version: 1,
    name: "WAL",
    tail: record::Tail::AnyDamage,
};

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
        check_batch(&batch).map_err(|reason| {
            Error::corruption(path, offset, format!("bad WAL record: {reason}"))
        })?;
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

/// Checks a decoded batch before it is applied: every operation decodes, and its sequence
/// numbers fit in the 56 bits a key has for them (a damaged or crafted first sequence
/// number must not overflow).
pub(crate) fn check_batch(batch: &Payload<'_>) -> std::result::Result<(), &'static str> {
    if let Some(Err(reason)) = batch.ops().find(|op| op.is_err()) {
        return Err(reason);
    }
    match batch.first_seq.checked_add(u64::from(batch.count)) {
        Some(end) if end <= MAX_SEQ + 1 => Ok(()),
        _ => Err("sequence numbers out of range"),
    }
}

/// Inserts a replayed batch into a memtable.
pub(crate) fn apply_to(mem: &Memtable, first_seq: SeqNum, batch: &Payload<'_>) {
    // Ops were validated by `replay` before `apply` was called.
    mem.apply(first_seq, batch.ops().filter_map(|op| op.ok()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteBatch;
    use crate::fs::OsFileSystem;

    /// Regression: a WAL record whose checksum is right but whose first sequence number is
    /// near `u64::MAX` (a crafted file) overflowed while replay computed the last sequence
    /// number: a panic in debug builds, a wrapped number otherwise.
    #[test]
    fn a_batch_whose_sequence_numbers_overflow_is_corruption_not_a_panic() {
        let mut batch = WriteBatch::new();
        batch.put(b"k", b"v");
        let mut payload = Vec::new();
        batch.encode_payload(u64::MAX, &mut payload);
        let mut data = record::encode_header(WAL_KIND).to_vec();
        record::encode_record(&mut data, &payload);
        let dir = tempfile::tempdir().unwrap();
        let path = crate::filename::wal_path(dir.path(), 1);
        std::fs::write(&path, &data).unwrap();
        let result = replay(&OsFileSystem, &path, false, |_, _| Ok(()));
        assert!(result.is_err_and(|e| e.is_corruption()));
    }
}
