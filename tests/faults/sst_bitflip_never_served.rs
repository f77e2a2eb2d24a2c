//! RELIABILITY.md T5: flip bits in every part of every table (data blocks, the filter, the
//! properties block, the index, the footer) and in the manifest and CURRENT. Every get and
//! every range scan afterwards gives the right answer or an error naming the damaged file;
//! none gives a wrong value, a missing key or a key that was deleted.
//!
//! A bug this pinned: the manifest reader dropped a damaged last record as if it were a
//! write cut off by a crash. A flipped bit in the last edit (often the only one: the whole
//! state written at open) made the database forget tables, serve old values or none, and
//! the next open deleted the forgotten tables as orphans. A damaged whole record at the end
//! of the manifest is now corruption; only a record cut short (or zeros) is a torn write.

use std::path::Path;

use crate::crash_harness::{Model, Rng, contents, copy_dir};
use lsmdb::{Db, Error, Options};

fn opts() -> Options {
    Options::default()
        .write_buffer_size(16 << 10)
        .block_size(256)
        .block_restart_interval(4)
        .target_file_size(8 << 10)
        .bloom_bits_per_key(10)
        .background_compaction(false)
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// A database with tables on L0 and deeper levels, overwrites and deletes, closed.
fn build(dir: &Path) -> Model {
    let mut rng = Rng::new(5);
    let mut model = Model::new();
    let db = Db::open(dir, opts()).unwrap();
    for round in 0..4 {
        for _ in 0..250 {
            let k = key(rng.range(0, 400));
            if rng.chance(15) {
                db.delete(&k).unwrap();
                model.remove(&k);
            } else {
                let v = format!("{round}-{}", "v".repeat(rng.range(5, 120) as usize));
                db.put(&k, &v).unwrap();
                model.insert(k, v.into_bytes());
            }
        }
        db.flush().unwrap();
        if round == 1 {
            db.compact().unwrap();
        }
    }
    db.close().unwrap();
    // A last session, so the manifest holds the state from the open and then an edit.
    let db = Db::open(dir, opts()).unwrap();
    db.put(key(1000), b"last").unwrap();
    model.insert(key(1000), b"last".to_vec());
    db.flush().unwrap();
    db.close().unwrap();
    model
}

/// Whether `e` reports damage in `file` (by name, with an offset for corruption).
fn is_damage(e: &Error, file: &str) -> bool {
    match e {
        Error::Corruption { path, .. } | Error::Unsupported { path, .. } => {
            path.file_name().is_some_and(|n| n == file)
        }
        // The open checks every table it names and lists each it cannot use.
        Error::TablesUnusable { tables, .. } => tables.iter().all(|e| is_damage(e, file)),
        _ => false,
    }
}

/// Opens the damaged copy and checks every answer against the model. Returns whether the
/// damage was reported somewhere (as it must be unless it went unread).
fn answers_are_right_or_errors(dir: &Path, file: &str, model: &Model, what: &str) -> bool {
    let db = match Db::open(dir, opts()) {
        Ok(db) => db,
        Err(e) => {
            assert!(
                is_damage(&e, file) || matches!(e, Error::Io { .. }),
                "{what}: open: {e}"
            );
            return true;
        }
    };
    let mut reported = false;
    for i in (0..400).chain([1000]) {
        let k = key(i);
        match db.get(&k) {
            Ok(got) => assert_eq!(got.as_ref(), model.get(&k), "{what}: get {i}"),
            Err(e) => {
                assert!(is_damage(&e, file), "{what}: get {i}: {e}");
                reported = true;
            }
        }
    }
    // A scan yields a prefix of the model, then stops at an error if it meets one.
    let mut expect = model.iter();
    match db.iter() {
        Err(e) => {
            assert!(is_damage(&e, file), "{what}: scan: {e}");
            reported = true;
        }
        Ok(it) => {
            for item in it {
                match item {
                    Ok((k, v)) => {
                        assert_eq!(Some((&k, &v)), expect.next(), "{what}: scan");
                    }
                    Err(e) => {
                        assert!(is_damage(&e, file), "{what}: scan: {e}");
                        reported = true;
                        break;
                    }
                }
            }
            if !reported {
                assert_eq!(expect.next(), None, "{what}: the scan ended early");
            }
        }
    }
    if !reported {
        // Nothing read the damaged bytes: `check` must.
        assert_eq!(contents(&db).unwrap(), *model, "{what}");
        reported = db.check().is_err();
    }
    reported
}

/// The byte ranges of a table's parts, read from its footer (docs/FORMAT.md, "SSTables").
fn table_parts(data: &[u8]) -> Vec<(&'static str, usize, usize)> {
    let footer = &data[data.len() - 64..];
    let handle = |i: usize| {
        let field = |j: usize| u64::from_le_bytes(footer[j..j + 8].try_into().unwrap()) as usize;
        (field(16 * i), field(16 * i + 8))
    };
    let (index, filter, props) = (handle(0), handle(1), handle(2));
    let first_meta = if filter.1 > 0 { filter.0 } else { props.0 };
    let mut parts = vec![
        ("data", 0, first_meta),
        ("properties", props.0, props.0 + props.1 + 5),
        ("index", index.0, index.0 + index.1 + 5),
        ("footer", data.len() - 64, data.len()),
    ];
    if filter.1 > 0 {
        parts.push(("filter", filter.0, filter.0 + filter.1 + 5));
    }
    parts
}

fn flip_and_check(template: &Path, model: &Model, file: &str, at: usize, bit: u8) -> bool {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(template, dir.path());
    let path = dir.path().join(file);
    let mut data = std::fs::read(&path).unwrap();
    data[at] ^= 1 << bit;
    std::fs::write(&path, &data).unwrap();
    answers_are_right_or_errors(
        dir.path(),
        file,
        model,
        &format!("{file} byte {at} bit {bit}"),
    )
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(suffix) || n.starts_with(suffix))
        .collect();
    names.sort();
    names
}

#[test]
fn flipped_bits_in_any_part_of_a_table_are_never_served() {
    let template = tempfile::tempdir().unwrap();
    let model = build(template.path());
    let tables = files_ending(template.path(), ".sst");
    assert!(tables.len() >= 4, "{tables:?}");
    let mut rng = Rng::new(77);
    let mut trials = 0;
    for table in &tables {
        let data = std::fs::read(template.path().join(table)).unwrap();
        for (part, start, end) in table_parts(&data) {
            for _ in 0..3 {
                let at = rng.range(start as u64, end as u64) as usize;
                let bit = rng.range(0, 8) as u8;
                let reported = flip_and_check(template.path(), &model, table, at, bit);
                assert!(reported, "{table} {part} byte {at}: damage went unnoticed");
                trials += 1;
            }
        }
    }
    assert!(trials >= 60);
}

#[test]
fn flipped_bits_in_the_manifest_are_never_served() {
    let template = tempfile::tempdir().unwrap();
    let model = build(template.path());
    let manifest = &files_ending(template.path(), "MANIFEST-")[0];
    let len = std::fs::metadata(template.path().join(manifest))
        .unwrap()
        .len() as usize;
    let mut rng = Rng::new(78);
    // Every byte of the last edit (the risky place: it could pass for a torn write), and
    // bytes anywhere else.
    let last_edit = (len.saturating_sub(80)..len).collect::<Vec<_>>();
    let elsewhere: Vec<usize> = (0..60).map(|_| rng.range(0, len as u64) as usize).collect();
    for at in last_edit.into_iter().chain(elsewhere) {
        let bit = rng.range(0, 8) as u8;
        let reported = flip_and_check(template.path(), &model, manifest, at, bit);
        assert!(reported, "{manifest} byte {at}: damage went unnoticed");
    }
    let current_len = std::fs::metadata(template.path().join("CURRENT"))
        .unwrap()
        .len();
    for at in 0..current_len as usize {
        flip_and_check(
            template.path(),
            &model,
            "CURRENT",
            at,
            rng.range(0, 8) as u8,
        );
    }
}
