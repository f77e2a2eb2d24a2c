//! `lsmdb shell` at a real terminal: the child runs in a pseudo-terminal (expectrl), keys are
//! typed into it, and its output is fed to a terminal emulator (vt100) so that the tests
//! check what a person would see on the screen, not the escape sequences that draw it.

use std::io::{ErrorKind, Write};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::binary;
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;

const ROWS: u16 = 60;
const COLS: u16 = 100;
const UP: &str = "\x1b[A";
const CTRL_C: &str = "\x03";
const CTRL_D: &str = "\x04";
/// Only a guard against a hung shell: every wait ends as soon as the screen shows its text.
const PATIENCE: Duration = Duration::from_secs(20);

struct Terminal {
    session: OsSession,
    screen: vt100::Parser,
    /// What the shell prompts with: `lsmdb:db> `, or `host:port> ` when connected.
    prompt: String,
}

impl Terminal {
    /// Starts `lsmdb --db db shell` in `dir`, with history in `histfile`.
    fn start(dir: &Path, histfile: &Path) -> Terminal {
        Terminal::start_with(dir, histfile, &[])
    }

    fn start_with(dir: &Path, histfile: &Path, args: &[&str]) -> Terminal {
        let mut cmd = Command::new(binary::lsmdb_path());
        cmd.args(["--db", "db", "shell"])
            .args(args)
            .current_dir(dir)
            .env("LSMDB_HISTFILE", histfile)
            .env("TERM", "xterm")
            .env_remove("NO_COLOR")
            .env_remove("LSMDB_DIR")
            .env_remove("LSMDB_URL")
            .env_remove("LSMDB_TOKEN");
        Terminal::spawn(cmd)
    }

    fn spawn(cmd: Command) -> Terminal {
        let mut session = expectrl::Session::spawn(cmd).expect("spawn lsmdb shell in a pty");
        session
            .get_process_mut()
            .set_window_size(COLS, ROWS)
            .expect("set the window size");
        Terminal {
            session,
            screen: vt100::Parser::new(nonzero(ROWS), nonzero(COLS), 0),
            prompt: "lsmdb:db> ".to_string(),
        }
    }

    fn send(&mut self, keys: &str) {
        self.session.write_all(keys.as_bytes()).unwrap();
        self.session.flush().unwrap();
    }

    /// Reads output until the screen satisfies `done`; returns the screen's text.
    fn wait_until(&mut self, what: &str, done: impl Fn(&Terminal) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0u8; 4096];
        loop {
            if done(self) {
                return self.text();
            }
            match self.session.try_read(&mut buf) {
                Ok(0) => {}
                Ok(n) => self.screen.process(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                // EIO: the child closed the terminal; what it drew is all there is.
                Err(_) => {
                    if done(self) {
                        return self.text();
                    }
                    panic!(
                        "the shell exited before {what}; the screen shows:\n{}",
                        self.text()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "waited in vain for {what}; the screen shows:\n{}",
                self.text()
            );
        }
    }

    fn wait_for(&mut self, text: &str) -> String {
        self.wait_until(text, |t| t.text().contains(text))
    }

    /// Waits until the text left of the cursor is `line` (a hint may follow it): the shell
    /// is ready for keys.
    fn wait_for_line(&mut self, line: &str) {
        self.wait_until(&format!("the line {line:?}"), |t| t.before_cursor() == line);
    }

    fn wait_for_prompt(&mut self) {
        let prompt = self.prompt.clone();
        self.wait_for_line(&prompt);
    }

    /// Types a line and waits for the shell to finish it and prompt again.
    fn run(&mut self, line: &str) {
        self.wait_for_prompt();
        let prompt = self.prompt.clone();
        let prompts = self.text().matches(prompt.trim_end()).count();
        self.send(line);
        self.send("\r");
        self.wait_until(&format!("{line:?} to finish"), |t| {
            t.text().matches(prompt.trim_end()).count() > prompts && t.before_cursor() == prompt
        });
    }

    fn before_cursor(&self) -> String {
        let (row, col) = self.screen.screen().cursor_position();
        let text = self.row(row);
        let left: String = text.chars().take(col as usize).collect();
        format!("{left:<width$}", width = col as usize)
    }

    fn row(&self, row: u16) -> String {
        self.screen
            .screen()
            .rows(0, COLS)
            .nth(row as usize)
            .unwrap_or_default()
            .trim_end()
            .to_string()
    }

    fn text(&self) -> String {
        self.screen.screen().contents()
    }

    /// The exit status, once the shell has closed the terminal and exited.
    fn exit_status(mut self) -> i32 {
        let deadline = Instant::now() + PATIENCE;
        let mut buf = [0u8; 4096];
        loop {
            // Keep reading, so that the shell never blocks writing to the terminal.
            if let Ok(n @ 1..) = self.session.try_read(&mut buf) {
                self.screen.process(&buf[..n]);
                continue;
            }
            match self.session.get_process().status() {
                Ok(WaitStatus::Exited(_, code)) => return code,
                Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                other => panic!(
                    "the shell did not exit ({other:?}); the screen shows:\n{}",
                    self.text()
                ),
            }
        }
    }
}

fn nonzero(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("a terminal has rows and columns")
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let histfile = dir.path().join("history");
    (dir, histfile)
}

#[test]
fn typing_recalling_completing_and_cancelling_at_a_terminal() {
    let (dir, histfile) = setup();
    let mut term = Terminal::start(dir.path(), &histfile);
    let banner = term.wait_for("Type \"help\" for usage hints.");
    assert!(banner.starts_with(&format!(
        "lsmdb {} shell on db\n",
        env!("CARGO_PKG_VERSION")
    )));

    term.run("put greeting 'hello world'");
    term.run("get greeting");
    term.run("get missing");
    let screen = term.text();
    assert!(
        screen.contains("lsmdb:db> put greeting 'hello world'\nOK\n"),
        "{screen}"
    );
    assert!(
        screen.contains("lsmdb:db> get greeting\n\"hello world\"\n"),
        "{screen}"
    );
    assert!(
        screen.contains("lsmdb:db> get missing\n(nil)\n"),
        "{screen}"
    );

    // The up arrow walks back through history; Enter runs the recalled line.
    term.wait_for_prompt();
    term.send(UP);
    term.wait_for_line("lsmdb:db> get missing");
    term.send(UP);
    term.wait_for_line("lsmdb:db> get greeting");
    term.send("\r");
    term.wait_for_prompt();
    assert_eq!(term.text().matches("\"hello world\"").count(), 2);

    // Tab completes a command name, then a key by its prefix.
    term.send("ge\t");
    term.wait_for_line("lsmdb:db> get ");
    term.send("gr\t");
    term.wait_for_line("lsmdb:db> get greeting ");
    term.send("\r");
    term.wait_for_prompt();
    assert_eq!(term.text().matches("\"hello world\"").count(), 3);

    // A grey hint shows the arguments still to type; it is not part of the line.
    term.send("range");
    term.wait_for("lsmdb:db> range START END [LIMIT]");
    term.send(" '' ''\r");
    term.wait_for("\"greeting\"  \"hello world\"\n(1 entry)");

    // Ctrl-C drops the line being typed and the shell stays.
    term.wait_for_prompt();
    term.send("put cancelled");
    term.wait_for("lsmdb:db> put cancelled");
    term.send(CTRL_C);
    term.wait_for("lsmdb:db> put cancelled^C\nlsmdb:db>");
    term.run("get cancelled");
    assert!(term.text().contains("lsmdb:db> get cancelled\n(nil)"));

    // A bad command is one line of error; the session goes on.
    term.run("frob");
    term.wait_for("(error) unknown command 'frob' (type \"help\" for the commands)\nlsmdb:db>");

    // Ctrl-D closes the engine cleanly and exits 0.
    term.wait_for_prompt();
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
    let history = std::fs::read_to_string(&histfile).unwrap();
    assert!(
        history.contains("put greeting 'hello world'\n"),
        "{history}"
    );
    assert!(!history.contains("put cancelled"), "{history}");
    binary::lsmdb(&dir.path().join("db"))
        .args(["get", "greeting"])
        .assert()
        .success()
        .stdout("hello world");
}

#[test]
fn history_is_kept_across_runs() {
    let (dir, histfile) = setup();
    let mut term = Terminal::start(dir.path(), &histfile);
    term.run("put k v");
    term.wait_for_prompt();
    term.send("exit\r");
    assert_eq!(term.exit_status(), 0);

    let mut term = Terminal::start(dir.path(), &histfile);
    term.wait_for_prompt();
    term.send(UP);
    term.wait_for_line("lsmdb:db> exit");
    term.send(UP);
    term.wait_for_line("lsmdb:db> put k v");
    term.send(CTRL_C);
    term.wait_for_prompt();
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
}

#[test]
fn batches_multi_line_values_and_the_timer_at_a_terminal() {
    let (dir, histfile) = setup();
    let mut term = Terminal::start(dir.path(), &histfile);
    term.wait_for_prompt();
    term.send("batch\r");
    term.wait_for_line("lsmdb:db(batch)> ");
    term.send("a 1\r");
    term.wait_for_line("lsmdb:db(batch)> ");
    term.send("b 'two words'\r");
    term.wait_for_line("lsmdb:db(batch)> ");
    term.send("\r");
    term.wait_for("OK (2 operations)");

    // Enter inside an open quote continues the line, so a value can hold a newline.
    term.wait_for_prompt();
    term.send("put poem 'roses\r");
    term.wait_until("a continuation line", |t| {
        t.text().contains("lsmdb:db> put poem 'roses") && t.before_cursor().is_empty()
    });
    term.send("violets'\r");
    term.wait_for("violets'\nOK");

    term.run(".timer on");
    term.run("get poem");
    let screen = term.text();
    let timing = timing_follows(&screen);
    assert!(screen.contains("$'roses\\nviolets'\n"), "{screen}");
    assert!(timing, "no timing after get:\n{screen}");

    term.wait_for_prompt();
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
}

/// A batch discarded at a terminal (Ctrl-C) once printed the time since `batch` was typed,
/// the person's typing included, as if a slow command had run: nothing ran, so no timing.
#[test]
fn a_discarded_batch_is_not_timed() {
    let (dir, histfile) = setup();
    let mut term = Terminal::start(dir.path(), &histfile);
    term.wait_for_prompt();
    term.send("batch\r");
    term.wait_for_line("lsmdb:db(batch)> ");
    // Longer than the threshold above which every command's time is shown.
    std::thread::sleep(std::time::Duration::from_millis(700));
    term.send("a 1\r");
    term.wait_for_line("lsmdb:db(batch)> ");
    term.send(CTRL_C);
    term.wait_for("(batch discarded)");
    term.wait_for_prompt();
    let screen = term.text();
    let after = screen.split("(batch discarded)\n").nth(1).unwrap_or("");
    assert!(after.starts_with("lsmdb:db> "), "{screen}");
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
}

/// Whether a `(N.NNN ms)` timing line follows the reply to `get poem`.
fn timing_follows(screen: &str) -> bool {
    let after = screen.split("$'roses\\nviolets'\n").nth(1).unwrap_or("");
    let line = after.lines().next().unwrap_or("");
    line.starts_with('(')
        && line.ends_with(" ms)")
        && line[1..line.len() - 4].parse::<f64>().is_ok()
}

#[test]
fn a_locked_database_opens_read_only_and_says_why_writes_fail() {
    let (dir, histfile) = setup();
    let db_dir = dir.path().join("db");
    let holder = lsmdb::Db::open(&db_dir, lsmdb::Options::default()).unwrap();
    holder.put("k", "held").unwrap();
    let pid = std::process::id();

    let mut term = Terminal::start(dir.path(), &histfile);
    let banner = term.wait_for("Type \"help\"");
    assert!(
        banner.contains(&format!(
            "Opened read-only: process {pid} holds the write lock.\n\
             Reads see the data as it was when the shell started; put, delete and batch are refused.\n"
        )),
        "{banner}"
    );
    term.wait_for_line("lsmdb:db(read-only)> ");
    term.send("get k\r");
    term.wait_for("\"held\"");
    // As the banner says, the writer's later changes are not seen.
    holder.put("later", "x").unwrap();
    term.wait_for_line("lsmdb:db(read-only)> ");
    term.send("get later\r");
    term.wait_for("lsmdb:db(read-only)> get later\n(nil)");
    term.wait_for_line("lsmdb:db(read-only)> ");
    term.send("put k v\r");
    term.wait_for(&format!(
        "(error) cannot put: the database is open read-only (another process, pid {pid}, holds the write lock)"
    ));
    term.wait_for_line("lsmdb:db(read-only)> ");
    term.send("batch\r");
    term.wait_for(&format!(
        "(error) cannot start a batch: the database is open read-only (process {pid} holds the write lock)"
    ));
    term.wait_for_line("lsmdb:db(read-only)> ");
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
    assert_eq!(holder.get("k").unwrap().as_deref(), Some(&b"held"[..]));
}

#[test]
fn raw_replies_at_a_terminal_on_request_and_clear_empties_the_screen() {
    let (dir, histfile) = setup();
    let mut term = Terminal::start_with(dir.path(), &histfile, &["--raw"]);
    term.run("put k 'two words'");
    term.run("get k");
    term.run("get nothing");
    let screen = term.text();
    assert!(
        screen.contains("lsmdb:db> get k\ntwo words\nlsmdb:db> get nothing\n\nlsmdb:db>"),
        "{screen}"
    );

    term.wait_for_prompt();
    term.send("clear\r");
    term.wait_until("an empty screen", |t| t.text().trim_end() == "lsmdb:db>");
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
}

/// `--connect`: the prompt and the banner name the server; commands, replies and key
/// completion go through its HTTP API, writes included while it holds the directory; the
/// token, given in the environment, never reaches the history.
#[test]
fn connected_to_a_server_the_shell_names_it_and_writes_through_it() {
    let (dir, histfile) = setup();
    let data = dir.path().join("served");
    let server = binary::http::Server::start(&data, &["--token", "s3cret-token"]);
    let url = format!("http://{}", server.addr);
    let mut cmd = Command::new(binary::lsmdb_path());
    cmd.args(["shell", "--connect", &url])
        .current_dir(dir.path())
        .env("LSMDB_TOKEN", "s3cret-token")
        .env("LSMDB_HISTFILE", &histfile)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("LSMDB_DIR")
        .env_remove("LSMDB_URL");
    let mut term = Terminal::spawn(cmd);
    term.prompt = format!("{}> ", server.addr);
    let banner = term.wait_for("Type \"help\" for usage hints.");
    assert!(
        banner.starts_with(&format!(
            "lsmdb {} shell on {}\n",
            env!("CARGO_PKG_VERSION"),
            server.addr
        )),
        "{banner}"
    );
    term.run("put greeting 'hello world'");
    term.run("put $'bin\\xff\\x00' $'\\x00\\x01'");
    term.run("get greeting");
    assert!(term.text().contains("\"hello world\"\n"), "{}", term.text());

    // Tab completes a key, read from the server by its prefix.
    term.wait_for_prompt();
    term.send("get gr\t");
    term.wait_for_line(&format!("{}get greeting ", term.prompt));
    term.send("\r");
    term.wait_for_prompt();
    assert_eq!(term.text().matches("\"hello world\"").count(), 2);
    term.run("range '' ''");
    let screen = term.text();
    assert!(
        screen.contains("$'bin\\xff\\x00'  $'\\x00\\x01'"),
        "{screen}"
    );
    assert!(screen.contains("(2 entries)"), "{screen}");

    term.wait_for_prompt();
    term.send(CTRL_D);
    assert_eq!(term.exit_status(), 0);
    let history = std::fs::read_to_string(&histfile).unwrap();
    assert!(history.contains("put greeting 'hello world'"), "{history}");
    assert!(!history.contains("s3cret"), "{history}");
    // Written through the server, which still holds the directory.
    let auth = [("Authorization", "Bearer s3cret-token")];
    let reply = server
        .connect()
        .request("GET", "/keys?key=greeting", &auth, None);
    assert_eq!(reply.json()["value"], "hello world", "{}", reply.text());
}
