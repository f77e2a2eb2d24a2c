//! Request bodies, read whole into memory before the request is handed over (lsmdb patch).
//!
//! Memory grows as bytes arrive, never by what the client announced, so a `Content-Length`
//! costs nothing until the bytes come; the caller refuses an announced length over its limit
//! before reading. Chunked bodies (RFC 9112 7.1) are decoded here rather than by the
//! `chunked_transfer` crate, which read a chunk-size line of any length, accepted sizes with
//! whitespace or a sign around them, and could not skip a trailer section: strict parsing
//! leaves no room for a front proxy and this server to disagree on where a body ends.

use std::io::{self, BufRead, Read};

use super::lines::{read_line, LineError};

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit the caller gave.
    TooLarge,
    /// Not valid chunked coding.
    Malformed,
    /// The peer closed its side before the body ended.
    Eof,
    Io(io::Error),
}

impl From<LineError> for BodyError {
    fn from(e: LineError) -> BodyError {
        match e {
            LineError::TooLong | LineError::Malformed => BodyError::Malformed,
            LineError::Eof => BodyError::Eof,
            LineError::Io(e) => BodyError::Io(e),
        }
    }
}

/// Bytes read per call; the body grows by at most this much beyond what has arrived.
const PIECE: usize = 64 * 1024;

/// Appends exactly `n` bytes from `reader` to `body`.
pub(crate) fn read_exact_into<R: Read>(
    reader: &mut R,
    body: &mut Vec<u8>,
    n: usize,
) -> Result<(), BodyError> {
    let end = body.len() + n;
    while body.len() < end {
        let start = body.len();
        body.resize(start + (end - start).min(PIECE), 0);
        let got = reader.read(&mut body[start..]);
        body.truncate(start + *got.as_ref().unwrap_or(&0));
        match got {
            Ok(0) => return Err(BodyError::Eof),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BodyError::Io(e)),
        }
    }
    Ok(())
}

/// Appends a chunked body's data to `body`, refusing more than `max` bytes in all; reads
/// and drops any trailer fields. `line` is scratch space.
pub(crate) fn read_chunked<R: BufRead>(
    reader: &mut R,
    max: usize,
    max_line: usize,
    max_trailers: usize,
    body: &mut Vec<u8>,
    line: &mut Vec<u8>,
) -> Result<(), BodyError> {
    loop {
        read_line(reader, max_line, line)?;
        let size = chunk_size(line).ok_or(BodyError::Malformed)?;
        if size == 0 {
            break;
        }
        if size > max.saturating_sub(body.len()) as u64 {
            return Err(BodyError::TooLarge);
        }
        read_exact_into(reader, body, size as usize)?;
        // The data ends with CRLF: an empty line.
        read_line(reader, 0, line)?;
    }
    for _ in 0..=max_trailers {
        read_line(reader, max_line, line)?;
        if line.is_empty() {
            return Ok(());
        }
    }
    Err(BodyError::Malformed)
}

/// `chunk-size [ chunk-ext ]`: one or more hex digits, optionally followed by extensions
/// (whitespace, `;` and anything after it), which are ignored.
fn chunk_size(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return None;
    }
    let rest = &line[digits..];
    let ext = rest.iter().position(|&b| b != b' ' && b != b'\t');
    if !rest.is_empty() && ext.is_none_or(|i| rest[i] != b';') {
        return None;
    }
    line[..digits].iter().try_fold(0u64, |size, &d| {
        let d = char::from(d).to_digit(16)?;
        size.checked_mul(16)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8], max: usize) -> (Result<(), String>, Vec<u8>, Vec<u8>) {
        let mut reader = io::BufReader::with_capacity(3, input);
        let (mut body, mut line) = (Vec::new(), Vec::new());
        let result = read_chunked(&mut reader, max, 64, 4, &mut body, &mut line);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        (result.map_err(|e| format!("{e:?}")), body, rest)
    }

    #[test]
    fn chunks_extensions_and_trailers() {
        let (r, body, rest) = decode(b"5\r\nhello\r\na;x=y\r\n, world!!!\r\n0\r\n\r\nNEXT", 100);
        assert_eq!((r, body, rest), (Ok(()), b"hello, world!!!".to_vec(), b"NEXT".to_vec()));
        let (r, body, rest) = decode(b"3 ;ext\r\nabc\r\n0\r\nX-T: 1\r\n\r\nNEXT", 100);
        assert_eq!((r, body, rest), (Ok(()), b"abc".to_vec(), b"NEXT".to_vec()));
    }

    #[test]
    fn anything_loose_is_malformed() {
        for bad in [
            &b"+5\r\nhello\r\n0\r\n\r\n"[..],
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"fffffffffffffffffff\r\n",
            b"0\r\nX: 1\r\nX: 2\r\nX: 3\r\nX: 4\r\nX: 5\r\n\r\n",
        ] {
            assert_eq!(decode(bad, 100).0, Err("Malformed".into()), "{bad:?}");
        }
        assert_eq!(decode(b"5\r\nhel", 100).0, Err("Eof".into()));
    }

    #[test]
    fn the_limit_counts_all_chunks_before_reading_them() {
        assert_eq!(decode(b"5\r\nhello\r\n6\r\n", 10).0, Err("TooLarge".into()));
        assert_eq!(decode(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 10).0, Ok(()));
        let huge = decode(b"7fffffffffffffff\r\n", usize::MAX);
        assert_eq!(huge.0, Err("Eof".into()), "the length allocates nothing up front");
    }
}
