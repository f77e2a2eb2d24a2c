//! Splitting a command line into words as a POSIX shell does, so that any key or value can be
//! typed: `'single quotes'` keep everything, `"double quotes"` keep everything but `\\ \" \$`,
//! a backslash outside quotes escapes the next character, and `$'...'` (POSIX.1-2024) spells
//! bytes with escapes such as `\n`, `\t` and `\xff`. Words are bytes because `$'\xff'` is not
//! UTF-8. Nothing is expanded: `$HOME` and `*` are plain text.
//!
//! The lexer keeps each word's start offset and says whether the line ended inside a quote,
//! which completion (to replace the word being typed) and line continuation need.
//!
//! [`quote`] and [`quoted`] spell bytes the other way, as words this lexer reads back: the
//! shell's input, its replies, its completions and `lsmdb range`'s output share the one
//! spelling.

mod quote;

pub use quote::{quote, quoted};

/// One word of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// Byte offset in the line where the word begins (its opening quote included).
    pub start: usize,
    pub bytes: Vec<u8>,
}

/// What the end of the line is still inside of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    Nothing,
    Single,
    Double,
    Dollar,
    /// A backslash ends the line: it continues on the next.
    Backslash,
}

/// A lexed line: the words, and for an unfinished line, what is still open.
#[derive(Debug)]
pub struct Lexed {
    pub words: Vec<Word>,
    pub open: Open,
    /// Whether the last word runs to the end of the line (no blank after it).
    pub ends_in_word: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    Blank,
    Plain,
    Single,
    Double,
    Dollar,
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Lexes `line` without failing: an open quote at the end is reported in [`Lexed::open`].
pub fn lex(line: &str) -> Lexed {
    let mut words: Vec<Word> = Vec::new();
    let mut word = Vec::new();
    let mut state = State::Blank;
    let mut open = Open::Nothing;
    let mut chars = line.char_indices().peekable();
    let mut utf8 = [0u8; 4];

    while let Some((i, c)) = chars.next() {
        let mut push = |word: &mut Vec<u8>, c: char| {
            word.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes())
        };
        if state == State::Blank {
            if is_blank(c) {
                continue;
            }
            words.push(Word {
                start: i,
                bytes: Vec::new(),
            });
            state = State::Plain;
        }
        match state {
            // `Blank` cannot happen here: a word was just started above.
            State::Blank | State::Plain => match c {
                c if is_blank(c) => {
                    finish(&mut words, &mut word);
                    state = State::Blank;
                }
                '\'' => state = State::Single,
                '"' => state = State::Double,
                '$' if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                    chars.next();
                    state = State::Dollar;
                }
                '\\' => match chars.next() {
                    Some((_, '\n')) => {}
                    Some((_, n)) => push(&mut word, n),
                    None => open = Open::Backslash,
                },
                c => push(&mut word, c),
            },
            State::Single => match c {
                '\'' => state = State::Plain,
                c => push(&mut word, c),
            },
            State::Double => match c {
                '"' => state = State::Plain,
                '\\' => match chars.peek().map(|&(_, n)| n) {
                    Some('\n') => {
                        chars.next();
                    }
                    Some(n @ ('\\' | '"' | '$' | '`')) => {
                        chars.next();
                        push(&mut word, n);
                    }
                    Some(_) => push(&mut word, '\\'),
                    None => open = Open::Backslash,
                },
                c => push(&mut word, c),
            },
            State::Dollar => match c {
                '\'' => state = State::Plain,
                '\\' => match chars.next() {
                    Some((_, n)) => dollar_escape(n, &mut chars, &mut word),
                    None => open = Open::Backslash,
                },
                c => push(&mut word, c),
            },
        }
    }
    let ends_in_word = state != State::Blank;
    if ends_in_word {
        finish(&mut words, &mut word);
    }
    if open == Open::Nothing {
        open = match state {
            State::Single => Open::Single,
            State::Double => Open::Double,
            State::Dollar => Open::Dollar,
            State::Blank | State::Plain => Open::Nothing,
        };
    }
    Lexed {
        words,
        open,
        ends_in_word,
    }
}

fn finish(words: &mut [Word], word: &mut Vec<u8>) {
    if let Some(last) = words.last_mut() {
        last.bytes = std::mem::take(word);
    }
}

/// The escapes of `$'...'` after a backslash: C's, plus `\e`, `\xHH` and octal `\NNN`.
fn dollar_escape(
    c: char,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    word: &mut Vec<u8>,
) {
    let mut digits = |radix: u32, max: usize| {
        let mut value = 0u32;
        let mut n = 0;
        while n < max {
            match chars.peek().and_then(|&(_, d)| d.to_digit(radix)) {
                Some(d) => {
                    value = value * radix + d;
                    chars.next();
                    n += 1;
                }
                None => break,
            }
        }
        (value, n)
    };
    let byte = match c {
        'n' => b'\n',
        't' => b'\t',
        'r' => b'\r',
        'a' => 0x07,
        'b' => 0x08,
        'e' | 'E' => 0x1b,
        'f' => 0x0c,
        'v' => 0x0b,
        '\\' | '\'' | '"' | '?' => c as u8,
        'x' => match digits(16, 2) {
            (_, 0) => {
                word.extend_from_slice(b"\\x");
                return;
            }
            (v, _) => v as u8,
        },
        '0'..='7' => {
            let (rest, n) = digits(8, 2);
            let first = c as u32 - '0' as u32;
            // Three octal digits can exceed a byte; like bash, keep the low eight bits.
            (first * 8u32.pow(n as u32) + rest) as u8
        }
        other => {
            word.push(b'\\');
            let mut utf8 = [0u8; 4];
            word.extend_from_slice(other.encode_utf8(&mut utf8).as_bytes());
            return;
        }
    };
    word.push(byte);
}

/// Splits a complete line into words; an unclosed quote is an error.
pub fn split(line: &str) -> Result<Vec<Vec<u8>>, String> {
    let lexed = lex(line);
    match lexed.open {
        Open::Nothing => Ok(lexed.words.into_iter().map(|w| w.bytes).collect()),
        Open::Single => Err("unterminated single quote".into()),
        Open::Double => Err("unterminated double quote".into()),
        Open::Dollar => Err("unterminated $' quote".into()),
        Open::Backslash => Err("the line ends with a backslash".into()),
    }
}

/// Cuts text holding several lines (a paste at the terminal) into command lines: a newline
/// ends a line unless it is inside a quote. The newline that ends the text ends its last line.
pub fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current: Option<String> = None;
    for physical in text.lines() {
        let line = match current.take() {
            Some(open) => format!("{open}\n{physical}"),
            None => physical.to_string(),
        };
        if lex(&line).open == Open::Nothing {
            lines.push(line);
        } else {
            current = Some(line);
        }
    }
    lines.extend(current);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split(line)
            .unwrap()
            .into_iter()
            .map(|w| String::from_utf8(w).unwrap())
            .collect()
    }

    #[test]
    fn quotes_and_backslashes_split_as_a_posix_shell_does() {
        assert_eq!(words("  put  a   b "), ["put", "a", "b"]);
        assert_eq!(words(r#"put "a b" 'c d'"#), ["put", "a b", "c d"]);
        assert_eq!(words(r"put a\ b c\\d"), ["put", "a b", r"c\d"]);
        assert_eq!(
            words(r#"x "a\"b\\c\d$" 'it'\''s'"#),
            ["x", r#"a"b\c\d$"#, "it's"]
        );
        assert_eq!(words(r#"x ab"cd"'ef' """#), ["x", "abcdef", ""]);
        assert_eq!(words("x $HOME * ~"), ["x", "$HOME", "*", "~"]);
        assert_eq!(words("ключ 'значение ✓'"), ["ключ", "значение ✓"]);
    }

    #[test]
    fn dollar_quotes_spell_any_byte() {
        let got = split(r"$'a\tb\nc\x41\xff\0\101\'' $'\q'").unwrap();
        assert_eq!(got[0], b"a\tb\ncA\xff\0A'");
        assert_eq!(got[1], br"\q");
    }

    #[test]
    fn unclosed_quotes_are_reported_not_guessed() {
        assert_eq!(lex("get 'a b").open, Open::Single);
        assert_eq!(lex("get \"a").open, Open::Double);
        assert_eq!(lex("get $'a").open, Open::Dollar);
        assert_eq!(lex(r"get a\").open, Open::Backslash);
        assert!(split("get 'a").is_err());
        // A continued line is one word across the newline.
        assert_eq!(words("put k 'line one\nline two'")[2], "line one\nline two");
        assert_eq!(words("put k a\\\nb"), ["put", "k", "ab"]);
    }

    #[test]
    fn pasted_text_is_cut_into_lines_outside_quotes() {
        assert_eq!(logical_lines("put a 1\nget a\n"), ["put a 1", "get a"]);
        assert_eq!(logical_lines("k1 v1\n\n"), ["k1 v1", ""]);
        assert_eq!(
            logical_lines("put m 'x\ny'\nget m"),
            ["put m 'x\ny'", "get m"]
        );
        assert_eq!(logical_lines("put m 'open"), ["put m 'open"]);
    }

    #[test]
    fn words_know_where_they_start() {
        let lexed = lex(r#"get "user 1"#);
        assert_eq!(lexed.words[1].start, 4);
        assert_eq!(lexed.words[1].bytes, b"user 1");
        assert!(lexed.ends_in_word);
        assert!(!lex("get ").ends_in_word);
    }
}
