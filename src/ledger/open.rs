//! Opening a store and the consistency check that runs before anything is served.
//!
//! RocksDB replays its write-ahead log on open, and a `WriteBatch` is atomic, so a batch interrupted by
//! a crash is either wholly present (its WAL record was synced) or wholly absent: there is never a half
//! batch to finish. What this module checks is that the results agree: the recorded tree size, the last
//! log record, the last Merkle leaf and the recorded root. Any disagreement means the files were changed
//! outside vouchdb (or by a bug), and the ledger refuses to open, naming what disagrees.

use super::format::LeafData;
use super::keys::{self, *};
use super::store::{cf, storage_error, NodeStore};
use super::{Head, Options};
use crate::error::{Error, Result};
use crate::merkle::{Frontier, NodeId, NodeReader};
use crate::verify::Hash;
use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, IteratorMode, WriteBatch, WriteOptions, DB};
use std::path::Path;

/// Obsolete WAL files kept for reuse.
const WAL_RECYCLE_FILES: usize = 4;

/// The on-disk format this build reads and writes.
pub const STORE_FORMAT_VERSION: u32 = 1;

/// The prefix of a pk-index key shared by all versions of one row: everything but the 8-byte tx
/// suffix (`keys::pk_prefix`).
fn pk_version_prefix(key: &[u8]) -> &[u8] {
    &key[..key.len().saturating_sub(8)]
}

/// Keys `pk_version_prefix` applies to: at least a table id, the terminator and a tx.
fn pk_key_in_domain(key: &[u8]) -> bool {
    key.len() >= 4 + 2 + 8
}

fn db_options(options: &Options) -> (rocksdb::Options, Vec<ColumnFamilyDescriptor>) {
    let mut db = rocksdb::Options::default();
    db.create_if_missing(true);
    db.create_missing_column_families(true);
    db.set_max_background_jobs(2);
    db.set_bytes_per_sync(1 << 20);
    if options.sync {
        // Reuse obsolete WAL files instead of creating new ones: an fsync after a write that only
        // overwrites blocks of a file whose size does not change skips the inode write (measured on
        // ext4 with `benches/fsync.py`: 160-180 µs per 500-byte write + fdatasync against 240-300 µs
        // when appending). RocksDB refuses recycling with the WAL disabled, hence only for durable stores.
        db.set_recycle_log_file_num(WAL_RECYCLE_FILES);
        // Bound the WAL (and so recovery time and disk): past this, the column families still holding
        // the oldest WAL file are flushed. Without it RocksDB allows 4 times every column family's
        // write buffers, gigabytes, and the small column families kept every WAL file alive.
        db.set_max_total_wal_size((options.memtable_bytes as u64).saturating_mul(2));
    }
    let cache = Cache::new_lru_cache(options.block_cache_bytes);
    // One budget for every column family's memtables, charged to the block cache: without it each
    // column family fills its own 64 MiB write buffer before its first flush, and a server's memory
    // grows by hundreds of MiB over its first minutes of writes (benches/soak.sh showed it).
    let write_buffers = rocksdb::WriteBufferManager::new_write_buffer_manager_with_cache(options.memtable_bytes, false, cache.clone());
    db.set_write_buffer_manager(&write_buffers);
    let cfs = ALL_CFS
        .iter()
        .map(|&name| {
            let mut o = rocksdb::Options::default();
            let mut t = BlockBasedOptions::default();
            t.set_block_cache(&cache);
            t.set_bloom_filter(10.0, false);
            t.set_cache_index_and_filter_blocks(true);
            t.set_pin_l0_filter_and_index_blocks_in_cache(true);
            o.set_block_based_table_factory(&t);
            // Hashes do not compress; the row data in `entries` does.
            let compress = matches!(name, CF_ENTRIES | CF_PROVENANCE);
            o.set_compression_type(if compress { rocksdb::DBCompressionType::Lz4 } else { rocksdb::DBCompressionType::None });
            if name == CF_PK {
                // Every read of the pk index is a seek to one key's newest version at or before a tx,
                // which a whole-key bloom filter cannot answer. With the key's version prefix (all but
                // the 8-byte tx) as the prefix, those seeks consult a prefix bloom filter in every SST
                // file and memtable and skip the ones that do not hold the key: without it, each seek
                // searched the index and a data block of every level-0 file and level (the soak's
                // throughput fell by half as the memtables flushed). Table walks set
                // `total_order_seek`. Files written with another extractor (the earlier 4-byte table
                // prefix) are still read correctly; RocksDB only skips their prefix filters.
                o.set_prefix_extractor(rocksdb::SliceTransform::create(
                    "vouchdb.pk_version_prefix",
                    pk_version_prefix,
                    Some(pk_key_in_domain),
                ));
                o.set_memtable_prefix_bloom_ratio(0.05);
                t.set_whole_key_filtering(false);
                o.set_block_based_table_factory(&t);
            }
            ColumnFamilyDescriptor::new(name, o)
        })
        .collect();
    (db, cfs)
}

pub(crate) fn open_and_check(path: &Path, options: &Options) -> Result<(DB, Head, Frontier)> {
    std::fs::create_dir_all(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let (db_opts, cfs) = db_options(options);
    let db = DB::open_cf_descriptors(&db_opts, path, cfs).map_err(|e| storage_error(path, e))?;
    let (head, frontier) = check(&db, path)?;
    Ok((db, head, frontier))
}

fn corrupt(path: &Path, what: impl Into<String>) -> Error {
    Error::Corrupt { path: path.to_path_buf(), what: what.into() }
}

fn get_meta(db: &DB, path: &Path, key: &[u8]) -> Result<Option<Vec<u8>>> {
    db.get_cf(cf(db, CF_META), key).map_err(|e| storage_error(path, e))
}

fn fixed<const N: usize>(path: &Path, name: &str, v: Vec<u8>) -> Result<[u8; N]> {
    let len = v.len();
    v.try_into().map_err(|_| corrupt(path, format!("meta value '{name}' has {len} bytes, expected {N}")))
}

fn last_tx(db: &DB, path: &Path) -> Result<Option<u64>> {
    match db.iterator_cf(cf(db, CF_LOG), IteratorMode::End).next() {
        None => Ok(None),
        Some(item) => {
            let (k, _) = item.map_err(|e| storage_error(path, e))?;
            let k: [u8; 8] = k.as_ref().try_into().map_err(|_| corrupt(path, format!("log key {} is not 8 bytes", hex::encode(&k))))?;
            Ok(Some(u64::from_be_bytes(k)))
        }
    }
}

fn check(db: &DB, path: &Path) -> Result<(Head, Frontier)> {
    let format = match get_meta(db, path, META_FORMAT)? {
        Some(v) => u32::from_be_bytes(fixed(path, "format_version", v)?),
        None => {
            if last_tx(db, path)?.is_some() {
                return Err(corrupt(path, "the log holds transactions but meta 'format_version' is missing"));
            }
            initialise(db, path)?;
            STORE_FORMAT_VERSION
        }
    };
    if format > STORE_FORMAT_VERSION {
        return Err(Error::NewerFormat { path: path.to_path_buf(), found: format, supported: STORE_FORMAT_VERSION });
    }
    if format == 0 {
        return Err(corrupt(path, "meta 'format_version' is 0"));
    }
    let size = get_meta(db, path, META_TREE_SIZE)?.ok_or_else(|| corrupt(path, "meta 'tree_size' is missing"))?;
    let size = u64::from_be_bytes(fixed(path, "tree_size", size)?);
    let root = get_meta(db, path, META_ROOT)?.ok_or_else(|| corrupt(path, "meta 'root' is missing"))?;
    let root: Hash = fixed(path, "root", root)?;
    let last_commit_us = match get_meta(db, path, META_LAST_COMMIT)? {
        Some(v) => u64::from_be_bytes(fixed(path, "last_commit_us", v)?),
        None => 0,
    };

    // The log tail must be exactly the recorded size.
    match (last_tx(db, path)?, size) {
        (None, 0) => {}
        (Some(t), s) if t == s => {}
        (Some(t), s) if t > s => return Err(corrupt(path, format!("the log holds tx {t} beyond the recorded tree size {s}"))),
        (t, s) => return Err(corrupt(path, format!("the recorded tree size is {s} but the log ends at tx {}", t.unwrap_or(0)))),
    }
    let nodes = NodeStore { db, path, cache: None };
    // Nothing may be stored past the frontier.
    if db.get_cf(cf(db, CF_MERKLE), keys::node_key(NodeId { level: 0, index: size })).map_err(|e| storage_error(path, e))?.is_some() {
        return Err(corrupt(path, format!("a merkle leaf exists at index {size}, beyond the recorded tree size {size}")));
    }
    let frontier = Frontier::load(&nodes, size)?;
    if frontier.root() != root {
        return Err(corrupt(
            path,
            format!(
                "the merkle frontier at size {size} gives root {} but the recorded root is {}",
                hex::encode(frontier.root()),
                hex::encode(root)
            ),
        ));
    }
    if size > 0 {
        let bytes = db
            .get_cf(cf(db, CF_LOG), keys::tx_key(size))
            .map_err(|e| storage_error(path, e))?
            .ok_or_else(|| corrupt(path, format!("log record of tx {size} is missing")))?;
        let leaf = LeafData::decode(&bytes).map_err(|e| corrupt(path, format!("log record of tx {size}: {e}")))?;
        if leaf.tx != size {
            return Err(corrupt(path, format!("log record stored under tx {size} says tx {}", leaf.tx)));
        }
        let stored = nodes.nodes(&[NodeId { level: 0, index: size - 1 }])?[0];
        if stored != leaf.hash() {
            return Err(corrupt(path, format!("merkle leaf of tx {size} does not match the hash of its log record")));
        }
    }
    Ok((Head { size, root, last_commit_us }, frontier))
}

fn initialise(db: &DB, path: &Path) -> Result<()> {
    let mut b = WriteBatch::default();
    let meta = cf(db, CF_META);
    b.put_cf(meta, META_FORMAT, STORE_FORMAT_VERSION.to_be_bytes());
    b.put_cf(meta, META_TREE_SIZE, 0u64.to_be_bytes());
    b.put_cf(meta, META_ROOT, crate::verify::empty_root());
    let mut w = WriteOptions::default();
    w.set_sync(true);
    db.write_opt(b, &w).map_err(|e| storage_error(path, e))?;
    Ok(())
}
