//! The shared cache of decoded data blocks, keyed by (table number, block offset) and bounded
//! in bytes. It is quick_cache's sharded S3-FIFO cache: concurrent readers rarely contend and
//! one scan cannot flush the blocks that random reads keep hot.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::Block;

#[derive(Clone)]
struct BlockWeight;

impl Weighter<(u64, u64), Arc<Block>> for BlockWeight {
    fn weight(&self, _key: &(u64, u64), block: &Arc<Block>) -> u64 {
        // Count the bookkeeping too, so many tiny blocks cannot overrun the budget.
        block.size() as u64 + 64
    }
}

pub(crate) struct BlockCache {
    cache: Option<Cache<(u64, u64), Arc<Block>, BlockWeight>>,
}

impl BlockCache {
    /// A cache of at most `capacity` bytes; 0 disables caching.
    pub(crate) fn new(capacity: usize) -> Self {
        let cache = (capacity > 0).then(|| {
            let items = (capacity / 4096).max(16);
            Cache::with_weighter(items, capacity as u64, BlockWeight)
        });
        BlockCache { cache }
    }

    pub(crate) fn get(&self, table: u64, offset: u64) -> Option<Arc<Block>> {
        self.cache.as_ref()?.get(&(table, offset))
    }

    pub(crate) fn insert(&self, table: u64, offset: u64, block: Arc<Block>) {
        if let Some(cache) = &self.cache {
            cache.insert((table, offset), block);
        }
    }

    pub(crate) fn hits(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.hits())
    }

    pub(crate) fn misses(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.misses())
    }

    pub(crate) fn usage(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.weight())
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.cache.as_ref().map_or(0, |c| c.capacity())
    }
}
