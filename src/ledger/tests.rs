use super::*;
use crate::verify;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn put(table: u32, key: &str, value: &str) -> NewTx {
    NewTx {
        entries: vec![Entry::put(table, key.as_bytes().to_vec(), value.as_bytes().to_vec())],
        provenance: b"p".to_vec(),
        client_time_us: 7,
        ..Default::default()
    }
}

#[test]
fn append_then_read_every_way() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    assert_eq!(l.head().size, 0);
    assert_eq!(l.head().root, verify::empty_root());
    let r1 = l.append_blocking(put(1, "a", "one")).unwrap();
    let r2 = l.append_blocking(put(1, "a", "two")).unwrap();
    let r3 = l
        .append_blocking(NewTx {
            entries: vec![Entry::delete(1, b"a".to_vec()), Entry::put(2, b"a".to_vec(), b"x".to_vec())],
            ..Default::default()
        })
        .unwrap();
    assert_eq!((r1.tx, r2.tx, r3.tx), (1, 2, 3));
    assert!(r2.commit_time_us >= r1.commit_time_us);
    assert_eq!(r3.tree_size, 3);

    let latest = l.get_latest(1, b"a").unwrap().unwrap();
    assert_eq!((latest.tx, latest.index), (3, 0));
    assert!(latest.entry.is_delete());
    assert_eq!(l.get_as_of(1, b"a", 2).unwrap().unwrap().entry.value, b"two");
    assert_eq!(l.get_as_of(1, b"a", 1).unwrap().unwrap().entry.value, b"one");
    assert_eq!(l.get_as_of(1, b"a", 0).unwrap(), None);
    assert_eq!(l.get_latest(1, b"b").unwrap(), None);
    assert_eq!(l.get_latest(2, b"a").unwrap().unwrap().index, 1);
    let h = l.history(1, b"a").unwrap();
    assert_eq!(h.iter().map(|v| v.tx).collect::<Vec<_>>(), vec![1, 2, 3]);

    let rec = l.get_tx(3).unwrap();
    assert_eq!(rec.entries.len(), 2);
    assert_eq!(rec.leaf.entry_count, 2);
    assert_eq!(rec.leaf.client_time_us, 0);
    assert_eq!(l.get_tx(1).unwrap().leaf.client_time_us, 7);
    assert_eq!(l.get_tx(1).unwrap().provenance, b"p");
    assert!(matches!(l.get_tx(4), Err(Error::NotFound(_))));
    assert!(matches!(l.get_tx(0), Err(Error::NotFound(_))));
}

#[test]
fn keys_that_prefix_each_other_stay_apart() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    for k in ["", "\0", "a", "a\0", "a\0b", "ab"] {
        l.append_blocking(put(1, k, k)).unwrap();
    }
    for k in ["", "\0", "a", "a\0", "a\0b", "ab"] {
        let v = l.get_latest(1, k.as_bytes()).unwrap().unwrap();
        assert_eq!(v.entry.value, k.as_bytes());
        assert_eq!(l.history(1, k.as_bytes()).unwrap().len(), 1, "history of {k:?}");
    }
}

#[test]
fn proofs_from_the_store_verify_and_survive_reopen() {
    let dir = tmp();
    let mut roots = vec![verify::empty_root()];
    {
        let l = Ledger::open(dir.path(), Options::default()).unwrap();
        for i in 0..37 {
            l.append_blocking(put(1, &format!("k{i}"), "v")).unwrap();
            roots.push(l.head().root);
        }
    }
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    assert_eq!(l.head().size, 37);
    assert_eq!(l.head().root, roots[37]);
    for size in 1..=37u64 {
        assert_eq!(l.root_at(size).unwrap(), roots[size as usize]);
        for tx in 1..=size {
            let p = l.inclusion_proof(tx, size).unwrap();
            let leaf = l.leaf(tx).unwrap().0.hash();
            verify::inclusion(tx - 1, size, &leaf, &p, &roots[size as usize]).unwrap();
        }
        for old in 0..=size {
            let p = l.consistency_proof(old, size).unwrap();
            verify::consistency(old, size, &roots[old as usize], &roots[size as usize], &p).unwrap();
        }
    }
    assert!(l.inclusion_proof(1, 38).is_err());
    assert!(l.consistency_proof(5, 4).is_err());
    l.scan(|_, _| {}).unwrap();
}

#[test]
fn concurrent_appends_are_dense_and_batched() {
    let dir = tmp();
    let l = std::sync::Arc::new(Ledger::open(dir.path(), Options::default()).unwrap());
    let threads: Vec<_> = (0..32)
        .map(|t| {
            let l = l.clone();
            std::thread::spawn(move || (0..50).map(|i| l.append_blocking(put(1, &format!("{t}-{i}"), "v")).unwrap().tx).collect::<Vec<_>>())
        })
        .collect();
    let mut ids: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, (1..=1600).collect::<Vec<_>>());
    assert_eq!(l.scan(|_, _| {}).unwrap().size, 1600);
}

#[test]
fn invalid_transactions_are_refused_before_queueing() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    let bad = Entry { flags: format::FLAG_DELETE, ..Entry::put(1, b"k".to_vec(), b"v".to_vec()) };
    assert!(matches!(l.append_blocking(NewTx { entries: vec![bad], ..Default::default() }), Err(Error::InvalidInput(_))));
    let huge = Entry::put(1, vec![0u8; format::MAX_KEY_LEN + 1], b"v".to_vec());
    assert!(matches!(l.append_blocking(NewTx { entries: vec![huge], ..Default::default() }), Err(Error::InvalidInput(_))));
    // The pipeline is unaffected.
    assert_eq!(l.append_blocking(put(1, "k", "v")).unwrap().tx, 1);
}

#[test]
fn close_finishes_queued_commits_and_refuses_new_ones() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    let pending: Vec<_> = (0..100).map(|i| l.append(put(1, &i.to_string(), "v"))).collect();
    l.close();
    for p in pending {
        futures::executor::block_on(p).unwrap();
    }
    assert!(matches!(l.append_blocking(put(1, "late", "v")), Err(Error::Closed(_))));
    assert_eq!(l.head().size, 100);
}

/// A proof hashes only the entries near its entry and the few at the right edge that no stored node
/// covers, never the span between them (which made verified_get of a row in a 100,001-entry
/// transaction read the whole transaction).
#[test]
fn an_entry_proof_reads_only_the_entries_it_needs() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    let n = 4097u32;
    let entries = (0..n).map(|i| Entry::put(7, format!("k{i}").into_bytes(), vec![b'v'; 3])).collect();
    l.append_blocking(NewTx { entries, ..Default::default() }).unwrap();
    let rec = l.get_tx(1).unwrap();
    for index in [5, 2050, 4096] {
        let before = l.shared.entries_hashed.load(std::sync::atomic::Ordering::Relaxed);
        let p = l.entry_proof(1, index, n).unwrap();
        let read = l.shared.entries_hashed.load(std::sync::atomic::Ordering::Relaxed) - before;
        assert!(read <= 17, "proving entry {index} of {n} hashed {read} entries");
        verify::inclusion(index as u64, n as u64, &verify::leaf_hash(&rec.entry_bytes[index as usize]), &p, &rec.leaf.entries_root)
            .unwrap();
    }
}

#[test]
fn entry_proofs_of_large_transactions_verify_with_and_without_stored_nodes() {
    let dir = tmp();
    let sizes = [1u32, 2, 15, 16, 17, 33, 100, 257];
    {
        let l = Ledger::open(dir.path(), Options::default()).unwrap();
        for &n in &sizes {
            let entries = (0..n).map(|i| Entry::put(7, format!("k{n}-{i}").into_bytes(), vec![b'v'; (i % 5) as usize])).collect();
            l.append_blocking(NewTx { entries, ..Default::default() }).unwrap();
        }
        let check = |l: &Ledger| {
            for (i, &n) in sizes.iter().enumerate() {
                let tx = i as u64 + 1;
                let rec = l.get_tx(tx).unwrap();
                assert_eq!(rec.leaf.entries_root, format::entries_root(&rec.entry_bytes), "tx {tx}");
                for index in 0..n {
                    let p = l.entry_proof(tx, index, n).unwrap();
                    let h = verify::leaf_hash(&rec.entry_bytes[index as usize]);
                    verify::inclusion(index as u64, n as u64, &h, &p, &rec.leaf.entries_root).unwrap();
                }
                assert!(l.entry_proof(tx, n, n).is_err());
            }
        };
        check(&l);
        // Large transactions keep about one stored node per 8 entries, small ones none.
        let stored = l.shared.db.iterator_cf(l.cf(keys::CF_ENTRY_NODES), IteratorMode::Start).count();
        assert!(stored > 0 && stored <= 2 * 257 / 16 + 2 * 100 / 16 + 8, "{stored} entry nodes");
        // A store without entry nodes (written before they existed) proves the same, by hashing.
        let keys: Vec<Vec<u8>> =
            l.shared.db.iterator_cf(l.cf(keys::CF_ENTRY_NODES), IteratorMode::Start).map(|kv| kv.unwrap().0.to_vec()).collect();
        for k in keys {
            l.shared.db.delete_cf(l.cf(keys::CF_ENTRY_NODES), k).unwrap();
        }
        check(&l);
    }
}

/// The pk index's reads consult a per-key prefix filter in every SST file and memtable (open.rs); a
/// key's versions spread over several files and the memtable must all still be found, at every tx,
/// and absent keys (including ones that share a longer or shorter byte prefix) must stay absent.
#[test]
fn versions_spread_over_sst_files_and_the_memtable_are_all_found() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    let keys = ["", "\0", "a", "a\0", "ab", "b"];
    let mut txs = Vec::new();
    for round in 0..3 {
        for k in keys {
            txs.push((round, k, l.append_blocking(put(9, k, &format!("{k}@{round}"))).unwrap().tx));
        }
        if round < 2 {
            l.flush().unwrap();
        }
    }
    for &(round, k, tx) in &txs {
        let v = l.get_as_of(9, k.as_bytes(), tx).unwrap().expect("a written version");
        assert_eq!((v.tx, v.entry.value.clone()), (tx, format!("{k}@{round}").into_bytes()), "{k:?} as of tx {tx}");
        assert_eq!(l.history(9, k.as_bytes()).unwrap().iter().map(|v| v.tx).collect::<Vec<_>>().len(), 3, "history of {k:?}");
    }
    for absent in ["a\0\0", "aa", "c", "\0\0"] {
        assert_eq!(l.get_latest(9, absent.as_bytes()).unwrap(), None, "{absent:?}");
    }
    assert_eq!(l.get_latest(8, b"a").unwrap(), None);
    let rows = l.scan_table(9, l.head().size, None).unwrap();
    assert_eq!(rows.len(), keys.len());
    assert!(rows.iter().all(|(_, v)| v.entry.value.ends_with(b"@2")));
    // And after reopening, with everything in files.
    l.flush().unwrap();
    drop(l);
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    for &(round, k, tx) in &txs {
        assert_eq!(l.get_as_of(9, k.as_bytes(), tx).unwrap().unwrap().entry.value, format!("{k}@{round}").into_bytes());
    }
}

#[test]
fn the_row_cache_follows_every_write_and_old_snapshots_read_the_store() {
    let dir = tmp();
    // A tiny cache (1 KiB per shard), so rows are also evicted and read again.
    let l = Ledger::open(dir.path(), Options { row_cache_bytes: 16 << 10, ..Options::default() }).unwrap();
    for round in 0..3u32 {
        let mut txs = Vec::new();
        for k in 0..300u32 {
            let r = l.append_blocking(put(1, &format!("k{k}"), &format!("v{k}.{round}"))).unwrap();
            txs.push(r.tx);
        }
        for _ in 0..2 {
            for k in 0..300u32 {
                let v = l.get_latest(1, format!("k{k}").as_bytes()).unwrap().unwrap();
                assert_eq!((v.tx, v.entry.value.clone()), (txs[k as usize], format!("v{k}.{round}").into_bytes()));
                if round > 0 {
                    // A snapshot before this round's write reads the previous round's value.
                    let old = l.get_as_of(1, format!("k{k}").as_bytes(), txs[k as usize] - 1).unwrap().unwrap();
                    assert_eq!(old.entry.value, format!("v{k}.{}", round - 1).into_bytes());
                }
            }
        }
    }
    // A row with no version is cached as such, and its first write is seen.
    assert_eq!(l.get_latest(1, b"new").unwrap(), None);
    assert_eq!(l.get_latest(1, b"new").unwrap(), None);
    let n = l.append_blocking(put(1, "new", "first")).unwrap();
    assert_eq!(l.get_latest(1, b"new").unwrap().unwrap().tx, n.tx);
    assert_eq!(l.get_as_of(1, b"new", n.tx - 1).unwrap(), None);
    let d = l.append_blocking(NewTx { entries: vec![Entry::delete(1, b"k7".to_vec())], ..Default::default() }).unwrap();
    assert!(l.get_latest(1, b"k7").unwrap().unwrap().entry.is_delete());
    assert_eq!(l.get_as_of(1, b"k7", d.tx - 1).unwrap().unwrap().entry.value, b"v7.2");
    // A few hot rows fit and are answered from memory.
    for _ in 0..3 {
        for k in 10..20u32 {
            assert_eq!(l.get_latest(1, format!("k{k}").as_bytes()).unwrap().unwrap().entry.value, format!("v{k}.2").into_bytes());
        }
    }
    let s = l.stats().unwrap();
    assert!(s.row_cache_hits > 0 && s.row_cache_misses > 0, "{s:?}");
    assert!(s.row_cache_bytes <= 16 << 10, "{s:?}");

    // Off: every read goes to the store.
    drop(l);
    let l = Ledger::open(dir.path(), Options { row_cache_bytes: 0, ..Options::default() }).unwrap();
    assert_eq!(l.get_latest(1, b"k8").unwrap().unwrap().entry.value, b"v8.2");
    let s = l.stats().unwrap();
    assert_eq!(s.row_cache_hits + s.row_cache_misses, 0);
}

#[test]
fn readers_racing_writers_never_get_a_stale_cached_row() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tmp();
    let l = std::sync::Arc::new(Ledger::open(dir.path(), Options::default()).unwrap());
    let done = std::sync::Arc::new(AtomicBool::new(false));
    // "d" has no version until the last write.
    let keys = ["a", "b", "c", "d"];
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let (l, done) = (std::sync::Arc::clone(&l), std::sync::Arc::clone(&done));
            std::thread::spawn(move || {
                let mut checked = 0usize;
                while !done.load(Ordering::Relaxed) {
                    let key = keys[(checked + r) % 4].as_bytes();
                    let at = l.head().size;
                    let got = l.get_as_of(1, key, at).unwrap().map(|v| v.tx);
                    // The store's own answer: the newest version at or before `at`.
                    let want = l.history(1, key).unwrap().iter().map(|v| v.tx).filter(|&t| t <= at).max();
                    assert_eq!(got, want, "key {key:?} at {at}");
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    for i in 0..1000u32 {
        l.append_blocking(put(1, keys[i as usize % 3], &i.to_string())).unwrap();
    }
    l.append_blocking(put(1, "d", "last")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    done.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().unwrap() > 100);
    }
}

#[test]
fn proof_material_cache_is_bounded_in_bytes_not_entries() {
    let dir = tmp();
    let l = Ledger::open(dir.path(), Options::default()).unwrap();
    // Small material is kept: the second proof of an entry reuses the first one's material.
    let small = l.append_blocking(put(1, "small", "v")).unwrap();
    let first = l.entry_material(small.tx, 0).unwrap();
    assert!(Arc::ptr_eq(&first, &l.entry_material(small.tx, 0).unwrap()));
    // 40 entries of 1 MiB each weigh more than the cap: what is kept stays under it, and every proof
    // still gets its full material.
    let big = vec![b'x'; 1 << 20];
    for i in 0..40 {
        let key = format!("big{i}");
        let r = l
            .append_blocking(NewTx {
                entries: vec![Entry::put(1, key.into_bytes(), big.clone())],
                provenance: b"p".to_vec(),
                ..Default::default()
            })
            .unwrap();
        let m = l.entry_material(r.tx, 0).unwrap();
        assert!(m.entry_bytes.len() > big.len(), "tx {} material lacks its value", r.tx);
        let stats = l.stats().unwrap();
        assert!(stats.material_cache_bytes <= MATERIAL_CACHE_BYTES, "{} bytes cached after tx {}", stats.material_cache_bytes, r.tx);
    }
    let stats = l.stats().unwrap();
    assert!(stats.material_cache_entries < 41, "{} entries cached", stats.material_cache_entries);
}
