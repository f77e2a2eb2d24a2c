//! The fixed-size footer at the end of every table, block handles, the per-block trailer
//! and the properties block (docs/FORMAT.md, "Footer" and "Properties block").
//!
//! ```text
//! footer := index:handle filter:handle properties:handle      (each offset:u64 size:u64)
//!           format_version:u32 crc:u32 magic[8]="LSMDBSST"    crc = crc32(first 52 bytes)
//! block on disk := contents[size] compression:u8 crc:u32       crc = crc32(contents ++ compression)
//! ```

use crate::coding::{Reader, put_fixed32, put_fixed64, put_varint64};

pub(crate) const MAGIC: &[u8; 8] = b"LSMDBSST";
pub(crate) const FORMAT_VERSION: u32 = 1;
pub(crate) const FOOTER_LEN: usize = 64;
/// Compression byte and CRC after each block's contents.
pub(crate) const BLOCK_TRAILER_LEN: usize = 5;
/// The only compression in format version 1: none.
pub(crate) const NO_COMPRESSION: u8 = 0;

/// Where a block lives: its offset and the size of its contents (without the trailer).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockHandle {
    pub offset: u64,
    pub size: u64,
}

impl BlockHandle {
    /// The varint encoding used as a value in index blocks.
    pub(crate) fn encode_varint(&self, dst: &mut Vec<u8>) {
        put_varint64(dst, self.offset);
        put_varint64(dst, self.size);
    }

    pub(crate) fn decode_varint(src: &[u8]) -> Option<BlockHandle> {
        let mut r = Reader::new(src);
        let handle = BlockHandle {
            offset: r.varint64()?,
            size: r.varint64()?,
        };
        r.is_empty().then_some(handle)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    pub index: BlockHandle,
    pub filter: BlockHandle,
    pub properties: BlockHandle,
    pub format_version: u32,
}

/// Why a footer was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FooterError {
    BadMagic,
    BadChecksum,
    UnsupportedVersion(u32),
}

impl Footer {
    pub(crate) fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut buf = Vec::with_capacity(FOOTER_LEN);
        for h in [self.index, self.filter, self.properties] {
            put_fixed64(&mut buf, h.offset);
            put_fixed64(&mut buf, h.size);
        }
        put_fixed32(&mut buf, self.format_version);
        let crc = crc32fast::hash(&buf);
        put_fixed32(&mut buf, crc);
        buf.extend_from_slice(MAGIC);
        let mut out = [0u8; FOOTER_LEN];
        out.copy_from_slice(&buf);
        out
    }

    pub(crate) fn decode(src: &[u8; FOOTER_LEN]) -> Result<Footer, FooterError> {
        if &src[56..] != MAGIC {
            return Err(FooterError::BadMagic);
        }
        let mut r = Reader::new(src);
        let mut handle = || -> Option<BlockHandle> {
            Some(BlockHandle {
                offset: r.fixed64()?,
                size: r.fixed64()?,
            })
        };
        let (index, filter, properties) = match (handle(), handle(), handle()) {
            (Some(i), Some(f), Some(p)) => (i, f, p),
            _ => return Err(FooterError::BadChecksum),
        };
        let format_version = r.fixed32().ok_or(FooterError::BadChecksum)?;
        let crc = r.fixed32().ok_or(FooterError::BadChecksum)?;
        if crc32fast::hash(&src[..52]) != crc {
            return Err(FooterError::BadChecksum);
        }
        if format_version != FORMAT_VERSION {
            return Err(FooterError::UnsupportedVersion(format_version));
        }
        Ok(Footer {
            index,
            filter,
            properties,
            format_version,
        })
    }
}

/// Appends a block's trailer: compression byte and CRC of contents plus that byte.
pub(crate) fn block_trailer(contents: &[u8]) -> [u8; BLOCK_TRAILER_LEN] {
    let mut h = crc32fast::Hasher::new();
    h.update(contents);
    h.update(&[NO_COMPRESSION]);
    let crc = h.finalize().to_le_bytes();
    [NO_COMPRESSION, crc[0], crc[1], crc[2], crc[3]]
}

/// Summary figures of a table, kept in its properties block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Properties {
    pub entries: u64,
    pub deletions: u64,
    pub data_blocks: u64,
    pub raw_key_bytes: u64,
    pub raw_value_bytes: u64,
    pub smallest_seq: u64,
    pub largest_seq: u64,
}

impl Properties {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(56);
        for v in [
            self.entries,
            self.deletions,
            self.data_blocks,
            self.raw_key_bytes,
            self.raw_value_bytes,
            self.smallest_seq,
            self.largest_seq,
        ] {
            put_fixed64(&mut buf, v);
        }
        buf
    }

    pub(crate) fn decode(src: &[u8]) -> Option<Properties> {
        let mut r = Reader::new(src);
        let p = Properties {
            entries: r.fixed64()?,
            deletions: r.fixed64()?,
            data_blocks: r.fixed64()?,
            raw_key_bytes: r.fixed64()?,
            raw_value_bytes: r.fixed64()?,
            smallest_seq: r.fixed64()?,
            largest_seq: r.fixed64()?,
        };
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_round_trips_and_rejects_damage() {
        let f = Footer {
            index: BlockHandle {
                offset: 100,
                size: 20,
            },
            filter: BlockHandle {
                offset: 50,
                size: 45,
            },
            properties: BlockHandle {
                offset: 125,
                size: 56,
            },
            format_version: FORMAT_VERSION,
        };
        let bytes = f.encode();
        assert_eq!(Footer::decode(&bytes), Ok(f));
        for i in 0..FOOTER_LEN {
            let mut bad = bytes;
            bad[i] ^= 0x10;
            assert!(Footer::decode(&bad).is_err(), "flip at {i} accepted");
        }
    }

    #[test]
    fn handles_round_trip() {
        let h = BlockHandle {
            offset: 1 << 40,
            size: 4096,
        };
        let mut buf = Vec::new();
        h.encode_varint(&mut buf);
        assert_eq!(BlockHandle::decode_varint(&buf), Some(h));
        assert_eq!(BlockHandle::decode_varint(&buf[..2]), None);
    }
}
