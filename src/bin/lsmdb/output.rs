//! Writing results to stdout: buffered, and a closed pipe (`lsmdb range a z | head`) ends the
//! program quietly instead of panicking.

use std::io::{self, BufWriter, Stdout, Write};

pub struct Out {
    inner: BufWriter<Stdout>,
}

impl Out {
    pub fn new() -> Self {
        Out {
            inner: BufWriter::new(io::stdout()),
        }
    }

    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.inner.write_all(b)
    }

    pub fn line(&mut self, s: &str) -> io::Result<()> {
        self.inner.write_all(s.as_bytes())?;
        self.inner.write_all(b"\n")
    }

    pub fn json(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        self.json_part(value)?;
        self.inner.write_all(b"\n")
    }

    /// `value` as JSON with no newline after it, for a reply written in pieces.
    pub fn json_part(&mut self, value: &impl serde::Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.inner, value).map_err(io::Error::from)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Whether an error chain ends in a closed pipe on stdout.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// An error and its causes on one line, each cause said once: one that the message before it
/// already ends with (lsmdb's I/O errors include their OS error) is not repeated.
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !previous.is_empty() && previous.ends_with(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        previous = text;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_is_printed_once() {
        let io = io::Error::from_raw_os_error(28);
        let e = anyhow::Error::new(lsmdb_io_error(io)).context("cannot open database d");
        let line = error_line(&e);
        assert_eq!(line.matches("No space left on device").count(), 1, "{line}");
        assert!(
            line.starts_with("cannot open database d: write f: No space"),
            "{line}"
        );
    }

    /// An error shaped as lsmdb's `Error::Io`: its message ends with its source's.
    fn lsmdb_io_error(source: io::Error) -> impl std::error::Error + Send + Sync + 'static {
        #[derive(Debug)]
        struct Wrapped(io::Error);
        impl std::fmt::Display for Wrapped {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "write f: {}", self.0)
            }
        }
        impl std::error::Error for Wrapped {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        Wrapped(source)
    }
}
