//! The snapshot stream: a snapshot directory sent file by file, each with its length and a
//! CRC32 the receiver checks before anything is installed.
//!
//! ```text
//! stream := "LSMDBSN1" header_len:u32 header file*
//! header := postcard(StreamHeader { vote, meta, files })
//! file   := name_len:u16 name len:u64 bytes[len] crc32(bytes):u32
//! ```
//! Integers are big-endian. Names are plain file names (`[A-Za-z0-9._-]`, no leading dot),
//! so a sender cannot write outside the receiver's staging directory.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::snapshot::{sync_dir, valid_snapshot_id};
use super::types::{SnapshotMeta, Vote, codec};

const MAGIC: &[u8; 8] = b"LSMDBSN1";
const MAX_HEADER: u32 = 16 << 20;
const MAX_FILES: u32 = 1 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StreamHeader {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub files: u32,
}

fn valid_file_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What a snapshot stream reads from: its header, then each file of `dir`. Reading fails
/// once `cancel` is set (the sending replication was closed).
pub(crate) struct SnapshotStream {
    pending: io::Cursor<Vec<u8>>,
    files: std::vec::IntoIter<(String, PathBuf, u64)>,
    current: Option<(File, u64, crc32fast::Hasher)>,
    cancel: Arc<AtomicBool>,
}

impl SnapshotStream {
    pub(crate) fn new(
        vote: Vote,
        meta: SnapshotMeta,
        dir: &Path,
        cancel: Arc<AtomicBool>,
    ) -> Result<SnapshotStream> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let len = entry
                .metadata()
                .map_err(|e| Error::io("stat", &entry.path(), e))?
                .len();
            if !valid_file_name(&name) {
                return Err(Error::Internal(format!(
                    "unexpected file {name:?} in a snapshot"
                )));
            }
            files.push((name, entry.path(), len));
        }
        files.sort();
        let header = StreamHeader {
            vote,
            meta,
            files: files.len() as u32,
        };
        let encoded = codec::encode(&header)?;
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&(encoded.len() as u32).to_be_bytes());
        head.extend_from_slice(&encoded);
        Ok(SnapshotStream {
            pending: io::Cursor::new(head),
            files: files.into_iter(),
            current: None,
            cancel,
        })
    }

    /// Queues the next file's header and opens it; false when no file is left.
    fn next_file(&mut self) -> io::Result<bool> {
        let Some((name, path, len)) = self.files.next() else {
            return Ok(false);
        };
        let mut head = Vec::with_capacity(2 + name.len() + 8);
        head.extend_from_slice(&(name.len() as u16).to_be_bytes());
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(&len.to_be_bytes());
        self.pending = io::Cursor::new(head);
        self.current = Some((File::open(path)?, len, crc32fast::Hasher::new()));
        Ok(true)
    }
}

impl Read for SnapshotStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("snapshot transfer cancelled"));
        }
        loop {
            let n = self.pending.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match &mut self.current {
                Some((file, left, crc)) if *left > 0 => {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = file.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "a snapshot file shrank while being sent",
                        ));
                    }
                    crc.update(&buf[..n]);
                    *left -= n as u64;
                    return Ok(n);
                }
                Some(_) => {
                    if let Some((_, _, crc)) = self.current.take() {
                        self.pending = io::Cursor::new(crc.finalize().to_be_bytes().to_vec());
                    }
                }
                None => {
                    if !self.next_file()? {
                        return Ok(0);
                    }
                }
            }
        }
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf)
        .map_err(|e| Error::Decode(format!("the snapshot stream ({what}): {e}")))
}

fn read_u32(r: &mut impl Read, what: &str) -> Result<u32> {
    let mut b = [0; 4];
    read_exact(r, &mut b, what)?;
    Ok(u32::from_be_bytes(b))
}

/// Reads the stream's header.
pub(crate) fn read_header(r: &mut impl Read) -> Result<StreamHeader> {
    let mut magic = [0; 8];
    read_exact(r, &mut magic, "magic")?;
    if &magic != MAGIC {
        return Err(Error::Decode(
            "the snapshot stream: not an lsmdb snapshot".into(),
        ));
    }
    let len = read_u32(r, "header length")?;
    if len > MAX_HEADER {
        return Err(Error::Decode(format!(
            "the snapshot stream: header of {len} bytes"
        )));
    }
    let mut header = vec![0; len as usize];
    read_exact(r, &mut header, "header")?;
    let header: StreamHeader = codec::decode(&header, "the snapshot stream header")?;
    if header.files > MAX_FILES || !valid_snapshot_id(&header.meta.snapshot_id) {
        return Err(Error::Decode(
            "the snapshot stream: implausible header".into(),
        ));
    }
    Ok(header)
}

/// Reads the files that follow the header into `dir` (created here), checking each file's
/// checksum, and syncs them.
pub(crate) fn read_files(r: &mut impl Read, header: &StreamHeader, dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).map_err(|e| Error::io("create", dir, e))?;
    let mut buf = vec![0; 256 << 10];
    for _ in 0..header.files {
        let mut len2 = [0; 2];
        read_exact(r, &mut len2, "file name length")?;
        let mut name = vec![0; u16::from_be_bytes(len2) as usize];
        read_exact(r, &mut name, "file name")?;
        let name = String::from_utf8(name)
            .ok()
            .filter(|n| valid_file_name(n))
            .ok_or_else(|| Error::Decode("the snapshot stream: a bad file name".into()))?;
        let mut len8 = [0; 8];
        read_exact(r, &mut len8, "file length")?;
        let mut left = u64::from_be_bytes(len8);
        let path = dir.join(&name);
        let mut file = File::create_new(&path).map_err(|e| Error::io("create", &path, e))?;
        let mut crc = crc32fast::Hasher::new();
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            read_exact(r, &mut buf[..want], "file contents")?;
            crc.update(&buf[..want]);
            file.write_all(&buf[..want])
                .map_err(|e| Error::io("write", &path, e))?;
            left -= want as u64;
        }
        let expected = read_u32(r, "file checksum")?;
        if crc.finalize() != expected {
            return Err(Error::Decode(format!(
                "the snapshot stream: checksum mismatch in {name}"
            )));
        }
        file.sync_all().map_err(|e| Error::io("sync", &path, e))?;
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::LogId;

    fn header_for(id: &str) -> (Vote, SnapshotMeta) {
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 9)),
            snapshot_id: id.to_string(),
            ..Default::default()
        };
        (Vote::new_committed(2, 1), meta)
    }

    #[test]
    fn a_directory_round_trips_and_damage_is_caught() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("000007.sst"), vec![7u8; 300_000]).unwrap();
        std::fs::write(src.join("CURRENT"), b"MANIFEST-000008\n").unwrap();
        std::fs::write(src.join("empty"), b"").unwrap();
        let (vote, meta) = header_for("2-1-9-0-0");
        let mut bytes = Vec::new();
        let cancel = Arc::new(AtomicBool::new(false));
        SnapshotStream::new(vote, meta.clone(), &src, cancel.clone())
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();

        let mut r = &bytes[..];
        let header = read_header(&mut r).unwrap();
        assert_eq!((header.vote, &header.meta, header.files), (vote, &meta, 3));
        let dst = tmp.path().join("dst");
        read_files(&mut r, &header, &dst).unwrap();
        assert!(r.is_empty());
        for name in ["000007.sst", "CURRENT", "empty"] {
            assert_eq!(
                std::fs::read(src.join(name)).unwrap(),
                std::fs::read(dst.join(name)).unwrap()
            );
        }

        // A flipped byte in a file's contents fails its checksum.
        let mut damaged = bytes.clone();
        let at = damaged.len() - 100;
        damaged[at] ^= 1;
        let mut r = &damaged[..];
        let header = read_header(&mut r).unwrap();
        let err = read_files(&mut r, &header, &tmp.path().join("bad")).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
        // A cut stream is an error, not a short file.
        let mut r = &bytes[..bytes.len() - 3];
        let header = read_header(&mut r).unwrap();
        assert!(read_files(&mut r, &header, &tmp.path().join("cut")).is_err());
        // Cancelling stops the sender.
        cancel.store(true, Ordering::Relaxed);
        let (vote, meta) = header_for("2-1-9-0-1");
        let mut s = SnapshotStream::new(vote, meta, &src, cancel).unwrap();
        assert!(s.read(&mut [0; 16]).is_err());
    }

    #[test]
    fn names_that_escape_the_directory_are_refused() {
        assert!(valid_file_name("000001.sst") && valid_file_name("MANIFEST-000002"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a\0b"] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
        let mut stream = MAGIC.to_vec();
        let (vote, meta) = header_for("x");
        let header = codec::encode(&StreamHeader {
            vote,
            meta,
            files: 1,
        })
        .unwrap();
        stream.extend_from_slice(&(header.len() as u32).to_be_bytes());
        stream.extend_from_slice(&header);
        stream.extend_from_slice(&5u16.to_be_bytes());
        stream.extend_from_slice(b"../ab");
        let tmp = tempfile::tempdir().unwrap();
        let mut r = &stream[..];
        let header = read_header(&mut r).unwrap();
        assert!(read_files(&mut r, &header, &tmp.path().join("d")).is_err());
        assert!(!tmp.path().join("ab").exists());
    }
}
