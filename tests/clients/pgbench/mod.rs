//! The real `pgbench` against the real server, in its three query modes (`-M simple`, `extended`,
//! `prepared`): the custom scripts of this directory (a transfer transaction and reads that include
//! `verified_get`); and its initialisation (tables without primary keys, data generated server-side
//! and client-side with COPY, VACUUM, then ALTER TABLE … ADD PRIMARY KEY) and its built-in TPC-B-like
//! workload at 8 clients for 15 s, then in the other two modes. Afterwards the books balance (every
//! history delta is in the accounts, tellers and branches) and the ledger verifies.

use crate::common;
use std::process::Command;

fn pgbench(server: &common::Server, args: &[&str]) -> String {
    let out = Command::new("pgbench").args(args).arg(server.psql_url()).output().expect("pgbench is installed (scripts/setup)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pgbench {args:?} failed:\n{text}");
    text
}

async fn one(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_init_and_tpcb_like_at_8_clients_balance_the_books() {
    let mut server = common::Server::start();
    // Server-side generation (INSERT … SELECT generate_series), then the default client-side one (COPY).
    let init = pgbench(&server, &["-i", "-I", "dtGvp", "-s", "1"]);
    assert!(init.contains("creating primary keys"), "{init}");
    let c = server.client().await;
    assert_eq!(one(&c, "SELECT count(*) FROM pgbench_accounts").await, 100_000);
    let init = pgbench(&server, &["-i", "-s", "1"]);
    assert!(init.contains("client-side generate") && init.contains("creating primary keys"), "{init}");
    assert_eq!(one(&c, "SELECT count(*) FROM pgbench_accounts").await, 100_000);
    assert_eq!(one(&c, "SELECT count(*) FROM pgbench_tellers").await, 10);
    // ADD PRIMARY KEY moved the rows to their keys: a point lookup by aid finds the row.
    assert_eq!(one(&c, "SELECT aid::bigint FROM pgbench_accounts WHERE aid = 77777").await, 77_777);
    let pk: i64 = one(&c, "SELECT count(*) FROM pg_indexes WHERE indexname = 'pgbench_accounts_pkey'").await;
    assert_eq!(pk, 1);

    let run = pgbench(&server, &["-n", "-c", "8", "-j", "2", "-T", "15", "-M", "prepared"]);
    let tx = processed(&run);
    assert!(tx > 0, "{run}");
    // Short runs in the two other query modes (simple and extended protocol without named statements).
    for mode in ["simple", "extended"] {
        let r = pgbench(&server, &["-n", "-c", "4", "-j", "2", "-t", "50", "-M", mode]);
        assert_eq!(processed(&r), 200, "{r}");
    }

    // Every transaction of the script wrote one history row (a table without a primary key), and the
    // deltas add up in every table, as they must when no update was lost.
    let history = one(&c, "SELECT count(*) FROM pgbench_history").await;
    assert_eq!(history, tx + 2 * 4 * 50);
    let delta = one(&c, "SELECT coalesce(sum(delta), 0)::bigint FROM pgbench_history").await;
    assert_eq!(one(&c, "SELECT sum(abalance)::bigint FROM pgbench_accounts").await, delta);
    assert_eq!(one(&c, "SELECT sum(tbalance)::bigint FROM pgbench_tellers").await, delta);
    assert_eq!(one(&c, "SELECT sum(bbalance)::bigint FROM pgbench_branches").await, delta);
    drop(c);
    server.check_ledger();
}

/// The number of transactions pgbench reports as processed, after checking that none failed.
fn processed(run: &str) -> i64 {
    assert!(run.contains("number of failed transactions: 0 "), "{run}");
    run.lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|n| n.split('/').next())
        .and_then(|n| n.trim().parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no transaction count in:\n{run}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_custom_scripts_in_every_query_mode() {
    let mut server = common::Server::start();
    let c = server.client().await;
    c.batch_execute(
        "CREATE TABLE bench_accounts (id int PRIMARY KEY, balance bigint NOT NULL);
         INSERT INTO bench_accounts SELECT g, 10000 FROM generate_series(1, 100) g;
         CREATE TABLE bench_journal (src int, dst int, amount int, at timestamptz);
         CREATE INDEX bench_journal_src ON bench_journal (src);",
    )
    .await
    .unwrap();
    let dir = crate::dir("pgbench");
    let (transfer, read) = (dir.join("transfer.sql"), dir.join("read.sql"));
    let mut transfers = 0;
    for mode in ["simple", "extended", "prepared"] {
        let run = pgbench(&server, &["-n", "-c", "4", "-j", "2", "-t", "40", "-M", mode, "-f", transfer.to_str().unwrap()]);
        transfers += processed(&run);
        let run = pgbench(&server, &["-n", "-c", "4", "-j", "2", "-t", "40", "-M", mode, "-f", read.to_str().unwrap()]);
        assert_eq!(processed(&run), 160, "{run}");
    }
    assert_eq!(transfers, 3 * 160);
    // Every transfer moved money without creating or losing any, and journalled itself once.
    assert_eq!(one(&c, "SELECT sum(balance)::bigint FROM bench_accounts").await, 100 * 10000);
    assert_eq!(one(&c, "SELECT count(*) FROM bench_journal").await, transfers);
    drop(c);
    server.check_ledger();
}
