//! The shell's commands: one table of their syntax, which parsing, `help`, hints and completion
//! all read, and the parser that turns a line's words into a [`Command`].

use std::fmt;
use std::path::PathBuf;

use super::types::{Failure, Mode};

/// How a command is typed and what it does.
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// Argument syntax; `[X]` is optional. The argument counts are read from it.
    pub args: &'static str,
    pub summary: &'static str,
    pub example: &'static str,
    /// More detail for `help COMMAND`, one string per line.
    pub more: &'static [&'static str],
    /// The argument positions that name a key, which Tab completes from the database.
    pub key_args: &'static [usize],
}

impl Spec {
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }

    fn arg_counts(&self) -> (usize, usize) {
        let tokens = self.args.split_whitespace();
        let optional = tokens.clone().filter(|t| t.starts_with('[')).count();
        let all = tokens.count();
        (all - optional, all)
    }
}

pub const COMMANDS: &[Spec] = &[
    Spec {
        name: "get",
        aliases: &[],
        args: "KEY",
        summary: "Show the value stored under KEY, or (nil)",
        example: "get user:1",
        more: &[],
        key_args: &[0],
    },
    Spec {
        name: "put",
        aliases: &["set"],
        args: "KEY VALUE",
        summary: "Store VALUE under KEY",
        example: "put user:1 'Ada Lovelace'",
        more: &[],
        key_args: &[0],
    },
    Spec {
        name: "delete",
        aliases: &["del"],
        args: "KEY",
        summary: "Delete KEY; shows 1 if it existed, 0 if not",
        example: "delete user:1",
        more: &[],
        key_args: &[0],
    },
    Spec {
        name: "range",
        aliases: &["scan"],
        args: "START END [LIMIT]",
        summary: "List keys in [START, END); an END of \"\" means no end",
        example: "range user: user; 10",
        more: &["LIMIT caps how many are shown; Ctrl-C stops a long listing."],
        key_args: &[0, 1],
    },
    Spec {
        name: "batch",
        aliases: &[],
        args: "[FILE]",
        summary: "Apply several puts at once, atomically",
        example: "batch users.json",
        more: &[
            "Alone, it reads KEY VALUE lines up to a blank line (Ctrl-C discards them).",
            "A FILE holds KEY<TAB>VALUE lines, or the HTTP API's JSON",
            "{\"keys\":[..],\"values\":[..]} where a null value deletes its key.",
        ],
        key_args: &[],
    },
    Spec {
        name: "stats",
        aliases: &[],
        args: "",
        summary: "Show tables per level, cache and compaction figures",
        example: "stats",
        more: &[],
        key_args: &[],
    },
    Spec {
        name: "help",
        aliases: &[".help"],
        args: "[COMMAND]",
        summary: "List the commands, or describe one",
        example: "help range",
        more: &[],
        key_args: &[],
    },
    Spec {
        name: "timer",
        aliases: &[".timer"],
        args: "on|off",
        summary: "Show each command's time (slow ones always show it)",
        example: "timer on",
        more: &[],
        key_args: &[],
    },
    Spec {
        name: "mode",
        aliases: &[".mode"],
        args: "text|json|raw",
        summary: "Show replies quoted (text), as JSON, or as is (raw)",
        example: ".mode json",
        more: &[],
        key_args: &[],
    },
    Spec {
        name: "clear",
        aliases: &[],
        args: "",
        summary: "Clear the screen",
        example: "clear",
        more: &[],
        key_args: &[],
    },
    Spec {
        name: "exit",
        aliases: &["quit", ".quit", ".exit"],
        args: "",
        summary: "Close the database and leave (as Ctrl-D does)",
        example: "exit",
        more: &[],
        key_args: &[],
    },
];

/// The command a name or alias stands for, ignoring case as redis-cli does.
pub fn find(name: &str) -> Option<&'static Spec> {
    let name = name.to_ascii_lowercase();
    COMMANDS
        .iter()
        .find(|s| s.name == name || s.aliases.contains(&name.as_str()))
}

/// Every name and alias, for completion.
pub fn names() -> impl Iterator<Item = &'static str> {
    COMMANDS
        .iter()
        .flat_map(|s| std::iter::once(s.name).chain(s.aliases.iter().copied()))
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Get(Vec<u8>),
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Range {
        start: Vec<u8>,
        end: Option<Vec<u8>>,
        limit: Option<usize>,
    },
    /// `batch` alone: the entries follow on the next lines.
    BatchLines,
    BatchFile(PathBuf),
    Stats,
    Help(Option<String>),
    Timer(bool),
    Mode(Mode),
    Clear,
    Exit,
}

impl Command {
    /// Whether the command reads or writes the database (and so is worth timing).
    pub fn touches_data(&self) -> bool {
        !matches!(
            self,
            Command::Help(_)
                | Command::Timer(_)
                | Command::Mode(_)
                | Command::Clear
                | Command::Exit
        )
    }
}

/// A line that is not a valid command: what is wrong, and the usage to show with it.
#[derive(Debug)]
pub struct Usage {
    pub message: String,
    pub spec: Option<&'static Spec>,
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.spec {
            Some(spec) => write!(f, "{} (usage: {})", self.message, spec.usage()),
            None => write!(f, "{} (type \"help\" for the commands)", self.message),
        }
    }
}

impl std::error::Error for Usage {}

impl From<Usage> for Failure {
    fn from(e: Usage) -> Self {
        Failure::Command(e.into())
    }
}

/// Parses a split line; `None` for a blank one.
pub fn parse(mut words: Vec<Vec<u8>>) -> Result<Option<Command>, Usage> {
    if words.is_empty() {
        return Ok(None);
    }
    let args = words.split_off(1);
    let name = String::from_utf8_lossy(&words[0]).into_owned();
    let Some(spec) = find(&name) else {
        return Err(Usage {
            message: format!("unknown command '{name}'"),
            spec: None,
        });
    };
    let fail = |message: String| Usage {
        message,
        spec: Some(spec),
    };
    let (min, max) = spec.arg_counts();
    if args.len() < min || args.len() > max {
        return Err(fail(format!(
            "wrong number of arguments for '{}'",
            spec.name
        )));
    }
    // The counts are checked above, so a missing word can only be an optional one.
    let mut args = args.into_iter();
    let mut next = || args.next().unwrap_or_default();
    let key = |k: Vec<u8>| {
        if k.is_empty() {
            Err(fail("the key must not be empty".into()))
        } else {
            Ok(k)
        }
    };
    let command = match spec.name {
        "get" => Command::Get(key(next())?),
        "put" => {
            let k = key(next())?;
            Command::Put(k, next())
        }
        "delete" => Command::Delete(key(next())?),
        "range" => {
            let start = next();
            let end = next();
            let limit = match next() {
                n if n.is_empty() => None,
                n => Some(
                    std::str::from_utf8(&n)
                        .ok()
                        .and_then(|n| n.parse::<usize>().ok())
                        .ok_or_else(|| fail("LIMIT must be a whole number".into()))?,
                ),
            };
            Command::Range {
                start,
                end: (!end.is_empty()).then_some(end),
                limit,
            }
        }
        "batch" => match next() {
            file if file.is_empty() => Command::BatchLines,
            file => Command::BatchFile(PathBuf::from(text(file))),
        },
        "stats" => Command::Stats,
        "help" => Command::Help(Some(text(next())).filter(|t| !t.is_empty())),
        "timer" => match text(next()).as_str() {
            "on" => Command::Timer(true),
            "off" => Command::Timer(false),
            _ => return Err(fail("expected on or off".into())),
        },
        "mode" => match text(next()).parse() {
            Ok(mode) => Command::Mode(mode),
            Err(()) => return Err(fail("expected text, json or raw".into())),
        },
        "clear" => Command::Clear,
        _ => Command::Exit,
    };
    Ok(Some(command))
}

fn text(word: Vec<u8>) -> String {
    String::from_utf8_lossy(&word).into_owned()
}

/// The text of `help` and `help COMMAND`.
pub fn help(topic: Option<&str>) -> Result<Vec<String>, Usage> {
    let Some(topic) = topic else {
        let width = COMMANDS.iter().map(|s| s.usage().len()).max().unwrap_or(0);
        let mut lines = vec!["Commands:".to_string()];
        for spec in COMMANDS {
            lines.push(format!("  {:<width$}  {}", spec.usage(), spec.summary));
        }
        lines.extend([
            String::new(),
            "Arguments split as a shell splits them: \"two words\", 'it'\\''s', a\\ b,".into(),
            "and $'tab\\there\\xff' for escapes. Commands ignore case.".into(),
            "Tab completes commands and keys; Ctrl-C cancels the line; Ctrl-D or exit leaves."
                .into(),
            "Type \"help COMMAND\" for an example.".into(),
        ]);
        return Ok(lines);
    };
    let spec = find(topic.trim_start_matches('.')).or_else(|| find(topic));
    let Some(spec) = spec else {
        return Err(Usage {
            message: format!("no command named '{topic}'"),
            spec: None,
        });
    };
    let mut lines = vec![spec.usage(), format!("  {}", spec.summary)];
    if !spec.aliases.is_empty() {
        lines.push(format!("  Also: {}", spec.aliases.join(", ")));
    }
    lines.extend(spec.more.iter().map(|m| format!("  {m}")));
    lines.push(format!("  Example: {}", spec.example));
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Option<Command>, Usage> {
        parse(crate::words::split(line).unwrap())
    }

    #[test]
    fn argument_counts_come_from_the_syntax() {
        let range = find("range").unwrap();
        assert_eq!(range.arg_counts(), (2, 3));
        assert_eq!(find("stats").unwrap().arg_counts(), (0, 0));
        assert_eq!(find("batch").unwrap().arg_counts(), (0, 1));
    }

    #[test]
    fn aliases_and_case_find_the_same_command() {
        for name in ["exit", "quit", ".QUIT", ".exit"] {
            assert_eq!(find(name).unwrap().name, "exit");
        }
        assert_eq!(find("DEL").unwrap().name, "delete");
        assert!(find("frobnicate").is_none());
    }

    #[test]
    fn lines_become_commands() {
        assert_eq!(
            parse_line("PUT 'a b' \"c d\"").unwrap(),
            Some(Command::Put(b"a b".to_vec(), b"c d".to_vec()))
        );
        assert_eq!(
            parse_line("range a '' 5").unwrap(),
            Some(Command::Range {
                start: b"a".to_vec(),
                end: None,
                limit: Some(5)
            })
        );
        assert_eq!(parse_line(".timer on").unwrap(), Some(Command::Timer(true)));
        assert_eq!(
            parse_line(".mode json").unwrap(),
            Some(Command::Mode(Mode::Json))
        );
        assert_eq!(parse_line("   ").unwrap(), None);
    }

    #[test]
    fn bad_lines_say_what_is_wrong_and_show_the_usage() {
        let cases = [
            (
                "get",
                "wrong number of arguments for 'get' (usage: get KEY)",
            ),
            ("get ''", "the key must not be empty (usage: get KEY)"),
            ("put a", "(usage: put KEY VALUE)"),
            ("range a b x", "LIMIT must be a whole number"),
            ("timer maybe", "expected on or off (usage: timer on|off)"),
            ("mode html", "expected text, json or raw"),
            (
                "frob",
                "unknown command 'frob' (type \"help\" for the commands)",
            ),
        ];
        for (line, want) in cases {
            let got = parse_line(line).unwrap_err().to_string();
            assert!(got.contains(want), "{line}: {got}");
        }
    }

    #[test]
    fn help_covers_every_command() {
        let all = help(None).unwrap().join("\n");
        for spec in COMMANDS {
            assert!(all.contains(&spec.usage()), "{}", spec.name);
        }
        assert_eq!(help(Some(".timer")).unwrap()[0], "timer on|off");
        assert!(help(Some("nope")).is_err());
        assert!(
            help(None).unwrap().iter().all(|l| l.chars().count() <= 80),
            "help fits an 80-column terminal"
        );
    }
}
