//! Entry points for the fuzz targets in `fuzz/` (RELIABILITY.md T13): each feeds arbitrary
//! bytes to one of the engine's decoders the way the engine itself would, and must return
//! (with an error or nothing) rather than panic or allocate by a damaged length field.
//! Not part of the public API.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::Payload;
use crate::bloom::key_hash;
use crate::filename;
use crate::fs::{FileSystem, LogOptions, RandomAccessFile, WritableFile};
use crate::iter::InternalIterator;
use crate::key;
use crate::manifest::{self, MANIFEST_KIND, VersionEdit};
use crate::memtable::{Memtable, MemtableIter};
use crate::record;
use crate::sstable::BlockCache;
use crate::sstable::{Block, BlockIter, Filter, Table, TableIter};
use crate::version::{TableContext, VersionSet};
use crate::wal::{self, OnDamage};

/// Bounds the work on inputs that decode to very many entries.
const MAX_STEPS: usize = 10_000;

/// A WAL as recovery reads it: the record framing (strict and salvage), each batch payload,
/// and the batches applied to a memtable. A first byte of 0 feeds the rest to the payload
/// decoder directly, past the checksums.
pub fn wal(data: &[u8]) {
    if let Some((0, payload)) = data.split_first() {
        let _ = replay_payload(payload);
        return;
    }
    let path = filename::wal_path(Path::new(""), 1);
    let fs = MemFs::default();
    fs.add(&path, data);
    for on_damage in [OnDamage::Fail, OnDamage::Skip] {
        let mem = Arc::new(Memtable::new(0, 1 << 20));
        let _ = wal::read(&fs, &path, on_damage, |batch| {
            mem.apply_replayed(batch);
            Ok(())
        });
        scan_memtable(&mem);
    }
}

fn replay_payload(payload: &[u8]) -> Result<(), &'static str> {
    let batch = Payload::decode(payload)?;
    wal::check_batch(&batch)?;
    let mem = Arc::new(Memtable::new(0, 1 << 20));
    mem.apply_replayed(&batch);
    scan_memtable(&mem);
    Ok(())
}

fn scan_memtable(mem: &Arc<Memtable>) {
    let mut it = mem.iter();
    if it.seek_to_first().is_ok() {
        first_keys(&mut it, MemtableIter::valid, MemtableIter::key, |it| {
            it.next().is_ok()
        });
    }
}

/// Steps a positioned cursor through at most [`MAX_STEPS`] entries, stopping at the end or
/// at the first error (`next` says whether the step succeeded), and returns the first keys
/// it met, to seek to later.
fn first_keys<I>(
    it: &mut I,
    valid: impl Fn(&I) -> bool,
    key: impl Fn(&I) -> &[u8],
    mut next: impl FnMut(&mut I) -> bool,
) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    for _ in 0..MAX_STEPS {
        if !valid(it) {
            break;
        }
        if keys.len() < 16 {
            keys.push(key(it).to_vec());
        }
        if !next(it) {
            break;
        }
    }
    keys
}

/// A manifest as an open reads it: CURRENT names it, its edits are decoded and applied to
/// an empty version. A first byte of 0 feeds the rest to the edit decoder directly.
pub fn manifest(data: &[u8]) {
    if let Some((0, edit)) = data.split_first() {
        let _ = VersionEdit::decode(edit);
        return;
    }
    let dir = Path::new("db");
    let path = filename::manifest_path(dir, 1);
    let fs = Arc::new(MemFs::default());
    fs.add(&filename::current_path(dir), b"MANIFEST-000001\n");
    fs.add(&path, data);
    let _ = record::scan(data, &path, MANIFEST_KIND, true, |_, p| {
        let _ = VersionEdit::decode(p);
        Ok(())
    });
    let _ = manifest::read_edits(fs.as_ref(), &path);
    let ctx = TableContext::read_only(fs, dir);
    let _ = VersionSet::recover(dir, ctx);
}

/// A table opened from arbitrary bytes (footer, index, filter, properties), then scanned,
/// searched and verified block by block.
pub fn table(data: &[u8]) {
    let path = filename::table_path(Path::new(""), 1);
    let fs = MemFs::default();
    fs.add(&path, data);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let Ok(table) = Table::open(&fs, &path, 1, cache) else {
        return;
    };
    let table = Arc::new(table);
    let mut it = table.iter();
    let mut keys = Vec::new();
    if it.seek_to_first().is_ok() {
        keys = first_keys(&mut it, TableIter::valid, TableIter::key, |it| {
            it.next().is_ok()
        });
    }
    keys.push(key::lookup_key(b"probe", key::MAX_SEQ));
    for k in &keys {
        let _ = table.get(k, key_hash(key::user_key(k)));
        let _ = it.seek(k);
    }
    let _ = table.verify();
    let mut copied = 0;
    let _ = table.verify_and_copy(&mut |_, _| {
        copied += 1;
        Ok(())
    });
}

/// A block decoded, iterated and searched; and the same bytes as a filter.
pub fn block(data: &[u8]) {
    if let Ok(block) = Block::new(data.to_vec()) {
        let mut it = BlockIter::new(Arc::new(block));
        let mut keys = Vec::new();
        if it.seek_to_first().is_ok() {
            keys = first_keys(&mut it, BlockIter::valid, BlockIter::key, |it| {
                it.next().is_ok()
            });
        }
        keys.push(b"probe".to_vec());
        for k in &keys {
            let _ = it.seek(k);
        }
    }
    if let Ok(filter) = Filter::decode(data.to_vec()) {
        for probe in [&b"probe"[..], data] {
            let _ = filter.may_contain(key_hash(probe));
        }
    }
}

/// The size checks a write applies to a batch before anything is written.
pub fn validate_batch(batch: &crate::WriteBatch) -> crate::Result<()> {
    batch.validate()
}

/// A read-only file system over files held in memory.
#[derive(Debug, Default)]
struct MemFs {
    files: parking_lot::Mutex<HashMap<PathBuf, Arc<Vec<u8>>>>,
}

impl MemFs {
    fn add(&self, path: &Path, data: &[u8]) {
        self.files
            .lock()
            .insert(path.to_path_buf(), Arc::new(data.to_vec()));
    }
}

struct MemFile(Arc<Vec<u8>>);

impl RandomAccessFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.0.len() as u64)
    }
}

fn read_only() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "read-only file system")
}

impl FileSystem for MemFs {
    fn create(&self, _: &Path) -> io::Result<Box<dyn WritableFile>> {
        Err(read_only())
    }
    fn open_append(&self, _: &Path) -> io::Result<Box<dyn WritableFile>> {
        Err(read_only())
    }
    fn create_log(&self, _: &Path, _: &LogOptions) -> io::Result<Box<dyn WritableFile>> {
        Err(read_only())
    }
    fn open_log(&self, _: &Path, _: u64, _: &LogOptions) -> io::Result<Box<dyn WritableFile>> {
        Err(read_only())
    }
    fn truncate(&self, _: &Path, _: u64) -> io::Result<()> {
        Err(read_only())
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        match self.files.lock().get(path) {
            Some(data) => Ok(Arc::new(MemFile(Arc::clone(data)))),
            None => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn remove_file(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.files.lock();
        Ok(files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(String::from))
            .collect())
    }
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Err(read_only())
    }
    fn exists(&self, path: &Path) -> bool {
        self.files.lock().contains_key(path) || path == Path::new("db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filename::FileType;

    /// The targets run on real files and on damaged copies of them without panicking.
    #[test]
    fn targets_accept_real_and_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::Options::default()
            .write_buffer_size(4 << 10)
            .block_size(128);
        let db = crate::Db::open(dir.path(), opts).unwrap();
        for i in 0..300u32 {
            db.put(format!("key{i}"), format!("value{i}")).unwrap();
        }
        db.flush().unwrap();
        db.put(b"in", b"wal").unwrap();
        db.close().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let name = path.file_name().unwrap().to_str().unwrap();
            let target: fn(&[u8]) = match filename::parse(name) {
                Some(FileType::Wal(_)) => wal,
                Some(FileType::Table(_)) => table,
                Some(FileType::Manifest(_)) => manifest,
                _ => continue,
            };
            target(&data);
            block(&data);
            for at in (0..data.len()).step_by(7) {
                let mut bad = data.clone();
                bad[at] ^= 0x55;
                target(&bad);
                target(&bad[..at]);
            }
        }
    }
}
