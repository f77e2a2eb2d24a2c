//! Reply bodies made while they are sent, so that a reply costs memory for a piece of it
//! rather than for all of it: a range is written from the iterator (`{"results":[...]}` over
//! a million keys was once built whole, 133 MB, before its first byte went out), and a large
//! value is escaped a piece at a time (a 60 MiB value of control bytes became 377 MB of JSON).
//!
//! The first piece is made while the request holds its slot. When that is the whole reply
//! it goes out from memory with a `Content-Length`, as every reply did before; otherwise the
//! slot is given back and the connection's thread makes the rest as it writes, at the
//! client's pace and under the reply deadline. The bytes are those the whole reply would
//! have had (`json` checks that the pieces add up).

use std::io::{self, Read};

use super::http::Reply;
use super::json::{self, Encoding};
use super::log::error;

/// About how much of a body is made at a time.
const PIECE: usize = 32 * 1024;

/// Values larger than this go out a piece at a time.
pub const STREAM_VALUES_OVER: usize = 64 * 1024;

/// The bytes of a body made so far and not yet read.
#[derive(Default)]
struct Pending {
    out: Vec<u8>,
    read: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.read == self.out.len()
    }

    fn take(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.out.len() - self.read);
        buf[..n].copy_from_slice(&self.out[self.read..self.read + n]);
        self.read += n;
        if self.is_empty() {
            self.out.clear();
            self.read = 0;
        }
        n
    }
}

/// A `{"key":..,"value":..}` object whose value is written a piece at a time.
struct LargeEntry {
    value: Vec<u8>,
    utf8: bool,
    done: usize,
}

impl LargeEntry {
    /// Writes the object's start to `out`.
    fn start(out: &mut Vec<u8>, key: &[u8], value: Vec<u8>, encoding: Encoding) -> LargeEntry {
        out.extend_from_slice(&json::value_prefix(key, encoding));
        let utf8 = encoding == Encoding::Text && std::str::from_utf8(&value).is_ok();
        LargeEntry {
            value,
            utf8,
            done: 0,
        }
    }

    /// Writes the next piece of the value, or the object's end; true once that is written.
    fn write_next(&mut self, out: &mut Vec<u8>) -> bool {
        if self.done == self.value.len() {
            out.extend_from_slice(json::value_suffix(self.utf8));
            return true;
        }
        // Whole characters, or for base64 whole groups of 3 bytes.
        let mut end = (self.done + PIECE).min(self.value.len());
        if self.utf8 {
            while std::str::from_utf8(&self.value[self.done..end]).is_err() {
                end -= 1;
            }
        } else if end < self.value.len() {
            end -= (end - self.done) % 3;
        }
        json::value_piece(out, &self.value[self.done..end], self.utf8);
        self.done = end;
        false
    }
}

/// The reply to `GET /keys` for a value over `STREAM_VALUES_OVER`: the usual JSON, with its
/// length announced, made as it is sent.
pub fn value_reply(key: &[u8], value: Vec<u8>, encoding: Encoding) -> Reply {
    let mut pending = Pending::default();
    let entry = LargeEntry::start(&mut pending.out, key, value, encoding);
    let length = pending.out.len()
        + json::value_json_len(&entry.value, entry.utf8)
        + json::value_suffix(entry.utf8).len();
    let body = ValueBody {
        entry: Some(entry),
        pending,
        left: length,
    };
    Reply::json_stream(body, Some(length))
}

struct ValueBody {
    entry: Option<LargeEntry>,
    pending: Pending,
    /// Bytes still to come by the announced length.
    left: usize,
}

impl Read for ValueBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty()
            && let Some(entry) = &mut self.entry
            && entry.write_next(&mut self.pending.out)
        {
            self.entry = None;
        }
        let n = self.pending.take(buf);
        // A miscount would leave the client reading the next reply as this one's rest:
        // better to break the connection.
        self.left = self.left.checked_sub(n).ok_or_else(miscount)?;
        if n == 0 && self.left > 0 {
            return Err(miscount());
        }
        Ok(n)
    }
}

fn miscount() -> io::Error {
    error!("a streamed value's length was miscounted; the connection is cut");
    io::Error::other("streamed value length miscounted")
}

/// The entries of a range, in key order.
pub trait Entries: Iterator<Item = crate::Result<(Vec<u8>, Vec<u8>)>> + Send + 'static {}

impl<I: Iterator<Item = crate::Result<(Vec<u8>, Vec<u8>)>> + Send + 'static> Entries for I {}

/// The reply to `GET /keys/range`: `{"results":[...]}` from `iter`, at most `limit` entries
/// (with `"next_start_key"` when more were left).
pub fn range_reply(
    iter: impl Entries,
    limit: Option<usize>,
    encoding: Encoding,
) -> crate::Result<Reply> {
    let mut body = RangeBody {
        iter: Some(iter),
        left: limit,
        encoding,
        first: true,
        large: None,
        pending: Pending::default(),
    };
    json::results_open(&mut body.pending.out);
    if body.fill()? {
        return Ok(Reply::json_bytes(200, body.pending.out));
    }
    Ok(Reply::json_stream(body, None))
}

struct RangeBody<I> {
    /// `None` once the range has ended.
    iter: Option<I>,
    /// Entries the limit still allows.
    left: Option<usize>,
    encoding: Encoding,
    first: bool,
    /// An entry whose value is being written a piece at a time.
    large: Option<LargeEntry>,
    pending: Pending,
}

impl<I: Entries> RangeBody<I> {
    /// Adds to the pending bytes until they hold about a piece; true once the body is whole.
    fn fill(&mut self) -> crate::Result<bool> {
        let out = &mut self.pending.out;
        while out.len() < PIECE {
            if let Some(large) = &mut self.large {
                if large.write_next(out) {
                    self.large = None;
                }
                continue;
            }
            let Some(iter) = &mut self.iter else {
                return Ok(true);
            };
            let Some((key, value)) = iter.next().transpose()? else {
                json::results_close(out, None, self.encoding);
                self.iter = None;
                continue;
            };
            if self.left == Some(0) {
                json::results_close(out, Some(&key), self.encoding);
                self.iter = None;
                continue;
            }
            if let Some(left) = &mut self.left {
                *left -= 1;
            }
            if value.len() <= STREAM_VALUES_OVER {
                json::results_entry(out, self.first, &key, &value, self.encoding);
            } else {
                if !self.first {
                    out.push(b',');
                }
                self.large = Some(LargeEntry::start(out, &key, value, self.encoding));
            }
            self.first = false;
        }
        Ok(self.iter.is_none() && self.large.is_none())
    }
}

impl<I: Entries> Read for RangeBody<I> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            self.fill().map_err(|e| {
                // The reply has begun, so its status cannot say so: the connection is cut
                // before the last chunk, which tells the client the reply is incomplete.
                error!("a range reply failed after it began: {e}");
                io::Error::other(e)
            })?;
        }
        Ok(self.pending.take(buf))
    }
}
