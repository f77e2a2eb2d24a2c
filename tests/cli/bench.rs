//! `lsmdb bench`: the JSON that scripts (peerbench's compare.sh, scripts/compare-rocksdb.sh)
//! read, the honesty checks (reads find what was written, `--sync` syncs every write), and
//! the care it takes of directories. Sizes are small so this stays quick; the real runs are
//! scripts.

use std::path::Path;

use crate::binary::{lsmdb, lsmdb_path};
use serde_json::Value;

const COMMON_FIELDS: [&str; 8] = [
    "benchmark",
    "ops",
    "secs",
    "ops_per_sec",
    "p50_us",
    "p95_us",
    "p99_us",
    "max_us",
];
const WRITE_FIELDS: [&str; 4] = ["bytes_written", "disk_bytes", "write_amp", "wal_syncs"];

/// Runs `lsmdb --db DIR bench ARGS --json` and returns its lines, each checked to be a JSON
/// object (compare.sh keeps only lines that start with `{`: nothing else may be on stdout).
fn bench_json(dir: &Path, args: &[&str]) -> Vec<Value> {
    let out = lsmdb(dir)
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .map(|line| {
            assert!(line.starts_with('{'), "not a JSON line: {line:?}");
            serde_json::from_str(line).unwrap()
        })
        .collect()
}

fn by_name<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["benchmark"] == name)
        .unwrap_or_else(|| panic!("no line for {name} in {lines:?}"))
}

fn assert_fields(line: &Value, fields: &[&str]) {
    for f in fields {
        assert!(line.get(*f).is_some(), "{f} missing from {line}");
    }
}

#[test]
fn db_bench_workloads_report_every_field_and_find_every_key_after_fillseq() {
    let dir = tempfile::tempdir().unwrap();
    let lines = bench_json(
        dir.path(),
        &[
            "--benchmarks",
            "fillseq,readrandom,readseq,seekrandom",
            "--num",
            "2000",
            "--seek-nexts",
            "10",
        ],
    );
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["benchmark"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fillseq", "readrandom", "readseq", "seekrandom"]);
    for line in &lines {
        assert_fields(line, &COMMON_FIELDS);
        assert!(line["ops_per_sec"].as_f64().unwrap() > 0.0, "{line}");
    }
    let fill = by_name(&lines, "fillseq");
    assert_fields(fill, &WRITE_FIELDS);
    assert_eq!(fill["ops"], 2000);
    // 2000 keys of 16 bytes and values of 100 bytes.
    assert_eq!(fill["bytes_written"], 2000 * 116);
    for name in ["readrandom", "readseq", "seekrandom"] {
        let read = by_name(&lines, name);
        assert_eq!(read["ops"], 2000, "{read}");
        assert_eq!(read["found"], read["ops"], "{read}");
        assert_eq!(read["misses"], 0, "{read}");
    }
}

#[test]
fn readrandom_after_fillrandom_counts_its_misses() {
    // fillrandom draws keys with replacement, so about 1 - 1/e of them exist: db_bench's
    // "(X of Y found)" is below Y, and so is ours, without failing the run.
    let dir = tempfile::tempdir().unwrap();
    let lines = bench_json(
        dir.path(),
        &["--benchmarks", "fillrandom,readrandom", "--num", "2000"],
    );
    let read = by_name(&lines, "readrandom");
    let found = read["found"].as_u64().unwrap();
    assert!((1000..1600).contains(&found), "{read}");
    assert_eq!(read["misses"].as_u64().unwrap(), 2000 - found);
}

#[test]
fn bench_quick_runs_every_phase_and_every_read_finds_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let lines = bench_json(dir.path(), &["quick", "--scale", "0.02"]);
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["benchmark"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "seq_write",
            "random_write",
            "batch_write",
            "seq_read_mem",
            "random_read_mem",
            "range_100",
            "large_write",
            "seq_read_disk",
            "random_read_disk",
            "range_500",
            "mixed_70_30",
            "mixed_90_10",
        ]
    );
    for line in &lines {
        assert_fields(line, &COMMON_FIELDS);
        if line.get("found").is_some() {
            assert_eq!(line["misses"], 0, "{line}");
        }
    }
    for name in ["seq_write", "batch_write", "large_write", "mixed_70_30"] {
        assert_fields(by_name(&lines, name), &WRITE_FIELDS);
    }
}

#[test]
fn sync_flag_syncs_every_write_and_its_absence_none() {
    let dir = tempfile::tempdir().unwrap();
    let synced = bench_json(
        &dir.path().join("a"),
        &["--benchmarks", "fillrandom", "--num", "100", "--sync"],
    );
    let fill = by_name(&synced, "fillrandom");
    assert_eq!(fill["sync"], true);
    assert!(
        fill["wal_syncs"].as_u64().unwrap() >= 100,
        "a --sync run synced fewer times than it wrote: {fill}"
    );
    let unsynced = bench_json(
        &dir.path().join("b"),
        &["--benchmarks", "fillrandom", "--num", "100"],
    );
    let fill = by_name(&unsynced, "fillrandom");
    assert_eq!(fill["sync"], false);
    assert_eq!(fill["wal_syncs"], 0, "{fill}");
}

#[test]
fn the_table_shows_every_column_and_the_found_counts() {
    let dir = tempfile::tempdir().unwrap();
    let out = lsmdb(dir.path())
        .args([
            "bench",
            "--benchmarks",
            "fillseq,readrandom",
            "--num",
            "300",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    for column in [
        "ops/s", "p50", "p95", "p99", "max", "written", "on disk", "w-amp",
    ] {
        assert!(stdout.contains(column), "no {column} in\n{stdout}");
    }
    assert!(stdout.contains("300/300"), "{stdout}");
    // stderr is not a terminal here: no progress bars.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_db_directory_that_holds_data_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("precious"), "data").unwrap();
    lsmdb(dir.path())
        .args(["bench", "--benchmarks", "fillseq", "--num", "10"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--use-existing-db"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("precious")).unwrap(),
        "data"
    );
}

#[test]
fn use_existing_db_reads_what_an_earlier_run_kept() {
    let dir = tempfile::tempdir().unwrap();
    bench_json(dir.path(), &["--benchmarks", "fillseq", "--num", "500"]);
    let lines = bench_json(
        dir.path(),
        &[
            "--use-existing-db",
            "--benchmarks",
            "readseq",
            "--num",
            "500",
        ],
    );
    assert_eq!(by_name(&lines, "readseq")["found"], 500);
}

#[test]
fn the_temporary_database_is_removed_unless_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(lsmdb_path())
            .env("TMPDIR", tmp.path())
            .env_remove("LSMDB_DIR")
            .args(["bench", "--benchmarks", "fillseq", "--num", "10", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    run(&[]);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    let stderr = run(&["--keep"]);
    assert!(stderr.contains("kept the database in"), "{stderr}");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn lsmdb_dir_from_the_environment_is_never_a_bench_directory() {
    // LSMDB_DIR (or the default ./data) names the user's database: bench runs beside it in
    // a temporary directory rather than refusing or, worse, emptying it.
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("precious"), "data").unwrap();
    let out = std::process::Command::new(lsmdb_path())
        .env("LSMDB_DIR", data.path())
        .args(["bench", "--benchmarks", "fillseq", "--num", "10", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<_> = std::fs::read_dir(data.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}
