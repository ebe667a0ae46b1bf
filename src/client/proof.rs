//! Proof material as the SQL proof functions return it, and its verification against a pinned key.
//! Pure: no I/O, so the trusted-state client, `vouchdb verify`, the auditor, the gateway and offline
//! bundles all run exactly these checks.

use super::ClientError;
use crate::ledger::format::{entries_root, provenance_hash, Entry, LeafData};
use crate::verify::checkpoint::{verify_signature, Checkpoint};
use crate::verify::{inclusion, leaf_hash, Hash};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::VerifyingKey;

/// A checkpoint as the server hands it out: the body and its base64 DER signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedBody {
    pub body: String,
    pub signature: String,
}

impl SignedBody {
    /// Check the signature with the pinned key and the origin, then parse the body.
    pub fn verify(&self, key: &VerifyingKey, origin: &str) -> Result<Checkpoint, ClientError> {
        // ECDSA verification costs more than all the hashing of a proof; the same checkpoint comes with
        // every proof until the log grows, so the last (body, signature, key) that verified is remembered.
        thread_local! {
            static LAST_GOOD: std::cell::RefCell<Option<(SignedBody, VerifyingKey)>> = const { std::cell::RefCell::new(None) };
        }
        let known = LAST_GOOD.with(|l| l.borrow().as_ref().is_some_and(|(b, k)| b == self && k == key));
        if !known {
            let sig = B64.decode(self.signature.trim()).map_err(|_| ClientError::Malformed("checkpoint signature is not base64".into()))?;
            verify_signature(self.body.as_bytes(), &sig, key).map_err(ClientError::Signature)?;
            LAST_GOOD.with(|l| *l.borrow_mut() = Some((self.clone(), *key)));
        }
        let cp = Checkpoint::parse(&self.body).map_err(|e| ClientError::Malformed(e.to_string()))?;
        if cp.origin != origin {
            return Err(ClientError::Origin { expected: origin.to_string(), got: cp.origin });
        }
        Ok(cp)
    }
}

/// What `verified_get` returns for one row version, decoded from its text columns.
#[derive(Debug, Clone)]
pub struct RowProof {
    pub tx: u64,
    pub entry_index: u32,
    pub entry: Vec<u8>,
    pub entry_proof: Vec<Hash>,
    pub leaf: Vec<u8>,
    pub tx_proof: Vec<Hash>,
    pub tree_size: u64,
    pub root: Hash,
    pub checkpoint: SignedBody,
}

/// What `verified_tx` returns: a whole transaction and its inclusion.
#[derive(Debug, Clone)]
pub struct TxProof {
    pub tx: u64,
    pub leaf: Vec<u8>,
    pub entries: Vec<Vec<u8>>,
    pub provenance: Vec<u8>,
    pub tx_proof: Vec<Hash>,
    pub tree_size: u64,
    pub root: Hash,
    pub checkpoint: SignedBody,
}

/// A verified row version: everything here was checked against the signed checkpoint.
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    pub tx: u64,
    pub leaf: LeafData,
    pub entry: Entry,
    pub checkpoint: Checkpoint,
}

/// Parse lowercase or uppercase hex of any length.
pub fn parse_hex(what: &str, s: &str) -> Result<Vec<u8>, ClientError> {
    crate::verify::from_hex(s.trim()).ok_or_else(|| ClientError::Malformed(format!("{what} is not hex")))
}

/// Parse one 32-byte hash in hex.
pub fn parse_hash(what: &str, s: &str) -> Result<Hash, ClientError> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut h).map_err(|_| ClientError::Malformed(format!("{what} is not a 32-byte hash in hex")))?;
    Ok(h)
}

/// The elements of a `text[]` of hex strings as PostgreSQL writes it (`{a,b}`, `{}`; hex needs no quotes).
fn array_items<'a>(what: &str, s: &'a str) -> Result<impl Iterator<Item = &'a str>, ClientError> {
    let inner = s
        .trim()
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| ClientError::Malformed(format!("{what} is not an array")))?;
    Ok(inner.split(',').filter(move |_| !inner.is_empty()))
}

/// Parse a `text[]` of hex hashes.
pub fn parse_hash_array(what: &str, s: &str) -> Result<Vec<Hash>, ClientError> {
    array_items(what, s)?.map(|h| parse_hash(what, h)).collect()
}

/// Parse a `text[]` of hex byte strings.
pub fn parse_hex_array(what: &str, s: &str) -> Result<Vec<Vec<u8>>, ClientError> {
    array_items(what, s)?.map(|h| parse_hex(what, h)).collect()
}

/// The proof columns `verified_get` returns after the row's columns, in order (the SQL contract; the
/// server's `sql/proofs.rs` gives their types).
pub const ROW_PROOF_COLUMNS: [&str; 11] = [
    "_tx",
    "_commit_ts",
    "_entry_index",
    "_entry",
    "_entry_proof",
    "_leaf",
    "_tx_proof",
    "_tree_size",
    "_root",
    "_checkpoint",
    "_signature",
];

/// The columns `verified_deref` returns after the target's `ROW_PROOF_COLUMNS`: the proof of the
/// reference entry, against the same `_tree_size`, `_root` and signed checkpoint.
pub const REF_PROOF_COLUMNS: [&str; 6] = ["_ref_tx", "_ref_entry_index", "_ref_entry", "_ref_entry_proof", "_ref_leaf", "_ref_tx_proof"];

impl RowProof {
    /// The reference entry's proof of a `verified_deref` row (its `_ref_…` columns and the shared tree
    /// size, root and checkpoint).
    pub fn reference_from_columns(get: impl Fn(&str) -> Result<String, ClientError>) -> Result<RowProof, ClientError> {
        let shared = ["_tree_size", "_root", "_checkpoint", "_signature"];
        RowProof::from_columns(|n| if shared.contains(&n) { get(n) } else { get(&format!("_ref{n}")) })
    }

    /// Build from a `verified_get` row, given each proof column's text by name.
    pub fn from_columns(get: impl Fn(&str) -> Result<String, ClientError>) -> Result<RowProof, ClientError> {
        let num =
            |n: &str| -> Result<u64, ClientError> { get(n)?.parse().map_err(|_| ClientError::Malformed(format!("{n} is not a number"))) };
        Ok(RowProof {
            tx: num("_tx")?,
            entry_index: u32::try_from(num("_entry_index")?).map_err(|_| ClientError::Malformed("_entry_index is out of range".into()))?,
            entry: parse_hex("_entry", &get("_entry")?)?,
            entry_proof: parse_hash_array("_entry_proof", &get("_entry_proof")?)?,
            leaf: parse_hex("_leaf", &get("_leaf")?)?,
            tx_proof: parse_hash_array("_tx_proof", &get("_tx_proof")?)?,
            tree_size: num("_tree_size")?,
            root: parse_hash("_root", &get("_root")?)?,
            checkpoint: SignedBody { body: get("_checkpoint")?, signature: get("_signature")? },
        })
    }
}

/// Decode a transaction's leaf data and check it is the leaf of `tx`.
pub(crate) fn decode_leaf(tx: u64, bytes: &[u8]) -> Result<LeafData, ClientError> {
    let leaf = LeafData::decode(bytes).map_err(|e| ClientError::Tampered { tx, what: format!("its leaf data does not decode: {e}") })?;
    if leaf.tx != tx {
        return Err(ClientError::Tampered { tx, what: format!("its leaf data says tx {}", leaf.tx) });
    }
    Ok(leaf)
}

/// The checks shared by rows and transactions: the checkpoint signature and that it is the tree the
/// proof is for, then the leaf's inclusion in that tree.
fn verify_leaf_in_checkpoint(
    tx: u64,
    leaf_bytes: &[u8],
    tx_proof: &[Hash],
    tree_size: u64,
    root: &Hash,
    checkpoint: &SignedBody,
    (key, origin): (&VerifyingKey, &str),
) -> Result<(LeafData, Checkpoint), ClientError> {
    let cp = checkpoint.verify(key, origin)?;
    if cp.size != tree_size || &cp.root != root {
        return Err(ClientError::Malformed(format!(
            "the proof is for tree size {tree_size} but the signed checkpoint is for size {} with another root",
            cp.size
        )));
    }
    let leaf = decode_leaf(tx, leaf_bytes)?;
    if tx == 0 || tx > tree_size {
        return Err(ClientError::Malformed(format!("tx {tx} is not inside a tree of size {tree_size}")));
    }
    inclusion(tx - 1, tree_size, &leaf_hash(leaf_bytes), tx_proof, root).map_err(|e| ClientError::TxInclusion {
        tx,
        size: tree_size,
        err: e,
    })?;
    Ok((leaf, cp))
}

impl RowProof {
    /// Verify the row version: the checkpoint's signature, the tx's inclusion in the signed tree, the
    /// entry's inclusion in the tx, and that the entry is for `key` (the encoded primary key).
    pub fn verify(&self, key: &VerifyingKey, origin: &str, expected_key: Option<&[u8]>) -> Result<VerifiedEntry, ClientError> {
        let tx = self.tx;
        let (leaf, cp) =
            verify_leaf_in_checkpoint(tx, &self.leaf, &self.tx_proof, self.tree_size, &self.root, &self.checkpoint, (key, origin))?;
        let entry =
            Entry::decode(&self.entry).map_err(|e| ClientError::Tampered { tx, what: format!("its entry does not decode: {e}") })?;
        inclusion(self.entry_index as u64, leaf.entry_count as u64, &leaf_hash(&self.entry), &self.entry_proof, &leaf.entries_root)
            .map_err(|e| ClientError::EntryInclusion { tx, index: self.entry_index, err: e })?;
        if let Some(k) = expected_key {
            if entry.key != k {
                return Err(ClientError::KeyMismatch { tx, got: hex::encode(&entry.key), want: hex::encode(k) });
            }
        }
        Ok(VerifiedEntry { tx, leaf, entry, checkpoint: cp })
    }
}

/// Check that a verified reference entry (from `verified_deref`) points at the verified row version
/// `target`: the entry is a reference in `vouch_references`, names the row's table and primary key,
/// and when it is pinned at a tx the row's version is not newer than the pin. Returns the target.
/// (That the reference has the name asked for is the caller's check: the name is the entry's key.)
pub fn check_reference(reference: &VerifiedEntry, target: &VerifiedEntry) -> Result<crate::ledger::format::Reference, ClientError> {
    let name = format!("with key {}", hex::encode(&reference.entry.key));
    let bad = |what: String| ClientError::ReferenceMismatch { name: name.clone(), what };
    if reference.entry.table != crate::sql::catalog::SYS_REFERENCES {
        return Err(bad(format!("its entry is in table {}, not in vouch_references", reference.entry.table)));
    }
    let Some(r) = reference.entry.reference.clone() else { return Err(bad("its entry is not a reference".into())) };
    if r.table != target.entry.table || r.key != target.entry.key {
        return Err(bad(format!(
            "it points at table {} key {}, the proven row is table {} key {}",
            r.table,
            hex::encode(&r.key),
            target.entry.table,
            hex::encode(&target.entry.key)
        )));
    }
    if r.tx != 0 && target.tx > r.tx {
        return Err(bad(format!("it is pinned at tx {}, the proven row version is from tx {}", r.tx, target.tx)));
    }
    Ok(r)
}

impl TxProof {
    /// Verify a whole transaction: every entry hashes to the leaf's entries root, the provenance record
    /// to its provenance hash, and the leaf is in the signed tree.
    pub fn verify(&self, key: &VerifyingKey, origin: &str) -> Result<(LeafData, Checkpoint), ClientError> {
        let tx = self.tx;
        let (leaf, cp) =
            verify_leaf_in_checkpoint(tx, &self.leaf, &self.tx_proof, self.tree_size, &self.root, &self.checkpoint, (key, origin))?;
        check_tx_contents(&leaf, &self.entries, &self.provenance)?;
        Ok((leaf, cp))
    }
}

/// Check a transaction's entries and provenance record against its leaf data.
pub fn check_tx_contents(leaf: &LeafData, entries: &[Vec<u8>], provenance: &[u8]) -> Result<(), ClientError> {
    let tx = leaf.tx;
    if entries.len() != leaf.entry_count as usize {
        return Err(ClientError::Tampered {
            tx,
            what: format!("its leaf records {} entries, {} were served", leaf.entry_count, entries.len()),
        });
    }
    for (i, e) in entries.iter().enumerate() {
        Entry::decode(e).map_err(|err| ClientError::Tampered { tx, what: format!("entry {i} does not decode: {err}") })?;
    }
    let root = entries_root(entries);
    if root != leaf.entries_root {
        return Err(ClientError::Tampered {
            tx,
            what: format!("its entries hash to root {}, its leaf records {}", hex::encode(root), hex::encode(leaf.entries_root)),
        });
    }
    let p = provenance_hash(provenance);
    if p != leaf.provenance_hash {
        return Err(ClientError::Tampered {
            tx,
            what: format!("its provenance record hashes to {}, its leaf records {}", hex::encode(p), hex::encode(leaf.provenance_hash)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::format::{Reference, FLAG_REFERENCE};

    fn verified(tx: u64, entry: Entry) -> VerifiedEntry {
        let leaf = LeafData {
            tx,
            commit_time_us: 1,
            client_time_us: 0,
            entry_count: 1,
            entries_root: [0; 32],
            provenance_hash: [0; 32],
            state_root: None,
        };
        VerifiedEntry { tx, leaf, entry, checkpoint: Checkpoint { origin: "o".into(), size: 10, root: [0; 32] } }
    }

    fn reference(table: u32, target: Reference) -> VerifiedEntry {
        let e = Entry { table, key: b"name".to_vec(), value: b"row".to_vec(), flags: FLAG_REFERENCE, reference: Some(target) };
        verified(9, e)
    }

    #[test]
    fn a_reference_must_lead_to_the_proven_row() {
        let row = verified(5, Entry::put(1000, b"k".to_vec(), b"v".to_vec()));
        let to = |table, key: &[u8], tx| Reference { table, key: key.to_vec(), tx };
        assert!(check_reference(&reference(8, to(1000, b"k", 0)), &row).is_ok());
        assert!(check_reference(&reference(8, to(1000, b"k", 5)), &row).is_ok());
        assert!(check_reference(&reference(8, to(1000, b"k", 7)), &row).is_ok());
        let err = |r: VerifiedEntry| check_reference(&r, &row).unwrap_err().to_string();
        assert!(err(reference(8, to(1000, b"k", 4))).contains("pinned at tx 4"));
        assert!(err(reference(8, to(1001, b"k", 0))).contains("points at table 1001"));
        assert!(err(reference(8, to(1000, b"j", 0))).contains("points at table 1000 key 6a"));
        assert!(err(reference(1000, to(1000, b"k", 0))).contains("not in vouch_references"));
        let plain = verified(9, Entry::put(8, b"name".to_vec(), b"row".to_vec()));
        assert!(check_reference(&plain, &row).unwrap_err().to_string().contains("not a reference"));
    }
}
