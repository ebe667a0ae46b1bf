//! Small helpers over RocksDB shared by the ledger's open, commit and read paths.

use super::keys;
use crate::error::Error;
use crate::merkle::{NodeId, NodeReader};
use crate::verify::Hash;
use rocksdb::DB;
use std::path::Path;

pub(crate) fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).expect("every column family is created when the store is opened")
}

/// Map a RocksDB error to ours. "No space" keeps its own wording so the server can map it to 53100.
pub(crate) fn storage_error(path: &Path, e: rocksdb::Error) -> Error {
    Error::Storage { path: path.to_path_buf(), message: e.into_string() }
}

/// Stored nodes never change, so the nodes proofs read are kept in memory: the upper levels that every
/// proof reads, and the lower ones of recently proven transactions. At most `NODE_CACHE_CAP` nodes
/// (about 20 MiB), evicted by quick_cache's policy, so memory stays flat as the log grows and hot nodes
/// stay while a scan of cold ones passes.
pub(crate) const NODE_CACHE_CAP: usize = 1 << 18;

pub(crate) struct NodeCache {
    nodes: quick_cache::sync::Cache<NodeId, Hash>,
}

impl Default for NodeCache {
    fn default() -> Self {
        NodeCache { nodes: quick_cache::sync::Cache::new(NODE_CACHE_CAP) }
    }
}

impl NodeCache {
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
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
                for (i, id) in ids.iter().enumerate() {
                    match cache.nodes.get(id) {
                        Some(h) => out[i] = h,
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
            for &i in &missing {
                cache.nodes.insert(ids[i], out[i]);
            }
        }
        Ok(out)
    }
}
