//! A skiplist of internal keys in the manner of LevelDB's: one writer at a time (the caller
//! holds the memtable's writer lock), any number of readers without locks.
//!
//! Invariants that make lock-free reads safe:
//! - a node is fully written (key, value, its own next pointers) before it is published by a
//!   release store into its predecessor's next pointer, and readers load with acquire;
//! - nodes are never removed or freed until the whole list is dropped;
//! - keys are unique (every entry has its own sequence number), so insert never replaces.

use std::cmp::Ordering;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering as AtomicOrdering};

use super::arena::Arena;
use crate::key;

pub(super) const MAX_HEIGHT: usize = 12;
const BRANCHING: u32 = 4;

/// A node's fixed header; its tower of `height` next pointers follows `next[0]` in memory,
/// then the internal key, then the value.
#[repr(C)]
pub(super) struct Node {
    key_len: u32,
    value_len: u32,
    height: u32,
    _pad: u32,
    next: [AtomicPtr<Node>; 1],
}

const HEADER: usize = std::mem::size_of::<Node>() - std::mem::size_of::<AtomicPtr<Node>>();

impl Node {
    fn size(height: usize, key_len: usize, value_len: usize) -> usize {
        HEADER + height * std::mem::size_of::<AtomicPtr<Node>>() + key_len + value_len
    }

    /// # Safety
    /// `level` must be below the node's height.
    #[inline]
    unsafe fn next_slot(&self, level: usize) -> &AtomicPtr<Node> {
        debug_assert!(level < self.height as usize);
        // SAFETY: the tower holds `height` pointers laid out contiguously from `next`.
        unsafe { &*self.next.as_ptr().add(level) }
    }

    /// The node after this one at `level`, or null.
    ///
    /// # Safety
    /// `level` must be below the node's height: the tower has no slot above it, and the
    /// bytes there are the node's key. Level 0 is always valid (every node is at least one
    /// high); a search that only descends, and only steps to nodes it reached at the
    /// current level, stays valid too. Checked in debug builds only: this is the inner loop
    /// of every memtable search.
    #[inline]
    pub(super) unsafe fn next(&self, level: usize) -> *mut Node {
        // SAFETY: the caller keeps `level` below the height, as `next_slot` requires.
        unsafe { self.next_slot(level) }.load(AtomicOrdering::Acquire)
    }

    #[inline]
    fn data(&self) -> *const u8 {
        // SAFETY: the key and value follow the tower inside the same allocation.
        unsafe { (self as *const Node as *const u8).add(Node::size(self.height as usize, 0, 0)) }
    }

    #[inline]
    pub(super) fn key(&self) -> &[u8] {
        // SAFETY: `key_len` bytes were written after the tower before publication.
        unsafe { std::slice::from_raw_parts(self.data(), self.key_len as usize) }
    }

    #[inline]
    pub(super) fn value(&self) -> &[u8] {
        // SAFETY: `value_len` bytes were written after the key before publication.
        unsafe {
            std::slice::from_raw_parts(
                self.data().add(self.key_len as usize),
                self.value_len as usize,
            )
        }
    }
}

/// The writer's state: only touched by the thread holding the memtable's writer lock.
pub(super) struct WriterState {
    arena: Arena,
    rng: u64,
}

impl WriterState {
    pub(super) fn allocated(&self) -> usize {
        self.arena.allocated()
    }

    pub(super) fn used(&self) -> usize {
        self.arena.used()
    }

    fn random_height(&mut self) -> usize {
        let mut height = 1;
        while height < MAX_HEIGHT {
            // xorshift64: a cheap generator is all a skiplist needs.
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            if !(self.rng as u32).is_multiple_of(BRANCHING) {
                break;
            }
            height += 1;
        }
        height
    }
}

pub(super) struct SkipList {
    head: *mut Node,
    max_height: AtomicUsize,
}

// SAFETY: see the module invariants. Nodes are immutable after publication except for their
// atomic next pointers; the arena that owns them is only mutated by the single writer.
unsafe impl Send for SkipList {}
unsafe impl Sync for SkipList {}

impl SkipList {
    pub(super) fn new(chunk_size: usize) -> (SkipList, WriterState) {
        let mut state = WriterState {
            arena: Arena::new(chunk_size),
            rng: 0x9e37_79b9_7f4a_7c15,
        };
        let head = Self::alloc_node(&mut state.arena, MAX_HEIGHT, 0, 0);
        (
            SkipList {
                head,
                max_height: AtomicUsize::new(1),
            },
            state,
        )
    }

    fn alloc_node(arena: &mut Arena, height: usize, key_len: usize, value_len: usize) -> *mut Node {
        let p = arena
            .alloc(Node::size(height, key_len, value_len))
            .cast::<Node>();
        // SAFETY: the arena returned zeroed, aligned memory of the right size; zeroed next
        // pointers are null.
        unsafe {
            (*p).key_len = key_len as u32;
            (*p).value_len = value_len as u32;
            (*p).height = height as u32;
        }
        p
    }

    pub(super) fn head(&self) -> &Node {
        // SAFETY: the head lives as long as the list.
        unsafe { &*self.head }
    }

    /// Inserts the entry whose internal key is `user_key` + `trailer`.
    ///
    /// The caller must hold the memtable's writer lock, which is what `state` stands for.
    pub(super) fn insert(
        &self,
        state: &mut WriterState,
        user_key: &[u8],
        trailer: u64,
        value: &[u8],
    ) {
        let key_len = user_key.len() + key::TRAILER_LEN;
        let mut ikey_buf = [0u8; 64];
        let mut ikey_vec = Vec::new();
        let ikey: &[u8] = if key_len <= ikey_buf.len() {
            ikey_buf[..user_key.len()].copy_from_slice(user_key);
            ikey_buf[user_key.len()..key_len].copy_from_slice(&trailer.to_le_bytes());
            &ikey_buf[..key_len]
        } else {
            ikey_vec.extend_from_slice(user_key);
            ikey_vec.extend_from_slice(&trailer.to_le_bytes());
            &ikey_vec
        };

        let mut prev = [self.head; MAX_HEIGHT];
        self.find_greater_or_equal(ikey, Some(&mut prev));

        let height = state.random_height();
        let max_height = self.max_height.load(AtomicOrdering::Relaxed);
        if height > max_height {
            // `prev` already holds the head for the new levels. Readers that see the new
            // height early find null pointers from the head there, which is harmless.
            self.max_height.store(height, AtomicOrdering::Relaxed);
        }

        let node = Self::alloc_node(&mut state.arena, height, key_len, value.len());
        // SAFETY: the node is freshly allocated with room for its tower, key and value, and
        // is not yet reachable by any reader. Each `prev[level]` is a live node at least
        // `level + 1` high (the head is MAX_HEIGHT high).
        unsafe {
            let data = (*node).data() as *mut u8;
            ptr::copy_nonoverlapping(ikey.as_ptr(), data, key_len);
            ptr::copy_nonoverlapping(value.as_ptr(), data.add(key_len), value.len());
            for (level, &p) in prev.iter().enumerate().take(height) {
                let succ = (*p).next(level);
                (*node)
                    .next_slot(level)
                    .store(succ, AtomicOrdering::Relaxed);
                // Publishing: the release store makes the node's contents visible first.
                (*p).next_slot(level).store(node, AtomicOrdering::Release);
            }
        }
    }

    /// The first node whose key is `>= target`, or null. Fills `prev` with the last node
    /// before that position at each level when asked (for inserts).
    pub(super) fn find_greater_or_equal(
        &self,
        target: &[u8],
        mut prev: Option<&mut [*mut Node; MAX_HEIGHT]>,
    ) -> *mut Node {
        let mut x = self.head;
        let mut level = self.max_height.load(AtomicOrdering::Relaxed) - 1;
        loop {
            // SAFETY: `x` is the head or a published node, and `level` is below its height
            // (we only descend, and only step to nodes reached at this level).
            let next = unsafe { (*x).next(level) };
            let next_is_before = !next.is_null()
                // SAFETY: a non-null next pointer is a published node.
                && key::compare(unsafe { (*next).key() }, target) == Ordering::Less;
            if next_is_before {
                x = next;
            } else {
                if let Some(prev) = prev.as_deref_mut() {
                    prev[level] = x;
                }
                if level == 0 {
                    return next;
                }
                level -= 1;
            }
        }
    }
}
