//! The one spelling of bytes as text that lsmdb shows anywhere a key or value is displayed
//! (the shell's replies and completions, `lsmdb range`'s text output). Whatever it prints,
//! [`split`](super::split) reads back as the same bytes, and so does bash: a key copied from
//! the screen can be pasted into `lsmdb shell` or after `lsmdb get` in bash.
//!
//! A word is spelled, in the first of these forms that fits:
//! - as it is, when every character is a letter, a digit or one of `_ @ % + = : , . / -`
//!   (nothing any shell treats specially; [`quote`] only, as completion inserts it);
//! - in double quotes, when it is printable text without `!`: `\`, `"`, `$` and `` ` `` get a
//!   backslash, as POSIX double quotes require;
//! - in single quotes, printable text with `!` (bash expands `!` inside double quotes at a
//!   prompt), each `'` written `'\''`;
//! - in `$'...'` for anything else (bytes that are not UTF-8, control characters, invisible
//!   ones), with `\n`, `\t`, `\r`, `\\`, `\'` and `\xHH`. The result is one line of text and
//!   holds no control character, so it cannot move the cursor or hide a byte.
//!
//! Bash cannot pass a NUL byte in an argument (it ends the string); `--hex` can.

/// Characters that never need quoting, after Python's `shlex.quote`; letters and digits of
/// any script count too.
fn is_plain(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '@' | '%' | '+' | '=' | ':' | ',' | '.' | '/' | '-')
}

/// Characters that change the look of a line without showing: control characters, line and
/// paragraph separators, zero-width characters, bidirectional overrides and the BOM.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `bytes` as a word the shell and bash read back unchanged, quoted only when it must be.
/// This is what completion inserts and `lsmdb range` prints.
pub fn quote(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.is_empty() && text.chars().all(is_plain) => text.to_string(),
        _ => quoted(bytes),
    }
}

/// `bytes` as a quoted word, always in quotes (as redis-cli shows every value), so that an
/// empty value, a value `(nil)` and a missing key look different. Reads back as [`quote`]'s.
pub fn quoted(bytes: &[u8]) -> String {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(is_invisible) => text,
        _ => return dollar_quoted(bytes),
    };
    if text.contains('!') {
        return format!("'{}'", text.replace('\'', r"'\''"));
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn dollar_quoted(bytes: &[u8]) -> String {
    fn hex(out: &mut String, bytes: &[u8]) {
        for b in bytes {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    let mut out = String::from("$'");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str(r"\\"),
                '\'' => out.push_str(r"\'"),
                '\n' => out.push_str(r"\n"),
                '\t' => out.push_str(r"\t"),
                '\r' => out.push_str(r"\r"),
                c if is_invisible(c) => hex(&mut out, c.encode_utf8(&mut [0; 4]).as_bytes()),
                c => out.push(c),
            }
        }
        hex(&mut out, chunk.invalid());
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::super::{lex, split};
    use super::*;
    use proptest::prelude::*;

    /// Bytes with the hard cases common: quotes, backslashes, blanks, `$`, `!`, control
    /// bytes, bytes that are not UTF-8, and multi-byte characters (whole or cut).
    fn tricky_bytes() -> impl Strategy<Value = Vec<u8>> {
        let special: Vec<u8> =
            b"'\"\\$`! \t\n\r\x00\x01\x1b\x7f\x80\xc3\xa9\xe2\x80\xa8\xff{}x0".to_vec();
        prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(special)],
            0..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Display, then parse: the original bytes, as one word, on one line, whichever
        /// form was chosen.
        #[test]
        fn every_byte_string_reads_back_as_itself(bytes in tricky_bytes()) {
            for spelled in [quote(&bytes), quoted(&bytes)] {
                prop_assert_eq!(split(&spelled).unwrap(), vec![bytes.clone()], "{}", spelled);
                prop_assert_eq!(lex(&spelled).words.len(), 1);
                prop_assert!(!spelled.chars().any(is_invisible), "{}", spelled);
            }
        }

        #[test]
        fn any_utf8_text_reads_back_as_itself(text in "\\PC*|.*") {
            for spelled in [quote(text.as_bytes()), quoted(text.as_bytes())] {
                prop_assert_eq!(split(&spelled).unwrap(), vec![text.as_bytes().to_vec()]);
            }
        }
    }

    #[test]
    fn each_form_is_used_where_it_fits() {
        assert_eq!(quote(b"user:1"), "user:1");
        assert_eq!(quoted(b"user:1"), r#""user:1""#);
        assert_eq!(quote(b""), r#""""#);
        assert_eq!(quote(b"Grace Hopper"), r#""Grace Hopper""#);
        assert_eq!(quote(b"user;"), r#""user;""#);
        assert_eq!(
            quote(br#"say "hi" $HOME \o/"#),
            r#""say \"hi\" \$HOME \\o/""#
        );
        assert_eq!(quote(b"it's!"), r"'it'\''s!'");
        assert_eq!(quote(b"\xff\x00z"), r"$'\xff\x00z'");
        assert_eq!(quote(b"tab\there\n"), r"$'tab\there\n'");
        assert_eq!(quote("ключ".as_bytes()), "ключ");
        assert_eq!(quote("a\u{202e}b".as_bytes()), r"$'a\xe2\x80\xaeb'");
    }

    /// The shell showed `"\xff\u{0}z"` for the key typed as `$'\xff\x00z'`, and typing what
    /// it showed found nothing: what is shown now reads back as the key.
    #[test]
    fn what_the_shell_shows_is_what_it_reads() {
        let key = split(r"$'\xff\x00z'").unwrap().remove(0);
        assert_eq!(key, b"\xff\x00z");
        assert_eq!(split(&quoted(&key)).unwrap(), vec![key.clone()]);
        assert_eq!(split(&quote(&key)).unwrap(), vec![key]);
    }

    /// The spellings bash would read: checked against bash itself where it is installed.
    #[test]
    fn bash_reads_the_spellings_back() {
        let cases: [&[u8]; 7] = [
            b"plain",
            b"two words; and more",
            br#"q"u'o`t$e\s"#,
            b"bang! 'x'",
            b"\xff\x01\x1b[31m\n\t",
            "ключ ✓".as_bytes(),
            b"",
        ];
        for bytes in cases {
            for spelled in [quote(bytes), quoted(bytes)] {
                let script = format!("set +H; printf '%s' {spelled}");
                let Ok(out) = std::process::Command::new("bash")
                    .args(["-c", &script])
                    .output()
                else {
                    return; // no bash here
                };
                assert_eq!(out.stdout, bytes, "bash read {spelled} differently");
            }
        }
    }
}
