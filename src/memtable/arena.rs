//! A bump allocator for skiplist nodes. Nodes are never freed one by one: the whole arena
//! goes when its memtable is dropped, which is what makes lock-free readers safe (a node a
//! reader holds a pointer to lives as long as the memtable does).

/// Allocations are 8-byte aligned so that node towers of `AtomicPtr`s are aligned.
const ALIGN: usize = 8;

pub(super) struct Arena {
    /// Chunks are `u64` slices so their memory is 8-byte aligned. A chunk never moves once
    /// allocated (growing `chunks` moves only the boxes), so pointers into it stay valid.
    chunks: Vec<Box<[u64]>>,
    next: *mut u8,
    remaining: usize,
    chunk_size: usize,
    allocated: usize,
    used: usize,
}

// SAFETY: `next` points into a chunk owned by this arena; the arena is only used behind the
// memtable's writer mutex.
unsafe impl Send for Arena {}

impl Arena {
    pub(super) fn new(chunk_size: usize) -> Self {
        Arena {
            chunks: Vec::new(),
            next: std::ptr::null_mut(),
            remaining: 0,
            chunk_size: chunk_size.next_multiple_of(ALIGN),
            allocated: 0,
            used: 0,
        }
    }

    /// Returns `size` bytes of 8-byte-aligned, zeroed memory that lives as long as the arena.
    pub(super) fn alloc(&mut self, size: usize) -> *mut u8 {
        let size = size.next_multiple_of(ALIGN);
        self.used += size;
        if size > self.remaining {
            if size > self.chunk_size / 4 {
                // A large node gets a chunk of its own so the current chunk's tail is not wasted.
                return self.new_chunk(size);
            }
            self.next = self.new_chunk(self.chunk_size);
            self.remaining = self.chunk_size;
        }
        let p = self.next;
        // SAFETY: `size <= remaining`, so `p + size` stays within (or one past) the chunk.
        self.next = unsafe { p.add(size) };
        self.remaining -= size;
        p
    }

    fn new_chunk(&mut self, bytes: usize) -> *mut u8 {
        let mut chunk = vec![0u64; bytes / ALIGN].into_boxed_slice();
        let p = chunk.as_mut_ptr().cast::<u8>();
        self.chunks.push(chunk);
        self.allocated += bytes;
        p
    }

    /// Bytes reserved from the system, a bound on the memtable's memory.
    pub(super) fn allocated(&self) -> usize {
        self.allocated
    }

    /// Bytes handed out: what the memtable's contents take, compared with the flush
    /// threshold (so that small thresholds work whatever the chunk size).
    pub(super) fn used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_aligned_disjoint_and_counted() {
        let mut arena = Arena::new(1024);
        let a = arena.alloc(3) as usize;
        let b = arena.alloc(100) as usize;
        assert_eq!(a % ALIGN, 0);
        assert_eq!(b % ALIGN, 0);
        assert!(b >= a + 8);
        let big = arena.alloc(4000) as usize;
        assert_eq!(big % ALIGN, 0);
        assert_eq!(arena.allocated(), 1024 + 4000);
        assert_eq!(arena.used(), 8 + 104 + 4000);
    }
}
