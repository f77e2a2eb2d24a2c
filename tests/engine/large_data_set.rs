//! A data set many times the memtable: one million keys written through a 1 MiB memtable
//! (dozens of flushes and the compactions they trigger), then the database is reopened and
//! every key reads back, by point lookup and by one full scan.

use lsmdb::{Db, Options, SyncMode};

fn key(i: u32) -> [u8; 10] {
    let mut k = *b"key-000000";
    k[4..].copy_from_slice(format!("{:06}", i % 1_000_000).as_bytes());
    k
}

fn value(i: u32) -> Vec<u8> {
    // Values of varied sizes; their content depends on the key so a misplaced value shows.
    let len = 8 + (i.wrapping_mul(2_654_435_761) % 48) as usize;
    (0..len).map(|j| (i as usize + j) as u8).collect()
}

#[test]
fn a_million_keys_through_a_small_memtable_read_back_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .write_buffer_size(1 << 20)
        .target_file_size(4 << 20)
        .max_bytes_for_level_base(8 << 20)
        .sync(SyncMode::None);
    let n = 1_000_000u32;
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut batch = lsmdb::WriteBatch::new();
    // Keys in a scattered order, in batches of 100.
    for i in 0..n {
        // 7919 is prime and so coprime with n: this visits every key once. (In u64: in u32
        // the product would wrap and skip keys.)
        let k = (u64::from(i) * 7_919 % u64::from(n)) as u32;
        batch.put(key(k), value(k));
        if batch.len() == 100 {
            db.write(&batch).unwrap();
            batch.clear();
        }
    }
    db.write(&batch).unwrap();
    let stats = db.stats();
    assert!(stats.flushes >= 20, "expected many flushes: {stats:?}");
    db.close().unwrap();

    let db = Db::open(dir.path(), opts).unwrap();
    let stats = db.stats();
    assert!(stats.tables >= 5, "expected many tables: {stats:?}");
    for i in 0..n {
        assert_eq!(db.get(key(i)).unwrap(), Some(value(i)), "key {i}");
    }
    let mut count = 0u32;
    for item in db.iter().unwrap() {
        let (k, v) = item.unwrap();
        assert_eq!(k, key(count));
        assert_eq!(v, value(count));
        count += 1;
    }
    assert_eq!(count, n);
}
