//! Bad data on disk: each inconsistency or corruption gives an error naming the problem, never a panic,
//! and an inconsistent store refuses to open.

use rocksdb::{Options as DbOptions, DB};
use std::path::Path;
use vouchdb::ledger::keys::*;
use vouchdb::ledger::{Entry, Ledger, NewTx, Options};
use vouchdb::merkle::NodeId;
use vouchdb::Error;

fn fill(dir: &Path, n: u64) {
    let l = Ledger::open(dir, Options::default()).unwrap();
    for i in 0..n {
        l.append_blocking(NewTx {
            entries: vec![Entry::put(1, format!("k{i}").into_bytes(), b"value".to_vec())],
            provenance: b"prov".to_vec(),
            client_time_us: 0,
            ..Default::default()
        })
        .unwrap();
    }
}

/// Change the store behind vouchdb's back, as someone editing the data files would.
fn tamper(dir: &Path, f: impl FnOnce(&DB)) {
    let db = DB::open_cf(&DbOptions::default(), dir, ALL_CFS).unwrap();
    f(&db);
    db.flush_wal(true).unwrap();
}

fn open_err(dir: &Path) -> String {
    match Ledger::open(dir, Options::default()) {
        Ok(_) => panic!("a tampered store opened"),
        Err(e) => e.to_string(),
    }
}

fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name).unwrap()
}

#[test]
fn recorded_tree_size_must_match_the_log() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 5);
    tamper(d.path(), |db| db.put_cf(cf(db, CF_META), META_TREE_SIZE, 4u64.to_be_bytes()).unwrap());
    let e = open_err(d.path());
    assert!(e.contains("log holds tx 5 beyond the recorded tree size 4"), "{e}");
    tamper(d.path(), |db| db.put_cf(cf(db, CF_META), META_TREE_SIZE, 6u64.to_be_bytes()).unwrap());
    let e = open_err(d.path());
    assert!(e.contains("recorded tree size is 6 but the log ends at tx 5"), "{e}");
}

#[test]
fn a_changed_merkle_node_is_caught_on_open() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 6);
    // Size 6 = subtrees (2,0) and (1,2): change the first.
    tamper(d.path(), |db| db.put_cf(cf(db, CF_MERKLE), node_key(NodeId { level: 2, index: 0 }), [9u8; 32]).unwrap());
    let e = open_err(d.path());
    assert!(e.contains("merkle frontier at size 6 gives root"), "{e}");
}

#[test]
fn a_changed_last_log_record_is_caught_on_open() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 3);
    tamper(d.path(), |db| {
        let mut v = db.get_cf(cf(db, CF_LOG), tx_key(3)).unwrap().unwrap();
        v[20] ^= 1; // inside the client timestamp
        db.put_cf(cf(db, CF_LOG), tx_key(3), v).unwrap();
    });
    let e = open_err(d.path());
    assert!(e.contains("merkle leaf of tx 3 does not match"), "{e}");
}

#[test]
fn a_truncated_log_record_is_named() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 3);
    tamper(d.path(), |db| db.put_cf(cf(db, CF_LOG), tx_key(3), [1u8, 0, 0]).unwrap());
    let e = open_err(d.path());
    assert!(e.contains("log record of tx 3") && e.contains("truncated"), "{e}");
}

#[test]
fn a_newer_format_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 1);
    tamper(d.path(), |db| db.put_cf(cf(db, CF_META), META_FORMAT, 99u32.to_be_bytes()).unwrap());
    match Ledger::open(d.path(), Options::default()) {
        Err(Error::NewerFormat { found: 99, supported: 1, .. }) => {}
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("opened a newer format"),
    }
}

#[test]
fn missing_meta_with_a_log_is_refused() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 2);
    tamper(d.path(), |db| db.delete_cf(cf(db, CF_META), META_FORMAT).unwrap());
    assert!(open_err(d.path()).contains("format_version' is missing"));
}

#[test]
fn corrupt_values_inside_the_log_are_errors_on_read_and_on_check() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 4);
    tamper(d.path(), |db| {
        // An entry that no longer decodes, and a provenance record that no longer hashes right.
        db.put_cf(cf(db, CF_ENTRIES), entry_key(2, 0), [1u8, 0, 0, 0]).unwrap();
        db.put_cf(cf(db, CF_PROVENANCE), tx_key(3), b"forged").unwrap();
    });
    let l = Ledger::open(d.path(), Options::default()).unwrap(); // only the tail is checked on open
    let e = l.get_tx(2).unwrap_err().to_string();
    assert!(e.contains("entry 0 of tx 2") && e.contains("truncated"), "{e}");
    let e = l.get_latest(1, b"k1").unwrap_err().to_string();
    assert!(e.contains("entry 0 of tx 2"), "{e}");
    let e = l.scan(|_, _| {}).unwrap_err().to_string();
    assert!(e.contains("tx 2"), "{e}");
    drop(l);
    tamper(d.path(), |db| {
        db.put_cf(cf(db, CF_ENTRIES), entry_key(2, 0), Entry::put(1, b"k1".to_vec(), b"value".to_vec()).encode()).unwrap()
    });
    let l = Ledger::open(d.path(), Options::default()).unwrap();
    let e = l.scan(|_, _| {}).unwrap_err().to_string();
    assert!(e.contains("tx 3: provenance record does not hash"), "{e}");
}

#[test]
fn a_changed_value_is_caught_by_check() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 4);
    tamper(d.path(), |db| {
        db.put_cf(cf(db, CF_ENTRIES), entry_key(1, 0), Entry::put(1, b"k0".to_vec(), b"VALUE".to_vec()).encode()).unwrap()
    });
    let l = Ledger::open(d.path(), Options::default()).unwrap();
    let e = l.scan(|_, _| {}).unwrap_err().to_string();
    assert!(e.contains("tx 1: stored entries do not hash"), "{e}");
}

#[test]
fn a_missing_merkle_node_is_an_error_for_proofs() {
    let d = tempfile::tempdir().unwrap();
    fill(d.path(), 8);
    tamper(d.path(), |db| db.delete_cf(cf(db, CF_MERKLE), node_key(NodeId { level: 0, index: 1 })).unwrap());
    let l = Ledger::open(d.path(), Options::default()).unwrap();
    let e = l.inclusion_proof(1, 8).unwrap_err().to_string();
    assert!(e.contains("merkle node (level 0, index 1) is missing"), "{e}");
}
