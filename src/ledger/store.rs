//! Small helpers over RocksDB shared by the ledger's open, commit and read paths.

use super::keys;
use crate::error::Error;
use crate::merkle::{NodeId, NodeReader};
use crate::verify::Hash;
use rocksdb::DB;
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("every column family is created when the store is opened")
}

/// Map a RocksDB error to ours. "No space" keeps its own wording so the server can map it to 53100.
pub(crate) fn storage_error(path: &Path, e: rocksdb::Error) -> Error {
    Error::Storage { path: path.to_path_buf(), message: e.into_string() }
}

/// Stored nodes never change, so nodes near the top of the tree (the ones every proof reads) are kept
/// in memory. The cache holds at most `NODE_CACHE_CAP` nodes (about 20 MiB), so memory stays flat as the
/// log grows: once full, it keeps what it has.
pub(crate) const NODE_CACHE_CAP: usize = 1 << 18;
const NODE_CACHE_MIN_LEVEL: u8 = 4;

#[derive(Default)]
pub(crate) struct NodeCache {
    nodes: RwLock<HashMap<NodeId, Hash>>,
}

impl NodeCache {
    pub(crate) fn len(&self) -> usize {
        self.nodes.read().expect("node cache lock is never poisoned").len()
    }
}

/// Merkle nodes in the `merkle` column family: upper levels from the cache, the rest with one multi-get.
pub struct NodeStore<'a> {
    pub(crate) db: &'a DB,
    pub(crate) path: &'a Path,
    pub(crate) cache: Option<&'a NodeCache>,
}

impl NodeReader for NodeStore<'_> {
    type Error = Error;
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        let mut out = vec![[0u8; 32]; ids.len()];
        let mut missing = Vec::with_capacity(ids.len());
        match self.cache {
            Some(cache) => {
                let map = cache.nodes.read().expect("node cache lock is never poisoned");
                for (i, id) in ids.iter().enumerate() {
                    match map.get(id) {
                        Some(h) => out[i] = *h,
                        None => missing.push(i),
                    }
                }
            }
            None => missing.extend(0..ids.len()),
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let c = cf(self.db, keys::CF_MERKLE);
        let ks: Vec<[u8; 9]> = missing.iter().map(|&i| keys::node_key(ids[i])).collect();
        let got = self.db.batched_multi_get_cf(c, &ks, false);
        for (&i, v) in missing.iter().zip(got) {
            let id = ids[i];
            let corrupt = |what: &str| Error::Corrupt {
                path: self.path.to_path_buf(),
                what: format!("merkle node (level {}, index {}) {what}", id.level, id.index),
            };
            let v = v.map_err(|e| storage_error(self.path, e))?.ok_or_else(|| corrupt("is missing"))?;
            out[i] = v.as_ref().try_into().map_err(|_| corrupt(&format!("has {} bytes, not 32", v.len())))?;
        }
        if let Some(cache) = self.cache {
            let mut map = cache.nodes.write().expect("node cache lock is never poisoned");
            for &i in &missing {
                if ids[i].level >= NODE_CACHE_MIN_LEVEL && map.len() < NODE_CACHE_CAP {
                    map.insert(ids[i], out[i]);
                }
            }
        }
        Ok(out)
    }
}
