//! Every acknowledged commit survives `kill -9`: a writer process appending from 16 committers is killed
//! at a random moment, 20 times over the same data directory; after each kill every transaction it had
//! acknowledged is present, the store opens consistent, and the root recomputes from the log. And the
//! same through SQL: concurrent writers over pgwire while the server is killed, 50 times.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vouchdb::ledger::{Ledger, Options};

struct Rng(u64);
impl Rng {
    /// From `CRASH_SEED`, else the clock (printed, so a failing run can be repeated).
    fn seeded() -> Rng {
        let seed = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
        eprintln!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn acknowledged_commits_survive_sigkill_20_times() {
    let dir = tempfile::tempdir().unwrap();
    sigkill_cycles(&dir.path().join("data"), 20, &[], 20..420);
}

/// The same with write buffers so small (`--cache-mb 16`: 4 MiB of memtables, an 8 MiB WAL bound) and
/// entries so large that each run fills, flushes and recycles WAL files many times: a kill lands while
/// the WAL being written is a reused file whose older records are still on disk past the new ones.
#[test]
fn acknowledged_commits_survive_sigkill_while_wal_files_are_recycled() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    sigkill_cycles(&data, 8, &["--cache-mb", "16", "--value-bytes", "4000"], 600..1800);
    let log = std::fs::read_to_string(data.join("store").join("LOG")).unwrap();
    let mut reused = log.matches("from recycle list").count();
    for entry in std::fs::read_dir(data.join("store")).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("LOG.old") {
            reused += std::fs::read_to_string(&path).unwrap().matches("from recycle list").count();
        }
    }
    assert!(reused > 0, "no WAL file was reused: the test did not exercise recycling");
    eprintln!("WAL files reused: {reused}");
}

/// `cycles` times: start a writer (`vouchdb load` with `extra` arguments) on `data`, kill it with
/// SIGKILL after a random number of milliseconds from `window` past its first acknowledgement, and
/// check that every acknowledged transaction is there and the root recomputes.
fn sigkill_cycles(data: &std::path::Path, cycles: usize, extra: &[&str], window: std::ops::Range<u64>) {
    let mut rng = Rng::seeded();
    let mut acked_total = 0usize;
    for cycle in 0..cycles {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
            .args(["load", "--clients", "16", "--txs", "100000000", "--print-acks"])
            .args(extra)
            .arg("--data-dir")
            .arg(data)
            .env("VOUCHDB_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start writer");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = line.strip_prefix("ack ") {
                    tx.send(id.parse::<u64>().expect("ack line carries a tx id")).ok();
                }
            }
        });
        // Wait for the writer to be committing, then kill it at a random moment.
        let first = rx.recv_timeout(Duration::from_secs(30)).expect("writer acknowledged nothing within 30 s");
        let deadline = Instant::now() + Duration::from_millis(window.start + rng.next() % (window.end - window.start));
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().expect("SIGKILL the writer");
        child.wait().unwrap();
        reader.join().unwrap();
        let mut acked: Vec<u64> = std::iter::once(first).chain(rx.try_iter()).collect();
        acked.sort_unstable();
        let ledger =
            Ledger::open(data.join("store"), Options::default()).unwrap_or_else(|e| panic!("cycle {cycle}: store did not reopen: {e}"));
        let size = ledger.head().size;
        let max = *acked.last().unwrap();
        assert!(max <= size, "cycle {cycle}: tx {max} was acknowledged but the tree has only {size}");
        for &id in &acked {
            let rec = ledger.get_tx(id).unwrap_or_else(|e| panic!("cycle {cycle}: acknowledged tx {id} unreadable: {e}"));
            assert_eq!(rec.entries.len(), 1);
            let key = rec.entries[0].key.clone();
            let latest = ledger.get_latest(1, &key).unwrap().expect("acknowledged key is indexed");
            assert_eq!(latest.tx, id);
        }
        let report = ledger.scan(|_, _| {}).unwrap_or_else(|e| panic!("cycle {cycle}: root does not recompute: {e}"));
        assert_eq!(report.size, size);
        acked_total += acked.len();
        eprintln!("cycle {cycle}: {} acks, tree size {size}", acked.len());
    }
    assert!(acked_total > cycles, "the writer barely wrote anything");
}

/// Concurrent writers over pgwire, each committing two-table transactions (and single-row autocommit
/// writes), while the server is killed with SIGKILL at a random moment, 50 times over one data
/// directory. After each restart every acknowledged commit is present, no transaction is half visible
/// (every `pay` row has its `slip` and the reverse), and at the end `vouchdb check` recomputes the
/// tree from genesis.
#[test]
fn acknowledged_sql_commits_survive_sigkill_50_times() {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};
    let mut rng = Rng::seeded();
    let mut s = common::Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        s.client()
            .await
            .batch_execute(
                "CREATE TABLE pay (id bigint PRIMARY KEY, writer int, cycle int); CREATE INDEX pay_writer ON pay (writer);
                 CREATE TABLE slip (id bigint PRIMARY KEY, note text); CREATE TABLE single (id bigint PRIMARY KEY)",
            )
            .await
            .unwrap();
    });
    let next = Arc::new(AtomicI64::new(1));
    let acked: Arc<Mutex<Vec<(i64, bool)>>> = Arc::default();
    for cycle in 0..50 {
        let url = s.url();
        let kill_after = Duration::from_millis(30 + rng.next() % 250);
        let acks_before = acked.lock().unwrap().len();
        rt.block_on(async {
            let mut writers = Vec::new();
            for w in 0..8 {
                let (url, next, acked) = (url.clone(), next.clone(), acked.clone());
                writers.push(tokio::spawn(async move {
                    let Ok((mut c, conn)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await else { return };
                    tokio::spawn(conn);
                    loop {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let two = id % 3 != 0;
                        let done = if two {
                            match c.transaction().await {
                                Ok(t) => {
                                    let a = t.execute("INSERT INTO pay VALUES ($1, $2, $3)", &[&id, &w, &cycle]).await;
                                    let b = t.execute("INSERT INTO slip VALUES ($1, $2)", &[&id, &format!("slip {id}")]).await;
                                    match (a, b) {
                                        (Ok(_), Ok(_)) => t.commit().await.is_ok(),
                                        _ => false,
                                    }
                                }
                                Err(_) => false,
                            }
                        } else {
                            c.execute("INSERT INTO single VALUES ($1)", &[&id]).await.is_ok()
                        };
                        if !done {
                            return; // the server is gone
                        }
                        acked.lock().unwrap().push((id, two));
                    }
                }));
            }
            tokio::time::sleep(kill_after).await;
            s.stop(); // SIGKILL
            for w in writers {
                tokio::time::timeout(Duration::from_secs(30), w).await.expect("a writer hung after the kill").unwrap();
            }
        });
        s.restart();
        let acked_now = acked.lock().unwrap().clone();
        rt.block_on(async {
            let c = s.client().await;
            let ids = |sql: &'static str| {
                let c = &c;
                async move { c.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, i64>(0)).collect::<std::collections::BTreeSet<i64>>() }
            };
            let (pay, slip, single) = (ids("SELECT id FROM pay").await, ids("SELECT id FROM slip").await, ids("SELECT id FROM single").await);
            assert_eq!(pay, slip, "cycle {cycle}: a two-table transaction is half visible");
            for (id, two) in &acked_now {
                let there = if *two { pay.contains(id) } else { single.contains(id) };
                assert!(there, "cycle {cycle}: acknowledged commit {id} is missing after the restart");
            }
            // Reads and indexes agree with the table after recovery.
            let by_index: i64 = c.query_one("SELECT count(*) FROM pay WHERE writer >= 0", &[]).await.unwrap().get(0);
            assert_eq!(by_index as usize, pay.len(), "cycle {cycle}: the secondary index disagrees with the table");
        });
        eprintln!("cycle {cycle}: killed after {kill_after:?}, {} new acks, {} in all", acked_now.len() - acks_before, acked_now.len());
    }
    assert!(acked.lock().unwrap().len() > 500, "the writers barely wrote anything");
    s.stop();
    let o = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
        .args(["check", "--data-dir"])
        .arg(s.data_dir())
        .env("VOUCHDB_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "vouchdb check: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
