//! The row cache: each cached row's newest version, so that a point read at the head needs no RocksDB
//! seek of the `pk` index (which, once the row's versions are in SST files, walks every level) and no
//! read of its entry.
//!
//! It holds, per row (the `pk` key's version prefix), the newest version RocksDB held when the entry
//! was filled, or that it held none (so an INSERT's duplicate check and its commit-time check of a new
//! key seek once, not twice), and is kept exact by two rules:
//!
//! 1. **A commit invalidates before it publishes.** `commit::write_batch` removes every row it wrote,
//!    after its RocksDB write returned and before the head that includes it is published. So any
//!    reader whose snapshot includes a newer version looks up the row after that version's removal.
//! 2. **A fill never resurrects.** A reader that misses notes its shard's invalidation counter, reads
//!    the newest version in RocksDB (published or not yet: a batch visible in RocksDB is always
//!    published next, since a failed write leaves nothing visible), and inserts it only if no
//!    invalidation of that shard happened in between. A write visible to that read is in what it
//!    filled; one that was not visible invalidates after the read: either before the fill (the
//!    counter moved, nothing is filled) or after it (the fill is removed).
//!
//! A cached version answers a read at snapshot `at` when its tx is at or before `at`: it is the newest
//! version of all, so the newest at or before `at`. An older snapshot (`AS OF`) reads RocksDB. A cached
//! "no version" answers every snapshot.
//! Memory is bounded by weight (key and value bytes plus overhead); eviction only ever makes reads miss.

use super::Version;
use quick_cache::unsync::Cache;
use quick_cache::Weighter;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

const SHARDS: usize = 16;

/// Bytes charged per cached row besides its key and value: the map's slot, the `Version`, the
/// prefix's and entry's allocations.
const OVERHEAD: u64 = 160;

#[derive(Clone)]
struct ByBytes;

impl Weighter<Vec<u8>, Option<Version>> for ByBytes {
    fn weight(&self, prefix: &Vec<u8>, v: &Option<Version>) -> u64 {
        let row = v.as_ref().map_or(0, |v| v.entry.key.len() + v.entry.value.len());
        (prefix.len() + row) as u64 + OVERHEAD
    }
}

struct Shard {
    /// Bumped by every invalidation of a row of this shard.
    invalidations: u64,
    rows: Cache<Vec<u8>, Option<Version>, ByBytes>,
}

pub(crate) struct RowCache {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a lookup found: the newest version at or before the snapshot (None: the row has none), or the
/// shard's invalidation counter to fill with after a read.
pub(crate) enum Lookup {
    Hit(Option<Version>),
    Miss(u64),
    /// The cache is off.
    Off,
}

impl RowCache {
    /// A cache of at most `bytes` (0: off).
    pub(crate) fn new(bytes: u64) -> RowCache {
        let per_shard = bytes / SHARDS as u64;
        let shards = if per_shard == 0 {
            Vec::new()
        } else {
            // Rows are typically a few hundred bytes with the overhead.
            let items = (per_shard / 256).max(16) as usize;
            (0..SHARDS).map(|_| Mutex::new(Shard { invalidations: 0, rows: Cache::with_weighter(items, per_shard, ByBytes) })).collect()
        };
        RowCache { shards, hasher: Default::default(), hits: AtomicU64::new(0), misses: AtomicU64::new(0) }
    }

    fn shard(&self, prefix: &[u8]) -> Option<std::sync::MutexGuard<'_, Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        let i = (self.hasher.hash_one(prefix) % SHARDS as u64) as usize;
        // A panic while holding a shard lock can only come from the allocator; the cache is then
        // still consistent (quick_cache's operations complete or do nothing), so poisoning is ignored.
        Some(self.shards[i].lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The row's newest version if cached and at or before `at`, or that it has none.
    pub(crate) fn get(&self, prefix: &[u8], at: u64) -> Lookup {
        let Some(shard) = self.shard(prefix) else { return Lookup::Off };
        match shard.rows.get(prefix) {
            Some(v) if v.as_ref().is_none_or(|v| v.tx <= at) => {
                self.hits.fetch_add(1, Relaxed);
                Lookup::Hit(v.clone())
            }
            _ => {
                self.misses.fetch_add(1, Relaxed);
                Lookup::Miss(shard.invalidations)
            }
        }
    }

    /// Cache `newest` (None: RocksDB holds no version of the row), read from RocksDB after `get`
    /// answered `Miss(seen)`, unless the shard was invalidated since.
    pub(crate) fn fill(&self, prefix: &[u8], seen: u64, newest: Option<&Version>) {
        let Some(mut shard) = self.shard(prefix) else { return };
        if shard.invalidations == seen && !shard.rows.contains_key(prefix) {
            shard.rows.insert(prefix.to_vec(), newest.cloned());
        }
    }

    /// A commit wrote the row: forget it (before the commit is published).
    pub(crate) fn invalidate(&self, prefix: &[u8]) {
        if let Some(mut shard) = self.shard(prefix) {
            shard.invalidations += 1;
            shard.rows.remove(prefix);
        }
    }

    /// (hits, misses, rows, bytes)
    pub(crate) fn stats(&self) -> (u64, u64, u64, u64) {
        let (mut rows, mut bytes) = (0, 0);
        for s in &self.shards {
            let s = s.lock().unwrap_or_else(|p| p.into_inner());
            rows += s.rows.len() as u64;
            bytes += s.rows.weight();
        }
        (self.hits.load(Relaxed), self.misses.load(Relaxed), rows, bytes)
    }
}
