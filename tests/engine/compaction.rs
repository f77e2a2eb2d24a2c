//! Compaction keeps the tree small and fast as data grows (the compaction issue): L0 stays
//! under its trigger, overwritten versions and deleted keys free their space, and answers
//! stay those of a `BTreeMap`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lsmdb::{Db, Options, SyncMode};

fn opts() -> Options {
    Options::default()
        .write_buffer_size(64 << 10)
        .target_file_size(64 << 10)
        .max_bytes_for_level_base(256 << 10)
        .l0_compaction_trigger(4)
        .sync(SyncMode::None)
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// Waits until background compaction has nothing left to do.
fn wait_for_compaction(db: &Db) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = db.stats();
        let settled =
            !s.compaction_due && s.immutable_memtables == 0 && s.obsolete_tables_held == 0;
        if settled {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "compaction did not settle: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn overwrites_and_deletes_settle_within_one_and_a_half_times_the_live_data() {
    let dir = tempfile::tempdir().unwrap();
    let opts = opts();
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    let mut model = BTreeMap::new();
    let keys = 4000;
    // 5 rounds x 4000 keys x ~140 bytes is about 45 memtables' worth.
    for round in 0..5u32 {
        for i in 0..keys {
            let k = format!("key{:06}", (i * 7919) % keys);
            let v = format!("round {round} value {i} {}", "x".repeat(100));
            db.put(&k, &v).unwrap();
            model.insert(k, v);
        }
    }
    for i in (0..keys).step_by(2) {
        let k = format!("key{i:06}");
        db.delete(&k).unwrap();
        model.remove(&k);
    }
    db.flush().unwrap();
    wait_for_compaction(&db);
    let stats = db.stats();
    assert!(stats.compactions > 0, "{stats:#?}");
    assert!(
        stats.levels[0].tables < opts.l0_compaction_trigger,
        "{stats:#?}"
    );

    let got: Vec<(Vec<u8>, Vec<u8>)> = db.iter().unwrap().map(|kv| kv.unwrap()).collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = model
        .iter()
        .map(|(k, v)| (k.clone().into_bytes(), v.clone().into_bytes()))
        .collect();
    assert_eq!(got, want);
    for i in (0..keys).step_by(97) {
        let k = format!("key{i:06}");
        assert_eq!(
            db.get(&k)
                .unwrap()
                .map(String::from_utf8)
                .transpose()
                .unwrap(),
            model.get(&k).cloned()
        );
    }

    let live: u64 = model.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
    let on_disk = dir_bytes(dir.path());
    eprintln!(
        "disk use {on_disk} bytes for {live} live bytes ({:.2}x)",
        on_disk as f64 / live as f64
    );
    assert!(
        (on_disk as f64) < 1.5 * live as f64,
        "disk {on_disk} bytes for {live} bytes of live data: {stats:#?}"
    );
}

#[test]
fn l0_stays_under_the_trigger_while_writes_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let opts = opts();
    let db = Db::open(dir.path(), opts.clone()).unwrap();
    for i in 0..60_000u32 {
        db.put(
            format!("{:08}", (i * 2_654_435_761u32) % 100_000),
            [b'v'; 64],
        )
        .unwrap();
    }
    db.flush().unwrap();
    wait_for_compaction(&db);
    let s = db.stats();
    assert!(s.levels[0].tables < opts.l0_compaction_trigger, "{s:#?}");
    assert!(s.levels[1..].iter().any(|l| l.tables > 0), "{s:#?}");
    // A non-L0 level holds a sorted run: its key ranges do not overlap, which the reads
    // below rely on; every key reads back.
    for i in (0..60_000u32).step_by(101) {
        let k = format!("{:08}", (i * 2_654_435_761u32) % 100_000);
        assert!(db.get(&k).unwrap().is_some(), "{k}");
    }
}

#[test]
fn a_limited_range_reads_about_limit_entries_not_the_whole_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..50_000u32 {
        db.put(format!("{i:08}"), [b'v'; 100]).unwrap();
    }
    db.compact().unwrap();
    let before = db.stats().block_cache;
    let first: Vec<_> = db
        .range("", "~")
        .unwrap()
        .take(10)
        .map(|kv| kv.unwrap().0)
        .collect();
    assert_eq!(first.len(), 10);
    let after = db.stats().block_cache;
    let blocks_read = (after.hits + after.misses) - (before.hits + before.misses);
    // Ten 100-byte entries live in one or two 4 KiB blocks; a scan of the range would read
    // over a thousand.
    assert!(blocks_read <= 4, "read {blocks_read} blocks for 10 entries");
}

#[test]
fn an_open_iterator_keeps_compacted_tables_until_it_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), opts()).unwrap();
    for i in 0..3000u32 {
        db.put(format!("{i:06}"), format!("v{i}")).unwrap();
    }
    db.flush().unwrap();
    let tables = |dir: &std::path::Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sst"))
            .collect();
        names.sort();
        names
    };
    let before = tables(dir.path());
    let mut iter = db.iter().unwrap();
    for i in 0..3000u32 {
        db.put(format!("{i:06}"), "overwritten").unwrap();
    }
    db.compact().unwrap();
    assert!(db.stats().obsolete_tables_held > 0);
    assert!(
        before.iter().all(|t| tables(dir.path()).contains(t)),
        "the iterator's tables are still there"
    );
    // The iterator still reads its snapshot from them.
    let mut n = 0;
    while iter.valid() {
        assert_eq!(iter.value(), format!("v{n}").as_bytes());
        n += 1;
        iter.advance().unwrap();
    }
    assert_eq!(n, 3000);
    drop(iter);
    assert_eq!(db.stats().obsolete_tables_held, 0);
    assert!(
        before.iter().all(|t| !tables(dir.path()).contains(t)),
        "old tables are deleted"
    );
}
