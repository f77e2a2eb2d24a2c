//! The memtable: recent writes, sorted by internal key, in memory. The active memtable takes
//! writes; when full it becomes immutable and a background thread flushes it to an L0 table.
//! Readers never wait for the writer.

mod arena;
mod bloom;
mod skiplist;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::batch::{Op, Payload};
use crate::error::Result;
use crate::iter::InternalIterator;
#[cfg(test)]
use crate::key::lookup_key;
use crate::key::{self, Kind, SeqNum};
use bloom::MemBloom;
use skiplist::{Node, SkipList, WriterState};

/// What a memtable knows about a key at a snapshot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Found(&'a [u8]),
    Deleted,
    Absent,
}

pub(crate) struct Memtable {
    list: SkipList,
    bloom: MemBloom,
    writer: Mutex<WriterState>,
    /// Bytes the entries take in the arena; what the flush threshold is compared with.
    used: AtomicUsize,
    /// Bytes the arena has reserved from the system.
    allocated: AtomicUsize,
    entries: AtomicU64,
    /// The WAL that holds this memtable's writes; obsolete once the memtable is flushed.
    wal_number: u64,
}

impl Memtable {
    pub(crate) fn new(wal_number: u64, write_buffer_size: usize) -> Memtable {
        // Chunks of 1/16 of the buffer bound the waste of the last chunk; small memtables
        // (tests) still get reasonably sized chunks.
        let chunk = (write_buffer_size / 16).clamp(16 << 10, 4 << 20);
        let (list, state) = SkipList::new(chunk);
        // An entry takes at least about 64 bytes of arena (node, tower, key, value).
        let bloom = MemBloom::new(write_buffer_size / 64);
        Memtable {
            bloom,
            used: AtomicUsize::new(state.used()),
            allocated: AtomicUsize::new(state.allocated()),
            list,
            writer: Mutex::new(state),
            entries: AtomicU64::new(0),
            wal_number,
        }
    }

    pub(crate) fn wal_number(&self) -> u64 {
        self.wal_number
    }

    /// Inserts a batch's operations with sequence numbers from `first_seq`.
    pub(crate) fn apply<'a>(&self, first_seq: SeqNum, ops: impl Iterator<Item = Op<'a>>) {
        let mut state = self.writer.lock();
        let mut seq = first_seq;
        for (kind, user_key, value) in ops {
            // Under the writer lock, as `MemBloom::add` requires.
            self.bloom.add(crate::bloom::key_hash(user_key));
            self.list
                .insert(&mut state, user_key, key::pack_trailer(seq, kind), value);
            seq += 1;
        }
        self.entries.fetch_add(seq - first_seq, Ordering::Relaxed);
        self.used.store(state.used(), Ordering::Relaxed);
        self.allocated.store(state.allocated(), Ordering::Relaxed);
    }

    /// Inserts a batch read back from a WAL, whose operations `wal::read` has checked.
    pub(crate) fn apply_replayed(&self, batch: &Payload<'_>) {
        self.apply(batch.first_seq, batch.ops().filter_map(|op| op.ok()));
    }

    /// The newest version of the user key of `lookup` (see [`key::lookup_key`]) at or
    /// below its sequence number; `hash` is the user key's [`crate::bloom::key_hash`].
    pub(crate) fn get(&self, lookup: &[u8], hash: u64) -> Lookup<'_> {
        if !self.bloom.may_contain(hash) {
            return Lookup::Absent;
        }
        let user_key = key::user_key(lookup);
        let node = self.list.find_greater_or_equal(lookup, None);
        if node.is_null() {
            return Lookup::Absent;
        }
        // SAFETY: a non-null node returned by the list is published and lives as long as
        // `self`.
        let node = unsafe { &*node };
        match key::parse(node.key()) {
            Some(k) if k.user_key == user_key => match k.kind {
                Kind::Put => Lookup::Found(node.value()),
                Kind::Delete => Lookup::Deleted,
            },
            _ => Lookup::Absent,
        }
    }

    /// Bytes the entries take: what the flush threshold is compared with.
    pub(crate) fn memory_usage(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Bytes reserved from the system, the bloom filter included.
    pub(crate) fn allocated_memory(&self) -> usize {
        self.allocated.load(Ordering::Relaxed) + self.bloom.memory()
    }

    pub(crate) fn len(&self) -> u64 {
        self.entries.load(Ordering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn iter(self: &Arc<Self>) -> MemtableIter {
        MemtableIter {
            mem: Arc::clone(self),
            node: std::ptr::null(),
        }
    }
}

/// An iterator over a memtable's internal keys; it keeps the memtable alive.
pub(crate) struct MemtableIter {
    mem: Arc<Memtable>,
    /// Null when not positioned on an entry.
    node: *const Node,
}

// SAFETY: the node pointer refers into `mem`, which the iterator keeps alive; nodes are
// immutable once published.
unsafe impl Send for MemtableIter {}

impl MemtableIter {
    fn node(&self) -> &Node {
        debug_assert!(!self.node.is_null());
        // SAFETY: callers check `valid()` first; `mem` keeps the node alive.
        unsafe { &*self.node }
    }
}

impl InternalIterator for MemtableIter {
    fn valid(&self) -> bool {
        !self.node.is_null()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        // SAFETY: level 0 is below every node's height.
        self.node = unsafe { self.mem.list.head().next(0) };
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        self.node = self.mem.list.find_greater_or_equal(target, None);
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        // SAFETY: level 0 is below every node's height.
        self.node = unsafe { self.node().next(0) };
        Ok(())
    }

    fn key(&self) -> &[u8] {
        self.node().key()
    }

    fn value(&self) -> &[u8] {
        self.node().value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn put(m: &Memtable, seq: SeqNum, k: &[u8], v: &[u8]) {
        m.apply(seq, std::iter::once((Kind::Put, k, v)));
    }

    #[test]
    fn get_sees_the_newest_version_at_a_snapshot() {
        let m = Memtable::new(1, 1 << 20);
        put(&m, 1, b"a", b"a1");
        put(&m, 2, b"b", b"b2");
        put(&m, 3, b"a", b"a3");
        m.apply(4, std::iter::once((Kind::Delete, &b"b"[..], &b""[..])));
        let cases: [(&[u8], SeqNum, Lookup<'_>); 7] = [
            (b"a", 10, Lookup::Found(b"a3")),
            (b"a", 2, Lookup::Found(b"a1")),
            (b"a", 0, Lookup::Absent),
            (b"b", 4, Lookup::Deleted),
            (b"b", 3, Lookup::Found(b"b2")),
            (b"c", 10, Lookup::Absent),
            (b"", 10, Lookup::Absent),
        ];
        for (key, seq, expected) in cases {
            let got = m.get(&lookup_key(key, seq), crate::bloom::key_hash(key));
            assert_eq!(got, expected, "{key:?} at {seq}");
        }
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn iteration_is_sorted_by_internal_key() {
        let m = Arc::new(Memtable::new(1, 1 << 16));
        let mut model = BTreeMap::new();
        let mut x = 12345u64;
        for seq in 1..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = format!("key{}", (x >> 33) % 1000);
            let v = vec![b'v'; (x % 200) as usize];
            put(&m, seq, k.as_bytes(), &v);
            model.insert(k.into_bytes(), v);
        }
        let mut it = m.iter();
        it.seek_to_first().unwrap();
        let mut prev: Option<Vec<u8>> = None;
        let mut newest = BTreeMap::new();
        while it.valid() {
            if let Some(p) = &prev {
                assert_eq!(key::compare(p, it.key()), std::cmp::Ordering::Less);
            }
            let uk = key::user_key(it.key()).to_vec();
            newest.entry(uk).or_insert_with(|| it.value().to_vec());
            prev = Some(it.key().to_vec());
            it.next().unwrap();
        }
        assert_eq!(newest, model);
        assert!(m.memory_usage() > 5000 * 16);
    }

    #[test]
    fn large_keys_and_values_are_stored_whole() {
        let m = Memtable::new(1, 1 << 16);
        let k = vec![7u8; 70_000];
        let v = vec![9u8; 1 << 20];
        put(&m, 1, &k, &v);
        assert_eq!(
            m.get(&lookup_key(&k, 1), crate::bloom::key_hash(&k)),
            Lookup::Found(&v[..])
        );
    }

    #[test]
    fn readers_run_while_a_writer_inserts() {
        let m = Arc::new(Memtable::new(1, 1 << 20));
        let writer = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for seq in 1..20_000u64 {
                    let k = format!("{:08}", seq * 7919 % 20_000);
                    put(&m, seq, k.as_bytes(), k.as_bytes());
                }
            })
        };
        let reader = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < 19_999 {
                    let mut it = m.iter();
                    it.seek_to_first().unwrap();
                    let mut n = 0;
                    let mut prev: Vec<u8> = Vec::new();
                    while it.valid() {
                        assert_eq!(key::user_key(it.key()), it.value());
                        assert!(prev.is_empty() || prev.as_slice() < it.key());
                        prev = it.key().to_vec();
                        n += 1;
                        it.next().unwrap();
                    }
                    seen = n;
                }
            })
        };
        writer.join().unwrap();
        reader.join().unwrap();
    }
}
