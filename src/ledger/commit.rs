//! The commit pipeline: one thread drains every queued transaction into one `WriteBatch` and one fsync
//! (group commit), then answers each caller. The in-memory frontier and head advance only after the
//! write succeeded, so a failed write leaves the ledger exactly as it was.

use super::format::{self, Entry, LeafData, MAX_ENTRIES_PER_TX};
use super::keys::{self, *};
use super::store::{cf, storage_error};
use super::{Head, NewTx, Options, Receipt, Shared};
use crate::error::{Error, Result};
use crate::merkle::Frontier;
use futures::channel::oneshot;
use rocksdb::{WriteBatch, WriteOptions};
use std::sync::{mpsc, Arc};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) struct Request {
    pub(crate) tx: NewTx,
    pub(crate) reply: oneshot::Sender<Result<Receipt>>,
}

/// Checks done before queueing, so one bad transaction never fails a whole batch.
pub(crate) fn validate(tx: &NewTx) -> Result<()> {
    if tx.entries.len() > MAX_ENTRIES_PER_TX {
        return Err(Error::InvalidInput(format!("{} entries exceed the {MAX_ENTRIES_PER_TX} per transaction", tx.entries.len())));
    }
    for (i, e) in tx.entries.iter().enumerate() {
        e.validate().map_err(|m| Error::InvalidInput(format!("entry {i}: {m}")))?;
    }
    Ok(())
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

fn size_of(tx: &NewTx) -> usize {
    tx.provenance.len()
        + tx.entries.iter().map(|e: &Entry| e.key.len() + e.value.len() + 32).sum::<usize>()
        + tx.index_entries.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
}

pub(crate) fn run(shared: Arc<Shared>, rx: mpsc::Receiver<Request>, mut frontier: Frontier, options: Options) {
    let mut last_commit = shared.head.read().expect("head lock is never poisoned").last_commit_us;
    while let Ok(first) = rx.recv() {
        let mut bytes = size_of(&first.tx);
        let mut batch = vec![first];
        while batch.len() < options.max_batch_txs && bytes < options.max_batch_bytes {
            match rx.try_recv() {
                Ok(r) => {
                    bytes += size_of(&r.tx);
                    batch.push(r);
                }
                Err(_) => break,
            }
        }
        let txs: Vec<&NewTx> = batch.iter().map(|r| &r.tx).collect();
        match write_batch(&shared, &frontier, &txs, last_commit, options.sync) {
            Ok((next, receipts, head)) => {
                frontier = next;
                last_commit = head.last_commit_us;
                *shared.head.write().expect("head lock is never poisoned") = head;
                for (r, receipt) in batch.into_iter().zip(receipts) {
                    let _ = r.reply.send(Ok(receipt));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, txs = batch.len(), "group commit failed; nothing of this batch was written");
                // Every waiter gets the same error (Error is not Clone), worded once.
                let msg = match &e {
                    Error::Storage { message, .. } => message.clone(),
                    e => e.to_string(),
                };
                for r in batch {
                    let _ = r.reply.send(Err(Error::Storage { path: shared.path.clone(), message: msg.clone() }));
                }
            }
        }
    }
}

pub(crate) type Written = (Frontier, Vec<Receipt>, Head);

pub(crate) fn write_batch(shared: &Shared, frontier: &Frontier, txs: &[&NewTx], mut last_commit: u64, sync: bool) -> Result<Written> {
    let db = &shared.db;
    let (log, entries, prov, merkle, pk, meta) =
        (cf(db, CF_LOG), cf(db, CF_ENTRIES), cf(db, CF_PROVENANCE), cf(db, CF_MERKLE), cf(db, CF_PK), cf(db, CF_META));
    let (sec, entry_nodes) = (cf(db, CF_SEC), cf(db, CF_ENTRY_NODES));
    let mut next = frontier.clone();
    let mut b = WriteBatch::default();
    let mut receipts = Vec::with_capacity(txs.len());
    // The pk keys written, whose rows the row cache forgets once the write returns.
    let mut written = Vec::with_capacity(txs.iter().map(|t| t.entries.len()).sum());
    for tx in txs {
        let id = next.size() + 1;
        // Commit time never goes backwards, even if the wall clock does.
        last_commit = now_us().max(last_commit);
        let encoded: Vec<Vec<u8>> = tx.entries.iter().map(Entry::encode).collect();
        // The entries tree, keeping its upper complete subtrees for entry proofs of large transactions.
        let mut entries_tree = Frontier::default();
        for e in &encoded {
            entries_tree.append(crate::verify::leaf_hash(e), |node, h| {
                if node.level >= ENTRY_NODE_MIN_LEVEL {
                    b.put_cf(entry_nodes, keys::entry_node_key(id, node), h);
                }
            });
        }
        let leaf = LeafData {
            tx: id,
            commit_time_us: last_commit,
            client_time_us: tx.client_time_us,
            entry_count: encoded.len() as u32,
            entries_root: entries_tree.root(),
            provenance_hash: format::provenance_hash(&tx.provenance),
            state_root: None,
        };
        let leaf_bytes = leaf.encode();
        for (i, (e, bytes)) in tx.entries.iter().zip(&encoded).enumerate() {
            b.put_cf(entries, keys::entry_key(id, i as u32), bytes);
            let key = keys::pk_key(e.table, &e.key, id);
            b.put_cf(pk, &key, keys::pk_value(i as u32, e.flags));
            written.push(key);
        }
        b.put_cf(prov, keys::tx_key(id), &tx.provenance);
        for (k, v) in &tx.index_entries {
            let mut key = Vec::with_capacity(k.len() + 8);
            key.extend_from_slice(k);
            key.extend_from_slice(&(!id).to_be_bytes());
            b.put_cf(sec, key, v);
        }
        next.append(crate::verify::leaf_hash(&leaf_bytes), |node, h| b.put_cf(merkle, keys::node_key(node), h));
        b.put_cf(log, keys::tx_key(id), &leaf_bytes);
        receipts.push(Receipt { tx: id, commit_time_us: last_commit, tree_size: 0 });
    }
    let root = next.root();
    b.put_cf(meta, META_TREE_SIZE, next.size().to_be_bytes());
    b.put_cf(meta, META_ROOT, root);
    b.put_cf(meta, META_LAST_COMMIT, last_commit.to_be_bytes());
    if shared.min_free_bytes > 0 {
        check_free_space(&shared.path, shared.min_free_bytes, b.size_in_bytes() as u64)?;
    }
    let mut w = WriteOptions::default();
    w.set_sync(sync);
    // (See `Options::sync`: a store without fsync is a scratch store, rebuilt rather than recovered.)
    w.disable_wal(!sync);
    let bytes = b.size_in_bytes() as u64;
    db.write_opt(b, &w).map_err(|e| storage_error(&shared.path, e))?;
    // Before the caller publishes the new head (`latest.rs`, rule 1).
    for key in &written {
        shared.rows.invalidate(&key[..key.len() - 8]);
    }
    shared.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.batch_bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    for r in &mut receipts {
        r.tree_size = next.size();
    }
    let head = Head { size: next.size(), root, last_commit_us: last_commit };
    Ok((next, receipts, head))
}

/// Refuse a batch that would leave less than `reserve` bytes free on the store's filesystem (worded as
/// "No space left on device", which the SQL layer reports as 53100).
fn check_free_space(path: &std::path::Path, reserve: u64, batch: u64) -> Result<()> {
    let Some(free) = free_bytes(path) else { return Ok(()) };
    // The WAL and the memtable's later flush each write the batch once.
    let needed = reserve.saturating_add(batch.saturating_mul(2));
    if free < needed {
        return Err(crate::Error::Storage {
            path: path.to_path_buf(),
            message: format!(
                "No space left on device: {} MiB free, the server keeps {} MiB free (--min-free-space-mb); nothing was written",
                free >> 20,
                reserve >> 20
            ),
        });
    }
    Ok(())
}

/// Bytes available to this process on the filesystem holding `path` (statvfs), None when unknown.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a valid NUL-terminated path and `st` is a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    // (The fields' types differ between platforms; on 64-bit Linux they are already u64.)
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}
