//! The worked example of docs/FORMAT.md ("WAL records"), byte for byte: a new database's WAL
//! after one `put("k", "v")`. If this fails, the format changed: update FORMAT.md and the
//! format version together.

use lsmdb::{Db, Options};

#[test]
fn the_wal_worked_example_matches_format_md() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    db.put(b"k", b"v").unwrap();
    // Closing cuts the space the WAL reserves ahead of its records.
    db.close().unwrap();
    let wal = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a WAL file");
    let bytes = std::fs::read(&wal).unwrap();
    let expected: Vec<u8> = "
        4c 53 4d 44 42 57 41 4c 01 00 00 00 6d 40 ab 2b
        dc 79 5a 08 11 00 00 00 01
        01 00 00 00 00 00 00 00 01 00 00 00 01 01 6b 01 76"
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap())
        .collect();
    assert_eq!(bytes, expected);
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    assert!(
        doc.contains("6d 40 ab 2b") && doc.contains("dc 79 5a 08"),
        "FORMAT.md lost its example"
    );
}
