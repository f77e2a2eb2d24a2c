//! Reads a table: the footer, index and filter are loaded at open and kept in memory; data
//! blocks are read on demand through the block cache, each checked against its CRC before
//! it is used. A point lookup reads at most one data block, and none when the filter says no.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::block::{Block, BlockError, BlockIter};
use super::cache::BlockCache;
use super::filter::Filter;
use super::footer::{
    BLOCK_TRAILER_LEN, BlockHandle, FOOTER_LEN, FORMAT_VERSION, Footer, FooterError,
    NO_COMPRESSION, Properties, block_trailer,
};
use super::index::Index;
use crate::error::{Error, IoContext, Result};
use crate::fs::{FileSystem, RandomAccessFile};
use crate::iter::InternalIterator;
use crate::key::{self, Kind};

/// Sequential scans read ahead up to this much past the block they need.
const MAX_READAHEAD: usize = 256 << 10;

pub(crate) struct Table {
    source: Source,
    number: u64,
    index: Index,
    filter: Option<Filter>,
    cache: Arc<BlockCache>,
}

impl Table {
    pub(crate) fn open(
        fs: &dyn FileSystem,
        path: &Path,
        number: u64,
        cache: Arc<BlockCache>,
    ) -> Result<Table> {
        let file = fs.open_read(path).ctx("open table", path)?;
        let file_size = file.len().ctx("stat table", path)?;
        let footer_at = file_size
            .checked_sub(FOOTER_LEN as u64)
            .ok_or_else(|| Error::corruption(path, 0, "file is shorter than a table footer"))?;
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, footer_at)
            .ctx("read footer of", path)?;
        let footer = Footer::decode(&footer).map_err(|e| match e {
            FooterError::UnsupportedVersion(v) => Error::Unsupported {
                path: path.to_path_buf(),
                found_version: v,
                supported: FORMAT_VERSION,
            },
            FooterError::BadMagic => {
                Error::corruption(path, footer_at, "bad table magic (not an lsmdb table)")
            }
            FooterError::BadChecksum => {
                Error::corruption(path, footer_at, "footer checksum mismatch")
            }
        })?;
        let source = Source {
            file,
            path: path.to_path_buf(),
            file_size,
        };
        let index = Block::new(source.read_contents(footer.index)?)
            .and_then(Index::decode)
            .map_err(|e| Error::corruption(path, footer.index.offset, e))?;
        let filter = if footer.filter.size > 0 {
            let data = source.read_contents(footer.filter)?;
            Some(
                Filter::decode(data)
                    .map_err(|e| Error::corruption(path, footer.filter.offset, e))?,
            )
        } else {
            None
        };
        // The properties block is checked at open even though reads do not need it, so that
        // damage anywhere outside the data blocks fails the open.
        let props = source.read_contents(footer.properties)?;
        Properties::decode(&props).ok_or_else(|| {
            Error::corruption(path, footer.properties.offset, "truncated properties block")
        })?;
        let table = Table {
            source,
            number,
            index,
            filter,
            cache,
        };
        Ok(table)
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::corruption(&self.source.path, offset, reason)
    }

    /// Reads a data block through the cache. Scans pass their readahead buffer; a
    /// compaction's scan also passes `fill_cache = false` so it does not evict hot blocks.
    fn read_block(
        &self,
        handle: BlockHandle,
        readahead: Option<&mut Readahead>,
        fill_cache: bool,
    ) -> Result<Arc<Block>> {
        if let Some(block) = self.cache.get(self.number, handle.offset) {
            return Ok(block);
        }
        let contents = match readahead {
            Some(ra) => ra.read(&self.source, handle)?,
            None => self.source.read_contents(handle)?,
        };
        let block = Arc::new(Block::new(contents).map_err(|e| self.corrupt(handle.offset, e))?);
        if fill_cache {
            self.cache
                .insert(self.number, handle.offset, Arc::clone(&block));
        }
        Ok(block)
    }

    fn block_error(&self, handle_offset: u64) -> impl Fn(BlockError) -> Error + '_ {
        move |e| self.corrupt(handle_offset, e)
    }

    /// Whether the filter allows that a key with this hash is present.
    #[inline]
    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(hash))
    }

    /// The newest entry for the user key of `lookup` at or below its sequence number.
    pub(crate) fn get(&self, lookup: &[u8], hash: u64) -> Result<Option<(Kind, Vec<u8>)>> {
        if !self.may_contain(hash) {
            return Ok(None);
        }
        let Some(handle) = self.index.handle(self.index.find(lookup)) else {
            return Ok(None);
        };
        let block = self.read_block(handle, None, true)?;
        let mut it = BlockIter::new(block);
        it.seek(lookup).map_err(self.block_error(handle.offset))?;
        if !it.valid() {
            return Ok(None);
        }
        match key::parse(it.key()) {
            Some(k) if k.user_key == key::user_key(lookup) => {
                Ok(Some((k.kind, it.value().to_vec())))
            }
            Some(_) => Ok(None),
            None => Err(self.corrupt(handle.offset, "malformed internal key")),
        }
    }

    pub(crate) fn iter(self: &Arc<Self>) -> TableIter {
        TableIter {
            table: Arc::clone(self),
            block: 0,
            data: None,
            data_offset: 0,
            readahead: Readahead::default(),
            fill_cache: true,
        }
    }

    /// An iterator that leaves the block cache as it is (for compactions and checks).
    pub(crate) fn iter_uncached(self: &Arc<Self>) -> TableIter {
        TableIter {
            fill_cache: false,
            ..self.iter()
        }
    }

    /// Memory the table keeps outside the cache: its index and filter.
    pub(crate) fn pinned_memory(&self) -> usize {
        self.index.memory() + self.filter.as_ref().map_or(0, Filter::size)
    }

    /// Reads each data block the index names, on its own, so that one damaged block does
    /// not hide the next (for the verifier, `verify.rs`): `on_block` gets the block's offset
    /// and the checked block or its error, and stops the walk by returning an error.
    pub(super) fn for_each_block(
        &self,
        mut on_block: impl FnMut(u64, Result<Arc<Block>>) -> Result<()>,
    ) -> Result<()> {
        for &handle in self.index.handles() {
            on_block(handle.offset, self.read_block(handle, None, false))?;
        }
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.source.path
    }

    /// The file's size, as the open found it.
    pub(crate) fn file_size(&self) -> u64 {
        self.source.file_size
    }
}

/// The table's file, with what is needed to read checked blocks from it.
struct Source {
    file: Arc<dyn RandomAccessFile>,
    path: PathBuf,
    file_size: u64,
}

impl Source {
    /// Checks that `handle` lies inside the file, before any allocation is sized by it.
    fn check_handle(&self, handle: BlockHandle) -> Result<usize> {
        let end = handle
            .offset
            .checked_add(handle.size)
            .and_then(|e| e.checked_add(BLOCK_TRAILER_LEN as u64));
        match end {
            Some(end) if end <= self.file_size - FOOTER_LEN as u64 => Ok(handle.size as usize),
            _ => Err(Error::corruption(
                &self.path,
                handle.offset,
                format!(
                    "block handle (size {}) runs past the end of the file",
                    handle.size
                ),
            )),
        }
    }

    /// Verifies a block's trailer and returns its contents. `raw` is the block as read:
    /// its contents, then its trailer.
    fn verify(&self, handle: BlockHandle, mut raw: Vec<u8>) -> Result<Vec<u8>> {
        let size = handle.size as usize;
        let (contents, trailer) = raw
            .split_at_checked(size)
            .and_then(|(contents, rest)| Some((contents, rest.first_chunk()?)))
            .ok_or_else(|| {
                Error::corruption(&self.path, handle.offset, "block shorter than its handle")
            })?;
        if block_trailer(contents) != *trailer {
            let reason = match trailer[0] {
                NO_COMPRESSION => "block checksum mismatch".to_string(),
                other => format!("unknown compression type {other}"),
            };
            return Err(Error::corruption(&self.path, handle.offset, reason));
        }
        raw.truncate(size);
        Ok(raw)
    }

    fn read_contents(&self, handle: BlockHandle) -> Result<Vec<u8>> {
        let size = self.check_handle(handle)?;
        let mut raw = vec![0u8; size + BLOCK_TRAILER_LEN];
        self.file
            .read_exact_at(&mut raw, handle.offset)
            .ctx("read block of", &self.path)?;
        self.verify(handle, raw)
    }
}

/// A buffer of file bytes read ahead of a sequential scan. Its window doubles with each
/// consecutive miss up to [`MAX_READAHEAD`] and resets on a seek.
#[derive(Default)]
struct Readahead {
    start: u64,
    buf: Vec<u8>,
    window: usize,
}

impl Readahead {
    fn read(&mut self, table: &Source, handle: BlockHandle) -> Result<Vec<u8>> {
        let size = table.check_handle(handle)?;
        let need = size + BLOCK_TRAILER_LEN;
        let in_buffer = handle.offset >= self.start
            && handle.offset + need as u64 <= self.start + self.buf.len() as u64;
        if !in_buffer {
            self.window = (self.window * 2).clamp(need, MAX_READAHEAD.max(need));
            let data_end = table.file_size - FOOTER_LEN as u64;
            let len = (self.window as u64)
                .min(data_end - handle.offset)
                .max(need as u64) as usize;
            self.buf.resize(len, 0);
            table
                .file
                .read_exact_at(&mut self.buf, handle.offset)
                .ctx("read block of", &table.path)?;
            self.start = handle.offset;
        }
        let at = (handle.offset - self.start) as usize;
        let raw = self.buf.get(at..at + need).ok_or_else(|| {
            Error::corruption(
                &table.path,
                handle.offset,
                "block outside the read-ahead buffer",
            )
        })?;
        table.verify(handle, raw.to_vec())
    }

    fn reset(&mut self) {
        self.window = 0;
    }
}

/// Iterates a table's entries: an index position picks data blocks, a block cursor walks them.
pub(crate) struct TableIter {
    table: Arc<Table>,
    /// The data block `data` walks, as an index position (`index.len()` past the end).
    block: usize,
    data: Option<BlockIter>,
    data_offset: u64,
    readahead: Readahead,
    fill_cache: bool,
}

impl TableIter {
    /// Loads block `i` (nothing past the last block).
    fn load_block(&mut self, i: usize) -> Result<()> {
        self.block = i;
        let Some(handle) = self.table.index.handle(i) else {
            self.data = None;
            return Ok(());
        };
        let block = self
            .table
            .read_block(handle, Some(&mut self.readahead), self.fill_cache)?;
        self.data = Some(BlockIter::new(block));
        self.data_offset = handle.offset;
        Ok(())
    }

    /// Moves forward past exhausted blocks.
    fn skip_empty_blocks(&mut self) -> Result<()> {
        while self.data.as_ref().is_some_and(|d| !d.valid()) {
            self.load_block(self.block + 1)?;
            let offset = self.data_offset;
            if let Some(d) = &mut self.data {
                d.seek_to_first().map_err(self.table.block_error(offset))?;
            }
        }
        Ok(())
    }
}

impl InternalIterator for TableIter {
    fn valid(&self) -> bool {
        self.data.as_ref().is_some_and(BlockIter::valid)
    }

    fn seek_to_first(&mut self) -> Result<()> {
        self.readahead.reset();
        self.load_block(0)?;
        let offset = self.data_offset;
        if let Some(d) = &mut self.data {
            d.seek_to_first().map_err(self.table.block_error(offset))?;
        }
        self.skip_empty_blocks()
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.readahead.reset();
        self.load_block(self.table.index.find(target))?;
        let offset = self.data_offset;
        if let Some(d) = &mut self.data {
            d.seek(target).map_err(self.table.block_error(offset))?;
        }
        self.skip_empty_blocks()
    }

    fn next(&mut self) -> Result<()> {
        let offset = self.data_offset;
        if let Some(d) = &mut self.data {
            d.next().map_err(self.table.block_error(offset))?;
        }
        self.skip_empty_blocks()
    }

    fn key(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], BlockIter::key)
    }

    fn value(&self) -> &[u8] {
        self.data.as_ref().map_or(&[], BlockIter::value)
    }
}
