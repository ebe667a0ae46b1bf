//! Ledger benchmarks (issue: ledger core). Run: `cargo bench --bench ledger`.
//!
//! - durable appends of one-entry transactions with 1, 16 and 64 concurrent committers (group commit);
//! - inclusion and consistency proof generation at 1 M transactions, and their verification;
//! - bytes on disk per transaction for 1 M transactions of one 100-byte entry (printed).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vouchdb::ledger::{Entry, Ledger, NewTx, Options};
use vouchdb::verify;

static KEY: AtomicU64 = AtomicU64::new(0);

/// A one-entry transaction: an 8-byte key and 100 bytes of incompressible value (so the bytes-per-tx
/// figure is not flattered by compression).
fn tx() -> NewTx {
    let k = KEY.fetch_add(1, Ordering::Relaxed);
    let mut x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let value: Vec<u8> = (0..100)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    NewTx { entries: vec![Entry::put(1, k.to_be_bytes().to_vec(), value)], provenance: Vec::new(), client_time_us: 0, ..Default::default() }
}

fn appends(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Ledger::open(dir.path(), Options::default()).unwrap());
    let mut g = c.benchmark_group("durable_append");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Elements(1));
    for committers in [1usize, 16, 64] {
        g.bench_with_input(BenchmarkId::from_parameter(committers), &committers, |b, &n| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(n as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..n {
                        let l = &ledger;
                        s.spawn(move || {
                            for _ in 0..per {
                                l.append_blocking(tx()).unwrap();
                            }
                        });
                    }
                });
                // Report time per transaction actually written.
                start.elapsed().mul_f64(iters as f64 / (per * n as u64) as f64)
            })
        });
    }
    g.finish();
}

const MILLION: u64 = 1_000_000;

fn fill_million(dir: &std::path::Path) -> Ledger {
    let ledger = Arc::new(Ledger::open(dir, Options::default()).unwrap());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..64 {
            let l = &ledger;
            s.spawn(move || {
                for _ in 0..MILLION / 64 {
                    l.append_blocking(tx()).unwrap();
                }
            });
        }
    });
    let size = ledger.head().size;
    eprintln!(
        "filled {size} transactions in {:.1}s ({:.0} tx/s, 64 committers)",
        start.elapsed().as_secs_f64(),
        size as f64 / start.elapsed().as_secs_f64()
    );
    ledger.flush().unwrap();
    let bytes = ledger.disk_usage().unwrap();
    let wal: u64 = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    eprintln!(
        "bytes on disk: {bytes} in SST files = {:.1} bytes/tx for one 100-byte entry (plus {wal} bytes of not yet recycled WAL)",
        bytes as f64 / size as f64
    );
    Arc::try_unwrap(ledger).ok().expect("no other references remain")
}

fn proofs(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = fill_million(dir.path());
    let size = ledger.head().size;
    let root = ledger.head().root;
    let mut g = c.benchmark_group("proofs_at_1M");
    let mut i = 0u64;
    g.bench_function("inclusion_generate", |b| {
        b.iter(|| {
            i = (i * 6364136223846793005 + 1442695040888963407) % size;
            ledger.inclusion_proof(i + 1, size).unwrap()
        })
    });
    g.bench_function("consistency_generate", |b| {
        b.iter(|| {
            i = (i * 6364136223846793005 + 1442695040888963407) % size;
            ledger.consistency_proof(i + 1, size).unwrap()
        })
    });
    let tx = 123_457;
    let leaf = ledger.leaf(tx).unwrap().0.hash();
    let p = ledger.inclusion_proof(tx, size).unwrap();
    g.bench_function("inclusion_verify", |b| b.iter(|| verify::inclusion(tx - 1, size, &leaf, &p, &root).unwrap()));
    let old = 654_321;
    let old_root = ledger.root_at(old).unwrap();
    let cp = ledger.consistency_proof(old, size).unwrap();
    eprintln!("proof sizes at {size}: inclusion {} hashes, consistency {} hashes", p.len(), cp.len());
    g.bench_function("consistency_verify", |b| b.iter(|| verify::consistency(old, size, &old_root, &root, &cp).unwrap()));
    g.finish();
}

criterion_group!(benches, appends, proofs);
criterion_main!(benches);
