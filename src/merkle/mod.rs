//! The RFC 6962 tree over the log, stored as the hash of every complete subtree.
//!
//! Node `(level, index)` is the root of the complete subtree over leaves
//! `[index << level, (index + 1) << level)`. Appending leaf `n` stores `(0, n)` and then every subtree that
//! leaf completes, about two hashes per leaf (Go's `tlog.StoredHashIndex` has the same shape). Any root,
//! inclusion proof or consistency proof for any tree size then needs O(log n) point reads of complete
//! subtrees: the tree is never rebuilt in memory. Storage is injected through [`NodeReader`], so the same
//! code runs over RocksDB and over a map in tests.

pub mod reference;

use crate::verify::{empty_root, node_hash, Hash};

/// A stored complete subtree: `level` (height, leaves are 0) and `index` (position at that level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

/// Reads stored node hashes. `nodes` returns them in the order asked; a missing node is an error.
pub trait NodeReader {
    type Error;
    fn nodes(&self, ids: &[NodeId]) -> Result<Vec<Hash>, Self::Error>;
}

/// The complete subtrees that make up leaves `[start, end)`, left to right, where `start` is aligned
/// (a multiple of the largest power of two not above `end - start`), as every range in RFC 6962's
/// recursion is. Their fold from the right is MTH(D[start:end]).
fn cover(start: u64, end: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    let mut s = start;
    while s < end {
        let rem = end - s;
        let level = 63 - rem.leading_zeros();
        let level = level.min(if s == 0 { 63 } else { s.trailing_zeros() });
        out.push(NodeId { level: level as u8, index: s >> level });
        s += 1u64 << level;
    }
    out
}

fn fold_right(hashes: &[Hash]) -> Hash {
    let mut it = hashes.iter().rev();
    let mut acc = *it.next().expect("a non-empty range covers at least one subtree");
    for h in it {
        acc = node_hash(h, &acc);
    }
    acc
}

/// A proof is a list of subtree hashes; each is itself a fold of stored complete subtrees.
/// Planning first and reading once lets the whole proof come from a single multi-get.
struct Plan {
    ranges: Vec<(u64, u64)>,
}

impl Plan {
    fn run<R: NodeReader>(&self, reader: &R) -> Result<Vec<Hash>, R::Error> {
        let covers: Vec<Vec<NodeId>> = self.ranges.iter().map(|&(a, b)| cover(a, b)).collect();
        let ids: Vec<NodeId> = covers.iter().flatten().copied().collect();
        let hashes = reader.nodes(&ids)?;
        let mut out = Vec::with_capacity(covers.len());
        let mut at = 0;
        for c in &covers {
            out.push(fold_right(&hashes[at..at + c.len()]));
            at += c.len();
        }
        Ok(out)
    }
}

/// Largest power of two strictly smaller than `n` (n ≥ 2).
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Root hash of the first `size` leaves.
pub fn root<R: NodeReader>(reader: &R, size: u64) -> Result<Hash, R::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    Ok(Plan { ranges: vec![(0, size)] }.run(reader)?[0])
}

/// RFC 9162 §2.1.3.1 inclusion path for leaf `index` in the tree of `size` leaves (caller checks bounds).
pub fn prove_inclusion<R: NodeReader>(reader: &R, index: u64, size: u64) -> Result<Vec<Hash>, R::Error> {
    assert!(index < size, "inclusion proof asked for leaf {index} of a tree of size {size}");
    let mut ranges = Vec::new();
    let (mut a, mut b) = (0u64, size);
    while b - a > 1 {
        let k = split_point(b - a);
        if index - a < k {
            ranges.push((a + k, b));
            b = a + k;
        } else {
            ranges.push((a, a + k));
            a += k;
        }
    }
    ranges.reverse();
    Plan { ranges }.run(reader)
}

/// RFC 9162 §2.1.4.1 consistency proof from `old` to `new` leaves (caller checks `old <= new`).
pub fn prove_consistency<R: NodeReader>(reader: &R, old: u64, new: u64) -> Result<Vec<Hash>, R::Error> {
    assert!(old <= new, "consistency proof asked from {old} to {new}");
    if old == 0 || old == new {
        return Ok(Vec::new());
    }
    let mut ranges = Vec::new();
    let (mut m, mut a, mut b, mut complete) = (old, 0u64, new, true);
    loop {
        let n = b - a;
        if m == n {
            if !complete {
                ranges.push((a, b));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            ranges.push((a + k, b));
            b = a + k;
        } else {
            ranges.push((a, a + k));
            m -= k;
            a += k;
            complete = false;
        }
    }
    ranges.reverse();
    Plan { ranges }.run(reader)
}

/// The right edge of the tree: the roots of its complete subtrees by decreasing height. Appends need only
/// this (O(log n) hashes in memory), never the rest of the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing.
    stack: Vec<(u8, Hash)>,
}

impl Frontier {
    /// Load the frontier of a tree of `size` leaves from storage.
    pub fn load<R: NodeReader>(reader: &R, size: u64) -> Result<Frontier, R::Error> {
        let ids = if size == 0 { Vec::new() } else { cover(0, size) };
        let hashes = reader.nodes(&ids)?;
        Ok(Frontier { size, stack: ids.iter().zip(hashes).map(|(id, h)| (id.level, h)).collect() })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier's hashes, by decreasing height (what a verifier saves to resume later).
    pub fn hashes(&self) -> Vec<Hash> {
        self.stack.iter().map(|&(_, h)| h).collect()
    }

    /// Rebuild a saved frontier of a tree of `size` leaves; `None` if the number of hashes is wrong.
    pub fn from_hashes(size: u64, hashes: &[Hash]) -> Option<Frontier> {
        let ids = if size == 0 { Vec::new() } else { cover(0, size) };
        (ids.len() == hashes.len()).then(|| Frontier { size, stack: ids.iter().zip(hashes).map(|(id, h)| (id.level, *h)).collect() })
    }

    /// Append a leaf hash; `store` receives every node this completes (the leaf itself first).
    pub fn append(&mut self, leaf: Hash, mut store: impl FnMut(NodeId, &Hash)) {
        let mut index = self.size;
        let mut level = 0u8;
        let mut h = leaf;
        store(NodeId { level, index }, &h);
        while let Some(&(top_level, top)) = self.stack.last() {
            if top_level != level {
                break;
            }
            self.stack.pop();
            h = node_hash(&top, &h);
            level += 1;
            index >>= 1;
            store(NodeId { level, index }, &h);
        }
        self.stack.push((level, h));
        self.size += 1;
    }

    /// Root of the tree this frontier describes.
    pub fn root(&self) -> Hash {
        if self.stack.is_empty() {
            return empty_root();
        }
        let hashes: Vec<Hash> = self.stack.iter().map(|&(_, h)| h).collect();
        fold_right(&hashes)
    }
}

#[cfg(test)]
mod tests;
