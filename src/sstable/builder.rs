//! Writes a table from entries in internal-key order (docs/FORMAT.md,
//! "Tables (SSTables)"):
//!
//! ```text
//! table := data_block* filter_block properties_block index_block footer
//! ```
//! Each block is followed by its trailer (compression byte, CRC32). The index maps a
//! separator key at or after each data block's last key to the block's handle.

use std::path::{Path, PathBuf};

use super::block_builder::BlockBuilder;
use super::filter::FilterBuilder;
use super::footer::{
    BLOCK_TRAILER_LEN, BlockHandle, FORMAT_VERSION, Footer, Properties, block_trailer,
};
use crate::bloom::key_hash;
use crate::error::{IoContext, Result};
use crate::fs::{FileSystem, WritableFile};
use crate::key::{self, Kind, MAX_SEQ};

/// Output is gathered and written in chunks of this size.
const WRITE_BUFFER: usize = 256 << 10;

/// What a finished table holds: what the manifest records about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableSummary {
    pub file_size: u64,
    pub smallest: Vec<u8>,
    pub largest: Vec<u8>,
    pub properties: Properties,
}

pub(crate) struct TableOptions {
    pub block_size: usize,
    pub restart_interval: usize,
    pub bloom_bits_per_key: u32,
}

pub(crate) struct TableBuilder {
    out: Output,
    block_size: usize,
    data: BlockBuilder,
    index: BlockBuilder,
    filter: Option<FilterBuilder>,
    /// The handle of the last finished data block, waiting for the next key so that its
    /// index entry can be a short separator.
    pending_handle: Option<BlockHandle>,
    last_hash_key: Vec<u8>,
    smallest: Vec<u8>,
    props: Properties,
}

impl TableBuilder {
    pub(crate) fn create(fs: &dyn FileSystem, path: &Path, opts: &TableOptions) -> Result<Self> {
        let file = fs.create(path).ctx("create table", path)?;
        Ok(TableBuilder {
            out: Output {
                file,
                path: path.to_path_buf(),
                buf: Vec::with_capacity(WRITE_BUFFER + opts.block_size * 2),
                offset: 0,
            },
            block_size: opts.block_size,
            data: BlockBuilder::new(opts.restart_interval),
            index: BlockBuilder::new(1),
            filter: (opts.bloom_bits_per_key > 0)
                .then(|| FilterBuilder::new(opts.bloom_bits_per_key)),
            pending_handle: None,
            last_hash_key: Vec::new(),
            smallest: Vec::new(),
            props: Properties {
                smallest_seq: MAX_SEQ,
                ..Properties::default()
            },
        })
    }

    /// Adds an entry; internal keys must come in increasing order.
    pub(crate) fn add(&mut self, ikey: &[u8], value: &[u8]) -> Result<()> {
        let user_key = key::user_key(ikey);
        if let Some(handle) = self.pending_handle.take() {
            let sep = separator(self.data.last_key(), ikey);
            self.add_index_entry(&sep, handle);
            self.data.reset();
        }
        if self.props.entries == 0 {
            self.smallest = ikey.to_vec();
        }
        if let Some(filter) = &mut self.filter
            && (self.props.entries == 0 || user_key != self.last_hash_key.as_slice())
        {
            filter.add(key_hash(user_key));
            self.last_hash_key.clear();
            self.last_hash_key.extend_from_slice(user_key);
        }
        let seq = key::seq_of(ikey);
        self.props.smallest_seq = self.props.smallest_seq.min(seq);
        self.props.largest_seq = self.props.largest_seq.max(seq);
        self.props.entries += 1;
        if key::parse(ikey).is_some_and(|k| k.kind == Kind::Delete) {
            self.props.deletions += 1;
        }
        self.props.raw_key_bytes += ikey.len() as u64;
        self.props.raw_value_bytes += value.len() as u64;
        self.data.add(ikey, value);
        if self.data.size_estimate() >= self.block_size {
            self.finish_data_block()?;
        }
        Ok(())
    }

    fn add_index_entry(&mut self, key: &[u8], handle: BlockHandle) {
        let mut v = Vec::with_capacity(20);
        handle.encode_varint(&mut v);
        self.index.add(key, &v);
    }

    fn finish_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        self.pending_handle = Some(self.out.write_block(self.data.finish()));
        self.props.data_blocks += 1;
        // The block's last key stays in `data` until the next key arrives; `reset` then.
        if self.out.buf.len() >= WRITE_BUFFER {
            self.out.flush()?;
        }
        Ok(())
    }

    /// The file size so far, to decide when to start a new output table.
    pub(crate) fn file_size(&self) -> u64 {
        self.out.offset + self.data.size_estimate() as u64
    }

    pub(crate) fn entries(&self) -> u64 {
        self.props.entries
    }

    /// Writes the remaining blocks and the footer and syncs the file. The caller syncs the
    /// directory before the table is named in the manifest.
    pub(crate) fn finish(mut self) -> Result<TableSummary> {
        let largest = if self.pending_handle.is_some() {
            self.data.last_key().to_vec()
        } else {
            self.finish_data_block()?;
            self.data.last_key().to_vec()
        };
        if let Some(handle) = self.pending_handle.take() {
            let sep = successor(&largest);
            self.add_index_entry(&sep, handle);
        }
        let filter = match self.filter.take() {
            Some(f) => self.out.write_block(&f.finish()),
            None => BlockHandle::default(),
        };
        let properties = self.out.write_block(&self.props.encode());
        let index = self.out.write_block(self.index.finish());
        let footer = Footer {
            index,
            filter,
            properties,
            format_version: FORMAT_VERSION,
        };
        self.out.buf.extend_from_slice(&footer.encode());
        self.out.offset += super::footer::FOOTER_LEN as u64;
        self.out.flush()?;
        self.out
            .file
            .sync_data()
            .ctx("sync table", &self.out.path)?;
        Ok(TableSummary {
            file_size: self.out.offset,
            smallest: std::mem::take(&mut self.smallest),
            largest,
            properties: self.props,
        })
    }
}

/// The table file as it is written: finished blocks gather in `buf` and go to the file in
/// chunks of [`WRITE_BUFFER`].
struct Output {
    file: Box<dyn WritableFile>,
    path: PathBuf,
    buf: Vec<u8>,
    /// Bytes written so far, the buffered ones included: where the next block starts.
    offset: u64,
}

impl Output {
    /// Appends a block and its trailer, returning where the block is.
    fn write_block(&mut self, contents: &[u8]) -> BlockHandle {
        let handle = BlockHandle {
            offset: self.offset,
            size: contents.len() as u64,
        };
        self.buf.extend_from_slice(contents);
        self.buf.extend_from_slice(&block_trailer(contents));
        self.offset += (contents.len() + BLOCK_TRAILER_LEN) as u64;
        handle
    }

    fn flush(&mut self) -> Result<()> {
        self.file.append(&self.buf).ctx("write table", &self.path)?;
        self.buf.clear();
        Ok(())
    }
}

/// An index key `k` with `last <= k < next` (internal-key order), as short as possible.
fn separator(last: &[u8], next: &[u8]) -> Vec<u8> {
    let (lu, nu) = (key::user_key(last), key::user_key(next));
    if lu < nu {
        let sep = key::shortest_separator(lu, nu);
        if sep.as_slice() > lu {
            // A user key after `lu`: its smallest internal key is (sep, MAX_SEQ).
            return key::internal_key(&sep, MAX_SEQ, key::KIND_FOR_SEEK);
        }
    }
    last.to_vec()
}

/// An index key at or after `last`, as short as possible.
fn successor(last: &[u8]) -> Vec<u8> {
    let lu = key::user_key(last);
    let succ = key::short_successor(lu);
    if succ.as_slice() > lu {
        return key::internal_key(&succ, MAX_SEQ, key::KIND_FOR_SEEK);
    }
    last.to_vec()
}
