//! A database written in format version 1 and committed as it was (tests/fixtures/format-v1/,
//! see tests/fixtures/README.md), opened by today's code. If a change to any on-disk byte
//! (WAL, manifest, CURRENT, tables) makes old directories unreadable or read differently,
//! this fails; a deliberate format change keeps this fixture, adds one for the new version,
//! and reads both.
//!
//! The fixture holds tables on two levels (a compacted run on the bottom level and flushed
//! tables in L0), a manifest of several edits, CURRENT, and a WAL whose puts and deletes were
//! never flushed. The operations that wrote it are [`ops`]; the expected contents are those
//! operations applied to a map, not anything the engine reports.
//!
//! Regenerate (only for a new fixture directory, never over a released one):
//! `cargo test --release --test engine -- --ignored write_the_fixture`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use lsmdb::{Db, Options, SyncMode};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format-v1")
}

/// One write of the fixture's history: a put (`Some` value) or a delete.
type Op = (String, Option<String>);

/// The fixture's history in phases: after phase 0 the tables are compacted into the bottom
/// level; phases 1 and 2 are each flushed to an L0 table; phase 3 stays in the WAL.
fn ops() -> [Vec<Op>; 4] {
    let key = |i: usize| format!("key{i:04}");
    let put = |i: usize, v: &str| (key(i), Some(format!("{v}-{i}")));
    let del = |i: usize| (key(i), None);
    [
        (0..400).map(|i| put(i, "first")).collect(),
        (0..400)
            .step_by(3)
            .map(|i| put(i, "second"))
            .chain((0..400).step_by(7).map(del))
            .collect(),
        (200..500).step_by(4).map(|i| put(i, "third")).collect(),
        (0..500)
            .step_by(5)
            .map(|i| put(i, "in-the-wal"))
            .chain((1..500).step_by(11).map(del))
            .collect(),
    ]
}

fn expected() -> BTreeMap<String, Option<String>> {
    let mut model = BTreeMap::new();
    for (key, value) in ops().into_iter().flatten() {
        model.insert(key, value);
    }
    model
}

fn write(db: &Db, ops: &[Op]) {
    for chunk in ops.chunks(16) {
        let mut batch = lsmdb::WriteBatch::new();
        for (key, value) in chunk {
            match value {
                Some(v) => batch.put(key, v),
                None => batch.delete(key),
            };
        }
        db.write(&batch).unwrap();
    }
}

/// Writes the fixture. Small tables (4 KiB targets) so that the compaction leaves several;
/// no background compaction, so that nothing moves but what the phases say.
#[test]
#[ignore = "writes tests/fixtures/format-v1; run by hand for a new fixture only"]
fn write_the_fixture() {
    let dir = fixture_dir();
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let opts = Options::default()
        .sync(SyncMode::None)
        .block_size(512)
        .target_file_size(4 << 10)
        .background_compaction(false);
    let db = Db::open(&dir, opts).unwrap();
    let [compacted, flushed_a, flushed_b, in_wal] = ops();
    write(&db, &compacted);
    db.compact().unwrap();
    write(&db, &flushed_a);
    db.flush().unwrap();
    write(&db, &flushed_b);
    db.flush().unwrap();
    write(&db, &in_wal);
    db.close().unwrap();
    // The lock file holds the PID of the process that wrote it: nothing of the format.
    std::fs::remove_file(dir.join("LOCK")).unwrap();
}

/// A copy of the fixture in a temporary directory: the committed files are never opened
/// for writing.
fn copy_of_fixture() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir()).expect("tests/fixtures/format-v1 exists") {
        let path = entry.unwrap().path();
        std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
    }
    copy
}

fn assert_holds_the_fixture(db: &Db) {
    let expected = expected();
    let live: BTreeMap<String, String> = expected
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
        .collect();
    let mut scanned = BTreeMap::new();
    for item in db.iter().unwrap() {
        let (k, v) = item.unwrap();
        scanned.insert(String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap());
    }
    assert_eq!(scanned, live, "a full scan");
    for (key, value) in &expected {
        let got = db.get(key).unwrap().map(|v| String::from_utf8(v).unwrap());
        assert_eq!(&got, value, "get({key})");
    }
    assert_eq!(db.get("key9999").unwrap(), None);
}

#[test]
fn the_v1_fixture_opens_and_holds_every_key_and_tombstone() {
    let copy = copy_of_fixture();
    // Read-only first: it reads the files exactly as they were committed.
    let reader = Db::open_read_only(copy.path(), Options::default()).unwrap();
    let stats = reader.stats();
    let tables: Vec<usize> = stats.levels.iter().map(|l| l.tables).collect();
    assert!(
        tables[0] >= 2 && tables[6] >= 2,
        "the fixture should hold L0 tables and a bottom-level run: {tables:?}"
    );
    let checked = reader.check().unwrap();
    assert!(
        checked.wal_files == 1 && checked.wal_records > 0,
        "the fixture should hold one WAL of unflushed writes: {checked:?}"
    );
    assert_holds_the_fixture(&reader);
    drop(reader);
    // Then as a writer, which replays the WAL and rewrites the manifest (in the copy).
    let db = Db::open(copy.path(), Options::default()).unwrap();
    assert_holds_the_fixture(&db);
    db.compact().unwrap();
    assert_holds_the_fixture(&db);
    db.close().unwrap();
}

/// Every codec file points at the section of docs/FORMAT.md that describes its bytes, as
/// `(docs/FORMAT.md, "Heading")`; six of those pointers once named headings that did not
/// exist. Each quoted name must be a heading of FORMAT.md or the bold lead of a paragraph.
#[test]
fn every_pointer_into_format_md_names_a_section_that_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("docs/FORMAT.md")).unwrap();
    let mut sections: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| h.trim_start_matches('#').trim().to_string())
        .collect();
    sections.extend(doc.lines().filter_map(|l| {
        let lead = l.strip_prefix("**")?.split_once("**")?.0;
        Some(lead.trim_end_matches('.').to_string())
    }));
    let mut files = vec![root.join("src")];
    let mut pointers = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        // Comments joined into one text, so a pointer may wrap.
        let comments: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("//"))
            .map(|l| l.trim_start_matches(['/', '!']).trim())
            .collect::<Vec<_>>()
            .join(" ");
        for (at, _) in comments.match_indices("docs/FORMAT.md,") {
            for name in quoted_names(&comments[at + "docs/FORMAT.md,".len()..]) {
                pointers += 1;
                assert!(
                    sections.iter().any(|s| s == name),
                    "{} points at FORMAT.md section {name:?}, which does not exist",
                    path.display()
                );
            }
        }
    }
    assert!(pointers >= 20, "only {pointers} pointers found");
}

/// The names of `"A"`, `"A" and "B"` or `"A", under "B"` at the start of `text`.
fn quoted_names(mut text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    loop {
        text = text.trim_start();
        let Some((name, rest)) = text.strip_prefix('"').and_then(|t| t.split_once('"')) else {
            return names;
        };
        names.push(name);
        text = rest.trim_start();
        for joint in [",", "and", "under"] {
            text = text.strip_prefix(joint).unwrap_or(text).trim_start();
        }
    }
}
