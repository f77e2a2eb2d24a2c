//! `lsmdb shell --connect` with a script: every command through a running server, whose
//! directory it could not open for writing itself; any bytes, as base64 on the wire; the
//! token from the environment; and a clear error without it.

use crate::binary::http::Server;
use crate::binary::lsmdb;
use predicates::prelude::*;

#[test]
fn a_script_runs_through_the_server_with_any_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--token", "t0ken"]);
    let url = format!("http://{}", server.addr);
    let script = "put user:1 Ada\n\
                  put $'\\xff\\x00key' $'\\x00\\x01\\xfe'\n\
                  put 'two words' ''\n\
                  get user:1\n\
                  get nothing\n\
                  batch\n\
                  user:2 Grace\n\
                  user:3 $'\\t'\n\
                  \n\
                  delete user:3\n\
                  delete user:3\n\
                  range user: user;\n\
                  range '' ''\n\
                  .mode json\n\
                  get $'\\xff\\x00key'\n";
    let out = lsmdb(&dir.path().join("unused"))
        .args(["shell", "--connect", &url])
        .env("LSMDB_TOKEN", "t0ken")
        .env("LSMDB_HISTFILE", "")
        .write_stdin(script)
        .assert()
        .success()
        .stderr("");
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        stdout,
        "OK\nOK\nOK\n\
         Ada\n\
         \n\
         OK (2 operations)\n\
         1\n\
         0\n\
         user:1\tAda\n\
         user:2\tGrace\n\
         \"two words\"\t\"\"\n\
         user:1\tAda\n\
         user:2\tGrace\n\
         $'\\xff\\x00key'\t$'\\x00\\x01\\xfe'\n\
         {\"key\":\"/wBrZXk=\",\"key_encoding\":\"base64\",\"value\":\"AAH+\",\"value_encoding\":\"base64\"}\n"
    );
    // The server holds the directory and has the bytes exactly.
    let auth = [("Authorization", "Bearer t0ken")];
    let reply = server
        .connect()
        .request("GET", "/keys?key=%FF%00key&encoding=base64", &auth, None);
    assert_eq!(reply.json()["value"], "AAH+", "{}", reply.text());
}

#[test]
fn a_long_range_comes_page_by_page() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut batch = String::from("batch\n");
    for i in 0..1000 {
        batch.push_str(&format!("k{i:04} v{i}\n"));
    }
    batch.push_str("\nrange '' ''\nrange k0500 k0503\nrange k0998 ''\n");
    let out = lsmdb(&dir.path().join("unused"))
        .args(["shell", "--connect", &server.addr.to_string()])
        .write_stdin(batch)
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "OK (1000 operations)");
    assert_eq!(lines.len(), 1 + 1000 + 3 + 2, "{stdout}");
    assert_eq!(
        lines[1001..],
        [
            "k0500\tv500",
            "k0501\tv501",
            "k0502\tv502",
            "k0998\tv998",
            "k0999\tv999"
        ]
    );
}

#[test]
fn without_the_token_the_shell_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--token", "t0ken"]);
    lsmdb(dir.path())
        .args(["shell", "--connect", &server.addr.to_string()])
        .write_stdin("get a\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("401").and(predicate::str::contains("LSMDB_TOKEN")));
    lsmdb(dir.path())
        .args(["shell", "--connect", "http://127.0.0.1:1"])
        .write_stdin("get a\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot reach the server"));
}
