//! An atomic group of puts and deletes, and its encoding as a WAL record payload
//! (docs/FORMAT.md, "WAL records").
//!
//! ```text
//! payload := first_seq:u64 count:u32 entry*count
//! entry   := kind:u8 key_len:varint key value_len:varint value     (kind 1 = put)
//!          | kind:u8 key_len:varint key                            (kind 0 = delete)
//! ```

// A decoder: a damaged length or offset must be an error, never an index panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::coding::{Reader, put_fixed32, put_fixed64, put_length_prefixed};
use crate::error::{Error, Result};
use crate::key::{Kind, SeqNum};
use crate::options::{MAX_BATCH_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE};

pub(crate) const PAYLOAD_HEADER_LEN: usize = 12;

/// Puts and deletes applied together: after a crash, all of them or none are present.
///
/// ```
/// let mut batch = lsmdb::WriteBatch::new();
/// batch.put(b"a", b"1");
/// batch.delete(b"b");
/// assert_eq!(batch.len(), 2);
/// ```
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct WriteBatch {
    /// The encoded entries, without the payload header.
    entries: Vec<u8>,
    count: u32,
    /// Bytes of keys and values, as users count what they write.
    data_bytes: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.entries.push(Kind::Put as u8);
        put_length_prefixed(&mut self.entries, key.as_ref());
        put_length_prefixed(&mut self.entries, value.as_ref());
        self.count += 1;
        self.data_bytes += key.as_ref().len() + value.as_ref().len();
        self
    }

    /// Adds a delete of `key`.
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        self.entries.push(Kind::Delete as u8);
        put_length_prefixed(&mut self.entries, key.as_ref());
        self.count += 1;
        self.data_bytes += key.as_ref().len();
        self
    }

    /// The number of operations in the batch.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch holds no operations.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Removes every operation, keeping the allocation.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.count = 0;
        self.data_bytes = 0;
    }

    /// The bytes of keys and values in the batch.
    pub fn data_bytes(&self) -> usize {
        self.data_bytes
    }

    /// The encoded size of the batch's operations in bytes.
    pub fn size_in_bytes(&self) -> usize {
        self.entries.len()
    }

    /// Checks the size limits (docs/FORMAT.md, "Limits") before anything is written.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.entries.len() + PAYLOAD_HEADER_LEN > MAX_BATCH_SIZE {
            return Err(Error::InvalidArgument(format!(
                "batch of {} bytes is over the limit of {MAX_BATCH_SIZE} bytes",
                self.entries.len()
            )));
        }
        for op in self.ops() {
            let (_, key, value) =
                op.map_err(|_| Error::InvalidArgument("malformed batch".into()))?;
            check_sizes(key, value)?;
        }
        Ok(())
    }

    /// Iterates the operations in order.
    pub(crate) fn ops(&self) -> Ops<'_> {
        Ops {
            reader: Reader::new(&self.entries),
            left: self.count,
        }
    }

    /// Appends the WAL payload for this batch with sequence numbers from `first_seq`.
    pub(crate) fn encode_payload(&self, first_seq: SeqNum, dst: &mut Vec<u8>) {
        put_fixed64(dst, first_seq);
        put_fixed32(dst, self.count);
        dst.extend_from_slice(&self.entries);
    }
}

/// Puts (`(key, Some(value))`) and deletes (`(key, None)`) in order, as batch input often
/// comes: in the seed's JSON batch body a `null` value deletes its key.
///
/// ```
/// let batch: lsmdb::WriteBatch = [("a", Some("1")), ("b", None)].into_iter().collect();
/// assert_eq!(batch.len(), 2);
/// ```
impl<K: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(K, Option<V>)> for WriteBatch {
    fn from_iter<I: IntoIterator<Item = (K, Option<V>)>>(entries: I) -> Self {
        let mut batch = WriteBatch::new();
        for (key, value) in entries {
            match value {
                Some(value) => batch.put(key, value),
                None => batch.delete(key),
            };
        }
        batch
    }
}

pub(crate) fn check_sizes(key: &[u8], value: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::InvalidArgument(format!(
            "key of {} bytes is over the limit of {MAX_KEY_SIZE} bytes",
            key.len()
        )));
    }
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::InvalidArgument(format!(
            "value of {} bytes is over the limit of {MAX_VALUE_SIZE} bytes",
            value.len()
        )));
    }
    Ok(())
}

/// One operation: its kind, key and value (empty for a delete).
pub(crate) type Op<'a> = (Kind, &'a [u8], &'a [u8]);

pub(crate) struct Ops<'a> {
    reader: Reader<'a>,
    left: u32,
}

impl<'a> Iterator for Ops<'a> {
    type Item = std::result::Result<Op<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return (!self.reader.is_empty()).then_some(Err("bytes after the last entry"));
        }
        self.left -= 1;
        Some(decode_op(&mut self.reader))
    }
}

fn decode_op<'a>(r: &mut Reader<'a>) -> std::result::Result<Op<'a>, &'static str> {
    let kind = Kind::from_u8(r.u8().ok_or("truncated entry")?).ok_or("unknown entry kind")?;
    let key = r.length_prefixed().ok_or("truncated key")?;
    let value = match kind {
        Kind::Put => r.length_prefixed().ok_or("truncated value")?,
        Kind::Delete => &[][..],
    };
    Ok((kind, key, value))
}

/// A WAL payload decoded back into its first sequence number and operations.
pub(crate) struct Payload<'a> {
    pub first_seq: SeqNum,
    pub count: u32,
    entries: &'a [u8],
}

impl<'a> Payload<'a> {
    pub(crate) fn decode(payload: &'a [u8]) -> std::result::Result<Self, &'static str> {
        let mut r = Reader::new(payload);
        let first_seq = r.fixed64().ok_or("payload shorter than its header")?;
        let count = r.fixed32().ok_or("payload shorter than its header")?;
        Ok(Payload {
            first_seq,
            count,
            entries: r.remaining(),
        })
    }

    pub(crate) fn ops(&self) -> Ops<'a> {
        Ops {
            reader: Reader::new(self.entries),
            left: self.count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let mut b = WriteBatch::new();
        b.put(b"k1", b"v1").delete(b"k2").put(b"", b"");
        let mut buf = Vec::new();
        b.encode_payload(77, &mut buf);
        let p = Payload::decode(&buf).unwrap();
        assert_eq!(p.first_seq, 77);
        assert_eq!(p.count, 3);
        let ops: Vec<_> = p.ops().collect::<std::result::Result<_, _>>().unwrap();
        assert_eq!(
            ops,
            vec![
                (Kind::Put, &b"k1"[..], &b"v1"[..]),
                (Kind::Delete, &b"k2"[..], &b""[..]),
                (Kind::Put, &b""[..], &b""[..]),
            ]
        );
    }

    #[test]
    fn malformed_payloads_are_errors_not_panics() {
        let mut b = WriteBatch::new();
        b.put(b"key", b"value");
        let mut buf = Vec::new();
        b.encode_payload(1, &mut buf);
        for cut in 0..buf.len() {
            if let Ok(p) = Payload::decode(&buf[..cut]) {
                assert!(p.ops().any(|op| op.is_err()), "cut {cut}");
            }
        }
        assert!(Payload::decode(&[1, 2, 3]).is_err());
    }

    #[test]
    fn oversized_keys_are_refused() {
        let mut b = WriteBatch::new();
        b.put(vec![0u8; MAX_KEY_SIZE + 1], b"v");
        assert!(matches!(b.validate(), Err(Error::InvalidArgument(_))));
        let mut b = WriteBatch::new();
        b.put(vec![0u8; MAX_KEY_SIZE], b"v");
        b.validate().unwrap();
    }
}
