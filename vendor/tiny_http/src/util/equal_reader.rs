use std::io::Read;
use std::io::Result as IoResult;
use std::sync::mpsc::channel;
use std::sync::mpsc::{Receiver, Sender};

/// A `Reader` that reads exactly the number of bytes from a sub-reader.
///
/// If the limit is reached, it returns EOF. If the limit is not reached when the destructor is
/// called, the remaining bytes are read and thrown away when there are at most `drain_limit`
/// of them, so that the connection can carry the next request.
///
/// lsmdb patch: upstream allocated a buffer of the whole remaining length in the destructor,
/// so answering a request that announced `Content-Length: 100000000000000` without reading
/// its body aborted the process on the failed allocation; and it drained any length, so a
/// handler that refused a large or slow body was held until the client had sent all of it.
/// Now the drain goes through a fixed buffer, stops at `drain_limit`, and the receiver learns
/// whether the body was consumed (`true`) or the connection must close (`false`).
pub struct EqualReader<R>
where
    R: Read,
{
    reader: R,
    size: usize,
    drain_limit: usize,
    last_read_signal: Sender<bool>,
}

impl<R> EqualReader<R>
where
    R: Read,
{
    pub fn new(reader: R, size: usize, drain_limit: usize) -> (EqualReader<R>, Receiver<bool>) {
        let (tx, rx) = channel();

        let r = EqualReader {
            reader,
            size,
            drain_limit,
            last_read_signal: tx,
        };

        (r, rx)
    }
}

impl<R> Read for EqualReader<R>
where
    R: Read,
{
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.size == 0 {
            return Ok(0);
        }

        let buf = if buf.len() < self.size {
            buf
        } else {
            &mut buf[..self.size]
        };

        match self.reader.read(buf) {
            Ok(len) => {
                self.size -= len;
                Ok(len)
            }
            err @ Err(_) => err,
        }
    }
}

impl<R> Drop for EqualReader<R>
where
    R: Read,
{
    fn drop(&mut self) {
        if self.size <= self.drain_limit {
            let mut buf = [0u8; 8 * 1024];
            while self.size > 0 {
                let want = self.size.min(buf.len());
                match self.reader.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => self.size -= n,
                }
            }
        }
        self.last_read_signal.send(self.size == 0).ok();
    }
}

#[cfg(test)]
mod tests {
    use super::EqualReader;
    use std::io::Read;

    #[test]
    fn test_limit() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(org_reader.by_ref(), 5, 1024);

            let mut string = String::new();
            equal_reader.read_to_string(&mut string).unwrap();
            assert_eq!(string, "hello");
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn test_not_enough() {
        use std::io::Cursor;

        let mut org_reader = Cursor::new("hello world".to_string().into_bytes());

        {
            let (mut equal_reader, _) = EqualReader::new(org_reader.by_ref(), 5, 1024);

            let mut vec = [0];
            equal_reader.read_exact(&mut vec).unwrap();
            assert_eq!(vec[0], b'h');
        }

        let mut string = String::new();
        org_reader.read_to_string(&mut string).unwrap();
        assert_eq!(string, " world");
    }

    #[test]
    fn drains_through_a_small_buffer_whatever_the_announced_length() {
        use std::io::Cursor;

        // The length is far beyond any memory: the drain must not allocate it.
        let (reader, done) = EqualReader::new(Cursor::new(vec![7u8; 10]), usize::MAX / 2, usize::MAX);
        drop(reader);
        assert_eq!(done.recv(), Ok(false));
    }

    #[test]
    fn reports_whether_the_body_was_consumed() {
        use std::io::Cursor;

        let (reader, done) = EqualReader::new(Cursor::new(vec![7u8; 10]), 10, 16);
        drop(reader);
        assert_eq!(done.recv(), Ok(true), "small rest drained");

        let mut source = Cursor::new(vec![7u8; 100]);
        let (reader, done) = EqualReader::new(source.by_ref(), 100, 16);
        drop(reader);
        assert_eq!(done.recv(), Ok(false), "rest over the limit left unread");
        assert_eq!(source.position(), 0);
    }
}
