//! Reads a record file, telling a torn tail (dropped) from corruption (an error naming the
//! file and offset) (docs/FORMAT.md, "Record files: the WAL and the manifest").

use std::path::Path;

use super::{
    FileKind, HEADER_LEN, RECORD_HEADER_LEN, Tail, encode_header, is_cut_short, valid_record_at,
};
use crate::coding::decode_fixed32;
use crate::error::{Error, Result};

/// What a scan found besides the records it delivered.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    /// Length of the intact prefix: the header and every complete record.
    pub valid_len: u64,
    /// Offset where a torn tail began, if the file ended in one.
    pub torn_at: Option<u64>,
    /// In salvage mode, the damaged byte ranges that were skipped.
    pub skipped: Vec<(u64, u64)>,
}

impl Scan {
    /// One [`Error::Corruption`] per byte range a salvage scan skipped.
    pub(crate) fn skipped_damage(&self, path: &Path, kind: FileKind) -> Vec<Error> {
        self.skipped
            .iter()
            .map(|&(start, end)| {
                Error::corruption(
                    path,
                    start,
                    format!(
                        "damaged {} record ({} bytes skipped)",
                        kind.name,
                        end - start
                    ),
                )
            })
            .collect()
    }
}

/// Delivers each record's offset and payload to `on_record`, in file order.
///
/// Without `salvage`, a damaged record followed by a valid one fails with
/// [`Error::Corruption`]; with it, the damaged bytes are skipped and listed in
/// [`Scan::skipped`]. A damaged tail is reported in [`Scan::torn_at`] either way.
pub(crate) fn scan(
    data: &[u8],
    path: &Path,
    kind: FileKind,
    salvage: bool,
    mut on_record: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<Scan> {
    let mut result = Scan::default();
    let all_zero = |bytes: &[u8]| bytes.iter().all(|&b| b == 0);
    if data.len() < HEADER_LEN || header_cut_short(data, kind) {
        // The file was created (and perhaps space reserved) but its header never fully
        // reached the disk.
        result.torn_at = Some(0);
        return Ok(result);
    }
    check_header(data, path, kind)?;
    result.valid_len = HEADER_LEN as u64;
    let mut pos = HEADER_LEN;
    while let Some(rest) = data.get(pos..).filter(|rest| !rest.is_empty()) {
        match valid_record_at(rest) {
            Some(payload) => {
                on_record(pos as u64, payload)?;
                pos += RECORD_HEADER_LEN + payload.len();
                result.valid_len = pos as u64;
            }
            None if all_zero(rest) => {
                // Space reserved ahead of the appended records (src/fs/log_file.rs), or
                // zeros a file system left after a crash: the end of the records.
                return Ok(result);
            }
            None => match next_valid_record(data, pos + 1) {
                Some(next) if salvage => {
                    result.skipped.push((pos as u64, next as u64));
                    pos = next;
                }
                Some(next) => {
                    return Err(Error::corruption(
                        path,
                        pos as u64,
                        format!(
                            "damaged {} record (bad checksum or length) with a valid record after it at offset {next}",
                            kind.name
                        ),
                    ));
                }
                None if !salvage && kind.tail == Tail::CutShort && !is_cut_short(rest) => {
                    return Err(Error::corruption(
                        path,
                        pos as u64,
                        format!(
                            "damaged {} record at the end of the file (bad checksum or length, not a cut-off write)",
                            kind.name
                        ),
                    ));
                }
                None => {
                    result.torn_at = Some(pos as u64);
                    return Ok(result);
                }
            },
        }
    }
    Ok(result)
}

/// Whether `data` is the start of `kind`'s header and then only zeros (all zeros included):
/// a file created, its space reserved, and its header write cut off by a crash.
fn header_cut_short(data: &[u8], kind: FileKind) -> bool {
    let expected = encode_header(kind);
    let written = data
        .iter()
        .zip(&expected)
        .take_while(|(got, want)| got == want)
        .count();
    written < HEADER_LEN
        && data
            .get(written..)
            .is_some_and(|rest| rest.iter().all(|&b| b == 0))
}

fn check_header(data: &[u8], path: &Path, kind: FileKind) -> Result<()> {
    let bad_magic = || Error::corruption(path, 0, format!("not a {} file (bad magic)", kind.name));
    let header = data.first_chunk::<HEADER_LEN>().ok_or_else(bad_magic)?;
    if &header[..8] != kind.magic {
        return Err(bad_magic());
    }
    let crc = decode_fixed32(&header[12..]).unwrap_or_default();
    if crc32fast::hash(&header[..12]) != crc {
        return Err(Error::corruption(
            path,
            0,
            format!("{} header checksum mismatch", kind.name),
        ));
    }
    let version = decode_fixed32(&header[8..]).unwrap_or_default();
    if version != kind.version {
        return Err(Error::Unsupported {
            path: path.to_path_buf(),
            found_version: version,
            supported: kind.version,
        });
    }
    Ok(())
}

/// The offset of the first whole, valid record at or after `from`. Only offsets whose
/// type byte is right are checked, found with `memchr`, so long runs of zeros or junk are
/// skipped quickly.
fn next_valid_record(data: &[u8], from: usize) -> Option<usize> {
    const TYPE_AT: usize = RECORD_HEADER_LEN - 1;
    let types = data.get(from + TYPE_AT..)?;
    memchr::memchr_iter(super::TYPE_FULL, types)
        .map(|i| from + i)
        .find(|&at| data.get(at..).and_then(valid_record_at).is_some())
}

#[cfg(test)]
mod tests {
    use super::super::{encode_header, encode_record};
    use super::*;

    const KIND: FileKind = FileKind {
        magic: b"LSMDBTST",
        version: 1,
        name: "test",
        tail: Tail::AnyDamage,
    };

    fn file(payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut data = encode_header(KIND).to_vec();
        let mut ends = Vec::new();
        for p in payloads {
            encode_record(&mut data, p);
            ends.push(data.len());
        }
        (data, ends)
    }

    fn read(data: &[u8], salvage: bool) -> Result<(Vec<Vec<u8>>, Scan)> {
        let mut out = Vec::new();
        let scan = scan(data, Path::new("t"), KIND, salvage, |_, p| {
            out.push(p.to_vec());
            Ok(())
        })?;
        Ok((out, scan))
    }

    /// Regression (found once the fault tests ran the production WAL): a crash while a new
    /// WAL's header was written, after its space was reserved, left part of the header and
    /// then zeros, and the next open failed on a "header checksum mismatch".
    #[test]
    fn a_header_cut_short_before_reserved_zeros_holds_nothing() {
        let header = encode_header(KIND);
        for written in 0..HEADER_LEN {
            let mut data = header[..written].to_vec();
            data.resize(64 << 10, 0);
            let (recs, scan) = read(&data, false).unwrap();
            assert!(recs.is_empty());
            assert_eq!(scan.torn_at, Some(0), "{written} bytes of the header");
        }
        let mut data = header.to_vec();
        data[3] ^= 0x01;
        data.resize(64 << 10, 0);
        assert!(read(&data, false).is_err(), "a damaged header is damage");
    }

    #[test]
    fn records_round_trip() {
        let (data, _) = file(&[b"one", b"", b"three"]);
        let (recs, scan) = read(&data, false).unwrap();
        assert_eq!(recs, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!(scan.valid_len, data.len() as u64);
        assert_eq!(scan.torn_at, None);
    }

    #[test]
    fn truncation_at_every_offset_of_the_last_record_is_a_torn_tail() {
        let (data, ends) = file(&[b"first", b"second record", b"the last record here"]);
        for cut in ends[1]..data.len() {
            let (recs, scan) = read(&data[..cut], false).unwrap();
            assert_eq!(recs.len(), 2, "cut at {cut}");
            assert_eq!(scan.valid_len, ends[1] as u64);
            assert_eq!(scan.torn_at, (cut > ends[1]).then_some(ends[1] as u64));
        }
        for cut in 0..HEADER_LEN {
            let (recs, scan) = read(&data[..cut], false).unwrap();
            assert!(recs.is_empty());
            assert_eq!(scan.torn_at, Some(0));
        }
    }

    #[test]
    fn zeros_after_the_last_record_end_the_file_and_junk_is_a_torn_tail() {
        let (mut data, ends) = file(&[b"a", b"b"]);
        data.extend_from_slice(&[0u8; 100]);
        let (recs, scan) = read(&data, false).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(scan.torn_at, None, "reserved zeros are not damage");
        assert_eq!(scan.valid_len, ends[1] as u64);
        // A file that is all zeros never got its header.
        let (recs, scan) = read(&[0u8; 4096], false).unwrap();
        assert!(recs.is_empty());
        assert_eq!(scan.torn_at, Some(0));
        // A zeroed header in front of records is damage, not an empty file.
        let mut zeroed = data.clone();
        zeroed[..HEADER_LEN].fill(0);
        assert!(read(&zeroed, false).unwrap_err().is_corruption());
        data.truncate(ends[1]);
        data.extend_from_slice(b"\x13\x37junk that is not a record at all");
        assert_eq!(read(&data, false).unwrap().0.len(), 2);
    }

    #[test]
    fn a_flipped_bit_before_a_valid_record_is_corruption_naming_the_offset() {
        let (mut data, ends) = file(&[b"first", b"second", b"third"]);
        data[ends[0] + 10] ^= 0x04; // inside the second record's payload
        match read(&data, false) {
            Err(Error::Corruption { offset, .. }) => assert_eq!(offset, ends[0] as u64),
            other => panic!("expected corruption, got {other:?}"),
        }
        // A damaged length field is caught the same way.
        let (mut data, ends) = file(&[b"first", b"second", b"third"]);
        data[ends[0] + 5] ^= 0x40;
        assert!(read(&data, false).unwrap_err().is_corruption());
        // Salvage skips the damage and keeps the rest.
        let (recs, scan) = read(&data, true).unwrap();
        assert_eq!(recs, vec![b"first".to_vec(), b"third".to_vec()]);
        assert_eq!(scan.skipped, vec![(ends[0] as u64, ends[1] as u64)]);
    }

    #[test]
    fn with_a_cut_short_tail_policy_only_a_cut_off_record_is_torn() {
        let strict = FileKind {
            tail: Tail::CutShort,
            ..KIND
        };
        let read_strict = |data: &[u8]| scan(data, Path::new("t"), strict, false, |_, _| Ok(()));
        let (data, ends) = file(&[b"first", b"second", b"the last record"]);
        for cut in ends[1]..data.len() {
            let scan = read_strict(&data[..cut]).unwrap();
            assert_eq!(scan.valid_len, ends[1] as u64, "cut at {cut}");
        }
        let mut zeros = data.clone();
        zeros.extend_from_slice(&[0; 64]);
        let scan = read_strict(&zeros).unwrap();
        assert_eq!((scan.valid_len, scan.torn_at), (data.len() as u64, None));
        // Every flipped bit of the last whole record, its length field included, is
        // corruption at the record's offset.
        for at in ends[1]..data.len() {
            for bit in 0..8 {
                let mut bad = data.clone();
                bad[at] ^= 1 << bit;
                match read_strict(&bad) {
                    Err(Error::Corruption { offset, .. }) => assert_eq!(offset, ends[1] as u64),
                    other => panic!("flip at {at} bit {bit}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn wrong_magic_or_version_is_refused() {
        let (mut data, _) = file(&[b"x"]);
        data[0] = b'X';
        assert!(read(&data, false).unwrap_err().is_corruption());
        let other = FileKind { version: 2, ..KIND };
        let mut data = encode_header(other).to_vec();
        encode_record(&mut data, b"x");
        assert!(matches!(
            read(&data, false),
            Err(Error::Unsupported {
                found_version: 2,
                ..
            })
        ));
    }
}
