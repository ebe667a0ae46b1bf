//! The verifying gateway: ordinary drivers through it, verified reads reduced to the row's columns,
//! verified writes, a tampered row turned into an error, a rolled-back server refused, the REST endpoint.

mod common;

use common::{copy_dir, Server, PASSWORD};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Gateway {
    child: Child,
    port: u16,
    rest: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=admin password={PASSWORD} dbname=vouchdb", self.port)
    }

    async fn client(&self) -> tokio_postgres::Client {
        let (c, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls).await.expect("connect through the gateway");
        tokio::spawn(conn);
        c
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.rest)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
        let mut r = String::new();
        s.read_to_string(&mut r).unwrap();
        let status = r.split(' ').nth(1).unwrap().parse().unwrap();
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        (status, serde_json::from_str(body).unwrap_or(serde_json::Value::Null))
    }
}

/// Start a gateway in front of `s`; `Err` with its output if it exits (refuses to start).
fn gateway(s: &Server, state: &Path, pubkey: &Path) -> Result<Gateway, String> {
    gateway_with(s, state, pubkey, &[])
}

fn gateway_with(s: &Server, state: &Path, pubkey: &Path, extra: &[&str]) -> Result<Gateway, String> {
    let (port, rest) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
        .args(["gateway", "--upstream", &format!("127.0.0.1:{}", s.port), "--listen", &format!("127.0.0.1:{port}")])
        .args(["--conn", "user=admin dbname=vouchdb", "--rest-listen", &format!("127.0.0.1:{rest}")])
        .arg("--public-key")
        .arg(pubkey)
        .arg("--state")
        .arg(state)
        .args(extra)
        .env("PGPASSWORD", PASSWORD)
        .env("VOUCHDB_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            let out = child.wait_with_output().unwrap();
            return Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        }
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Gateway { child, port, rest });
        }
        assert!(Instant::now() < deadline, "gateway did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn drivers_work_through_the_gateway_which_verifies_reads_and_writes() {
    let s = Server::start();
    let state = s.dir.path().join("gw.json");
    let g = gateway(&s, &state, &s.public_key_file()).unwrap();
    rt().block_on(async {
        let c = g.client().await;
        c.batch_execute("CREATE TABLE acc (id int PRIMARY KEY, owner text, bal numeric(10, 2), at timestamptz)").await.unwrap();
        c.execute("INSERT INTO acc VALUES ($1, $2, $3::text::numeric, now())", &[&1i32, &"ann", &"10.5"]).await.unwrap();
        c.batch_execute("BEGIN; INSERT INTO acc VALUES (2, 'bob', 20, now()); UPDATE acc SET bal = 11 WHERE id = 1; COMMIT").await.unwrap();
        // Verified writes advanced the gateway's trusted state past the commits.
        let size: i64 = c.query_one("SELECT tree_size FROM vouch_checkpoint()", &[]).await.unwrap().get(0);
        let trusted: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        let trusted_size = trusted["logs"].as_object().unwrap().values().next().unwrap()["tree_size"].as_u64().unwrap();
        assert_eq!(trusted_size, size as u64);
        // A verified read, prepared, binary results: only the row's columns come back.
        let rows = c.query("SELECT * FROM verified_get('acc', $1)", &[&1i32]).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].columns().iter().map(|c| c.name()).collect::<Vec<_>>(), ["id", "owner", "bal", "at"]);
        assert_eq!(rows[0].get::<_, String>(1), "ann");
        // Pipelined queries on one connection (tokio-postgres binds every one to the unnamed portal):
        // each answer is matched with its own statement.
        let vg = c.prepare("SELECT * FROM verified_get('acc', $1)").await.unwrap();
        let plain = c.prepare("SELECT id, owner FROM acc WHERE id = $1").await.unwrap();
        for _ in 0..20 {
            let (a, b, p) = tokio::join!(c.query(&vg, &[&1i32]), c.query(&plain, &[&1i32]), c.query(&vg, &[&1i32]));
            let (a, b, p) = (a.unwrap(), b.unwrap(), p.unwrap());
            assert_eq!((a[0].len(), b[0].len(), p[0].len()), (4, 2, 4));
            assert_eq!(b[0].get::<_, String>(1), "ann");
        }
        // Simple protocol, history with its _deleted flag.
        c.batch_execute("DELETE FROM acc WHERE id = 2").await.unwrap();
        let h = c.simple_query("SELECT * FROM verified_history('acc', 2)").await.unwrap();
        let rows: Vec<_> =
            h.iter().filter_map(|m| if let tokio_postgres::SimpleQueryMessage::Row(r) = m { Some(r) } else { None }).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].get("_deleted"), Some("t"));
        assert!(rows[0].try_get("_leaf").is_err(), "proof columns are removed");
        // A projection cannot be verified: an error, never data.
        let e = c.query("SELECT owner FROM verified_get('acc', 1)", &[]).await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "XX001");
        // Everything else passes through, errors with their SQLSTATEs; the session stays usable.
        let e = c.execute("INSERT INTO acc VALUES (1, 'dup', 0, now())", &[]).await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "23505");
        let n: i64 = c.query_one("SELECT count(*) FROM acc", &[]).await.unwrap().get(0);
        assert_eq!(n, 1);
    });
    // A reference read through the gateway: both entries verified, only the row's columns kept.
    rt().block_on(async {
        let c = g.client().await;
        c.batch_execute("INSERT INTO vouch_references VALUES ('main', 'acc', ARRAY['1'], NULL)").await.unwrap();
        let rows = c.query("SELECT * FROM verified_deref('acc', $1)", &[&"main"]).await.unwrap();
        assert_eq!(rows[0].columns().iter().map(|c| c.name()).collect::<Vec<_>>(), ["id", "owner", "bal", "at"]);
        assert_eq!(rows[0].get::<_, String>(1), "ann");
        let e = c.query("SELECT id, _ref_tx FROM verified_deref('main')", &[]).await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "XX001");
    });
    // psql through the gateway.
    let out = Command::new("psql")
        .args(["-X", "-At", &g.url(), "-c", "SELECT * FROM verified_get('acc', 1)", "-c", "SELECT 40 + 2"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("1|ann|11.00|") && text.contains("\n42\n"), "{text}");
    // libpq's extended and prepared paths (Bind, Describe portal, Execute) through pgbench.
    let script = g_script(&s);
    for mode in ["simple", "extended", "prepared"] {
        let out = Command::new("pgbench").args(["-n", "-M", mode, "-t", "50", "-c", "2", "-f"]).arg(&script).arg(g.url()).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("number of failed transactions: 0"), "pgbench -M {mode}: {text}");
    }
    // REST.
    let (status, j) = g.get("/checkpoint");
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["verified"], true);
    let (status, j) = g.get("/verified_get?table=acc&key=1");
    assert_eq!(status, 200, "{j}");
    assert_eq!(j["values"][1], "ann");
    let (status, _) = g.get("/verified_tx?tx=2");
    assert_eq!(status, 400, "whole transactions are not served over REST");
    let (status, j) = g.get("/proof/inclusion?tx=2");
    assert_eq!(status, 200, "{j}");
    let (status, _) = g.get("/verified_get?table=acc");
    assert_eq!(status, 400);
}

#[test]
fn the_gateway_turns_a_tampered_row_into_an_error_and_refuses_a_rolled_back_server() {
    let mut s = Server::start();
    let pubkey = s.public_key_file();
    let state = s.dir.path().join("gw.json");
    rt().block_on(async {
        let c = s.client().await;
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)").await.unwrap();
        for i in 1..=8 {
            c.execute("INSERT INTO t VALUES ($1, 'value')", &[&i]).await.unwrap();
        }
    });
    let tx: i64 = rt().block_on(async { s.client().await.query_one("SELECT _tx FROM t WHERE id = 3", &[]).await.unwrap().get(0) });
    drop(gateway(&s, &state, &pubkey).unwrap()); // trusts the current tree
                                                 // Change the row's stored value behind the server's back.
    s.stop();
    {
        use vouchdb::ledger::keys::*;
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), s.data_dir().join("store"), ALL_CFS).unwrap();
        let cf = db.cf_handle(CF_ENTRIES).unwrap();
        let k = entry_key(tx as u64, 0);
        let mut v = db.get_cf(cf, k).unwrap().unwrap();
        let last = v.len() - 1;
        v[last] ^= 1;
        db.put_cf(cf, k, v).unwrap();
        db.flush_wal(true).unwrap();
    }
    s.restart();
    let backup = s.dir.path().join("backup");
    {
        let g = gateway(&s, &state, &pubkey).unwrap();
        rt().block_on(async {
            let c = g.client().await;
            let e = c.query("SELECT * FROM verified_get('t', 3)", &[]).await.unwrap_err();
            assert_eq!(e.code().unwrap().code(), "XX001");
            assert!(e.as_db_error().unwrap().message().contains(&format!("tx {tx}")), "{e}");
            // Evidence against the server ends that session (FATAL); other rows still verify.
            assert!(c.is_closed() || c.simple_query("SELECT 1").await.is_err());
            let c = g.client().await;
            assert_eq!(c.query("SELECT * FROM verified_get('t', 4)", &[]).await.unwrap().len(), 1);
        });
        let (status, j) = g.get("/verified_get?table=t&key=3");
        assert_eq!(status, 502, "{j}");
    }
    // Rollback: the gateway trusts a bigger tree than the restored copy has.
    s.stop();
    copy_dir(&s.data_dir(), &backup);
    s.restart();
    rt().block_on(async { s.client().await.batch_execute("INSERT INTO t VALUES (100, 'later')").await.unwrap() });
    drop(gateway(&s, &state, &pubkey).unwrap());
    s.stop();
    std::fs::remove_dir_all(s.data_dir()).unwrap();
    copy_dir(&backup, &s.data_dir());
    s.restart();
    let err = gateway(&s, &state, &pubkey).err().expect("the gateway started against a rolled-back server");
    assert!(err.contains("rollback"), "{err}");
}

/// A pgbench script reading verified rows.
/// With --client-timestamps, every transaction committed through the gateway carries the gateway's
/// clock as its client timestamp (docs/PROVENANCE.md), in simple and extended protocol, in and out of
/// transaction blocks; the client sees only its own answers.
#[test]
fn the_gateway_sets_client_timestamps() {
    let s = Server::start();
    let state = s.dir.path().join("gw.json");
    let g = gateway_with(&s, &state, &s.public_key_file(), &["--client-timestamps"]).unwrap();
    rt().block_on(async {
        let c = g.client().await;
        let before = chrono::Utc::now();
        c.batch_execute("CREATE TABLE ts (id int PRIMARY KEY, v text)").await.unwrap();
        c.execute("INSERT INTO ts VALUES ($1, $2)", &[&1i32, &"one"]).await.unwrap();
        c.batch_execute("BEGIN; INSERT INTO ts VALUES (2, 'two'); UPDATE ts SET v = 'uno' WHERE id = 1; COMMIT").await.unwrap();
        let rows = c.query("SELECT id, v FROM ts ORDER BY id", &[]).await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get::<_, String>(1), "uno");
        // A failing statement's error reaches the client as usual.
        let e = c.batch_execute("INSERT INTO ts VALUES (1, 'dup')").await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "23505");
        let after = chrono::Utc::now();
        let direct = s.client().await;
        let stamps: Vec<Option<chrono::DateTime<chrono::Utc>>> = direct
            .query("SELECT client_ts FROM vouch_log WHERE principal = 'admin' AND tx > 1 ORDER BY tx", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(stamps.len(), 3, "CREATE TABLE, the INSERT, the block");
        for t in stamps {
            let t = t.expect("every transaction through the gateway has a client timestamp");
            assert!(t >= before - chrono::Duration::seconds(1) && t <= after + chrono::Duration::seconds(1), "{t}");
        }
    });
}

fn g_script(s: &Server) -> PathBuf {
    let p = s.dir.path().join("vg.sql");
    std::fs::write(&p, "SELECT * FROM verified_get('acc', 1);\n").unwrap();
    p
}

/// With --signing-key, the gateway signs every transaction its clients commit, for a role that must
/// sign: simple and extended protocol, parameters of many types in text and binary, NULLs, multi-
/// statement strings, blocks with a savepoint rolled back, pipelines, DDL. The server checks each
/// signature at commit; the replay audit checks them all again. The key is made by openssl.
#[test]
fn the_gateway_signs_transactions_for_a_role_that_must_sign() {
    let s = Server::start();
    let dir = s.dir.path();
    let key = dir.join("app.key");
    let ok = Command::new("openssl")
        .args(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(ok.success());
    let pubkey = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&key).output().unwrap();
    let pem = String::from_utf8(pubkey.stdout).unwrap();
    let state = dir.join("gw.json");
    let spec = format!("app={}", key.display());
    let g = gateway_with(&s, &state, &s.public_key_file(), &["--signing-key", &spec]).unwrap();
    rt().block_on(async {
        let admin = s.client().await;
        admin
            .batch_execute(&format!(
                "CREATE TABLE pay (id int PRIMARY KEY, payer text, amount numeric(12, 2), at timestamptz, memo bytea, ok boolean);
                 CREATE USER app PASSWORD 'app-pw' CREATEDB;
                 GRANT SELECT, INSERT, UPDATE, DELETE ON pay TO app;
                 ALTER ROLE app ADD SIGNING KEY '{pem}';
                 ALTER ROLE app REQUIRE SIGNATURE;"
            ))
            .await
            .unwrap();
        // Straight to the server, unsigned: refused.
        let (direct, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=app password=app-pw dbname=vouchdb", s.port),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let e = direct.batch_execute("INSERT INTO pay (id) VALUES (99)").await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "42501", "{e}");

        let (c, conn) = tokio_postgres::connect(
            &format!("host=127.0.0.1 port={} user=app password=app-pw dbname=vouchdb", g.port),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        // Simple protocol: one statement, then a multi-statement string (one implicit transaction).
        c.batch_execute("INSERT INTO pay (id, payer) VALUES (1, 'ann')").await.unwrap();
        c.batch_execute("INSERT INTO pay (id, payer) VALUES (2, 'bob'); UPDATE pay SET ok = true WHERE id = 1").await.unwrap();
        // A block with a savepoint rolled back, statement by statement.
        for q in [
            "BEGIN",
            "INSERT INTO pay (id) VALUES (3)",
            "SAVEPOINT a",
            "INSERT INTO pay (id) VALUES (4)",
            "ROLLBACK TO a",
            "SET application_name = 'x'",
        ] {
            c.batch_execute(q).await.unwrap();
        }
        c.batch_execute("INSERT INTO pay (id) VALUES (5); COMMIT").await.unwrap();
        // Extended protocol: binary and text parameters of several types, NULL, autocommit.
        let at = chrono::Utc::now();
        let ins = c.prepare("INSERT INTO pay VALUES ($1, $2, $3::text::numeric, $4, $5, $6)").await.unwrap();
        c.execute(&ins, &[&10i32, &"carol", &"12.50", &at, &vec![0u8, 255, 7], &None::<bool>]).await.unwrap();
        // Unnamed statements with inferred types (tokio-postgres's query_typed: Parse, Bind, Execute).
        c.query_typed(
            "UPDATE pay SET amount = $1 WHERE id = $2",
            &[(&"7.25", tokio_postgres::types::Type::TEXT), (&10i32, tokio_postgres::types::Type::INT4)],
        )
        .await
        .unwrap();
        // A transaction of prepared statements, and a pipeline of three autocommit writes.
        let mut c2 = c;
        let t = c2.transaction().await.unwrap();
        t.execute("INSERT INTO pay (id, payer) VALUES ($1, $2)", &[&11i32, &"dan"]).await.unwrap();
        t.execute("DELETE FROM pay WHERE id = $1", &[&2i32]).await.unwrap();
        t.commit().await.unwrap();
        let c = c2;
        let upd = c.prepare("UPDATE pay SET payer = $1 WHERE id = $2").await.unwrap();
        let (a, b, d) = tokio::join!(c.execute(&upd, &[&"A", &1i32]), c.execute(&upd, &[&"C", &10i32]), c.execute(&upd, &[&"D", &11i32]));
        assert_eq!((a.unwrap(), b.unwrap(), d.unwrap()), (1, 1, 1));
        // A failed statement fails as usual, and the next transaction is signed again.
        let e = c.execute("INSERT INTO pay (id) VALUES ($1)", &[&1i32]).await.unwrap_err();
        assert_eq!(e.code().unwrap().code(), "23505");
        c.execute("INSERT INTO pay (id, memo) VALUES ($1, $2)", &[&12i32, &None::<Vec<u8>>]).await.unwrap();
        // Pipelines of several statements before one Sync (raw protocol): one implicit transaction;
        // with BEGIN … COMMIT inside; with a failing statement (nothing commits). The client sees only
        // the answers to its own messages.
        let mut raw = common::raw::Raw { s: std::net::TcpStream::connect(("127.0.0.1", g.port)).unwrap() };
        raw.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        raw.send(&common::raw::startup_packet("app", 196608));
        raw.scram("app-pw");
        let ext = |sql: &str, params: &[Option<&[u8]>]| {
            let mut m = common::raw::parse(sql.as_bytes());
            m.extend(common::raw::bind(params, 0));
            m.extend(common::raw::frame(b'E', &[0, 0, 0, 0, 0]));
            m
        };
        let sync = common::raw::frame(b'S', &[]);
        let kinds = |msgs: &[common::raw::Msg]| msgs.iter().map(|m| m.0 as char).collect::<String>();
        raw.send(
            &[
                ext("INSERT INTO pay (id) VALUES (13)", &[]),
                ext("INSERT INTO pay (id, payer) VALUES ($1, $2)", &[Some(b"14"), None]),
                sync.clone(),
            ]
            .concat(),
        );
        assert_eq!(kinds(&raw.until_ready()), "12C12CZ");
        raw.send(&[ext("BEGIN", &[]), ext("INSERT INTO pay (id) VALUES ($1)", &[Some(b"15")]), ext("COMMIT", &[]), sync.clone()].concat());
        assert_eq!(kinds(&raw.until_ready()), "12C12C12CZ");
        raw.send(
            &[ext("INSERT INTO pay (id) VALUES ($1)", &[Some(b"16")]), ext("INSERT INTO pay (id) VALUES (1)", &[]), sync.clone()].concat(),
        );
        let msgs = raw.until_ready();
        assert_eq!(common::raw::first_error(&msgs).unwrap().1, "23505");
        assert_eq!(kinds(&msgs), "12C12EZ");
        let ids: Vec<i32> = c.query("SELECT id FROM pay ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
        assert_eq!(ids, [1, 3, 5, 10, 11, 12, 13, 14, 15]);
        let signed: Vec<(String, Vec<String>)> = admin
            .query("SELECT signature, statements FROM vouch_log WHERE principal = 'app' AND NOT refused ORDER BY tx", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(signed.len(), 12, "{signed:?}");
        assert!(signed.iter().all(|(sig, _)| sig == "signed"), "{signed:?}");
        assert_eq!(signed[2].1, ["INSERT INTO pay (id) VALUES (3)", "INSERT INTO pay (id) VALUES (5)"]);
    });
    drop(g);
    let mut s = s;
    s.stop();
    let o = Command::new(env!("CARGO_BIN_EXE_vouchdb"))
        .args(["audit", "--replay", "--data-dir", s.data_dir().to_str().unwrap()])
        .env("VOUCHDB_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}
