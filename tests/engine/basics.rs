//! The engine's basic contract through its public API: puts, gets, deletes, batches and
//! range scans, across flushes, compactions and reopens.

use lsmdb::{Db, Options, SyncMode, WriteBatch};

fn small_opts() -> Options {
    Options::default()
        .write_buffer_size(4 << 10)
        .block_size(256)
        .target_file_size(16 << 10)
        .max_bytes_for_level_base(64 << 10)
        .sync(SyncMode::None)
}

fn collect(db: &Db, start: &[u8], end: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.range(start, end)
        .unwrap()
        .map(|kv| kv.unwrap())
        .collect()
}

#[test]
fn put_get_delete_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k1", b"v1").unwrap();
    db.put(b"k2", b"").unwrap();
    assert_eq!(db.get(b"k1").unwrap(), Some(b"v1".to_vec()));
    assert_eq!(
        db.get(b"k2").unwrap(),
        Some(Vec::new()),
        "an empty value is a value"
    );
    assert_eq!(db.get(b"k3").unwrap(), None);
    db.delete(b"k1").unwrap();
    assert_eq!(db.get(b"k1").unwrap(), None);
    db.put(b"k1", b"again").unwrap();
    assert_eq!(db.get(b"k1").unwrap(), Some(b"again".to_vec()));
    db.close().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.get(b"k1").unwrap(), Some(b"again".to_vec()));
    assert_eq!(db.get(b"k2").unwrap(), Some(Vec::new()));
}

#[test]
fn binary_keys_and_values_survive_flush_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    let keys: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b, 0, 0xff, b]).collect();
    for k in &keys {
        db.put(k, [k.as_slice(), b"\0\n\t value"].concat()).unwrap();
    }
    db.flush().unwrap();
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    for k in &keys {
        assert_eq!(
            db.get(k).unwrap(),
            Some([k.as_slice(), b"\0\n\t value"].concat())
        );
    }
    let all: Vec<_> = db.iter().unwrap().map(|kv| kv.unwrap().0).collect();
    assert_eq!(all, keys);
}

#[test]
fn range_is_sorted_end_exclusive_and_skips_deleted_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    for i in 0..500 {
        db.put(format!("key{i:04}"), format!("v{i}")).unwrap();
    }
    for i in (0..500).step_by(3) {
        db.delete(format!("key{i:04}")).unwrap();
    }
    let got = collect(&db, b"key0100", b"key0200");
    let want: Vec<_> = (100..200)
        .filter(|i| i % 3 != 0)
        .map(|i| {
            (
                format!("key{i:04}").into_bytes(),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert!(
        collect(&db, b"key0200", b"key0100").is_empty(),
        "an inverted range is empty"
    );
    let first_ten: Vec<_> = db
        .range(b"key", b"kez")
        .unwrap()
        .take(10)
        .map(|kv| kv.unwrap().0)
        .collect();
    assert_eq!(first_ten.len(), 10);
    assert_eq!(first_ten[0], b"key0001");
    let prefix: Vec<_> = db
        .prefix(b"key001")
        .unwrap()
        .map(|kv| kv.unwrap().0)
        .collect();
    assert_eq!(prefix.len(), 7, "{prefix:?}");
}

#[test]
fn a_batch_is_applied_whole() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"gone", b"x").unwrap();
    let mut batch = WriteBatch::new();
    batch
        .put(b"a", b"1")
        .put(b"b", b"2")
        .delete(b"gone")
        .put(b"a", b"3");
    db.write(&batch).unwrap();
    assert_eq!(
        db.get(b"a").unwrap(),
        Some(b"3".to_vec()),
        "later ops in a batch win"
    );
    assert_eq!(db.get(b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(db.get(b"gone").unwrap(), None);
}

#[test]
fn a_snapshot_keeps_its_view_through_writes_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    for i in 0..200 {
        db.put(format!("k{i:03}"), b"old").unwrap();
    }
    let snap = db.snapshot();
    let iter = db.range(b"k", b"l").unwrap();
    for i in 0..200 {
        if i % 2 == 0 {
            db.delete(format!("k{i:03}")).unwrap();
        } else {
            db.put(format!("k{i:03}"), b"new").unwrap();
        }
    }
    db.compact().unwrap();
    assert_eq!(snap.get(b"k000").unwrap(), Some(b"old".to_vec()));
    assert_eq!(snap.get(b"k001").unwrap(), Some(b"old".to_vec()));
    assert_eq!(snap.range(b"k", b"l").unwrap().count(), 200);
    assert_eq!(
        iter.map(|kv| kv.unwrap().1).filter(|v| v == b"old").count(),
        200
    );
    assert_eq!(db.get(b"k000").unwrap(), None);
    assert_eq!(db.get(b"k001").unwrap(), Some(b"new".to_vec()));
    assert_eq!(db.range(b"k", b"l").unwrap().count(), 100);
}

#[test]
fn many_memtables_flush_compact_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small_opts()).unwrap();
    for round in 0..5 {
        for i in 0..2000 {
            db.put(format!("key{i:05}"), format!("value-{round}-{i}"))
                .unwrap();
        }
    }
    db.flush().unwrap();
    let stats = db.stats();
    assert!(stats.flushes > 10, "{stats:?}");
    for i in 0..2000 {
        assert_eq!(
            db.get(format!("key{i:05}")).unwrap(),
            Some(format!("value-4-{i}").into_bytes())
        );
    }
    db.compact().unwrap();
    let stats = db.stats();
    assert_eq!(stats.levels[0].tables, 0, "{stats:?}");
    assert_eq!(stats.levels.iter().map(|l| l.entries).sum::<u64>(), 2000);
    drop(db);
    let db = Db::open(dir.path(), small_opts()).unwrap();
    assert_eq!(db.iter().unwrap().count(), 2000);
    assert_eq!(db.get(b"key01234").unwrap(), Some(b"value-4-1234".to_vec()));
}

#[test]
fn invalid_options_fail_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let err = Db::open(dir.path(), Options::default().block_size(1)).unwrap_err();
    assert!(err.to_string().contains("block_size"), "{err}");
}

#[test]
fn a_second_writer_is_refused_and_a_reader_sees_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    let err = Db::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, lsmdb::Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("LOCK"), "{err}");
    let reader = Db::open_or_read_only(dir.path(), Options::default()).unwrap();
    assert!(reader.is_read_only());
    assert_eq!(reader.get(b"k").unwrap(), Some(b"v".to_vec()));
    let err = reader.put(b"k", b"w").unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
}
