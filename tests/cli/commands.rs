//! The one-shot commands, driven through the real binary: round trips, output shapes, exit
//! statuses and error messages.

use crate::binary::{lsmdb, lsmdb_path};
use predicates::prelude::*;

#[test]
fn put_get_delete_round_trip_with_exit_statuses() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path())
        .args(["put", "user:1", "Ada"])
        .assert()
        .success()
        .stdout("OK\n");
    lsmdb(dir.path())
        .args(["get", "user:1"])
        .assert()
        .success()
        .stdout("Ada");
    lsmdb(dir.path())
        .args(["get", "user:1", "--json"])
        .assert()
        .success()
        .stdout("{\"key\":\"user:1\",\"value\":\"Ada\"}\n");
    lsmdb(dir.path())
        .args(["delete", "user:1"])
        .assert()
        .success()
        .stdout("1\n");
    lsmdb(dir.path())
        .args(["del", "user:1"])
        .assert()
        .success()
        .stdout("0\n");
    lsmdb(dir.path())
        .args(["get", "user:1"])
        .assert()
        .code(1)
        .stdout("")
        .stderr("");
    lsmdb(dir.path())
        .args(["get", "user:1", "--json"])
        .assert()
        .code(1)
        .stdout("{\"key\":\"user:1\",\"value\":null}\n");
}

#[test]
fn unicode_whitespace_and_newlines_survive_a_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("key with spaces", "value with spaces"),
        ("ключ", "значение ✓"),
        ("tab\tkey", "line one\nline two\n\ttabbed"),
        ("emoji 🦀", ""),
        ("  leading", "trailing  "),
    ];
    for (k, v) in cases {
        lsmdb(dir.path()).args(["put", k, v]).assert().success();
    }
    for (k, v) in cases {
        lsmdb(dir.path())
            .args(["get", k])
            .assert()
            .success()
            .stdout(v);
        let out = lsmdb(dir.path())
            .args(["get", k, "--json"])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["value"], v);
        assert_eq!(json["key"], k);
    }
}

#[test]
fn binary_values_come_from_files_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    // Random bytes (xorshift), then every byte value once more, so that all 256 occur.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut blob: Vec<u8> = (0..100_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    blob.extend(0..=255u8);
    let file = dir.path().join("blob.bin");
    std::fs::write(&file, &blob).unwrap();
    let db = dir.path().join("db");
    lsmdb(&db)
        .args(["put", "blob", "--value-file"])
        .arg(&file)
        .assert()
        .success();
    let out = lsmdb(&db).args(["get", "blob"]).output().unwrap();
    assert_eq!(
        out.stdout, blob,
        "get into a pipe prints exactly the stored bytes"
    );
    // `get blob > copy.bin`: stdout a regular file, as the shell's redirection makes it.
    let copy = dir.path().join("copy.bin");
    let status = std::process::Command::new(crate::binary::lsmdb_path())
        .arg("--db")
        .arg(&db)
        .args(["get", "blob"])
        .stdout(std::fs::File::create(&copy).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        blob,
        "get into a file writes exactly the stored bytes"
    );
    lsmdb(&db)
        .args(["put", "piped", "-"])
        .write_stdin(b"\x00\xff raw\n".to_vec())
        .assert()
        .success();
    lsmdb(&db)
        .args(["get", "piped"])
        .assert()
        .stdout(&b"\x00\xff raw\n"[..]);
    // Non-UTF-8 bytes are base64 in JSON, and say so.
    let out = lsmdb(&db)
        .args(["get", "piped", "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["value_encoding"], "base64");
}

#[test]
fn range_is_sorted_end_exclusive_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    for (k, v) in [("b", "2"), ("a", "1"), ("d", "4"), ("c", "3")] {
        lsmdb(dir.path()).args(["put", k, v]).assert().success();
    }
    lsmdb(dir.path())
        .args(["range", "a", "d"])
        .assert()
        .success()
        .stdout("a\t1\nb\t2\nc\t3\n");
    lsmdb(dir.path())
        .args(["range", "a", "z", "--limit", "2"])
        .assert()
        .stdout("a\t1\nb\t2\n");
    lsmdb(dir.path())
        .args(["range", "d", "a"])
        .assert()
        .success()
        .stdout("");
    lsmdb(dir.path())
        .args(["scan"])
        .assert()
        .stdout("a\t1\nb\t2\nc\t3\nd\t4\n");
    lsmdb(dir.path())
        .args(["range", "b", "d", "--json"])
        .assert()
        .stdout(
            "{\"results\":[{\"key\":\"b\",\"value\":\"2\"},{\"key\":\"c\",\"value\":\"3\"}]}\n",
        );
    lsmdb(dir.path()).args(["delete", "b"]).assert().success();
    lsmdb(dir.path())
        .args(["range", "a", "z"])
        .assert()
        .stdout("a\t1\nc\t3\nd\t4\n");
    lsmdb(dir.path())
        .args(["range", "--prefix", "c"])
        .assert()
        .stdout("c\t3\n");
}

#[test]
fn batch_applies_json_and_tab_separated_input() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path())
        .args(["batch", "-", "--json"])
        .write_stdin(r#"{"keys":["user:1","user:2"],"values":["Alice","Bob"]}"#)
        .assert()
        .success()
        .stdout("{\"success\":true,\"count\":2}\n");
    lsmdb(dir.path())
        .arg("batch")
        .write_stdin("k one\tv one\nk2\tv\ttwo\n")
        .assert()
        .success()
        .stdout("OK (2 operations)\n");
    lsmdb(dir.path())
        .args(["get", "user:2"])
        .assert()
        .stdout("Bob");
    lsmdb(dir.path())
        .args(["get", "k one"])
        .assert()
        .stdout("v one");
    lsmdb(dir.path())
        .args(["get", "k2"])
        .assert()
        .stdout("v\ttwo");
    // Unlike the HTTP route (which keeps the seed's 400), the CLI takes an empty batch as a
    // no-op, as the library does.
    lsmdb(dir.path())
        .arg("batch")
        .write_stdin(r#"{"keys":[],"values":[]}"#)
        .assert()
        .success()
        .stdout("OK (0 operations)\n");
}

#[test]
fn bad_input_exits_2_with_one_clear_line_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path())
        .args(["put", "keep", "me"])
        .assert()
        .success();
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["batch", "-"],
            Some(r#"{"keys":["a","b"],"values":["1"]}"#),
            "has 2 items",
        ),
        (vec!["batch", "-"], Some("{not json"), "malformed JSON"),
        (vec!["batch", "-"], Some("no tab on this line"), "line 1"),
        (vec!["put", "", "v"], None, "must not be empty"),
        (vec!["get", ""], None, "must not be empty"),
        (
            vec!["range", "a", "z", "--limit", "many"],
            None,
            "invalid value",
        ),
        (vec!["put"], None, "required"),
        (vec!["frobnicate"], None, "unrecognized subcommand"),
        (
            vec!["--sync", "sometimes", "put", "a", "b"],
            None,
            "invalid value",
        ),
    ];
    for (args, stdin, msg) in cases {
        let mut cmd = lsmdb(dir.path());
        cmd.args(&args);
        if let Some(s) = stdin {
            cmd.write_stdin(s);
        }
        cmd.assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(msg));
    }
    lsmdb(dir.path())
        .args(["scan"])
        .assert()
        .stdout("keep\tme\n");
}

#[test]
fn reading_a_missing_database_is_an_error_not_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(&dir.path().join("nope"))
        .args(["get", "k"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("does not exist"));
    assert!(
        !dir.path().join("nope").exists(),
        "a read must not create the directory"
    );
}

#[test]
fn the_database_directory_comes_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut put = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("lsmdb"));
    put.env("LSMDB_DIR", dir.path())
        .args(["put", "k", "v"])
        .assert()
        .success();
    lsmdb(dir.path()).args(["get", "k"]).assert().stdout("v");
}

#[test]
fn every_command_has_help_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["put", "get", "delete", "range", "batch", "stats", "compact"] {
        lsmdb(dir.path())
            .args([cmd, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
    lsmdb(dir.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("Exit status"));
}

#[test]
fn a_closed_pipe_ends_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = String::new();
    for i in 0..20_000 {
        input.push_str(&format!("key{i:05}\tvalue {i}\n"));
    }
    lsmdb(dir.path())
        .arg("batch")
        .write_stdin(input)
        .assert()
        .success();
    let script = format!(
        "'{}' --db '{}' scan | head -n 1",
        lsmdb_path().display(),
        dir.path().display()
    );
    let out = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &script])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "key00000\t\"value 0\"\n"
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn stats_and_compact_report_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path()).args(["put", "a", "1"]).assert().success();
    lsmdb(dir.path()).args(["put", "b", "2"]).assert().success();
    lsmdb(dir.path()).arg("compact").assert().success().stdout(
        predicate::str::is_match(concat!(
            r"^flushed the memtable: 2 entries into 1 table \(\d+ bytes\)\n",
            r"compacted 1 table \(\d+ bytes\) into 1 table \(\d+ bytes\)\n$"
        ))
        .unwrap(),
    );
    let out = lsmdb(dir.path())
        .args(["stats", "--json"])
        .output()
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["tables"], 1);
    let entries: u64 = stats["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(entries, 2);
    lsmdb(dir.path())
        .arg("stats")
        .assert()
        .success()
        .stdout(predicate::str::contains("write amplification"));
}

/// `compact` on a database whose data was all in the memtable printed "compacted 0 tables
/// (0 bytes) into 1 tables": it now says that the memtable was flushed and how many entries
/// it held, and counts tables in the singular when there is one.
#[test]
fn compact_says_what_it_flushed_and_counts_in_words() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path())
        .arg("batch")
        .write_stdin("a\t1\nb\t2\nc\t3\n")
        .assert()
        .success();
    let first = lsmdb(dir.path()).arg("compact").assert().success();
    let first = String::from_utf8(first.get_output().stdout.clone()).unwrap();
    assert!(
        first.starts_with("flushed the memtable: 3 entries into 1 table ("),
        "{first}"
    );
    assert!(
        !first.contains("0 tables") && !first.contains("1 tables"),
        "{first}"
    );
    // Nothing left in the memtable: no flush to report.
    lsmdb(dir.path()).arg("compact").assert().success().stdout(
        predicate::str::is_match(r"^compacted 1 table \(\d+ bytes\) into 1 table \(\d+ bytes\)\n$")
            .unwrap(),
    );
    let empty = dir.path().join("empty");
    lsmdb(&empty)
        .arg("compact")
        .assert()
        .success()
        .stdout("nothing to compact: the database holds no data\n");
}

/// `get KEY > file` wrote one byte too many (a newline after the value), so `get photo >
/// photo.jpg`, the example in `get --help`, corrupted the photo. Into a file or a pipe the
/// value is now exactly the stored bytes; at a terminal a newline still ends the line.
#[test]
fn get_prints_the_stored_bytes_into_a_pipe_and_a_newline_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path()).args(["put", "k", "v"]).assert().success();
    lsmdb(dir.path())
        .args(["get", "k"])
        .assert()
        .success()
        .stdout("v");
    let mut cmd = std::process::Command::new(lsmdb_path());
    cmd.arg("--db").arg(dir.path()).args(["get", "k"]);
    let mut session = expectrl::Session::spawn(cmd).expect("spawn lsmdb get in a pty");
    let seen = expectrl::Expect::expect(&mut session, expectrl::Eof).expect("lsmdb get ends");
    assert_eq!(
        seen.as_bytes(),
        b"v\r\n",
        "at a terminal the value ends its line"
    );
}

/// `range` printed `\xff` for a byte that is not UTF-8, which bash (and the shell) read as
/// the text `xff`. Each key and value is now spelled as a shell word: pasted into bash after
/// `lsmdb get`, a key shown by `range` finds its value.
#[test]
fn keys_printed_by_range_paste_into_bash() {
    let dir = tempfile::tempdir().unwrap();
    let pairs: [(&[u8], &[u8]); 6] = [
        (b"\xff\xfe bin", b"\x01\x02"),
        (b"tab\tkey\nnewline", b"v"),
        (b"user;", b"semicolon"),
        (b"q\"u'o`t$e\\s!", b"quotes"),
        ("ключ ✓".as_bytes(), b"unicode"),
        (b"\x1b[31mred", b"escape"),
    ];
    {
        let db = lsmdb::Db::open(dir.path(), lsmdb::Options::default()).unwrap();
        for (k, v) in pairs {
            db.put(k, v).unwrap();
        }
        db.close().unwrap();
    }
    let out = lsmdb(dir.path()).arg("range").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), pairs.len(), "{text}");
    for line in text.lines() {
        let (key, _) = line.split_once('\t').unwrap();
        let script = format!(
            "'{}' --db '{}' get {key}",
            lsmdb_path().display(),
            dir.path().display()
        );
        let got = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(got.status.success(), "bash could not find {key}: {got:?}");
        assert!(
            pairs.iter().any(|(_, v)| *v == got.stdout),
            "{key} found {:?}",
            got.stdout
        );
    }
}

/// `--hex` (as ldb's): every byte, NUL included, typed and printed as hex digits; `--json`
/// output is the same with or without it.
#[test]
fn hex_keys_and_values_carry_every_byte() {
    let dir = tempfile::tempdir().unwrap();
    let key: Vec<u8> = (0..=255u8).rev().collect();
    let value: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02X}")).collect::<String>();
    lsmdb(dir.path())
        .args(["put", "--hex", &hex(&key), &format!("0x{}", hex(&value))])
        .assert()
        .success()
        .stdout("OK\n");
    lsmdb(dir.path())
        .args(["get", "--hex", &hex(&key).to_lowercase()])
        .assert()
        .success()
        .stdout(format!("0x{}\n", hex(&value)));
    // The value put as hex is stored as the bytes the digits spell.
    let db = lsmdb::Db::open_read_only(dir.path(), lsmdb::Options::default()).unwrap();
    assert_eq!(db.get(&key).unwrap(), Some(value.clone()));
    drop(db);
    let plain_json = lsmdb(dir.path())
        .args(["range", "--json"])
        .output()
        .unwrap()
        .stdout;
    lsmdb(dir.path())
        .args(["range", "--hex", "--json"])
        .assert()
        .stdout(plain_json);
    lsmdb(dir.path())
        .args(["range", "--hex", "FF", "0x00"])
        .assert()
        .stdout("");
    lsmdb(dir.path())
        .args(["range", "--hex", "--prefix", "FFFE"])
        .assert()
        .stdout(format!("0x{}\t0x{}\n", hex(&key), hex(&value)));
    lsmdb(dir.path())
        .args(["put", "--hex", "00", "-"])
        .write_stdin(" 0x0A00\n")
        .assert()
        .success();
    lsmdb(dir.path())
        .args(["get", "--hex", "00"])
        .assert()
        .stdout("0x0A00\n");
    lsmdb(dir.path())
        .args(["get", "--hex", "0xABC"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("odd number of digits"));
    lsmdb(dir.path())
        .args(["delete", "--hex", &hex(&key)])
        .assert()
        .stdout("1\n");
    lsmdb(dir.path())
        .args(["get", "--hex", &hex(&key)])
        .assert()
        .code(1);
}

/// Keys are bytes, not text: an argument that is not UTF-8 (bash's `$'\xff'`) is a key like
/// any other, where clap once refused it.
#[test]
fn arguments_that_are_not_utf8_are_keys_too() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let key = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    lsmdb(dir.path())
        .arg("put")
        .arg(key)
        .arg(std::ffi::OsStr::from_bytes(b"v\xff"))
        .assert()
        .success();
    lsmdb(dir.path())
        .arg("get")
        .arg(key)
        .assert()
        .success()
        .stdout(&b"v\xff"[..]);
    lsmdb(dir.path())
        .args(["get", "--hex", "FFFE"])
        .assert()
        .stdout("0x76FF\n");
}
