//! Pure verification of RFC 6962 / RFC 9162 proofs and signed checkpoints.
//!
//! This module is the verifier contract: it depends on nothing but `sha2`, `p256` and `base64`, never on
//! RocksDB or tokio, so a client, an auditor or a third party can check what the server hands out with the
//! same few functions. The server never verifies its own proofs through a private shortcut.
//!
//! Conventions (RFC 9162 §2.1): leaf hash `SHA-256(0x00 ‖ data)`, interior node `SHA-256(0x01 ‖ l ‖ r)`,
//! empty tree `SHA-256("")`, leaf indices are 0-based.

pub mod checkpoint;

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Why a proof or checkpoint did not verify. Each variant says what was checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("leaf index {index} is not inside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old} is larger than new tree size {new}")]
    SizeOrder { old: u64, new: u64 },
    #[error("proof has {got} hashes, a valid proof for these sizes has {want}")]
    ProofLength { got: usize, want: usize },
    #[error("malformed proof: {0}")]
    ProofShape(&'static str),
    #[error("recomputed root {computed} does not match the expected root {expected}")]
    RootMismatch { computed: String, expected: String },
    #[error("trees of equal size {size} have different roots")]
    EqualSizeRootsDiffer { size: u64 },
    #[error("checkpoint is malformed: {0}")]
    MalformedCheckpoint(String),
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    #[error("public key is unusable: {0}")]
    BadPublicKey(String),
}

/// RFC 6962 leaf hash: `SHA-256(0x00 ‖ leaf_data)`.
pub fn leaf_hash(leaf_data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf_data);
    h.finalize().into()
}

/// RFC 6962 interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Lowercase hex of bytes (as `hex::encode`, without its per-character iterator: proofs are hex-heavy).
pub fn to_hex(bytes: impl AsRef<[u8]>) -> String {
    let bytes = bytes.as_ref();
    let mut buf = vec![0u8; bytes.len() * 2];
    hex::encode_to_slice(bytes, &mut buf).expect("the buffer is exactly twice the input");
    String::from_utf8(buf).expect("hex digits are ASCII")
}

/// Bytes from hex (either case), as `hex::decode` without its per-character iterator.
pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let mut buf = vec![0u8; s.len() / 2];
    hex::decode_to_slice(s, &mut buf).ok()?;
    Some(buf)
}

/// Plain SHA-256, used for provenance hashes and key ids.
pub fn sha256(data: &[u8]) -> Hash {
    Sha256::digest(data).into()
}

fn mismatch(computed: &Hash, expected: &Hash) -> VerifyError {
    VerifyError::RootMismatch { computed: hex::encode(computed), expected: hex::encode(expected) }
}

/// Recompute the root from an inclusion proof (RFC 9162 §2.1.3.2). Fails only on a proof of the wrong shape.
pub fn root_from_inclusion(index: u64, size: u64, leaf_hash: &Hash, proof: &[Hash]) -> Result<Hash, VerifyError> {
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    // The path has one hash per level below the root on the leaf's way up: the bits of `index` that
    // differ from `size - 1` below their highest common prefix, plus the levels where `index` is a left
    // child with a right sibling.
    let (inner, border) = decompose_inclusion(index, size);
    let want = inner + border;
    if proof.len() != want {
        return Err(VerifyError::ProofLength { got: proof.len(), want });
    }
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(VerifyError::ProofLength { got: proof.len(), want });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(VerifyError::ProofLength { got: proof.len(), want });
    }
    Ok(r)
}

/// Number of proof hashes for leaf `index` in a tree of `size`: (levels inside the complete subtree that
/// holds the leaf, levels on the right border above it).
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    // `inner` is 64 when the two differ in the top bit (trees of 2^63 leaves or more): nothing is left.
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// Verify that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`.
pub fn inclusion(index: u64, size: u64, leaf_hash: &Hash, proof: &[Hash], root: &Hash) -> Result<(), VerifyError> {
    let computed = root_from_inclusion(index, size, leaf_hash, proof)?;
    if &computed != root {
        return Err(mismatch(&computed, root));
    }
    Ok(())
}

/// Verify that the tree of `old_size` leaves with `old_root` is a prefix of the tree of `new_size` leaves
/// with `new_root` (RFC 9162 §2.1.4.2). Equal sizes need an empty proof and equal roots; every tree
/// extends the empty tree (whose root must be `SHA-256("")`), with an empty proof.
pub fn consistency(old_size: u64, new_size: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> Result<(), VerifyError> {
    if old_size > new_size {
        return Err(VerifyError::SizeOrder { old: old_size, new: new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(VerifyError::ProofLength { got: proof.len(), want: 0 });
        }
        if old_root != new_root {
            return Err(VerifyError::EqualSizeRootsDiffer { size: old_size });
        }
        return Ok(());
    }
    if old_size == 0 {
        if old_root != &empty_root() {
            return Err(mismatch(old_root, &empty_root()));
        }
        if !proof.is_empty() {
            return Err(VerifyError::ProofLength { got: proof.len(), want: 0 });
        }
        return Ok(());
    }
    // RFC 9162 §2.1.4.2: when the old size is a power of two, the old root is the proof's implicit first node.
    let mut path: Vec<Hash> = proof.to_vec();
    if old_size.is_power_of_two() {
        path.insert(0, *old_root);
    }
    if path.is_empty() {
        return Err(VerifyError::ProofLength { got: 0, want: 1 });
    }
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0];
    let mut sr = path[0];
    for c in &path[1..] {
        if sn == 0 {
            return Err(VerifyError::ProofShape("consistency proof is longer than the new tree is high"));
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(VerifyError::ProofShape("consistency proof is too short to reach the new root"));
    }
    if &fr != old_root {
        return Err(mismatch(&fr, old_root));
    }
    if &sr != new_root {
        return Err(mismatch(&sr, new_root));
    }
    Ok(())
}
