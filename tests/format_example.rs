//! The worked example of docs/FORMAT.md, byte for byte: the encoder and a real append must agree with it.

use vouchdb::ledger::format::{entries_root, provenance_hash};
use vouchdb::ledger::{Entry, LeafData, Ledger, NewTx, Options};
use vouchdb::verify::checkpoint::Checkpoint;
use vouchdb::verify::leaf_hash;

const ENTRY: &str = "01000000000100000005616c6963650000000f7b2262616c616e6365223a3130307d";
const ENTRIES_ROOT: &str = "0a696d3c6d59e3725a2ac1388e264619a68a5c28ca2204bbe3d7a6f11780072b";
const PROVENANCE_HASH: &str = "b9973ac3b96081b85e3983f2068d793ff912836afe73264b11df71024f0db21c";
const LEAF: &str = "01000000000000000100060a241822109000060a24181e4000000000010a696d3c6d59e3725a2ac1388e264619a68a5c28ca2204bbe3d7a6f11780072bb9973ac3b96081b85e3983f2068d793ff912836afe73264b11df71024f0db21c00";
const LEAF_HASH: &str = "8c4a67ea5219d22d045efa0e78de2d3f0042775b06e26299e2d4d23ce707c5df";
const CLIENT_TIME: u64 = 1_700_000_000_000_000;
const COMMIT_TIME: u64 = 1_700_000_000_250_000;

fn example_tx() -> NewTx {
    NewTx {
        entries: vec![Entry::put(1, b"alice".to_vec(), br#"{"balance":100}"#.to_vec())],
        provenance: b"example provenance".to_vec(),
        client_time_us: CLIENT_TIME,
        ..Default::default()
    }
}

#[test]
fn the_documented_bytes_are_what_the_encoder_writes() {
    let tx = example_tx();
    let entry = tx.entries[0].encode();
    assert_eq!(hex::encode(&entry), ENTRY);
    assert_eq!(hex::encode(entries_root(&[entry])), ENTRIES_ROOT);
    assert_eq!(hex::encode(provenance_hash(&tx.provenance)), PROVENANCE_HASH);
    let leaf = LeafData::decode(&hex::decode(LEAF).unwrap()).unwrap();
    assert_eq!((leaf.tx, leaf.commit_time_us, leaf.client_time_us, leaf.entry_count), (1, COMMIT_TIME, CLIENT_TIME, 1));
    assert_eq!(hex::encode(leaf.encode()), LEAF);
    assert_eq!(hex::encode(leaf.hash()), LEAF_HASH);
    let cp = Checkpoint { origin: "vouchdb/example".into(), size: 1, root: leaf.hash() };
    assert_eq!(cp.body(), "vouchdb/example\n1\njEpn6lIZ0i0EXvoOeN4tPwBCd1sG4mKZ4tTSPOcHxd8=\n");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    for h in [ENTRIES_ROOT, PROVENANCE_HASH, LEAF_HASH] {
        assert!(doc.contains(h), "docs/FORMAT.md no longer shows {h}");
    }
}

#[test]
fn a_real_append_produces_the_documented_leaf_but_for_its_commit_time() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), Options::default()).unwrap();
    let receipt = ledger.append_blocking(example_tx()).unwrap();
    let rec = ledger.get_tx(receipt.tx).unwrap();
    assert_eq!(hex::encode(&rec.entry_bytes[0]), ENTRY);
    let mut leaf = rec.leaf.clone();
    assert_eq!(leaf.commit_time_us, receipt.commit_time_us);
    leaf.commit_time_us = COMMIT_TIME;
    assert_eq!(hex::encode(leaf.encode()), LEAF);
    assert_eq!(ledger.head().root, leaf_hash(&rec.leaf_bytes));
}
