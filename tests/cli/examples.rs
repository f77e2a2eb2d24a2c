//! Every example in `lsmdb --help` and `lsmdb COMMAND --help`, pasted into bash as a user
//! would, against a small database: it must succeed, and a listing must list something.
//! `range --help` once showed `lsmdb range user: user;`, which bash cuts at the `;` into
//! `range user: user`, an empty range: the examples are now held to working when pasted.

use std::path::Path;
use std::process::Command;

use crate::binary::{lsmdb, lsmdb_path};

/// Examples that need what a test cannot give them: a server in the foreground, a long
/// benchmark, a server to connect to, running cluster nodes (tests/cluster runs `lsmdb
/// cluster`), or `jq`.
fn needs_more_than_a_test(example: &str) -> bool {
    [
        "serve",
        "curl ",
        "bench ",
        "--connect",
        "lsmdb cluster ",
        "jq ",
    ]
    .iter()
    .any(|word| example.contains(word))
}

fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = lsmdb(dir.path()).args(args).arg("--help").output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

/// The example lines of a help text: the indented lines after "Example:" or "Examples:".
fn examples(help: &str) -> Vec<String> {
    let Some((_, after)) = help.split_once("Example") else {
        return Vec::new();
    };
    after
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect()
}

/// A directory holding a database (`db`, what `LSMDB_DIR` names) and the files the examples
/// mention, with the paths outside it (`/backups`, `/var/lib/lsmdb`, `~`) moved into it.
fn sandbox(root: &Path) {
    let db = root.join("db");
    for (k, v) in [
        ("user:1", "Ada"),
        ("user:150", "Grace"),
        ("a", "1"),
        ("photo", "jpeg"),
    ] {
        lsmdb(&db).args(["put", k, v]).assert().success();
    }
    lsmdb(&db)
        .args(["put", "--hex", "00FF", "0102"])
        .assert()
        .success();
    let jsonl = lsmdb(&db).arg("dump").output().unwrap().stdout;
    for dir in [
        "home/.local/share/bash-completion/completions",
        "home/.zfunc",
        "home/.config/fish/completions",
        "man1",
        "backups",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let files: [(&str, &[u8]); 6] = [
        ("photo.jpg", b"\xff\xd8 not really a jpeg"),
        ("settings.toml", b"answer = 42\n"),
        ("users.json", br#"{"keys":["user:2"],"values":["Edsger"]}"#),
        ("changes.jsonl", &jsonl),
        ("backup.jsonl", &jsonl),
        ("setup.txt", b"put a 2\nget a\n"),
    ];
    for (name, bytes) in files {
        std::fs::write(root.join(name), bytes).unwrap();
    }
}

#[test]
fn every_example_in_the_help_works_when_pasted_into_bash() {
    let mut all = examples(&help(&[]));
    let list = help(&[]);
    let commands = list.split("Commands:\n").nth(1).unwrap();
    for command in commands.lines().take_while(|l| l.starts_with("  ")) {
        let name = command.split_whitespace().next().unwrap();
        if name != "help" {
            all.extend(examples(&help(&[name])));
        }
    }
    assert!(all.len() >= 30, "{all:#?}");
    let bin_dir = lsmdb_path().parent().unwrap();
    let template = tempfile::tempdir().unwrap();
    sandbox(template.path());
    let mut ran = 0;
    for example in all.iter().filter(|e| !needs_more_than_a_test(e)) {
        let dir = tempfile::tempdir().unwrap();
        let copied = Command::new("cp")
            .arg("-a")
            .arg(template.path().join("."))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(copied.success());
        let pasted = example
            .replace("/backups/", &format!("{}/backups/", dir.path().display()))
            .replace(
                "/usr/local/share/man/",
                &format!("{}/", dir.path().display()),
            )
            .replace("/var/lib/lsmdb", "db");
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", &pasted])
            .current_dir(dir.path())
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            )
            .env("HOME", dir.path().join("home"))
            .env("LSMDB_DIR", "db")
            .env_remove("LSMDB_URL")
            .env_remove("LSMDB_TOKEN")
            .env("MANPAGER", "cat")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{example}\n{out:?}");
        let listing = ["range", "scan", "get", "dump --prefix"];
        if listing
            .iter()
            .any(|l| example.starts_with(&format!("lsmdb {l}")))
            && !example.contains('>')
        {
            assert!(!out.stdout.is_empty(), "{example} printed nothing");
        }
        ran += 1;
    }
    assert!(ran >= 25, "only {ran} examples ran");
}
