//! `lsmdb shell` with a script on stdin: every command's raw reply, quoting, errors in the
//! middle of a script, `--bail`, the other output modes, and a database locked by another
//! process.

use std::path::Path;

use crate::binary::{lsmdb, lsmdb_path};
use assert_cmd::assert::Assert;
use predicates::prelude::*;

/// Runs `script` through `lsmdb shell` on `dir`, with history pointed at a file that must
/// never be written (history is for terminals only).
fn shell(dir: &Path, args: &[&str], script: &str) -> Assert {
    let histfile = dir.with_extension("history");
    let assert = lsmdb(dir)
        .arg("shell")
        .args(args)
        .env("LSMDB_HISTFILE", &histfile)
        .write_stdin(script)
        .assert();
    assert!(!histfile.exists(), "a script must not write history");
    assert
}

fn get(dir: &Path, key: &str) -> String {
    let out = lsmdb(dir).args(["get", key]).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_command_prints_its_raw_reply_with_no_prompt_or_banner() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let batch_file = dir.path().join("batch.json");
    std::fs::write(&batch_file, r#"{"keys":["j1","j2"],"values":["x",null]}"#).unwrap();
    let script = format!(
        "put user:1 Ada\n\
         get user:1\n\
         get user:2\n\
         put user:2 Grace\n\
         delete user:2\n\
         delete user:2\n\
         batch\n\
         user:3 Edsger\n\
         user:4 Barbara\n\
         \n\
         batch {}\n\
         range user: user; \n\
         range user: user; 2\n\
         range j k\n\
         stats\n\
         help get\n\
         timer off\n\
         clear\n\
         exit\n\
         put after exit\n",
        batch_file.display()
    );
    let out = shell(&db, &[], &script).success().stderr("");
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let (replies, stats_and_help) = stdout.split_at(stdout.find("level").unwrap());
    assert_eq!(
        replies,
        "OK\n\
         Ada\n\
         \n\
         OK\n\
         1\n\
         0\n\
         OK (2 operations)\n\
         OK (2 operations)\n\
         user:1\tAda\n\
         user:3\tEdsger\n\
         user:4\tBarbara\n\
         user:1\tAda\n\
         user:3\tEdsger\n\
         j1\tx\n"
    );
    assert!(
        stats_and_help.contains("last sequence: 8"),
        "{stats_and_help}"
    );
    assert!(stats_and_help.ends_with(
        "get KEY\n  Show the value stored under KEY, or (nil)\n  Example: get user:1\n"
    ));
    assert_eq!(get(&db, "after"), "", "nothing after exit runs");
}

#[test]
fn quoted_keys_and_values_reach_the_engine_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let script = "put 'key with spaces' \"value with spaces\"\n\
                  put it\\'s 'don'\\''t'\n\
                  put ключ 'значение ✓'\n\
                  put \"q\\\"uote\" 'back\\slash'\n\
                  put tabbed $'a\\tb\\x41'\n\
                  put multi 'line one\n\
                  line two'\n\
                  put empty ''\n\
                  get 'key with spaces'\n\
                  get \"it's\"\n\
                  get multi\n\
                  range tab tac\n";
    shell(dir.path(), &[], script).success().stderr("").stdout(
        "OK\nOK\nOK\nOK\nOK\nOK\nOK\n\
         value with spaces\n\
         don't\n\
         line one\nline two\n\
         tabbed\t$'a\\tbA'\n",
    );
    assert_eq!(get(dir.path(), "key with spaces"), "value with spaces");
    assert_eq!(get(dir.path(), "ключ"), "значение ✓");
    assert_eq!(get(dir.path(), "q\"uote"), "back\\slash");
    assert_eq!(get(dir.path(), "tabbed"), "a\tbA");
    lsmdb(dir.path())
        .args(["get", "empty"])
        .assert()
        .success()
        .stdout("");
}

#[test]
fn errors_mid_script_are_reported_by_line_and_the_script_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let script = "put a 1\n\
                  frobnicate\n\
                  get\n\
                  # a comment is not a command\n\
                  range a b many\n\
                  timer maybe\n\
                  batch /no/such/file\n\
                  put b 2\n\
                  get b\n\
                  put c 'never closed\n";
    shell(dir.path(), &[], script)
        .code(2)
        .stdout("OK\nOK\n2\n")
        .stderr(
            "(error) line 2: unknown command 'frobnicate' (type \"help\" for the commands)\n\
             (error) line 3: wrong number of arguments for 'get' (usage: get KEY)\n\
             (error) line 5: LIMIT must be a whole number (usage: range START END [LIMIT])\n\
             (error) line 6: expected on or off (usage: timer on|off)\n\
             (error) line 7: cannot read /no/such/file: No such file or directory (os error 2)\n\
             (error) line 10: unterminated single quote\n",
        );
    assert_eq!(get(dir.path(), "c"), "");
}

#[test]
fn a_bad_line_fails_the_whole_inline_batch() {
    let dir = tempfile::tempdir().unwrap();
    let script = "batch\n\
                  k1 v1\n\
                  only-a-key\n\
                  k3 v3\n\
                  \n\
                  get k1\n\
                  batch\n\
                  k4 'v 4'\n";
    // The last batch ends with the script, which applies it like a blank line would.
    shell(dir.path(), &[], script)
        .code(2)
        .stdout("\nOK (1 operations)\n")
        .stderr("(error) line 1: batch not applied: line 3: expected KEY VALUE, got 1 word\n");
    assert_eq!(get(dir.path(), "k1"), "");
    assert_eq!(get(dir.path(), "k4"), "v 4");
}

#[test]
fn bail_stops_at_the_first_failure() {
    for flag in ["--bail", "-e"] {
        let dir = tempfile::tempdir().unwrap();
        shell(dir.path(), &[flag], "put a 1\nget\nput b 2\n")
            .code(2)
            .stdout("OK\n")
            .stderr("(error) line 2: wrong number of arguments for 'get' (usage: get KEY)\n");
        assert_eq!(get(dir.path(), "a"), "1");
        assert_eq!(get(dir.path(), "b"), "", "{flag} must stop before line 3");
    }
}

#[test]
fn a_missing_key_is_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    shell(dir.path(), &[], "get nothing\ndelete nothing\n")
        .success()
        .stdout("\n0\n");
}

#[test]
fn text_mode_quotes_values_and_counts_entries() {
    let dir = tempfile::tempdir().unwrap();
    let script = "put a 1\n\
                  put long-key 'two words'\n\
                  put esc $'tab\\there \"q\"'\n\
                  get a\n\
                  get missing\n\
                  delete a\n\
                  range '' ''\n\
                  range x y\n";
    shell(dir.path(), &["--no-raw"], script).success().stdout(
        "OK\nOK\nOK\n\
         \"1\"\n\
         (nil)\n\
         (integer) 1\n\
         \"esc\"       $'tab\\there \"q\"'\n\
         \"long-key\"  \"two words\"\n\
         (2 entries)\n\
         (0 entries)\n",
    );
}

#[test]
fn mode_switches_between_json_raw_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let script = ".mode json\n\
                  put a 1\n\
                  get a\n\
                  get b\n\
                  delete a\n\
                  put b $'\\xff'\n\
                  range '' ''\n\
                  batch\n\
                  c 3\n\
                  \n\
                  .mode text\n\
                  get c\n\
                  mode raw\n\
                  get c\n";
    shell(dir.path(), &[], script).success().stdout(
        "{\"success\":true}\n\
         {\"key\":\"a\",\"value\":\"1\"}\n\
         {\"key\":\"b\",\"value\":null}\n\
         {\"success\":true,\"deleted\":1}\n\
         {\"success\":true}\n\
         {\"results\":[{\"key\":\"b\",\"value\":\"/w==\",\"value_encoding\":\"base64\"}]}\n\
         {\"success\":true,\"count\":1}\n\
         \"3\"\n\
         3\n",
    );
}

#[test]
fn timer_reports_each_command_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = shell(
        dir.path(),
        &[],
        ".timer on\nput a 1\nget a\n.timer off\nget a\n",
    )
    .success()
    .stdout("OK\n1\n1\n");
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    let timing = predicate::str::is_match(r"^\(\d+\.\d{3} ms\)$").unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    // The put and the first get: not the settings, nor the get after `.timer off`.
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines.iter().all(|l| timing.eval(l)), "{stderr}");
}

#[test]
fn a_locked_database_opens_read_only_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let holder = lsmdb::Db::open(dir.path(), lsmdb::Options::default()).unwrap();
    holder.put("k", "held").unwrap();
    holder.sync().unwrap();
    let why = format!(
        "another process, pid {}, holds the write lock",
        std::process::id()
    );
    shell(
        dir.path(),
        &[],
        "get k\nput k2 v\ndelete k\nbatch\nk3 v\n\nget k\n",
    )
    .code(2)
    .stdout("held\nheld\n")
    .stderr(format!(
        "(error) line 2: cannot put: the database is open read-only ({why})\n\
             (error) line 3: cannot delete: the database is open read-only ({why})\n\
             (error) line 4: cannot apply the batch: the database is open read-only ({why})\n"
    ));
    drop(holder);
}

#[test]
fn a_closed_pipe_ends_the_script_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut script = String::from("batch\n");
    for i in 0..5_000 {
        script.push_str(&format!("key{i:05} 'value {i}'\n"));
    }
    script.push_str("\nrange '' ''\nrange '' ''\n");
    let script_path = dir.path().join("script.txt");
    std::fs::write(&script_path, script).unwrap();
    let command = format!(
        "'{}' --db '{}' shell < '{}' | head -n 2",
        lsmdb_path().display(),
        dir.path().join("db").display(),
        script_path.display()
    );
    let out = std::process::Command::new("bash")
        .args(["-o", "pipefail", "-c", &command])
        .env("LSMDB_HISTFILE", "")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK (5000 operations)\nkey00000\t\"value 0\"\n"
    );
    assert!(
        out.status.success() && stderr.is_empty(),
        "stderr: {stderr}"
    );
}

#[test]
fn help_lists_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = shell(dir.path(), &[], "help\n").success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for usage in [
        "get KEY",
        "put KEY VALUE",
        "delete KEY",
        "range START END [LIMIT]",
        "batch [FILE]",
        "stats",
        "help [COMMAND]",
        "timer on|off",
        "mode text|json|raw",
        "clear",
        "exit",
    ] {
        assert!(
            stdout.contains(&format!("  {usage} ")),
            "{usage} missing:\n{stdout}"
        );
    }
}

/// After `put $'\xff\x00z' binkey` the shell showed the key as `"\xff\u{0}z"`, which its own
/// parser reads as other bytes: typing back what it showed found nothing. Keys and values
/// are now shown, in text and raw replies alike, spelled as the shell reads them back.
#[test]
fn keys_shown_by_the_shell_are_found_when_typed_back() {
    let dir = tempfile::tempdir().unwrap();
    let setup = "put $'\\xff\\x00z' binkey\n\
                 put 'two words' $'line\\nbreak'\n\
                 put $'tab\\t\"q\" \\'s' '$HOME \\\\ `x` !'\n\
                 put $'\\x1b[31mred' $'\\xc3'\n\
                 put plain ''\n";
    shell(dir.path(), &[], setup).success();

    // Raw replies: KEY<TAB>VALUE, and `get KEY` typed from that finds VALUE.
    let raw = shell(dir.path(), &[], "range '' ''\n").success();
    let raw = String::from_utf8(raw.get_output().stdout.clone()).unwrap();
    assert!(raw.contains("$'\\xff\\x00z'\tbinkey\n"), "{raw}");
    let mut script = String::from(".mode json\n");
    let mut shown_values = Vec::new();
    for line in raw.lines() {
        let (key, value) = line.split_once('\t').unwrap();
        script.push_str(&format!("get {key}\n"));
        shown_values.push(value.to_string());
    }
    let found = shell(dir.path(), &[], &script).success();
    let found = String::from_utf8(found.get_output().stdout.clone()).unwrap();
    assert_eq!(found.lines().count(), 5, "{found}");
    assert!(
        !found.contains("null"),
        "a key shown was not found:\n{raw}\n{found}"
    );

    // Text replies: each row typed back after `put` names the same key and value, so the
    // database still has five keys, each with its value.
    let text = shell(dir.path(), &["--no-raw"], "range '' ''\n").success();
    let text = String::from_utf8(text.get_output().stdout.clone()).unwrap();
    assert!(text.contains("$'\\xff\\x00z'"), "{text}");
    let rows: Vec<&str> = text.lines().filter(|l| !l.starts_with('(')).collect();
    assert_eq!(rows.len(), 5, "{text}");
    let again: String = rows.iter().map(|row| format!("put {row}\n")).collect();
    shell(dir.path(), &[], &again).success().stderr("");
    let after = shell(dir.path(), &[], "range '' ''\n").success();
    assert_eq!(
        String::from_utf8(after.get_output().stdout.clone()).unwrap(),
        raw,
        "typing back the rows shown changed the data"
    );
}

/// Every byte value, in a key and in a value, typed in `$'..'`, shown by the shell, and
/// typed back as shown: the same bytes each time (JSON mode reads them out in base64).
#[test]
fn all_256_byte_values_survive_the_shells_display_and_input() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD as BASE64;
    let dir = tempfile::tempdir().unwrap();
    let value: Vec<u8> = (0..=255u8).collect();
    let key: Vec<u8> = (0..=255u8).rev().collect();
    let spell = |bytes: &[u8]| -> String {
        let escaped: String = bytes.iter().map(|b| format!("\\x{b:02x}")).collect();
        format!("$'{escaped}'")
    };
    let script = format!("put {} {}\nrange '' ''\n", spell(&key), spell(&value));
    let shown = shell(dir.path(), &["--no-raw"], &script).success();
    let shown = String::from_utf8(shown.get_output().stdout.clone()).unwrap();
    let row = shown.lines().nth(1).unwrap();
    assert!(
        !row.chars().any(char::is_control),
        "one printable line: {row:?}"
    );
    // The row, typed back after `put`, names the same key and value: one entry, unchanged.
    let again = format!("put {row}\n.mode json\nrange '' ''\n");
    let out = shell(dir.path(), &[], &again).success().stderr("");
    let json = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let reply: serde_json::Value = serde_json::from_str(json.lines().nth(1).unwrap()).unwrap();
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{json}");
    let field = |name: &str| BASE64.decode(results[0][name].as_str().unwrap()).unwrap();
    assert_eq!(field("key"), key);
    assert_eq!(field("value"), value);
}
