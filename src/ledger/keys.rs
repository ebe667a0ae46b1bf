//! RocksDB key layouts of the ledger's column families. Keys sort in the order the reads need.

use crate::merkle::NodeId;

/// Column families. Everything but `log`, `entries` and `provenance` is derived and could be rebuilt.
pub const CF_LOG: &str = "log"; // tx u64 → leaf data
pub const CF_ENTRIES: &str = "entries"; // tx u64 ‖ index u32 → entry bytes
pub const CF_PROVENANCE: &str = "provenance"; // tx u64 → provenance record
pub const CF_MERKLE: &str = "merkle"; // level u8 ‖ index u64 → hash
pub const CF_PK: &str = "pk"; // table u32 ‖ escaped key ‖ !tx u64 → entry index u32 ‖ flags u8
pub const CF_META: &str = "meta"; // name → value
pub const CF_SEC: &str = "sec"; // caller's index key ‖ !tx u64 → caller's value (derived secondary indexes)
pub const CF_ENTRY_NODES: &str = "entry_nodes"; // tx u64 ‖ level u8 ‖ index u32 → hash (derived, see below)
pub const ALL_CFS: [&str; 8] = [CF_LOG, CF_ENTRIES, CF_PROVENANCE, CF_MERKLE, CF_PK, CF_META, CF_SEC, CF_ENTRY_NODES];

/// Complete subtrees of a transaction's entries tree stored in `entry_nodes`: those of at least this
/// height (16 entries), so an entry's inclusion proof reads at most 16 entries plus O(log n) nodes,
/// for about 4 bytes of storage per entry of a large transaction.
pub const ENTRY_NODE_MIN_LEVEL: u8 = 4;

pub fn entry_node_key(tx: u64, id: NodeId) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..8].copy_from_slice(&tx.to_be_bytes());
    k[8] = id.level;
    k[9..].copy_from_slice(&(id.index as u32).to_be_bytes());
    k
}

pub const META_FORMAT: &[u8] = b"format_version"; // u32
pub const META_TREE_SIZE: &[u8] = b"tree_size"; // u64
pub const META_ROOT: &[u8] = b"root"; // 32 bytes: root at tree_size
pub const META_LAST_COMMIT: &[u8] = b"last_commit_us"; // u64

pub fn tx_key(tx: u64) -> [u8; 8] {
    tx.to_be_bytes()
}

pub fn entry_key(tx: u64, index: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&tx.to_be_bytes());
    k[8..].copy_from_slice(&index.to_be_bytes());
    k
}

pub fn node_key(id: NodeId) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = id.level;
    k[1..].copy_from_slice(&id.index.to_be_bytes());
    k
}

/// `table ‖ escaped key ‖ terminator`: the prefix shared by every version of one key. The escaping
/// (0x00 → 0x00 0xFF, end → 0x00 0x01) keeps byte order, so primary-key ranges are key ranges, and no
/// key's prefix is a prefix of another key's.
pub fn pk_prefix(table: u32, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + key.len() + 2 + 8);
    out.extend_from_slice(&table.to_be_bytes());
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out.extend_from_slice(&[0, 1]);
    out
}

/// Key bytes escaped as in `pk_prefix`, without the table or the terminator (for range bounds).
pub fn escape_key_bytes(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 2);
    for &b in key {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
    out
}

/// Versions sort newest first: the tx is stored inverted.
pub fn pk_key(table: u32, key: &[u8], tx: u64) -> Vec<u8> {
    let mut k = pk_prefix(table, key);
    k.extend_from_slice(&(!tx).to_be_bytes());
    k
}

/// The tx of a pk key whose prefix is already known to match.
pub fn pk_key_tx(k: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = k.get(k.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(!u64::from_be_bytes(tail))
}

/// The full index key for a prefix returned by a table walk.
pub fn pk_key_from_prefix(prefix: &[u8], tx: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&(!tx).to_be_bytes());
    k
}

/// Undo `pk_prefix`'s escaping: the key bytes of a `table ‖ escaped key ‖ 00 01` prefix.
pub fn unescape_pk_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let body = prefix.get(4..prefix.len().checked_sub(2)?)?;
    if prefix[prefix.len() - 2..] != [0, 1] {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut it = body.iter();
    while let Some(&b) = it.next() {
        out.push(b);
        if b == 0 && it.next() != Some(&0xFF) {
            return None;
        }
    }
    Some(out)
}

pub fn pk_value(index: u32, flags: u8) -> [u8; 5] {
    let mut v = [0u8; 5];
    v[..4].copy_from_slice(&index.to_be_bytes());
    v[4] = flags;
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn pk_prefix_preserves_key_order(a in proptest::collection::vec(any::<u8>(), 0..8), b in proptest::collection::vec(any::<u8>(), 0..8)) {
            prop_assert_eq!(a.cmp(&b), pk_prefix(3, &a).cmp(&pk_prefix(3, &b)));
            prop_assert_eq!(unescape_pk_prefix(&pk_prefix(3, &a)), Some(a.clone()));
            if a != b {
                prop_assert!(!pk_prefix(3, &b).starts_with(&pk_prefix(3, &a)));
            }
        }
    }

    #[test]
    fn newer_versions_sort_first() {
        assert!(pk_key(1, b"k", 9) < pk_key(1, b"k", 2));
        assert_eq!(pk_key_tx(&pk_key(1, b"k\0", 77)), Some(77));
    }
}
