//! Provenance (docs/PROVENANCE.md, docs/THREAT_MODEL.md): policies refuse what a role may not issue
//! and the refusal is in the log, client signatures and timestamps are checked, and the replay audit
//! catches writes injected below SQL; a changed record breaks the Merkle proof. Real server, real
//! store, real clients.

mod common;

use common::Server;
use std::process::{Command, Output};
use vouchdb::client::state::TrustedState;
use vouchdb::client::{ClientError, Trust, VerifyingClient};
use vouchdb::ledger::{Entry, Ledger, NewTx, Options};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn connect_as(s: &Server, user: &str, password: &str) -> tokio_postgres::Client {
    let url = format!("host=127.0.0.1 port={} user={user} password={password} dbname=vouchdb", s.port);
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// The SQLSTATE and message of a statement that must fail.
async fn refused(c: &tokio_postgres::Client, sql: &str) -> (String, String) {
    match c.batch_execute(sql).await {
        Ok(()) => panic!("{sql} succeeded"),
        Err(e) => {
            let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: no SQLSTATE: {e}"));
            (db.code().code().to_string(), db.message().to_string())
        }
    }
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

fn vouchdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouchdb")).args(args).env("VOUCHDB_LOG", "warn").output().unwrap()
}

fn replay(s: &Server) -> Output {
    vouchdb(&["audit", "--replay", "--data-dir", s.data_dir().to_str().unwrap()])
}

fn stdout(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

async fn verifying(s: &Server) -> VerifyingClient {
    let pem = std::fs::read_to_string(s.public_key_file()).unwrap();
    let state = TrustedState::load(s.dir.path().join("trusted.json")).unwrap();
    VerifyingClient::connect(&s.url(), state, Trust::Pinned(pem)).await.unwrap()
}

const SETUP: &str = "
    CREATE TABLE payments (id INT PRIMARY KEY, payer TEXT NOT NULL, amount NUMERIC);
    CREATE USER app PASSWORD 'app-pw';
    CREATE POLICY app_payments FOR ROLE app
        ALLOW 'INSERT INTO payments (id, payer, amount) VALUES ($1, $2, $3)' MAX ROWS 1
        ALLOW 'UPDATE payments SET amount = $1 WHERE payer = $2' MAX ROWS 1";

/// The scenario of the threat model: a role with an insert-only policy sends `DELETE FROM payments`.
/// It is refused with 42501, nothing is written, and the refusal is a transaction of the log that a
/// client verifies against the signed tree.
#[test]
fn an_insert_only_role_cannot_delete_and_the_refusal_is_in_the_log() {
    let mut s = Server::start();
    rt().block_on(async {
        let admin = s.client().await;
        admin.batch_execute(SETUP).await.unwrap();
        let app = connect_as(&s, "app", "app-pw").await;
        // Admitted: the template with literals, and with bound parameters (recorded with the statement).
        app.batch_execute("insert into payments (id, payer, amount)\n values (1, 'alice', 10)").await.unwrap();
        let ins = app.prepare("INSERT INTO payments (id, payer, amount) VALUES ($1, $2, $3)").await.unwrap();
        app.execute(&ins, &[&2i32, &"bob", &rust_decimal::Decimal::new(205, 1)]).await.unwrap();
        app.execute(&ins, &[&3i32, &"bob", &rust_decimal::Decimal::new(1, 0)]).await.unwrap();
        let head = count(&admin, "SELECT tree_size FROM vouch_checkpoint()").await;

        let (code, msg) = refused(&app, "DELETE FROM payments").await;
        assert_eq!(code, "42501", "{msg}");
        assert!(msg.contains("no policy of role \"app\""), "{msg}");
        assert_eq!(count(&admin, "SELECT count(*) FROM payments").await, 3, "nothing was deleted");
        // MAX ROWS: the UPDATE template admits the statement, but it would change two rows.
        let (code, msg) = refused(&app, "UPDATE payments SET amount = 0 WHERE payer = 'bob'").await;
        assert_eq!(code, "42501", "{msg}");
        assert!(msg.contains("MAX ROWS") || msg.contains("more than the 1"), "{msg}");
        assert_eq!(count(&admin, "SELECT count(*) FROM payments WHERE amount = 0").await, 0, "nothing was updated");
        app.batch_execute("UPDATE payments SET amount = 11 WHERE payer = 'alice'").await.unwrap();

        // Both refusals are transactions with no entries, in vouch_log, with the refused statement.
        let rows = admin.query("SELECT tx, statements[1], entries, refusal FROM vouch_log WHERE refused ORDER BY tx", &[]).await.unwrap();
        assert_eq!(rows.len(), 2);
        let (tx, stmt, entries): (i64, String, i32) = (rows[0].get(0), rows[0].get(1), rows[0].get(2));
        assert_eq!((tx, stmt.as_str(), entries), (head + 1, "DELETE FROM payments", 0));
        assert!(rows[1].get::<_, String>(3).starts_with("42501: "));
        // Admitted statements name their rule; parameters are recorded beside the statement.
        let row = admin
            .query_one(
                "SELECT policies[1], params::text FROM vouch_log WHERE principal = 'app' AND params IS NOT NULL ORDER BY tx LIMIT 1",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "app_payments#1");
        assert_eq!(row.get::<_, String>(1), r#"[["2", "bob", "20.5"]]"#);
        // Policies are changed by superusers only (and here the change is not in app's allowlist either).
        let (code, _) = refused(&app, "CREATE POLICY mine FOR ROLE app ALLOW 'DELETE FROM payments'").await;
        assert_eq!(code, "42501");
        assert_eq!(count(&admin, "SELECT count(*) FROM vouch_policies").await, 2);
        // A non-superuser sees its own transactions only.
        assert_eq!(count(&app, "SELECT count(*) FROM vouch_log WHERE principal <> 'app'").await, 0);

        // The refusal is proven like any transaction: its (empty) entries and record against the leaf,
        // the leaf against the checkpoint signed with the pinned key.
        let mut v = verifying(&s).await;
        let proven = v.verified_tx(tx as u64).await.unwrap();
        assert!(proven.entries.is_empty());
        let record: serde_json::Value = serde_json::from_slice(&proven.provenance).unwrap();
        assert_eq!(record["user"], "app");
        assert_eq!(record["statements"][0], "DELETE FROM payments");
        assert_eq!(record["refused"]["sqlstate"], "42501");
    });
    // The whole log replays: every write is its statements, admitted by the policies then in force.
    // Online, over pgwire (the checkpoint verified with the pinned key)...
    let key = s.public_key_file();
    let o = vouchdb(&["audit", "--replay", "--server", &s.url(), "--public-key", key.to_str().unwrap()]);
    assert!(o.status.success() && stdout(&o).contains("ok  replayed tx 1..="), "{}", stdout(&o));
    // ... and offline, over the stopped server's data directory.
    s.stop();
    let o = replay(&s);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("ok  replayed tx 1..="), "{}", stdout(&o));
}

/// A compromised server process writes below SQL, through the ledger API: the Merkle checks pass
/// (the writes are in the tree), the replay audit names each forged transaction.
#[test]
fn the_replay_audit_flags_writes_injected_below_sql() {
    let mut s = Server::start();
    let (row1_tx, head) = rt().block_on(async {
        let admin = s.client().await;
        admin.batch_execute(SETUP).await.unwrap();
        admin
            .batch_execute(
                "CREATE TABLE seqd (id SERIAL PRIMARY KEY, at TIMESTAMPTZ DEFAULT now(), u UUID DEFAULT gen_random_uuid(), n TEXT);
                 INSERT INTO payments VALUES (1, 'alice', 10), (2, 'bob', 20), (3, 'carol', 30);
                 CREATE USER clerk PASSWORD 'clerk-pw';
                 GRANT INSERT ON payments TO clerk;
                 INSERT INTO seqd (n) VALUES ('a'), ('b');
                 BEGIN; UPDATE payments SET amount = amount + 1 WHERE id = 1; DELETE FROM payments WHERE id = 2; COMMIT;",
            )
            .await
            .unwrap();
        let tx: i64 = admin.query_one("SELECT _tx FROM payments WHERE id = 1", &[]).await.unwrap().get(0);
        (tx as u64, count(&admin, "SELECT tree_size FROM vouch_checkpoint()").await as u64)
    });
    s.stop();
    let clean = replay(&s);
    assert!(clean.status.success(), "an honest log replays clean: {}", stdout(&clean));

    // Forge transactions the way a compromised server process could: straight into the log.
    let l = Ledger::open(s.data_dir().join("store"), Options::default()).unwrap();
    let genuine = l.get_tx(row1_tx).unwrap();
    let row = genuine.entries.iter().find(|e| e.table >= 1000).unwrap().clone();
    let mut forged_value = row.value.clone();
    let last = forged_value.len() - 1;
    forged_value[last] ^= 1; // the amount changes
    let record = |user: &str, stmt: &str| {
        serde_json::to_vec(&serde_json::json!({
            "v": 1, "user": user, "statements": [stmt], "snapshots": [head], "isolation": "read committed", "now_us": 0,
        }))
        .unwrap()
    };
    let forge = |entries: Vec<Entry>, provenance: Vec<u8>| {
        l.append_blocking(NewTx { entries, provenance, client_time_us: 0, index_entries: vec![] }).unwrap();
    };
    let role_entry = |role: &serde_json::Value| {
        let name = role["name"].as_str().unwrap().as_bytes().to_vec();
        vec![Entry::put(vouchdb::sql::catalog::SYS_USERS, name, serde_json::to_vec(role).unwrap())]
    };
    // The record of a change the server writes outside a SQL transaction (no isolation): role changes.
    let direct = |user: &str, stmt: &str| {
        serde_json::to_vec(&serde_json::json!({ "v": 1, "user": user, "statements": [stmt], "snapshots": [head], "now_us": 0 })).unwrap()
    };
    let role = |name: &[u8]| -> serde_json::Value {
        let roles = l.scan_table(vouchdb::sql::catalog::SYS_USERS, head, None).unwrap();
        serde_json::from_slice(&roles.iter().find(|(k, _)| k == name).unwrap().1.entry.value).unwrap()
    };
    let payment3 = vouchdb::sql::value::encode_key(&[vouchdb::sql::Value::Int(3)]).unwrap();
    // 1. A row value that the statement recorded with it does not produce.
    forge(vec![Entry::put(row.table, row.key.clone(), forged_value)], record("admin", "UPDATE payments SET amount = 11 WHERE id = 1"));
    // 2. A delete attributed to a role whose policy does not admit it.
    forge(vec![Entry::delete(row.table, row.key.clone())], record("app", "DELETE FROM payments WHERE id = 1"));
    // 3. A delete by a role without policies that was granted INSERT only.
    forge(vec![Entry::delete(row.table, payment3)], record("clerk", "DELETE FROM payments WHERE id = 3"));
    // 4. A role change the server never makes for a role that is not a superuser: it makes itself one.
    let mut clerk = role(b"clerk");
    clerk["superuser"] = true.into();
    forge(role_entry(&clerk), direct("clerk", "-- set password of role clerk"));
    // 5. A signing-key statement attributed to a superuser, whose entry is not what it makes: `app`
    // becomes a superuser instead of having to sign.
    let mut app = role(b"app");
    app["superuser"] = true.into();
    forge(role_entry(&app), record("admin", "ALTER ROLE app REQUIRE SIGNATURE"));
    // 6. A role change attributed to a superuser that the server never makes: a password change
    // that also changes whether the role is a superuser.
    app["superuser"] = false.into();
    forge(role_entry(&app), direct("admin", "-- set password of role app"));
    // 7. A new role attributed to a superuser, recorded as an ordinary role, written as a superuser.
    let mut ghost = app.clone();
    ghost["name"] = "ghost".into();
    ghost["superuser"] = true.into();
    forge(role_entry(&ghost), direct("admin", "-- create role ghost"));
    l.close();
    drop(l);

    let check = vouchdb(&["check", "--data-dir", s.data_dir().to_str().unwrap()]);
    assert!(check.status.success(), "the forged transactions are well-formed and in the tree: {}", stdout(&check));
    let o = replay(&s);
    let out = stdout(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(&format!("VIOLATION tx {}: entry 0: the log has table", head + 1)), "{out}");
    assert!(out.contains(&format!("VIOLATION tx {}: statement 1 is not admitted by any policy of role \"app\"", head + 2)), "{out}");
    assert!(out.contains(&format!("VIOLATION tx {}: statement 1 needs a privilege \"clerk\" did not hold", head + 3)), "{out}");
    assert!(out.contains(&format!("VIOLATION tx {}:", head + 4)), "{out}");
    assert!(
        out.contains(&format!(
            "VIOLATION tx {}: the policy or signing-key change wrote 1 entries that its statement does not make",
            head + 5
        )),
        "{out}"
    );
    assert!(out.contains(&format!("VIOLATION tx {}:", head + 6)), "{out}");
    assert!(out.contains(&format!("VIOLATION tx {}:", head + 7)), "{out}");
    assert!(out.contains("7 of") && out.contains("transactions violate their records"), "{out}");
    assert_eq!(out.matches("VIOLATION tx").count(), 7, "{out}");
    assert!(!out.contains(&format!("VIOLATION tx {head}:")), "honest transactions are not flagged: {out}");
}

/// A changed parameter value in a stored provenance record no longer hashes to the leaf: `vouchdb
/// check` and a verifying client both refuse it.
#[test]
fn a_changed_parameter_in_a_stored_record_fails_verification() {
    let mut s = Server::start();
    let tx = rt().block_on(async {
        let admin = s.client().await;
        admin.batch_execute("CREATE TABLE t (id INT PRIMARY KEY, amount NUMERIC)").await.unwrap();
        admin.execute("INSERT INTO t VALUES ($1, $2)", &[&1i32, &rust_decimal::Decimal::new(205, 1)]).await.unwrap();
        admin.batch_execute("INSERT INTO t VALUES (2, 0)").await.unwrap();
        let tx: i64 = admin.query_one("SELECT _tx FROM t WHERE id = 1", &[]).await.unwrap().get(0);
        tx as u64
    });
    s.stop();
    {
        use vouchdb::ledger::keys::{tx_key, ALL_CFS, CF_PROVENANCE};
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), s.data_dir().join("store"), ALL_CFS).unwrap();
        let cf = db.cf_handle(CF_PROVENANCE).unwrap();
        let record = String::from_utf8(db.get_cf(cf, tx_key(tx)).unwrap().unwrap()).unwrap();
        assert!(record.contains(r#""params":[["1","20.5"]]"#), "{record}");
        db.put_cf(cf, tx_key(tx), record.replace("20.5", "99.5")).unwrap();
        db.flush_wal(true).unwrap();
    }
    let check = vouchdb(&["check", "--data-dir", s.data_dir().to_str().unwrap()]);
    assert!(!check.status.success());
    assert!(stdout(&check).contains(&format!("tx {tx}: provenance record does not hash")), "{}", stdout(&check));
    s.restart();
    rt().block_on(async {
        let mut v = verifying(&s).await;
        match v.verified_tx(tx).await {
            Err(ClientError::Tampered { tx: t, what }) => assert!(t == tx && what.contains("provenance"), "{what}"),
            other => panic!("a changed record verified: {:?}", other.map(|t| t.provenance)),
        }
    });
}

/// Client signatures: a role that must sign cannot commit unsigned; a signature over other
/// statements, or by a key not bound to the role, is refused; a nonce cannot be used twice; the
/// replay audit re-checks every signature.
#[test]
fn client_signatures_are_checked_and_nonces_spent() {
    let mut s = Server::start();
    let key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let stranger = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let pem = vouchdb::signing::public_key_pem(key.verifying_key());
    rt().block_on(async {
        let admin = s.client().await;
        admin
            .batch_execute(&format!(
                "CREATE TABLE acct (id INT PRIMARY KEY, balance INT);
                 INSERT INTO acct VALUES (1, 100);
                 CREATE USER teller PASSWORD 'teller-pw';
                 ALTER ROLE teller ADD SIGNING KEY '{pem}';
                 ALTER ROLE teller REQUIRE SIGNATURE;
                 GRANT SELECT, UPDATE ON acct TO teller;"
            ))
            .await
            .unwrap();
        assert_eq!(refused(&admin, &format!("ALTER ROLE teller ADD SIGNING KEY '{pem}'")).await.0, "42710");
        assert_eq!(refused(&admin, "ALTER ROLE teller ADD SIGNING KEY 'not a key'").await.0, "22023");
        let teller = connect_as(&s, "teller", "teller-pw").await;
        let (code, msg) = refused(&teller, "UPDATE acct SET balance = balance - 10 WHERE id = 1").await;
        assert_eq!(code, "42501");
        assert!(msg.contains("must sign"), "{msg}");

        let stmt = "UPDATE acct SET balance = balance - 10 WHERE id = 1";
        vouchdb::client::execute_signed(&teller, "teller", &key, &[stmt]).await.unwrap();
        assert_eq!(count(&admin, "SELECT balance::bigint FROM acct WHERE id = 1").await, 90);
        let row = admin.query_one("SELECT signature, client_ts IS NOT NULL FROM vouch_log WHERE principal = 'teller'", &[]).await.unwrap();
        assert_eq!((row.get::<_, String>(0), row.get::<_, bool>(1)), ("signed".to_string(), true));

        // A key not bound to the role.
        let e = vouchdb::client::execute_signed(&teller, "teller", &stranger, &[stmt]).await.unwrap_err();
        assert!(e.to_string().contains("does not verify") && e.to_string().contains("42501"), "{e}");
        // A valid signature replayed: same nonce, same statements, same timestamp.
        let record: String = admin.query_one("SELECT record FROM vouch_log WHERE principal = 'teller'", &[]).await.unwrap().get(0);
        let record: serde_json::Value = serde_json::from_str(&record).unwrap();
        let (nonce, sig) = (record["signature"]["nonce"].as_str().unwrap(), record["signature"]["signature"].as_str().unwrap());
        let ts: String = admin.query_one("SELECT client_ts::text FROM vouch_log WHERE principal = 'teller'", &[]).await.unwrap().get(0);
        let replayed = format!(
            "SET vouch.client_timestamp = '{ts}'; SET vouch.nonce = '{nonce}'; SET vouch.signature = '{sig}'; BEGIN; {stmt}; COMMIT"
        );
        let (code, msg) = refused(&teller, &replayed).await;
        assert_eq!(code, "42501");
        assert!(msg.contains("already used"), "{msg}");
        teller.batch_execute("ROLLBACK; RESET ALL").await.unwrap();
        // The same signature over a different statement.
        let (code, msg) = refused(
            &teller,
            &format!("SET vouch.nonce = 'fresh'; SET vouch.signature = '{sig}'; UPDATE acct SET balance = 0 WHERE id = 1"),
        )
        .await;
        assert_eq!(code, "42501");
        assert!(msg.contains("does not verify"), "{msg}");
        teller.batch_execute("RESET ALL").await.unwrap();
        assert_eq!(count(&admin, "SELECT balance::bigint FROM acct WHERE id = 1").await, 90, "only the signed update was applied");

        // Statements with parameters, sent in binary by the driver: the library signs each value's
        // text as the server records it (numeric, timestamptz, text, NULL), in one transaction.
        admin
            .batch_execute(
                "CREATE TABLE slips (id INT PRIMARY KEY, amount NUMERIC(10, 2), at TIMESTAMPTZ, note TEXT, n SERIAL);
                 GRANT INSERT ON slips TO teller",
            )
            .await
            .unwrap();
        let (amount, id, slip) = (5i32, 1i32, 7i32);
        let value = rust_decimal::Decimal::new(125, 1);
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-25T10:00:00.5+02:00").unwrap().with_timezone(&chrono::Utc);
        let note: Option<String> = None;
        let update = "UPDATE acct SET balance = balance - $1 WHERE id = $2";
        let insert = "INSERT INTO slips VALUES ($1, $2, $3, $4)";
        let txn: [(&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]); 2] =
            [(update, &[&amount, &id]), (insert, &[&slip, &value, &at, &note])];
        vouchdb::client::execute_signed_params(&teller, "teller", &key, &txn).await.unwrap();
        assert_eq!(count(&admin, "SELECT balance::bigint FROM acct WHERE id = 1").await, 85);
        let row = admin.query_one("SELECT signature, params::text FROM vouch_log ORDER BY tx DESC LIMIT 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "signed");
        assert_eq!(row.get::<_, String>(1), r#"[["5", "1"], ["7", "12.5", "2026-11-25 08:00:00.5+00", null]]"#);
        // A failed statement ends the signed transaction: nothing is committed, the settings are gone.
        let e = vouchdb::client::execute_signed_params(&teller, "teller", &key, &txn).await.unwrap_err();
        assert!(e.to_string().contains("23505"), "{e}");
        assert_eq!(count(&admin, "SELECT balance::bigint FROM acct WHERE id = 1").await, 85);
        let left: String = teller.query_one("SHOW vouch.signature", &[]).await.unwrap().get(0);
        assert_eq!(left, "");
    });
    // An admin that must sign signs its policy changes too.
    let admin_key = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    let admin_pem = vouchdb::signing::public_key_pem(admin_key.verifying_key());
    rt().block_on(async {
        let admin = s.client().await;
        admin.batch_execute(&format!("ALTER ROLE admin ADD SIGNING KEY '{admin_pem}'; ALTER ROLE admin REQUIRE SIGNATURE")).await.unwrap();
        let policy = "CREATE POLICY teller_only FOR ROLE teller ALLOW 'UPDATE acct SET balance = balance - $1 WHERE id = $2'";
        let (code, msg) = refused(&admin, policy).await;
        assert_eq!(code, "42501");
        assert!(msg.contains("must sign"), "{msg}");
        // Role changes cannot be signed yet, so a role that must sign cannot make them unsigned either.
        let (code, msg) = refused(&admin, "CREATE ROLE evil SUPERUSER PASSWORD 'x'").await;
        assert_eq!(code, "42501");
        assert!(msg.contains("role changes cannot be signed yet"), "{msg}");
        assert_eq!(count(&admin, "SELECT count(*) FROM pg_roles WHERE rolname = 'evil'").await, 0);
        // The library runs a single statement as its own transaction, so a policy change can be signed.
        vouchdb::client::execute_signed(&admin, "admin", &admin_key, &[policy]).await.unwrap();
        // By hand, as any driver can: the three settings, then the statement.
        let policy = "CREATE POLICY teller_too FOR ROLE teller ALLOW 'UPDATE acct SET balance = $1 WHERE id = $2'";
        let now = chrono::Utc::now().timestamp_micros() as u64;
        let message = vouchdb::sql::signature::signed_message("admin", now, "admin-1", &[policy.to_string()], &[vec![]]);
        let sig = vouchdb::sql::signature::sign(&admin_key, &message);
        let ts = vouchdb::sql::value::Value::Timestamptz(now as i64).to_text(vouchdb::sql::DataType::Timestamptz).unwrap();
        admin
            .batch_execute(&format!("SET vouch.client_timestamp = '{ts}'; SET vouch.nonce = 'admin-1'; SET vouch.signature = '{sig}'"))
            .await
            .unwrap();
        admin.batch_execute(policy).await.unwrap();
        let signed: Vec<String> = admin
            .query("SELECT signature FROM vouch_log WHERE statements[1] LIKE 'CREATE POLICY teller_%' ORDER BY tx", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(signed, ["signed", "signed"]);
    });
    s.stop();
    let o = replay(&s);
    assert!(o.status.success(), "{}", stdout(&o));
    // A compromised server commits for the teller without a signature: the replay audit flags it.
    let l = Ledger::open(s.data_dir().join("store"), Options::default()).unwrap();
    let head = l.head().size;
    let (table, key, value) = {
        let last_update = (1..=head).rev().map(|t| l.get_tx(t).unwrap()).find(|t| t.entries.iter().any(|e| e.table >= 1000)).unwrap();
        let e = last_update.entries.iter().find(|e| e.table >= 1000).unwrap().clone();
        (e.table, e.key, e.value)
    };
    let record = serde_json::json!({
        "v": 1, "user": "teller", "statements": ["UPDATE acct SET balance = balance - 0 WHERE id = 1"],
        "snapshots": [head], "isolation": "read committed", "now_us": 0,
    });
    l.append_blocking(NewTx {
        entries: vec![Entry::put(table, key, value)],
        provenance: serde_json::to_vec(&record).unwrap(),
        ..Default::default()
    })
    .unwrap();
    l.close();
    drop(l);
    let o = replay(&s);
    let out = stdout(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(&format!("VIOLATION tx {}: role \"teller\" requires signed transactions", head + 1)), "{out}");
}

/// Client timestamps are recorded as given, for one transaction, within the configured skew.
#[test]
fn client_timestamps_are_recorded_and_checked() {
    let s = Server::start_with(|_| vec!["--max-client-skew".into(), "60".into()]);
    rt().block_on(async {
        let c = s.client().await;
        c.batch_execute("CREATE TABLE t (id INT PRIMARY KEY)").await.unwrap();
        let now = chrono::Utc::now() - chrono::Duration::seconds(30);
        let given = now.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string();
        c.batch_execute(&format!("SET vouch.client_timestamp = '{given}'")).await.unwrap();
        c.batch_execute("INSERT INTO t VALUES (1)").await.unwrap();
        let row = c.query_one("SELECT client_ts, tx FROM vouch_log WHERE tx = (SELECT _tx FROM t WHERE id = 1)", &[]).await.unwrap();
        assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>(0).timestamp_micros(), now.timestamp_micros());
        // It applied to that transaction only.
        let shown: String = c.query_one("SHOW vouch.client_timestamp", &[]).await.unwrap().get(0);
        assert_eq!(shown, "");
        c.batch_execute("INSERT INTO t VALUES (2)").await.unwrap();
        let none: Option<chrono::DateTime<chrono::Utc>> =
            c.query_one("SELECT client_ts FROM vouch_log WHERE tx = (SELECT _tx FROM t WHERE id = 2)", &[]).await.unwrap().get(0);
        assert!(none.is_none());
        // The leaf carries it, so the tree covers it.
        let tx: i64 = row.get(1);
        let mut v = verifying(&s).await;
        assert_eq!(v.verified_tx(tx as u64).await.unwrap().leaf.client_time_us, now.timestamp_micros() as u64);
        // Outside the window: refused, nothing written.
        let old = (chrono::Utc::now() - chrono::Duration::seconds(3600)).format("%Y-%m-%d %H:%M:%S+00").to_string();
        c.batch_execute(&format!("SET vouch.client_timestamp = '{old}'")).await.unwrap();
        let (code, msg) = refused(&c, "INSERT INTO t VALUES (3)").await;
        assert_eq!(code, "22023");
        assert!(msg.contains("allowed skew of 60 s"), "{msg}");
        assert_eq!(count(&c, "SELECT count(*) FROM t").await, 2);
    });
}

/// Roles without a policy are plain PostgreSQL roles: the owner and superusers hold every privilege on
/// a table, others what was granted to them or to PUBLIC; grants are transactional DDL in the log.
#[test]
fn grants_and_revokes_govern_roles_without_policies() {
    let mut s = Server::start();
    rt().block_on(async {
        let admin = s.client().await;
        admin
            .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT); INSERT INTO t VALUES (1, 'a'); CREATE USER bob PASSWORD 'bob-pw'")
            .await
            .unwrap();
        let bob = connect_as(&s, "bob", "bob-pw").await;
        assert_eq!(refused(&bob, "SELECT * FROM t").await, ("42501".into(), "permission denied for table t".into()));
        assert_eq!(refused(&bob, "SELECT * FROM verified_get('t', 1)").await.0, "42501");
        assert_eq!(refused(&bob, "SELECT 1 WHERE EXISTS (SELECT 1 FROM t)").await.0, "42501");
        admin.batch_execute("GRANT SELECT ON t TO bob").await.unwrap();
        assert_eq!(count(&bob, "SELECT count(*) FROM t").await, 1);
        assert_eq!(refused(&bob, "INSERT INTO t VALUES (2, 'b')").await.0, "42501");
        assert_eq!(refused(&bob, "UPDATE t SET v = 'x'").await.0, "42501");
        assert_eq!(refused(&bob, "DELETE FROM t").await.0, "42501");
        assert_eq!(refused(&bob, "GRANT INSERT ON t TO bob").await.0, "42501");
        assert_eq!(refused(&bob, "DROP TABLE t").await, ("42501".into(), "must be owner of table t".into()));
        assert_eq!(refused(&bob, "ALTER TABLE t ADD COLUMN w INT").await.0, "42501");
        // An upsert needs UPDATE too; dropping an index needs the table's owner.
        admin.batch_execute("GRANT INSERT ON t TO bob; CREATE UNIQUE INDEX t_v ON t (v)").await.unwrap();
        let upsert = "INSERT INTO t VALUES (1, 'z') ON CONFLICT (id) DO UPDATE SET v = excluded.v";
        assert_eq!(refused(&bob, upsert).await, ("42501".into(), "permission denied for table t".into()));
        assert_eq!(refused(&bob, "UPSERT INTO t VALUES (1, 'z')").await.0, "42501");
        bob.batch_execute("INSERT INTO t VALUES (1, 'z') ON CONFLICT (id) DO NOTHING").await.unwrap();
        assert_eq!(refused(&bob, "DROP INDEX t_v").await, ("42501".into(), "must be owner of index t_v".into()));
        admin.batch_execute("REVOKE INSERT ON t FROM bob; DROP INDEX t_v").await.unwrap();
        admin.batch_execute("GRANT INSERT, UPDATE ON TABLE t TO PUBLIC").await.unwrap();
        bob.batch_execute("INSERT INTO t VALUES (2, 'b'); UPDATE t SET v = 'bb' WHERE id = 2").await.unwrap();
        // A rolled-back REVOKE changes nothing; a committed one takes effect at once.
        admin.batch_execute("BEGIN; REVOKE ALL ON t FROM PUBLIC; ROLLBACK").await.unwrap();
        bob.batch_execute("INSERT INTO t VALUES (3, 'c')").await.unwrap();
        admin.batch_execute("REVOKE INSERT ON t FROM PUBLIC; REVOKE SELECT ON t FROM bob").await.unwrap();
        assert_eq!(refused(&bob, "INSERT INTO t VALUES (4, 'd')").await.0, "42501");
        assert_eq!(refused(&bob, "SELECT * FROM t").await.0, "42501");
        assert_eq!(refused(&admin, "GRANT SELECT ON t TO nobody").await.0, "42704");
        // A role owns what it creates.
        bob.batch_execute("CREATE TABLE mine (id INT PRIMARY KEY); INSERT INTO mine VALUES (1); DROP TABLE mine").await.unwrap();
        assert_eq!(count(&admin, "SELECT count(*) FROM t").await, 3);
    });
    s.stop();
    let o = replay(&s);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// Views are privileges too, as in PostgreSQL: reading one needs SELECT on the view, and the tables
/// it reads are checked as the view's owner, so a view over a table a role may not read does not leak
/// it, and a granted view exposes only its own columns. Only the owner drops or replaces a view; a
/// writing statement that reads a view is checked the same way, and the replay audit agrees.
#[test]
fn views_need_select_and_read_their_tables_as_their_owner() {
    let mut s = Server::start();
    rt().block_on(async {
        let admin = s.client().await;
        admin
            .batch_execute(
                "CREATE TABLE people (id INT PRIMARY KEY, ssn TEXT, name TEXT); INSERT INTO people VALUES (1, '123-45', 'ann');
                 CREATE VIEW names AS SELECT id, name FROM people;
                 CREATE VIEW names_again AS SELECT name FROM names;
                 CREATE TABLE copies (name TEXT PRIMARY KEY);
                 CREATE USER eve PASSWORD 'eve-pw'; GRANT INSERT ON copies TO eve",
            )
            .await
            .unwrap();
        let eve = connect_as(&s, "eve", "eve-pw").await;
        assert_eq!(refused(&eve, "SELECT * FROM names").await, ("42501".into(), "permission denied for view names".into()));
        assert_eq!(refused(&eve, "SELECT * FROM names_again").await.0, "42501");
        assert_eq!(refused(&eve, "INSERT INTO copies SELECT name FROM names").await.0, "42501");
        // A role's own view over a table it may not read is refused at once.
        assert_eq!(refused(&eve, "CREATE VIEW peek AS SELECT ssn FROM people").await.0, "42501");
        admin.batch_execute("GRANT SELECT ON names, names_again TO eve").await.unwrap();
        assert_eq!(count(&eve, "SELECT count(*) FROM names").await, 1);
        assert_eq!(count(&eve, "SELECT count(*) FROM names_again").await, 1);
        eve.batch_execute("INSERT INTO copies SELECT name FROM names").await.unwrap();
        assert_eq!(refused(&eve, "SELECT ssn FROM people").await.0, "42501");
        assert_eq!(refused(&eve, "DROP VIEW names").await, ("42501".into(), "must be owner of view names".into()));
        assert_eq!(refused(&eve, "CREATE OR REPLACE VIEW names AS SELECT id, ssn AS name FROM people").await.0, "42501");
        let acl: String =
            admin.query_one("SELECT array_to_string(relacl, ',') FROM pg_class WHERE relname = 'names'", &[]).await.unwrap().get(0);
        assert_eq!(acl, "admin=arwdDxt/admin,eve=r/admin");
        admin.batch_execute("REVOKE SELECT ON names FROM eve").await.unwrap();
        assert_eq!(refused(&eve, "SELECT * FROM names").await.0, "42501");
        // names_again reads names as its owner (admin), so it still works for eve.
        assert_eq!(count(&eve, "SELECT count(*) FROM names_again").await, 1);
    });
    s.stop();
    let o = replay(&s);
    assert!(o.status.success(), "{}", stdout(&o));
}

/// MAX ROWS counts every row a statement writes: the rows a TRUNCATE deletes, and the rows its
/// referential actions change; in a transaction block as outside one. The replay audit agrees.
#[test]
fn max_rows_counts_truncated_and_cascaded_rows() {
    let mut s = Server::start();
    rt().block_on(async {
        let admin = s.client().await;
        admin
            .batch_execute(
                "CREATE TABLE parents (id INT PRIMARY KEY);
                 CREATE TABLE kids (id INT PRIMARY KEY, parent INT REFERENCES parents ON DELETE CASCADE);
                 INSERT INTO parents VALUES (1), (2); INSERT INTO kids VALUES (1, 1), (2, 1), (3, 2);
                 CREATE TABLE staging (id INT PRIMARY KEY); INSERT INTO staging VALUES (1), (2);
                 CREATE USER cleaner PASSWORD 'c-pw';
                 CREATE POLICY cleaning FOR ROLE cleaner
                   ALLOW 'TRUNCATE staging' MAX ROWS 1
                   ALLOW 'DELETE FROM parents WHERE id = $1' MAX ROWS 2",
            )
            .await
            .unwrap();
        let c = connect_as(&s, "cleaner", "c-pw").await;
        let (code, msg) = refused(&c, "TRUNCATE staging").await;
        assert_eq!(code, "42501", "{msg}");
        assert!(msg.contains("affected 2 rows"), "{msg}");
        c.batch_execute("BEGIN").await.unwrap();
        let (code, msg) = refused(&c, "TRUNCATE staging").await;
        assert_eq!(code, "42501", "{msg}");
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(count(&admin, "SELECT count(*) FROM staging").await, 2);
        // Parent 1 and its two kids are three rows; parent 2 and its one kid are two.
        let (code, msg) = refused(&c, "DELETE FROM parents WHERE id = 1").await;
        assert_eq!(code, "42501", "{msg}");
        assert!(msg.contains("affected 3 rows"), "{msg}");
        c.batch_execute("DELETE FROM parents WHERE id = 2").await.unwrap();
        assert_eq!(count(&admin, "SELECT count(*) FROM kids").await, 2);
    });
    s.stop();
    let o = replay(&s);
    assert!(o.status.success(), "{}", stdout(&o));
}
