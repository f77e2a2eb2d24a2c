//! Sorted string tables: immutable files of internal keys in order, with blocks, an index,
//! a bloom filter and a footer (docs/FORMAT.md, "Tables (SSTables)").

// A decoder: a damaged length or offset must be an error, never an index panic.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod block;
mod block_builder;
mod builder;
mod cache;
mod filter;
mod footer;
mod index;
mod table;
mod verify;

pub(crate) use block::Block;
// The fuzz targets (src/fuzzing.rs) decode blocks and filters on their own.
pub(crate) use builder::{TableBuilder, TableOptions, TableSummary};
pub(crate) use cache::BlockCache;
pub(crate) use table::{Table, TableIter};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use {block::BlockIter, filter::Filter};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bloom::key_hash;
    use crate::error::Error;
    use crate::fs::{FileSystem, OsFileSystem};
    use crate::iter::InternalIterator;
    use crate::key::{self, Kind, internal_key};
    use std::sync::Arc;

    fn opts() -> TableOptions {
        TableOptions {
            block_size: 256,
            restart_interval: 4,
            bloom_bits_per_key: 10,
        }
    }

    fn build(dir: &std::path::Path, n: u64) -> (Arc<Table>, TableSummary) {
        let path = dir.join("000001.sst");
        let mut b = TableBuilder::create(&OsFileSystem, &path, &opts()).unwrap();
        for i in 0..n {
            let k = internal_key(format!("key{i:06}").as_bytes(), i + 1, Kind::Put);
            b.add(&k, format!("value{i}").as_bytes()).unwrap();
        }
        let summary = b.finish().unwrap();
        let table =
            Table::open(&OsFileSystem, &path, 1, Arc::new(BlockCache::new(1 << 20))).unwrap();
        (Arc::new(table), summary)
    }

    #[test]
    fn a_table_reads_back_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (table, summary) = build(dir.path(), 2000);
        assert_eq!(summary.properties.entries, 2000);
        assert!(summary.properties.data_blocks > 10);
        assert_eq!(key::user_key(&summary.smallest), b"key000000");
        assert_eq!(key::user_key(&summary.largest), b"key001999");
        for i in 0..2000u64 {
            let k = format!("key{i:06}");
            let lookup = key::lookup_key(k.as_bytes(), 10_000);
            let got = table.get(&lookup, key_hash(k.as_bytes())).unwrap();
            assert_eq!(
                got,
                Some((Kind::Put, format!("value{i}").into_bytes())),
                "{k}"
            );
            // Not visible at a snapshot older than the write.
            let old = key::lookup_key(k.as_bytes(), i);
            assert_eq!(table.get(&old, key_hash(k.as_bytes())).unwrap(), None);
        }
        let missing = key::lookup_key(b"key000000x", 10_000);
        assert_eq!(table.get(&missing, key_hash(b"key000000x")).unwrap(), None);
        let mut it = table.iter();
        it.seek_to_first().unwrap();
        let mut n = 0;
        while it.valid() {
            n += 1;
            it.next().unwrap();
        }
        assert_eq!(n, 2000);
        it.seek(&key::lookup_key(b"key001500", 10_000)).unwrap();
        assert_eq!(key::user_key(it.key()), b"key001500");
        it.seek(&key::lookup_key(b"key0015000", 10_000)).unwrap();
        assert_eq!(key::user_key(it.key()), b"key001501");
        it.seek(&key::lookup_key(b"zzz", 10_000)).unwrap();
        assert!(!it.valid());
        let verified = table.verify().unwrap();
        assert_eq!((verified.entries, verified.damage.len()), (2000, 0));
    }

    #[test]
    fn the_verifier_lists_a_damaged_block_and_copies_every_other_entry_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _) = build(dir.path(), 2000);
        let path = dir.path().join("000001.sst");
        let mut data = std::fs::read(&path).unwrap();
        data[10] ^= 0x01; // inside the first data block
        std::fs::write(&path, &data).unwrap();
        let table = Table::open(&OsFileSystem, &path, 1, Arc::new(BlockCache::new(0))).unwrap();
        let verified = table.verify().unwrap();
        assert!(matches!(
            verified.damage.as_slice(),
            [Error::Corruption { offset: 0, .. }]
        ));
        let mut copied = Vec::new();
        let again = table
            .verify_and_copy(&mut |k, _| {
                copied.push(key::user_key(k).to_vec());
                Ok(())
            })
            .unwrap();
        assert_eq!(again.entries, verified.entries);
        assert_eq!(copied.len() as u64, verified.entries);
        assert!(copied.len() > 1900 && copied.len() < 2000);
        let expected: Vec<Vec<u8>> = (2000 - copied.len()..2000)
            .map(|i| format!("key{i:06}").into_bytes())
            .collect();
        assert_eq!(copied, expected);
    }

    #[test]
    fn every_flipped_byte_is_an_error_or_the_right_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _) = build(dir.path(), 300);
        let path = dir.path().join("000001.sst");
        let good = std::fs::read(&path).unwrap();
        let step = (good.len() / 400).max(1);
        for at in (0..good.len()).step_by(step) {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            std::fs::write(&path, &bad).unwrap();
            let Ok(table) = Table::open(&OsFileSystem, &path, 1, Arc::new(BlockCache::new(0)))
            else {
                continue;
            };
            let table = Arc::new(table);
            for i in (0..300u64).step_by(7) {
                let k = format!("key{i:06}");
                match table.get(
                    &key::lookup_key(k.as_bytes(), 10_000),
                    key_hash(k.as_bytes()),
                ) {
                    Ok(Some((Kind::Put, v))) => assert_eq!(v, format!("value{i}").into_bytes()),
                    Ok(None) => panic!("flip at {at} hid key {k}"),
                    Ok(Some(other)) => panic!("flip at {at} served {other:?}"),
                    Err(e) => assert!(e.is_corruption(), "{e}"),
                }
            }
            // Everything but the data blocks is checked at open, so a flip that got past the
            // open is in a data block, and a full scan finds it.
            let damage = table.verify().unwrap().damage;
            assert!(
                damage.iter().any(Error::is_corruption),
                "flip at {at} not found by the verifier"
            );
        }
        let _ = OsFileSystem.remove_file(&path);
    }
}
