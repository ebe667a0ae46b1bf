//! The wire protocol with real clients: tokio-postgres (extended protocol, binary formats, SCRAM) and
//! the real `psql` binary; bad input on the socket never takes the server down.

mod common;

use pgwire::tokio::tokio_rustls::rustls;
use std::io::{Read, Write};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_with_binary_parameters_and_results() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE items (id BIGINT PRIMARY KEY, small SMALLINT, n INTEGER, f REAL, d DOUBLE PRECISION, ok BOOLEAN, name TEXT, data BYTEA, price NUMERIC, at TIMESTAMPTZ, doc JSONB)",
    )
    .await
    .unwrap();
    let insert = c.prepare("INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)").await.unwrap();
    assert_eq!(insert.params().len(), 11);
    assert_eq!(insert.params()[0], tokio_postgres::types::Type::INT8);
    assert_eq!(insert.params()[8], tokio_postgres::types::Type::NUMERIC);
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_700_000_000_123_456);
    let price = rust_decimal::Decimal::new(12345, 2);
    let doc = serde_json::json!({"k": [1, 2]});
    for id in 1..=3i64 {
        let n = c
            .execute(
                &insert,
                &[
                    &id,
                    &(id as i16),
                    &(id as i32 * -7),
                    &1.5f32,
                    &2.25f64,
                    &(id % 2 == 0),
                    &format!("item {id}"),
                    &vec![0u8, 1, 255],
                    &price,
                    &at,
                    &doc,
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let row = c.query_one("SELECT id, small, n, f, d, ok, name, data, price, at, doc FROM items WHERE id = $1", &[&2i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, i16>(1), 2);
    assert_eq!(row.get::<_, i32>(2), -14);
    assert_eq!(row.get::<_, f32>(3), 1.5);
    assert_eq!(row.get::<_, f64>(4), 2.25);
    assert!(row.get::<_, bool>(5));
    assert_eq!(row.get::<_, String>(6), "item 2");
    assert_eq!(row.get::<_, Vec<u8>>(7), vec![0u8, 1, 255]);
    assert_eq!(row.get::<_, rust_decimal::Decimal>(8), price);
    assert_eq!(row.get::<_, std::time::SystemTime>(9), at);
    assert_eq!(row.get::<_, serde_json::Value>(10), doc);
    // NULL parameters and results.
    c.execute("INSERT INTO items (id, name) VALUES ($1, $2)", &[&9i64, &None::<String>]).await.unwrap();
    let r = c.query_one("SELECT name, small FROM items WHERE id = 9", &[]).await.unwrap();
    assert_eq!(r.get::<_, Option<String>>(0), None);
    assert_eq!(r.get::<_, Option<i16>>(1), None);
    // A statement reused many times, and a range read.
    let sel = c.prepare("SELECT count(*) FROM items WHERE id >= $1").await.unwrap();
    for i in 0..10 {
        let _ = i;
        assert_eq!(c.query_one(&sel, &[&2i64]).await.unwrap().get::<_, i64>(0), 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_see_schema_changes_and_fresh_subquery_results() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE p (id BIGINT PRIMARY KEY, v TEXT); INSERT INTO p VALUES (1, 'old')").await.unwrap();
    let get = c.prepare("SELECT v FROM p WHERE id = $1").await.unwrap();
    let count = c.prepare("SELECT (SELECT count(*) FROM p) AS n, v FROM p WHERE id = $1").await.unwrap();
    let put = c.prepare("INSERT INTO p (id, v) VALUES ($1, $2)").await.unwrap();
    assert_eq!(c.query_one(&get, &[&1i64]).await.unwrap().get::<_, String>(0), "old");
    assert_eq!(c.query_one(&count, &[&1i64]).await.unwrap().get::<_, i64>(0), 1);
    c.execute(&put, &[&2i64, &"two"]).await.unwrap();
    // The subquery runs again at every execution.
    assert_eq!(c.query_one(&count, &[&1i64]).await.unwrap().get::<_, i64>(0), 2);
    // A new table of the same name (a new table id): the kept plans must not read the dropped one.
    c.batch_execute("DROP TABLE p; CREATE TABLE p (id BIGINT PRIMARY KEY, v TEXT); INSERT INTO p VALUES (1, 'new')").await.unwrap();
    assert_eq!(c.query_one(&get, &[&1i64]).await.unwrap().get::<_, String>(0), "new");
    assert!(c.query_opt(&get, &[&2i64]).await.unwrap().is_none());
    c.execute(&put, &[&3i64, &"three"]).await.unwrap();
    assert_eq!(c.query_one(&get, &[&3i64]).await.unwrap().get::<_, String>(0), "three");
    // A dropped table fails the statement, and it works again once the table is back.
    c.batch_execute("DROP TABLE p").await.unwrap();
    assert!(c.query_opt(&get, &[&1i64]).await.is_err());
    c.batch_execute("CREATE TABLE p (id BIGINT PRIMARY KEY, v TEXT); INSERT INTO p VALUES (1, 'again')").await.unwrap();
    assert_eq!(c.query_one(&get, &[&1i64]).await.unwrap().get::<_, String>(0), "again");
}

/// SQL-level PREPARE and EXECUTE sent through the extended protocol (as drivers send any statement):
/// EXECUTE is described with the prepared statement's columns, so typed results come back, and an
/// EXECUTE argument may itself be a bound parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_prepare_and_execute_through_the_extended_protocol() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE sp (id BIGINT PRIMARY KEY, v TEXT, n NUMERIC(6,2))").await.unwrap();
    c.execute("PREPARE sp_put (BIGINT, TEXT, NUMERIC) AS INSERT INTO sp VALUES ($1, $2, $3)", &[]).await.unwrap();
    assert_eq!(c.execute("EXECUTE sp_put(1, 'one', 1.5)", &[]).await.unwrap(), 1);
    assert_eq!(c.execute("EXECUTE sp_put($1, 'two', 2)", &[&2i64]).await.unwrap(), 1);
    c.execute("PREPARE sp_get AS SELECT id, v FROM sp WHERE id >= $1 ORDER BY id", &[]).await.unwrap();
    let rows = c.query("EXECUTE sp_get(1)", &[]).await.unwrap();
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![(1, "one".to_string()), (2, "two".to_string())]);
    let e = c.query("EXECUTE sp_get", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42601"));
    let e = c.execute("PREPARE sp_get AS SELECT 1", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("42P05"));
    // The log records the prepared statement and its argument values, not the EXECUTE text.
    let recorded: Vec<String> = c
        .query("SELECT statements[1] FROM vouch_log WHERE statements[1] LIKE 'INSERT INTO sp%' ORDER BY tx", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(recorded, vec!["INSERT INTO sp VALUES ($1, $2, $3)"; 2]);
    c.execute("DEALLOCATE sp_get", &[]).await.unwrap();
    let e = c.query("EXECUTE sp_get(1)", &[]).await.unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("26000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_queries_on_one_connection_all_answer() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE q (id BIGINT PRIMARY KEY, v TEXT)").await.unwrap();
    let put = c.prepare("INSERT INTO q VALUES ($1, $2)").await.unwrap();
    let get = c.prepare("SELECT v FROM q WHERE id = $1").await.unwrap();
    // tokio-postgres pipelines concurrent requests of one client: many messages arrive in one read.
    let big = "x".repeat(10_000);
    let writes = (0..200i64).map(|i| {
        let (c, put, big) = (&c, &put, &big);
        async move { c.execute(put, &[&i, &format!("{i}{big}")]).await }
    });
    for r in futures::future::join_all(writes).await {
        assert_eq!(r.unwrap(), 1);
    }
    let reads = (0..200i64).map(|i| {
        let (c, get) = (&c, &get);
        async move { c.query_one(get, &[&i]).await }
    });
    for (i, r) in futures::future::join_all(reads).await.into_iter().enumerate() {
        assert_eq!(r.unwrap().get::<_, String>(0), format!("{i}{big}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstate_and_the_connection_stays_usable() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)").await.unwrap();
    c.execute("INSERT INTO t VALUES (1, 'a')", &[]).await.unwrap();
    let code = |e: tokio_postgres::Error| e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| e.to_string());
    assert_eq!(code(c.execute("INSERT INTO t VALUES (1, 'b')", &[]).await.unwrap_err()), "23505");
    assert_eq!(code(c.prepare("SELECT * FROM missing").await.unwrap_err()), "42P01");
    assert_eq!(code(c.simple_query("SELEC 1").await.unwrap_err()), "42601");
    assert_eq!(code(c.simple_query("SELECT 'x'::integer").await.unwrap_err()), "22P02");
    // Empty and comment-only statements.
    c.simple_query("").await.unwrap();
    c.simple_query("-- just a comment").await.unwrap();
    c.simple_query(";;").await.unwrap();
    // Several statements in one message are one implicit transaction: the first error stops it and
    // rolls back the statements before it, as in PostgreSQL.
    assert!(c.simple_query("INSERT INTO t VALUES (2, 'x'); INSERT INTO t VALUES (2, 'y'); INSERT INTO t VALUES (3, 'z')").await.is_err());
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
    c.simple_query("INSERT INTO t VALUES (2, 'x'); INSERT INTO t VALUES (3, 'z')").await.unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    c.execute("DELETE FROM t WHERE id = 3", &[]).await.unwrap();
    // Transactions through the driver.
    let mut c2 = server.client().await;
    let tx = c2.transaction().await.unwrap();
    tx.execute("UPDATE t SET v = 'changed' WHERE id = 1", &[]).await.unwrap();
    tx.rollback().await.unwrap();
    let v: String = c.query_one("SELECT v FROM t WHERE id = 1", &[]).await.unwrap().get(0);
    assert_eq!(v, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_are_refused() {
    let server = common::Server::start();
    for url in [
        format!("host=127.0.0.1 port={} user=admin password=wrong", server.port),
        format!("host=127.0.0.1 port={} user=nobody password=x", server.port),
    ] {
        let e = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.err().expect("login must fail");
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("28P01"), "{e}");
        // PostgreSQL's words, with the role the client logged in as.
        let user = if url.contains("user=admin") { "admin" } else { "nobody" };
        let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default();
        assert_eq!(message, format!("password authentication failed for user \"{user}\""));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_socket_does_not_hurt_the_server() {
    let server = common::Server::start();
    for junk in [&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..], &[0xff; 64][..], &[0, 0, 0, 8, 4, 210, 22, 47][..], &[0, 0, 0, 3][..]] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        s.write_all(junk).unwrap();
        let mut buf = [0u8; 256];
        let _ = s.read(&mut buf);
    }
    let c = server.client().await;
    assert_eq!(c.query_one("SELECT 1 + 1", &[]).await.unwrap().get::<_, i32>(0), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_survive_a_kill_and_the_checkpoint_covers_them() {
    let mut server = common::Server::start();
    {
        let c = server.client().await;
        c.batch_execute("CREATE TABLE k (id INTEGER PRIMARY KEY)").await.unwrap();
        for i in 0..20 {
            c.execute("INSERT INTO k VALUES ($1)", &[&i]).await.unwrap();
        }
    }
    server.restart(); // SIGKILL, then start again on the same data directory
    let c = server.client().await;
    let n: i64 = c.query_one("SELECT count(*) FROM k", &[]).await.unwrap().get(0);
    assert_eq!(n, 20);
    let row = c.query_one("SELECT tree_size, checkpoint, signature, public_key FROM vouch_checkpoint()", &[]).await.unwrap();
    let size: i64 = row.get(0);
    assert_eq!(size, 22, "admin user + CREATE TABLE + 20 inserts");
    let body: String = row.get(1);
    let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, row.get::<_, String>(2)).unwrap();
    let key = vouchdb::verify::checkpoint::parse_public_key_pem(&row.get::<_, String>(3)).unwrap();
    vouchdb::verify::checkpoint::verify_signature(body.as_bytes(), &sig, &key).unwrap();
    assert!(body.contains("\n22\n"));
}

#[test]
fn psql_runs_a_script() {
    let server = common::Server::start();
    let script = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n\
                  INSERT INTO notes VALUES (1, 'hello'), (2, 'world');\n\
                  SELECT body FROM notes ORDER BY id;\n\
                  \\conninfo\n\
                  SELECT tree_size FROM vouch_checkpoint();\n";
    let out = Command::new("psql")
        .args([&server.psql_url(), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", "SELECT 1"])
        .output()
        .expect("psql is installed (scripts/setup installs postgresql-client)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut child = Command::new("psql")
        .args([&server.psql_url(), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "psql failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("hello\nworld\n"), "{stdout}");
    assert!(stdout.contains("You are connected to database"), "{stdout}");
    assert!(stdout.trim_end().ends_with('3'), "admin role + CREATE TABLE + INSERT: {stdout}");
    // psql's catalog commands.
    let out = Command::new("psql")
        .args([&server.psql_url(), "-X", "-v", "ON_ERROR_STOP=1", "-c", "CREATE INDEX notes_body ON notes (body)"])
        .args(["-c", "CREATE TABLE tags (id INT PRIMARY KEY, note_id INT REFERENCES notes (id))"])
        .args(["-c", "\\dt", "-c", "\\di", "-c", "\\dn", "-c", "\\l", "-c", "\\du"])
        .args(["-c", "\\d", "-c", "\\d notes", "-c", "\\d notes_body", "-c", "\\dt+", "-c", "\\d+ notes"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "public | notes | table | admin",
        "public | notes_body | index | admin | notes",
        "public | notes_pkey",
        " public | admin",
        " vouchdb | admin | UTF8",
        " admin     | Superuser",
        // \d notes: columns, types, nullability, indexes.
        "Table \"public.notes\"",
        " id     | integer |           | not null | ",
        " body   | text    |           |          | ",
        "\"notes_pkey\" PRIMARY KEY, btree (id)",
        "\"notes_body\" btree (body)",
        // \d notes: the foreign keys that reference it (psql 15 then also lists triggers, with
        // pg_partition_ancestors(…) WITH ORDINALITY in FROM).
        "Referenced by:",
        "TABLE \"tags\" CONSTRAINT \"tags_note_id_fkey\" FOREIGN KEY (note_id) REFERENCES notes(id)",
        // \d notes_body: the index's columns and table.
        "Index \"public.notes_body\"",
        "btree, for table \"public.notes\"",
    ] {
        assert!(listing.contains(expected), "missing {expected:?} in:\n{listing}");
    }
    // A failing statement stops the script with psql's exit code 3 and the SQLSTATE's message.
    let out = Command::new("psql").args([&server.psql_url(), "-X", "-v", "ON_ERROR_STOP=1", "-c", "SELECT * FROM nope"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("relation \"nope\" does not exist"));
}

#[test]
fn psql_tab_completion_lists_tables_indexes_and_columns() {
    let server = common::Server::start();
    let setup = "CREATE TABLE ledger_items (id BIGINT PRIMARY KEY, amount_cents BIGINT, memo TEXT); \
                 CREATE INDEX ledger_items_memo ON ledger_items (memo)";
    let out = Command::new("psql").args([&server.psql_url(), "-X", "-v", "ON_ERROR_STOP=1", "-c", setup]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new("python3")
        .args(["tests/support/psql_tab.py", &server.psql_url()])
        .args(["SELECT * FROM ledger_i\\t", "\\x15\\\\d ledger_items_\\t\\t", "\\x15INSERT INTO ledger_items (amount\\t"])
        .output()
        .expect("python3 runs the pty driver");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let steps: Vec<&str> = shown.split("----").collect();
    assert!(steps[0].contains("ledger_items"), "table name completed: {shown}");
    assert!(steps[1].contains("ledger_items_memo") && steps[1].contains("ledger_items_pkey"), "index names listed: {shown}");
    assert!(steps[2].contains("amount_cents"), "column name completed: {shown}");
}

/// `--tls-cert`/`--tls-key` arguments for a self-signed P-256 certificate made by openssl in `dir`.
fn openssl_certificate(dir: &std::path::Path) -> Vec<String> {
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    vec!["--tls-cert".into(), cert.display().to_string(), "--tls-key".into(), key.display().to_string()]
}

#[test]
fn tls_with_an_openssl_made_certificate() {
    let server = common::Server::start_with(openssl_certificate);
    let url = format!("{}?sslmode=require", server.psql_url());
    let out = Command::new("psql").args([&url, "-X", "-A", "-t", "-c", "SELECT 40 + 2", "-c", "\\conninfo"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("42\n"), "{stdout}");
    assert!(stdout.contains("SSL connection (protocol: TLSv1.3"), "{stdout}");
}

#[test]
fn sslmode_require_fails_cleanly_without_tls() {
    let server = common::Server::start();
    let url = format!("{}?sslmode=require", server.psql_url());
    let out = Command::new("psql").args([&url, "-X", "-c", "SELECT 1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server does not support SSL"), "{}", String::from_utf8_lossy(&out.stderr));
    // And the server is still fine.
    let out = Command::new("psql").args([&server.psql_url(), "-X", "-A", "-t", "-c", "SELECT 1"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_created_altered_and_dropped_with_scram_verifiers_only() {
    let server = common::Server::start();
    let admin = server.client().await;
    admin.batch_execute("CREATE USER app WITH PASSWORD 'first-secret'").await.unwrap();
    let code = |e: tokio_postgres::Error| e.as_db_error().map(|d| d.code().code().to_string()).unwrap_or_else(|| e.to_string());
    assert_eq!(code(admin.batch_execute("CREATE USER app WITH PASSWORD 'x'").await.unwrap_err()), "42710");
    let url = |pw: &str| format!("host=127.0.0.1 port={} user=app password={pw} dbname=vouchdb", server.port);
    let (app, conn) = tokio_postgres::connect(&url("first-secret"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(code(app.batch_execute("CREATE USER other PASSWORD 'x'").await.unwrap_err()), "42501");
    app.batch_execute("ALTER USER app WITH PASSWORD 'second-secret'").await.unwrap();
    assert!(tokio_postgres::connect(&url("first-secret"), tokio_postgres::NoTls).await.is_err());
    let (again, conn) = tokio_postgres::connect(&url("second-secret"), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    again.simple_query("SELECT 1").await.unwrap();
    assert_eq!(code(admin.batch_execute("DROP USER admin").await.unwrap_err()), "55006");
    admin.batch_execute("DROP USER app").await.unwrap();
    admin.batch_execute("DROP USER IF EXISTS app").await.unwrap();
    assert!(tokio_postgres::connect(&url("second-secret"), tokio_postgres::NoTls).await.is_err());
    // No password is in the data directory: only SCRAM verifiers are stored.
    drop(admin);
    let mut server = server;
    server.stop();
    let ledger = vouchdb::ledger::Ledger::open(server.data_dir().join("store"), Default::default()).unwrap();
    for tx in 1..=ledger.head().size {
        let rec = ledger.get_tx(tx).unwrap();
        let all: Vec<u8> = rec.entries.iter().flat_map(|e| e.value.clone()).chain(rec.provenance.clone()).collect();
        let text = String::from_utf8_lossy(&all);
        assert!(
            !text.contains("first-secret") && !text.contains("second-secret") && !text.contains(common::PASSWORD),
            "tx {tx} holds a password"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_acknowledged_commits_and_exits_cleanly() {
    let mut server = common::Server::start();
    let setup = server.client().await;
    setup.batch_execute("CREATE TABLE w (id INTEGER PRIMARY KEY, c INTEGER)").await.unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for c in 0..8 {
        let client = server.client().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..100_000 {
                let id = c * 1_000_000 + i;
                match client.execute("INSERT INTO w VALUES ($1, $2)", &[&id, &c]).await {
                    Ok(_) => acked.lock().unwrap().push(id),
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let clean = tokio::task::spawn_blocking(move || {
        let ok = server.terminate();
        (ok, server)
    })
    .await
    .unwrap();
    assert!(clean.0, "the server did not exit cleanly after SIGTERM");
    let mut server = clean.1;
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty(), "nothing was written before SIGTERM");
    server.restart();
    let c = server.client().await;
    let n: i64 = c.query_one("SELECT count(*) FROM w", &[]).await.unwrap().get(0);
    assert!(n as usize >= acked.len(), "{} acknowledged, {n} present", acked.len());
    for id in acked.iter().step_by(97) {
        assert_eq!(c.query("SELECT 1 FROM w WHERE id = $1", &[id]).await.unwrap().len(), 1, "acknowledged row {id} lost");
    }
}

/// A certificate verifier that accepts any certificate: the test checks authentication, not PKI.
#[derive(Debug)]
struct AnyCertificate(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A raw connection upgraded to TLS with SSLRequest, startup packet sent.
fn raw_tls_startup(port: u16) -> common::raw::Raw<TlsStream> {
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    tcp.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).unwrap();
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).unwrap();
    assert_eq!(answer[0], b'S', "the server accepts SSLRequest");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(std::sync::Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), "localhost".try_into().unwrap()).unwrap();
    let mut r = common::raw::Raw { s: rustls::StreamOwned::new(conn, tcp) };
    r.send(&common::raw::startup_packet("admin", 196608));
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleartext_passwords_are_asked_for_over_tls_only() {
    use common::raw::{cstr, first_error, frame};
    let server = common::Server::start_with(|dir| [openssl_certificate(dir), vec!["--auth".into(), "password".into()]].concat());
    // psql over TLS authenticates with the cleartext password, and a wrong one is refused.
    let url = format!("{}?sslmode=require", server.psql_url());
    let out = Command::new("psql").args([&url, "-X", "-A", "-t", "-c", "SELECT 40 + 2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
    let wrong = format!("postgresql://admin:wrong@127.0.0.1:{}/vouchdb?sslmode=require", server.port);
    let out = Command::new("psql").args([&wrong, "-X", "-c", "SELECT 1"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("password authentication failed for user \"admin\""), "{stderr}");
    // The same on a raw TLS connection: AuthenticationCleartextPassword (3), then 28P01 or success.
    let port = server.port;
    tokio::task::spawn_blocking(move || {
        for (password, ok) in [("wrong", false), (common::PASSWORD, true), ("", false)] {
            let mut r = raw_tls_startup(port);
            let (t, body) = r.recv().expect("an authentication request");
            assert_eq!((t, &body[..]), (b'R', &3u32.to_be_bytes()[..]), "AuthenticationCleartextPassword over TLS");
            r.send(&frame(b'p', &cstr(password.as_bytes())));
            let msgs = r.until_ready();
            if ok {
                assert_eq!(msgs[0], (b'R', 0u32.to_be_bytes().to_vec()), "AuthenticationOk");
                assert_eq!(common::raw::first_column(&r.query(b"SELECT current_user")), ["admin"]);
            } else {
                let (sev, code, msg) = first_error(&msgs).expect("refused");
                assert_eq!((sev.as_str(), code.as_str()), ("FATAL", "28P01"), "{msg}");
                assert!(r.closed());
            }
        }
        // Without TLS the server asks for SCRAM-SHA-256 (10), never for a cleartext password.
        let mut plain = common::raw::Raw { s: std::net::TcpStream::connect(("127.0.0.1", port)).unwrap() };
        plain.s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
        plain.send(&common::raw::startup_packet("admin", 196608));
        plain.scram(common::PASSWORD);
        let mut plain = common::raw::Raw { s: std::net::TcpStream::connect(("127.0.0.1", port)).unwrap() };
        plain.send(&common::raw::startup_packet("admin", 196608));
        let (t, body) = plain.recv().unwrap();
        assert_eq!((t, &body[..4]), (b'R', &10u32.to_be_bytes()[..]));
        assert!(String::from_utf8_lossy(&body).contains("SCRAM-SHA-256"));
    })
    .await
    .unwrap();
    // And drivers on plain connections still log in with SCRAM.
    let c = server.client().await;
    assert_eq!(c.query_one("SELECT 1", &[]).await.unwrap().get::<_, i32>(0), 1);
    let e = tokio_postgres::connect(&format!("host=127.0.0.1 port={port} user=admin password=wrong"), tokio_postgres::NoTls)
        .await
        .err()
        .unwrap();
    assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("28P01"));
}

#[test]
fn scram_stays_the_default_over_tls() {
    let server = common::Server::start_with(openssl_certificate);
    let mut r = raw_tls_startup(server.port);
    r.scram(common::PASSWORD);
    assert_eq!(common::raw::first_column(&r.query(b"SELECT 7")), ["7"]);
}

/// Error fields drivers expose: a unique violation's DETAIL, schema, table and constraint; the cursor
/// position and PostgreSQL's wording of a syntax error; the position of an unknown relation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_detail_object_names_and_positions() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE ef (id INTEGER PRIMARY KEY, v TEXT UNIQUE); INSERT INTO ef VALUES (1, 'a')").await.unwrap();
    let db = |e: tokio_postgres::Error| e.as_db_error().cloned().expect("a server error");
    let e = db(c.execute("INSERT INTO ef VALUES (1, 'b')", &[]).await.unwrap_err());
    assert_eq!(e.message(), "duplicate key value violates unique constraint \"ef_pkey\"");
    assert_eq!(e.detail(), Some("Key (id)=(1) already exists."));
    assert_eq!((e.schema(), e.table(), e.constraint()), (Some("public"), Some("ef"), Some("ef_pkey")));
    let e = db(c.execute("INSERT INTO ef VALUES (2, 'a')", &[]).await.unwrap_err());
    assert_eq!((e.constraint(), e.detail()), (Some("ef_v_key"), Some("Key (v)=(a) already exists.")));
    c.batch_execute("CREATE TABLE ef_child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES ef (id))").await.unwrap();
    let e = db(c.execute("INSERT INTO ef_child VALUES (1, 7)", &[]).await.unwrap_err());
    assert_eq!(e.message(), "insert or update on table \"ef_child\" violates foreign key constraint \"ef_child_p_fkey\"");
    assert_eq!((e.table(), e.constraint()), (Some("ef_child"), Some("ef_child_p_fkey")));
    assert_eq!(e.detail(), Some("Key (p)=(7) is not present in table \"ef\"."));
    let e = db(c.simple_query("SELECT 1;\nSELEC 1").await.unwrap_err());
    assert_eq!(e.message(), "syntax error at or near \"SELEC\"");
    assert_eq!(e.position(), Some(&tokio_postgres::error::ErrorPosition::Original(11)));
    let e = db(c.query("SELECT * FROM missing_table WHERE id = $1", &[&1i32]).await.unwrap_err());
    assert_eq!(e.position(), Some(&tokio_postgres::error::ErrorPosition::Original(15)));
}
