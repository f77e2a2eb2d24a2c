//! Sending a snapshot directory to another node in chunks of bounded size, each with a
//! CRC32 the receiver checks before it writes a byte, so neither side ever holds more than
//! one chunk in memory however large the snapshot (the RPC server reads each request whole,
//! at most `rpc::MAX_BODY`).
//!
//! The exchange, three routes (rpc.rs), bodies in postcard unless said otherwise:
//! 1. `begin`: an [`Offer`] (the leader's vote, the snapshot's metadata, its files and their
//!    lengths). A receiver whose vote is newer answers [`Progress::Stale`] and takes nothing.
//!    Otherwise it stages the transfer in a fresh directory, or keeps the one it has if this
//!    is the same snapshot offered again, and answers [`Progress::Have`]: how many bytes of
//!    each file it already holds.
//! 2. `chunk`, once per piece, in order within a file: `header_len:u32 (big-endian)`,
//!    `postcard(ChunkHeader { snapshot_id, file, offset, crc })`, then the bytes. It must
//!    continue exactly where the receiver's copy of that file ends; anything else is refused
//!    with 409, and the sender begins again, resuming from what the receiver says it holds.
//! 3. `finish`: the receiver checks that every file is complete, syncs them, checks the
//!    snapshot's own reserved keys against the metadata and installs it; the reply is
//!    openraft's `SnapshotResponse`.
//!
//! A transfer cut off (a broken connection, a timeout) resumes at the next attempt; one cut
//! off by a restart of the receiver starts over, since a restart removes staging
//! directories. File names are plain (`[A-Za-z0-9._-]`, no leading dot), so a sender cannot
//! write outside the staging directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use openraft::raft::SnapshotResponse;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::error::{Error, Result};
use super::network::CallError;
use super::rpc;
use super::snapshot::{SnapshotDir, sync_dir, sync_file, valid_snapshot_id};
use super::types::{NodeId, SnapshotMeta, Vote, codec};

/// The default chunk size: well under `rpc::MAX_BODY`, large enough that a chunk's round
/// trip costs little next to its bytes.
pub const DEFAULT_CHUNK_BYTES: usize = 8 << 20;
/// Chunk sizes a node accepts in its configuration.
pub const CHUNK_BYTES_RANGE: std::ops::RangeInclusive<usize> = 4096..=(rpc::MAX_BODY - 65536);

const MAX_FILES: usize = 1 << 16;
/// Attempts at one transfer (each resuming where the last stopped) before the sender gives
/// up and leaves it to openraft to try again later.
const ATTEMPTS: u32 = 4;
/// How long a begin or a chunk may take, beyond the time its bytes need at a slow 1 MiB/s.
const CALL_TIME: Duration = Duration::from_secs(10);
/// How long the receiver may take to check and install a snapshot it has whole.
const INSTALL_TIME: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileInfo {
    pub name: String,
    pub len: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Offer {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub files: Vec<FileInfo>,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Progress {
    /// Bytes held of each offered file, in the offer's order.
    Have(Vec<u64>),
    /// The receiver has seen a newer vote; the sender is not its leader.
    Stale(Vote),
}

#[derive(Debug, Serialize, Deserialize)]
struct ChunkHeader {
    snapshot_id: String,
    file: u32,
    offset: u64,
    crc: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Finish {
    pub snapshot_id: String,
}

pub(crate) fn valid_file_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a receiver refused a request.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Not the transfer, or not the place in it, the receiver has: begin again (409).
    Restart(String),
    /// Malformed or implausible (400).
    Bad(String),
    /// The receiver's disk failed (500).
    Failed(Error),
}

impl Refused {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Refused::Restart(_) => 409,
            Refused::Bad(_) => 400,
            Refused::Failed(_) => 500,
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Restart(r) | Refused::Bad(r) => f.write_str(r),
            Refused::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// A transfer being received: what was offered and how much of each file is here.
struct Incoming {
    offer: Offer,
    held: Vec<u64>,
    /// Removed when dropped, unless openraft installed it.
    dir: SnapshotDir,
}

/// The receiving side: at most one transfer at a time (a newer offer replaces it).
#[derive(Default)]
pub(crate) struct Receiver {
    incoming: Mutex<Option<Incoming>>,
}

/// A complete snapshot, received and synced, for openraft to install.
pub(crate) struct Received {
    pub vote: Vote,
    pub meta: SnapshotMeta,
    pub dir: SnapshotDir,
}

impl Receiver {
    /// Takes an offer (whose vote the caller has checked) and says what is held of it;
    /// `staging` names a fresh directory if one is needed.
    pub(crate) fn begin(
        &self,
        offer: Offer,
        staging: impl FnOnce() -> PathBuf,
    ) -> std::result::Result<Vec<u64>, Refused> {
        check_offer(&offer)?;
        let mut incoming = self.incoming.lock();
        if let Some(current) = incoming.as_mut()
            && current.offer.meta == offer.meta
            && current.offer.files == offer.files
        {
            current.offer.vote = offer.vote;
            return Ok(current.held.clone());
        }
        // Drops (and so removes) the transfer this one replaces.
        *incoming = None;
        let path = staging();
        std::fs::create_dir(&path).map_err(|e| Refused::Failed(Error::io("create", &path, e)))?;
        let held = vec![0; offer.files.len()];
        *incoming = Some(Incoming {
            offer,
            held: held.clone(),
            dir: SnapshotDir::staging(path),
        });
        Ok(held)
    }

    /// Writes one chunk (a request body as `chunk_body` makes it) where it belongs.
    pub(crate) fn chunk(&self, body: &[u8]) -> std::result::Result<Vec<u64>, Refused> {
        let (header, data) = split_chunk(body)?;
        let mut guard = self.incoming.lock();
        let Some(incoming) = guard
            .as_mut()
            .filter(|i| i.offer.meta.snapshot_id == header.snapshot_id)
        else {
            return Err(Refused::Restart(format!(
                "no transfer of snapshot {} is under way here",
                header.snapshot_id
            )));
        };
        let i = header.file as usize;
        let Some(file) = incoming.offer.files.get(i) else {
            return Err(Refused::Bad(format!("no file {i} in the offer")));
        };
        if header.offset != incoming.held[i] {
            return Err(Refused::Restart(format!(
                "{} continues at byte {}, not {}",
                file.name, incoming.held[i], header.offset
            )));
        }
        if header.offset + data.len() as u64 > file.len {
            return Err(Refused::Bad(format!(
                "a chunk past the end of {} ({} bytes)",
                file.name, file.len
            )));
        }
        if crc32fast::hash(data) != header.crc {
            return Err(Refused::Bad(format!(
                "checksum mismatch in a chunk of {} at byte {}",
                file.name, header.offset
            )));
        }
        let path = incoming.dir.path().join(&file.name);
        write_at(&path, header.offset, data).map_err(Refused::Failed)?;
        incoming.held[i] += data.len() as u64;
        Ok(incoming.held.clone())
    }

    /// Hands over the transfer `snapshot_id` once every file is complete, synced.
    pub(crate) fn finish(&self, snapshot_id: &str) -> std::result::Result<Received, Refused> {
        let mut guard = self.incoming.lock();
        let Some(incoming) = guard
            .as_ref()
            .filter(|i| i.offer.meta.snapshot_id == snapshot_id)
        else {
            return Err(Refused::Restart(format!(
                "no transfer of snapshot {snapshot_id} is under way here"
            )));
        };
        let files = &incoming.offer.files;
        if let Some((file, held)) = files
            .iter()
            .zip(&incoming.held)
            .find(|(f, held)| **held != f.len)
        {
            return Err(Refused::Restart(format!(
                "{} has {held} of its {} bytes",
                file.name, file.len
            )));
        }
        let dir = incoming.dir.path();
        for file in files {
            let path = dir.join(&file.name);
            if file.len == 0 {
                // Never written by a chunk.
                File::create(&path).map_err(|e| Refused::Failed(Error::io("create", &path, e)))?;
            }
            sync_file(&path).map_err(Refused::Failed)?;
        }
        sync_dir(dir).map_err(Refused::Failed)?;
        let incoming = guard
            .take()
            .ok_or_else(|| Refused::Restart("gone".into()))?;
        Ok(Received {
            vote: incoming.offer.vote,
            meta: incoming.offer.meta,
            dir: incoming.dir,
        })
    }
}

fn check_offer(offer: &Offer) -> std::result::Result<(), Refused> {
    if !valid_snapshot_id(&offer.meta.snapshot_id) || offer.files.len() > MAX_FILES {
        return Err(Refused::Bad("an implausible snapshot offer".into()));
    }
    let mut names: Vec<&str> = offer.files.iter().map(|f| f.name.as_str()).collect();
    if let Some(bad) = names.iter().find(|n| !valid_file_name(n)) {
        return Err(Refused::Bad(format!(
            "a bad file name {bad:?} in the offer"
        )));
    }
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err(Refused::Bad("a file offered twice".into()));
    }
    Ok(())
}

/// Writes `data` at `offset` of `path`, cutting off whatever a failed earlier write left
/// beyond it.
fn write_at(path: &Path, offset: u64, data: &[u8]) -> Result<()> {
    let io = |e| Error::io("write", path, e);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io)?;
    file.set_len(offset).map_err(io)?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    file.write_all(data).map_err(io)
}

fn chunk_body(header: &ChunkHeader, data: &[u8]) -> Result<Vec<u8>> {
    let head = codec::encode(header)?;
    let mut body = Vec::with_capacity(4 + head.len() + data.len());
    body.extend_from_slice(&(head.len() as u32).to_be_bytes());
    body.extend_from_slice(&head);
    body.extend_from_slice(data);
    Ok(body)
}

fn split_chunk(body: &[u8]) -> std::result::Result<(ChunkHeader, &[u8]), Refused> {
    let bad = || Refused::Bad("a malformed snapshot chunk".into());
    let (len, rest) = body.split_first_chunk::<4>().ok_or_else(bad)?;
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() || len > 4096 {
        return Err(bad());
    }
    let (head, data) = rest.split_at(len);
    let header = codec::decode(head, "a snapshot chunk header").map_err(|_| bad())?;
    Ok((header, data))
}

/// How the sender reaches the receiver: POST `body` to `path`, the 200 reply's body back.
pub(crate) type Post<'a> =
    dyn FnMut(&'static str, &[u8], Duration) -> std::result::Result<Vec<u8>, CallError> + 'a;

/// Lists the files of the snapshot directory `dir`.
pub(crate) fn list_files(dir: &Path) -> Result<Vec<FileInfo>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !valid_file_name(&name) {
            return Err(Error::Internal(format!(
                "unexpected file {name:?} in a snapshot"
            )));
        }
        let len = entry
            .metadata()
            .map_err(|e| Error::io("stat", &entry.path(), e))?
            .len();
        files.push(FileInfo { name, len });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// The time a call carrying `bytes` may take.
fn call_time(bytes: usize) -> Duration {
    CALL_TIME + Duration::from_secs((bytes >> 20) as u64)
}

/// Sends the snapshot in `dir` in chunks of at most `chunk_bytes`, resuming after a failed
/// attempt, and returns the receiver's answer. Stops with an error once `cancel` is set.
pub(crate) fn send(
    post: &mut Post<'_>,
    vote: Vote,
    meta: &SnapshotMeta,
    dir: &Path,
    chunk_bytes: usize,
    cancel: &AtomicBool,
) -> std::result::Result<SnapshotResponse<NodeId>, CallError> {
    let local = |e: Error| CallError::NotSent(e.to_string());
    let offer = Offer {
        vote,
        meta: meta.clone(),
        files: list_files(dir).map_err(local)?,
    };
    let offer_body = codec::encode(&offer).map_err(local)?;
    let mut buf = vec![0; chunk_bytes];
    let mut attempt = 0;
    loop {
        attempt += 1;
        match send_once(post, &offer, &offer_body, dir, &mut buf, cancel) {
            Ok(reply) => return Ok(reply),
            Err(e) if attempt < ATTEMPTS && resumable(&e) && !cancel.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether another attempt may get further.
fn resumable(e: &CallError) -> bool {
    matches!(
        e,
        CallError::Timeout | CallError::Broken(_) | CallError::Status(409, _)
    )
}

fn send_once(
    post: &mut Post<'_>,
    offer: &Offer,
    offer_body: &[u8],
    dir: &Path,
    buf: &mut [u8],
    cancel: &AtomicBool,
) -> std::result::Result<SnapshotResponse<NodeId>, CallError> {
    let decode = |bytes: &[u8], what| {
        codec::decode::<Progress>(bytes, what).map_err(|e| CallError::Broken(e.to_string()))
    };
    let held = match decode(&post(rpc::SNAPSHOT_BEGIN, offer_body, CALL_TIME)?, "begin")? {
        Progress::Stale(vote) => return Ok(SnapshotResponse { vote }),
        Progress::Have(held) if held.len() == offer.files.len() => held,
        Progress::Have(_) => return Err(CallError::Broken("a reply for another offer".into())),
    };
    for (i, (file, from)) in offer.files.iter().zip(held).enumerate() {
        if from >= file.len {
            continue;
        }
        let path = dir.join(&file.name);
        let io = |e| CallError::NotSent(Error::io("read", &path, e).to_string());
        let mut reader = File::open(&path).map_err(io)?;
        reader.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut offset = from;
        while offset < file.len {
            if cancel.load(Ordering::Relaxed) {
                return Err(CallError::NotSent("snapshot transfer cancelled".into()));
            }
            let n = buf
                .len()
                .min(usize::try_from(file.len - offset).unwrap_or(usize::MAX));
            reader.read_exact(&mut buf[..n]).map_err(io)?;
            let header = ChunkHeader {
                snapshot_id: offer.meta.snapshot_id.clone(),
                file: i as u32,
                offset,
                crc: crc32fast::hash(&buf[..n]),
            };
            let body =
                chunk_body(&header, &buf[..n]).map_err(|e| CallError::NotSent(e.to_string()))?;
            post(rpc::SNAPSHOT_CHUNK, &body, call_time(n))?;
            offset += n as u64;
        }
    }
    let finish = codec::encode(&Finish {
        snapshot_id: offer.meta.snapshot_id.clone(),
    })
    .map_err(|e| CallError::NotSent(e.to_string()))?;
    let reply = post(rpc::SNAPSHOT_FINISH, &finish, INSTALL_TIME)?;
    codec::decode(&reply, "finish").map_err(|e| CallError::Broken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::types::LogId;

    fn meta(id: &str) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 9)),
            snapshot_id: id.to_string(),
            ..Default::default()
        }
    }

    /// Routes a sender's calls straight to `receiver`, as the RPC server would, failing
    /// the calls for which `fail` says so (as a lost connection would).
    fn wire<'a>(
        receiver: &'a Receiver,
        staging: &'a Path,
        mut fail: impl FnMut(&str, usize) -> bool + 'a,
        biggest: &'a std::cell::Cell<usize>,
    ) -> impl FnMut(&'static str, &[u8], Duration) -> std::result::Result<Vec<u8>, CallError> + 'a
    {
        let mut calls = 0;
        let mut n = 0;
        move |path, body, _| {
            calls += 1;
            biggest.set(biggest.get().max(body.len()));
            if fail(path, calls) {
                return Err(CallError::Broken("cut".into()));
            }
            let refused = |r: Refused| CallError::Status(r.status(), r.to_string());
            let reply = match path {
                rpc::SNAPSHOT_BEGIN => {
                    let offer: Offer = codec::decode(body, "offer").unwrap();
                    n += 1;
                    let dir = staging.join(format!("recv-{n}"));
                    Progress::Have(receiver.begin(offer, || dir).map_err(refused)?)
                }
                rpc::SNAPSHOT_CHUNK => Progress::Have(receiver.chunk(body).map_err(refused)?),
                _ => {
                    let finish: Finish = codec::decode(body, "finish").unwrap();
                    let got = receiver.finish(&finish.snapshot_id).map_err(refused)?;
                    let kept = staging.join("installed");
                    std::fs::rename(got.dir.path(), &kept).unwrap();
                    return Ok(codec::encode(&SnapshotResponse { vote: got.vote }).unwrap());
                }
            };
            Ok(codec::encode(&reply).unwrap())
        }
    }

    fn source(tmp: &Path) -> PathBuf {
        let src = tmp.join("src");
        std::fs::create_dir(&src).unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(src.join("000007.sst"), &big).unwrap();
        std::fs::write(src.join("CURRENT"), b"MANIFEST-000008\n").unwrap();
        std::fs::write(src.join("empty"), b"").unwrap();
        src
    }

    fn same_files(a: &Path, b: &Path) {
        for name in ["000007.sst", "CURRENT", "empty"] {
            assert_eq!(
                std::fs::read(a.join(name)).unwrap(),
                std::fs::read(b.join(name)).unwrap(),
                "{name}"
            );
        }
    }

    #[test]
    fn a_snapshot_travels_in_bounded_chunks_and_resumes_after_a_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let src = source(tmp.path());
        let staging = tmp.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        let receiver = Receiver::default();
        let biggest = std::cell::Cell::new(0);
        let cancel = AtomicBool::new(false);
        // The fourth call (the third chunk) is lost: the next attempt begins again and
        // resumes where the receiver's copy ends, not from the start.
        let mut chunks_sent = 0;
        let mut post = wire(
            &receiver,
            &staging,
            |path, call| {
                if path == rpc::SNAPSHOT_CHUNK {
                    chunks_sent += 1;
                }
                call == 4
            },
            &biggest,
        );
        let vote = Vote::new_committed(2, 1);
        let reply = send(&mut post, vote, &meta("2-1-9-0-0"), &src, 64 << 10, &cancel).unwrap();
        drop(post);
        assert_eq!(reply.vote, vote);
        same_files(&src, &staging.join("installed"));
        // 300,000 bytes in 64 KiB chunks is 5 chunks, plus the one lost and one for
        // CURRENT; a restart from scratch would have sent more.
        assert_eq!(chunks_sent, 7);
        assert!(biggest.get() <= (64 << 10) + 100, "{}", biggest.get());
    }

    #[test]
    fn the_receiver_refuses_damage_gaps_and_strangers() {
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::default();
        let offer = Offer {
            vote: Vote::new_committed(2, 1),
            meta: meta("2-1-9-0-0"),
            files: vec![FileInfo {
                name: "a".into(),
                len: 10,
            }],
        };
        let dir = tmp.path().join("r");
        assert_eq!(receiver.begin(offer.clone(), || dir.clone()).unwrap(), [0]);
        let header = |offset, crc| ChunkHeader {
            snapshot_id: "2-1-9-0-0".into(),
            file: 0,
            offset,
            crc,
        };
        let good = chunk_body(&header(0, crc32fast::hash(b"01234")), b"01234").unwrap();
        let mut damaged = good.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(matches!(receiver.chunk(&damaged), Err(Refused::Bad(m)) if m.contains("checksum")));
        assert_eq!(receiver.chunk(&good).unwrap(), [5]);
        // A repeat, or a gap, is not where the file continues.
        assert!(matches!(receiver.chunk(&good), Err(Refused::Restart(_))));
        let gap = chunk_body(&header(7, crc32fast::hash(b"789")), b"789").unwrap();
        assert!(matches!(receiver.chunk(&gap), Err(Refused::Restart(_))));
        let past = chunk_body(&header(5, crc32fast::hash(b"567890")), b"567890").unwrap();
        assert!(matches!(receiver.chunk(&past), Err(Refused::Bad(_))));
        assert!(matches!(
            receiver.finish("2-1-9-0-0"),
            Err(Refused::Restart(_))
        ));
        // The same offer again resumes; another replaces it and removes its files.
        assert_eq!(
            receiver.begin(offer.clone(), || unreachable!()).unwrap(),
            [5]
        );
        let other = Offer {
            meta: meta("2-1-9-0-1"),
            ..offer.clone()
        };
        let dir2 = tmp.path().join("r2");
        assert_eq!(receiver.begin(other, || dir2.clone()).unwrap(), [0]);
        assert!(!dir.exists());
        assert!(matches!(receiver.chunk(&good), Err(Refused::Restart(_))));
        assert!(split_chunk(b"\0\0").is_err());
        assert!(split_chunk(b"\xff\xff\xff\xffxx").is_err());
    }

    #[test]
    fn names_that_escape_the_directory_are_refused() {
        assert!(valid_file_name("000001.sst") && valid_file_name("MANIFEST-000002"));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a\0b"] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let receiver = Receiver::default();
        let offer = Offer {
            vote: Vote::new_committed(2, 1),
            meta: meta("x"),
            files: vec![FileInfo {
                name: "../ab".into(),
                len: 1,
            }],
        };
        let dir = tmp.path().join("d");
        assert!(matches!(
            receiver.begin(offer, || dir.clone()),
            Err(Refused::Bad(_))
        ));
        assert!(!dir.exists());
    }

    #[test]
    fn a_cancelled_transfer_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let src = source(tmp.path());
        let receiver = Receiver::default();
        let biggest = std::cell::Cell::new(0);
        let mut post = wire(&receiver, tmp.path(), |_, _| false, &biggest);
        let cancel = AtomicBool::new(true);
        let vote = Vote::new_committed(2, 1);
        assert!(send(&mut post, vote, &meta("2-1-9-0-0"), &src, 4096, &cancel).is_err());
    }
}
