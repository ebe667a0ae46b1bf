//! Every acknowledged commit survives `kill -9`: a writer process appending from 16 committers is killed
//! at a random moment, 20 times over the same data directory; after each kill every transaction it had
//! acknowledged is present, the store opens consistent, and the root recomputes from the log.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use vouchdb::ledger::{Ledger, Options};

struct Rng(u64);
impl Rng {
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
    let data = dir.path().join("data");
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 | 1);
    eprintln!("crash test seed {seed} (rerun with CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let mut acked_total = 0usize;
    for cycle in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
            .args(["load", "--clients", "16", "--txs", "100000000", "--print-acks", "--data-dir"])
            .arg(&data)
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
        let deadline = Instant::now() + Duration::from_millis(20 + rng.next() % 400);
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
    assert!(acked_total > 20, "the writer barely wrote anything");
}
