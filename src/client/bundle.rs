//! Offline proof bundles: a C2SP `tlog-proof` (c2sp.org/tlog-proof@v1) for the transaction's leaf,
//! whose `extra` line carries what a row needs beyond it: the leaf data, the entry, its index and its
//! inclusion proof within the transaction. Any tlog-proof reader can check the leaf's inclusion in the
//! signed checkpoint; `vouchdb verify bundle` also checks the entry. docs/VERIFYING.md has the layout.

use super::proof::{RowProof, SignedBody};
use super::ClientError;
use crate::ledger::format::Reader;
use crate::verify::checkpoint::{signed_note, verify_signed_note};
use crate::verify::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use p256::ecdsa::VerifyingKey;

const HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Version byte of the `extra` blob.
const EXTRA_VERSION: u8 = 1;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Render a verified row's proof as a bundle. `key` is the log's key, for the signed note's key id.
pub fn render(p: &RowProof, key: &VerifyingKey) -> Result<String, ClientError> {
    let origin = p.checkpoint.body.lines().next().unwrap_or_default();
    // Leaf index tx − 1: transaction ids start at 1.
    let index = p.tx.checked_sub(1).ok_or_else(|| ClientError::Malformed("a proof bundle needs a tx id of 1 or more".into()))?;
    let sig = B64.decode(p.checkpoint.signature.trim()).map_err(|_| ClientError::Malformed("signature is not base64".into()))?;
    let mut extra = vec![EXTRA_VERSION];
    put_bytes(&mut extra, &p.leaf);
    extra.extend_from_slice(&p.entry_index.to_be_bytes());
    put_bytes(&mut extra, &p.entry);
    extra.extend_from_slice(&(p.entry_proof.len() as u32).to_be_bytes());
    for h in &p.entry_proof {
        extra.extend_from_slice(h);
    }
    let mut out = format!("{HEADER}\nextra {}\nindex {index}\n", B64.encode(&extra));
    for h in &p.tx_proof {
        out.push_str(&B64.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_note(&p.checkpoint.body, origin, key, &sig));
    Ok(out)
}

/// Parse a bundle and verify its signed note with `key`; returns the row proof it carries. The caller
/// then runs `RowProof::verify` (which re-checks the signature, harmlessly) for the inclusion checks.
pub fn parse(text: &str, key: &VerifyingKey) -> Result<RowProof, ClientError> {
    let bad = |m: &str| ClientError::Malformed(format!("proof bundle: {m}"));
    let (head, note) = text.split_once("\n\n").ok_or_else(|| bad("no blank line before the checkpoint"))?;
    let mut lines = head.lines();
    if lines.next() != Some(HEADER) {
        return Err(bad(&format!("the first line is not {HEADER}")));
    }
    let mut extra = None;
    let mut index = None;
    let mut tx_proof: Vec<Hash> = Vec::new();
    for line in lines {
        if let Some(e) = line.strip_prefix("extra ") {
            extra = Some(B64.decode(e).map_err(|_| bad("extra is not base64"))?);
        } else if let Some(i) = line.strip_prefix("index ") {
            index = Some(i.parse::<u64>().map_err(|_| bad("index is not a number"))?);
        } else {
            let h = B64.decode(line).map_err(|_| bad("a proof line is not base64"))?;
            tx_proof.push(h.try_into().map_err(|_| bad("a proof hash is not 32 bytes"))?);
        }
    }
    let index = index.ok_or_else(|| bad("no index line"))?;
    let extra = extra.ok_or_else(|| bad("no extra line (a vouchdb bundle carries the entry there)"))?;
    let origin = note.lines().next().unwrap_or_default().to_string();
    let cp = verify_signed_note(note, &origin, key).map_err(ClientError::Signature)?;
    let split = note.find("\n\n").ok_or_else(|| bad("the signed note has no signatures"))?;
    let body = note[..split + 1].to_string();
    // The DER signature by `key`, for RowProof's own signature check.
    let key_id = crate::verify::checkpoint::note_key_id(key);
    let signature = note[split + 2..]
        .lines()
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, b)| B64.decode(b).ok()))
        .find(|blob| blob.len() > 4 && blob[..4] == key_id)
        .map(|blob| B64.encode(&blob[4..]))
        .ok_or_else(|| bad("no signature by the pinned key"))?;
    let mut r = Reader::new(&extra);
    let m = |e: String| bad(&format!("extra: {e}"));
    if r.u8().map_err(m)? != EXTRA_VERSION {
        return Err(bad("extra has an unknown version"));
    }
    let leaf = r.bytes().map_err(m)?.to_vec();
    let entry_index = r.u32().map_err(m)?;
    let entry = r.bytes().map_err(m)?.to_vec();
    let n = r.u32().map_err(m)?;
    if n > 64 {
        return Err(bad("extra: the entry proof is longer than any tree's"));
    }
    let entry_proof = (0..n).map(|_| r.hash().map_err(m)).collect::<Result<Vec<_>, _>>()?;
    r.finish().map_err(m)?;
    Ok(RowProof {
        tx: index.checked_add(1).ok_or_else(|| bad("index is out of range"))?,
        entry_index,
        entry,
        entry_proof,
        leaf,
        tx_proof,
        tree_size: cp.size,
        root: cp.root,
        checkpoint: SignedBody { body, signature },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `proofs_checkpoints` fuzzer: a proof claiming tx 0 (before any transaction) made
    /// `render` compute leaf index 0 − 1, a panic with overflow checks and index 2^64 − 1 without.
    #[test]
    fn a_proof_of_tx_zero_is_refused_not_rendered() {
        let key = *p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap().verifying_key();
        let proof = RowProof {
            tx: 0,
            entry_index: 0,
            entry: vec![],
            entry_proof: vec![],
            leaf: vec![],
            tx_proof: vec![],
            tree_size: 0,
            root: [0; 32],
            checkpoint: SignedBody { body: "origin\n0\nAAAA\n".into(), signature: String::new() },
        };
        assert!(matches!(render(&proof, &key), Err(ClientError::Malformed(m)) if m.contains("tx id")));
    }
}
