//! Sequence values are never handed out twice, also across `kill -9`: clients draw values (SERIAL
//! inserts and plain nextval) while the server is killed at a random-ish moment, three times over the
//! same data directory; every value a client received is distinct, and after each restart the sequences
//! continue past all of them. The provenance of each insert records the values it drew.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sequence_values_never_repeat_across_sigkill() {
    let mut server = common::Server::start();
    server.client().await.batch_execute("CREATE TABLE seqk (id BIGSERIAL PRIMARY KEY, v TEXT); CREATE SEQUENCE seqk_s").await.unwrap();
    let mut ids: HashSet<i64> = HashSet::new();
    let mut vals: HashSet<i64> = HashSet::new();
    for cycle in 0..3u64 {
        let stop = Arc::new(AtomicBool::new(false));
        let got_ids = Arc::new(Mutex::new(Vec::new()));
        let got_vals = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let client = server.client().await;
            let (stop, got_ids, got_vals) = (stop.clone(), got_ids.clone(), got_vals.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match client.query_one("INSERT INTO seqk (v) VALUES ('x') RETURNING id", &[]).await {
                        Ok(r) => got_ids.lock().unwrap().push(r.get::<_, i64>(0)),
                        Err(_) => break,
                    }
                    match client.query_one("SELECT nextval('seqk_s')", &[]).await {
                        Ok(r) => got_vals.lock().unwrap().push(r.get::<_, i64>(0)),
                        Err(_) => break,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + 170 * cycle)).await;
        server.stop(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let (new_ids, new_vals) = (got_ids.lock().unwrap().clone(), got_vals.lock().unwrap().clone());
        assert!(new_ids.len() > 10 && new_vals.len() > 10, "cycle {cycle}: clients barely ran");
        for id in new_ids {
            assert!(ids.insert(id), "cycle {cycle}: id {id} handed out twice");
        }
        for v in new_vals {
            assert!(vals.insert(v), "cycle {cycle}: nextval {v} handed out twice");
        }
        server.restart();
        let c = server.client().await;
        let next: i64 = c.query_one("SELECT nextval('seqk_s')", &[]).await.unwrap().get(0);
        assert!(vals.iter().all(|v| *v < next), "cycle {cycle}: nextval {next} after restart is not past every value handed out");
        vals.insert(next);
        let id: i64 = c.query_one("INSERT INTO seqk (v) VALUES ('after') RETURNING id", &[]).await.unwrap().get(0);
        assert!(ids.iter().all(|v| *v < id), "cycle {cycle}: id {id} after restart is not past every id handed out");
        ids.insert(id);
    }
    // A random UUID a default drew is recorded too.
    let c = server.client().await;
    c.batch_execute("CREATE TABLE sequk (id UUID PRIMARY KEY DEFAULT gen_random_uuid(), n INTEGER)").await.unwrap();
    let uuid: String = c.query_one("INSERT INTO sequk (n) VALUES (1) RETURNING id::text", &[]).await.unwrap().get(0);
    drop(c);
    // Every committed insert's provenance records the id it drew, and the commit time it read.
    server.terminate();
    let ledger = vouchdb::ledger::Ledger::open(server.data_dir().join("store"), Default::default()).unwrap();
    let mut recorded = HashSet::new();
    let mut recorded_uuid = false;
    for tx in 1..=ledger.head().size {
        let rec = ledger.get_tx(tx).unwrap();
        let p: serde_json::Value = serde_json::from_slice(&rec.provenance).unwrap();
        let inserts = p["statements"].as_array().is_some_and(|s| s.iter().any(|s| s.as_str().is_some_and(|s| s.starts_with("INSERT"))));
        if let Some(u) = p["random_uuids"].as_array() {
            assert_eq!(u.len(), 1, "tx {tx}: {p}");
            assert_eq!(u[0].as_str(), Some(uuid.as_str()));
            recorded_uuid = true;
            continue;
        }
        if !inserts {
            continue;
        }
        assert!(p["now_us"].as_i64().is_some(), "tx {tx}: no now_us in {p}");
        let drawn = p["sequence_values"].as_array().unwrap_or_else(|| panic!("tx {tx}: no sequence_values in {p}"));
        assert_eq!(drawn.len(), 1, "tx {tx}: {p}");
        assert_eq!(drawn[0][0], "seqk_id_seq");
        assert!(recorded.insert(drawn[0][1].as_i64().unwrap()));
    }
    assert!(recorded_uuid, "the insert with a random UUID has no random_uuids in its provenance");
    assert!(ids.iter().all(|id| recorded.contains(id)), "an acknowledged insert's id is missing from the provenance records");
}

/// ALTER SEQUENCE is transactional and durable: a committed RESTART (and the values its transaction
/// drew from the restarted state) survive `kill -9`, a rolled-back one leaves no trace, and values are
/// never handed out twice either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_sequence_restart_is_transactional_across_sigkill() {
    let mut server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE SEQUENCE seqr").await.unwrap();
    let first: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    assert_eq!(first, 1);
    // Rolled back: the restart and the increment change vanish.
    c.batch_execute("BEGIN; ALTER SEQUENCE seqr RESTART WITH 500 INCREMENT BY 5").await.unwrap();
    let inside: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    assert_eq!(inside, 500);
    c.batch_execute("ROLLBACK").await.unwrap();
    // Committed: the values drawn inside are recorded as the sequence's state.
    c.batch_execute("BEGIN; ALTER SEQUENCE seqr RESTART WITH 1000 INCREMENT BY 10").await.unwrap();
    let a: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    let b: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    assert_eq!((a, b), (1000, 1010));
    c.batch_execute("COMMIT").await.unwrap();
    drop(c);
    server.stop(); // SIGKILL
    server.restart();
    let c = server.client().await;
    let next: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    assert_eq!(next, 1020, "after kill -9 the sequence continues from the committed restart's last value");
    let inc: String =
        c.query_one("SELECT increment FROM information_schema.sequences WHERE sequence_name = 'seqr'", &[]).await.unwrap().get(0);
    assert_eq!(inc, "10");
    // A committed definition change without RESTART: the values reserved under the old increment are
    // not reused; the next block is reserved under the new one.
    c.batch_execute("ALTER SEQUENCE seqr INCREMENT BY 1").await.unwrap();
    let after: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    assert_eq!(after, 1021);
    drop(c);
    server.stop();
    server.restart();
    let c = server.client().await;
    let resumed: i64 = c.query_one("SELECT nextval('seqr')", &[]).await.unwrap().get(0);
    assert!(resumed > after, "nextval {resumed} after kill -9 repeats a value handed out before it ({after})");
}
