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

/// Merkle nodes in the `merkle` column family, read with one multi-get per proof.
pub struct NodeStore<'a> {
    pub(crate) db: &'a DB,
    pub(crate) path: &'a Path,
}

impl NodeReader for NodeStore<'_> {
    type Error = Error;
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Error> {
        let c = cf(self.db, keys::CF_MERKLE);
        let ks: Vec<[u8; 9]> = ids.iter().map(|&id| keys::node_key(id)).collect();
        let got = self.db.batched_multi_get_cf(c, &ks, false);
        let mut out = Vec::with_capacity(ids.len());
        for (id, v) in ids.iter().zip(got) {
            let corrupt = |what: &str| Error::Corrupt {
                path: self.path.to_path_buf(),
                what: format!("merkle node (level {}, index {}) {what}", id.level, id.index),
            };
            let v = v.map_err(|e| storage_error(self.path, e))?.ok_or_else(|| corrupt("is missing"))?;
            out.push(v.as_ref().try_into().map_err(|_| corrupt(&format!("has {} bytes, not 32", v.len())))?);
        }
        Ok(out)
    }
}
