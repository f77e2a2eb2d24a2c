//! A k-way merge of iterators with a binary min-heap of child indices. Children hold
//! disjoint sequence numbers, so no two children ever hold equal internal keys.

use std::cmp::Ordering;

use super::InternalIterator;
use crate::error::Result;
use crate::key;

pub(crate) struct MergingIter {
    children: Vec<Box<dyn InternalIterator>>,
    /// Indices of the valid children, ordered as a min-heap by current key.
    heap: Vec<usize>,
}

impl MergingIter {
    pub(crate) fn new(children: Vec<Box<dyn InternalIterator>>) -> Self {
        let heap = Vec::with_capacity(children.len());
        MergingIter { children, heap }
    }

    fn less(&self, a: usize, b: usize) -> bool {
        key::compare(self.children[a].key(), self.children[b].key()) == Ordering::Less
    }

    fn rebuild_heap(&mut self) {
        self.heap.clear();
        self.heap
            .extend((0..self.children.len()).filter(|&i| self.children[i].valid()));
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let left = 2 * i + 1;
            if left >= n {
                return;
            }
            let right = left + 1;
            let mut smallest = left;
            if right < n && self.less(self.heap[right], self.heap[left]) {
                smallest = right;
            }
            if !self.less(self.heap[smallest], self.heap[i]) {
                return;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }
}

impl InternalIterator for MergingIter {
    fn valid(&self) -> bool {
        !self.heap.is_empty()
    }

    fn seek_to_first(&mut self) -> Result<()> {
        for child in &mut self.children {
            child.seek_to_first()?;
        }
        self.rebuild_heap();
        Ok(())
    }

    fn seek(&mut self, target: &[u8]) -> Result<()> {
        for child in &mut self.children {
            child.seek(target)?;
        }
        self.rebuild_heap();
        Ok(())
    }

    fn next(&mut self) -> Result<()> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        if let Err(e) = self.children[top].next() {
            self.heap.clear();
            return Err(e);
        }
        if !self.children[top].valid() {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        self.sift_down(0);
        Ok(())
    }

    fn key(&self) -> &[u8] {
        self.children[self.heap[0]].key()
    }

    fn value(&self) -> &[u8] {
        self.children[self.heap[0]].value()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An in-memory iterator over sorted internal keys, for tests.
    pub(crate) struct VecIter {
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        pos: usize,
    }

    impl VecIter {
        pub(crate) fn new(mut entries: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
            entries.sort_by(|a, b| key::compare(&a.0, &b.0));
            let pos = entries.len();
            VecIter { entries, pos }
        }
    }

    impl InternalIterator for VecIter {
        fn valid(&self) -> bool {
            self.pos < self.entries.len()
        }
        fn seek_to_first(&mut self) -> Result<()> {
            self.pos = 0;
            Ok(())
        }
        fn seek(&mut self, target: &[u8]) -> Result<()> {
            self.pos = self
                .entries
                .partition_point(|(k, _)| key::compare(k, target) == Ordering::Less);
            Ok(())
        }
        fn next(&mut self) -> Result<()> {
            self.pos += 1;
            Ok(())
        }
        fn key(&self) -> &[u8] {
            &self.entries[self.pos].0
        }
        fn value(&self) -> &[u8] {
            &self.entries[self.pos].1
        }
    }

    #[test]
    fn merges_children_in_internal_key_order() {
        use crate::key::{Kind, internal_key};
        let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
        let mut all = Vec::new();
        for c in 0..5u64 {
            let entries: Vec<_> = (0..50u64)
                .map(|i| {
                    let k = internal_key(
                        format!("k{:03}", (i * 7 + c * 3) % 90).as_bytes(),
                        c * 100 + i,
                        Kind::Put,
                    );
                    (k, vec![c as u8])
                })
                .collect();
            all.extend(entries.clone());
            children.push(Box::new(VecIter::new(entries)));
        }
        all.sort_by(|a, b| key::compare(&a.0, &b.0));
        let mut m = MergingIter::new(children);
        m.seek_to_first().unwrap();
        let mut got = Vec::new();
        while m.valid() {
            got.push((m.key().to_vec(), m.value().to_vec()));
            m.next().unwrap();
        }
        assert_eq!(got, all);
        let target = internal_key(b"k045", u64::MAX >> 8, Kind::Put);
        m.seek(&target).unwrap();
        let first = all
            .iter()
            .find(|(k, _)| key::compare(k, &target) != Ordering::Less)
            .unwrap();
        assert_eq!(m.key(), first.0.as_slice());
    }
}
