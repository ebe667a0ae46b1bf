//! The append-only log: transactions of entries, committed durably in groups, under an RFC 6962 tree.
//!
//! Invariants (ARCHITECTURE.md repeats them):
//! - One transaction is one leaf; tx id `n` is leaf index `n - 1`. Tx ids are dense from 1.
//! - A batch of transactions is one RocksDB `WriteBatch` written with `sync = true`: the log records, the
//!   entries, the provenance, the Merkle nodes, the primary-key index and the new tree size and root go
//!   to disk together or not at all. A caller is answered only after its batch is durable.
//! - Readers see only transactions up to the published head, so a batch is never half-visible.
//! - Nothing is ever overwritten or deleted.

mod commit;
pub mod format;
pub mod keys;
mod latest;
mod open;
mod store;

pub use format::{Entry, LeafData, Reference, FLAG_DELETE, FLAG_REFERENCE};
pub use store::NodeStore;

use crate::error::{Error, Result};
use crate::merkle;
use crate::verify::Hash;
use futures::channel::oneshot;
use rocksdb::{IteratorMode, ReadOptions, DB};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};
use std::thread::JoinHandle;

/// A transaction to append.
#[derive(Debug, Clone, Default)]
pub struct NewTx {
    pub entries: Vec<Entry>,
    /// Opaque provenance record; its SHA-256 goes into the leaf.
    pub provenance: Vec<u8>,
    /// Client timestamp in microseconds since the Unix epoch, or 0 if the client gave none.
    pub client_time_us: u64,
    /// Derived index entries written in the same batch (not part of the leaf): each key gets the tx id
    /// appended (inverted, so newer versions sort first) and goes to the `sec` column family.
    pub index_entries: Vec<(Vec<u8>, Vec<u8>)>,
}

/// What `append` answers once the transaction is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    pub tx: u64,
    pub commit_time_us: u64,
    /// The tree size right after this batch (at least `tx`).
    pub tree_size: u64,
}

/// The published state: every transaction up to `size` is durable and readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub size: u64,
    pub root: Hash,
    pub last_commit_us: u64,
}

/// A committed transaction as stored.
#[derive(Debug, Clone)]
pub struct TxRecord {
    pub leaf: LeafData,
    pub leaf_bytes: Vec<u8>,
    pub entries: Vec<Entry>,
    pub entry_bytes: Vec<Vec<u8>>,
    pub provenance: Vec<u8>,
}

/// A transaction exactly as stored, for bulk readers (`Ledger::raw_txs`).
#[derive(Debug, Clone)]
pub struct RawTx {
    pub tx: u64,
    pub leaf: Vec<u8>,
    pub entries: Vec<Vec<u8>>,
    pub provenance: Vec<u8>,
    /// The stored tree nodes this tx's leaf completed, level 0 upward.
    pub nodes: Vec<Hash>,
}

/// One version of a key: the entry and where it sits in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub tx: u64,
    pub index: u32,
    pub entry: Entry,
}

/// `Ledger::stats`: RocksDB's memory (block cache, memtables, index and filter readers), its files,
/// the ledger's own caches and the group commits written since open.
#[derive(Debug, Clone, Default)]
pub struct LedgerStats {
    pub block_cache_bytes: u64,
    pub block_cache_pinned_bytes: u64,
    pub memtable_bytes: u64,
    pub table_readers_bytes: u64,
    pub sst_bytes: u64,
    pub pending_compaction_bytes: u64,
    /// SST files in level 0, all column families (each is searched by every read that reaches it).
    pub l0_files: u64,
    pub node_cache_entries: u64,
    pub material_cache_entries: u64,
    pub material_cache_bytes: u64,
    pub batches: u64,
    pub batch_bytes: u64,
    pub row_cache_hits: u64,
    pub row_cache_misses: u64,
    pub row_cache_rows: u64,
    pub row_cache_bytes: u64,
}

/// Tuning knobs; the defaults suit a server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most transactions in one group commit.
    pub max_batch_txs: usize,
    /// Most payload bytes in one group commit (a single larger transaction still commits alone).
    pub max_batch_bytes: usize,
    /// RocksDB block cache in bytes. Memtables are charged to it too (`memtable_bytes`), so RocksDB's
    /// cache and write buffers together stay within this.
    pub block_cache_bytes: usize,
    /// RocksDB memtables, all column families together: past this, the largest is flushed.
    pub memtable_bytes: usize,
    /// fsync each group commit before answering (the server always does). A store opened without it
    /// (a replay's scratch store, which is thrown away) writes no RocksDB WAL either: after a crash it
    /// is not reopened but rebuilt.
    pub sync: bool,
    /// Write each append on the caller's thread, with no commit thread and no group commit: for a
    /// single writer that appends one transaction at a time (a replay's scratch store), where the
    /// hand-off to a commit thread would cost more than the write.
    pub inline: bool,
    /// The row cache (`latest.rs`): bytes of rows whose newest version point reads at the head answer
    /// from memory. 0: off.
    pub row_cache_bytes: u64,
    /// Refuse a group commit (as "No space left on device", SQLSTATE 53100) when the data directory's
    /// filesystem would keep less than this many bytes free after it, so RocksDB itself never runs out
    /// of space (a WAL write that fails with ENOSPC stops all writes until a restart); reads go on, and
    /// commits resume as soon as space is freed. 0: no reserve.
    pub min_free_bytes: u64,
}

/// The default row cache (`Options::row_cache_bytes`).
pub const DEFAULT_ROW_CACHE_BYTES: u64 = 64 << 20;

/// The default free-space reserve: room for RocksDB's flushes and compactions after a refusal.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            max_batch_txs: 4096,
            max_batch_bytes: 64 << 20,
            block_cache_bytes: 256 << 20,
            memtable_bytes: 64 << 20,
            sync: true,
            inline: false,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            row_cache_bytes: DEFAULT_ROW_CACHE_BYTES,
        }
    }
}

pub(crate) struct Shared {
    pub(crate) db: DB,
    pub(crate) path: PathBuf,
    pub(crate) min_free_bytes: u64,
    pub(crate) head: RwLock<Head>,
    pub(crate) node_cache: store::NodeCache,
    /// Proof material of entries recently proven (`entry_material`): immutable, so never stale; capped
    /// in bytes, with eviction.
    pub(crate) material_cache: MaterialCache,
    /// Group-commit batches written, and their bytes (for the server's metrics).
    pub(crate) batches: std::sync::atomic::AtomicU64,
    pub(crate) batch_bytes: std::sync::atomic::AtomicU64,
    /// Each cached row's newest version (`latest.rs`); every commit invalidates the rows it wrote.
    pub(crate) rows: latest::RowCache,
    /// Entries hashed for proofs (tests check that a proof reads only the entries it needs).
    #[cfg(test)]
    pub(crate) entries_hashed: std::sync::atomic::AtomicU64,
}

/// Most bytes of proof material kept in memory, the least useful evicted first (as the node cache,
/// `store::NodeCache`). Weighed in bytes, not entries: an entry holds its row's value and its
/// transaction's statement and parameters, each up to `format::MAX_VALUE_LEN`, so a cap in entries
/// would not bound memory. Material heavier than a cache shard (about 1/16 of this) is not kept.
pub(crate) const MATERIAL_CACHE_BYTES: u64 = 32 << 20;

/// The typical weight of one entry's material, which sizes the cache's tables (a one-row INSERT
/// weighs about 600 bytes).
const MATERIAL_TYPICAL_BYTES: u64 = 512;

pub(crate) type MaterialCache = quick_cache::sync::Cache<(u64, u32), Arc<EntryMaterial>, MaterialWeight>;

/// An entry's proof material weighs its bytes plus a fixed overhead for the Arc, the vectors and the
/// cache's slot.
#[derive(Clone)]
pub(crate) struct MaterialWeight;

impl quick_cache::Weighter<(u64, u32), Arc<EntryMaterial>> for MaterialWeight {
    fn weight(&self, _: &(u64, u32), m: &Arc<EntryMaterial>) -> u64 {
        (m.leaf_bytes.len() + m.entry_bytes.len() + 32 * m.entry_proof.len() + std::mem::size_of::<EntryMaterial>()) as u64 + 64
    }
}

/// Everything about one committed entry that never changes: its bytes, its transaction's leaf data and
/// its inclusion proof within the transaction. Only the transaction's inclusion in the tree depends on
/// the tree size.
#[derive(Debug)]
pub struct EntryMaterial {
    pub leaf: LeafData,
    pub leaf_bytes: Vec<u8>,
    pub entry_bytes: Vec<u8>,
    pub entry_proof: Vec<Hash>,
}

thread_local! {
    /// Appends queued from this thread whose commit has not returned yet.
    static WAITING: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
}

/// How many appends queued from the calling thread still wait for their commit (the connection
/// threads poll for requests only while none does: `server::threads`).
pub fn appends_waiting_here() -> usize {
    WAITING.with(|w| w.load(Ordering::Relaxed))
}

/// Counts one waiting append in the queueing thread's count until the append's future ends.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    fn here() -> Waiting {
        let w = WAITING.with(Arc::clone);
        w.fetch_add(1, Ordering::Relaxed);
        Waiting(w)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An open ledger. Cheap to share behind an `Arc`; `append` may be called from any thread or task.
pub struct Ledger {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::Sender<commit::Request>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
    /// `Options::inline`: the frontier and last commit time, written under this lock by `append`.
    inline: Option<Mutex<(crate::merkle::Frontier, u64)>>,
    sync: bool,
}

impl Ledger {
    /// Open (creating if absent) the ledger in `dir`, check that it is consistent, and start the
    /// commit pipeline. An inconsistent store is refused with an error naming the problem.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Ledger> {
        let path = dir.as_ref().to_path_buf();
        let (db, head, frontier) = open::open_and_check(&path, &options)?;
        let shared = Arc::new(Shared {
            db,
            path,
            min_free_bytes: options.min_free_bytes,
            head: RwLock::new(head),
            node_cache: Default::default(),
            material_cache: MaterialCache::with_weighter(
                (MATERIAL_CACHE_BYTES / MATERIAL_TYPICAL_BYTES) as usize,
                MATERIAL_CACHE_BYTES,
                MaterialWeight,
            ),
            batches: Default::default(),
            batch_bytes: Default::default(),
            rows: latest::RowCache::new(options.row_cache_bytes),
            #[cfg(test)]
            entries_hashed: Default::default(),
        });
        if options.inline {
            let last = head.last_commit_us;
            return Ok(Ledger {
                shared,
                sender: Mutex::new(None),
                committer: Mutex::new(None),
                inline: Some(Mutex::new((frontier, last))),
                sync: options.sync,
            });
        }
        let sync = options.sync;
        let (tx, rx) = mpsc::channel();
        let worker = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("vouchdb-commit".into())
            .spawn(move || commit::run(worker, rx, frontier, options))
            .map_err(|e| Error::Io { path: shared.path.clone(), source: e })?;
        Ok(Ledger { shared, sender: Mutex::new(Some(tx)), committer: Mutex::new(Some(handle)), inline: None, sync })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The published head: size, root and last commit time.
    pub fn head(&self) -> Head {
        *self.shared.head.read().expect("head lock is never poisoned: writers do not panic while holding it")
    }

    /// Queue a transaction; the future resolves once it is durable (or failed).
    pub fn append(&self, tx: NewTx) -> impl std::future::Future<Output = Result<Receipt>> + Send + 'static {
        let rx = match &self.inline {
            Some(state) => Err(self.append_inline(state, tx)),
            None => Ok((self.submit(tx), Waiting::here())),
        };
        async move {
            match rx {
                Err(done) => done,
                Ok((rx, _waiting)) => rx?.await.map_err(|_| Error::Closed("commit pipeline stopped".into()))?,
            }
        }
    }

    fn append_inline(&self, state: &Mutex<(crate::merkle::Frontier, u64)>, tx: NewTx) -> Result<Receipt> {
        commit::validate(&tx)?;
        let mut st = state.lock().expect("inline commit lock is never poisoned");
        let (next, mut receipts, head) = commit::write_batch(&self.shared, &st.0, &[&tx], st.1, self.sync)?;
        *st = (next, head.last_commit_us);
        *self.shared.head.write().expect("head lock is never poisoned") = head;
        Ok(receipts.remove(0))
    }

    /// Append and wait, for callers outside an async runtime.
    pub fn append_blocking(&self, tx: NewTx) -> Result<Receipt> {
        futures::executor::block_on(self.append(tx))
    }

    fn submit(&self, tx: NewTx) -> Result<oneshot::Receiver<Result<Receipt>>> {
        commit::validate(&tx)?;
        let (reply, rx) = oneshot::channel();
        let guard = self.sender.lock().expect("sender lock is never poisoned");
        let sender = guard.as_ref().ok_or_else(|| Error::Closed("ledger is shutting down".into()))?;
        sender.send(commit::Request { tx, reply }).map_err(|_| Error::Closed("commit pipeline stopped".into()))?;
        Ok(rx)
    }

    /// Stop accepting appends, let queued ones finish, and wait for the commit thread.
    pub fn close(&self) {
        self.sender.lock().expect("sender lock is never poisoned").take();
        if let Some(h) = self.committer.lock().expect("committer lock is never poisoned").take() {
            let _ = h.join();
        }
    }

    fn corrupt(&self, what: String) -> Error {
        Error::Corrupt { path: self.shared.path.clone(), what }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        store::cf(&self.shared.db, name)
    }

    fn storage(&self, e: rocksdb::Error) -> Error {
        store::storage_error(&self.shared.path, e)
    }

    fn check_tx(&self, tx: u64) -> Result<Head> {
        let head = self.head();
        if tx == 0 || tx > head.size {
            return Err(Error::NotFound(format!("tx {tx} (the log holds tx 1..={})", head.size)));
        }
        Ok(head)
    }

    /// The leaf data of a committed transaction.
    pub fn leaf(&self, tx: u64) -> Result<(LeafData, Vec<u8>)> {
        self.check_tx(tx)?;
        let bytes = self
            .shared
            .db
            .get_cf(self.cf(keys::CF_LOG), keys::tx_key(tx))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| self.corrupt(format!("log record of tx {tx} is missing")))?;
        let leaf = LeafData::decode(&bytes).map_err(|e| self.corrupt(format!("log record of tx {tx}: {e}")))?;
        if leaf.tx != tx {
            return Err(self.corrupt(format!("log record stored under tx {tx} says tx {}", leaf.tx)));
        }
        Ok((leaf, bytes))
    }

    /// The provenance record of a committed transaction, as stored (its SHA-256 is in the leaf).
    pub fn provenance(&self, tx: u64) -> Result<Vec<u8>> {
        self.check_tx(tx)?;
        self.shared
            .db
            .get_cf(self.cf(keys::CF_PROVENANCE), keys::tx_key(tx))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| self.corrupt(format!("provenance record of tx {tx} is missing")))
    }

    /// A committed transaction: leaf data, entries and provenance record.
    pub fn get_tx(&self, tx: u64) -> Result<TxRecord> {
        let (leaf, leaf_bytes) = self.leaf(tx)?;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(keys::entry_key(tx, 0).to_vec());
        opts.set_iterate_upper_bound(keys::entry_key(tx + 1, 0).to_vec());
        let mut entries = Vec::with_capacity(leaf.entry_count as usize);
        let mut entry_bytes = Vec::with_capacity(leaf.entry_count as usize);
        for item in self.shared.db.iterator_cf_opt(self.cf(keys::CF_ENTRIES), opts, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            let i = entries.len() as u32;
            if k.as_ref() != keys::entry_key(tx, i) {
                return Err(self.corrupt(format!("entries of tx {tx}: expected entry {i}, found key {}", hex::encode(&k))));
            }
            entries.push(Entry::decode(&v).map_err(|e| self.corrupt(format!("entry {i} of tx {tx}: {e}")))?);
            entry_bytes.push(v.to_vec());
        }
        if entries.len() != leaf.entry_count as usize {
            return Err(self.corrupt(format!("tx {tx} records {} entries, {} are stored", leaf.entry_count, entries.len())));
        }
        let provenance = self
            .shared
            .db
            .get_cf(self.cf(keys::CF_PROVENANCE), keys::tx_key(tx))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| self.corrupt(format!("provenance record of tx {tx} is missing")))?;
        Ok(TxRecord { leaf, leaf_bytes, entries, entry_bytes, provenance })
    }

    /// Transactions `first..=last` as stored (leaf bytes, entry bytes, provenance record) with the tree
    /// nodes each one's leaf completed (its leaf `(0, tx - 1)`, then each complete subtree it closed, upward): three range scans and one multi-get, for
    /// auditors reading the log in bulk. Entries are not decoded; the reader re-checks everything.
    pub fn raw_txs(&self, first: u64, last: u64) -> Result<Vec<RawTx>> {
        if first == 0 || last < first {
            return Ok(Vec::new());
        }
        self.check_tx(last)?;
        let range = |cf: &str, lo: Vec<u8>, hi: Vec<u8>| {
            let mut opts = ReadOptions::default();
            opts.set_iterate_lower_bound(lo);
            opts.set_iterate_upper_bound(hi);
            self.shared.db.iterator_cf_opt(self.cf(cf), opts, IteratorMode::Start)
        };
        let n = (last - first + 1) as usize;
        let mut out: Vec<RawTx> = Vec::with_capacity(n);
        for item in range(keys::CF_LOG, keys::tx_key(first).to_vec(), keys::tx_key(last + 1).to_vec()) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            let tx = first + out.len() as u64;
            if k.as_ref() != keys::tx_key(tx) {
                return Err(self.corrupt(format!("log record of tx {tx} is missing")));
            }
            out.push(RawTx { tx, leaf: v.to_vec(), entries: Vec::new(), provenance: Vec::new(), nodes: Vec::new() });
        }
        if out.len() != n {
            return Err(self.corrupt(format!("log records of tx {}..={last} are missing", first + out.len() as u64)));
        }
        for item in range(keys::CF_ENTRIES, keys::entry_key(first, 0).to_vec(), keys::entry_key(last + 1, 0).to_vec()) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            let tx = u64::from_be_bytes(
                k.get(..8).and_then(|p| p.try_into().ok()).ok_or_else(|| self.corrupt("entry key shorter than 8 bytes".into()))?,
            );
            match tx.checked_sub(first).and_then(|i| out.get_mut(i as usize)) {
                Some(r) => r.entries.push(v.to_vec()),
                None => return Err(self.corrupt(format!("entry key {} outside its range", hex::encode(&k)))),
            }
        }
        let mut seen = 0usize;
        for item in range(keys::CF_PROVENANCE, keys::tx_key(first).to_vec(), keys::tx_key(last + 1).to_vec()) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            let tx = first + seen as u64;
            if k.as_ref() != keys::tx_key(tx) {
                return Err(self.corrupt(format!("provenance record of tx {tx} is missing")));
            }
            out[seen].provenance = v.to_vec();
            seen += 1;
        }
        if seen != n {
            return Err(self.corrupt(format!("provenance record of tx {} is missing", first + seen as u64)));
        }
        let mut ids = Vec::with_capacity(n * 2);
        let mut counts = Vec::with_capacity(n);
        for tx in first..=last {
            let index = tx - 1;
            let levels = index.trailing_ones() + 1;
            ids.extend((0..levels).map(|level| merkle::NodeId { level: level as u8, index: index >> level }));
            counts.push(levels as usize);
        }
        let hashes = merkle::NodeReader::nodes(&NodeStore { db: &self.shared.db, path: &self.shared.path, cache: None }, &ids)?;
        let mut at = 0;
        for (r, c) in out.iter_mut().zip(counts) {
            r.nodes = hashes[at..at + c].to_vec();
            at += c;
        }
        Ok(out)
    }

    /// One entry of a committed transaction.
    pub fn entry(&self, tx: u64, index: u32) -> Result<(Entry, Vec<u8>)> {
        self.check_tx(tx)?;
        let bytes = self
            .shared
            .db
            .get_cf(self.cf(keys::CF_ENTRIES), keys::entry_key(tx, index))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| Error::NotFound(format!("entry {index} of tx {tx}")))?;
        let e = Entry::decode(&bytes).map_err(|e| self.corrupt(format!("entry {index} of tx {tx}: {e}")))?;
        Ok((e, bytes))
    }

    /// One entry of a committed transaction, decoded straight from RocksDB's buffer.
    fn entry_pinned(&self, tx: u64, index: u32) -> Result<Entry> {
        self.check_tx(tx)?;
        self.read_entry(tx, index)
    }

    /// An entry as stored, with no check against the published head (the row cache fills with
    /// versions RocksDB holds that may not be published yet).
    fn read_entry(&self, tx: u64, index: u32) -> Result<Entry> {
        let bytes = self
            .shared
            .db
            .get_pinned_cf(self.cf(keys::CF_ENTRIES), keys::entry_key(tx, index))
            .map_err(|e| self.storage(e))?
            .ok_or_else(|| Error::NotFound(format!("entry {index} of tx {tx}")))?;
        Entry::decode(&bytes).map_err(|e| self.corrupt(format!("entry {index} of tx {tx}: {e}")))
    }

    /// The version of `(table, key)` current as of tx `at` (inclusive), deletes included: from the row
    /// cache, or one seek (two when the row has versions after `at`).
    pub fn get_as_of(&self, table: u32, key: &[u8], at: u64) -> Result<Option<Version>> {
        let at = at.min(self.head().size);
        let start = keys::pk_key(table, key, at);
        let prefix = &start[..start.len() - 8];
        let seen = match self.shared.rows.get(prefix, at) {
            latest::Lookup::Hit(v) => return Ok(v),
            latest::Lookup::Miss(seen) => Some(seen),
            latest::Lookup::Off => None,
        };
        // A raw iterator reads the key and value in place (the iterator API copies both out).
        let mut it = self.shared.db.raw_iterator_cf(self.cf(keys::CF_PK));
        if let Some(seen) = seen {
            // The newest version of all, to cache; usually also the answer.
            it.seek(keys::pk_key(table, key, u64::MAX));
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k.starts_with(prefix) => {
                    let newest = self.version_in(k, v, false)?;
                    self.shared.rows.fill(prefix, seen, Some(&newest));
                    if newest.tx <= at {
                        return Ok(Some(newest));
                    }
                }
                (Some(_), Some(_)) => {
                    self.shared.rows.fill(prefix, seen, None);
                    return Ok(None);
                }
                _ => {
                    it.status().map_err(|e| self.storage(e))?;
                    self.shared.rows.fill(prefix, seen, None);
                    return Ok(None);
                }
            }
        }
        it.seek(&start);
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.starts_with(prefix) => Ok(Some(self.version_at(k, v)?)),
            (Some(_), Some(_)) => Ok(None),
            _ => it.status().map(|()| None).map_err(|e| self.storage(e)),
        }
    }

    /// The latest version of `(table, key)`, which may be a delete.
    pub fn get_latest(&self, table: u32, key: &[u8]) -> Result<Option<Version>> {
        self.get_as_of(table, key, u64::MAX)
    }

    /// Every version of `(table, key)`, oldest first.
    pub fn history(&self, table: u32, key: &[u8]) -> Result<Vec<Version>> {
        let size = self.head().size;
        let prefix = keys::pk_prefix(table, key);
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(keys::pk_key(table, key, size));
        opts.set_iterate_upper_bound(keys::pk_key(table, key, 0));
        let mut out = Vec::new();
        for item in self.shared.db.iterator_cf_opt(self.cf(keys::CF_PK), opts, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            debug_assert!(k.starts_with(&prefix));
            out.push(self.version_at(&k, &v)?);
        }
        out.reverse();
        Ok(out)
    }

    fn version_at(&self, k: &[u8], v: &[u8]) -> Result<Version> {
        self.version_in(k, v, true)
    }

    /// The version a `pk` index key and value point at; `published`: refuse a tx past the head.
    fn version_in(&self, k: &[u8], v: &[u8], published: bool) -> Result<Version> {
        let tx = keys::pk_key_tx(k).ok_or_else(|| self.corrupt(format!("pk index key {} is too short", hex::encode(k))))?;
        let index: [u8; 4] =
            v.get(..4).and_then(|s| s.try_into().ok()).ok_or_else(|| self.corrupt(format!("pk index value for tx {tx} is truncated")))?;
        let index = u32::from_be_bytes(index);
        let entry = if published { self.entry_pinned(tx, index) } else { self.read_entry(tx, index) };
        let entry = entry.map_err(|e| match e {
            Error::NotFound(m) => self.corrupt(format!("pk index points at a missing {m}")),
            e => e,
        })?;
        Ok(Version { tx, index, entry })
    }

    fn nodes(&self) -> NodeStore<'_> {
        NodeStore { db: &self.shared.db, path: &self.shared.path, cache: Some(&self.shared.node_cache) }
    }

    fn check_size(&self, size: u64) -> Result<()> {
        let head = self.head().size;
        if size > head {
            return Err(Error::NotFound(format!("tree size {size} (the tree has {head} leaves)")));
        }
        Ok(())
    }

    /// Root hash of the tree of the first `size` transactions.
    pub fn root_at(&self, size: u64) -> Result<Hash> {
        self.check_size(size)?;
        merkle::root(&self.nodes(), size)
    }

    /// Inclusion proof of tx `tx` (leaf `tx - 1`) in the tree of `size` transactions.
    pub fn inclusion_proof(&self, tx: u64, size: u64) -> Result<Vec<Hash>> {
        self.check_size(size)?;
        if tx == 0 || tx > size {
            return Err(Error::InvalidInput(format!("tx {tx} is not in a tree of size {size}")));
        }
        merkle::prove_inclusion(&self.nodes(), tx - 1, size)
    }

    /// Consistency proof from the tree of `old` transactions to the tree of `new`.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>> {
        self.check_size(new)?;
        if old > new {
            return Err(Error::InvalidInput(format!("old size {old} is larger than new size {new}")));
        }
        merkle::prove_consistency(&self.nodes(), old, new)
    }

    /// The proof material of entry `index` of tx `tx`, from memory when it was proven recently.
    pub fn entry_material(&self, tx: u64, index: u32) -> Result<Arc<EntryMaterial>> {
        let cache = &self.shared.material_cache;
        if let Some(m) = cache.get(&(tx, index)) {
            return Ok(m);
        }
        let (leaf, leaf_bytes) = self.leaf(tx)?;
        let (_, entry_bytes) = self.entry(tx, index)?;
        let entry_proof = self.entry_proof(tx, index, leaf.entry_count)?;
        let m = Arc::new(EntryMaterial { leaf, leaf_bytes, entry_bytes, entry_proof });
        cache.insert((tx, index), m.clone());
        Ok(m)
    }

    /// Inclusion proof of entry `index` in the entries tree of tx `tx` (which has `count` entries).
    /// Subtrees of 16 entries or more come from `entry_nodes`; smaller ones (and any node a store
    /// written before `entry_nodes` existed lacks) are hashed from the entries themselves.
    pub fn entry_proof(&self, tx: u64, index: u32, count: u32) -> Result<Vec<Hash>> {
        self.check_tx(tx)?;
        if index >= count {
            return Err(Error::InvalidInput(format!("entry {index} is not in a tx of {count} entries")));
        }
        merkle::prove_inclusion(&EntryNodes { ledger: self, tx }, index as u64, count as u64)
    }

    /// The leaf hashes of tx `tx`'s entries `[start, end)`.
    fn entry_hashes(&self, tx: u64, start: u64, end: u64) -> Result<Vec<Hash>> {
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(keys::entry_key(tx, start as u32).to_vec());
        opts.set_iterate_upper_bound(keys::entry_key(tx, end as u32).to_vec());
        let mut leaves = Vec::with_capacity((end - start) as usize);
        for item in self.shared.db.iterator_cf_opt(self.cf(keys::CF_ENTRIES), opts, IteratorMode::Start) {
            let (_, v) = item.map_err(|e| self.storage(e))?;
            leaves.push(crate::verify::leaf_hash(&v));
        }
        if leaves.len() as u64 != end - start {
            return Err(self.corrupt(format!("tx {tx} lacks entries in {start}..{end}")));
        }
        #[cfg(test)]
        self.shared.entries_hashed.fetch_add(leaves.len() as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(leaves)
    }

    /// Where the ledger's memory and disk go, for the server's metrics (`vouchdb serve
    /// --metrics-listen`) and the soak benchmark.
    pub fn stats(&self) -> Result<LedgerStats> {
        let db = &self.shared.db;
        let prop =
            |cf: &str, p: &str| -> Result<u64> { Ok(db.property_int_value_cf(self.cf(cf), p).map_err(|e| self.storage(e))?.unwrap_or(0)) };
        let sum = |p: &str| -> Result<u64> { keys::ALL_CFS.iter().map(|cf| prop(cf, p)).sum() };
        use std::sync::atomic::Ordering::Relaxed;
        let (row_cache_hits, row_cache_misses, row_cache_rows, row_cache_bytes) = self.shared.rows.stats();
        Ok(LedgerStats {
            // One block cache is shared by every column family.
            block_cache_bytes: prop(keys::CF_LOG, "rocksdb.block-cache-usage")?,
            block_cache_pinned_bytes: prop(keys::CF_LOG, "rocksdb.block-cache-pinned-usage")?,
            memtable_bytes: sum("rocksdb.size-all-mem-tables")?,
            table_readers_bytes: sum("rocksdb.estimate-table-readers-mem")?,
            sst_bytes: sum("rocksdb.total-sst-files-size")?,
            pending_compaction_bytes: sum("rocksdb.estimate-pending-compaction-bytes")?,
            l0_files: sum("rocksdb.num-files-at-level0")?,
            node_cache_entries: self.shared.node_cache.len() as u64,
            material_cache_entries: self.shared.material_cache.len() as u64,
            material_cache_bytes: self.shared.material_cache.weight(),
            batches: self.shared.batches.load(Relaxed),
            batch_bytes: self.shared.batch_bytes.load(Relaxed),
            row_cache_hits,
            row_cache_misses,
            row_cache_rows,
            row_cache_bytes,
        })
    }

    /// Approximate bytes of live SST and memtable data (for the bytes-per-tx benchmark).
    pub fn disk_usage(&self) -> Result<u64> {
        let mut total = 0;
        for cf in keys::ALL_CFS {
            let c = self.cf(cf);
            for p in ["rocksdb.total-sst-files-size", "rocksdb.size-all-mem-tables"] {
                total += self.shared.db.property_int_value_cf(c, p).map_err(|e| self.storage(e))?.unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// Flush memtables to SST files (tests and benchmarks use it to measure on-disk size).
    pub fn flush(&self) -> Result<()> {
        for cf in keys::ALL_CFS {
            self.shared.db.flush_cf(self.cf(cf)).map_err(|e| self.storage(e))?;
        }
        Ok(())
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests;

/// Result of a full scan of the log (`vouchdb check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    pub size: u64,
    pub root: Hash,
}

impl Ledger {
    /// Re-derive everything from the primary data: for every tx, decode its leaf, recompute its entries
    /// root and provenance hash from the stored entries and record, and recompute the tree root from all
    /// leaves (memory stays O(log n)). Compares the result with the stored root and stored leaf nodes.
    pub fn scan(&self, mut progress: impl FnMut(u64, u64)) -> Result<ScanReport> {
        let head = self.head();
        let mut frontier = merkle::Frontier::default();
        let nodes = self.nodes();
        let mut mismatch = None;
        for tx in 1..=head.size {
            let rec = self.get_tx(tx)?;
            if format::entries_root(&rec.entry_bytes) != rec.leaf.entries_root {
                return Err(self.corrupt(format!("tx {tx}: stored entries do not hash to the entries root in its leaf")));
            }
            if format::provenance_hash(&rec.provenance) != rec.leaf.provenance_hash {
                return Err(self.corrupt(format!("tx {tx}: provenance record does not hash to the hash in its leaf")));
            }
            let leaf = crate::verify::leaf_hash(&rec.leaf_bytes);
            frontier.append(leaf, |id, h| {
                if mismatch.is_none() && id.level == 0 {
                    match merkle::NodeReader::nodes(&nodes, &[id]) {
                        Ok(v) if v[0] == *h => {}
                        Ok(_) => mismatch = Some(format!("stored merkle leaf of tx {tx} differs from the hash of its log record")),
                        Err(e) => mismatch = Some(e.to_string()),
                    }
                }
            });
            if let Some(m) = mismatch.take() {
                return Err(self.corrupt(m));
            }
            progress(tx, head.size);
        }
        let root = frontier.root();
        if root != head.root {
            return Err(self.corrupt(format!(
                "the root recomputed from all {} log records is {} but the stored root is {}",
                head.size,
                hex::encode(root),
                hex::encode(head.root)
            )));
        }
        Ok(ScanReport { size: head.size, root })
    }
}

impl Ledger {
    /// The live (not deleted) version of every key of `table` as of tx `snapshot`, in key order:
    /// one pass over the table's primary-key index.
    pub fn scan_table(&self, table: u32, snapshot: u64, limit: Option<usize>) -> Result<Vec<(Vec<u8>, Version)>> {
        self.scan_table_range(table, snapshot, None, None, limit)
    }

    /// Like `scan_table`, for the keys that start at or after `lo` and do not sort after `hi` (inclusive,
    /// as key prefixes: with an order-preserving composite key, bounds on its first column).
    pub fn scan_table_range(
        &self,
        table: u32,
        snapshot: u64,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        limit: Option<usize>,
    ) -> Result<Vec<(Vec<u8>, Version)>> {
        let snapshot = snapshot.min(self.head().size);
        let mut out = Vec::new();
        self.walk_table(table, lo, hi, |prefix, tx, v| {
            if tx > snapshot {
                return Ok(Walk::NextVersion);
            }
            if v.get(4).is_some_and(|f| f & FLAG_DELETE == 0) {
                let key = keys::unescape_pk_prefix(prefix).ok_or_else(|| self.corrupt("pk index key is not a valid escaped key".into()))?;
                out.push((key, self.version_at(&keys::pk_key_from_prefix(prefix, tx), v)?));
                if limit.is_some_and(|l| out.len() >= l) {
                    return Ok(Walk::Stop);
                }
            }
            Ok(Walk::NextKey)
        })?;
        Ok(out)
    }

    /// Every key `table` ever had, deleted or not (for id allocation and audits).
    pub fn scan_table_all_keys(&self, table: u32) -> Result<Vec<(Vec<u8>, u64)>> {
        let mut out = Vec::new();
        self.walk_table(table, None, None, |prefix, tx, _| {
            let key = keys::unescape_pk_prefix(prefix).ok_or_else(|| self.corrupt("pk index key is not a valid escaped key".into()))?;
            out.push((key, tx));
            Ok(Walk::NextKey)
        })?;
        Ok(out)
    }

    fn walk_table(
        &self,
        table: u32,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        mut f: impl FnMut(&[u8], u64, &[u8]) -> Result<Walk>,
    ) -> Result<()> {
        let mut opts = ReadOptions::default();
        let bound = |key: &[u8]| {
            let mut b = table.to_be_bytes().to_vec();
            b.extend(keys::escape_key_bytes(key));
            b
        };
        opts.set_iterate_lower_bound(lo.map(bound).unwrap_or_else(|| table.to_be_bytes().to_vec()));
        match hi {
            // Everything that starts with `hi` (its escaped bytes are followed by a byte below 0xFF).
            Some(hi) => {
                let mut u = bound(hi);
                u.push(0xFF);
                opts.set_iterate_upper_bound(u);
            }
            None => {
                if let Some(next) = table.checked_add(1) {
                    opts.set_iterate_upper_bound(next.to_be_bytes().to_vec());
                }
            }
        }
        opts.set_total_order_seek(true);
        let mut done_prefix: Option<Vec<u8>> = None;
        for item in self.shared.db.iterator_cf_opt(self.cf(keys::CF_PK), opts, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            if k.len() < 14 {
                return Err(self.corrupt(format!("pk index key {} is too short", hex::encode(&k))));
            }
            let prefix = &k[..k.len() - 8];
            if done_prefix.as_deref() == Some(prefix) {
                continue;
            }
            let tx = keys::pk_key_tx(&k).expect("length checked above");
            match f(prefix, tx, &v)? {
                Walk::NextVersion => {}
                Walk::NextKey => done_prefix = Some(prefix.to_vec()),
                Walk::Stop => break,
            }
        }
        Ok(())
    }
}

enum Walk {
    NextVersion,
    NextKey,
    Stop,
}

impl Ledger {
    /// The newest tx committed at or before `time_us` (0 if none): a binary search over the leaves,
    /// whose commit times never decrease along the log.
    pub fn tx_at_time(&self, time_us: u64) -> Result<u64> {
        let (mut lo, mut hi) = (0u64, self.head().size);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if self.leaf(mid)?.0.commit_time_us <= time_us {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }
}

impl Ledger {
    /// Secondary-index versions in `[lower, upper)` as of tx `snapshot`: for every distinct index key
    /// (the caller's key without the tx suffix), the newest version at or before the snapshot.
    pub fn scan_index(&self, lower: &[u8], upper: &[u8], snapshot: u64) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let snapshot = snapshot.min(self.head().size);
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(lower.to_vec());
        opts.set_iterate_upper_bound(upper.to_vec());
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut done: Option<Vec<u8>> = None;
        for item in self.shared.db.iterator_cf_opt(self.cf(keys::CF_SEC), opts, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| self.storage(e))?;
            if k.len() < 8 {
                return Err(self.corrupt(format!("index key {} is too short", hex::encode(&k))));
            }
            let (prefix, tail) = k.split_at(k.len() - 8);
            if done.as_deref() == Some(prefix) {
                continue;
            }
            let tx = !u64::from_be_bytes(tail.try_into().expect("split at 8 bytes"));
            if tx > snapshot {
                continue;
            }
            done = Some(prefix.to_vec());
            out.push((prefix.to_vec(), v.to_vec()));
        }
        Ok(out)
    }
}

/// The entries tree of one transaction as a `NodeReader`: stored upper subtrees, hashed lower ones.
struct EntryNodes<'a> {
    ledger: &'a Ledger,
    tx: u64,
}

impl merkle::NodeReader for EntryNodes<'_> {
    type Error = Error;
    fn nodes(&self, ids: &[merkle::NodeId]) -> Result<Vec<Hash>> {
        let l = self.ledger;
        let stored: Vec<usize> = (0..ids.len()).filter(|&i| ids[i].level >= keys::ENTRY_NODE_MIN_LEVEL).collect();
        let ks: Vec<[u8; 13]> = stored.iter().map(|&i| keys::entry_node_key(self.tx, ids[i])).collect();
        let got = l.shared.db.batched_multi_get_cf(l.cf(keys::CF_ENTRY_NODES), &ks, false);
        let mut out = vec![None; ids.len()];
        for (&i, v) in stored.iter().zip(got) {
            if let Some(v) = v.map_err(|e| l.storage(e))? {
                let h: Hash =
                    v.as_ref().try_into().map_err(|_| l.corrupt(format!("entry node of tx {} has {} bytes", self.tx, v.len())))?;
                out[i] = Some(h);
            }
        }
        // Everything not stored is hashed from the entries, each run of adjacent missing subtrees read
        // with one iterator (for one proof: the aligned block of 16 entries around the entry, and the
        // small subtrees at the right edge of a transaction whose size is not a multiple of 16; never
        // the span between them, which can be the whole transaction).
        let mut runs: Vec<(u64, u64)> =
            ids.iter().zip(&out).filter(|(_, h)| h.is_none()).map(|(id, _)| (id.index << id.level, (id.index + 1) << id.level)).collect();
        runs.sort_unstable();
        let mut merged: Vec<(u64, u64, Vec<Hash>)> = Vec::new();
        for (a, b) in runs {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b, Vec::new())),
            }
        }
        for run in &mut merged {
            run.2 = l.entry_hashes(self.tx, run.0, run.1)?;
        }
        Ok(ids
            .iter()
            .zip(out)
            .map(|(id, h)| {
                h.unwrap_or_else(|| {
                    let (a, b) = (id.index << id.level, (id.index + 1) << id.level);
                    let run = merged.iter().find(|r| r.0 <= a && b <= r.1).expect("every missing subtree lies in a run read above");
                    merkle::reference::root(&run.2[(a - run.0) as usize..(b - run.0) as usize])
                })
            })
            .collect())
    }
}
