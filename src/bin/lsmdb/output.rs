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
