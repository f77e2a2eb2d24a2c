//! The user-facing iterator: the newest version of each key visible at the iterator's
//! snapshot, without tombstones, within optional bounds. It holds the memtables and tables
//! it reads, so the view stays consistent while writes, flushes and compactions go on.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::iter::{InternalIterator, MergingIter};
use crate::key::{self, Kind, SeqNum};
use crate::version::{ReadHealth, Version};

/// A forward iterator over `(key, value)` pairs in key order.
///
/// Use it as a cursor (`valid`, `key`, `value`, `advance`, `seek`) to avoid copying, or as an
/// [`Iterator`] of owned pairs. The iterator sees one consistent snapshot taken when it was
/// created.
pub struct DbIterator {
    inner: MergingIter,
    /// Keeps every table of the iterator's version on disk (and counted as held) until the
    /// iterator is dropped, even after compaction replaced them.
    _version: Arc<Version>,
    seq: SeqNum,
    lower: Option<Vec<u8>>,
    upper: Option<Vec<u8>>,
    valid: bool,
    /// The user key of the entry last returned (or hidden by a tombstone), so older
    /// versions of it are skipped.
    skip_key: Vec<u8>,
    /// Set once the [`Iterator`] impl has handed out its first item.
    started: bool,
    failed: bool,
    /// Where a failed read of a table is recorded.
    health: Arc<ReadHealth>,
}

impl DbIterator {
    pub(crate) fn new(
        inner: MergingIter,
        version: Arc<Version>,
        seq: SeqNum,
        lower: Option<Vec<u8>>,
        upper: Option<Vec<u8>>,
        health: Arc<ReadHealth>,
    ) -> Self {
        DbIterator {
            inner,
            _version: version,
            seq,
            lower,
            upper,
            valid: false,
            skip_key: Vec::new(),
            started: false,
            failed: false,
            health,
        }
    }

    /// Whether the cursor is on an entry.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key; only meaningful while [`Self::valid`].
    pub fn key(&self) -> &[u8] {
        if self.valid {
            key::user_key(self.inner.key())
        } else {
            &[]
        }
    }

    /// The current value; only meaningful while [`Self::valid`].
    pub fn value(&self) -> &[u8] {
        if self.valid { self.inner.value() } else { &[] }
    }

    /// Positions on the first key `>= key` (and at or after the lower bound).
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        self.started = false;
        let target = match &self.lower {
            Some(lower) if lower.as_slice() > key => lower.clone(),
            _ => key.to_vec(),
        };
        self.guard(|it| {
            it.inner.seek(&key::lookup_key(&target, it.seq))?;
            it.find_next_user_entry(false)
        })
    }

    /// Positions on the first key (at or after the lower bound).
    pub fn seek_to_first(&mut self) -> Result<()> {
        match self.lower.clone() {
            Some(lower) => self.seek(&lower),
            None => {
                self.started = false;
                self.guard(|it| {
                    it.inner.seek_to_first()?;
                    it.find_next_user_entry(false)
                })
            }
        }
    }

    /// Moves to the next key.
    pub fn advance(&mut self) -> Result<()> {
        if !self.valid {
            return Ok(());
        }
        self.skip_key.clear();
        self.skip_key
            .extend_from_slice(key::user_key(self.inner.key()));
        self.guard(|it| {
            it.inner.next()?;
            it.find_next_user_entry(true)
        })
    }

    fn guard(&mut self, f: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        // `Ok(()) => Ok(())` rather than returning the result it got: that result (the size
        // of an `Error`) was built on the stack by narrow stores and copied out with wide
        // loads on every step of a scan, a store-forwarding stall that made a seek with 100
        // nexts 10-15% slower.
        match f(self) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed(e)),
        }
    }

    #[cold]
    fn failed(&mut self, e: Error) -> Error {
        self.valid = false;
        self.health.failed_somewhere(&e);
        e
    }

    /// Moves forward to the next entry that is visible, not hidden by a newer version or
    /// a tombstone, and inside the upper bound.
    fn find_next_user_entry(&mut self, mut skipping: bool) -> Result<()> {
        self.valid = false;
        while self.inner.valid() {
            let ikey = self.inner.key();
            let parsed = key::parse(ikey).ok_or_else(|| Error::Corruption {
                path: Default::default(),
                offset: 0,
                reason: format!("malformed internal key {ikey:?} during a scan"),
            })?;
            if let Some(upper) = &self.upper
                && parsed.user_key >= upper.as_slice()
            {
                return Ok(());
            }
            if parsed.seq <= self.seq {
                let hidden = skipping && parsed.user_key == self.skip_key.as_slice();
                if !hidden {
                    match parsed.kind {
                        Kind::Put => {
                            self.valid = true;
                            return Ok(());
                        }
                        Kind::Delete => {
                            self.skip_key.clear();
                            self.skip_key.extend_from_slice(parsed.user_key);
                            skipping = true;
                        }
                    }
                }
            }
            self.inner.next()?;
        }
        Ok(())
    }
}

impl Iterator for DbIterator {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.started
            && let Err(e) = self.advance()
        {
            self.failed = true;
            return Some(Err(e));
        }
        self.started = true;
        self.valid
            .then(|| Ok((self.key().to_vec(), self.value().to_vec())))
    }
}
