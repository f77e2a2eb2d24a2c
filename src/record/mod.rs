//! Checksummed record framing shared by the WAL and the manifest
//! (docs/FORMAT.md, "Record files: the WAL and the manifest").
//!
//! A record file is a 16-byte header followed by records:
//!
//! ```text
//! header := magic[8] version:u32 crc:u32      crc = crc32(magic ++ version)
//! record := crc:u32 length:u32 type:u8 payload[length]
//!           crc = crc32(length ++ type ++ payload)
//! ```
//!
//! All integers are little-endian. A crash while appending can only damage the end of the
//! file, so a bad record after which no valid record can be found is a torn tail (never
//! acknowledged, safe to drop); a bad record followed by a valid one is corruption.

// A decoder: a damaged length or offset must be an error, never an index panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod reader;
mod writer;

pub(crate) use reader::{Scan, scan};
pub(crate) use writer::Writer;

use crate::coding::decode_fixed32;

pub(crate) const HEADER_LEN: usize = 16;
pub(crate) const RECORD_HEADER_LEN: usize = 9;

/// The only record type in format version 1: one complete payload.
pub(crate) const TYPE_FULL: u8 = 1;

/// The largest payload a record may carry; a larger length field is damage, never an
/// allocation request.
pub(crate) const MAX_PAYLOAD: usize = crate::options::MAX_BATCH_SIZE + (1 << 20);

/// Identifies what a record file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileKind {
    pub magic: &'static [u8; 8],
    pub version: u32,
    pub name: &'static str,
    pub tail: Tail,
}

/// Which damage at the end of a file counts as a torn write (dropped) rather than corruption.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// Any damage that no valid record follows: a crash while appending to a WAL may leave
    /// anything in the unsynced tail (RELIABILITY.md T3).
    AnyDamage,
    /// Only a record cut short by the end of the file. A whole record with a bad
    /// checksum, or one whose length field was damaged, is corruption. For the manifest,
    /// whose every edit is synced before anything acts on it: dropping a damaged edit
    /// would silently forget tables, and the next open would delete them as orphans.
    CutShort,
}

pub(crate) fn encode_header(kind: FileKind) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(kind.magic);
    h[8..12].copy_from_slice(&kind.version.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one framed record to `dst`.
pub(crate) fn encode_record(dst: &mut Vec<u8>, payload: &[u8]) {
    let start = dst.len();
    dst.resize(start + RECORD_HEADER_LEN, 0);
    dst.extend_from_slice(payload);
    if let Some(record) = dst.get_mut(start..) {
        frame_in_place(record);
    }
}

/// Fills in the header of a record whose payload was written after `RECORD_HEADER_LEN`
/// reserved bytes, so the write path can encode a batch without a second copy.
pub(crate) fn frame_in_place(record: &mut [u8]) {
    let Some((header, payload)) = record.split_first_chunk_mut::<RECORD_HEADER_LEN>() else {
        debug_assert!(
            false,
            "a record is framed in a buffer that starts with its header"
        );
        return;
    };
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    header[4..8].copy_from_slice(&len.to_le_bytes());
    header[8] = TYPE_FULL;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[4..]);
    crc.update(payload);
    header[..4].copy_from_slice(&crc.finalize().to_le_bytes());
}

/// Whether `tail` (from a damaged record to the end of the file, with no valid record in
/// it) looks like an append cut short by a crash: a partial header, or a record longer than
/// what is left, unless what is left is exactly one record whose length field alone was
/// damaged. (A tail of zeros is the end of the records, before this is asked.)
pub(crate) fn is_cut_short(tail: &[u8]) -> bool {
    let Some((header, payload)) = tail.split_first_chunk::<RECORD_HEADER_LEN>() else {
        return true;
    };
    let declared = decode_fixed32(&header[4..8]).unwrap_or(u32::MAX) as usize;
    if declared <= payload.len() {
        return false;
    }
    let actual = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&actual.to_le_bytes());
    hasher.update(&header[8..]);
    hasher.update(payload);
    Some(hasher.finalize()) != decode_fixed32(header)
}

/// If a whole valid record starts at `data[0]`, its payload.
fn valid_record_at(data: &[u8]) -> Option<&[u8]> {
    let crc = decode_fixed32(data)?;
    let len_bytes = data.get(4..8)?;
    let len = decode_fixed32(len_bytes)? as usize;
    let rtype = *data.get(8)?;
    if rtype != TYPE_FULL || len > MAX_PAYLOAD {
        return None;
    }
    let payload = data.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(&[rtype]);
    hasher.update(payload);
    (hasher.finalize() == crc).then_some(payload)
}
