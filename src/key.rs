//! Internal keys: a user key followed by an 8-byte trailer `(sequence << 8) | kind`,
//! little-endian (docs/FORMAT.md, "Internal keys").
//!
//! Internal keys sort by user key ascending (plain byte order), then by trailer descending,
//! so the newest version of a key comes first and a seek to `(key, snapshot)` lands on the
//! newest version visible to that snapshot.

use std::cmp::Ordering;

/// A sequence number: every write gets the next one; snapshots are sequence numbers.
pub(crate) type SeqNum = u64;

/// Sequence numbers use 56 bits; the low 8 bits of the trailer hold the kind.
pub(crate) const MAX_SEQ: SeqNum = (1 << 56) - 1;

pub(crate) const TRAILER_LEN: usize = 8;

/// What an entry records about its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    /// A tombstone: the key was deleted.
    Delete = 0,
    /// A value.
    Put = 1,
}

impl Kind {
    pub(crate) fn from_u8(b: u8) -> Option<Kind> {
        match b {
            0 => Some(Kind::Delete),
            1 => Some(Kind::Put),
            _ => None,
        }
    }
}

/// The kind with the largest code, so `(key, seq, KIND_FOR_SEEK)` sorts before every entry
/// of `key` with sequence `seq` or lower.
pub(crate) const KIND_FOR_SEEK: Kind = Kind::Put;

#[inline]
pub(crate) fn pack_trailer(seq: SeqNum, kind: Kind) -> u64 {
    (seq << 8) | kind as u64
}

pub(crate) fn append_internal_key(dst: &mut Vec<u8>, user_key: &[u8], seq: SeqNum, kind: Kind) {
    dst.extend_from_slice(user_key);
    dst.extend_from_slice(&pack_trailer(seq, kind).to_le_bytes());
}

pub(crate) fn internal_key(user_key: &[u8], seq: SeqNum, kind: Kind) -> Vec<u8> {
    let mut k = Vec::with_capacity(user_key.len() + TRAILER_LEN);
    append_internal_key(&mut k, user_key, seq, kind);
    k
}

/// The user-key part. A key too short to hold a trailer (only possible from damaged input
/// that passed a checksum) is treated as all user key, so comparisons never panic.
#[inline]
pub(crate) fn user_key(ikey: &[u8]) -> &[u8] {
    ikey.get(..ikey.len().wrapping_sub(TRAILER_LEN))
        .unwrap_or(ikey)
}

#[inline]
pub(crate) fn trailer(ikey: &[u8]) -> u64 {
    match ikey.len().checked_sub(TRAILER_LEN) {
        Some(at) => {
            let mut t = [0u8; 8];
            t.copy_from_slice(&ikey[at..]);
            u64::from_le_bytes(t)
        }
        None => 0,
    }
}

#[inline]
pub(crate) fn seq_of(ikey: &[u8]) -> SeqNum {
    trailer(ikey) >> 8
}

/// A decoded internal key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ParsedKey<'a> {
    pub user_key: &'a [u8],
    pub seq: SeqNum,
    pub kind: Kind,
}

/// Splits an internal key; `None` if it is too short or its kind is unknown.
#[inline]
pub(crate) fn parse(ikey: &[u8]) -> Option<ParsedKey<'_>> {
    if ikey.len() < TRAILER_LEN {
        return None;
    }
    let t = trailer(ikey);
    Some(ParsedKey {
        user_key: &ikey[..ikey.len() - TRAILER_LEN],
        seq: t >> 8,
        kind: Kind::from_u8(t as u8)?,
    })
}

/// The order of internal keys (see the module comment).
#[inline]
pub(crate) fn compare(a: &[u8], b: &[u8]) -> Ordering {
    match compare_bytes(user_key(a), user_key(b)) {
        Ordering::Equal => trailer(b).cmp(&trailer(a)),
        other => other,
    }
}

/// Byte order of two slices, as `a.cmp(b)`. Compares eight bytes at a time inline: keys
/// are short, and on the skiplist's hot path a call into `memcmp` costs more than the
/// comparison itself.
#[inline]
pub(crate) fn compare_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    let (mut ca, mut cb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        let (x, y) = (chunk_be(x), chunk_be(y));
        if x != y {
            return x.cmp(&y);
        }
    }
    match ca.remainder().cmp(cb.remainder()) {
        Ordering::Equal => a.len().cmp(&b.len()),
        other => other,
    }
}

#[inline]
fn chunk_be(chunk: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    u64::from_be_bytes(word)
}

/// A key to seek to for the newest version of `user_key` visible at `seq`.
pub(crate) fn lookup_key(user_key: &[u8], seq: SeqNum) -> Vec<u8> {
    internal_key(user_key, seq, KIND_FOR_SEEK)
}

/// A short user key `s` with `start <= s < limit`, used as an index separator so that
/// index blocks stay small. Returns `start` itself when nothing shorter exists.
pub(crate) fn shortest_separator(start: &[u8], limit: &[u8]) -> Vec<u8> {
    let shared = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if shared < start.len() && shared < limit.len() {
        let byte = start[shared];
        if byte < 0xff && byte + 1 < limit[shared] {
            let mut sep = start[..=shared].to_vec();
            sep[shared] += 1;
            return sep;
        }
    }
    start.to_vec()
}

/// A short user key `s >= key`, used as the last index entry of a table.
pub(crate) fn short_successor(key: &[u8]) -> Vec<u8> {
    for (i, &b) in key.iter().enumerate() {
        if b != 0xff {
            let mut s = key[..=i].to_vec();
            s[i] += 1;
            return s;
        }
    }
    key.to_vec()
}

/// The smallest key greater than every key that starts with `prefix`, or `None` when no
/// such key exists (an empty prefix or one of all 0xff bytes).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&b| b != 0xff)?;
    let mut s = prefix[..=last].to_vec();
    s[last] += 1;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_versions_sort_first() {
        let old = internal_key(b"k", 5, Kind::Put);
        let new = internal_key(b"k", 9, Kind::Delete);
        assert_eq!(compare(&new, &old), Ordering::Less);
        let other = internal_key(b"ka", 1, Kind::Put);
        assert_eq!(compare(&new, &other), Ordering::Less);
        assert_eq!(compare(&lookup_key(b"k", 9), &new), Ordering::Less);
        assert_eq!(compare(&lookup_key(b"k", 8), &new), Ordering::Greater);
        assert_eq!(compare(&lookup_key(b"k", 8), &old), Ordering::Less);
    }

    #[test]
    fn byte_comparison_matches_slice_order() {
        let keys: [&[u8]; 10] = [
            b"",
            b"a",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefgi",
            b"abcdefghijklmnop",
            b"abcdefghijklmnoq",
            b"\xff",
            b"abcdefghijklmnop\x01",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(compare_bytes(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn parse_round_trips_and_rejects_garbage() {
        let k = internal_key(b"abc", 42, Kind::Delete);
        let p = parse(&k).unwrap();
        assert_eq!(p.user_key, b"abc");
        assert_eq!(p.seq, 42);
        assert_eq!(p.kind, Kind::Delete);
        assert!(parse(b"short").is_none());
        let mut bad = k.clone();
        *bad.last_mut().unwrap() = 0; // kind lives in the low byte of the trailer
        bad[3] = 7;
        assert!(parse(&bad).is_none());
        assert_eq!(user_key(b"abc"), b"abc");
    }

    #[test]
    fn separators_lie_between_their_bounds() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"abcd", b"abzz"),
            (b"abc", b"abd"),
            (b"ab", b"abc"),
            (b"a\xff", b"b"),
            (b"", b"a"),
        ];
        for (start, limit) in cases {
            let s = shortest_separator(start, limit);
            assert!(
                start <= s.as_slice() && s.as_slice() < limit,
                "{start:?} {limit:?} {s:?}"
            );
        }
        assert_eq!(shortest_separator(b"abcd", b"abzz"), b"abd");
        assert_eq!(short_successor(b"abc"), b"b");
        assert_eq!(short_successor(b"\xff\xff"), b"\xff\xff");
        assert_eq!(prefix_successor(b"key001"), Some(b"key002".to_vec()));
        assert_eq!(prefix_successor(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff"), None);
        assert_eq!(prefix_successor(b""), None);
    }
}
