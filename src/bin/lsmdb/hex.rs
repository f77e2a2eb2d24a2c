//! `--hex`, as RocksDB's `ldb` has it: keys and values typed and printed as hex digits, so
//! that any bytes, NUL included, can be given on a command line and read off a screen.
//! Printed as `0x` and upper-case digits (`0x6B6579`), as ldb prints them; read with or
//! without the `0x`, in either case.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use anyhow::{anyhow, bail};

/// `0x` and two upper-case digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + 2 * bytes.len());
    out.push_str("0x");
    out.push_str(&digits(bytes));
    out
}

/// Two upper-case digits a byte, without the `0x` (for JSON, beside `"encoding":"hex"`).
pub fn digits(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(2 * bytes.len());
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The bytes that hex digits spell, with or without a leading `0x`.
pub fn decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if !digits.len().is_multiple_of(2) {
        bail!("{text:?} is not hex: an odd number of digits");
    }
    let value = |c: u8| {
        char::from(c).to_digit(16).ok_or_else(|| {
            anyhow!(
                "{text:?} is not hex: {:?} is not a hex digit",
                char::from(c)
            )
        })
    };
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| Ok((value(pair[0])? * 16 + value(pair[1])?) as u8))
        .collect()
}

/// The bytes a command-line argument stands for: the argument's own bytes (any but NUL,
/// which no argument can hold), or with `hex` the bytes its digits spell.
pub fn arg_bytes(arg: &OsStr, hex: bool) -> anyhow::Result<Vec<u8>> {
    if !hex {
        return Ok(arg.as_bytes().to_vec());
    }
    let text = arg
        .to_str()
        .ok_or_else(|| anyhow!("{arg:?} is not hex: it is not even text"))?;
    decode(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        assert!(text.starts_with("0x000102"));
        assert_eq!(decode(&text).unwrap(), all);
        assert_eq!(decode(&text[2..].to_lowercase()).unwrap(), all);
        assert_eq!(decode("0x").unwrap(), b"");
        assert_eq!(encode(b"key"), "0x6B6579");
    }

    #[test]
    fn bad_hex_says_what_is_wrong() {
        assert!(
            decode("0xABC")
                .unwrap_err()
                .to_string()
                .contains("odd number")
        );
        assert!(
            decode("zz")
                .unwrap_err()
                .to_string()
                .contains("'z' is not a hex digit")
        );
        assert!(arg_bytes(OsStr::new("6B"), true).unwrap() == b"k");
        assert!(arg_bytes(OsStr::from_bytes(b"\xff"), false).unwrap() == b"\xff");
    }
}
