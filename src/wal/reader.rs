//! Reads a WAL back (docs/FORMAT.md, "WAL records"): for replay at open, where damage
//! fails the open, and for `check` and `repair`, which skip damaged records and list them.

use std::path::Path;

use super::WAL_KIND;
use crate::batch::Payload;
use crate::error::{Error, IoContext, Result};
use crate::fs::FileSystem;
use crate::key::{MAX_SEQ, SeqNum};
use crate::record;

/// What to do with a damaged record that a valid one follows (a torn tail is never an
/// error: it is reported in [`Replayed::torn_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnDamage {
    /// Fail with [`Error::Corruption`] naming the file and offset: an open never drops
    /// data silently.
    Fail,
    /// Skip it and list it in [`Replayed::damage`]: `check` and `repair`.
    Skip,
}

/// What reading one WAL found.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// Length of the intact prefix: the header and every record up to the first damage
    /// that no valid record follows. A writer reopening the WAL appends after it.
    pub valid_len: u64,
    /// Where a torn tail begins, if the WAL ends in one.
    pub torn_at: Option<u64>,
    /// The highest sequence number of the batches handed out, if any.
    pub last_seq: Option<SeqNum>,
    /// Batches handed out.
    pub records: u64,
    /// With [`OnDamage::Skip`], each damaged record that was skipped: an
    /// [`Error::Corruption`] naming the file, offset and what was wrong. Kept typed, so a
    /// caller can tell damage from an I/O error.
    pub damage: Vec<Error>,
}

impl Replayed {
    /// Only the newest WAL may end in a torn record (a write the crash cut off, never
    /// acknowledged): at the end of an older one, damage is corruption.
    pub(crate) fn check_tail(&self, path: &Path, newest: bool) -> Result<()> {
        match self.torn_at {
            Some(offset) if !newest => Err(Error::corruption(
                path,
                offset,
                "damaged record at the end of a WAL that is not the newest",
            )),
            _ => Ok(()),
        }
    }
}

/// Reads the WAL at `path` and hands each intact batch, checked, to `on_batch` in order.
pub(crate) fn read(
    fs: &dyn FileSystem,
    path: &Path,
    on_damage: OnDamage,
    mut on_batch: impl FnMut(&Payload<'_>) -> Result<()>,
) -> Result<Replayed> {
    let data = fs.read_all(path).ctx("read WAL", path)?;
    let mut last_seq = None;
    let mut records = 0;
    let mut damage = Vec::new();
    let salvage = on_damage == OnDamage::Skip;
    let scan = record::scan(&data, path, WAL_KIND, salvage, |offset, payload| {
        let batch = match Payload::decode(payload).and_then(|b| check_batch(&b).map(|()| b)) {
            Ok(batch) => batch,
            Err(reason) => {
                let e = Error::corruption(path, offset, format!("bad WAL record: {reason}"));
                if !salvage {
                    return Err(e);
                }
                damage.push(e);
                return Ok(());
            }
        };
        if batch.count > 0 {
            let last = batch.first_seq + u64::from(batch.count) - 1;
            last_seq = Some(last_seq.map_or(last, |s: SeqNum| s.max(last)));
        }
        records += 1;
        on_batch(&batch)
    })?;
    damage.extend(scan.skipped_damage(path, WAL_KIND));
    Ok(Replayed {
        valid_len: scan.valid_len,
        torn_at: scan.torn_at,
        last_seq,
        records,
        damage,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WriteBatch;
    use crate::filename;
    use crate::fs::OsFileSystem;

    fn wal_file(first_seqs: &[u64]) -> Vec<u8> {
        let mut data = record::encode_header(WAL_KIND).to_vec();
        for &first_seq in first_seqs {
            let mut batch = WriteBatch::new();
            batch.put(b"k", b"v");
            let mut payload = Vec::new();
            batch.encode_payload(first_seq, &mut payload);
            record::encode_record(&mut data, &payload);
        }
        data
    }

    /// Regression: a WAL record whose checksum is right but whose first sequence number is
    /// near `u64::MAX` (a crafted file) overflowed while replay computed the last sequence
    /// number: a panic in debug builds, a wrapped number otherwise.
    #[test]
    fn a_batch_whose_sequence_numbers_overflow_is_corruption_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = filename::wal_path(dir.path(), 1);
        std::fs::write(&path, wal_file(&[u64::MAX])).unwrap();
        let result = read(&OsFileSystem, &path, OnDamage::Fail, |_| Ok(()));
        assert!(result.is_err_and(|e| e.is_corruption()));
    }

    #[test]
    fn skipping_damage_lists_each_bad_record_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = filename::wal_path(dir.path(), 1);
        let mut data = wal_file(&[1, 2, 3]);
        let second = record::HEADER_LEN + (data.len() - record::HEADER_LEN) / 3;
        data[second + 12] ^= 0x01; // inside the second record's payload
        std::fs::write(&path, &data).unwrap();
        assert!(
            read(&OsFileSystem, &path, OnDamage::Fail, |_| Ok(()))
                .is_err_and(|e| e.is_corruption())
        );
        let mut seen = Vec::new();
        let replayed = read(&OsFileSystem, &path, OnDamage::Skip, |b| {
            seen.push(b.first_seq);
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![1, 3]);
        assert_eq!((replayed.records, replayed.last_seq), (2, Some(3)));
        assert!(matches!(
            replayed.damage.as_slice(),
            [Error::Corruption { offset, .. }] if *offset == second as u64
        ));
    }
}
