//! `lsmdb completions` and `lsmdb man`: a script for every shell clap_complete knows, which
//! bash really sources and completes with; a manual page for lsmdb and for each command,
//! which groff renders without a warning.

use std::process::Command;

use crate::binary::{lsmdb, lsmdb_path};

fn stdout(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = lsmdb(dir.path()).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The commands `lsmdb --help` lists.
fn commands() -> Vec<String> {
    let help = stdout(&["--help"]);
    let list = help.split("Commands:\n").nth(1).unwrap();
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn a_completion_script_for_every_shell_names_every_command() {
    let commands = commands();
    assert!(commands.len() >= 15, "{commands:?}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&["completions", shell]);
        for command in &commands {
            assert!(script.contains(command.as_str()), "{shell} lacks {command}");
        }
    }
}

/// What bash offers for the words typed so far, `cur` being the one under the cursor.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let script = format!(
        "source <('{bin}' completions bash)\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}\n\
         _lsmdb lsmdb \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        bin = lsmdb_path().display(),
        words = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        cword = words.len() - 1,
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_sources_the_script_and_completes_commands_and_options() {
    assert_eq!(bash_completes(&["lsmdb", "du"]), ["dump"]);
    let checkpoint = bash_completes(&["lsmdb", "check"]);
    assert!(
        checkpoint.contains(&"checkpoint".to_string()),
        "{checkpoint:?}"
    );
    assert_eq!(bash_completes(&["lsmdb", "dump", "--pre"]), ["--prefix"]);
    assert_eq!(bash_completes(&["lsmdb", "completions", "fi"]), ["fish"]);
}

#[test]
fn man_pages_render_for_lsmdb_and_every_command() {
    let mut pages = vec![(String::from("lsmdb"), stdout(&["man"]))];
    for command in commands() {
        pages.push((format!("lsmdb-{command}"), stdout(&["man", &command])));
    }
    for (title, roff) in &pages {
        assert!(roff.contains(&format!(".TH {title} 1")), "{title}:\n{roff}");
        // groff parses the roff and warns about anything it does not understand.
        let Ok(mut groff) = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
        else {
            continue; // no groff here: the header check above is all there is
        };
        use std::io::Write;
        groff
            .stdin
            .take()
            .unwrap()
            .write_all(roff.as_bytes())
            .unwrap();
        let out = groff.wait_with_output().unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{title}: {out:?}"
        );
    }
    assert!(
        pages[0].1.contains("lsmdb\\-dump(1)"),
        "the main page lists the commands"
    );
    let dir = tempfile::tempdir().unwrap();
    lsmdb(dir.path())
        .args(["man", "frobnicate"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("no command named \"frobnicate\""));
}
