//! PostgreSQL's concurrency over the wire: row locks under READ COMMITTED (writers of one row wait and
//! all succeed), deadlock detection, lock_timeout, and the anomalies REPEATABLE READ and SERIALIZABLE
//! prevent. Each test drives real connections (tokio-postgres) against the real server.

mod common;

use std::time::{Duration, Instant};

fn code(e: &tokio_postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_else(|| format!("no SQLSTATE: {e}"))
}

async fn value(c: &tokio_postgres::Client, sql: &str) -> i32 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_connections_incrementing_one_row_lose_nothing_and_fail_nothing() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL); INSERT INTO counter VALUES (1, 0)").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let c = server.client().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                // An explicit transaction: the read-modify-write is one statement, and the second
                // statement reads the row again after the lock is held.
                c.batch_execute("BEGIN; UPDATE counter SET n = n + 1 WHERE id = 1; SELECT n FROM counter WHERE id = 1; COMMIT").await?;
                c.execute("UPDATE counter SET n = n + 1 WHERE id = 1", &[]).await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("no transaction fails under READ COMMITTED");
    }
    assert_eq!(value(&c, "SELECT n FROM counter WHERE id = 1").await, 16 * 25 * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_writer_rechecks_its_where_clause_against_the_newest_version() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT NOT NULL); INSERT INTO acct VALUES (1, 0)").await.unwrap();
    a.batch_execute("BEGIN; UPDATE acct SET bal = 10 WHERE id = 1").await.unwrap();
    let waiter = tokio::spawn(async move { b.execute("UPDATE acct SET bal = bal + 1 WHERE bal = 0", &[]).await.map_err(|e| code(&e)) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the second writer waits for the row lock");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(0), "bal is 10 now, so WHERE bal = 0 no longer matches");
    assert_eq!(value(&a, "SELECT bal FROM acct WHERE id = 1").await, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadlock_ends_one_transaction_with_40p01_within_a_second() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE pair (id INT PRIMARY KEY, v INT); INSERT INTO pair VALUES (1, 0), (2, 0)").await.unwrap();
    a.batch_execute("BEGIN; UPDATE pair SET v = 1 WHERE id = 1").await.unwrap();
    b.batch_execute("BEGIN; UPDATE pair SET v = 2 WHERE id = 2").await.unwrap();
    let a_task = tokio::spawn(async move {
        let r = a.execute("UPDATE pair SET v = 1 WHERE id = 2", &[]).await.map_err(|e| code(&e));
        (r, a)
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let rb = b.execute("UPDATE pair SET v = 2 WHERE id = 1", &[]).await.map_err(|e| code(&e));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(rb, Err("40P01".to_string()));
    b.batch_execute("ROLLBACK").await.unwrap();
    let (ra, a) = a_task.await.unwrap();
    assert_eq!(ra, Ok(1), "the survivor gets the row once the victim rolls back");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(value(&a, "SELECT v FROM pair WHERE id = 2").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeout_and_concurrent_inserts_of_one_key() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE k (id INT PRIMARY KEY, email TEXT UNIQUE); INSERT INTO k VALUES (1, 'a@x')").await.unwrap();
    a.batch_execute("BEGIN; UPDATE k SET email = 'b@x' WHERE id = 1").await.unwrap();
    b.batch_execute("SET lock_timeout = '150ms'").await.unwrap();
    let e = b.execute("DELETE FROM k WHERE id = 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), "55P03");
    a.batch_execute("ROLLBACK").await.unwrap();
    b.batch_execute("SET lock_timeout = 0").await.unwrap();
    // Two inserts of one new key (and one unique value): the second waits, then sees the first.
    a.batch_execute("BEGIN; INSERT INTO k VALUES (2, 'c@x')").await.unwrap();
    let waiter = tokio::spawn(async move { b.execute("INSERT INTO k VALUES (3, 'c@x')", &[]).await.map_err(|e| code(&e)) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "the unique value is locked by the first insert");
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(waiter.await.unwrap(), Err("23505".to_string()));
    assert_eq!(value(&a, "SELECT count(*)::int FROM k").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeatable_read_prevents_lost_updates() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE stock (id INT PRIMARY KEY, qty INT); INSERT INTO stock VALUES (1, 10)").await.unwrap();
    a.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
    b.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ").await.unwrap();
    assert_eq!(value(&a, "SELECT qty FROM stock WHERE id = 1").await, 10);
    assert_eq!(value(&b, "SELECT qty FROM stock WHERE id = 1").await, 10);
    a.batch_execute("UPDATE stock SET qty = 9 WHERE id = 1; COMMIT").await.unwrap();
    // b still sees its snapshot, and may not overwrite a's update.
    assert_eq!(value(&b, "SELECT qty FROM stock WHERE id = 1").await, 10);
    let e = b.execute("UPDATE stock SET qty = 9 WHERE id = 1", &[]).await.unwrap_err();
    assert_eq!(code(&e), "40001");
    b.batch_execute("ROLLBACK").await.unwrap();
    let show: String = b.query_one("SHOW transaction_isolation", &[]).await.unwrap().get(0);
    assert_eq!(show, "read committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serializable_prevents_write_skew() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE oncall (id INT PRIMARY KEY, on_duty BOOLEAN); INSERT INTO oncall VALUES (1, true), (2, true)")
        .await
        .unwrap();
    for c in [&a, &b] {
        c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE").await.unwrap();
        assert_eq!(value(c, "SELECT count(*)::int FROM oncall WHERE on_duty").await, 2);
    }
    a.batch_execute("UPDATE oncall SET on_duty = false WHERE id = 1").await.unwrap();
    b.batch_execute("UPDATE oncall SET on_duty = false WHERE id = 2").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let e = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(code(&e), "40001");
    assert_eq!(value(&a, "SELECT count(*)::int FROM oncall WHERE on_duty").await, 1, "someone stays on call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_for_update_locks_the_rows_it_returns() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("CREATE TABLE jobs (id INT PRIMARY KEY, state TEXT); INSERT INTO jobs VALUES (1, 'new'), (2, 'new')").await.unwrap();
    a.batch_execute("BEGIN").await.unwrap();
    let got = a.query("SELECT id FROM jobs WHERE state = 'new' ORDER BY id LIMIT 1 FOR UPDATE", &[]).await.unwrap();
    assert_eq!(got.len(), 1);
    let e = b.query("SELECT id FROM jobs WHERE id = 1 FOR UPDATE NOWAIT", &[]).await.unwrap_err();
    assert_eq!(code(&e), "55P03");
    // Row 2 is not locked.
    b.batch_execute("BEGIN; SELECT id FROM jobs WHERE id = 2 FOR UPDATE; COMMIT").await.unwrap();
    let waiter = tokio::spawn(async move {
        let r = b.query("SELECT state FROM jobs WHERE id = 1 FOR SHARE", &[]).await.map_err(|e| code(&e));
        r.map(|rows| rows[0].get::<_, String>(0))
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "FOR SHARE waits for the FOR UPDATE lock");
    a.batch_execute("UPDATE jobs SET state = 'taken' WHERE id = 1; COMMIT").await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok("taken".to_string()), "the waiter reads the newest committed version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_locked_hands_each_job_to_one_worker_without_waiting() {
    let server = common::Server::start();
    let c = server.client().await;
    c.batch_execute("CREATE TABLE jobs (id INT PRIMARY KEY, done BOOLEAN NOT NULL DEFAULT false)").await.unwrap();
    c.batch_execute("INSERT INTO jobs (id) SELECT g FROM generate_series(1, 40) g").await.unwrap();
    let take = "SELECT id FROM jobs WHERE NOT done ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED";

    // A holds job 1; B is not blocked and gets the next unlocked ones, LIMIT counting only those.
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("BEGIN").await.unwrap();
    let got: Vec<i32> = a.query(take, &[&1i64]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(got, vec![1]);
    b.batch_execute("BEGIN").await.unwrap();
    let started = Instant::now();
    let got: Vec<i32> = b.query(take, &[&2i64]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(got, vec![2, 3]);
    assert!(started.elapsed() < Duration::from_secs(2), "SKIP LOCKED must not wait");
    // Plain FOR UPDATE NOWAIT on a row B holds fails at once.
    let e = a.query("SELECT id FROM jobs WHERE id = 2 FOR UPDATE NOWAIT", &[]).await.unwrap_err();
    assert_eq!(code(&e), "55P03");
    a.batch_execute("ROLLBACK").await.unwrap();
    b.batch_execute("ROLLBACK").await.unwrap();

    // Four workers drain the queue: every job is done exactly once, nobody fails.
    let mut workers = Vec::new();
    for _ in 0..4 {
        let w = server.client().await;
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                w.batch_execute("BEGIN").await?;
                let rows = w.query(take, &[&1i64]).await?;
                let Some(row) = rows.first() else {
                    w.batch_execute("COMMIT").await?;
                    break;
                };
                let id: i32 = row.get(0);
                w.execute("UPDATE jobs SET done = true WHERE id = $1", &[&id]).await?;
                w.batch_execute("COMMIT").await?;
                mine.push(id);
            }
            Ok::<_, tokio_postgres::Error>(mine)
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap().expect("no worker fails"));
    }
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<i32>>(), "every job exactly once");
    assert_eq!(value(&c, "SELECT count(*)::int FROM jobs WHERE done").await, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_in_a_transaction_is_invisible_until_commit_and_holds_off_other_ddl() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    b.batch_execute("CREATE TABLE existing (id INT PRIMARY KEY); INSERT INTO existing VALUES (1)").await.unwrap();
    a.batch_execute("BEGIN; CREATE TABLE fresh (id INT PRIMARY KEY); INSERT INTO fresh VALUES (7)").await.unwrap();
    // Not visible to others before COMMIT; their reads and writes of other tables go on.
    let e = b.query("SELECT * FROM fresh", &[]).await.unwrap_err();
    assert_eq!(code(&e), "42P01");
    b.execute("INSERT INTO existing VALUES (2)", &[]).await.unwrap();
    // Their DDL waits for the lock, within lock_timeout.
    b.batch_execute("SET lock_timeout = '200ms'").await.unwrap();
    let started = Instant::now();
    let e = b.batch_execute("CREATE TABLE other (id INT PRIMARY KEY)").await.unwrap_err();
    assert_eq!(code(&e), "55P03");
    assert!(started.elapsed() < Duration::from_secs(5));
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("CREATE TABLE other (id INT PRIMARY KEY)").await.unwrap();
    assert_eq!(value(&b, "SELECT id FROM fresh").await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_locks_wait_time_out_and_are_released_by_a_disconnect() {
    let server = common::Server::start();
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("SELECT pg_advisory_lock(77); SELECT pg_advisory_lock(77)").await.unwrap();
    let got: bool = b.query_one("SELECT pg_try_advisory_lock(77)", &[]).await.unwrap().get(0);
    assert!(!got, "another session holds the lock");
    b.batch_execute("SET lock_timeout = '150ms'").await.unwrap();
    let e = b.execute("SELECT pg_advisory_lock($1)", &[&77i64]).await.unwrap_err();
    assert_eq!(code(&e), "55P03");
    b.batch_execute("SET lock_timeout = 0").await.unwrap();
    // Taken twice, so one unlock keeps it; the waiter gets it when the holder disconnects.
    let once: bool = a.query_one("SELECT pg_advisory_unlock(77)", &[]).await.unwrap().get(0);
    assert!(once);
    // Timed from here, not from when the task first runs (which may be later: the lock is released
    // 200 ms after this point, whenever the task started waiting).
    let started = Instant::now();
    let waiter = tokio::spawn(async move {
        b.execute("SELECT pg_advisory_lock(77)", &[]).await.map_err(|e| code(&e))?;
        Ok::<_, String>((started.elapsed(), b))
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "still held once");
    drop(a);
    let (waited, b) = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("released on disconnect").unwrap().unwrap();
    assert!(waited >= Duration::from_millis(200));
    let e = b.execute("SELECT 1 WHERE pg_try_advisory_lock(5)", &[]).await.unwrap_err();
    assert_eq!(code(&e), "0A000");
}
