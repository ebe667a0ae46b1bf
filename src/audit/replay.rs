//! The replay audit (`vouchdb audit --replay`, docs/PROVENANCE.md): every transaction of a log, from
//! genesis, replayed in a scratch store by the SQL engine (`sql::engine::replay`). Each one's contents
//! are first checked against its leaf (entries root, provenance hash) and its leaf folded into a
//! Merkle frontier, so the replay works on exactly what the tree commits to; the caller compares the
//! final root with a stored or signed one.

use crate::ledger::format::{Entry, LeafData};
use crate::ledger::{Ledger, Options};
use crate::merkle::Frontier;
use crate::sql::engine::replay::ParseCache;
use crate::sql::Engine;
use crate::verify::{leaf_hash, Hash};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a replay found.
#[derive(Debug, Default)]
pub struct ReplayReport {
    pub txs: u64,
    /// Violating transactions: tx id and every reason.
    pub violations: Vec<(u64, Vec<String>)>,
    /// The root of the replayed log (its leaves, as checked against their contents).
    pub root: Hash,
    pub elapsed: Duration,
}

/// A scratch store and the engine over it; removed when dropped.
pub struct Replayer {
    engine: Engine,
    dir: PathBuf,
    cache: ParseCache,
    frontier: Frontier,
    pub report: ReplayReport,
    started: Instant,
}

impl Drop for Replayer {
    fn drop(&mut self) {
        self.engine.ledger.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Replayer {
    /// A replayer whose scratch store lives in a new directory under `parent` (the system's
    /// temporary directory when None).
    pub fn new(parent: Option<&std::path::Path>) -> Result<Replayer, String> {
        let parent = parent.map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let dir = parent.join(format!("vouchdb-replay-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("scratch directory {}: {e}", dir.display()))?;
        let ledger =
            Ledger::open(dir.join("store"), Options { sync: false, inline: true, ..Options::default() }).map_err(|e| e.to_string())?;
        let key = crate::signing::generate_key(&dir.join("scratch.key")).map_err(|e| e.to_string())?;
        let origin = crate::signing::CheckpointSigner::default_origin(&key);
        let signer = crate::signing::CheckpointSigner::new(key, origin, dir.join("scratch.key")).map_err(|e| e.to_string())?;
        let engine = Engine::new(Arc::new(ledger), Arc::new(signer)).map_err(|e| e.to_string())?;
        Ok(Replayer {
            engine,
            dir,
            cache: ParseCache::default(),
            frontier: Frontier::default(),
            report: ReplayReport::default(),
            started: Instant::now(),
        })
    }

    /// Check transaction `tx` (the next one) and replay it. Fails only when the replay cannot go on
    /// (a transaction out of order, a scratch-store error); violations go to the report.
    pub async fn next(&mut self, tx: u64, leaf_bytes: &[u8], entry_bytes: &[Vec<u8>], provenance: &[u8]) -> Result<(), String> {
        let leaf = LeafData::decode(leaf_bytes).map_err(|e| format!("tx {tx}: leaf: {e}"))?;
        if leaf.tx != tx {
            return Err(format!("tx {tx}: its leaf says tx {}", leaf.tx));
        }
        crate::client::proof::check_tx_contents(&leaf, entry_bytes, provenance).map_err(|e| e.to_string())?;
        let entries = entry_bytes
            .iter()
            .enumerate()
            .map(|(i, b)| Entry::decode(b).map_err(|e| format!("tx {tx}: entry {i}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        self.frontier.append(leaf_hash(leaf_bytes), |_, _| {});
        let v = self
            .engine
            .replay_tx(tx, &leaf, &entries, provenance, &mut self.cache)
            .await
            .map_err(|e| format!("tx {tx}: replay stopped: {}", e.message))?;
        if !v.is_empty() {
            tracing::warn!(tx, reasons = ?v, "replay: violation");
            self.report.violations.push((tx, v));
        }
        self.report.txs = tx;
        Ok(())
    }

    pub fn finish(mut self) -> ReplayReport {
        let mut report = std::mem::take(&mut self.report);
        report.root = self.frontier.root();
        report.elapsed = self.started.elapsed();
        report
    }
}

/// Replay every transaction of a store (offline, against a copy of a data directory: the server
/// must not be running on it). The store is first checked as `vouchdb check` does.
pub async fn replay_store(
    source: &Ledger,
    scratch_parent: Option<&std::path::Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, String> {
    let head = source.head();
    let mut r = Replayer::new(scratch_parent)?;
    const PAGE: u64 = 1024;
    let mut first = 1;
    while first <= head.size {
        let last = (first + PAGE - 1).min(head.size);
        for t in source.raw_txs(first, last).map_err(|e| e.to_string())? {
            r.next(t.tx, &t.leaf, &t.entries, &t.provenance).await?;
        }
        progress(last, head.size);
        first = last + 1;
    }
    let report = r.finish();
    if report.root != head.root {
        return Err(format!(
            "the log's leaves hash to root {}, the store records {}: run `vouchdb check`",
            crate::verify::to_hex(report.root),
            crate::verify::to_hex(head.root)
        ));
    }
    Ok(report)
}

/// Replay every transaction of a live server's log over pgwire (`vouch_txs`, which needs a
/// superuser): the checkpoint is verified with the pinned key, every transaction's contents against
/// its leaf, and the leaves' root against the signed root, so the replay runs on exactly the history
/// the server signed.
pub async fn replay_server(
    client: &tokio_postgres::Client,
    public_key_pem: &str,
    scratch_parent: Option<&std::path::Path>,
    mut progress: impl FnMut(u64, u64),
) -> Result<ReplayReport, String> {
    let key = crate::verify::checkpoint::parse_public_key_pem(public_key_pem).map_err(|e| e.to_string())?;
    let (signed, _) = crate::client::fetch_checkpoint(client).await.map_err(|e| e.to_string())?;
    let origin = signed.body.lines().next().unwrap_or_default().to_string();
    let cp = signed.verify(&key, &origin).map_err(|e| e.to_string())?;
    let mut r = Replayer::new(scratch_parent)?;
    const PAGE: u64 = 2048;
    let mut first = 1;
    while first <= cp.size {
        let last = (first + PAGE - 1).min(cp.size);
        let rows = super::fetch_page(client, first, last).await.map_err(|e| e.to_string())?;
        if rows.len() as u64 != last + 1 - first {
            return Err(format!("asked for transactions {first}..={last}, the server returned {}", rows.len()));
        }
        for (tx, leaf, entries, provenance, _) in rows {
            r.next(tx, &leaf, &entries, &provenance).await?;
        }
        progress(last, cp.size);
        first = last + 1;
    }
    let report = r.finish();
    if report.root != cp.root {
        return Err(format!(
            "the replayed leaves hash to root {}, the checkpoint signed for tree size {} has {}",
            crate::verify::to_hex(report.root),
            cp.size,
            crate::verify::to_hex(cp.root)
        ));
    }
    Ok(report)
}
