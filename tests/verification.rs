//! Verification a client can trust: the SQL proof functions, the trusted-state client (rollback and
//! fork refused), tampering with the store caught by the client and by the auditor (naming the tx), an
//! independent Python RFC 9162 verifier and openssl on psql output, offline bundles, the auditor's
//! incremental rounds and metrics.

mod common;

use common::{copy_dir, Server, PASSWORD};
use rocksdb::{Options as DbOptions, DB};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vouchdb::client::state::TrustedState;
use vouchdb::client::{ClientError, Trust, VerifyingClient};
use vouchdb::ledger::keys::*;
use vouchdb::merkle::NodeId;
use vouchdb::sql::value::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn sqlstate(c: &tokio_postgres::Client, sql: &str) -> String {
    match c.batch_execute(sql).await {
        Ok(()) => panic!("{sql} succeeded"),
        Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {e}")),
    }
}

/// A table `t (id int primary key, v text)` with rows 1..=n, one transaction each.
async fn fill(c: &tokio_postgres::Client, n: i32) {
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)").await.unwrap();
    for i in 1..=n {
        c.execute("INSERT INTO t VALUES ($1, $2)", &[&i, &format!("value {i}")]).await.unwrap();
    }
}

async fn row_tx(c: &tokio_postgres::Client, id: i32) -> u64 {
    let tx: i64 = c.query_one("SELECT _tx FROM t WHERE id = $1", &[&id]).await.unwrap().get(0);
    tx as u64
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("trusted.json")
}

async fn verifying(s: &Server, state: &Path, trust: Trust) -> Result<VerifyingClient, ClientError> {
    VerifyingClient::connect(&s.url(), TrustedState::load(state).unwrap(), trust).await
}

fn vouchdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouchdb")).args(args).env("PGPASSWORD", PASSWORD).env("VOUCHDB_LOG", "warn").output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn audit_once(s: &Server, state: &Path) -> Output {
    let pubkey = s.public_key_file();
    vouchdb(&["audit", "--once", "--server", &s.url(), "--public-key", pubkey.to_str().unwrap(), "--state", state.to_str().unwrap()])
}

/// Change the stopped server's store behind its back, as someone editing the data files would.
fn tamper(s: &mut Server, f: impl FnOnce(&DB)) {
    s.stop();
    {
        let db = DB::open_cf(&DbOptions::default(), s.data_dir().join("store"), ALL_CFS).unwrap();
        f(&db);
        db.flush_wal(true).unwrap();
    }
    s.restart();
}

fn flip_byte(db: &DB, cf: &str, key: &[u8], at: usize) {
    let h = db.cf_handle(cf).unwrap();
    let mut v = db.get_cf(h, key).unwrap().expect("the value to tamper with exists");
    let at = at.min(v.len() - 1);
    v[at] ^= 0x01;
    db.put_cf(h, key, v).unwrap();
}

#[test]
fn proof_functions_compose_with_sql_and_fail_cleanly() {
    let s = Server::start();
    rt().block_on(async {
        let c = s.client().await;
        fill(&c, 3).await;
        c.batch_execute("UPDATE t SET v = 'changed' WHERE id = 2; DELETE FROM t WHERE id = 3").await.unwrap();
        // Parameters, WHERE on the proof columns, joins with ordinary tables.
        let r = c.query_one("SELECT v, _tx, _tree_size FROM verified_get('t', $1) WHERE _tree_size >= _tx", &[&2i32]).await.unwrap();
        assert_eq!(r.get::<_, String>(0), "changed");
        let r = c
            .query("SELECT t.id, g.v FROM t JOIN verified_get('t', 1) g ON g.id = t.id WHERE g._entry_proof IS NOT NULL", &[])
            .await
            .unwrap();
        assert_eq!(r.len(), 1);
        // Arguments may be scalar subqueries.
        let r = c.query_one("SELECT id FROM verified_get('t', (SELECT min(id) FROM t WHERE v = 'changed'))", &[]).await.unwrap();
        assert_eq!(r.get::<_, i32>(0), 2);
        let n: i64 = c.query_one("SELECT count(*) FROM verified_tx((SELECT max(_tx) FROM t))", &[]).await.unwrap().get(0);
        assert_eq!(n, 1);
        let proof: Vec<String> = c.query_one("SELECT _tx_proof FROM verified_get('t', 1)", &[]).await.unwrap().get(0);
        assert!(proof.iter().all(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())));
        // History: every version with proofs, the delete included; a deleted row has no current version.
        let h = c.query("SELECT v, _deleted FROM verified_history('t', 3)", &[]).await.unwrap();
        assert_eq!(h.iter().map(|r| r.get::<_, bool>(1)).collect::<Vec<_>>(), vec![false, true]);
        assert!(c.query("SELECT * FROM verified_get('t', 3)", &[]).await.unwrap().is_empty());
        let first_tx = row_tx(&c, 2).await - 1; // the insert of id 2
        let old: String = c.query_one("SELECT v FROM verified_get_at('t', $1, 2)", &[&(first_tx as i64)]).await.unwrap().get(0);
        assert_eq!(old, "value 2");
        let n: i64 = c.query_one("SELECT count(*) FROM vouch_txs(1, 1000)", &[]).await.unwrap().get(0);
        let size: i64 = c.query_one("SELECT tree_size FROM vouch_checkpoint()", &[]).await.unwrap().get(0);
        assert_eq!(n, size);
        let r = c.query_one("SELECT leaf_index, tree_size FROM inclusion_proof(2, 4)", &[]).await.unwrap();
        assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (1, 4));
        let r = c.query_one("SELECT old_root = new_root, cardinality(proof) FROM consistency_proof(3, 3)", &[]).await.unwrap();
        assert_eq!((r.get::<_, bool>(0), r.get::<_, i32>(1)), (true, 0));

        // Errors: each with its SQLSTATE, the connection still usable.
        assert_eq!(sqlstate(&c, "SELECT * FROM verified_get('t')").await, "42883");
        assert_eq!(sqlstate(&c, "SELECT * FROM verified_get('nope', 1)").await, "42P01");
        assert_eq!(sqlstate(&c, "SELECT * FROM verified_get(t, 1)").await, "42601");
        assert_eq!(sqlstate(&c, "SELECT * FROM inclusion_proof(999, 2)").await, "22023");
        assert_eq!(sqlstate(&c, "SELECT * FROM inclusion_proof(2, 99999)").await, "22023");
        assert_eq!(sqlstate(&c, "SELECT * FROM consistency_proof(5, 2)").await, "22023");
        assert_eq!(sqlstate(&c, "SELECT * FROM verified_tx(0)").await, "22023");
        assert_eq!(sqlstate(&c, "SELECT * FROM verified_tx(-1)").await, "22023");
        assert_eq!(sqlstate(&c, "SELECT * FROM vouch_txs(1, 200000)").await, "54000");
        assert_eq!(sqlstate(&c, "BEGIN; INSERT INTO t VALUES (9, 'uncommitted'); SELECT * FROM verified_get('t', 9)").await, "55000");
        c.batch_execute("ROLLBACK").await.unwrap();
        // Whole transactions hold roles' SCRAM verifiers: superusers only.
        c.batch_execute("CREATE USER app PASSWORD 'app-pw'; GRANT SELECT ON t TO app").await.unwrap();
        let (app, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=app password=app-pw dbname=vouchdb", s.port),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        assert_eq!(sqlstate(&app, "SELECT * FROM vouch_txs(1, 10)").await, "42501");
        assert_eq!(sqlstate(&app, "SELECT * FROM verified_tx(1)").await, "42501");
        let v: String = app.query_one("SELECT v FROM verified_get('t', 1)", &[]).await.unwrap().get(0);
        assert_eq!(v, "value 1");
    });
}

#[test]
fn client_verifies_rows_and_refuses_rollback_and_fork() {
    let mut s = Server::start();
    let state = state_path(s.dir.path());
    let backup = s.dir.path().join("backup");
    let rt = rt();
    let pem = std::fs::read_to_string(s.public_key_file()).unwrap();
    rt.block_on(async {
        let c = s.client().await;
        fill(&c, 5).await;
        // No state and no key: refused. Then pinned.
        assert!(matches!(verifying(&s, &state, Trust::StateOnly).await, Err(ClientError::Untrusted(_))));
        let mut v = verifying(&s, &state, Trust::Pinned(pem.clone())).await.unwrap();
        let row = v.verified_get("t", &[Value::Int(4)]).await.unwrap().unwrap();
        assert_eq!(row.values, vec![Value::Int(4), Value::Text("value 4".into())]);
        assert_eq!(row.tx, row_tx(&c, 4).await);
        assert!(v.verified_get("t", &[Value::Int(99)]).await.unwrap().is_none());
        let tx = v.verified_tx(row.tx).await.unwrap();
        assert_eq!(tx.entries.len(), 1);
        assert!(String::from_utf8_lossy(&tx.provenance).contains("INSERT INTO t"));
        // Another key under the same origin is refused.
        let other = std::fs::read_to_string(s.dir.path().join("pub.pem")).unwrap().replace('A', "B");
        assert!(verifying(&s, &state, Trust::Pinned(other)).await.is_err());
    });
    // Snapshot the data directory, then commit more and let the client trust the bigger tree.
    s.stop();
    copy_dir(&s.data_dir(), &backup);
    s.restart();
    let trusted = rt.block_on(async {
        let c = s.client().await;
        c.batch_execute("INSERT INTO t VALUES (6, 'six'); INSERT INTO t VALUES (7, 'seven')").await.unwrap();
        let mut v = verifying(&s, &state, Trust::StateOnly).await.unwrap();
        v.checkpoint().await.unwrap().size
    });
    // Rollback: the old copy is served again.
    s.stop();
    std::fs::remove_dir_all(s.data_dir()).unwrap();
    copy_dir(&backup, &s.data_dir());
    s.restart();
    rt.block_on(async {
        match verifying(&s, &state, Trust::StateOnly).await {
            Err(ClientError::Rollback { trusted: t, got }) => assert!(t == trusted && got < trusted),
            Err(e) => panic!("expected a rollback error, got {e}"),
            Ok(_) => panic!("a rolled-back server was trusted"),
        }
        assert_eq!(TrustedState::load(&state).unwrap().only().unwrap().1.tree_size, trusted, "state not advanced");
        // Fork: the old copy diverges to the trusted size with other transactions…
        let c = s.client().await;
        // (the two statements of one query string are one transaction, as the trusted tree's were)
        c.batch_execute("INSERT INTO t VALUES (6, 'other six'); INSERT INTO t VALUES (7, 'other seven')").await.unwrap();
        let size: i64 = c.query_one("SELECT tree_size FROM vouch_checkpoint()", &[]).await.unwrap().get(0);
        assert_eq!(size as u64, trusted);
        match verifying(&s, &state, Trust::StateOnly).await {
            Err(ClientError::Fork(m)) => assert!(m.contains(&format!("tree size {trusted}")), "{m}"),
            Err(e) => panic!("expected a fork error, got {e}"),
            Ok(_) => panic!("a forked server was trusted"),
        }
        // …and beyond it: the consistency proof fails.
        c.batch_execute("INSERT INTO t VALUES (8, 'eight')").await.unwrap();
        match verifying(&s, &state, Trust::StateOnly).await {
            Err(ClientError::Fork(m)) => assert!(m.contains("not an extension"), "{m}"),
            Err(e) => panic!("expected a fork error, got {e}"),
            Ok(_) => panic!("a forked server was trusted"),
        }
        assert_eq!(TrustedState::load(&state).unwrap().only().unwrap().1.tree_size, trusted, "state not advanced");
    });
}

/// What one tampering test needs: a server with 16 single-row transactions after the table's, the tx
/// of row 5, a client state pinned before the tampering, and a clean audit of the untampered store.
fn tamper_setup() -> (Server, u64, PathBuf) {
    let s = Server::start();
    let state = state_path(s.dir.path());
    let pem = std::fs::read_to_string(s.public_key_file()).unwrap();
    let tx = rt().block_on(async {
        let c = s.client().await;
        fill(&c, 16).await;
        let mut v = verifying(&s, &state, Trust::Pinned(pem)).await.unwrap();
        assert!(v.verified_get("t", &[Value::Int(5)]).await.unwrap().is_some());
        row_tx(&c, 5).await
    });
    let clean = audit_once(&s, &s.dir.path().join("clean-audit.json"));
    assert!(clean.status.success(), "{}", text(&clean));
    (s, tx, state)
}

/// After tampering: the client's verified_get of row 5 and a fresh auditor both fail, naming `tx`.
fn assert_caught(s: &Server, state: &Path, client_tx: u64, auditor_tx: u64, what: &str) {
    let err = rt().block_on(async {
        let mut v = verifying(s, state, Trust::StateOnly).await.unwrap();
        v.verified_get("t", &[Value::Int(5)]).await.expect_err("a tampered row verified")
    });
    assert!(err.is_integrity(), "{err}");
    assert!(err.to_string().contains(&format!("tx {client_tx} ")), "client error does not name tx {client_tx}: {err}");
    let out = audit_once(s, &s.dir.path().join("fresh-audit.json"));
    let t = text(&out);
    assert!(!out.status.success(), "auditor passed a tampered store: {t}");
    assert!(t.contains("VERIFICATION FAILED") && t.contains(&format!("tx {auditor_tx} ")), "auditor does not name tx {auditor_tx}: {t}");
    assert!(t.contains(what), "auditor does not say {what:?}: {t}");
}

#[test]
fn a_changed_stored_value_is_caught_by_the_client_and_the_auditor() {
    let (mut s, tx, state) = tamper_setup();
    // The last byte of the row's entry: a character of its text value.
    tamper(&mut s, |db| flip_byte(db, CF_ENTRIES, &entry_key(tx, 0), usize::MAX));
    assert_caught(&s, &state, tx, tx, "entries hash to root");
}

#[test]
fn a_changed_leaf_is_caught_by_the_client_and_the_auditor() {
    let (mut s, tx, state) = tamper_setup();
    // A byte of the commit time in the tx's leaf data.
    tamper(&mut s, |db| flip_byte(db, CF_LOG, &tx_key(tx), 20));
    assert_caught(&s, &state, tx, tx, "stored tree node (level 0");
}

#[test]
fn a_changed_merkle_node_is_caught_by_the_client_and_the_auditor() {
    let (mut s, tx, state) = tamper_setup();
    // The leaf hash next to row 5's leaf: on its inclusion path, stored for the sibling transaction.
    let sibling = (tx - 1) ^ 1;
    tamper(&mut s, |db| flip_byte(db, CF_MERKLE, &node_key(NodeId { level: 0, index: sibling }), 0));
    assert_caught(&s, &state, tx, sibling + 1, "stored tree node (level 0");
}

#[test]
fn an_independent_verifier_and_openssl_check_psql_output() {
    let s = Server::start();
    rt().block_on(async { fill(&s.client().await, 6).await });
    let pubkey = s.public_key_file();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifier/walkthrough.sh");
    let work = s.dir.path().join("walk");
    let out =
        Command::new("bash").arg(&script).args([&s.url(), "t", "5"]).arg(&pubkey).arg(&work).env("PGPASSWORD", PASSWORD).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "walk-through failed: {t}");
    assert!(t.contains("Verified OK") && t.contains("RESULT  all 5 checks passed") && t.contains("text \"value 5\""), "{t}");
    // The same verifier refuses a proof with one changed hash.
    let args = std::fs::read_to_string(work.join("proof.args")).unwrap();
    let mut words: Vec<String> = args.split_whitespace().map(str::to_string).collect();
    let i = words.iter().position(|w| w == "--tx-proof").unwrap() + 1;
    let first = words[i].chars().nth(1).unwrap();
    words[i].replace_range(1..2, if first == '0' { "1" } else { "0" });
    let verifier = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifier/rfc9162.py");
    let out = Command::new("python3").arg(&verifier).arg("row").args(&words).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("FAIL"), "{}", text(&out));
    // And consistency proofs from SQL, checked by the same independent code.
    let c = rt().block_on(async {
        let c = s.client().await;
        let r = c.query_one("SELECT old_size, new_size, old_root, new_root, proof FROM consistency_proof(3, 7)", &[]).await.unwrap();
        (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, String>(2), r.get::<_, String>(3), r.get::<_, Vec<String>>(4))
    });
    let out = Command::new("python3")
        .arg(&verifier)
        .args(["consistency", "--old", &c.0.to_string(), "--new", &c.1.to_string(), "--old-root", &c.2, "--new-root", &c.3])
        .args(["--proof", &c.4.join(",")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn offline_bundles_verify_and_a_changed_bundle_does_not() {
    let s = Server::start();
    rt().block_on(async { fill(&s.client().await, 4).await });
    let pubkey = s.public_key_file();
    let state = state_path(s.dir.path());
    let bundle = s.dir.path().join("row.tlog-proof");
    let (p, st, b) = (pubkey.to_str().unwrap(), state.to_str().unwrap(), bundle.to_str().unwrap());
    let out = vouchdb(&[
        "verify",
        "row",
        "--server",
        &s.url(),
        "--state",
        st,
        "--public-key",
        p,
        "--table",
        "t",
        "--key",
        "3",
        "--bundle-out",
        b,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1: value 3"), "{}", text(&out));
    let out = vouchdb(&["verify", "bundle", b, "--public-key", p]);
    assert!(out.status.success(), "{}", text(&out));
    let original = std::fs::read_to_string(&bundle).unwrap();
    assert!(original.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{original}");
    // Change one character of the first proof hash line.
    let lines: Vec<&str> = original.lines().collect();
    let i = lines.iter().position(|l| l.starts_with("index ")).unwrap() + 1;
    let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    let c = if changed[i].starts_with('A') { "B" } else { "A" };
    changed[i].replace_range(0..1, c);
    std::fs::write(&bundle, changed.join("\n") + "\n").unwrap();
    let out = vouchdb(&["verify", "bundle", b, "--public-key", p]);
    assert!(!out.status.success() && text(&out).contains("VERIFICATION FAILED"), "{}", text(&out));
    // A key the bundle was not signed with.
    let other = s.dir.path().join("other.key");
    let o = vouchdb(&["keygen", "--out", other.to_str().unwrap()]);
    let other_pub = s.dir.path().join("other.pem");
    std::fs::write(&other_pub, &o.stdout).unwrap();
    std::fs::write(&bundle, &original).unwrap();
    let out = vouchdb(&["verify", "bundle", b, "--public-key", other_pub.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    // The CLI without a pinned key or state refuses, naming the flags.
    let out = vouchdb(&["verify", "checkpoint", "--server", &s.url(), "--state", s.dir.path().join("none.json").to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("--trust-on-first-use"), "{}", text(&out));
}

#[test]
fn the_auditor_catches_up_in_rounds_and_serves_metrics() {
    let s = Server::start();
    rt().block_on(async { fill(&s.client().await, 20).await });
    let state = s.dir.path().join("audit.json");
    let out = audit_once(&s, &state);
    assert!(out.status.success(), "{}", text(&out));
    let first: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let size1 = first["tree_size"].as_u64().unwrap();
    rt().block_on(async {
        s.client().await.batch_execute("INSERT INTO t VALUES (100, 'more'); UPDATE t SET v = 'x' WHERE id = 1").await.unwrap()
    });
    let out = audit_once(&s, &state);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("audited tx {}..=", size1 + 1)), "second round starts after the first: {}", text(&out));
    // Continuous mode with metrics.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let pubkey = s.public_key_file();
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
        .args(["audit", "--server", &s.url(), "--public-key", pubkey.to_str().unwrap(), "--state", state.to_str().unwrap()])
        .args(["--interval", "1", "--metrics-listen", &format!("127.0.0.1:{port}")])
        .env("VOUCHDB_LOG", "warn")
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let body = loop {
        let got = std::net::TcpStream::connect(("127.0.0.1", port)).ok().and_then(|mut conn| {
            use std::io::{Read, Write};
            conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").ok()?;
            let mut b = String::new();
            conn.read_to_string(&mut b).ok()?;
            Some(b)
        });
        match got {
            Some(b) if b.contains("vouchdb_audit_healthy 1") => break b,
            _ if std::time::Instant::now() > deadline => panic!("no healthy metrics within 20 s: {got:?}"),
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(body.contains("vouchdb_audit_tree_size ") && body.contains("vouchdb_audit_transactions_verified_total"), "{body}");
}

#[test]
fn the_independent_verifier_passes_its_own_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/verifier");
    let out = Command::new("python3").args(["-m", "unittest", "discover", "-s"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// Item references: the client, `vouchdb verify deref` and a tampered reference entry.
#[test]
fn references_are_proven_with_their_target_and_tampering_is_caught() {
    let mut s = Server::start();
    let state = state_path(s.dir.path());
    let pem = std::fs::read_to_string(s.public_key_file()).unwrap();
    let rt = rt();
    let ref_tx = rt.block_on(async {
        let c = s.client().await;
        fill(&c, 3).await;
        let one = row_tx(&c, 1).await;
        c.batch_execute("INSERT INTO vouch_references VALUES ('cur', 't', ARRAY['2'], NULL)").await.unwrap();
        c.execute("INSERT INTO vouch_references VALUES ('pin', 't', ARRAY['1'], $1)", &[&(one as i64)]).await.unwrap();
        c.batch_execute("UPDATE t SET v = 'changed' WHERE id IN (1, 2)").await.unwrap();
        let mut v = verifying(&s, &state, Trust::Pinned(pem)).await.unwrap();
        // Unpinned: the target's latest version.
        let d = v.verified_deref("cur").await.unwrap().unwrap();
        assert_eq!(d.row.values, vec![Value::Int(2), Value::Text("changed".into())]);
        assert_eq!(d.pinned_tx, None);
        // Pinned: the version as of that tx, although the row changed since.
        let d = v.verified_deref("pin").await.unwrap().unwrap();
        assert_eq!(d.row.values, vec![Value::Int(1), Value::Text("value 1".into())]);
        assert_eq!((d.pinned_tx, d.row.tx), (Some(one), one));
        // A deleted target: nothing to prove.
        c.batch_execute("DELETE FROM t WHERE id = 2").await.unwrap();
        assert!(v.verified_deref("cur").await.unwrap().is_none());
        c.batch_execute("INSERT INTO t VALUES (2, 'back')").await.unwrap();
        // An unknown reference is the server's error, not a proof failure.
        let e = v.verified_deref("nope").await.unwrap_err();
        assert!(!e.is_integrity(), "{e}");
        let tx: i64 = c.query_one("SELECT _tx FROM vouch_references WHERE name = 'cur'", &[]).await.unwrap().get(0);
        tx as u64
    });
    let cli = |s: &Server, name: &str| {
        let (st, pubkey) = (s.dir.path().join("cli.json"), s.public_key_file());
        vouchdb(&[
            "verify",
            "deref",
            "--server",
            &s.url(),
            "--public-key",
            pubkey.to_str().unwrap(),
            "--state",
            st.to_str().unwrap(),
            "--name",
            name,
        ])
    };
    let out = cli(&s, "cur");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("the reference \"cur\" is an entry of tx") && text(&out).contains("1: back"), "{}", text(&out));
    // The reference's name in the row its entry keeps: changed in the store, the entry no longer
    // hashes to its transaction's entries root. (A changed target would make the server read another
    // row, or none: an absence the server asserts without proof.)
    tamper(&mut s, |db| {
        let v = db.get_cf(db.cf_handle(CF_ENTRIES).unwrap(), entry_key(ref_tx, 0)).unwrap().unwrap();
        let at = v.windows(3).rposition(|w| w == b"cur").expect("the name is in the entry");
        flip_byte(db, CF_ENTRIES, &entry_key(ref_tx, 0), at);
    });
    let err = rt.block_on(async {
        let mut v = verifying(&s, &state, Trust::StateOnly).await.unwrap();
        v.verified_deref("cur").await.expect_err("a tampered reference verified")
    });
    assert!(err.is_integrity(), "{err}");
    assert!(err.to_string().contains(&format!("tx {ref_tx} ")), "{err}");
    let out = cli(&s, "cur");
    assert!(!out.status.success(), "{}", text(&out));
}

/// `vouchdb serve --metrics-listen`: the log and RocksDB's memory, computed on each scrape.
#[test]
fn the_server_serves_prometheus_metrics() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let s = Server::start_with(|_| vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")]);
    let scrape = || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut b = String::new();
        conn.read_to_string(&mut b).unwrap();
        b
    };
    let value = |body: &str, name: &str| -> u64 {
        let line = body.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap_or_else(|| panic!("no {name} in {body}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let before = scrape();
    rt().block_on(async {
        let c = s.client().await;
        fill(&c, 20).await;
    });
    let after = scrape();
    let size: u64 = rt().block_on(async {
        let c = s.client().await;
        let n: i64 = c.query_one("SELECT tree_size FROM vouch_checkpoint()", &[]).await.unwrap().get(0);
        n as u64
    });
    assert_eq!(value(&after, "vouchdb_tree_size"), size);
    assert!(value(&after, "vouchdb_commit_batches_total") > value(&before, "vouchdb_commit_batches_total"));
    assert!(value(&after, "vouchdb_commit_batch_bytes_total") > value(&before, "vouchdb_commit_batch_bytes_total"));
    assert!(value(&after, "vouchdb_rocksdb_memtable_bytes") > 0);
    let rss = value(&after, "process_resident_memory_bytes");
    assert!(rss > 1 << 20 && rss < 4 << 30, "{rss}");
    for name in [
        "vouchdb_rocksdb_block_cache_bytes",
        "vouchdb_rocksdb_sst_bytes",
        "vouchdb_proof_material_cache_entries",
        "vouchdb_proof_material_cache_bytes",
        "vouchdb_row_cache_bytes",
    ] {
        value(&after, name);
    }
}
