//! `lsmdb dump` and `lsmdb load` through the real binary: every byte survives `dump | load`,
//! a dump file is whole or absent, a bad line is named and its batch not applied, and
//! `--atomic` is all or nothing.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::binary::{lsmdb, lsmdb_path};
use lsmdb::{Db, Options};
use predicates::prelude::*;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Bytes from a small xorshift generator: reproducible, and no two runs need agree with
/// anything but themselves.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// Keys and values with every byte value, empty values, text that JSON escapes, and values
/// larger than a load batch.
fn every_kind_of_bytes() -> Pairs {
    let mut pairs: Pairs = (0..=255u8)
        .map(|b| (vec![b], vec![b.wrapping_mul(7); usize::from(b) % 5]))
        .collect();
    pairs.push(((0..=255u8).collect(), (0..=255u8).rev().collect()));
    pairs.push((b"empty".to_vec(), Vec::new()));
    pairs.push((b"big binary".to_vec(), noise(9 << 20, 7)));
    pairs.push((b"big text".to_vec(), b"\"quoted\" \\ \t\n ".repeat(400_000)));
    pairs.push((
        "ключ ✓".as_bytes().to_vec(),
        "значение 🦀".as_bytes().to_vec(),
    ));
    pairs.push((noise(300, 11), noise(5000, 13)));
    pairs
}

fn fill(dir: &Path, pairs: &Pairs) {
    let db = Db::open(dir, Options::default()).unwrap();
    for (k, v) in pairs {
        db.put(k, v).unwrap();
    }
    db.close().unwrap();
}

fn contents(dir: &Path) -> Pairs {
    let db = Db::open_read_only(dir, Options::default()).unwrap();
    db.iter().unwrap().map(Result::unwrap).collect()
}

fn dump(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = lsmdb(dir).arg("dump").args(args).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "nothing but data when piped: {out:?}"
    );
    out.stdout
}

#[test]
fn dump_then_load_reproduces_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let pairs = every_kind_of_bytes();
    fill(&source, &pairs);
    let mut expected = pairs.clone();
    expected.sort();
    expected.dedup_by(|a, b| a.0 == b.0);
    assert_eq!(contents(&source), expected);

    // Through a real pipe, as a user types it.
    let copy = dir.path().join("copy");
    let script = format!(
        "set -o pipefail; '{bin}' --db '{}' dump | '{bin}' --db '{}' load",
        source.display(),
        copy.display(),
        bin = lsmdb_path().display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with(&format!("OK ({} entries in ", expected.len())),
        "{out:?}"
    );
    assert!(
        out.stderr.is_empty(),
        "no progress bar into a pipe: {out:?}"
    );
    assert_eq!(contents(&copy), expected);
    let first = dump(&source, &[]);
    assert_eq!(dump(&copy, &[]), first, "the copy dumps to the same bytes");

    // Each line is the shape of `get --json`.
    let line = first
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(br#"{"key":"empty""#));
    assert_eq!(line, Some(&br#"{"key":"empty","value":""}"#[..]));

    // --hex on both sides, and a file argument.
    let hexed = dump(&source, &["--hex"]);
    let file = dir.path().join("hex.jsonl");
    std::fs::write(&file, &hexed).unwrap();
    let from_hex = dir.path().join("from-hex");
    lsmdb(&from_hex)
        .arg("load")
        .arg(&file)
        .assert()
        .success()
        .stderr("");
    assert_eq!(contents(&from_hex), expected);
}

#[test]
fn dump_takes_a_range_or_a_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: Pairs = ["a", "user:1", "user:2", "user;", "z"]
        .iter()
        .map(|k| (k.as_bytes().to_vec(), b"v".to_vec()))
        .collect();
    fill(dir.path(), &pairs);
    let keys = |out: Vec<u8>| {
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["key"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(dump(dir.path(), &["--prefix", "user:"])),
        ["user:1", "user:2"]
    );
    assert_eq!(
        keys(dump(dir.path(), &["user:2", "z"])),
        ["user:2", "user;"]
    );
    assert_eq!(keys(dump(dir.path(), &["user;"])), ["user;", "z"]);
    assert_eq!(
        keys(dump(dir.path(), &["--hex", "--prefix", "7573"])).len(),
        3
    );
}

#[test]
fn a_dump_file_is_whole_or_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    fill(
        &db,
        &(0..2000)
            .map(|i| (format!("key{i:05}").into_bytes(), noise(500, i)))
            .collect(),
    );
    let file = dir.path().join("backup.jsonl");
    lsmdb(&db)
        .arg("dump")
        .arg("--output")
        .arg(&file)
        .assert()
        .success()
        .stdout("")
        .stderr("");
    assert_eq!(std::fs::read(&file).unwrap(), dump(&db, &[]));

    // A dump cut short (here by a file-size limit: SIGXFSZ ends the process mid-write)
    // leaves the old file as it was, not half a new one.
    std::fs::write(&file, "the previous backup\n").unwrap();
    let script = format!(
        "ulimit -f 64; exec '{}' --db '{}' dump --output '{}'",
        lsmdb_path().display(),
        db.display(),
        file.display()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        !out.status.success(),
        "the dump was to be cut short: {out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "the previous backup\n"
    );

    lsmdb(&db)
        .args(["dump", "--output"])
        .arg(dir.path().join("no/such/dir/backup.jsonl"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/dir"));
}

/// Writes `lines` as load's input, one a line.
fn input(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[test]
fn a_bad_line_is_named_and_its_batch_is_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"key":"k{i}","value":"v"}}"#))
        .collect();
    lines.push(String::new());
    lines.push(r#"{"key":"k10"}"#.into());
    lines.push(r#"{"key":"k11","value":"v"}"#.into());
    let text = input(&lines.iter().map(String::as_str).collect::<Vec<_>>());
    // Each entry encodes to 6 bytes: a batch closes at its third (18 bytes >= 15), so
    // lines 1-3, 4-6 and 7-9 are applied and line 10 waits in the batch that line 12 spoils.
    lsmdb(dir.path())
        .args(["load", "--batch-bytes", "15"])
        .write_stdin(text.clone())
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            "error: line 12: expected {\"key\":..,\"value\":..}: missing field `value` (column 13); \
             9 entries were loaded before line 10, none from there on\n",
        );
    let keys: Vec<Vec<u8>> = contents(dir.path()).into_iter().map(|(k, _)| k).collect();
    let want: Vec<Vec<u8>> = (0..9).map(|i| format!("k{i}").into_bytes()).collect();
    assert_eq!(keys, want);

    // --atomic: nothing at all.
    let atomic = dir.path().join("atomic");
    lsmdb(&atomic)
        .args(["load", "--atomic"])
        .write_stdin(text)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("line 12: ")
                .and(predicate::str::contains("nothing was loaded")),
        );
    assert!(contents(&atomic).is_empty());

    for (bad, why) in [
        ("not json", "expected {\"key\""),
        (r#"{"key":"","value":"v"}"#, "the key is empty"),
        (
            r#"{"key":"k","value":"v","value_encodng":"base64"}"#,
            "unknown field `value_encodng`",
        ),
        (
            r#"{"key":"k","value":"***","value_encoding":"base64"}"#,
            "value is not base64",
        ),
        (
            r#"{"key":"k","value":"A","value_encoding":"hex"}"#,
            "odd number of digits",
        ),
    ] {
        lsmdb(&atomic)
            .arg("load")
            .write_stdin(input(&[r#"{"key":"ok","value":"1"}"#, bad]))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("line 2: ").and(predicate::str::contains(why)));
    }
    assert!(contents(&atomic).is_empty(), "nothing half-applied");
}

/// `--atomic` holds the whole input in one batch, so it is refused, with nothing written, as
/// soon as the input is seen to be larger than a batch may be (`lsmdb::MAX_BATCH_SIZE`).
#[test]
fn atomic_refuses_an_input_larger_than_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(lsmdb_path())
        .arg("--db")
        .arg(dir.path())
        .args(["load", "--atomic"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let value = "x".repeat(32 << 20);
    let writer = std::thread::spawn(move || {
        // Nine 32 MiB values make 288 MiB; load stops at the eighth, over 256 MiB, and
        // the rest of this write then fails, as it should.
        for i in 0..9 {
            let line = format!("{{\"key\":\"k{i}\",\"value\":\"{value}\"}}\n");
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 8: --atomic: the input is larger than one batch may be"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was loaded"), "{stderr}");
    assert!(contents(dir.path()).is_empty());
}

/// A progress bar on a terminal's stderr (UX.md rows 24-25), none with `--quiet` or
/// `TERM=dumb`, and none into a pipe (every other test here checks an empty stderr).
#[test]
fn load_and_dump_show_progress_only_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.jsonl");
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!(
            "{{\"key\":\"key{i:07}\",\"value\":\"value {i}\"}}\n"
        ));
    }
    std::fs::write(&file, text).unwrap();
    let run = |db: &str, args: &[&str], term: &str| {
        let mut cmd = Command::new(lsmdb_path());
        cmd.current_dir(dir.path())
            .env("TERM", term)
            .args(["--db", db])
            .args(args);
        let mut session = expectrl::Session::spawn(cmd).expect("spawn lsmdb in a pty");
        let seen = expectrl::Expect::expect(&mut session, expectrl::Eof).expect("lsmdb ends");
        String::from_utf8_lossy(seen.as_bytes()).into_owned()
    };
    let shown = run("a", &["load", "input.jsonl"], "xterm");
    assert!(
        shown.contains("load") && shown.contains("ETA") && shown.contains("MiB"),
        "{shown:?}"
    );
    assert!(
        shown.ends_with("OK (200000 entries in 2 batches)\r\n"),
        "{shown:?}"
    );
    let quiet = run("b", &["load", "--quiet", "input.jsonl"], "xterm");
    assert_eq!(quiet, "OK (200000 entries in 2 batches)\r\n");
    let dumb = run("c", &["load", "input.jsonl"], "dumb");
    assert_eq!(dumb, "OK (200000 entries in 2 batches)\r\n");
    let dumped = run("a", &["dump", "--output", "out.jsonl"], "xterm");
    assert!(dumped.contains("entries/s"), "{dumped:?}");
    assert!(
        dumped.ends_with("dumped 200000 entries to out.jsonl\r\n"),
        "{dumped:?}"
    );
}
