//! RELIABILITY.md T16 (issue 13): what operators do by hand to a live database, with real
//! processes and real files.
//!
//! Each test pins a bug found by doing it:
//! - `rm LOCK` under a running server let `lsmdb put` in as a second writer; both appended
//!   to the same WAL at their own offsets and an acknowledged write was lost;
//! - a `LOCK` that is a symbolic link was followed, and its target overwritten with a PID;
//! - `lsmdb check` called a table it had no permission to read "corrupt", and `lsmdb
//!   repair` moved it to `lost/`: the database went from 20,003 keys to 4;
//! - a writable open succeeded on a database missing a table; `/health` said true while
//!   every read of that table failed.

use crate::binary;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::binary::http::Server;
use crate::binary::lsmdb;
use lsmdb::{Db, Options, SyncMode};
use predicates::prelude::*;

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

#[test]
fn a_deleted_lock_lets_no_second_writer_in_and_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    assert_eq!(server.put_json("a", "1").status, 200);
    let lock = dir.path().join("LOCK");
    std::fs::remove_file(&lock).unwrap();

    lsmdb(dir.path())
        .args(["put", "d", "4"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("locked by another writer"))
        .stderr(predicate::str::contains(format!("pid {}", server.pid())))
        .stderr(predicate::str::contains(dir.path().display().to_string()));
    assert!(!lock.exists(), "the refused writer created nothing");
    assert_eq!(server.put_json("b", "2").status, 200);
    // Readers take no lock and still work beside the writer.
    lsmdb(dir.path())
        .args(["get", "a"])
        .assert()
        .success()
        .stdout("1");

    server.signal(libc::SIGTERM);
    assert!(server.wait(Duration::from_secs(30)).success());
    for (key, value) in [("a", "1"), ("b", "2")] {
        lsmdb(dir.path())
            .args(["get", key])
            .assert()
            .success()
            .stdout(value);
    }
    lsmdb(dir.path()).args(["get", "d"]).assert().code(1);
    lsmdb(dir.path()).arg("check").assert().success();
    // With the holder gone, the next writer takes the lock again.
    lsmdb(dir.path()).args(["put", "d", "4"]).assert().success();
}

#[test]
fn a_lock_that_is_a_symlink_or_a_fifo_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    lsmdb(&db).args(["put", "k", "v"]).assert().success();
    let lock = db.join("LOCK");
    let precious = dir.path().join("precious.conf");
    std::fs::write(&precious, "do not truncate\n").unwrap();
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&precious, &lock).unwrap();

    lsmdb(&db)
        .args(["put", "k", "w"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a symbolic link to"))
        .stderr(predicate::str::contains(lock.display().to_string()));
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "do not truncate\n"
    );
    lsmdb(&db).args(["get", "k"]).assert().success().stdout("v");

    std::fs::remove_file(&lock).unwrap();
    let path = std::ffi::CString::new(lock.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o644) }, 0);
    // A FIFO must not hang the open (nobody writes to it).
    lsmdb(&db)
        .args(["put", "k", "w"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("a FIFO"));
}

/// Runs the binary as the unprivileged user `nobody`: root ignores file permissions, so a
/// permission error can only be shown as another user. `None` when this test process is not
/// root and cannot switch users.
fn as_nobody(dir: &Path) -> Option<assert_cmd::Command> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: running a command as another user needs root");
        return None;
    }
    let mut cmd = assert_cmd::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(binary::lsmdb_path())
        .env_remove("LSMDB_DIR")
        .arg("--db")
        .arg(dir);
    Some(cmd)
}

/// A database of 20,003 keys, most in tables, owned by `nobody`, except one table that only
/// root may read.
fn database_with_a_table_nobody_may_read(dir: &Path) -> PathBuf {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db_dir = dir.join("db");
    let opts = Options::default()
        .background_compaction(false)
        .sync(SyncMode::None);
    let db = Db::open(&db_dir, opts).unwrap();
    for i in 0..20_000u32 {
        db.put(format!("key{i:06}"), format!("value {i}")).unwrap();
        if i % 5000 == 4999 {
            db.flush().unwrap();
        }
    }
    for key in ["x", "y", "z"] {
        db.put(key, "in the WAL").unwrap();
    }
    db.close().unwrap();
    for entry in std::fs::read_dir(&db_dir).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(&db_dir, Some(65534), Some(65534)).unwrap();
    let table = files_with_suffix(&db_dir, ".sst").remove(1);
    std::os::unix::fs::chown(&table, Some(0), Some(0)).unwrap();
    std::fs::set_permissions(&table, std::fs::Permissions::from_mode(0o600)).unwrap();
    table
}

#[test]
fn a_table_without_read_permission_is_unreadable_not_corrupt_and_repair_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let table = database_with_a_table_nobody_may_read(dir.path());
    let Some(mut check) = as_nobody(&db) else {
        return;
    };
    let out = check.arg("check").assert().code(2);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        stdout.contains(&format!("unreadable: {}", table.display()))
            && stdout.contains("Permission denied"),
        "{stdout}"
    );
    assert!(!stdout.contains("corrupt"), "{stdout}");
    assert!(!stderr.contains("repair salvages"), "{stderr}");
    let json = as_nobody(&db)
        .unwrap()
        .args(["check", "--json"])
        .assert()
        .code(2);
    let v: serde_json::Value = serde_json::from_slice(&json.get_output().stdout).unwrap();
    assert_eq!(v["problems"], serde_json::json!([]), "{v}");
    assert_eq!(v["unreadable"][0]["os_error"], 13, "{v}");

    let manifest_before = std::fs::read(db.join("CURRENT")).unwrap();
    as_nobody(&db)
        .unwrap()
        .arg("repair")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(table.display().to_string()))
        .stderr(predicate::str::contains("Permission denied"));
    assert!(table.exists(), "the table stays where it is");
    assert!(!db.join("lost").exists(), "nothing is set aside");
    assert_eq!(std::fs::read(db.join("CURRENT")).unwrap(), manifest_before);

    // Once it can be read, every key is there.
    let db = Db::open(&db, Options::default()).unwrap();
    assert_eq!(db.iter().unwrap().count(), 20_003);
}

/// A database of several tables, none compacted, and the path of each.
fn database_of_three_tables(dir: &Path) -> Vec<PathBuf> {
    let opts = Options::default()
        .background_compaction(false)
        .sync(SyncMode::None);
    let db = Db::open(dir, opts).unwrap();
    for round in 0..3 {
        for i in 0..300u32 {
            db.put(format!("r{round}-{i:04}"), format!("value {i}"))
                .unwrap();
        }
        db.flush().unwrap();
    }
    db.close().unwrap();
    files_with_suffix(dir, ".sst")
}

#[test]
fn an_open_with_a_table_missing_or_cut_short_fails_naming_each() {
    let dir = tempfile::tempdir().unwrap();
    let tables = database_of_three_tables(dir.path());
    std::fs::remove_file(&tables[0]).unwrap();
    let len = std::fs::metadata(&tables[2]).unwrap().len();
    let cut = std::fs::OpenOptions::new()
        .write(true)
        .open(&tables[2])
        .unwrap();
    cut.set_len(len / 2).unwrap();
    drop(cut);

    for args in [vec!["put", "k", "v"], vec!["get", "r1-0001"]] {
        lsmdb(dir.path())
            .args(&args)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(tables[0].display().to_string()))
            .stderr(predicate::str::contains("No such file or directory"))
            .stderr(predicate::str::contains(tables[2].display().to_string()))
            .stderr(predicate::str::contains(format!(
                "the manifest says {len} bytes, the file has {}",
                len / 2
            )))
            .stderr(predicate::str::contains("lsmdb repair"));
    }
    lsmdb(dir.path())
        .arg("check")
        .assert()
        .code(2)
        .stdout(predicate::str::contains(format!(
            "unreadable: {}",
            tables[0].display()
        )))
        .stdout(predicate::str::contains(format!(
            "corrupt: {}",
            tables[2].display()
        )));
    // A table that is gone can only be dropped; repair says so and the rest opens.
    lsmdb(dir.path())
        .arg("repair")
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "dropped: {}",
            tables[0].display()
        )));
    lsmdb(dir.path())
        .args(["get", "r1-0001"])
        .assert()
        .success()
        .stdout("value 1");
}

#[test]
fn health_turns_503_while_reads_of_a_table_fail_and_200_once_they_work() {
    let dir = tempfile::tempdir().unwrap();
    let tables = database_of_three_tables(dir.path());
    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.get("/health").status, 200);
    // The table is open (the server checked it at start); now its data is cut off under it.
    let intact = std::fs::read(&tables[1]).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tables[1])
        .unwrap()
        .set_len(10)
        .unwrap();
    let reply = server.get("/keys?key=r1-0299");
    assert_eq!(reply.status, 500, "{}", reply.text());
    let health = server.get("/health");
    assert_eq!(health.status, 503, "{}", health.text());
    assert!(
        health.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains(&tables[1].display().to_string())),
        "{}",
        health.text()
    );
    // The operator restores the file: the next read of the table works, and health is back.
    std::fs::write(&tables[1], &intact).unwrap();
    let reply = server.get("/keys?key=r1-0299");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(server.get("/health").status, 200);
}

/// Issue 13 finding 7: as a user who may not write the directory, `lsmdb shell` failed at
/// start while `get`, `range` and `check` worked; and every I/O error printed its OS error
/// twice ("Permission denied (os error 13): Permission denied (os error 13)").
#[test]
fn a_user_who_cannot_write_gets_a_read_only_shell_and_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = dir.path().join("db");
    lsmdb(&db).args(["put", "k", "v"]).assert().success();
    let Some(mut put) = as_nobody(&db) else {
        return;
    };
    let out = put.args(["put", "k", "w"]).assert().code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(stderr.matches("Permission denied").count(), 1, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let out = as_nobody(&db)
        .unwrap()
        .arg("shell")
        .write_stdin("get k\nput k w\nget k\n")
        .assert()
        .code(2);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert_eq!(stdout, "v\nv\n", "{stderr}");
    assert!(
        stderr.contains("line 2") && stderr.contains("read-only"),
        "{stderr}"
    );
    assert!(stderr.contains("cannot write to"), "{stderr}");
}
