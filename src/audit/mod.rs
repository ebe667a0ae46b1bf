//! The auditor (`vouchdb audit`): holds a pinned key and its own copy of the tree's right edge, and
//! each round checks everything the server committed since the last round:
//!
//! 1. the new checkpoint's signature with the pinned key (never a key the server hands over) and its
//!    origin;
//! 2. no rollback (a smaller tree) and no fork (another root at the audited size, or a consistency
//!    proof from the audited tree that does not verify);
//! 3. every new transaction, downloaded with `vouch_txs`: its entries hash to its leaf's entries root,
//!    its provenance record to its provenance hash, its leaf says its own tx id; each leaf hash is
//!    appended to the auditor's frontier, every tree node that append completes must equal the node the
//!    server stores (so every stored node, which proofs are made of, is checked once), and the
//!    frontier's root must equal the signed root.
//!
//! When the rebuilt root differs, the auditor names the first transaction whose recomputed leaf is not
//! in the server's tree (an inclusion proof per transaction of the round). The state (audited size,
//! root, frontier, checkpoint) is saved atomically after a round that passed, never after one that failed.

pub mod replay;

use crate::client::proof::{check_tx_contents, decode_leaf, parse_hash, parse_hash_array, parse_hex, parse_hex_array};
use crate::client::{check_consistency, col, fetch_checkpoint, simple_rows, ClientError};
use crate::merkle::Frontier;
use crate::verify::checkpoint::parse_public_key_pem;
use crate::verify::{inclusion, leaf_hash, Hash};
use p256::ecdsa::VerifyingKey;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_postgres::Client;

/// Transactions fetched per `vouch_txs` call.
pub const DEFAULT_PAGE: u64 = 20_000;
/// Most transactions the server returns per `vouch_txs` call.
pub const MAX_PAGE: u64 = crate::sql::engine::proofs::MAX_TXS_PER_CALL as u64;

/// What the auditor has verified so far; saved after every round that passed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditState {
    pub version: u32,
    pub origin: String,
    pub tree_size: u64,
    /// Root of the audited tree, hex.
    pub root: String,
    /// The audited tree's frontier (complete subtree roots, by decreasing height), hex.
    pub frontier: Vec<String>,
    pub checkpoint: String,
    pub signature: String,
}

impl AuditState {
    pub fn load(path: &Path) -> Result<Option<AuditState>, ClientError> {
        match std::fs::read(path) {
            Ok(b) => {
                let s: AuditState = serde_json::from_slice(&b)
                    .map_err(|e| ClientError::State(format!("{} is not an audit state file: {e}", path.display())))?;
                if s.version != 1 {
                    return Err(ClientError::State(format!("{}: audit state version {} is not supported", path.display(), s.version)));
                }
                Ok(Some(s))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ClientError::State(format!("cannot read {}: {e}", path.display()))),
        }
    }

    fn save(&self, path: &Path) -> Result<(), ClientError> {
        crate::client::state::write_atomically(path, &serde_json::to_vec_pretty(self).expect("the state always serialises"))
    }

    fn frontier(&self) -> Result<Frontier, ClientError> {
        let hashes = self.frontier.iter().map(|h| parse_hash("saved frontier", h)).collect::<Result<Vec<_>, _>>()?;
        Frontier::from_hashes(self.tree_size, &hashes)
            .ok_or_else(|| ClientError::State(format!("saved frontier has {} hashes, wrong for size {}", hashes.len(), self.tree_size)))
    }
}

/// The auditor's Prometheus metrics.
#[derive(Default, Clone)]
pub struct AuditMetrics {
    pub tree_size: Gauge,
    pub transactions: Counter,
    pub rounds: Counter,
    pub failures: Counter,
    pub healthy: Gauge,
    pub last_success: Gauge<f64, AtomicU64>,
}

impl AuditMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register("vouchdb_audit_tree_size", "Tree size the auditor has verified", self.tree_size.clone());
        r.register("vouchdb_audit_transactions_verified", "Transactions downloaded and re-hashed", self.transactions.clone());
        r.register("vouchdb_audit_rounds", "Audit rounds that passed", self.rounds.clone());
        r.register("vouchdb_audit_failures", "Audit rounds that failed (integrity or connection)", self.failures.clone());
        r.register("vouchdb_audit_healthy", "1 if the last round passed, 0 otherwise", self.healthy.clone());
        r.register("vouchdb_audit_last_success_timestamp_seconds", "Unix time of the last round that passed", self.last_success.clone());
    }
}

/// The outcome of one round that passed.
#[derive(Debug, Clone)]
pub struct RoundReport {
    pub from: u64,
    pub to: u64,
    pub elapsed: Duration,
}

/// An auditor: pinned key, state file, metrics.
pub struct Auditor {
    pub key: VerifyingKey,
    pub state_path: PathBuf,
    pub state: Option<AuditState>,
    pub page: u64,
    pub metrics: AuditMetrics,
    /// Called with (done, total) transactions of the current round.
    pub progress: Option<Box<dyn Fn(u64, u64) + Send + Sync>>,
}

impl Auditor {
    pub fn new(public_key_pem: &str, state_path: PathBuf) -> Result<Auditor, ClientError> {
        let key = parse_public_key_pem(public_key_pem).map_err(|e| ClientError::State(format!("--public-key: {e}")))?;
        let state = AuditState::load(&state_path)?;
        if let Some(s) = &state {
            s.frontier()?;
        }
        Ok(Auditor { key, state_path, state, page: DEFAULT_PAGE, metrics: AuditMetrics::default(), progress: None })
    }

    /// One audit round against a connected server.
    /// `readers` are the connections transactions are downloaded over (one or more; the first is also
    /// used for checkpoints and proofs).
    pub async fn round(&mut self, readers: &[Arc<Client>]) -> Result<RoundReport, ClientError> {
        let client: &Client = readers.first().ok_or_else(|| ClientError::Connection("no connection".into()))?;
        let start = Instant::now();
        let (signed, _served_key) = fetch_checkpoint(client).await?;
        let origin = match &self.state {
            Some(s) => s.origin.clone(),
            None => signed.body.lines().next().unwrap_or_default().to_string(),
        };
        let cp = signed.verify(&self.key, &origin)?;
        let prev = self.state.clone().unwrap_or(AuditState {
            version: 1,
            origin: origin.clone(),
            root: hex::encode(crate::verify::empty_root()),
            ..Default::default()
        });
        let prev_root = parse_hash("audited root", &prev.root)?;
        check_consistency(client, prev.tree_size, &prev_root, &cp).await?;
        let mut frontier = prev.frontier()?;
        let from = prev.tree_size + 1;
        let total = cp.size.saturating_sub(prev.tree_size);
        let mut leaves: Vec<Hash> = Vec::new();
        let keep_leaves = total <= 1_000_000;
        let page = self.page.max(1);
        // Pages are fetched by spawned tasks, round-robin over the connections, up to two per
        // connection ahead of the page being checked: the server reads and encodes while this task
        // hashes.
        let depth = 2 * readers.len();
        let mut inflight = std::collections::VecDeque::new();
        let mut next_fetch = from;
        let mut spawned = 0usize;
        let mut next = from;
        while next <= cp.size {
            while inflight.len() < depth && next_fetch <= cp.size {
                let (first, last) = (next_fetch, (next_fetch + page - 1).min(cp.size));
                let c = readers[spawned % readers.len()].clone();
                inflight.push_back(tokio::spawn(async move { fetch_page(&c, first, last).await }));
                spawned += 1;
                next_fetch = last + 1;
            }
            let last = (next + page - 1).min(cp.size);
            let rows = inflight
                .pop_front()
                .expect("a page is in flight for every unchecked range")
                .await
                .map_err(|e| ClientError::Connection(format!("page fetch task failed: {e}")))??;
            check_page(rows, next, last, &mut frontier, keep_leaves.then_some(&mut leaves))?;
            self.metrics.transactions.inc_by(last - next + 1);
            if let Some(p) = &self.progress {
                p(last - from + 1, total);
            }
            next = last + 1;
        }
        if frontier.root() != cp.root {
            let culprit = if keep_leaves { first_unproven(client, from, &leaves, &cp).await? } else { None };
            return Err(match culprit {
                Some((tx, err)) => ClientError::Tampered {
                    tx,
                    what: format!("its leaf, rebuilt from the log, is not in the signed tree of size {}: {err}", cp.size),
                },
                None => ClientError::Fork(format!(
                    "the tree rebuilt from transactions {from}..={} has root {}, the signed root is {}",
                    cp.size,
                    hex::encode(frontier.root()),
                    hex::encode(cp.root)
                )),
            });
        }
        let state = AuditState {
            version: 1,
            origin,
            tree_size: cp.size,
            root: hex::encode(cp.root),
            frontier: frontier.hashes().iter().map(hex::encode).collect(),
            checkpoint: signed.body.clone(),
            signature: signed.signature.clone(),
        };
        state.save(&self.state_path)?;
        self.state = Some(state);
        self.metrics.tree_size.set(cp.size as i64);
        self.metrics.rounds.inc();
        self.metrics.healthy.set(1);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.metrics.last_success.set(now.as_secs_f64());
        Ok(RoundReport { from, to: cp.size, elapsed: start.elapsed() })
    }
}

type TxRow = (u64, Vec<u8>, Vec<Vec<u8>>, Vec<u8>, Vec<Hash>);

/// Check one page of transactions `first..=last` and append their leaves to the frontier.
fn check_page(
    rows: Vec<TxRow>,
    first: u64,
    last: u64,
    frontier: &mut Frontier,
    mut leaves: Option<&mut Vec<Hash>>,
) -> Result<(), ClientError> {
    if rows.len() as u64 != last - first + 1 {
        return Err(ClientError::Malformed(format!("vouch_txs({first}, {last}) returned {} transactions", rows.len())));
    }
    for (i, (tx, leaf_bytes, entries, provenance, stored)) in rows.into_iter().enumerate() {
        let want = first + i as u64;
        if tx != want {
            return Err(ClientError::Malformed(format!("expected tx {want}, the server sent tx {tx}")));
        }
        let leaf = decode_leaf(tx, &leaf_bytes)?;
        check_tx_contents(&leaf, &entries, &provenance)?;
        let h = leaf_hash(&leaf_bytes);
        let mut mine = Vec::with_capacity(stored.len());
        frontier.append(h, |id, node| mine.push((id, *node)));
        if mine.len() != stored.len() {
            return Err(ClientError::Malformed(format!(
                "tx {tx}: the server sent {} tree nodes, its leaf completes {}",
                stored.len(),
                mine.len()
            )));
        }
        if let Some(((id, node), s)) = mine.iter().zip(&stored).find(|((_, n), s)| n != *s) {
            return Err(ClientError::Tampered {
                tx,
                what: format!(
                    "the server's stored tree node (level {}, index {}) is {}, rebuilt from the log it is {}",
                    id.level,
                    id.index,
                    hex::encode(s),
                    hex::encode(node)
                ),
            });
        }
        if let Some(l) = leaves.as_deref_mut() {
            l.push(h);
        }
    }
    Ok(())
}

pub(crate) async fn fetch_page(client: &Client, first: u64, last: u64) -> Result<Vec<TxRow>, ClientError> {
    {
        let rows = simple_rows(client, &format!("SELECT tx, leaf, entries, provenance, nodes FROM vouch_txs({first}, {last})")).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    col(r, "tx")?.parse().map_err(|_| ClientError::Malformed("tx is not a number".into()))?,
                    parse_hex("leaf", col(r, "leaf")?)?,
                    parse_hex_array("entries", col(r, "entries")?)?,
                    parse_hex("provenance", col(r, "provenance")?)?,
                    parse_hash_array("nodes", col(r, "nodes")?)?,
                ))
            })
            .collect()
    }
}

/// The first transaction of the round whose recomputed leaf hash is not proven in the signed tree.
async fn first_unproven(
    client: &Client,
    from: u64,
    leaves: &[Hash],
    cp: &crate::verify::checkpoint::Checkpoint,
) -> Result<Option<(u64, crate::verify::VerifyError)>, ClientError> {
    for (i, h) in leaves.iter().enumerate() {
        let tx = from + i as u64;
        let rows = simple_rows(client, &format!("SELECT proof FROM inclusion_proof({tx}, {})", cp.size)).await?;
        let row = rows.first().ok_or_else(|| ClientError::Malformed("inclusion_proof() returned no row".into()))?;
        let proof = parse_hash_array("proof", col(row, "proof")?)?;
        if let Err(e) = inclusion(tx - 1, cp.size, h, &proof, &cp.root) {
            return Ok(Some((tx, e)));
        }
    }
    Ok(None)
}

/// A registry holding the auditor's metrics, for `crate::metrics::serve`.
pub fn registry(m: &AuditMetrics) -> Arc<Mutex<Registry>> {
    let mut r = Registry::default();
    m.register(&mut r);
    Arc::new(Mutex::new(r))
}
