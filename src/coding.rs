//! Little-endian fixed-width and LEB128 varint encodings used by every on-disk format
//! (docs/FORMAT.md, "Encodings"). Decoding never panics: a short or malformed input is `None`.

// A decoder: a damaged length or offset must be an error, never an index panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub(crate) fn put_varint32(dst: &mut Vec<u8>, v: u32) {
    put_varint64(dst, u64::from(v));
}

pub(crate) fn put_varint64(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

pub(crate) fn put_fixed32(dst: &mut Vec<u8>, v: u32) {
    dst.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_fixed64(dst: &mut Vec<u8>, v: u64) {
    dst.extend_from_slice(&v.to_le_bytes());
}

/// A varint-length-prefixed byte string.
pub(crate) fn put_length_prefixed(dst: &mut Vec<u8>, bytes: &[u8]) {
    put_varint64(dst, bytes.len() as u64);
    dst.extend_from_slice(bytes);
}

pub(crate) fn decode_fixed32(src: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(src.get(..4)?.try_into().ok()?))
}

pub(crate) fn decode_fixed64(src: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(src.get(..8)?.try_into().ok()?))
}

/// Decodes a varint from the front of `src`, returning it and the bytes it used.
#[inline]
pub(crate) fn decode_varint64(src: &[u8]) -> Option<(u64, usize)> {
    let mut result = 0u64;
    for (i, &byte) in src.iter().enumerate().take(10) {
        let payload = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return None; // more than 64 bits
        }
        result |= payload << (7 * i);
        if byte < 0x80 {
            return Some((result, i + 1));
        }
    }
    None
}

#[inline]
pub(crate) fn decode_varint32(src: &[u8]) -> Option<(u32, usize)> {
    // Fast path: most lengths in blocks fit in one byte.
    if let Some(&b) = src.first()
        && b < 0x80
    {
        return Some((u32::from(b), 1));
    }
    let (v, n) = decode_varint64(src)?;
    Some((u32::try_from(v).ok()?, n))
}

/// A cursor over an encoded buffer that consumes fields front to back.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// What is left to read.
    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub(crate) fn fixed32(&mut self) -> Option<u32> {
        let v = decode_fixed32(self.buf)?;
        self.buf = self.buf.get(4..)?;
        Some(v)
    }

    pub(crate) fn fixed64(&mut self) -> Option<u64> {
        let v = decode_fixed64(self.buf)?;
        self.buf = self.buf.get(8..)?;
        Some(v)
    }

    pub(crate) fn varint32(&mut self) -> Option<u32> {
        let (v, n) = decode_varint32(self.buf)?;
        self.buf = self.buf.get(n..)?;
        Some(v)
    }

    pub(crate) fn varint64(&mut self) -> Option<u64> {
        let (v, n) = decode_varint64(self.buf)?;
        self.buf = self.buf.get(n..)?;
        Some(v)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    pub(crate) fn length_prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint64()?).ok()?;
        self.bytes(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        let values = [
            0u64,
            1,
            127,
            128,
            255,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX,
        ];
        for &v in &values {
            let mut buf = Vec::new();
            put_varint64(&mut buf, v);
            assert_eq!(decode_varint64(&buf), Some((v, buf.len())));
        }
    }

    #[test]
    fn truncated_or_overlong_varints_are_rejected() {
        assert_eq!(decode_varint64(&[0x80, 0x80]), None);
        assert_eq!(decode_varint64(&[0xff; 11]), None);
        assert_eq!(
            decode_varint64(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            None
        );
        let mut buf = Vec::new();
        put_varint64(&mut buf, u64::from(u32::MAX) + 1);
        assert_eq!(decode_varint32(&buf), None);
    }

    #[test]
    fn reader_refuses_to_read_past_the_end() {
        let mut buf = Vec::new();
        put_length_prefixed(&mut buf, b"hello");
        let mut r = Reader::new(&buf[..4]);
        assert_eq!(r.length_prefixed(), None);
        let mut r = Reader::new(&buf);
        assert_eq!(r.length_prefixed(), Some(&b"hello"[..]));
        assert!(r.is_empty());
    }
}
