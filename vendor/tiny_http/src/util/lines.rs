//! CRLF-terminated lines, read strictly and within a length limit (lsmdb patch).
//!
//! Upstream read lines byte by byte with no limit, took a bare LF or CR inside a line as part
//! of it, and trimmed whitespace around each header line. A server and a proxy in front of it
//! that split lines differently disagree on where a request ends, which is how requests get
//! smuggled; so a line here ends only at CRLF, any other CR or LF in it is an error, and so is
//! a line longer than the limit.

use std::io::{self, BufRead};

/// Why a line could not be read.
#[derive(Debug)]
pub(crate) enum LineError {
    /// Longer than the limit.
    TooLong,
    /// A CR or LF that is not the line's final CRLF.
    Malformed,
    /// The peer closed its side before the line ended.
    Eof,
    Io(io::Error),
}

/// Reads one line into `line`, without its CRLF, refusing one longer than `max` bytes.
pub(crate) fn read_line<R: BufRead>(
    reader: &mut R,
    max: usize,
    line: &mut Vec<u8>,
) -> Result<(), LineError> {
    line.clear();
    loop {
        let available = match reader.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LineError::Io(e)),
        };
        if available.is_empty() {
            return Err(LineError::Eof);
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                line.extend_from_slice(&available[..end]);
                reader.consume(end + 1);
                break;
            }
            None => {
                let n = available.len();
                line.extend_from_slice(available);
                reader.consume(n);
                // +1: the CR of the CRLF may be in already.
                if line.len() > max + 1 {
                    return Err(LineError::TooLong);
                }
            }
        }
    }
    if line.pop() != Some(b'\r') || line.contains(&b'\r') {
        return Err(LineError::Malformed);
    }
    if line.len() > max {
        return Err(LineError::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let mut reader = io::BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        loop {
            let mut line = Vec::new();
            match read_line(&mut reader, max, &mut line) {
                Ok(()) => out.push(Ok(line)),
                Err(LineError::Eof) => return out,
                Err(e) => {
                    out.push(Err(format!("{e:?}")));
                    return out;
                }
            }
        }
    }

    #[test]
    fn lines_end_only_at_crlf() {
        assert_eq!(
            lines(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 64),
            vec![Ok(b"GET / HTTP/1.1".to_vec()), Ok(b"Host: x".to_vec()), Ok(vec![])]
        );
        for bad in [&b"a\nb\r\n"[..], b"a\rb\r\n", b"abc\n"] {
            assert_eq!(lines(bad, 64), vec![Err("Malformed".into())], "{bad:?}");
        }
    }

    #[test]
    fn long_lines_are_refused_whatever_the_buffer_size() {
        assert_eq!(lines(b"12345678\r\n", 8), vec![Ok(b"12345678".to_vec())]);
        assert_eq!(lines(b"123456789\r\n", 8), vec![Err("TooLong".into())]);
        let endless = vec![b'x'; 1 << 20];
        assert_eq!(lines(&endless, 8), vec![Err("TooLong".into())]);
    }
}
