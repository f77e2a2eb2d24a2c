//! Keys the cluster keeps in the user's database for itself: the last applied log id and
//! the last membership, written in the same batch as the data they describe, so the data
//! and "how far it is" can never disagree after a crash.
//!
//! They sit under a prefix no text key can have (0xFF never occurs in UTF-8) and a random
//! binary key has about a 2^-32 chance to start with: four 0xFF bytes, then a name. A server
//! refuses them on writes ([`is_reserved_key`]) and leaves them out of reads
//! ([`without_reserved`]).

use super::error::Result;
use super::types::{LogId, StoredMembership, codec};

/// The prefix of every reserved key.
pub const RESERVED_PREFIX: &[u8] = b"\xff\xff\xff\xfflsmdb.cluster/";

pub(crate) const APPLIED_KEY: &[u8] = b"\xff\xff\xff\xfflsmdb.cluster/applied";
pub(crate) const MEMBERSHIP_KEY: &[u8] = b"\xff\xff\xff\xfflsmdb.cluster/membership";

/// Whether `key` belongs to the cluster, not to users: writes to it are refused and reads
/// do not show it.
pub fn is_reserved_key(key: &[u8]) -> bool {
    key.starts_with(RESERVED_PREFIX)
}

/// Leaves reserved keys out of a range scan (for `GET /keys/range` and dumps).
pub fn without_reserved<I, E>(
    iter: I,
) -> impl Iterator<Item = std::result::Result<(Vec<u8>, Vec<u8>), E>>
where
    I: Iterator<Item = std::result::Result<(Vec<u8>, Vec<u8>), E>>,
{
    iter.filter(|item| !matches!(item, Ok((key, _)) if is_reserved_key(key)))
}

/// The applied log id and membership a database records, as of what it holds.
pub(crate) fn read_applied_state(db: &crate::Db) -> Result<(Option<LogId>, StoredMembership)> {
    let applied = match db.get(APPLIED_KEY)? {
        Some(bytes) => codec::decode::<Option<LogId>>(&bytes, "the applied log id")?,
        None => None,
    };
    let membership = match db.get(MEMBERSHIP_KEY)? {
        Some(bytes) => codec::decode(&bytes, "the applied membership")?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_recognised_and_filtered() {
        assert!(is_reserved_key(APPLIED_KEY));
        assert!(is_reserved_key(MEMBERSHIP_KEY));
        assert!(!is_reserved_key(b"user:1"));
        assert!(!is_reserved_key(b"\xff\xff\xff\xfe"));
        assert!(!is_reserved_key(b"\xff\xff\xff\xfflsmdb.cluster"));
        let items: Vec<std::result::Result<_, ()>> = vec![
            Ok((b"a".to_vec(), b"1".to_vec())),
            Ok((APPLIED_KEY.to_vec(), b"x".to_vec())),
            Err(()),
            Ok((b"\xff\xff\xff\xff".to_vec(), b"2".to_vec())),
        ];
        let kept: Vec<_> = without_reserved(items.into_iter()).collect();
        assert_eq!(
            kept,
            vec![
                Ok((b"a".to_vec(), b"1".to_vec())),
                Err(()),
                Ok((b"\xff\xff\xff\xff".to_vec(), b"2".to_vec()))
            ]
        );
    }
}
