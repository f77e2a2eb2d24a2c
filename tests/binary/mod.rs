//! Driving the real `lsmdb` binary: `lsmdb()` for one-shot commands through assert_cmd, and
//! `http` for `lsmdb serve` and a raw HTTP/1.1 client. Included by the cli, crash, http and
//! shell test crates.
#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

pub mod http;

/// The `lsmdb` binary built by this package, with `--db` pointing at `dir` and no
/// environment leaking in from the developer's shell.
pub fn lsmdb(dir: &Path) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin!("lsmdb"));
    cmd.env_remove("LSMDB_DIR")
        .env_remove("LSMDB_TOKEN")
        .env_remove("LSMDB_URL")
        .env_remove("LOG_LEVEL");
    cmd.arg("--db").arg(dir);
    cmd
}

/// The path of the `lsmdb` binary, for tests that spawn it themselves.
pub fn lsmdb_path() -> &'static Path {
    Path::new(assert_cmd::cargo::cargo_bin!("lsmdb"))
}
